import { textNestingDepth, valueNestingDepth } from "../../src/platform/nesting";

describe("textNestingDepth", () => {
  it.each([
    ["", 0],
    ["{ me { id } }", 2],
    ['{ f(a: [[1], {b: [2]}]) }', 5],
    ['{ f(a: "[[[[{{{") }', 2],
    ['{ f(a: "\\"[[[") }', 2],
    ['{ f(a: """ [[[ \\""" {{{ """) }', 2],
    ["# [[[[[[\n{ me }", 1],
    ['{"a":{"b":[1,[2]]}}', 4],
    ["]]]{", 1],
  ])("%j nests %i levels", (text, depth) => {
    expect(textNestingDepth(text)).toBe(depth);
  });

  it("measures 100,000 levels without recursion", () => {
    expect(textNestingDepth("[".repeat(100_000) + "]".repeat(100_000))).toBe(100_000);
  });
});

describe("valueNestingDepth", () => {
  it.each([
    [null, 0],
    ["x", 0],
    [{}, 1],
    [{ a: [1, { b: 2 }] }, 3],
    [[[], [[[]]]], 4],
  ])("%j nests %i levels", (value, depth) => {
    expect(valueNestingDepth(value)).toBe(depth);
  });

  it("measures 100,000 levels without recursion", () => {
    let value: unknown = "x";
    for (let level = 0; level < 100_000; level += 1) value = { a: value };
    expect(valueNestingDepth(value)).toBe(100_000);
  });
});
