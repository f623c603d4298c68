// The contract's scalars. graphql-scalars 2.0 coerces PositiveInt and NonNegativeInt loosely
// (1.5 becomes 1, "100" becomes 100, 2^40 passes), which must never happen to an amount of
// seconds. These accept exactly what GraphQL's Int accepts (32-bit integers, no strings),
// then check the sign.
import { GraphQLError, GraphQLInt, GraphQLScalarType, type ValueNode } from "graphql";
import { DateTimeResolver } from "graphql-scalars";

function strictInt(name: string, description: string, minimum: number): GraphQLScalarType<number, number> {
  const checked = (value: number): number => {
    if (value < minimum) throw new GraphQLError(`${name} must be at least ${minimum}, got ${value}`);
    return value;
  };
  return new GraphQLScalarType<number, number>({
    name,
    description,
    serialize: (value) => checked(GraphQLInt.serialize(value)),
    parseValue: (value) => checked(GraphQLInt.parseValue(value)),
    parseLiteral: (literal: ValueNode) => checked(GraphQLInt.parseLiteral(literal, undefined)),
  });
}

export const scalarResolvers = {
  DateTime: DateTimeResolver,
  PositiveInt: strictInt("PositiveInt", "An integer of at least 1 (32-bit).", 1),
  NonNegativeInt: strictInt("NonNegativeInt", "An integer of at least 0 (32-bit).", 0),
};
