// The official MCP SDK client through the TLS front (deploy/nginx/llmbox-hub.conf) over HTTPS:
// a create whose progress notifications must arrive while it runs (an unbuffered event
// stream), and a code submitted to the activation page with forged forwarding headers.
// Usage: NODE_EXTRA_CA_CERTS=<the front's certificate> node tls_front.mjs <https mcp url> <box id>
// Prints STEP lines and `TLS FRONT OK`; exits non-zero on the first broken expectation.
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, boxId] = process.argv.slice(2);
assert.ok(url.startsWith('https://'), `the front is HTTPS: ${url}`);
const step = (text) => console.log(`STEP ${text}`);

async function connect(name) {
  const client = new Client({ name, version: '0.0.1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}
const chatbot = await connect('llmbox-tls-front');
const watcher = await connect('llmbox-tls-front-watcher');
step('both clients connected over HTTPS');

// At the first progress notification, a second client asks for the box: if the front buffered
// the event stream, the notification would arrive with the result, after the create ended.
let progress = 0;
let during = null;
const created = await chatbot.callTool(
  { name: 'create_llmbox', arguments: { box_id: boxId } }, undefined,
  {
    onprogress: () => {
      progress += 1;
      during ??= watcher.callTool({ name: 'get_llmbox', arguments: { box_id: boxId } });
    },
    timeout: 300_000, resetTimeoutOnProgress: true,
  });
assert.ok(!created.isError, `create failed: ${JSON.stringify(created.content)}`);
assert.ok(progress >= 1, 'create_llmbox sent progress through the front');
const seen = await during;
const statusDuring = seen.isError ? JSON.stringify(seen.content) : seen.structuredContent.status;
step(`${progress} progress notifications; get_llmbox at the first said ${statusDuring}`);
assert.equal(statusDuring, 'creating', 'the first progress arrived while the create ran');
const box = created.structuredContent;
assert.equal(box.status, 'pending');
assert.ok(box.auth_url.startsWith(new URL(url).origin + '/auth/'),
  `the sign-in link is on the front: ${box.auth_url}`);

// A client that names other addresses in its own forwarding headers: the hub must act on (and
// log) the address the front saw, never these.
const forged = { 'X-Forwarded-For': '203.0.113.9', Forwarded: 'for=198.51.100.9' };
const page = await fetch(box.auth_url, { headers: forged });
assert.equal(page.status, 200);
const cookie = page.headers.get('set-cookie')?.match(/llmbox_browser=[A-Za-z0-9_-]+/)?.[0];
assert.ok(cookie, 'the page set its browser cookie');
const csrf = (await page.text()).match(/name="csrf" value="([^"]+)"/)?.[1];
assert.ok(csrf, 'the page has its CSRF field');
const posted = await fetch(box.auth_url, {
  method: 'POST', redirect: 'manual',
  headers: { ...forged, Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
  body: `csrf=${encodeURIComponent(csrf)}&code=wrong-code-tls-front`,
});
assert.equal(posted.status, 303);
step('a code was submitted with forged forwarding headers');

const destroyed = await chatbot.callTool({ name: 'destroy_llmbox', arguments: { box_id: boxId } });
assert.ok(!destroyed.isError, `destroy failed: ${JSON.stringify(destroyed.content)}`);
await chatbot.close();
await watcher.close();
console.log('TLS FRONT OK');
