// SBP, the inner protocol carried as Data plaintext (spec section 9), and `keyline.chunk/1`
// chunking (section 11). All integers little-endian.
//
// Chunking rule (same as crates/sbrp/src/proto/sbp.rs): when both handshakes list
// `keyline.chunk/1`, a Message whose encoded SBP frame is longer than 65508 bytes is sent as
// Chunk frames (kind 4, flags 0, the Message's frame id, index u32le from 0, total u32le = the
// encoded Message's length, then a slice of 1–65482 bytes). The receiver keeps one open run,
// checks `total` against its maximum (16 MiB default) before allocating, and treats any
// irregularity as protocol violation 1000.

import { concat, readU32le, u32le, utf8, utf8Lossy, utf8Strict, equalBytes } from './bytes.js';
import { err } from './errors.js';
import { MAX_PLAINTEXT } from './frame.js';

export const Kind = Object.freeze({ Control: 0, Message: 1, Ack: 2, Error: 3, Chunk: 4 });
export const ControlOp = Object.freeze({ Handshake: 0, Ping: 1, Pong: 2, Close: 3 });
export const SbpCode = Object.freeze({
  ProtocolViolation: 1000,
  UnsupportedVersion: 1001,
  InvalidFrame: 1002,
  UnsupportedFeature: 1003,
  InvalidEnvelope: 1100,
  UnsupportedMethod: 1101,
  CorrelationMismatch: 1102,
  Timeout: 1103,
  EnvelopeMismatch: 1104,
  ApplicationError: 2000,
});

export const CHUNK_CAPABILITY = 'keyline.chunk/1';
export const RPC_CAPABILITY = 'rpc';
export const PROTOCOL = 'sideband';
export const VERSION = '1';
export const MAX_HANDSHAKE_JSON = 8 * 1024;
export const MAX_SUBJECT_LEN = 256;
export const DEFAULT_MAX_CHUNKED = 16 * 1024 * 1024;
export const CHUNK_HEADER_LEN = 26;
export const MAX_CHUNK_SLICE = MAX_PLAINTEXT - CHUNK_HEADER_LEN; // 65482
const BASE_LEN = 18;
const FLAG_TS = 0x01;

const invalid = (m) => err('invalid_frame', m, { code: SbpCode.InvalidFrame });
const violation = (m) => err('protocol_violation', m, { code: SbpCode.ProtocolViolation });

/**
 * @typedef {object} SbpFrame
 * @property {number} kind
 * @property {Uint8Array} frameId 16 bytes
 * @property {bigint} [timestamp]
 * @property {number} [op]            Control
 * @property {Uint8Array} [data]      Control, Message
 * @property {string} [subject]       Message
 * @property {Uint8Array} [ackFrameId] Ack
 * @property {number} [code]          Error
 * @property {string} [message]       Error (lossy)
 * @property {Uint8Array} [details]   Error
 * @property {number} [index]         Chunk
 * @property {number} [total]         Chunk
 * @property {Uint8Array} [slice]     Chunk
 */

/**
 * Decodes one SBP frame. Errors: kind `invalid_frame` (1002) or for Chunk frames
 * `protocol_violation` (1000).
 * @param {Uint8Array} b @returns {SbpFrame}
 */
export function decodeSbp(b) {
  if (b.length < BASE_LEN) throw invalid('frame shorter than 18 bytes');
  const kind = b[0];
  const flags = b[1];
  const frameId = b.subarray(2, 18);
  let rest = b.subarray(BASE_LEN);
  if (kind === Kind.Chunk) {
    if (flags !== 0) throw violation('Chunk frame with non-zero flags');
    if (rest.length < 8) throw violation('Chunk frame too short');
    const index = readU32le(rest, 0);
    const total = readU32le(rest, 4);
    const slice = rest.subarray(8);
    if (total === 0) throw violation('Chunk total is 0');
    if (slice.length === 0) throw violation('empty Chunk slice');
    return { kind, frameId, index, total, slice };
  }
  if (flags & ~FLAG_TS) throw invalid('reserved flag bits set');
  /** @type {SbpFrame} */
  const f = { kind, frameId };
  if (flags & FLAG_TS) {
    if (rest.length < 8) throw invalid('timestamp flag set but no timestamp');
    f.timestamp = new DataView(rest.buffer, rest.byteOffset, 8).getBigInt64(0, true);
    rest = rest.subarray(8);
  }
  switch (kind) {
    case Kind.Control:
      if (rest.length < 1) throw invalid('Control frame without op');
      if (rest[0] > 3) throw invalid('unknown Control op');
      f.op = rest[0];
      f.data = rest.subarray(1);
      return f;
    case Kind.Message: {
      if (rest.length < 4) throw invalid('Message shorter than its subject length');
      const len = readU32le(rest, 0);
      rest = rest.subarray(4);
      if (len === 0 || len > MAX_SUBJECT_LEN || len > rest.length) throw invalid('Message subject length out of range');
      const subject = utf8Strict(rest.subarray(0, len));
      if (subject === null) throw invalid('Message subject is not UTF-8');
      if (subject.includes('\0')) throw invalid('Message subject contains NUL');
      f.subject = subject;
      f.data = rest.subarray(len);
      return f;
    }
    case Kind.Ack:
      if (rest.length !== 16) throw invalid('Ack body must be 16 bytes');
      f.ackFrameId = rest;
      return f;
    case Kind.Error: {
      if (rest.length < 6) throw invalid('Error frame too short');
      f.code = rest[0] | (rest[1] << 8);
      const len = readU32le(rest, 2);
      rest = rest.subarray(6);
      if (len > rest.length) throw invalid('Error message length exceeds the frame');
      f.message = utf8Lossy(rest.subarray(0, len));
      f.details = rest.subarray(len);
      return f;
    }
    default:
      throw invalid('unknown SBP frame kind');
  }
}

function header(kind, frameId, flags = 0) {
  if (!(frameId instanceof Uint8Array) || frameId.length !== 16) throw err('invalid_argument', 'frameId must be 16 bytes');
  const h = new Uint8Array(BASE_LEN);
  h[0] = kind;
  h[1] = flags;
  h.set(frameId, 2);
  return h;
}

/** Control frame. */
export const encodeControl = (frameId, op, data = new Uint8Array(0)) =>
  concat(header(Kind.Control, frameId), new Uint8Array([op]), data);

/** Message frame. @param {Uint8Array} frameId @param {string} subject @param {Uint8Array} data */
export function encodeMessage(frameId, subject, data) {
  const s = utf8(subject);
  if (s.length === 0 || s.length > MAX_SUBJECT_LEN || subject.includes('\0')) {
    throw err('invalid_argument', 'subject must be 1–256 bytes of UTF-8 without NUL');
  }
  return concat(header(Kind.Message, frameId), u32le(s.length), s, data);
}

export const encodeAck = (frameId, ackFrameId) => concat(header(Kind.Ack, frameId), ackFrameId);

/** Error frame. */
export function encodeError(frameId, code, message = '', details = new Uint8Array(0)) {
  const m = utf8(message);
  const c = new Uint8Array([code & 0xff, (code >> 8) & 0xff]);
  return concat(header(Kind.Error, frameId), c, u32le(m.length), m, details);
}

/** Splits an encoded Message frame into Chunk frames (slices ≤ maxSlice ≤ 65482). */
export function splitIntoChunks(messageFrame, frameId, maxSlice = MAX_CHUNK_SLICE) {
  if (!Number.isInteger(maxSlice) || maxSlice < 1 || maxSlice > MAX_CHUNK_SLICE) {
    throw err('invalid_argument', `chunk slice size must be 1..${MAX_CHUNK_SLICE}`);
  }
  if (messageFrame.length === 0 || messageFrame.length > 0xffffffff) throw err('invalid_argument', 'bad message length');
  const out = [];
  const total = u32le(messageFrame.length);
  for (let off = 0, i = 0; off < messageFrame.length; off += maxSlice, i++) {
    out.push(concat(header(Kind.Chunk, frameId), u32le(i), total, messageFrame.subarray(off, off + maxSlice)));
  }
  return out;
}

/** The handshake JSON object. */
export function makeHandshake(peerId, caps = [RPC_CAPABILITY, CHUNK_CAPABILITY], metadata) {
  const hs = { protocol: PROTOCOL, version: VERSION, peerId, caps };
  if (metadata) hs.metadata = metadata;
  return hs;
}

/** Parses handshake JSON (≤ 8 KiB). Bad JSON → 1000; other protocol/version → 1001. */
export function parseHandshake(data) {
  if (data.length > MAX_HANDSHAKE_JSON) throw violation('handshake JSON larger than 8 KiB');
  const text = utf8Strict(data);
  let hs;
  try {
    hs = text === null ? null : JSON.parse(text);
  } catch {
    hs = null;
  }
  if (!hs || typeof hs !== 'object' || Array.isArray(hs)) throw violation('handshake JSON invalid');
  if (typeof hs.protocol !== 'string' || typeof hs.version !== 'string' || typeof hs.peerId !== 'string') {
    throw violation('handshake JSON missing fields');
  }
  if (hs.caps !== undefined && (!Array.isArray(hs.caps) || hs.caps.some((c) => typeof c !== 'string'))) {
    throw violation('handshake caps must be strings');
  }
  if (hs.protocol !== PROTOCOL || hs.version !== VERSION) {
    throw err('unsupported_version', 'peer speaks another protocol or version', { code: SbpCode.UnsupportedVersion });
  }
  return { protocol: hs.protocol, version: hs.version, peerId: hs.peerId, caps: hs.caps ?? [], metadata: hs.metadata };
}

/** Rebuilds chunked Messages: one open run, `total` checked before allocating. */
export class Reassembler {
  constructor(maxTotal = DEFAULT_MAX_CHUNKED) {
    this.maxTotal = maxTotal;
    this.run = null;
  }

  get isOpen() {
    return this.run !== null;
  }

  /**
   * Feeds one decoded Chunk frame; returns the complete encoded Message frame when the run
   * completes, else null. Throws `protocol_violation` (and resets) on any broken rule.
   */
  push(frameId, index, total, slice) {
    try {
      return this._push(frameId, index, total, slice);
    } catch (e) {
      this.run = null;
      throw e;
    }
  }

  _push(frameId, index, total, slice) {
    if (slice.length === 0) throw violation('empty Chunk slice');
    let run = this.run;
    if (run === null) {
      if (index !== 0) throw violation('chunk run does not start at index 0');
      if (total === 0 || total > this.maxTotal) throw violation('chunk total is 0 or above the maximum');
      run = this.run = { frameId: Uint8Array.from(frameId), total, next: 0, buf: new Uint8Array(total), len: 0 };
    } else if (!equalBytes(run.frameId, frameId)) {
      throw violation(index === 0 ? 'second chunk run opened while one is open' : 'chunk frame id changed inside a run');
    }
    if (index !== run.next) throw violation('chunk index gap or duplicate');
    if (total !== run.total) throw violation('chunk total changed inside a run');
    if (slice.length > run.total - run.len) throw violation('chunks carry more bytes than total');
    run.buf.set(slice, run.len);
    run.len += slice.length;
    run.next += 1;
    if (run.len < run.total) return null;
    this.run = null;
    let f;
    try {
      f = decodeSbp(run.buf);
    } catch {
      f = null;
    }
    if (!f || f.kind !== Kind.Message || !equalBytes(f.frameId, run.frameId)) {
      throw violation('reassembled frame is not a Message with the chunk frame id');
    }
    return run.buf;
  }
}

/**
 * The SBP side of one session: our handshake, the peer's, chunk negotiation and reassembly.
 * `receive` returns an event object or throws an SbrpError with an SBP `code`.
 */
export class SbpEndpoint {
  /** @param {{peerId: string, caps?: string[], metadata?: object, maxChunked?: number}} opts */
  constructor({ peerId, caps, metadata, maxChunked = DEFAULT_MAX_CHUNKED }) {
    this.local = makeHandshake(peerId, caps, metadata);
    this.peer = null;
    this.reassembler = new Reassembler(maxChunked);
  }

  handshakeFrame(frameId) {
    const json = utf8(JSON.stringify(this.local));
    if (json.length > MAX_HANDSHAKE_JSON) throw err('invalid_argument', 'handshake JSON larger than 8 KiB');
    return encodeControl(frameId, ControlOp.Handshake, json);
  }

  get chunking() {
    return this.local.caps.includes(CHUNK_CAPABILITY) && !!this.peer && this.peer.caps.includes(CHUNK_CAPABILITY);
  }

  /**
   * @param {Uint8Array} plaintext
   * @returns {{type: 'handshake', handshake: object} | {type: 'message', frameId: Uint8Array, subject: string, data: Uint8Array}
   *   | {type: 'chunk_buffered'} | {type: 'ack', ackFrameId: Uint8Array} | {type: 'error', code: number, message: string}
   *   | {type: 'control', op: number, data: Uint8Array, frameId: Uint8Array}}
   */
  receive(plaintext) {
    const f = decodeSbp(plaintext);
    if (this.peer === null) {
      if (f.kind === Kind.Control && f.op === ControlOp.Handshake) {
        this.peer = parseHandshake(f.data);
        return { type: 'handshake', handshake: this.peer };
      }
      throw violation('frame before the SBP handshake');
    }
    switch (f.kind) {
      case Kind.Control:
        if (f.op === ControlOp.Handshake) throw violation('second SBP handshake');
        return { type: 'control', op: f.op, data: f.data, frameId: f.frameId };
      case Kind.Message:
        return { type: 'message', frameId: f.frameId, subject: f.subject, data: f.data };
      case Kind.Ack:
        return { type: 'ack', ackFrameId: f.ackFrameId };
      case Kind.Error:
        return { type: 'error', code: f.code, message: f.message };
      case Kind.Chunk: {
        if (!this.chunking) throw violation('Chunk frame without keyline.chunk/1');
        const whole = this.reassembler.push(f.frameId, f.index, f.total, f.slice);
        if (whole === null) return { type: 'chunk_buffered' };
        const m = decodeSbp(whole);
        return { type: 'message', frameId: m.frameId, subject: m.subject, data: m.data };
      }
    }
    throw invalid('unknown SBP frame kind');
  }

  /**
   * The plaintexts (each ≤ 65508) for one Message: a single frame or, with chunking
   * negotiated, a Chunk run. Too large without chunking → `payload_too_large`.
   */
  encodeMessage(frameId, subject, data) {
    const whole = encodeMessage(frameId, subject, data);
    if (whole.length <= MAX_PLAINTEXT) return [whole];
    if (!this.chunking) {
      throw err('payload_too_large', `message of ${whole.length} bytes does not fit one frame and the peer lacks ${CHUNK_CAPABILITY}`, { limit: MAX_PLAINTEXT });
    }
    return splitIntoChunks(whole, frameId, MAX_CHUNK_SLICE);
  }
}
