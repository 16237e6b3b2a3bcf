// The activation page in a real browser (Debian's Chromium, driven by playwright-core), on a
// box made through the official MCP SDK client the way a chatbot makes one.
//
// Usage: node activation_browser.mjs <scenario> <mcp url> <docker socket> <box id> <artifacts dir>
//   flow      (stand-in claude) pending -> a refused code shows the box's own error -> a good
//             code -> ready with the session link; get_llmbox agrees; destroyed; unknown link
//   expired   (a hub whose spoke gives boxes a few seconds) the page says the link expired
//   real      (the real Claude binary) a submitted code shows the box's real error text
//   gated     (a hub with activation.oidc at oidc_provider.mjs) the sign-in page; alice signs
//             in through the provider's login form and owns the box; bob, in another
//             browser, is refused even with the link; an unverified email is refused; alice
//             activates the box and signs out
// Screenshots of every state at phone (390 px) and desktop (1280 px) width go to the artifacts
// dir as <state>-<phone|desktop>.png. Prints STEP lines; exits non-zero on a broken expectation.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [scenario, mcpUrl, dockerSock, boxId, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const step = (text) => console.log(`STEP ${text}`);
const widths = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 860 } };

// --- MCP, as a chatbot ---
const client = new Client({ name: 'llmbox-activation-e2e', version: '0.0.1' });
await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)));
async function tool(name, args) {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 300_000 });
  assert.ok(!result.isError, `${name} failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent;
}

// --- The engine, as independent evidence of what the box printed ---
function dockerGet(path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: dockerSock, path, method: 'GET' }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('latin1') }));
    });
    req.on('error', reject);
    req.end();
  });
}
async function consoleOf(id) {
  const filters = encodeURIComponent(JSON.stringify({ label: [`io.llmbox.box-id=${id}`] }));
  const listed = await dockerGet(`/containers/json?all=1&filters=${filters}`);
  const containers = JSON.parse(listed.body);
  assert.equal(containers.length, 1, `one container for box ${id}`);
  const logs = await dockerGet(`/containers/${containers[0].Id}/logs?stdout=1&stderr=1`);
  assert.equal(logs.status, 200);
  return logs.body;  // a TTY box: the raw console
}
// The authorize URLs the box printed, in order, from the OSC-8 hyperlinks' targets.
async function authorizeUrlsOf(id) {
  const urls = [...(await consoleOf(id)).matchAll(/\x1b\]8;;(https:\/\/claude\.(?:ai|com)\/[^\x07\x1b]*oauth\/authorize[^\x07\x1b]*)(?:\x07|\x1b\\)/g)]
    .map((m) => m[1]);
  assert.ok(urls.length > 0, 'the box printed an authorize URL');
  return urls;
}

// --- The browser ---
const browser = await chromium.launch({
  executablePath: process.env.LLMBOX_CHROMIUM || '/usr/bin/chromium',
  // LLMBOX_CHROMIUM_ARGS: more flags, e.g. the TLS front's test pinning its self-signed
  // certificate with --ignore-certificate-errors-spki-list.
  args: ['--no-sandbox', '--disable-dev-shm-usage',
    ...(process.env.LLMBOX_CHROMIUM_ARGS ?? '').split(' ').filter(Boolean)],
});
const context = await browser.newContext({ viewport: widths.desktop });
const consoleErrors = [];
function watch(p) {
  // A request Chromium cut because the host's interfaces changed (a box's bridge or veth came
  // or went on this host while the page polled) is the machine's, not a page error.
  p.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('net::ERR_NETWORK_CHANGED')) {
      consoleErrors.push(m.text());
    }
  });
  p.on('pageerror', (e) => consoleErrors.push(String(e)));
  return p;
}
const page = watch(await context.newPage());

async function shoot(state, p = page) {
  for (const [name, size] of Object.entries(widths)) {
    await p.setViewportSize(size);
    // Nothing may overflow sideways on a phone.
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${state} at ${name} width overflows by ${overflow}px`);
    await p.screenshot({ path: `${artifacts}/${state}-${name}.png`, fullPage: true });
  }
  await p.setViewportSize(widths.desktop);
  step(`screenshots of ${state}`);
}
const stateOf = (p = page) => p.locator('main').getAttribute('data-state');
const csrfOf = () => page.locator('input[name=csrf]').getAttribute('value');

async function submit(code, { shootWorking = false } = {}) {
  await page.fill('input[name=code]', code);
  if (shootWorking) {
    // Stop this one submission after the page's own handler ran, to see its "checking" state;
    // then send the form for real.
    await page.evaluate(() => {
      const form = document.querySelector('form.code-form');
      form.addEventListener('submit', (e) => e.preventDefault(), { once: true });
      form.querySelector('button[type=submit]').click();
    });
    assert.equal(await page.locator('button[type=submit]').isDisabled(), true);
    assert.match(await page.locator('button[type=submit]').innerText(), /Checking the code/);
    await shoot('working');
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'load', timeout: 120_000 }),
      page.evaluate(() => document.querySelector('form.code-form').submit()),
    ]);
  } else {
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'load', timeout: 120_000 }),
      page.click('button[type=submit]', { timeout: 120_000 }),
    ]);
  }
  // The page refreshes itself while the box works; wait (bounded) for a settled state.
  await page.waitForFunction(
    () => document.querySelector('main')?.dataset.state !== 'working', null, { timeout: 120_000 });
}

async function checkHeaders(response) {
  const h = response.headers();
  assert.match(h['content-security-policy'], /default-src 'self'/);
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['cache-control'], 'no-store');
}

// --- Sign-in gating (scenario gated) ---

// From the hub's sign-in page through the provider's login form as `login`; resolves at the
// first page back on the hub (the box's page, or the callback's refusal).
async function signInAs(p, login, hubOrigin) {
  await Promise.all([p.waitForNavigation(), p.click('a.sign-in-first')]);
  const at = new URL(p.url());
  assert.notEqual(at.origin, hubOrigin, `the sign-in link leads to the provider, not ${p.url()}`);
  assert.match(await p.locator('h1').innerText(), /Test provider sign-in/);
  await p.fill('input[name=login]', login);
  await p.fill('input[name=password]', 'any-password');
  await p.click('button[type=submit]');
  await p.waitForURL((u) => u.origin === hubOrigin, { waitUntil: 'load', timeout: 60_000 });
  step(`${login} signed in at the provider and is back at ${new URL(p.url()).pathname.replace(/[A-Za-z0-9_-]{43}/, '<token>')}`);
}

async function gated(authUrl) {
  const hubOrigin = new URL(authUrl).origin;
  const [signInUrl] = await authorizeUrlsOf(boxId);

  // Nobody signed in: the sign-in page, and nothing of the box's sign-in.
  let response = await page.goto(authUrl);
  assert.equal(response.status(), 200);
  await checkHeaders(response);
  assert.equal(await stateOf(), 'signin');
  assert.match(await page.locator('h1').innerText(), /Sign in to continue/);
  assert.equal(await page.locator('form.code-form').count(), 0);
  assert.equal(await page.locator('a.sign-in').count(), 0);
  assert.ok(!(await page.content()).includes('oauth/authorize'), 'no authorize URL before sign-in');
  await shoot('signin');

  // alice signs in first and owns the box: its page, her name, the box's own sign-in link.
  await signInAs(page, 'alice@example.com', hubOrigin);
  assert.equal(page.url(), authUrl);
  assert.equal(await stateOf(), 'pending');
  assert.match(await page.locator('.who').innerText(), /Signed in as\s+alice@example\.com/);
  assert.equal(await page.locator('a.sign-in').getAttribute('href'), signInUrl);
  const session = (await context.cookies()).find((c) => c.name === 'llmbox_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Lax' && !session.secure,
    `session cookie ${JSON.stringify(session)}`);
  assert.ok(!(await context.cookies()).some((c) => c.name === 'llmbox_oidc_state'),
    'the sign-in state cookie is spent');
  await shoot('pending-signed-in');

  // bob, in another browser, has the link too: refused, and nothing of the box is shown.
  const bobContext = await browser.newContext({ viewport: widths.desktop });
  const bob = watch(await bobContext.newPage());
  await bob.goto(authUrl);
  assert.equal(await stateOf(bob), 'signin');
  await signInAs(bob, 'bob@example.com', hubOrigin);
  assert.equal(bob.url(), authUrl);
  response = await bob.reload();
  assert.equal(response.status(), 403);
  await checkHeaders(response);
  assert.equal(await stateOf(bob), 'refused');
  assert.match(await bob.locator('h1').innerText(), /This box is not yours/);
  assert.match(await bob.locator('.who').innerText(), /Signed in as\s+bob@example\.com/);
  assert.equal(await bob.locator('form.code-form').count(), 0);
  const bobHtml = await bob.content();
  assert.ok(!bobHtml.includes('oauth/authorize') && !bobHtml.includes(boxId),
    'a refused person sees neither the sign-in link nor the box');
  await shoot('refused', bob);
  // A code bob posts anyway never reaches the box.
  const posted = await bobContext.request.post(authUrl, {
    form: { code: 'standin-ok-2468#state-abcdef', csrf: 'x' }, maxRedirects: 0 });
  assert.equal(posted.status(), 403);
  assert.equal((await tool('get_llmbox', { box_id: boxId })).status, 'pending');
  await bobContext.close();
  step('bob is refused and his code did not reach the box');

  // An account whose email is not verified is refused at the callback.
  const unverifiedContext = await browser.newContext({ viewport: widths.desktop });
  const unverified = watch(await unverifiedContext.newPage());
  await unverified.goto(authUrl);
  await signInAs(unverified, 'unverified@example.com', hubOrigin);
  assert.equal(new URL(unverified.url()).pathname, '/auth/oidc/callback');
  assert.equal(await stateOf(unverified), 'signin-failed');
  assert.match(await unverified.locator('h1').innerText(), /Sign-in failed/);
  assert.match(await unverified.locator('.notice[role=alert]').innerText(),
    /has not verified the email "unverified@example\.com"/);
  assert.ok(!(await unverifiedContext.cookies()).some((c) => c.name === 'llmbox_session'));
  await shoot('signin-failed', unverified);
  await unverified.goto(authUrl);
  assert.equal(await stateOf(unverified), 'signin');
  await unverifiedContext.close();
  step('an unverified email is refused');

  // alice activates the box.
  await page.goto(authUrl);
  await submit('standin-ok-2468#state-abcdef');
  assert.equal(await stateOf(), 'ready');
  assert.match(await page.locator('a.session-link').getAttribute('href'), /^https:\/\/claude\.ai\/code\//);
  assert.equal((await tool('get_llmbox', { box_id: boxId })).status, 'ready');
  step('alice activated the box');

  // Sign-out: the session cookie goes, and the link asks for sign-in again.
  await Promise.all([page.waitForNavigation(), page.click('.who button[type=submit]')]);
  assert.match(await page.locator('h1').innerText(), /You are signed out/);
  assert.ok(!(await context.cookies()).some((c) => c.name === 'llmbox_session'));
  await shoot('signed-out');
  await page.goto(authUrl);
  assert.equal(await stateOf(), 'signin');
  step('alice signed out');
}

try {
  const created = await tool('create_llmbox', { box_id: boxId, description: 'browser e2e box' });
  assert.equal(created.status, 'pending');
  const authUrl = created.auth_url;
  assert.ok(authUrl.startsWith(new URL(mcpUrl).origin + '/auth/'), authUrl);
  step(`created ${boxId}`);

  if (scenario === 'expired') {
    // The spoke gives a pending box a few seconds: then the page says the link expired.
    let response = await page.goto(authUrl);
    for (let i = 0; i < 60 && (await stateOf()) !== 'expired'; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      response = await page.reload();
    }
    assert.equal(await stateOf(), 'expired');
    assert.equal(response.status(), 404);
    await checkHeaders(response);
    assert.match(await page.locator('h1').innerText(), /This link has expired/);
    assert.ok(!(await page.content()).includes(boxId), 'an expired link reveals nothing of the box');
    assert.equal(await page.locator('form').count(), 0);
    await shoot('expired');
  } else if (scenario === 'gated') {
    await gated(authUrl);
  } else if (scenario === 'real') {
    const response = await page.goto(authUrl);
    assert.equal(response.status(), 200);
    const [signInUrl] = await authorizeUrlsOf(boxId);
    assert.equal(await page.locator('a.sign-in').getAttribute('href'), signInUrl);
    await submit('bogus-code-123#not-a-real-state');
    assert.equal(await stateOf(), 'pending');
    const notice = await page.locator('.notice[role=alert]').innerText();
    step(`the page shows: ${notice.replace(/\s+/g, ' ')}`);
    // The text on the page is what the real binary printed in the box.
    const printed = (await consoleOf(boxId)).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    const message = notice.replace(/^The last attempt did not work:\s*/, '').trim();
    assert.ok(message.length > 10, `a real error message, got "${message}"`);
    assert.ok(printed.includes(message), `"${message}" is the box's own output`);
    // A fresh sign-in link: the wrapper started a new login, with a new authorize URL.
    const urls = await authorizeUrlsOf(boxId);
    assert.equal(await page.locator('a.sign-in').getAttribute('href'), urls[urls.length - 1]);
    await shoot('error-real');
  } else {
    assert.equal(scenario, 'flow');
    // Pending: the sign-in link is the box's real authorize URL.
    const response = await page.goto(authUrl);
    assert.equal(response.status(), 200);
    await checkHeaders(response);
    assert.equal(await stateOf(), 'pending');
    const [signInUrl] = await authorizeUrlsOf(boxId);
    const link = page.locator('a.sign-in');
    assert.equal(await link.getAttribute('href'), signInUrl);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match(await link.getAttribute('rel'), /noreferrer/);
    const cookies = await context.cookies();
    const cookie = cookies.find((c) => c.name === 'llmbox_browser');
    // Secure exactly when the hub's public URL is https (the TLS front's test).
    assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' &&
      cookie.secure === mcpUrl.startsWith('https:'), `cookie ${JSON.stringify(cookie)}`);
    await shoot('pending');

    // A refused code: the box's own words, a fresh form token, a new sign-in link.
    const firstCsrf = await csrfOf();
    await submit('standin-bad-0001#state', { shootWorking: true });
    assert.equal(await stateOf(), 'pending');
    assert.match(await page.locator('.notice[role=alert]').innerText(),
      /Couldn't log in: getaddrinfo ENOTFOUND platform\.claude\.com/);
    assert.notEqual(await csrfOf(), firstCsrf);
    assert.ok(!(await page.content()).includes('standin-bad-0001'), 'the code is never echoed');
    const urls = await authorizeUrlsOf(boxId);
    assert.equal(await page.locator('a.sign-in').getAttribute('href'), urls[urls.length - 1]);
    await shoot('error');

    // A good code: ready, with the session URL the box printed.
    await submit('standin-ok-2468#state-abcdef');
    assert.equal(await stateOf(), 'ready');
    const sessionUrl = await page.locator('a.session-link').getAttribute('href');
    assert.match(sessionUrl, /^https:\/\/claude\.ai\/code\/session_01/);
    assert.ok((await consoleOf(boxId)).includes(sessionUrl), 'the session URL is the box\'s');
    await shoot('ready');
    const got = await tool('get_llmbox', { box_id: boxId });
    assert.equal(got.status, 'ready');
    assert.equal(got.session_url, sessionUrl);
    step('get_llmbox says ready with the same session URL');

    // Destroyed: the link says so.
    await tool('destroy_llmbox', { box_id: boxId });
    const gone = await page.goto(authUrl);
    assert.equal(gone.status(), 410);
    assert.equal(await stateOf(), 'destroyed');
    await shoot('destroyed');

    // An unknown link reveals nothing.
    const unknown = await page.goto(new URL(mcpUrl).origin + '/auth/' + 'A'.repeat(43));
    assert.equal(unknown.status(), 404);
    assert.equal(await page.locator('h1').innerText(), 'Not found');
    await shoot('unknown');
  }
  assert.deepEqual(consoleErrors.filter((e) => !/status of 4(03|04|10)/.test(e)), [],
    'no script errors and no CSP violations');
  console.log('BROWSER OK');
} finally {
  // Leave no box behind on the engine (the flow destroyed its own already).
  if (scenario !== 'flow') {
    await client.callTool({ name: 'destroy_llmbox', arguments: { box_id: boxId } })
      .catch((err) => console.log(`cleanup: destroy_llmbox ${boxId}: ${err.message}`));
  }
  await browser.close();
  await client.close();
}
