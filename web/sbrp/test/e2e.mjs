#!/usr/bin/env node
// Chromium end-to-end test against a real relay and daemon started as commands.
//
//   SBRP_RELAY_CMD='…'  SBRP_DAEMON_CMD='…'  node test/e2e.mjs
//   node test/e2e.mjs --mock      (self-test of the harness against the Node mock)
//
// Contract (see README.md):
//  * SBRP_RELAY_CMD is run first (sh -c, own process group). When ready it prints ONE JSON line
//    on stdout with its HTTP base URL under "relay" (or "url", "http", "addr"/"address" as
//    host:port), e.g. {"relay":"http://127.0.0.1:41234"}.
//  * SBRP_DAEMON_CMD is run next with env SBRP_RELAY_URL (that HTTP base) and SBRP_RELAY_JSON
//    (the relay's whole line). When registered it prints ONE JSON line with "daemon_id" (or
//    "daemonId"), and optionally "identity"/"fingerprint" (SHA256:…) or "identity_key" (hex or
//    base64url); `keyline sbrp daemon` prints {"daemon_id","relay","identity"}.
//  * The page is served from a local HTTP server that also proxies POST /v1/sessions to the
//    relay (the keyline relay sends no CORS headers); the WebSocket goes to the relay directly.
//  * Optional SBRP_FS_READ=PATH:SIZE:SHA256HEX: the daemon exposes a file at PATH (relative to its
//    exposed directory) and the page reads it with `$sideband/fs.read`, byte for byte.
//  * In the page: connect (TOFU pin in IndexedDB), echo a small value and 1 MiB, read the file,
//    reconnect with the pin, then pre-seed a different pin and expect identity_key_changed with
//    both fingerprints.
// Exit codes: 0 pass, 1 fail, 3 not configured (env vars missing).

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { base64urlDecode } from '../src/frame.js';
import { fingerprint } from '../src/handshake.js';
import { fromHex } from '../src/bytes.js';
import { checkScenario, launchChromium, runPageScenario, startStaticServer } from './browser-harness.mjs';

const READY_TIMEOUT_MS = Number(process.env.SBRP_READY_TIMEOUT_MS ?? 60_000);
const children = [];

function usage() {
  process.stderr.write(`e2e.mjs: not configured.
Needs:
  SBRP_RELAY_CMD   shell command starting the keyline relay (+ issuer); prints one JSON line
                   {"relay":"http://HOST:PORT"} when it accepts connections
  SBRP_DAEMON_CMD  shell command starting a keyline daemon connected to $SBRP_RELAY_URL that
                   serves the echo RPC; prints one JSON line {"daemon_id":"…"[,"fingerprint":"SHA256:…"]}
                   when registered with the relay
Optional:
  SBRP_ECHO_METHOD        RPC method to call (default $sideband/echo)
  SBRP_CHROMIUM           browser binary (default /usr/bin/chromium)
  SBRP_READY_TIMEOUT_MS   wait for each ready line (default 60000)
  SBRP_FS_READ            PATH:SIZE:SHA256HEX of a file the daemon exposes; the page reads it
                          with $sideband/fs.read and compares byte for byte
Self-test against the Node mock: node test/e2e.mjs --mock
`);
  process.exit(3);
}

/** Spawns `cmd` (sh -c, own process group) and resolves with the first JSON line on stdout. */
function startCommand(name, cmd, env) {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.push(child);
    const timer = setTimeout(() => reject(new Error(`${name}: no JSON ready line within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    let ready = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (ready) {
        process.stderr.write(`[${name}] ${line}\n`);
        return;
      }
      const t = line.trim();
      if (t.startsWith('{')) {
        try {
          const j = JSON.parse(t);
          ready = true;
          clearTimeout(timer);
          resolve(j);
          return;
        } catch {
          // not the ready line
        }
      }
      process.stderr.write(`[${name}] ${line}\n`);
    });
    createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`[${name}] ${line}\n`));
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${name} exited (${code ?? sig}) before its ready line`));
    });
    child.on('error', (e) => reject(e));
  });
}

function stopChildren() {
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(-c.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

function relayBase(j) {
  const v = j.relay ?? j.url ?? j.http ?? j.http_url;
  if (typeof v === 'string') return v.replace(/^ws(s?):/, 'http$1:').replace(/\/$/, '');
  const a = j.addr ?? j.address;
  if (typeof a === 'string') return `http://${a}`;
  throw new Error(`relay ready line has no relay/url/addr: ${JSON.stringify(j)}`);
}

function expectedFingerprint(j) {
  if (typeof j.fingerprint === 'string') return j.fingerprint;
  if (typeof j.identity === 'string' && j.identity.startsWith('SHA256:')) return j.identity;
  const k = j.identity_key ?? j.identityKey;
  if (typeof k !== 'string') return null;
  const b = /^[0-9a-fA-F]{64}$/.test(k) ? fromHex(k) : base64urlDecode(k);
  return b && b.length === 32 ? fingerprint(b) : null;
}

async function main() {
  const mock = process.argv.includes('--mock');
  let relayUrl;
  let daemonId;
  let expectFp = null;
  let mockRelay = null;
  if (mock) {
    const { startMockRelay, MockDaemon } = await import('./mock-relay.mjs');
    mockRelay = await startMockRelay({ daemon: new MockDaemon({ id: 'e2e-mock' }) });
    relayUrl = mockRelay.relay;
    daemonId = mockRelay.daemon.id;
    expectFp = mockRelay.daemon.fingerprint;
  } else {
    const relayCmd = process.env.SBRP_RELAY_CMD;
    const daemonCmd = process.env.SBRP_DAEMON_CMD;
    if (!relayCmd || !daemonCmd) usage();
    const r = await startCommand('relay', relayCmd, {});
    relayUrl = relayBase(r);
    const d = await startCommand('daemon', daemonCmd, { SBRP_RELAY_URL: relayUrl, SBRP_RELAY_JSON: JSON.stringify(r) });
    daemonId = d.daemon_id ?? d.daemonId;
    if (typeof daemonId !== 'string' || !daemonId) throw new Error(`daemon ready line has no daemon_id: ${JSON.stringify(d)}`);
    expectFp = expectedFingerprint(d);
  }
  let fsRead = null;
  if (process.env.SBRP_FS_READ) {
    const [path, size, sha256Hex] = process.env.SBRP_FS_READ.split(':');
    if (!path || !/^[0-9]+$/.test(size ?? '') || !/^[0-9a-f]{64}$/.test(sha256Hex ?? '')) throw new Error('SBRP_FS_READ must be PATH:SIZE:SHA256HEX');
    fsRead = { path, size: Number(size), sha256Hex };
  }
  const site = await startStaticServer({ proxyRelay: relayUrl });
  const browser = await launchChromium();
  let passed = 0;
  let failed = 0;
  try {
    const { result, console: lines } = await runPageScenario({
      context: browser.context,
      pageOrigin: site.origin,
      cfg: { relay: site.origin, daemonId, echoMethod: process.env.SBRP_ECHO_METHOD ?? '$sideband/echo', keyChange: 'seed-pin', fsRead },
    });
    for (const s of result.steps ?? []) process.stdout.write(`step ${s.name} ${JSON.stringify({ ...s, name: undefined, message: undefined })}\n`);
    try {
      const by = checkScenario(result, { expectRotated: false, expectFsRead: fsRead !== null });
      if (expectFp) {
        if (by.connected.fingerprint !== expectFp) throw new Error(`fingerprint ${by.connected.fingerprint} ≠ daemon's ${expectFp}`);
      }
      passed++;
      process.stdout.write(`ok - chromium e2e: handshake, echo small + 1 MiB${fsRead ? `, fs.read ${fsRead.size} B` : ''}, TOFU pin (IndexedDB), changed key\n`);
    } catch (e) {
      failed++;
      process.stdout.write(`not ok - chromium e2e: ${e.message}\n`);
      process.stderr.write(lines.join('\n') + '\n');
    }
  } finally {
    await browser.close();
    await site.close();
    await mockRelay?.close();
    stopChildren();
  }
  process.stdout.write(`e2e: ${passed} passed, ${failed} failed\n`);
  process.exit(failed ? 1 : 0);
}

for (const s of ['SIGINT', 'SIGTERM']) {
  process.on(s, () => {
    stopChildren();
    process.exit(1);
  });
}

main().catch((e) => {
  process.stderr.write(`e2e: ${e.stack ?? e}\n`);
  stopChildren();
  process.stdout.write('e2e: 0 passed, 1 failed\n');
  process.exit(1);
});
