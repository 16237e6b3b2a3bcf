// Activates a box the way a person would without a browser: opens the activation page and
// posts the code. Usage: node activate.mjs <activation url> <code>
import assert from 'node:assert/strict';

const [url, code] = process.argv.slice(2);
const page = await fetch(url);
const html = await page.text();
assert.equal(page.status, 200, html);
assert.match(html, /Sign in with Claude/);
const form = html.match(/name="csrf" value="([^"]+)"/);
const body = new URLSearchParams({ code, ...(form ? { csrf: form[1] } : {}) });
const posted = await fetch(url, {
  method: 'POST',
  headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: page.headers.get('set-cookie') ?? '' },
  body,
});
const result = await posted.text();
assert.equal(posted.status, 200, result);
assert.match(result, /is ready/, result);
console.log('ACTIVATED');
