// The staff console: GraphiQL served by the API itself at GET /graphql for browsers. The page
// is self-contained (scripts and styles inline, from @graphql-yoga/render-graphiql), so it
// works with no internet access; the headers editor opens with a place for the bearer token.
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import type { NextFunction, Request, Response } from "express";

const exampleQuery = `# Paste a staff token into the Authorization header below (npm run token -- staff <name>),
# then run this search. The Docs panel on the left browses the schema.
query FindCustomer($query: String!) {
  searchCustomers(query: $query, first: 10) {
    edges {
      node {
        id
        email
        tier
        balance { secondsRemaining hoursRemaining secondsReserved }
        license { key status maxDevices devices { name lastSeenAt } }
      }
    }
  }
}`;

export function playgroundPage(): string {
  return renderGraphiQL({
    title: "Splice support console",
    endpoint: "/graphql",
    defaultQuery: exampleQuery,
    headers: JSON.stringify({ Authorization: "Bearer <paste a staff token here>" }, null, 2),
    defaultEditorToolsVisibility: "headers",
    shouldPersistHeaders: true,
  });
}

/** GET /graphql from a browser (it accepts text/html) gets the console; everything else goes on to the API. */
export function playgroundMiddleware() {
  let page: string | undefined;
  return (request: Request, response: Response, next: NextFunction) => {
    if (request.method !== "GET" || !request.accepts("html") || request.accepts(["application/json", "html"]) !== "html") {
      next();
      return;
    }
    page ??= playgroundPage();
    // The page's scripts and styles are inline: a policy for this page alone allows them and
    // nothing from elsewhere.
    response.setHeader(
      "Content-Security-Policy",
      "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'",
    );
    response.type("html").send(page);
  };
}
