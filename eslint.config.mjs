// Lints the served schema (every module's schema.graphql) with graphql-eslint's
// schema-recommended rules, plus a description on every type, field, argument and enum value.
import graphql from "@graphql-eslint/eslint-plugin";

const schemaFiles = ["src/modules/**/schema.graphql"];

export default [
  {
    files: schemaFiles,
    languageOptions: { parser: graphql.parser, parserOptions: { graphQLConfig: { schema: schemaFiles } } },
    plugins: { "@graphql-eslint": graphql },
    rules: {
      ...graphql.configs["flat/schema-recommended"].rules,
      // The contract (../shared/contract) writes every description inline; the served SDL follows it.
      "@graphql-eslint/description-style": ["error", { style: "inline" }],
      // Values without an identity of their own: Relay edges and connections, mutation payloads,
      // a balance, a usage bucket, a checkout or portal session's link, a signed certificate. Their owners
      // (Customer, License...) have ids. A signing key is named by keyId, as the contract says.
      "@graphql-eslint/strict-id-in-types": [
        "error",
        { exceptions: { suffixes: ["Edge", "Connection", "Payload", "Session"], types: ["PageInfo", "CreditBalance", "CreditExpiry", "UsageBucket", "LicenseCertificate", "LicenseSigningKey", "Query", "Mutation"] } },
      ],
      "@graphql-eslint/require-description": [
        "error",
        {
          types: true,
          rootField: true,
          FieldDefinition: true,
          InputValueDefinition: true,
          EnumValueDefinition: true,
          ScalarTypeDefinition: true,
          DirectiveDefinition: true,
        },
      ],
    },
  },
];
