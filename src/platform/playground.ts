// The staff console: GraphiQL served by the API itself at GET /graphql for browsers. The page
// is self-contained (scripts and styles inline, from @graphql-yoga/render-graphiql), so it
// works with no internet access. It is about 9 MB, so it is built and compressed once, sent
// gzip-encoded with an ETag (a browser revalidates and gets 304), and never hashed per request:
// anonymous page loads cost the API almost nothing.
import crypto from "node:crypto";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { NextFunction, Request, Response } from "express";

const gzip = promisify(zlib.gzip);

// Short lines: the hint must be readable in the editor pane at 1280 px. The search needs no
// variable, so the example runs on the first click once a token is in.
const exampleQuery = `# Staff token: npm run token -- staff NAME
# Paste it in Headers below, after Bearer.
# Run: Ctrl-Enter. Schema: Docs (left).
query FindCustomer {
  searchCustomers(query: "@", first: 10) {
    edges {
      node {
        id
        email
        tier
        balance { secondsRemaining hoursRemaining }
        license { key status maxDevices }
      }
    }
  }
}`;

const tokenPlaceholder = JSON.stringify({ Authorization: "Bearer <paste a staff token here>" }, null, 2);

// GraphiQL keeps tabs and headers in localStorage; pointing it at sessionStorage keeps the
// staff token for this tab only, gone when the tab closes.
const tabScopedStorage = `<script>try{Object.defineProperty(window,"localStorage",{value:window.sessionStorage,configurable:true})}catch(e){}</script>`;

/** The console's page. Its renderer (about 9 MB of GraphiQL) loads on the first request, not at every start. */
async function playgroundPage(): Promise<string> {
  const { renderGraphiQL } = await import("@graphql-yoga/render-graphiql");
  const page = renderGraphiQL({
    title: "Splice support console",
    endpoint: "/graphql",
    defaultQuery: exampleQuery,
    headers: tokenPlaceholder,
    defaultEditorToolsVisibility: "headers",
    shouldPersistHeaders: true,
  });
  return page.replace("<head>", `<head>${tabScopedStorage}`);
}

interface ConsoleAssets {
  etag: string;
  gzipped: Buffer;
  plain: Buffer;
}

async function buildAssets(): Promise<ConsoleAssets> {
  const plain = Buffer.from(await playgroundPage());
  const gzipped = await gzip(plain, { level: zlib.constants.Z_BEST_COMPRESSION });
  return { etag: crypto.createHash("sha256").update(plain).digest("base64url").slice(0, 27), gzipped, plain };
}

// The page's scripts and styles are inline: a policy for this page alone allows them and
// nothing from elsewhere.
const contentSecurityPolicy =
  "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'";

/** GET /graphql from a browser (it accepts text/html) gets the console; everything else goes on to the API. */
export function playgroundMiddleware(enabled: boolean) {
  let assets: Promise<ConsoleAssets> | undefined;
  return async (request: Request, response: Response, next: NextFunction) => {
    if (!enabled || request.method !== "GET" || !request.accepts("html") || request.accepts(["application/json", "html"]) !== "html") {
      next();
      return;
    }
    // A failed build is not kept: the next request tries again.
    assets ??= buildAssets().catch((error: unknown) => {
      assets = undefined;
      throw error;
    });
    const { etag, gzipped, plain } = await assets;
    // Each encoding is its own representation, with its own strong ETag.
    const compressed = request.acceptsEncodings("gzip") === "gzip";
    const representationTag = compressed ? `"${etag}-gzip"` : `"${etag}"`;
    response.setHeader("Content-Security-Policy", contentSecurityPolicy);
    response.setHeader("ETag", representationTag);
    response.setHeader("Cache-Control", "no-cache");
    // The same URL answers JSON to API clients: caches must key on Accept as well.
    response.setHeader("Vary", "Accept, Accept-Encoding");
    if (request.header("if-none-match") === representationTag) {
      response.status(304).end();
      return;
    }
    response.type("html");
    if (compressed) response.setHeader("Content-Encoding", "gzip");
    response.end(compressed ? gzipped : plain);
  };
}
