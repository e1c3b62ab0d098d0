// A Node mock of the relay + issuer + one daemon, built on this library (daemon role), used to
// exercise the client in Node and in real Chromium without the Rust daemon.
//
// Not a conforming relay: it pairs one client WebSocket per token with an in-process daemon,
// checks client frames minimally and offers fault injection for the tests. Run standalone:
//   node test/mock-relay.mjs        → prints {"relay": "http://127.0.0.1:PORT", "daemon_id": …}

import http from 'node:http';
import { WebSocketServer } from 'ws';
import { randomBytes, toHex, utf8 } from '../src/bytes.js';
import { CODES } from '../src/errors.js';
import { FrameType, MAX_FRAME, decodeFrame, encodeControl, encodeData, encodePong, encodeSid } from '../src/frame.js';
import { daemonAccept, fingerprint, identityPublicKey } from '../src/handshake.js';
import { decodeEnvelope, errorResponse, event, response, subjectKind } from '../src/rpc.js';
import { ControlOp, SbpCode, SbpEndpoint, encodeControl as sbpControl } from '../src/sbp.js';
import { daemonCipher } from '../src/session.js';

/** The daemon side of one session (also used by node-daemon.mjs against the keyline relay).
 * `relayConn`: {close(code), control(name, terminal)} — how the session ends / relay-side faults. */
export class DaemonSession {
  constructor(daemon, sid, send, relayConn) {
    this.daemon = daemon;
    this.sid = sid;
    this.send = send; // frame bytes → client
    this.relayConn = relayConn;
    this.cipher = null;
    this.sbp = new SbpEndpoint({ peerId: `mock-${daemon.id}`, caps: daemon.caps });
    this.lastFrame = null;
  }

  onFrame(f) {
    if (f.type === FrameType.HandshakeInit) {
      if (this.cipher) return; // repeated Init ignored [K]
      let r;
      try {
        r = daemonAccept({ identitySeed: this.daemon.seed, daemonId: this.daemon.id, init: f });
      } catch {
        this.relayConn.close(1000);
        return;
      }
      this.cipher = daemonCipher(r);
      if (this.daemon.mangleSignature) r.acceptFrame[13 + 64 + 5] ^= 1;
      this.send(r.acceptFrame);
      this.sendPlain([this.sbp.handshakeFrame(randomBytes(16))]);
      return;
    }
    if (f.type !== FrameType.Data || !this.cipher) return;
    let plain;
    try {
      plain = this.cipher.open(f.payload);
    } catch (e) {
      if (e.kind === 'decrypt_failed') this.relayConn.close(1000);
      return;
    }
    let ev;
    try {
      ev = this.sbp.receive(plain);
    } catch {
      this.relayConn.close(1000);
      return;
    }
    if (ev.type === 'control' && ev.op === ControlOp.Ping) this.sendPlain([sbpControl(randomBytes(16), ControlOp.Pong, ev.data)]);
    if (ev.type !== 'message' || subjectKind(ev.subject) !== 'rpc') return;
    let env;
    try {
      env = decodeEnvelope(ev.subject, ev.data);
    } catch {
      return;
    }
    if (env.t === 'r') this.onRequest(env);
  }

  sendPlain(plaintexts) {
    for (const p of plaintexts) {
      const frame = encodeData(this.sid, this.cipher.seal(p));
      this.lastFrame = frame;
      this.send(frame);
    }
  }

  reply(bytes) {
    let parts;
    try {
      parts = this.sbp.encodeMessage(randomBytes(16), 'rpc', bytes);
    } catch {
      return;
    }
    this.sendPlain(parts);
  }

  onRequest({ method, params, cid }) {
    const d = this.daemon;
    d.calls.push(method);
    switch (method) {
      case 'echo':
      case '$sideband/echo':
        this.reply(response(cid, params));
        return;
      case '$sideband/info':
        this.reply(response(cid, { daemonId: d.id, name: 'mock', version: '0', implementation: 'keyline-mock', capabilities: {} }));
        return;
      case 'test.fail':
        this.reply(errorResponse(cid, SbpCode.ApplicationError, 'handler failed'));
        return;
      case 'test.emit':
        this.sendPlain(this.sbp.encodeMessage(randomBytes(16), 'event', event('test.tick', { n: 1 })));
        this.sendPlain(this.sbp.encodeMessage(randomBytes(16), 'event/x', event('test.tick', { n: 2 })));
        this.reply(response(cid, { ok: true }));
        return;
      case 'test.replay': {
        this.reply(response(cid, { ok: true }));
        const last = this.lastFrame;
        setTimeout(() => this.send(last), 20); // a duplicate: sequence_error, session continues
        return;
      }
      case 'test.tamper': {
        this.reply(response(cid, { ok: true }));
        const f = this.cipher.seal(utf8('x'.repeat(40)));
        f[f.length - 1] ^= 1;
        setTimeout(() => this.send(encodeData(this.sid, f)), 20); // decrypt_failed: session ends
        return;
      }
      case 'test.pause': {
        this.reply(response(cid, { ok: true }));
        const ms = params?.ms ?? 300;
        setTimeout(() => {
          this.relayConn.control('session_paused');
          setTimeout(() => this.relayConn.control('session_pending'), ms / 2);
          setTimeout(() => this.relayConn.control('session_resumed'), ms);
        }, 10);
        return;
      }
      case 'test.expire':
        this.reply(response(cid, { ok: true }));
        setTimeout(() => this.relayConn.control('session_expired', true), 20);
        return;
      case 'test.silence':
        return; // never answers: client timeout
      default:
        this.reply(errorResponse(cid, SbpCode.UnsupportedMethod, `unknown method ${method}`));
    }
  }
}

export class MockDaemon {
  constructor({ id = 'mock-daemon', seed = randomBytes(32), caps } = {}) {
    this.id = id;
    this.seed = seed;
    this.caps = caps;
    this.online = true;
    this.calls = [];
    this.mangleSignature = false;
  }
  get publicKey() {
    return identityPublicKey(this.seed);
  }
  get fingerprint() {
    return fingerprint(this.publicKey);
  }
  rotateKey(seed = randomBytes(32)) {
    this.seed = seed;
  }
}

/**
 * Starts the mock relay.
 * @param {{daemon?: MockDaemon, host?: string, port?: number}} [opts]
 * @returns {Promise<{relay: string, wsUrl: string, daemon: MockDaemon, close(): Promise<void>, sessions: Map}>}
 */
export async function startMockRelay({ daemon = new MockDaemon(), host = '127.0.0.1', port = 0 } = {}) {
  const tokens = new Map(); // token → {sid, daemonId}
  const sessions = new Map();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  const cors = {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': 'content-type',
  };
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', ...cors });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    if (req.method === 'GET' && req.url === '/healthz') return json(res, 200, { status: 'ok' });
    if (req.method !== 'POST' || req.url !== '/v1/sessions') return json(res, 404, { error: 'not_found', message: 'not found' });
    let body = '';
    req.on('data', (c) => {
      body += c;
      if (body.length > 4096) req.destroy();
    });
    req.on('end', () => {
      let id;
      try {
        id = JSON.parse(body).daemon_id;
      } catch {
        return json(res, 400, { error: 'bad_request', message: 'bad JSON' });
      }
      if (id !== daemon.id) return json(res, 404, { error: 'daemon_not_found', message: 'unknown daemon' });
      if (!daemon.online) return json(res, 404, { error: 'daemon_offline', message: 'daemon offline' });
      let sidBytes;
      do sidBytes = randomBytes(8);
      while (sidBytes.every((b) => b === 0));
      const sid = BigInt('0x' + toHex(sidBytes));
      const token = toHex(randomBytes(24));
      tokens.set(token, { sid, daemonId: id });
      json(res, 200, { token, sid: encodeSid(sid), url: wsUrl });
    });
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://x');
    const t = tokens.get(url.searchParams.get('token') ?? '');
    if (url.pathname !== '/' || !t) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{"error":"unauthorized","message":"bad token"}');
      return;
    }
    tokens.delete(url.searchParams.get('token'));
    wss.handleUpgrade(req, socket, head, (ws) => {
      const send = (b) => ws.readyState === ws.OPEN && ws.send(b);
      const conn = {
        close: (code) => ws.close(code),
        control: (name, terminal = false) => {
          send(encodeControl(CODES[name], t.sid));
          if (terminal) ws.close(1000);
        },
      };
      const ds = new DaemonSession(daemon, t.sid, send, conn);
      sessions.set(t.sid, ds);
      ws.on('message', (data, isBinary) => {
        if (!isBinary) return conn.control('malformed_frame', true);
        let f;
        try {
          f = decodeFrame(new Uint8Array(data));
        } catch (e) {
          send(encodeControl(CODES[e.kind] ?? CODES.malformed_frame, 0n));
          ws.close(1000);
          return;
        }
        if (f.type === FrameType.Ping) return send(encodePong(f.payload));
        if (f.type === FrameType.Pong) return;
        if (![FrameType.HandshakeInit, FrameType.Data].includes(f.type)) {
          send(encodeControl(CODES.disallowed_sender, f.sid));
          ws.close(1000);
          return;
        }
        if (f.sid !== t.sid) {
          send(encodeControl(CODES.forbidden, 0n));
          ws.close(1000);
          return;
        }
        ds.onFrame(f);
      });
      ws.on('close', () => {
        ds.cipher?.destroy();
        sessions.delete(t.sid);
      });
    });
  });
  await new Promise((r) => server.listen(port, host, r));
  const addr = server.address();
  const relay = `http://${host}:${addr.port}`;
  const wsUrl = `ws://${host}:${addr.port}/`;
  return {
    relay,
    wsUrl,
    daemon,
    sessions,
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => r());
        server.closeAllConnections?.();
      }),
  };
}

// Standalone: print one JSON line when ready.
if (import.meta.url === `file://${process.argv[1]}`) {
  const m = await startMockRelay({ port: Number(process.env.PORT ?? 0) });
  console.log(JSON.stringify({ relay: m.relay, daemon_id: m.daemon.id, fingerprint: m.daemon.fingerprint }));
}
