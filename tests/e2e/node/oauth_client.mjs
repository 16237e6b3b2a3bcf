// The official MCP TypeScript SDK client connecting to the hub with OAuth, the way an MCP client
// with a browser does: discovery from the 401, dynamic registration (RFC 7591), authorize with
// PKCE, the person's sign-in and consent in a real browser (Debian's Chromium driven by
// playwright-core), the code caught on a loopback redirect (RFC 8252) and exchanged with
// transport.finishAuth, then MCP tool calls as that person.
//
//   node oauth_client.mjs <mode> <mcp url> --state <file> [--sign-in oidc:<login> | key]
//        [--artifacts <dir>] [mode arguments]
//
// --state     a JSON file holding what an OAuthClientProvider keeps (the registered client, the
//             tokens, the PKCE verifier) and the last authorization code, so several runs (and
//             the C++ test) share one person's session. Created when missing.
// --sign-in   how the person signs in when the hub asks for it: `oidc:<login>` at
//             oidc_provider.mjs's login form, or `key` on the hub's key page with the API key
//             in the environment variable LLMBOX_API_KEY (never on the command line). Without
//             it, a run that needs a sign-in fails ("AUTHORIZATION REQUIRED").
// --artifacts screenshots of the sign-in and consent pages go there.
// --client-name the name the consent page must show (ours unless the client is another's:
//             browse).
//
// Modes:
//   life <box id>          a whole box life: create (with progress), get, list, exec, destroy;
//                          RESULT lines as mcp_client_e2e.mjs prints them
//   call <tool> <json>     one tool call: `RESULT <structuredContent>`, exit 1 with
//                          `ERROR <content>` on an error result
//   expiry                 one call, then a wait past the access token's expiry (expires_in),
//                          then another call: the SDK must meet the 401, refresh (rotating the
//                          refresh token) and retry; prints `REFRESHED`
//   revoke <go file>       one call, `PAUSED`, a wait until <go file> exists (the test revokes
//                          meanwhile), then a call on the same MCP session that must be refused:
//                          401 invalid_token, the refresh refused with invalid_grant, and a new
//                          authorization asked for; prints `REVOKED`
//   browse <authorize url> <redirect prefix>
//                          only the browser: sign in and consent at <authorize url> and stop at
//                          the redirect to <redirect prefix> (a client that is not ours listens
//                          there: the conformance suite); prints `REDIRECTED <url>`
//
// Every OAuth request the SDK makes is printed as `HTTP <method> <path> [grant_type] -> <status>
// [error]` (never a body, token or code); a 401 from the MCP endpoint with its WWW-Authenticate.
// Exits non-zero with a message on the first broken expectation; prints OK at the end.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { chromium } from 'playwright-core';

const CLIENT_NAME = 'llmbox e2e SDK client';

function parseArgs(argv) {
  const args = { positional: [], state: '', signIn: '', artifacts: '', clientName: CLIENT_NAME };
  const flags = { '--state': 'state', '--sign-in': 'signIn', '--artifacts': 'artifacts',
    '--client-name': 'clientName' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag in flags) {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      args[flags[flag]] = value;
    } else {
      args.positional.push(flag);
    }
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const [mode, ...rest] = args.positional;
const step = (text) => console.log(`STEP ${text}`);
const show = (what, value) => console.log(`RESULT ${what} ${JSON.stringify(value)}`);

// --- What the SDK sends, logged without secrets ---

const OAUTH_PATHS = ['/register', '/token', '/revoke', '/.well-known/'];
const httpLog = [];

async function loggingFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
  const response = await fetch(input, init);
  const oauth = OAUTH_PATHS.some((p) => url.pathname.startsWith(p));
  if (!oauth && response.status !== 401) return response;
  let line = `${method} ${url.pathname}`;
  if (url.pathname === '/token' && typeof init?.body !== 'undefined') {
    line += ` ${new URLSearchParams(String(init.body)).get('grant_type')}`;
  }
  line += ` -> ${response.status}`;
  if (response.status >= 400 && oauth) {
    const body = await response.clone().text();
    try {
      line += ` ${JSON.parse(body).error}`;
    } catch {
      line += ' (not JSON)';
    }
  }
  if (response.status === 401 && !oauth) {
    line += ` WWW-Authenticate: ${response.headers.get('www-authenticate')}`;
  }
  httpLog.push(line);
  console.log(`HTTP ${line}`);
  return response;
}

// --- The loopback redirect (RFC 8252 §7.3) ---

// Listens on 127.0.0.1 (an ephemeral port) for the browser's redirect and answers it with a
// page that says the sign-in is done (the code is read from the browser's navigation).
function startCallbackServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!DOCTYPE html><title>Signed in</title><p id="done">You may close this window.</p>');
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, url: `http://127.0.0.1:${server.address().port}/callback` });
    });
  });
}

// --- The browser: sign-in and consent ---

let browser;
async function browserPage() {
  browser ??= await chromium.launch({
    executablePath: process.env.LLMBOX_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`BROWSER ERROR ${e}`));
  return page;
}

async function shoot(page, name) {
  if (!args.artifacts) return;
  fs.mkdirSync(args.artifacts, { recursive: true });
  await page.screenshot({ path: `${args.artifacts}/${name}.png`, fullPage: true });
}

// Takes the browser from `authorizeUrl` through sign-in and consent until it is sent to a URL
// starting with `redirectPrefix`; returns that URL.
async function signInAndConsent(authorizeUrl, redirectPrefix) {
  assert.ok(args.signIn, 'AUTHORIZATION REQUIRED: the hub asks for a sign-in and no --sign-in was given');
  const page = await browserPage();
  const hubOrigin = new URL(authorizeUrl).origin;
  let redirected = '';
  page.on('request', (request) => {
    if (request.isNavigationRequest() && request.url().startsWith(redirectPrefix)) {
      redirected = request.url();
    }
  });
  const response = await page.goto(authorizeUrl, { waitUntil: 'load' });
  step(`authorize page: HTTP ${response?.status()} at ${new URL(page.url()).origin === hubOrigin ? 'the hub' : 'the provider'}`);
  for (let i = 0; i < 10 && !redirected; i++) {
    const at = new URL(page.url());
    const onHub = at.origin === hubOrigin;
    const click = async (selector) => {
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load', timeout: 60_000 }),
        page.click(selector),
      ]);
    };
    if (!onHub && await page.locator('input[name=login]').count()) {
      assert.ok(args.signIn.startsWith('oidc:'), `the provider's login form, but --sign-in ${args.signIn}`);
      await shoot(page, 'provider-login');
      await page.fill('input[name=login]', args.signIn.slice(5));
      await page.fill('input[name=password]', 'any-password');
      await click('button[type=submit]');
      step(`signed in at the provider as ${args.signIn.slice(5)}`);
    } else if (onHub && await page.locator('input[name=api_key]').count()) {
      assert.equal(args.signIn, 'key', 'the hub\'s key page, but not --sign-in key');
      assert.equal(await page.locator('input[name=api_key]').getAttribute('type'), 'password');
      const key = process.env.LLMBOX_API_KEY;
      assert.ok(key, 'LLMBOX_API_KEY is not set');
      await shoot(page, 'key-sign-in');
      await page.fill('input[name=api_key]', key);
      await click('form:has(input[name=api_key]) button[type=submit], form:has(input[name=api_key]) button:not([type])');
      assert.ok(!(await page.content()).includes(key), 'the page after the key sign-in shows the key');
      step('signed in on the hub with an API key');
    } else if (onHub && await page.locator('button[name=decision][value=allow]').count()) {
      const text = await page.locator('body').innerText();
      assert.ok(text.includes(args.clientName), `the consent page names the client: ${text}`);
      assert.ok(text.includes('127.0.0.1'), `the consent page names the redirect host: ${text}`);
      assert.equal(await page.locator('button[name=decision][value=deny]').count(), 1);
      // Allow arms only a moment after the page shows (double-click jacking): the browser runs
      // the hub's stylesheet's arming animation on it, hidden until it ends.
      const arming = await page.locator('button[name=decision][value=allow]').evaluate((b) => {
        const style = getComputedStyle(b);
        return `${style.animationName} ${style.animationDuration}`;
      });
      assert.equal(arming, 'llmbox-arm 0.6s', `the Allow button's animation: ${arming}`);
      step('Allow arms after 0.6 s (llmbox-arm)');
      await shoot(page, 'consent');
      step('consent page names the client and its redirect host; Allow');
      await Promise.all([
        page.waitForRequest((r) => r.url().startsWith(redirectPrefix), { timeout: 60_000 }),
        page.click('button[name=decision][value=allow]'),
      ]);
    } else {
      await shoot(page, 'unexpected');
      throw new Error(`unexpected page at ${at.origin}${at.pathname} (HTTP): ${(await page.locator('body').innerText()).slice(0, 1500)}`);
    }
  }
  assert.ok(redirected, 'the browser was never sent to the redirect URI');
  await page.context().close();
  return redirected;
}

// --- The OAuthClientProvider, its state in a file ---

class FileOAuthProvider {
  constructor(file, redirectUrl) {
    this.file = file;
    this._redirectUrl = redirectUrl;
    this.interactive = true;
    this.authorizationsAsked = 0;
    this.data = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  }
  save() {
    fs.writeFileSync(this.file, JSON.stringify(this.data, null, 1), { mode: 0o600 });
  }
  get redirectUrl() { return this._redirectUrl; }
  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this.data.state = crypto.randomBytes(16).toString('base64url');
    this.save();
    return this.data.state;
  }
  clientInformation() { return this.data.client; }
  saveClientInformation(client) {
    this.data.client = client;
    this.save();
    step(`registered: client ${client.client_id.length} characters, issued at ${client.client_id_issued_at}`);
  }
  tokens() { return this.data.tokens; }
  saveTokens(tokens) {
    this.data.previous_tokens = this.data.tokens;
    this.data.tokens = tokens;
    this.data.tokens_saved_at = Date.now();
    this.save();
    step(`tokens saved: expires_in ${tokens.expires_in}, scope ${tokens.scope}, refresh token ${tokens.refresh_token ? 'yes' : 'no'}`);
  }
  saveCodeVerifier(verifier) {
    this.data.code_verifier = verifier;
    this.save();
  }
  codeVerifier() { return this.data.code_verifier; }
  invalidateCredentials(scope) {
    console.log(`INVALIDATE ${scope}`);
    if (scope === 'all' || scope === 'client') delete this.data.client;
    if (scope === 'all' || scope === 'tokens') {
      // Kept aside (not offered to the SDK) so the test can look for them in the hub's log.
      if (this.data.tokens) this.data.invalidated_tokens = this.data.tokens;
      delete this.data.tokens;
    }
    if (scope === 'all' || scope === 'verifier') delete this.data.code_verifier;
    this.save();
  }
  async redirectToAuthorization(authorizationUrl) {
    this.authorizationsAsked++;
    const url = new URL(authorizationUrl);
    const params = url.searchParams;
    step(`authorize at ${url.origin}${url.pathname}: response_type ${params.get('response_type')}, ` +
         `code_challenge_method ${params.get('code_challenge_method')}, resource ${params.get('resource')}, ` +
         `scope ${params.get('scope')}`);
    assert.equal(params.get('code_challenge_method'), 'S256');
    if (!this.interactive) {
      console.log('AUTHORIZATION REQUIRED');
      return;
    }
    const redirected = new URL(await signInAndConsent(url.toString(), this._redirectUrl));
    step(`redirected back with ${[...redirected.searchParams.keys()].join(', ')}`);
    assert.equal(redirected.searchParams.get('state'), this.data.state, 'state comes back unchanged');
    assert.equal(redirected.searchParams.get('iss'), url.origin, 'iss names the hub (RFC 9207)');
    this.data.code = redirected.searchParams.get('code');
    this.save();
  }
}

// --- MCP ---

async function connect(provider) {
  const makeTransport = () => new StreamableHTTPClientTransport(new URL(mcpUrl),
    { authProvider: provider, fetch: loggingFetch });
  let transport = makeTransport();
  let client = new Client({ name: 'llmbox-e2e-oauth', version: '0.0.1' });
  try {
    await client.connect(transport);
    step('connected with the saved tokens');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    assert.ok(provider.data.code, `no authorization code after the sign-in (${err.message})`);
    await transport.finishAuth(provider.data.code);
    step('finishAuth exchanged the code');
    transport = makeTransport();
    client = new Client({ name: 'llmbox-e2e-oauth', version: '0.0.1' });
    await client.connect(transport);
    step('connected after the sign-in');
  }
  assert.equal(client.getServerVersion().name, 'llmbox');
  return { client, transport };
}

async function tool(client, name, toolArgs, options = {}) {
  return client.callTool({ name, arguments: toolArgs }, undefined,
    { timeout: 300_000, resetTimeoutOnProgress: true, ...options });
}

async function life(client, boxId) {
  const progress = [];
  const created = await tool(client, 'create_llmbox', { box_id: boxId, description: 'oauth e2e box' },
    { onprogress: (p) => progress.push(p) });
  show('create', created);
  assert.ok(!created.isError, `create failed: ${JSON.stringify(created.content)}`);
  assert.equal(created.structuredContent.status, 'pending');
  assert.ok(progress.length >= 1, 'create_llmbox sends progress');

  const got = await tool(client, 'get_llmbox', { box_id: boxId });
  show('get', got);
  assert.equal(got.structuredContent.status, 'pending');
  assert.equal(got.structuredContent.description, 'oauth e2e box');

  const listed = await tool(client, 'list_llmboxes', {});
  show('list', listed);
  assert.deepEqual(listed.structuredContent.boxes.map((b) => b.box_id), [boxId]);

  const exec = await tool(client, 'exec_llmbox',
    { box_id: boxId, command: ['sh', '-c', 'echo hello; exit 3'], timeout_s: 30 });
  show('exec', exec);
  assert.equal(exec.structuredContent.exit_code, 3);
  assert.equal(exec.structuredContent.stdout, 'hello\n');

  const destroyed = await tool(client, 'destroy_llmbox', { box_id: boxId });
  show('destroy', destroyed);
  assert.deepEqual(destroyed.structuredContent, { destroyed: boxId });
  const gone = await tool(client, 'get_llmbox', { box_id: boxId });
  show('gone', gone);
  assert.equal(gone.isError, true);
}

async function untilExists(file, limitMs) {
  const deadline = Date.now() + limitMs;
  while (!fs.existsSync(file)) {
    assert.ok(Date.now() < deadline, `${file} did not appear in ${limitMs} ms`);
    await sleep(50);
  }
}

const mcpUrl = rest[0];

async function main() {
  if (mode === 'browse') {
    const [authorizeUrl, redirectPrefix] = rest;
    assert.ok(authorizeUrl && redirectPrefix, 'browse <authorize url> <redirect prefix>');
    const redirected = await signInAndConsent(authorizeUrl, redirectPrefix);
    const url = new URL(redirected);
    console.log(`REDIRECTED ${url.origin}${url.pathname}?${[...url.searchParams.keys()].join('&')}`);
    return;
  }
  assert.ok(mcpUrl && args.state, 'usage: oauth_client.mjs <mode> <mcp url> --state <file> ...');
  const { server, url: redirectUrl } = await startCallbackServer();
  const provider = new FileOAuthProvider(args.state, redirectUrl);
  let client;
  try {
    let transport;
    ({ client, transport } = await connect(provider));
    // From here on a sign-in is a failure (or expected: revoke); count only those.
    provider.interactive = false;
    provider.authorizationsAsked = 0;
    if (mode === 'life') {
      await life(client, rest[1]);
    } else if (mode === 'call') {
      const result = await tool(client, rest[1], JSON.parse(rest[2] ?? '{}'));
      if (result.isError) {
        console.log(`ERROR ${JSON.stringify(result.content)}`);
        process.exitCode = 1;
        return;
      }
      console.log(`RESULT ${JSON.stringify(result.structuredContent)}`);
    } else if (mode === 'expiry') {
      show('list', await tool(client, 'list_llmboxes', {}));
      const before = provider.data.tokens;
      assert.ok(before.refresh_token, 'a refresh token was issued');
      const expiresAt = provider.data.tokens_saved_at + before.expires_in * 1000;
      assert.ok(before.expires_in <= 60, `a short access token for this test: ${before.expires_in} s`);
      step(`waiting ${expiresAt + 500 - Date.now()} ms for the access token to expire`);
      await sleep(Math.max(0, expiresAt + 500 - Date.now()));
      const refreshesBefore = httpLog.filter((l) => l.startsWith('POST /token refresh_token')).length;
      const after = await tool(client, 'list_llmboxes', {});
      show('list-after-expiry', after);
      assert.ok(!after.isError);
      assert.ok(httpLog.some((l) => l.startsWith('POST / -> 401') && l.includes('invalid_token')),
        'the expired token met a 401 with error="invalid_token"');
      const refreshes = httpLog.filter((l) => l.startsWith('POST /token refresh_token'));
      assert.equal(refreshes.length - refreshesBefore, 1, 'one refresh');
      assert.equal(refreshes.at(-1), 'POST /token refresh_token -> 200');
      const now = provider.data.tokens;
      assert.notEqual(now.access_token, before.access_token, 'a new access token');
      assert.ok(now.refresh_token && now.refresh_token !== before.refresh_token,
        'the refresh token rotated');
      assert.equal(provider.authorizationsAsked, 0, 'no new sign-in');
      console.log('REFRESHED');
    } else if (mode === 'revoke') {
      show('list', await tool(client, 'list_llmboxes', {}));
      const session = transport.sessionId;
      console.log('PAUSED');
      await untilExists(rest[1], 120_000);
      let refused;
      try {
        await tool(client, 'list_llmboxes', {});
      } catch (err) {
        refused = err;
      }
      assert.ok(refused, 'the call after the revocation was refused');
      step(`refused: ${refused.name}: ${refused.message}`);
      assert.equal(transport.sessionId, session, 'the same MCP session');
      assert.ok(httpLog.some((l) => l.startsWith('POST / -> 401') && l.includes('invalid_token')),
        'the revoked token met a 401 with error="invalid_token"');
      assert.ok(httpLog.includes('POST /token refresh_token -> 400 invalid_grant'),
        'the refresh was refused with invalid_grant');
      assert.equal(provider.authorizationsAsked, 1, 'a new authorization was asked for');
      console.log('REVOKED');
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } finally {
    await client?.close();
    server.close();
    await browser?.close();
  }
}

main().then(() => {
  if (!process.exitCode) console.log('OK');
  process.exit(process.exitCode ?? 0);
}, (err) => {
  console.log(`FAILED ${err.stack ?? err}`);
  process.exit(3);
});
