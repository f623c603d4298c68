// What every resolver receives: who is calling and the services that do the work.
import type { Caller } from "./platform/auth";
import type { Services } from "./services";

export interface RequestContext {
  caller: Caller;
  services: Services;
  requestId: string;
}
