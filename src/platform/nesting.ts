// How deeply a request nests, measured without recursion, so that a document or variables
// nested thousands of levels deep are refused with a clear message before any recursive code
// (graphql-js's parser, variable coercion) can overflow the stack on them.

const opening = new Set(["{", "[", "("]);
const closing = new Set(["}", "]", ")"]);

/**
 * The deepest bracket nesting of a GraphQL document or a JSON text, outside strings (and, in
 * GraphQL, block strings and comments). Unbalanced brackets are the parser's business.
 */
export function textNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index]!;
    if (character === '"') index = endOfString(text, index);
    else if (character === "#") index = endOfLine(text, index);
    else if (opening.has(character)) deepest = Math.max(deepest, (depth += 1));
    else if (closing.has(character)) depth = Math.max(0, depth - 1);
  }
  return deepest;
}

/** The index of the last character of the string (or block string) that starts at `start`. */
function endOfString(text: string, start: number): number {
  if (text.startsWith('"""', start)) {
    for (let index = start + 3; index < text.length; index += 1) {
      if (text[index] === "\\" && text.startsWith('\\"""', index)) index += 3;
      else if (text.startsWith('"""', index)) return index + 2;
    }
    return text.length;
  }
  for (let index = start + 1; index < text.length; index += 1) {
    if (text[index] === "\\") index += 1;
    else if (text[index] === '"' || text[index] === "\n") return index;
  }
  return text.length;
}

function endOfLine(text: string, start: number): number {
  const newline = text.indexOf("\n", start);
  return newline === -1 ? text.length : newline;
}

/** The nesting depth of a parsed JSON value (a scalar is 0, `{}` and `[]` are 1). */
export function valueNestingDepth(value: unknown): number {
  let deepest = 0;
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (pending.length > 0) {
    const next = pending.pop()!;
    if (next.value === null || typeof next.value !== "object") continue;
    const depth = next.depth + 1;
    deepest = Math.max(deepest, depth);
    for (const nested of Object.values(next.value)) pending.push({ value: nested, depth });
  }
  return deepest;
}
