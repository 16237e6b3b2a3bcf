// The official MCP TypeScript SDK client against a running llmbox hub: initialize, list the
// tools, and take one box through create -> get -> logs -> exec -> destroy over streamable HTTP.
// Usage: node mcp_client_e2e.mjs <mcp url> <box id> [api key]
// Prints every tool result as one line `RESULT <json>` (the C++ test searches them for secrets)
// and exits non-zero with a message on the first broken expectation.
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, boxId, key] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: key ? { headers: { Authorization: `Bearer ${key}` } } : undefined,
});
const client = new Client({ name: 'llmbox-e2e', version: '0.0.1' });
const show = (what, value) => console.log(`RESULT ${what} ${JSON.stringify(value)}`);

await client.connect(transport);
assert.equal(client.getServerVersion().name, 'llmbox');
assert.ok(transport.sessionId, 'the hub issues a session id');
show('protocol', transport.protocolVersion ?? null);

const { tools } = await client.listTools();
const names = tools.map((t) => t.name);
assert.deepEqual(names, ['create_llmbox', 'get_llmbox', 'list_llmboxes', 'destroy_llmbox',
  'get_llmbox_logs', 'exec_llmbox', 'set_llmbox_network', 'list_spokes']);
const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
assert.equal(byName.destroy_llmbox.annotations.destructiveHint, true);
assert.equal(byName.get_llmbox.annotations.readOnlyHint, true);
show('tools', names);

const progress = [];
const created = await client.callTool(
  { name: 'create_llmbox', arguments: { box_id: boxId, description: 'e2e box' } }, undefined,
  { onprogress: (p) => progress.push(p), timeout: 300_000, resetTimeoutOnProgress: true });
show('create', created);
assert.ok(!created.isError, `create failed: ${JSON.stringify(created.content)}`);
const box = created.structuredContent;
assert.equal(box.box_id, boxId);
assert.equal(box.status, 'pending');
assert.equal(box.spoke, 'local');
assert.match(box.auth_url, /\/auth\/[A-Za-z0-9_-]{40,}$/);
assert.ok(progress.length >= 1, 'create_llmbox sends progress over SSE');
assert.ok(Date.parse(box.expires_at) > Date.now(), 'a pending box says when it expires');
show('progress', progress);

const got = await client.callTool({ name: 'get_llmbox', arguments: { box_id: boxId } });
show('get', got);
assert.equal(got.structuredContent.status, 'pending');
assert.equal(got.structuredContent.description, 'e2e box');
// The box's network, asked of its spoke live.
assert.ok(['none', 'allowlist', 'open'].includes(got.structuredContent.network?.mode),
  `get_llmbox shows the box's network: ${JSON.stringify(got.structuredContent.network)}`);
assert.ok(Array.isArray(got.structuredContent.network.refusals));

const listed = await client.callTool({ name: 'list_llmboxes', arguments: { status: 'pending' } });
show('list', listed);
assert.ok(listed.structuredContent.boxes.some((b) => b.box_id === boxId));

const spokes = await client.callTool({ name: 'list_spokes', arguments: {} });
show('spokes', spokes);
assert.equal(spokes.structuredContent.spokes[0].connected, true);

const logs = await client.callTool({ name: 'get_llmbox_logs', arguments: { box_id: boxId, tail: 50 } });
show('logs', logs);
assert.ok(!logs.isError);
assert.equal(typeof logs.structuredContent.logs, 'string');

const exec = await client.callTool({ name: 'exec_llmbox', arguments: {
  box_id: boxId, command: ['sh', '-c', 'echo hello; echo oops >&2; exit 3'], timeout_s: 30 } });
show('exec', exec);
assert.equal(exec.structuredContent.exit_code, 3);
assert.equal(exec.structuredContent.stdout, 'hello\n');
assert.equal(exec.structuredContent.stderr, 'oops\n');

// A network change: applied, or refused by the spoke in its own words (its policy, or a spoke
// whose box manager does not change networks yet); never refused for its shape by the hub.
const network = await client.callTool({ name: 'set_llmbox_network', arguments: {
  box_id: boxId, add: ['pypi.org'] } });
show('set_network', network);
assert.ok(!network.isError, `set_llmbox_network failed: ${JSON.stringify(network.content)}`);
assert.ok(network.structuredContent.network.allow.includes('pypi.org'));

const duplicate = await client.callTool({ name: 'create_llmbox', arguments: { box_id: boxId } });
show('duplicate', duplicate);
assert.equal(duplicate.isError, true);

let unknownTool;
try {
  await client.callTool({ name: 'no_such_tool', arguments: {} });
} catch (err) {
  unknownTool = err;
}
assert.equal(unknownTool?.code, -32602);

const destroyed = await client.callTool({ name: 'destroy_llmbox', arguments: { box_id: boxId } });
show('destroy', destroyed);
assert.deepEqual(destroyed.structuredContent, { destroyed: boxId });
const gone = await client.callTool({ name: 'get_llmbox', arguments: { box_id: boxId } });
show('gone', gone);
assert.equal(gone.isError, true);

await client.ping();
await transport.terminateSession();
await client.close();
console.log('OK');
