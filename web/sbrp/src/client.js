// The client: token from the issuer, WebSocket to the relay, SBRP handshake, trust policy,
// encrypted session, SBP handshake, RPC calls and events.

import { randomBytes, toHex, utf8Lossy } from './bytes.js';
import { SbrpError, codeName, err, isTerminal } from './errors.js';
import {
  FrameType,
  MAX_FRAME,
  decodeFrame,
  decodeSid,
  encodeData,
  encodePong,
} from './frame.js';
import { ClientHandshake, fingerprint } from './handshake.js';
import { decodeEnvelope, errorResponse, request, subjectKind } from './rpc.js';
import { ControlOp, DEFAULT_MAX_CHUNKED, SbpCode, SbpEndpoint, encodeControl as sbpControl, encodeError as sbpError } from './sbp.js';
import { clientCipher, DEFAULT_WINDOW } from './session.js';
import { applyTrust, normalizeTrust, pinKey } from './trust.js';

export const HANDSHAKE_TIMEOUT_MS = 30_000;
export const CONNECT_TIMEOUT_MS = 10_000;
export const CALL_TIMEOUT_MS = 30_000;
export const MAX_PENDING_CALLS = 64;
/** Frames queued while an async trust decision runs. */
const MAX_INBOX = 1024;
/** Bytes of plaintext queued while the session is paused. */
const MAX_PAUSED_BYTES = 32 * 1024 * 1024;
const MAX_ISSUER_RESPONSE = 64 * 1024;
const FATAL_SBP = new Set([SbpCode.ProtocolViolation, SbpCode.UnsupportedVersion, SbpCode.InvalidFrame]);
const LIFECYCLE = new Set(['close', 'paused', 'pending', 'resumed', 'rate_limited', 'sequence_error', 'event', 'sbp_error']);

/**
 * Asks the issuer for a client session token: `POST {relay}/v1/sessions {"daemon_id"}`.
 * @returns {Promise<{token: string, sid: string, url: string}>}
 */
export async function fetchSessionToken(relay, daemonId, fetchFn = globalThis.fetch) {
  const endpoint = new URL('v1/sessions', relay.endsWith('/') ? relay : relay + '/').toString();
  let res;
  try {
    res = await fetchFn(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ daemon_id: daemonId }),
    });
  } catch (e) {
    throw err('http_error', `session token request failed: ${e?.message ?? e}`);
  }
  const text = await res.text();
  if (text.length > MAX_ISSUER_RESPONSE) throw err('http_error', 'issuer response too large');
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!res.ok) {
    const code = body && typeof body.error === 'string' ? body.error : `http_${res.status}`;
    const known = ['daemon_not_found', 'daemon_offline'].includes(code) ? code : 'http_error';
    throw err(known, `issuer refused the session (${res.status} ${code})`, { status: res.status, error: code });
  }
  if (!body || typeof body.token !== 'string' || typeof body.sid !== 'string' || typeof body.url !== 'string') {
    throw err('http_error', 'issuer response lacks token, sid or url');
  }
  if (!/^wss?:\/\//.test(body.url)) throw err('http_error', 'issuer url is not ws:// or wss://');
  return { token: body.token, sid: body.sid, url: body.url };
}

/**
 * Connects to a daemon through a relay.
 *
 * @param {object} opts
 * @param {string} opts.relay        issuer/relay HTTP base URL (`POST {relay}/v1/sessions`)
 * @param {string} opts.daemonId     the daemon id
 * @param {string|object} [opts.trust] 'tofu' (default) | 'prompt' | 'strict', or
 *        `{policy, store, prompt}`; `store` defaults to IndexedDB (memory when absent)
 * @param {{token: string, sid: string, url: string}} [opts.session] a token already obtained
 * @param {string} [opts.pinScope]   pin namespace (default: the relay origin)
 * @param {typeof WebSocket} [opts.WebSocket] WebSocket constructor (default global)
 * @param {typeof fetch} [opts.fetch] fetch function (default global)
 * @param {number} [opts.handshakeTimeoutMs] 30000
 * @param {number} [opts.callTimeoutMs] 30000
 * @param {number} [opts.replayWindow] 128
 * @param {number} [opts.maxChunked] 16 MiB
 * @param {string} [opts.peerId]     SBP peer id (random by default)
 * @returns {Promise<ClientSession>}
 */
export async function connect(opts) {
  const { relay, daemonId } = opts ?? {};
  if (typeof relay !== 'string' || typeof daemonId !== 'string' || !daemonId) {
    throw err('invalid_argument', 'connect needs relay and daemonId');
  }
  let origin;
  try {
    origin = new URL(relay).origin;
  } catch {
    throw err('invalid_argument', `relay is not a URL: ${relay}`);
  }
  const trust = normalizeTrust(opts.trust);
  const tok = opts.session ?? (await fetchSessionToken(relay, daemonId, opts.fetch ?? globalThis.fetch));
  const sid = decodeSid(tok.sid);
  const session = new ClientSession({
    daemonId,
    sid,
    trust,
    pinKey: pinKey(opts.pinScope ?? origin, daemonId),
    WebSocket: opts.WebSocket ?? globalThis.WebSocket,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
    callTimeoutMs: opts.callTimeoutMs ?? CALL_TIMEOUT_MS,
    replayWindow: opts.replayWindow ?? DEFAULT_WINDOW,
    maxChunked: opts.maxChunked ?? DEFAULT_MAX_CHUNKED,
    peerId: opts.peerId ?? `web-${toHex(randomBytes(8))}`,
    ephemeralPrivateKey: opts._ephemeralPrivateKey,
  });
  const sep = tok.url.includes('?') ? '&' : '?';
  await session._open(`${tok.url}${sep}token=${encodeURIComponent(tok.token)}`);
  return session;
}

/** One end-to-end encrypted session to a daemon. */
export class ClientSession {
  constructor(o) {
    this.daemonId = o.daemonId;
    this.sid = o.sid;
    this._o = o;
    /** 'connecting' | 'handshake' | 'sbp' | 'open' | 'paused' | 'closed' */
    this.state = 'connecting';
    /** identity key and fingerprint of the daemon, after the handshake */
    this.identityKey = null;
    this.fingerprint = null;
    /** the peer's SBP handshake */
    this.peer = null;
    this.stats = { sequenceErrors: 0, dropped: 0, framesIn: 0, framesOut: 0 };
    this._handlers = new Map();
    this._pending = new Map();
    this._paused = [];
    this._pausedBytes = 0;
    this._inbox = 0;
    this._chain = Promise.resolve();
    this._hs = null;
    this._cipher = null;
    this._sbp = new SbpEndpoint({ peerId: o.peerId, maxChunked: o.maxChunked });
    this._timer = null;
    this._ws = null;
    this._openWait = null;
  }

  /** Subscribe; returns an unsubscribe function. Lifecycle names: close, paused, pending,
   * resumed, rate_limited, sequence_error, sbp_error, event (every RPC event as `{name, data}`);
   * any other name subscribes to RPC events of that name (handler gets `data, name`). */
  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this._handlers.get(name)?.delete(fn);
  }

  _emit(name, ...args) {
    for (const fn of this._handlers.get(name) ?? []) {
      try {
        fn(...args);
      } catch {
        // handler errors never break the session
      }
    }
  }

  _open(url) {
    return new Promise((resolve, reject) => {
      this._openWait = { resolve, reject };
      let ws;
      try {
        ws = new this._o.WebSocket(url);
      } catch (e) {
        this._fail(err('closed', `WebSocket could not be opened: ${e?.message ?? e}`));
        return;
      }
      this._ws = ws;
      ws.binaryType = 'arraybuffer';
      this._timer = setTimeout(
        () => this._fail(err('handshake_timeout', 'WebSocket did not open in time')),
        Math.min(CONNECT_TIMEOUT_MS, this._o.handshakeTimeoutMs),
      );
      ws.onopen = () => {
        if (this.state !== 'connecting') return;
        clearTimeout(this._timer);
        this._timer = setTimeout(
          () => this._fail(err('handshake_timeout', `handshake not complete within ${this._o.handshakeTimeoutMs} ms`)),
          this._o.handshakeTimeoutMs,
        );
        try {
          this._hs = new ClientHandshake({ daemonId: this.daemonId, sid: this.sid, ephemeralPrivateKey: this._o.ephemeralPrivateKey });
          this.state = 'handshake';
          this._sendRaw(this._hs.initFrame());
        } catch (e) {
          this._fail(e instanceof SbrpError ? e : err('handshake_failed', String(e)));
        }
      };
      ws.onmessage = (ev) => this._onMessage(ev.data);
      ws.onclose = (ev) => {
        this._fail(err('closed', `WebSocket closed (${ev?.code ?? 'no code'})`, { closeCode: ev?.code }), true);
      };
      ws.onerror = () => {
        // onclose follows
      };
    });
  }

  _sendRaw(bytes) {
    this.stats.framesOut++;
    this._ws.send(bytes);
  }

  _onMessage(data) {
    if (this.state === 'closed') return;
    if (typeof data === 'string') {
      this._fail(err('malformed_frame', 'text WebSocket message'));
      return;
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (!bytes || bytes.length > MAX_FRAME) {
      this._fail(err('malformed_frame', 'oversize or non-binary WebSocket message'));
      return;
    }
    this.stats.framesIn++;
    if (++this._inbox > MAX_INBOX) {
      this._fail(err('backpressure', 'too many frames queued during the handshake'));
      return;
    }
    // Frames are processed strictly in order; the chain only waits during an async trust
    // decision (prompt / async pin stores).
    this._chain = this._chain
      .then(() => {
        this._inbox--;
        if (this.state !== 'closed') return this._onFrame(bytes);
      })
      .catch((e) => this._fail(e instanceof SbrpError ? e : err('internal_error', String(e?.message ?? e))));
  }

  async _onFrame(bytes) {
    let f;
    try {
      f = decodeFrame(bytes);
    } catch (e) {
      this._fail(this.state === 'handshake' ? err('handshake_failed', `bad frame during handshake: ${e.message}`) : e);
      return;
    }
    if (f.type === FrameType.Ping) {
      this._sendRaw(encodePong(f.payload));
      return;
    }
    if (f.type === FrameType.Pong) return;
    if (f.type === FrameType.Control) {
      this._onControl(f);
      return;
    }
    if (this.state === 'handshake') {
      if (f.type !== FrameType.HandshakeAccept) {
        this._fail(err('handshake_failed', `unexpected frame type 0x${f.type.toString(16)} while waiting for HandshakeAccept`));
        return;
      }
      await this._onAccept(f);
      return;
    }
    if (f.type !== FrameType.Data) {
      this._fail(err('protocol_violation', `unexpected frame type 0x${f.type.toString(16)} in an established session`));
      return;
    }
    if (f.sid !== this.sid) {
      this.stats.dropped++;
      return;
    }
    let plaintext;
    try {
      plaintext = this._cipher.open(f.payload);
    } catch (e) {
      if (e.kind === 'sequence_error') {
        this.stats.sequenceErrors++;
        this._emit('sequence_error', e);
        return;
      }
      this._fail(e);
      return;
    }
    this._onPlaintext(plaintext);
  }

  _onControl(f) {
    const name = codeName(f.code);
    const details = { code: f.code, sid: f.sid, diagnostic: f.message };
    if (isTerminal(f.code)) {
      this._fail(err(name, `relay ended the session: ${name}`, details));
      return;
    }
    switch (name) {
      case 'session_paused':
        if (this.state === 'open') this.state = 'paused';
        this._emit('paused', details);
        break;
      case 'session_pending':
        this._emit('pending', details);
        break;
      case 'session_resumed':
        if (this.state === 'paused') {
          this.state = 'open';
          this._flushPaused();
        }
        this._emit('resumed', details);
        break;
      case 'rate_limited':
        this._emit('rate_limited', details);
        break;
      default:
        // session_ended is for daemons; ignore
        break;
    }
  }

  async _onAccept(f) {
    const hs = this._hs;
    const { identityPub } = hs.parseAccept(f);
    const decision = await applyTrust({ trust: this._o.trust, key: this._o.pinKey, daemonId: this.daemonId, identityPub });
    if (this.state !== 'handshake') return;
    const keys = hs.complete(decision.selectedKey);
    this._hs = null;
    this._cipher = clientCipher(keys, this._o.replayWindow);
    keys.clientToDaemon.fill(0);
    keys.daemonToClient.fill(0);
    this.identityKey = Uint8Array.from(identityPub);
    this.fingerprint = fingerprint(identityPub);
    if (decision.pinAfter) await this._o.trust.store.set(this._o.pinKey, identityPub);
    this.state = 'sbp';
    this._sealAndSend([this._sbp.handshakeFrame(randomBytes(16))]);
  }

  _onPlaintext(plaintext) {
    let ev;
    try {
      ev = this._sbp.receive(plaintext);
    } catch (e) {
      const code = e.code ?? SbpCode.ProtocolViolation;
      if (FATAL_SBP.has(code) || e.kind === 'protocol_violation' || e.kind === 'unsupported_version') {
        try {
          this._sealAndSend([sbpError(randomBytes(16), code, e.message)]);
        } catch {
          // closing anyway
        }
        this._fail(err(e.kind ?? 'protocol_violation', `SBP: ${e.message}`, { code }));
      }
      return;
    }
    switch (ev.type) {
      case 'handshake':
        this.peer = ev.handshake;
        if (this.state === 'sbp') {
          this.state = 'open';
          clearTimeout(this._timer);
          this._timer = null;
          const w = this._openWait;
          this._openWait = null;
          w?.resolve(this);
        }
        return;
      case 'message':
        this._onMessageFrame(ev);
        return;
      case 'error':
        if (FATAL_SBP.has(ev.code)) {
          this._fail(err('protocol_violation', `peer sent SBP error ${ev.code}: ${ev.message}`, { code: ev.code }));
        } else {
          this._emit('sbp_error', { code: ev.code, message: ev.message });
        }
        return;
      case 'control':
        if (ev.op === ControlOp.Ping) this._sealAndSend([sbpControl(randomBytes(16), ControlOp.Pong, ev.data)]);
        else if (ev.op === ControlOp.Close) this._fail(err('closed', `peer closed the session: ${utf8Lossy(ev.data)}`), false, true);
        return;
      default:
        return; // ack, chunk_buffered
    }
  }

  _onMessageFrame({ subject, data }) {
    const kind = subjectKind(subject);
    if (!kind) return; // app/…, stream/…: not handled by this client
    let env;
    try {
      env = decodeEnvelope(subject, data);
    } catch {
      return; // RPC errors never close the session
    }
    if (env.t === 'N') {
      this._emit('event', { name: env.name, data: env.data });
      if (!LIFECYCLE.has(env.name)) this._emit(env.name, env.data, env.name);
      return;
    }
    if (env.t === 'r') {
      // This client exposes no methods.
      try {
        this._sendMessage('rpc', errorResponse(env.cid, SbpCode.UnsupportedMethod, `unknown method ${env.method}`));
      } catch {
        // ignore
      }
      return;
    }
    const p = this._pending.get(env.cid);
    if (!p) return;
    this._pending.delete(env.cid);
    clearTimeout(p.timer);
    if (env.t === 'R') p.resolve(env.result);
    else p.reject(err('rpc_error', env.message, { code: env.code, data: env.data, method: p.method }));
  }

  _sealAndSend(plaintexts) {
    if (this.state === 'paused') {
      for (const p of plaintexts) {
        this._pausedBytes += p.length;
        this._paused.push(p);
      }
      if (this._pausedBytes > MAX_PAUSED_BYTES) this._fail(err('backpressure', 'too much data queued while paused'));
      return;
    }
    for (const p of plaintexts) {
      this._sendRaw(encodeData(this.sid, this._cipher.seal(p)));
      if (this._cipher.exhausted) {
        this._fail(err('sequence_exhausted', 'send sequence exhausted; reconnect for new keys'));
        return;
      }
    }
  }

  _flushPaused() {
    const q = this._paused;
    this._paused = [];
    this._pausedBytes = 0;
    this._sealAndSend(q);
  }

  _sendMessage(subject, data) {
    this._sealAndSend(this._sbp.encodeMessage(randomBytes(16), subject, data));
  }

  /**
   * Calls a method. Resolves with `result`; rejects with `rpc_error` (`code`, `data`),
   * `timeout` (1103), `closed`, or `payload_too_large` (peer without keyline.chunk/1).
   * @param {string} method @param {unknown} [params] @param {{timeoutMs?: number}} [opts]
   */
  call(method, params, opts = {}) {
    return new Promise((resolve, reject) => {
      if (this.state !== 'open' && this.state !== 'paused') {
        reject(err('closed', `session is ${this.state}`));
        return;
      }
      if (typeof method !== 'string' || !method) {
        reject(err('invalid_argument', 'method must be a non-empty string'));
        return;
      }
      if (this._pending.size >= MAX_PENDING_CALLS) {
        reject(err('backpressure', `more than ${MAX_PENDING_CALLS} calls in flight`));
        return;
      }
      const frameId = randomBytes(16);
      const cid = toHex(frameId);
      let plaintexts;
      try {
        plaintexts = this._sbp.encodeMessage(frameId, 'rpc', request(cid, method, params));
      } catch (e) {
        reject(e);
        return;
      }
      const ms = opts.timeoutMs ?? this._o.callTimeoutMs;
      const timer = setTimeout(() => {
        if (this._pending.delete(cid)) reject(err('timeout', `${method} timed out after ${ms} ms`, { code: SbpCode.Timeout }));
      }, ms);
      this._pending.set(cid, { resolve, reject, timer, method });
      try {
        this._sealAndSend(plaintexts);
      } catch (e) {
        this._pending.delete(cid);
        clearTimeout(timer);
        reject(e);
      }
    });
  }

  /** Closes the session (sends SBP Close, then closes the WebSocket). */
  close(reason = '') {
    if (this.state === 'closed') return;
    if (this.state === 'open') {
      try {
        this._sealAndSend([sbpControl(randomBytes(16), ControlOp.Close, new TextEncoder().encode(reason))]);
      } catch {
        // closing anyway
      }
    }
    this._fail(null, false, true);
  }

  /** Ends the session: `error` null for a normal close. */
  _fail(error, fromSocket = false, normal = false) {
    if (this.state === 'closed') return;
    const wasOpen = this._openWait === null;
    this.state = 'closed';
    clearTimeout(this._timer);
    this._timer = null;
    this._hs?.destroy();
    this._hs = null;
    this._cipher?.destroy();
    this._paused = [];
    const e = error ?? err('closed', 'session closed');
    for (const p of this._pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this._pending.clear();
    if (!fromSocket && this._ws) {
      try {
        this._ws.close(1000);
      } catch {
        // ignore
      }
    }
    if (this._openWait) {
      const w = this._openWait;
      this._openWait = null;
      w.reject(e);
    }
    if (wasOpen) this._emit('close', { error: normal ? null : error });
  }
}
