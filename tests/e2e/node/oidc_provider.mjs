// A real OpenID Connect provider for tests: npm's oidc-provider on 127.0.0.1 with an ephemeral
// port, signing ID tokens with RS256 and ES256 keys made at start-up.
//
//   node oidc_provider.mjs --redirect-uri http://127.0.0.1:8080/auth/oidc/callback \
//        [--client-secret S] [--token-auth client_secret_basic|client_secret_post]
//        [--host 127.0.0.1|localhost]
//
// It listens on 127.0.0.1 only; --host names it in the issuer (localhost makes it another
// site than a hub on 127.0.0.1, as a real provider is, so a browser applies its cross-site
// cookie rules to the sign-in redirects).
//
// Prints the issuer URL (http://<host>:<port>) as one line on stdout when it is ready, and
// exits when its stdin closes (when stdin is a pipe) or on SIGTERM/SIGINT.
//
// Clients (both confidential, PKCE S256 required, the one redirect URI given):
//   llmbox        ID tokens signed with RS256
//   llmbox-es256  ID tokens signed with ES256
// Accounts (any non-empty password): alice@example.com and bob@example.com with
// email_verified true, unverified@example.com with email_verified false. The ID token carries
// email and email_verified (conformIdTokenClaims off), as many real providers do.
//
// Forgers: the accounts forge-<kind>@example.com (verified) sign in like alice, but the token
// endpoint's answer carries a forged ID token in place of the real one, made from the real
// one's claims (so nonce, issuer and times are right unless the forgery changes them):
//   forge-alg-none      header alg "none", no signature
//   forge-hs256-pubkey  HS256 with the provider's RSA public key (PEM) as the HMAC secret
//   forge-wrong-kid     signed with a key the provider never published, under kid "rs-2"
//   forge-wrong-aud     signed with the provider's real key, for audience "another-client"
//   forge-expired       signed with the provider's real key, expired an hour ago
//
// The login form is our own (no external fonts or scripts, so a browser test never leaves
// loopback): GET /interaction/<uid> shows it with fields `login` and `password`, POST
// /interaction/<uid>/login submits it. Consent is granted without asking.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

function parseArgs(argv) {
  const args = {
    redirectUri: '',
    clientSecret: 'llmbox-test-client-secret',
    tokenAuth: 'client_secret_basic',
    host: '127.0.0.1',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${argv[i]} needs a value`);
    if (argv[i] === '--redirect-uri') args.redirectUri = value;
    else if (argv[i] === '--client-secret') args.clientSecret = value;
    else if (argv[i] === '--token-auth') args.tokenAuth = value;
    else if (argv[i] === '--host') args.host = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.redirectUri) throw new Error('--redirect-uri is required');
  if (!['127.0.0.1', 'localhost'].includes(args.host)) throw new Error('--host must be loopback');
  return args;
}

const FORGERIES = ['alg-none', 'hs256-pubkey', 'wrong-kid', 'wrong-aud', 'expired'];
const ACCOUNTS = {
  'alice@example.com': true,
  'bob@example.com': true,
  'unverified@example.com': false,
  ...Object.fromEntries(FORGERIES.map((kind) => [`forge-${kind}@example.com`, true])),
};

// Each start-up step says when it ends (on stderr), so that a start that stalls names the
// step it stalled in (once seen in CI: only the runtime warning printed in 60 s).
const started = performance.now();
const step = (what) => {
  process.stderr.write(`oidc_provider: ${what} after ${Math.round(performance.now() - started)} ms\n`);
};
const rsaKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ecKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
step('signing keys made');

function signingKeys() {
  return [
    { ...rsaKey.export({ format: 'jwk' }), kid: 'rs-1', alg: 'RS256', use: 'sig' },
    { ...ecKey.export({ format: 'jwk' }), kid: 'es-1', alg: 'ES256', use: 'sig' },
  ];
}

const b64url = (data) => Buffer.from(data).toString('base64url');

// A JWT of `header` and `claims`, signed by `sign(signingInput)` (a Buffer, or '' for none).
function jwt(header, claims, sign) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign(input))}`;
}

// The forged replacement for the real ID token `idToken` (RS256, kid rs-1), per FORGERIES.
function forge(kind, idToken) {
  const claims = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
  const rs256 = (key) => (input) => crypto.sign('sha256', Buffer.from(input), key);
  switch (kind) {
    case 'alg-none':
      return jwt({ alg: 'none', typ: 'JWT' }, claims, () => '');
    case 'hs256-pubkey': {
      const pem = crypto.createPublicKey(rsaKey).export({ type: 'spki', format: 'pem' });
      return jwt({ alg: 'HS256', typ: 'JWT', kid: 'rs-1' }, claims,
                 (input) => crypto.createHmac('sha256', pem).update(input).digest());
    }
    case 'wrong-kid': {
      const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      return jwt({ alg: 'RS256', typ: 'JWT', kid: 'rs-2' }, claims, rs256(stranger));
    }
    case 'wrong-aud':
      return jwt({ alg: 'RS256', typ: 'JWT', kid: 'rs-1' },
                 { ...claims, aud: 'another-client', azp: 'another-client' }, rs256(rsaKey));
    case 'expired': {
      const now = Math.floor(Date.now() / 1000);
      return jwt({ alg: 'RS256', typ: 'JWT', kid: 'rs-1' },
                 { ...claims, iat: now - 7200, exp: now - 3600 }, rs256(rsaKey));
    }
    default:
      throw new Error(`unknown forgery ${kind}`);
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, error) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Test provider sign-in</title></head>
<body>
<h1>Test provider sign-in</h1>
${error ? `<p id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label>Email <input type="text" name="login" autofocus></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit">Sign in</button>
</form>
</body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65536) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

async function grantConsent(provider, req, res, details) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const saved = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId: saved } },
                                     { mergeWithLastSubmission: true });
}

async function interaction(provider, req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'POST' && url.pathname.endsWith('/login')) {
    const form = await readForm(req);
    const login = (form.get('login') ?? '').trim().toLowerCase();
    if (!(login in ACCOUNTS) || !form.get('password')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginPage(details.uid, 'Unknown account or empty password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } },
                                       { mergeWithLastSubmission: false });
    return;
  }
  if (details.prompt.name === 'consent') {
    await grantConsent(provider, req, res, details);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(loginPage(details.uid, ''));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  step('listening');
  const issuer = `http://${args.host}:${server.address().port}`;

  const client = (clientId, alg) => ({
    client_id: clientId,
    client_secret: args.clientSecret,
    redirect_uris: [args.redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: args.tokenAuth,
    id_token_signed_response_alg: alg,
  });
  const provider = new Provider(issuer, {
    clients: [client('llmbox', 'RS256'), client('llmbox-es256', 'ES256')],
    clientAuthMethods: [args.tokenAuth],
    jwks: { keys: signingKeys() },
    pkce: { required: () => true },
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    async findAccount(ctx, sub) {
      if (!(sub in ACCOUNTS)) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, email: sub, email_verified: ACCOUNTS[sub] };
        },
      };
    },
  });
  // The forgers' token responses carry a forged ID token (see FORGERIES).
  provider.use(async (ctx, next) => {
    await next();
    const idToken = ctx.method === 'POST' && ctx.path === '/token' && ctx.body?.id_token;
    if (!idToken) return;
    const { sub } = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
    const kind = /^forge-(.+)@example\.com$/.exec(sub)?.[1];
    if (kind) ctx.body = { ...ctx.body, id_token: forge(kind, idToken) };
  });
  step('provider made');
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(provider, req, res).catch((err) => {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${err.message}\n`);
      });
    } else {
      callback(req, res);
    }
  });

  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A test that holds our stdin as a pipe stops us by closing it; with stdin on /dev/null or
  // a terminal (ctest, CI) we run until signalled.
  if (fs.fstatSync(0).isFIFO()) {
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.resume();
  }
  process.stdout.write(`${issuer}\n`);
}

main().catch((err) => {
  process.stderr.write(`oidc_provider: ${err.stack ?? err}\n`);
  process.exit(1);
});
