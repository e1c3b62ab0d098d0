// Peer input never throws anything but SbrpError, never hangs, never allocates without bound.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';

import { SbrpError } from '../src/errors.js';
import { decodeFrame, encodeControl, encodeFrame, encodeSid, FrameType } from '../src/frame.js';
import { decodeSbp, Reassembler, SbpEndpoint, makeHandshake, encodeControl as sbpControl, ControlOp } from '../src/sbp.js';
import { decodeEnvelope } from '../src/rpc.js';
import { connect, MemoryPinStore } from '../src/index.js';
import { fromHex, utf8 } from '../src/bytes.js';
import { loadVectors } from './vectors-path.mjs';

const V = loadVectors();

// Deterministic PRNG so failures reproduce.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const onlySbrpErrors = (fn) => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SbrpError, `non-SbrpError thrown: ${e?.stack ?? e}`);
  }
};

test('decoders: random and mutated inputs only raise SbrpError', () => {
  const r = rng(12345);
  const seeds = [
    ...V.frames.map((f) => f.frame),
    ...V.endpoint_decode.map((f) => f.frame),
    ...V.relay_validation.cases.map((c) => c.frame),
    ...V.handshakes.flatMap((h) => [h.handshake_init_frame, h.handshake_accept_frame, ...h.messages.map((m) => m.frame)]),
  ].map(fromHex);
  const sbpSeeds = [...V.chunking.example.chunks.map(fromHex), fromHex(V.chunking.example.original_frame), ...V.handshakes[0].messages.map((m) => fromHex(m.plaintext))];
  const mutate = (b) => {
    const c = Uint8Array.from(b.length ? b : [0]);
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) c[Math.floor(r() * c.length)] = Math.floor(r() * 256);
    return r() < 0.2 ? c.subarray(0, Math.floor(r() * c.length)) : c;
  };
  for (let i = 0; i < 20000; i++) {
    const base = seeds[i % seeds.length];
    const input = i % 3 === 0 ? Uint8Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)) : mutate(base);
    onlySbrpErrors(() => decodeFrame(input));
    const sb = i % 2 ? mutate(sbpSeeds[i % sbpSeeds.length]) : input;
    onlySbrpErrors(() => decodeSbp(sb));
    onlySbrpErrors(() => decodeEnvelope('rpc', sb));
  }
  // random chunk runs into a reassembler with a small maximum: bounded, only SbrpError
  const ep = new SbpEndpoint({ peerId: 'x', maxChunked: 4096 });
  ep.receive(sbpControl(new Uint8Array(16), ControlOp.Handshake, utf8(JSON.stringify(makeHandshake('y')))));
  for (let i = 0; i < 5000; i++) onlySbrpErrors(() => ep.receive(mutate(sbpSeeds[i % 4])));
});

test('reassembler refuses a huge total before allocating', () => {
  const ra = new Reassembler();
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(() => ra.push(new Uint8Array(16), 0, 0xffffffff, new Uint8Array(1)), (e) => e.kind === 'protocol_violation');
  assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024);
});

/** A hostile relay: issues a token, then answers the client's Init with `script(ws, sid)`. */
async function hostileRelay(script) {
  const wss = new WebSocketServer({ noServer: true });
  const sid = 0x0102030405060708n;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: 't', sid: encodeSid(sid), url: `ws://127.0.0.1:${server.address().port}/` }));
  });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.once('message', () => script(ws, sid))));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    relay: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => (wss.clients.forEach((c) => c.terminate()), wss.close(), server.closeAllConnections?.(), server.close(() => r()))),
  };
}

const hostileCases = [
  ['text message', (ws) => ws.send('hello'), 'malformed_frame'],
  ['garbage bytes', (ws) => ws.send(Buffer.from([1, 2, 3])), 'handshake_failed'],
  ['unknown type', (ws) => ws.send(Buffer.from('05000000000000000000000001', 'hex')), 'handshake_failed'],
  ['Data before Accept', (ws, sid) => ws.send(encodeFrame(FrameType.Data, sid, new Uint8Array(28))), 'handshake_failed'],
  ['Accept for another sid', (ws) => ws.send(fromHex(V.handshakes[0].handshake_accept_frame)), 'handshake_failed'],
  ['daemon_offline control', (ws, sid) => ws.send(encodeControl(0x0202, sid)), 'daemon_offline'],
  ['unknown control code is terminal', (ws, sid) => ws.send(encodeControl(0x0903, sid)), 'unknown_0x0903'],
  ['silent close', (ws) => ws.close(), 'closed'],
  ['96-byte old Accept', (ws, sid) => ws.send(encodeFrame(FrameType.Data, sid, new Uint8Array(96)).fill(2, 0, 1)), 'handshake_failed'],
];

for (const [name, script, kind] of hostileCases) {
  test(`hostile relay: ${name} → ${kind}`, async () => {
    const h = await hostileRelay(script);
    try {
      await assert.rejects(
        connect({ relay: h.relay, daemonId: 'd', trust: { store: new MemoryPinStore() }, WebSocket, handshakeTimeoutMs: 2000 }),
        (e) => {
          assert.ok(e instanceof SbrpError, String(e));
          assert.equal(e.kind, kind, e.message);
          return true;
        },
      );
    } finally {
      await h.close();
    }
  });
}

test('hostile relay: Ping during the handshake is answered with Pong, rate_limited ignored', async () => {
  let pong = null;
  const h = await hostileRelay((ws) => {
    ws.on('message', (d) => (pong = Buffer.from(d).toString('hex')));
    ws.send(fromHex(V.frames.find((f) => f.name === 'ping_8_bytes').frame));
    ws.send(encodeControl(0x0901, 0n));
    setTimeout(() => ws.close(), 100);
  });
  try {
    await assert.rejects(connect({ relay: h.relay, daemonId: 'd', trust: { store: new MemoryPinStore() }, WebSocket }), (e) => e.kind === 'closed');
    assert.equal(pong, V.frames.find((f) => f.name === 'pong_echoing_ping_8_bytes').frame);
  } finally {
    await h.close();
  }
});
