// Small byte helpers shared by the codec, handshake and session code.

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });
const decStrict = new TextDecoder('utf-8', { fatal: true });

/** @param {string} s @returns {Uint8Array} */
export const utf8 = (s) => enc.encode(s);

/** Lossy UTF-8 decode (invalid sequences → U+FFFD). @param {Uint8Array} b */
export const utf8Lossy = (b) => dec.decode(b);

/** Strict UTF-8 decode; returns null on invalid input. @param {Uint8Array} b */
export function utf8Strict(b) {
  try {
    return decStrict.decode(b);
  } catch {
    return null;
  }
}

/** @param {...Uint8Array} parts @returns {Uint8Array} */
export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** @param {Uint8Array} b @returns {string} lowercase hex */
export function toHex(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

/** @param {string} h @returns {Uint8Array} */
export function fromHex(h) {
  if (typeof h !== 'string' || h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) {
    throw new TypeError('invalid hex');
  }
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

/** Constant-time equality for equal-length inputs (length is not secret). */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** True if every byte is zero (constant time in the length). */
export function isAllZero(b) {
  let d = 0;
  for (let i = 0; i < b.length; i++) d |= b[i];
  return d === 0;
}

/** Overwrite with zeros (best effort in JS). @param {Uint8Array|undefined|null} b */
export function wipe(b) {
  if (b && typeof b.fill === 'function') b.fill(0);
}

export const U64_MAX = (1n << 64n) - 1n;

/** @param {bigint} v @returns {Uint8Array} 8 bytes big-endian */
export function u64be(v) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, v), false);
  return out;
}

/** @param {Uint8Array} b @param {number} off */
export function readU64be(b, off = 0) {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(off, false);
}

/** @param {number} v */
export function u32be(v) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0, false);
  return out;
}

export function readU32be(b, off = 0) {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, false);
}

export function u32le(v) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0, true);
  return out;
}

export function readU32le(b, off = 0) {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}

/** Cryptographically secure random bytes (WebCrypto; available in browsers and Node ≥ 20). */
export function randomBytes(n) {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}
