// Input checks shared by every module: pure, each limit passed in from configuration.
import { badInput, type Failure } from "./failures";

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type Check = Failure | undefined;

export const failureOf = (outcome: { failure: Failure }) => outcome.failure;

export function checkText(field: string, text: string | null | undefined, maxLength: number, required: boolean): Check {
  if (text === null || text === undefined) {
    return required ? failureOf(badInput(field, `${field} is required`)) : undefined;
  }
  if ((required && text.trim().length === 0) || text.length > maxLength) {
    return failureOf(badInput(field, `${field} must be ${required ? "1" : "0"} to ${maxLength} characters`));
  }
  return undefined;
}

export function firstFailure(...checks: Check[]): Check {
  return checks.find((check) => check !== undefined);
}
