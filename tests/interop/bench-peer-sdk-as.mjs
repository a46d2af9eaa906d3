// Peer for bench/register.sh: the MCP TypeScript SDK's reference
// authorization server (its demo in-memory provider behind mcpAuthRouter),
// with its registration rate limit off so it is measured, not throttled.
// Keeps clients in memory only. Usage: node bench-peer-sdk-as.mjs PORT
import express from "express";
import { mcpAuthRouter } from "@modelcontextprotocol/sdk/server/auth/router.js";
import { DemoInMemoryAuthProvider } from "@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js";

const port = Number(process.argv[2] || 18490);
const issuerUrl = new URL(`http://127.0.0.1:${port}`);
const app = express();
app.use(
  mcpAuthRouter({
    provider: new DemoInMemoryAuthProvider(),
    issuerUrl,
    scopesSupported: ["mcp:read"],
    clientRegistrationOptions: { rateLimit: false },
  }),
);
app.listen(port, "127.0.0.1", () => console.log(`sdk-as listening on ${port}`));
