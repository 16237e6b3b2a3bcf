// Bad input against a running hub, each with the status and message it must get.
// Usage: node bad_input.mjs <mcp url> <api key>. Prints one line per case; exits 1 on the first
// wrong answer.
import assert from 'node:assert/strict';

const [url, key] = process.argv.slice(2);
const auth = { Authorization: `Bearer ${key}` };
const json = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const rpc = (method, params = {}, id = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, params });

async function post(body, headers = {}) {
  const response = await fetch(url, { method: 'POST', headers: { ...json, ...auth, ...headers }, body });
  const text = await response.text();
  return { status: response.status, text, headers: response.headers };
}

async function expectStatus(name, promise, status, pattern) {
  const r = await promise;
  assert.equal(r.status, status, `${name}: got ${r.status} ${r.text}`);
  if (pattern) assert.match(r.text, pattern, `${name}: ${r.text}`);
  console.log(`ok ${name}: ${r.status} ${r.text.slice(0, 120)}`);
  return r;
}

// Health endpoints answer without a key.
const origin = new URL(url).origin;
const healthz = await fetch(`${origin}/healthz`);
assert.equal(healthz.status, 200);
assert.equal(await healthz.text(), 'ok\n');
const readyz = await fetch(`${origin}/readyz`);
assert.equal(readyz.status, 200);
assert.match(await readyz.text(), /^local: ok$/m);
console.log('ok /healthz and /readyz');

// A session to use for tool calls.
const init = await expectStatus('initialize', post(rpc('initialize', {
  protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bad-input', version: '1' } })), 200);
const session = init.headers.get('mcp-session-id');
assert.ok(session);
const s = { 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25' };

async function toolError(name, args, pattern) {
  const r = await post(rpc('tools/call', { name, arguments: args }), { ...s, Accept: 'application/json' });
  assert.equal(r.status, 200, r.text);
  const result = JSON.parse(r.text).result;
  assert.equal(result.isError, true, r.text);
  assert.match(result.content[0].text, pattern);
  console.log(`ok ${name} ${JSON.stringify(args)}: isError "${result.content[0].text}"`);
}

await expectStatus('malformed JSON', post('{"jsonrpc": "2.0", "id": 1, "method": ', s), 400, /-32700/);
await expectStatus('nesting 100,000 deep', post('['.repeat(100000) + ']'.repeat(100000), s), 400, /nested deeper/);
await expectStatus('wrong content type', post(rpc('ping'), { ...s, 'Content-Type': 'text/plain' }), 415, /Content-Type/);
await expectStatus('unsupported protocol version', post(rpc('ping'), { ...s, 'MCP-Protocol-Version': '2023-01-01' }), 400, /Unsupported protocol version/);
await expectStatus('bad Origin', post(rpc('ping'), { ...s, Origin: 'http://evil.example.com' }), 403, /Origin/);
await expectStatus('unknown session', post(rpc('ping'), { ...s, 'Mcp-Session-Id': 's1.forged.1.00000000000000000000000000000000' }), 404, /Session not found/);
await expectStatus('missing API key', fetch(url, { method: 'POST', headers: json, body: rpc('ping') })
  .then(async (r) => ({ status: r.status, text: await r.text() + ' ' + r.headers.get('www-authenticate') })), 401, /Bearer/);
await expectStatus('unknown API key', post(rpc('ping'), { ...s, Authorization: 'Bearer llmbox_not-a-key' }), 401, /unknown or revoked/);
await expectStatus('GET', fetch(url, { headers: { ...auth, Accept: 'text/event-stream' } })
  .then(async (r) => ({ status: r.status, text: await r.text() })), 405);
await toolError('create_llmbox', { box_id: 'Not_A_Hostname!' }, /box id/);
await toolError('create_llmbox', { box_id: 'fine-id', spoke: 'nowhere' }, /unknown spoke "nowhere"/);
await toolError('get_llmbox', { box_id: 'no-such-box' }, /no box "no-such-box"/);
await toolError('exec_llmbox', { box_id: 'no-such-box', command: [] }, /command: must have at least 1 items/);
await toolError('get_llmbox', { box_id: 5 }, /box_id: must be a string/);

// Last: the server may close the connection after answering 413 before the upload ends.
const big = '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + 'x'.repeat(10 << 20) + '"}}';
let bigStatus;
try {
  bigStatus = (await post(big, s)).status;
} catch (err) {
  bigStatus = `connection error: ${err.cause?.code ?? err.message}`;
}
assert.equal(bigStatus, 413, `a 10 MB body: ${bigStatus}`);
console.log('ok a 10 MB body: 413');
console.log('ALL OK');
