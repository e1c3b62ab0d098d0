// SBRP handshake (spec section 3) and fingerprints (section 5), both roles.
//
// The client role is what browsers use; the daemon role exists for the vector tests and the
// Node mock daemon used by the browser tests.

import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { concat, isAllZero, randomBytes, utf8, wipe, equalBytes } from './bytes.js';
import { err } from './errors.js';
import { FrameType, decodeFrame, encodeAccept, encodeInit } from './frame.js';

export const HANDSHAKE_CONTEXT = 'sbrp-v1-handshake';
export const TRANSCRIPT_CONTEXT = 'sbrp-v1-transcript';
export const HKDF_INFO = 'sbrp-session-keys';

const ED_ORDER = ed25519.Point.Fn.ORDER;

/** `"SHA256:" + uppercase hex pairs of SHA-256(key) joined by ":"`. @param {Uint8Array} publicKey */
export function fingerprint(publicKey) {
  const h = sha256(publicKey);
  return 'SHA256:' + [...h].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
}

/** `"sbrp-v1-handshake" ‖ daemon_id ‖ c_pub ‖ d_pub` */
export const signaturePreimage = (daemonId, cPub, dPub) => concat(utf8(HANDSHAKE_CONTEXT), utf8(daemonId), cPub, dPub);
/** SHA-256 of the preimage: the Ed25519 message. */
export const signaturePayload = (daemonId, cPub, dPub) => sha256(signaturePreimage(daemonId, cPub, dPub));
/** `"sbrp-v1-transcript" ‖ daemon_id ‖ c_pub ‖ d_pub ‖ signature` */
export const transcriptPreimage = (daemonId, cPub, dPub, sig) =>
  concat(utf8(TRANSCRIPT_CONTEXT), utf8(daemonId), cPub, dPub, sig);
export const transcriptHash = (daemonId, cPub, dPub, sig) => sha256(transcriptPreimage(daemonId, cPub, dPub, sig));

/**
 * HKDF-SHA256(ikm = shared, salt = transcript, info = "sbrp-session-keys", L = 64).
 * @returns {{okm: Uint8Array, clientToDaemon: Uint8Array, daemonToClient: Uint8Array}}
 */
export function deriveSessionKeys(shared, transcript) {
  const okm = hkdf(sha256, shared, transcript, utf8(HKDF_INFO), 64);
  return { okm, clientToDaemon: okm.slice(0, 32), daemonToClient: okm.slice(32, 64) };
}

/**
 * X25519 that rejects an all-zero result (low-order peer key). Throws `handshake_failed`.
 * @param {Uint8Array} priv @param {Uint8Array} peerPub
 */
export function x25519Shared(priv, peerPub) {
  let shared;
  try {
    shared = x25519.getSharedSecret(priv, peerPub);
  } catch {
    throw err('handshake_failed', 'X25519 shared secret is all zero (low-order public key)');
  }
  if (isAllZero(shared)) throw err('handshake_failed', 'X25519 shared secret is all zero (low-order public key)');
  return shared;
}

function bytesToNumberLE(b) {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
}

/**
 * Strict Ed25519 verification in the sense of ed25519-dalek's `verify_strict`: canonical
 * encodings of A and R (y < p), S < L, neither A nor R of small order, and the cofactorless
 * equation R = [S]B − [k]A. Returns a boolean; never throws on bad input.
 * @param {Uint8Array} sig 64 bytes @param {Uint8Array} msg @param {Uint8Array} publicKey 32 bytes
 */
export function verifyStrict(sig, msg, publicKey) {
  try {
    if (!(sig instanceof Uint8Array) || sig.length !== 64) return false;
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
    // RFC 8032 checks (canonical A and R, S < L, A not small order, cofactored equation).
    if (!ed25519.verify(sig, msg, publicKey, { zip215: false })) return false;
    const { Point } = ed25519;
    const A = Point.fromBytes(publicKey, false);
    const rBytes = sig.subarray(0, 32);
    const R = Point.fromBytes(rBytes, false);
    if (A.isSmallOrder() || R.isSmallOrder()) return false;
    const s = bytesToNumberLE(sig.subarray(32, 64));
    if (s >= ED_ORDER) return false;
    const k = bytesToNumberLE(sha512(concat(rBytes, publicKey, msg))) % ED_ORDER;
    const expectR = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
    return equalBytes(expectR.toBytes(), rBytes);
  } catch {
    return false;
  }
}

/**
 * The client side of one handshake.
 *
 *   const hs = new ClientHandshake({ daemonId, sid });
 *   ws.send(hs.initFrame());
 *   // on HandshakeAccept: apply the trust policy to hs.parseAccept(frame).identityPub, then
 *   const keys = hs.complete(selectedKey);
 */
export class ClientHandshake {
  /**
   * @param {{daemonId: string, sid: bigint, ephemeralPrivateKey?: Uint8Array}} opts
   *   `ephemeralPrivateKey` is for tests only (vectors); normally fresh random bytes.
   */
  constructor({ daemonId, sid, ephemeralPrivateKey }) {
    if (typeof daemonId !== 'string' || daemonId.length === 0) throw err('invalid_argument', 'daemonId required');
    this.daemonId = daemonId;
    this.sid = BigInt(sid);
    this._priv = ephemeralPrivateKey ? Uint8Array.from(ephemeralPrivateKey) : randomBytes(32);
    this.clientPub = x25519.getPublicKey(this._priv);
    /** @type {import('./frame.js').Frame | null} */
    this._accept = null;
  }

  /** The HandshakeInit frame. */
  initFrame() {
    return encodeInit(this.sid, this.clientPub);
  }

  /**
   * Decodes and checks a HandshakeAccept frame (bytes or an already decoded frame). Throws
   * `handshake_failed` for anything that is not a well-formed Accept for this sid.
   * @returns {{identityPub: Uint8Array, acceptPub: Uint8Array, signature: Uint8Array}}
   */
  parseAccept(frameOrBytes) {
    let f = frameOrBytes;
    if (f instanceof Uint8Array) {
      try {
        f = decodeFrame(f);
      } catch (e) {
        throw err('handshake_failed', `bad HandshakeAccept: ${e.message}`);
      }
    }
    if (f.type !== FrameType.HandshakeAccept) throw err('handshake_failed', 'expected HandshakeAccept');
    if (f.sid !== this.sid) throw err('handshake_failed', 'HandshakeAccept for another sid');
    this._accept = f;
    return { identityPub: Uint8Array.from(f.identityPub), acceptPub: Uint8Array.from(f.acceptPub), signature: Uint8Array.from(f.signature) };
  }

  /**
   * Verifies the signature with the key the trust policy selected, derives the keys and
   * wipes the ephemeral secret. Throws `handshake_failed`.
   * @param {Uint8Array} selectedKey the pinned key, or on first contact the advertised one
   * @returns {{clientToDaemon: Uint8Array, daemonToClient: Uint8Array, transcript: Uint8Array}}
   */
  complete(selectedKey) {
    const f = this._accept;
    if (!f) throw err('handshake_failed', 'no HandshakeAccept parsed');
    if (!this._priv) throw err('handshake_failed', 'handshake already completed');
    const msg = signaturePayload(this.daemonId, this.clientPub, f.acceptPub);
    if (!verifyStrict(f.signature, msg, selectedKey)) {
      throw err('handshake_failed', 'daemon signature does not verify');
    }
    let shared;
    try {
      shared = x25519Shared(this._priv, f.acceptPub);
    } finally {
      wipe(this._priv);
      this._priv = null;
    }
    const transcript = transcriptHash(this.daemonId, this.clientPub, f.acceptPub, f.signature);
    const keys = deriveSessionKeys(shared, transcript);
    wipe(shared);
    wipe(keys.okm);
    return { clientToDaemon: keys.clientToDaemon, daemonToClient: keys.daemonToClient, transcript };
  }

  /** Wipes the ephemeral secret (on failure paths). */
  destroy() {
    wipe(this._priv);
    this._priv = null;
  }
}

/**
 * The daemon side: answers a HandshakeInit. Throws `malformed_frame` / `handshake_failed`.
 * @param {{identitySeed: Uint8Array, daemonId: string, init: Uint8Array | import('./frame.js').Frame,
 *          ephemeralPrivateKey?: Uint8Array}} opts
 * @returns {{acceptFrame: Uint8Array, sid: bigint, clientToDaemon: Uint8Array, daemonToClient: Uint8Array}}
 */
export function daemonAccept({ identitySeed, daemonId, init, ephemeralPrivateKey }) {
  const f = init instanceof Uint8Array ? decodeFrame(init) : init;
  if (f.type !== FrameType.HandshakeInit) throw err('handshake_failed', 'expected HandshakeInit');
  const cPub = f.payload;
  const dPriv = ephemeralPrivateKey ? Uint8Array.from(ephemeralPrivateKey) : randomBytes(32);
  try {
    const shared = x25519Shared(dPriv, cPub);
    const dPub = x25519.getPublicKey(dPriv);
    const idPub = ed25519.getPublicKey(identitySeed);
    const sig = ed25519.sign(signaturePayload(daemonId, cPub, dPub), identitySeed);
    const keys = deriveSessionKeys(shared, transcriptHash(daemonId, cPub, dPub, sig));
    wipe(shared);
    wipe(keys.okm);
    return {
      acceptFrame: encodeAccept(f.sid, idPub, dPub, sig),
      sid: f.sid,
      clientToDaemon: keys.clientToDaemon,
      daemonToClient: keys.daemonToClient,
    };
  } finally {
    wipe(dPriv);
  }
}

/** Ed25519 public key of a 32-byte seed. */
export const identityPublicKey = (seed) => ed25519.getPublicKey(seed);
