// One MCP tool call with the official SDK client: node mcp_call.mjs <url> <api key or ""> <tool>
// <json arguments>. Prints `RESULT <json of structuredContent>`; exits 1 on an error result
// and 2 when the connection is refused (the message says why, e.g. HTTP 401).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, key, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: key ? { headers: { Authorization: `Bearer ${key}` } } : undefined,
});
const client = new Client({ name: 'llmbox-e2e-call', version: '0.0.1' });
try {
  await client.connect(transport);
} catch (err) {
  console.log(`CONNECT FAILED ${err.name}: ${err.message}`);
  process.exit(2);
}
const result = await client.callTool({ name: tool, arguments: JSON.parse(args) }, undefined,
  { timeout: 300_000, resetTimeoutOnProgress: true });
if (result.isError) {
  console.log(`ERROR ${JSON.stringify(result.content)}`);
  process.exit(1);
}
console.log(`RESULT ${JSON.stringify(result.structuredContent)}`);
await client.close();
