// The layers and module doors, enforced by `npm run lint:deps` (part of `npm test`).
// test/architecture/ proves each rule can fail on a fixture that breaks it.
//
//   main.ts, app.ts, services.ts, schema.ts, ops/   wire things together (may use module doors)
//   modules/<m>/                                    features: schema, resolvers, services, store
//   platform/                                       plumbing that knows no feature
//   config.ts, generated/                           the bottom: read by everyone
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-runtime-cycles",
      comment: "A cycle of runtime imports. Type-only cycles (resolver types naming the request context) are allowed.",
      severity: "error",
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
    {
      name: "platform-knows-no-feature",
      comment: "platform/ is plumbing: it must not import modules, the wiring (services.ts, app.ts, context.ts, main.ts, schema.ts) or ops/.",
      severity: "error",
      from: { path: "^src/platform/" },
      to: { path: "^src/(modules/|services\\.ts|app\\.ts|context\\.ts|main\\.ts|schema\\.ts|ops/)" },
    },
    {
      name: "config-is-the-bottom",
      comment: "config.ts reads the environment; it imports nothing of the service.",
      severity: "error",
      from: { path: "^src/config\\.ts$" },
      to: { path: "^src/" },
    },
    {
      name: "modules-only-through-their-door",
      comment: "Another module is reached only through its index.ts (its front door), never its internals.",
      severity: "error",
      from: { path: "^src/modules/([^/]+)/" },
      to: { path: "^src/modules/[^/]+/", pathNot: ["^src/modules/$1/", "^src/modules/[^/]+/index\\.ts$"] },
    },
    {
      name: "outside-only-through-module-doors",
      comment: "The wiring and ops reach a module only through its index.ts. (Generated resolver types name the modules' record types: codegen.yml's mappers.)",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(modules/|generated/graphql\\.ts$)" },
      to: { path: "^src/modules/[^/]+/", pathNot: "^src/modules/[^/]+/index\\.ts$" },
    },
    {
      name: "prisma-only-in-stores",
      comment: "A module's store is its only door to the database: nothing else in a module imports the Prisma client. (Its audit, the invariant checks run by npm run audit, reads the same tables.)",
      severity: "error",
      from: { path: "^src/modules/", pathNot: "\\.(store|audit)\\.ts$" },
      to: { path: "^src/generated/prisma/|@prisma/client" },
    },
    {
      name: "resolvers-call-services",
      comment: "Resolvers translate: they reach services through the request context, never a store or the database.",
      severity: "error",
      from: { path: "\\.resolvers\\.ts$" },
      to: { path: "\\.store\\.ts$|^src/platform/database\\.ts$" },
    },
  ],
  options: {
    // The generated Prisma client stays in the graph (the rule above must see imports of it),
    // but its own thousands of internal imports are not followed.
    doNotFollow: { path: ["node_modules", "^src/generated/prisma/"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
