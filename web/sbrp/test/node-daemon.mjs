#!/usr/bin/env node
// A Node SBRP daemon built on this library's daemon role, for the keyline relay: presence
// challenge → presence token → one WebSocket multiplexing sessions by sid. Serves `echo`,
// `$sideband/echo`, `$sideband/info`. Lets the Chromium e2e run against the real Rust relay
// before the Rust daemon is available:
//
//   SBRP_RELAY_CMD='keyline --home H relay serve --listen 127.0.0.1:0' \
//   SBRP_DAEMON_CMD='node test/node-daemon.mjs' node test/e2e.mjs
//
// Env: SBRP_RELAY_URL (issuer HTTP base, set by e2e.mjs), SBRP_DAEMON_ID (default node-daemon-<random>).
// Prints one JSON line {"daemon_id","relay","identity"} when connected.

import { WebSocket } from 'ws';
import { ed25519 } from '@noble/curves/ed25519.js';
import { concat, randomBytes, toHex, utf8 } from '../src/bytes.js';
import { codeName, isTerminal } from '../src/errors.js';
import { FrameType, MAX_FRAME, Signal, SignalReason, base64urlDecode, base64urlEncode, decodeFrame, encodePong, encodeSignal } from '../src/frame.js';
import { fingerprint } from '../src/handshake.js';
import { DaemonSession, MockDaemon } from './mock-relay.mjs';

async function post(base, path, body) {
  const r = await fetch(new URL(path, base), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${JSON.stringify(j)}`);
  return j;
}

export async function presenceToken(base, daemonId, seed) {
  const identityKey = base64urlEncode(ed25519.getPublicKey(seed));
  const { challenge } = await post(base, '/v1/presence/challenge', { daemon_id: daemonId, identity_key: identityKey });
  const raw = base64urlDecode(challenge);
  if (!raw || raw.length !== 32) throw new Error('bad challenge');
  const msg = concat(utf8('keyline-relay-presence-v1'), new Uint8Array([0]), utf8(daemonId), new Uint8Array([0]), raw);
  const signature = base64urlEncode(ed25519.sign(msg, seed));
  return post(base, '/v1/presence', { daemon_id: daemonId, identity_key: identityKey, challenge, signature, resumable: false });
}

export async function runNodeDaemon({ relay, daemonId = `node-daemon-${toHex(randomBytes(4))}`, seed = randomBytes(32) }) {
  const daemon = new MockDaemon({ id: daemonId, seed });
  const grant = await presenceToken(relay, daemonId, seed);
  const sep = grant.url.includes('?') ? '&' : '?';
  const ws = new WebSocket(`${grant.url}${sep}token=${encodeURIComponent(grant.token)}`, { maxPayload: MAX_FRAME });
  const sessions = new Map();
  const send = (b) => ws.readyState === ws.OPEN && ws.send(b);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`relay refused the daemon: HTTP ${res.statusCode}`)));
  });
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    let f;
    try {
      f = decodeFrame(new Uint8Array(data));
    } catch {
      return;
    }
    if (f.type === FrameType.Ping) return send(encodePong(f.payload));
    if (f.type === FrameType.Pong) return;
    if (f.type === FrameType.Control) {
      if (f.sid === 0n) {
        if (isTerminal(f.code)) process.stderr.write(`relay: ${codeName(f.code)}\n`);
        return;
      }
      // session_ended or any terminal code with a sid: drop that session only
      if (codeName(f.code) === 'session_ended' || isTerminal(f.code)) {
        sessions.get(f.sid)?.cipher?.destroy();
        sessions.delete(f.sid);
      }
      return;
    }
    let s = sessions.get(f.sid);
    if (!s) {
      if (f.type !== FrameType.HandshakeInit || sessions.size >= 64) return;
      const sid = f.sid;
      s = new DaemonSession(daemon, sid, send, {
        close: () => {
          send(encodeSignal(sid, Signal.Close, SignalReason.Error));
          sessions.get(sid)?.cipher?.destroy();
          sessions.delete(sid);
        },
        control: () => {},
      });
      sessions.set(sid, s);
    }
    s.onFrame(f);
  });
  return { daemon, ws, relayUrl: grant.url };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const relay = process.env.SBRP_RELAY_URL;
  if (!relay) {
    process.stderr.write('node-daemon.mjs: set SBRP_RELAY_URL to the relay issuer (http://HOST:PORT)\n');
    process.exit(3);
  }
  const d = await runNodeDaemon({ relay, daemonId: process.env.SBRP_DAEMON_ID || undefined });
  console.log(JSON.stringify({ daemon_id: d.daemon.id, relay: d.relayUrl, identity: fingerprint(d.daemon.publicKey) }));
  d.ws.on('close', (code) => {
    process.stderr.write(`relay connection closed (${code})\n`);
    process.exit(1);
  });
}
