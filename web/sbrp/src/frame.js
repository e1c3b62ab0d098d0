// SBRP frames (spec section 2): 13-byte big-endian header + payload, and the sid encoding.

import { concat, readU32be, readU64be, u32be, u64be, utf8, utf8Lossy, U64_MAX } from './bytes.js';
import { err } from './errors.js';

export const HEADER_LEN = 13;
export const MAX_PAYLOAD = 65536;
export const MAX_FRAME = HEADER_LEN + MAX_PAYLOAD;
export const NONCE_LEN = 12;
export const TAG_LEN = 16;
export const DATA_OVERHEAD = NONCE_LEN + TAG_LEN;
export const MAX_PLAINTEXT = MAX_PAYLOAD - DATA_OVERHEAD; // 65508
export const MAX_PING_PAYLOAD = 8;
export const INIT_LEN = 32;
export const ACCEPT_LEN = 128;
export const SIGNAL_LEN = 2;
export const MIN_CONTROL_LEN = 2;

export const FrameType = Object.freeze({
  HandshakeInit: 0x01,
  HandshakeAccept: 0x02,
  Data: 0x03,
  Signal: 0x04,
  Ping: 0x10,
  Pong: 0x11,
  Control: 0x20,
});

export const Signal = Object.freeze({ Ready: 0, Close: 1 });
export const SignalReason = Object.freeze({ None: 0, StateLost: 1, Shutdown: 2, Policy: 3, Error: 4 });

const KNOWN_TYPES = new Set(Object.values(FrameType));
const SESSION_BOUND = new Set([0x01, 0x02, 0x03, 0x04]);

/**
 * Encodes a frame, refusing everything section 2.5 forbids.
 * @param {number} type @param {bigint} sid @param {Uint8Array} payload
 * @returns {Uint8Array}
 */
export function encodeFrame(type, sid, payload = new Uint8Array(0)) {
  sid = BigInt(sid);
  if (sid < 0n || sid > U64_MAX) throw err('invalid_argument', 'sid out of u64 range');
  if (!KNOWN_TYPES.has(type)) throw err('invalid_argument', `unknown frame type ${type}`);
  if (payload.length > MAX_PAYLOAD) throw err('invalid_argument', 'payload larger than 65536');
  if (SESSION_BOUND.has(type) && sid === 0n) throw err('invalid_argument', 'session-bound frame with sid 0');
  switch (type) {
    case FrameType.Ping:
    case FrameType.Pong:
      if (sid !== 0n) throw err('invalid_argument', 'Ping/Pong with sid ≠ 0');
      if (payload.length > MAX_PING_PAYLOAD) throw err('invalid_argument', 'Ping/Pong payload > 8');
      break;
    case FrameType.HandshakeInit:
      if (payload.length !== INIT_LEN) throw err('invalid_argument', 'HandshakeInit must be 32 bytes');
      break;
    case FrameType.HandshakeAccept:
      if (payload.length !== ACCEPT_LEN) throw err('invalid_argument', 'HandshakeAccept must be 128 bytes');
      break;
    case FrameType.Data:
      if (payload.length < DATA_OVERHEAD) throw err('invalid_argument', 'Data payload shorter than 28');
      break;
    case FrameType.Signal:
      if (payload.length !== SIGNAL_LEN) throw err('invalid_argument', 'Signal must be 2 bytes');
      break;
    case FrameType.Control:
      if (payload.length < MIN_CONTROL_LEN) throw err('invalid_argument', 'Control shorter than 2');
      break;
  }
  const out = new Uint8Array(HEADER_LEN + payload.length);
  out[0] = type;
  out.set(u32be(payload.length), 1);
  out.set(u64be(sid), 5);
  out.set(payload, HEADER_LEN);
  return out;
}

export const encodeInit = (sid, clientEphPub) => encodeFrame(FrameType.HandshakeInit, sid, clientEphPub);

export function encodeAccept(sid, identityPub, acceptPub, signature) {
  if (identityPub.length !== 32 || acceptPub.length !== 32 || signature.length !== 64) {
    throw err('invalid_argument', 'HandshakeAccept parts must be 32, 32 and 64 bytes');
  }
  return encodeFrame(FrameType.HandshakeAccept, sid, concat(identityPub, acceptPub, signature));
}

export const encodeData = (sid, dataPayload) => encodeFrame(FrameType.Data, sid, dataPayload);
export const encodeSignal = (sid, signal, reason = 0) =>
  encodeFrame(FrameType.Signal, sid, new Uint8Array([signal, reason]));
export const encodePing = (payload = new Uint8Array(0)) => encodeFrame(FrameType.Ping, 0n, payload);
export const encodePong = (payload = new Uint8Array(0)) => encodeFrame(FrameType.Pong, 0n, payload);

/** @param {number} code @param {bigint} sid @param {string} [message] */
export function encodeControl(code, sid, message = '') {
  const body = utf8(message);
  const p = new Uint8Array(2 + body.length);
  p[0] = code >> 8;
  p[1] = code & 0xff;
  p.set(body, 2);
  return encodeFrame(FrameType.Control, sid, p);
}

/**
 * @typedef {object} Frame
 * @property {number} type
 * @property {bigint} sid
 * @property {Uint8Array} payload
 * @property {Uint8Array} [identityPub]  HandshakeAccept
 * @property {Uint8Array} [acceptPub]    HandshakeAccept
 * @property {Uint8Array} [signature]    HandshakeAccept
 * @property {number} [direction]        Data (nonce bytes 0..4)
 * @property {bigint} [seq]              Data (nonce bytes 4..12)
 * @property {number} [signal]           Signal
 * @property {number} [reason]           Signal
 * @property {number} [code]             Control
 * @property {string} [message]          Control (lossy UTF-8)
 */

/**
 * Endpoint decoder: header ≥ 13 → known type → length ≤ 65536 → sid rule → length matches →
 * per-type size. Throws an SbrpError whose `kind` is the wire code name
 * (`malformed_frame`, `invalid_frame_type`, `payload_too_large`, `invalid_session_id`).
 * Never allocates beyond the input; never reads past it.
 * @param {Uint8Array} bytes
 * @returns {Frame}
 */
export function decodeFrame(bytes) {
  if (!(bytes instanceof Uint8Array)) throw err('malformed_frame', 'frame is not bytes');
  if (bytes.length < HEADER_LEN) throw err('malformed_frame', 'frame shorter than 13 bytes');
  const type = bytes[0];
  if (!KNOWN_TYPES.has(type)) throw err('invalid_frame_type', `unknown frame type 0x${type.toString(16)}`);
  const length = readU32be(bytes, 1);
  if (length > MAX_PAYLOAD) throw err('payload_too_large', 'declared length above 65536');
  const sid = readU64be(bytes, 5);
  if (SESSION_BOUND.has(type) && sid === 0n) throw err('invalid_session_id', 'session-bound frame with sid 0');
  if ((type === FrameType.Ping || type === FrameType.Pong) && sid !== 0n) {
    throw err('invalid_session_id', 'Ping/Pong with sid ≠ 0');
  }
  if (bytes.length - HEADER_LEN !== length) throw err('malformed_frame', 'declared length does not match');
  const payload = bytes.subarray(HEADER_LEN);
  /** @type {Frame} */
  const f = { type, sid, payload };
  switch (type) {
    case FrameType.HandshakeInit:
      if (length !== INIT_LEN) throw err('malformed_frame', 'HandshakeInit must be 32 bytes');
      break;
    case FrameType.HandshakeAccept:
      if (length !== ACCEPT_LEN) throw err('malformed_frame', 'HandshakeAccept must be 128 bytes');
      f.identityPub = payload.subarray(0, 32);
      f.acceptPub = payload.subarray(32, 64);
      f.signature = payload.subarray(64, 128);
      break;
    case FrameType.Data:
      if (length < DATA_OVERHEAD) throw err('malformed_frame', 'Data payload shorter than 28');
      f.direction = readU32be(payload, 0);
      f.seq = readU64be(payload, 4);
      break;
    case FrameType.Signal:
      if (length !== SIGNAL_LEN) throw err('malformed_frame', 'Signal must be 2 bytes');
      if (payload[0] > 1) throw err('malformed_frame', 'unknown Signal code');
      f.signal = payload[0];
      f.reason = payload[1] <= 4 ? payload[1] : 0; // unknown reasons are none
      break;
    case FrameType.Ping:
    case FrameType.Pong:
      if (length > MAX_PING_PAYLOAD) throw err('payload_too_large', 'Ping/Pong payload above 8');
      break;
    case FrameType.Control:
      if (length < MIN_CONTROL_LEN) throw err('malformed_frame', 'Control shorter than 2');
      f.code = (payload[0] << 8) | payload[1];
      f.message = utf8Lossy(payload.subarray(2));
      break;
  }
  return f;
}

// ---- sid: unpadded base64url of the 8-byte big-endian value ----

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Map([...B64URL].map((c, i) => [c, i]));

/** @param {Uint8Array} b @returns {string} unpadded base64url */
export function base64urlEncode(b) {
  let s = '';
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += B64URL[n >> 18] + B64URL[(n >> 12) & 63] + B64URL[(n >> 6) & 63] + B64URL[n & 63];
  }
  const r = b.length - i;
  if (r === 1) {
    const n = b[i] << 16;
    s += B64URL[n >> 18] + B64URL[(n >> 12) & 63];
  } else if (r === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    s += B64URL[n >> 18] + B64URL[(n >> 12) & 63] + B64URL[(n >> 6) & 63];
  }
  return s;
}

/**
 * Strict unpadded base64url decode: alphabet `A–Z a–z 0–9 - _`, no padding, canonical trailing
 * bits. Returns null if invalid.
 * @param {string} s @returns {Uint8Array | null}
 */
export function base64urlDecode(s) {
  if (typeof s !== 'string' || s.length % 4 === 1) return null;
  const vals = [];
  for (const c of s) {
    const v = B64URL_INDEX.get(c);
    if (v === undefined) return null;
    vals.push(v);
  }
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let o = 0;
  let i = 0;
  for (; i + 4 <= vals.length; i += 4) {
    const n = (vals[i] << 18) | (vals[i + 1] << 12) | (vals[i + 2] << 6) | vals[i + 3];
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  const r = vals.length - i;
  if (r === 2) {
    if (vals[i + 1] & 0x0f) return null; // non-canonical
    out[o++] = (vals[i] << 2) | (vals[i + 1] >> 4);
  } else if (r === 3) {
    if (vals[i + 2] & 0x03) return null; // non-canonical
    const n = (vals[i] << 18) | (vals[i + 1] << 12) | (vals[i + 2] << 6);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
  }
  return out;
}

/** @param {bigint} sid @returns {string} 11 characters */
export function encodeSid(sid) {
  sid = BigInt(sid);
  if (sid <= 0n || sid > U64_MAX) throw err('invalid_argument', 'sid must be a non-zero u64');
  return base64urlEncode(u64be(sid));
}

/**
 * Decodes a sid claim; throws `invalid_argument` unless it is exactly 11 canonical base64url
 * characters decoding to a non-zero 8-byte value.
 * @param {string} s @returns {bigint}
 */
export function decodeSid(s) {
  if (typeof s !== 'string' || s.length !== 11) throw err('invalid_argument', 'sid must be 11 characters');
  const b = base64urlDecode(s);
  if (!b || b.length !== 8) throw err('invalid_argument', 'sid is not canonical base64url of 8 bytes');
  const v = readU64be(b);
  if (v === 0n) throw err('invalid_argument', 'sid is zero');
  return v;
}
