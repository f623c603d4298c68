// What every resolver receives: who is calling and the services that do the work.
import type { Caller } from "./platform/auth";
import type { Services } from "./services";

export interface RequestContext {
  caller: Caller;
  services: Services;
  requestId: string;
  /** The client's address (behind trusted proxies: from X-Forwarded-For), for rate limits. */
  clientAddress: string;
  /** Fields added to this request's log line (operation, outcome, caller). */
  logFields: Record<string, unknown>;
}
