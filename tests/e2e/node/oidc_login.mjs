// Signs in at oidc_provider.mjs with plain HTTP requests (no browser): follows the authorize
// URL's redirects with a cookie jar, submits the provider's login form, and stops at the
// redirect to our callback.
//
//   node oidc_login.mjs <authorize-url> <login> <redirect-uri>
//
// Prints the callback URL (<redirect-uri>?code=...&state=...&iss=...) as one line on stdout
// and exits 0; exits 1 with a message on stderr when the flow does not reach the callback.
import process from 'node:process';

const [authorizeUrl, login, redirectUri] = process.argv.slice(2);
if (!authorizeUrl || !login || !redirectUri) {
  process.stderr.write('usage: oidc_login.mjs <authorize-url> <login> <redirect-uri>\n');
  process.exit(2);
}

const jar = new Map();

async function request(url, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return res;
}

async function main() {
  let url = authorizeUrl;
  let init = {};
  for (let step = 0; step < 20; step++) {
    if (url.startsWith(redirectUri)) {
      process.stdout.write(`${url}\n`);
      return;
    }
    const res = await request(url, init);
    init = {};
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).toString();
      continue;
    }
    const body = await res.text();
    const action = body.match(/<form[^>]*action="([^"]+)"/);
    if (res.status !== 200 || !action) {
      throw new Error(`no redirect and no form at ${url} (HTTP ${res.status}): ${body.slice(0, 500)}`);
    }
    if (body.includes('id="error"')) throw new Error(`the provider refused the login: ${body}`);
    url = new URL(action[1].replaceAll('&amp;', '&'), url).toString();
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login, password: 'any-password' }).toString(),
    };
  }
  throw new Error('too many redirects');
}

main().catch((err) => {
  process.stderr.write(`oidc_login: ${err.message}\n`);
  process.exit(1);
});
