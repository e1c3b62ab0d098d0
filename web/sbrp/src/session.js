// Session sealing (spec 4.1), sequence exhaustion (4.2) and the replay window (4.3).

import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concat, readU32be, readU64be, u32be, u64be, wipe, U64_MAX } from './bytes.js';
import { err } from './errors.js';
import { DATA_OVERHEAD, MAX_PLAINTEXT, NONCE_LEN } from './frame.js';

export const CLIENT_TO_DAEMON = 1;
export const DAEMON_TO_CLIENT = 2;
export const DEFAULT_WINDOW = 128;
export const MIN_WINDOW = 64;
export const MAX_WINDOW = 4096;

/** `u32be(direction) ‖ u64be(seq)` */
export const makeNonce = (direction, seq) => concat(u32be(direction), u64be(BigInt(seq)));

/**
 * Replay window: `max_seen` and a W-bit bitmap (bit i = `max_seen − i` accepted).
 * Bounded state (a BigInt of W bits); every operation is O(1) in the gap size.
 */
export class ReplayWindow {
  /** @param {number} [w] window size, 64 ≤ W ≤ 4096 (default 128) */
  constructor(w = DEFAULT_WINDOW) {
    if (!Number.isInteger(w) || w < MIN_WINDOW || w > MAX_WINDOW) {
      throw err('invalid_argument', `replay window must be an integer in ${MIN_WINDOW}..${MAX_WINDOW}`);
    }
    this.w = w;
    this._W = BigInt(w);
    this._mask = (1n << this._W) - 1n;
    /** @type {bigint | null} */
    this.maxSeen = null;
    this.bitmap = 0n;
  }

  /**
   * @param {bigint} seq
   * @returns {'accept_first'|'accept_advance'|'accept_advance_reset'|'accept_in_window'|'reject_duplicate'|'reject_too_old'}
   */
  check(seq) {
    seq = BigInt(seq);
    if (this.maxSeen === null) return 'accept_first';
    if (seq > this.maxSeen) return seq - this.maxSeen >= this._W ? 'accept_advance_reset' : 'accept_advance';
    const d = this.maxSeen - seq;
    if (d >= this._W) return 'reject_too_old';
    if ((this.bitmap >> d) & 1n) return 'reject_duplicate';
    return 'accept_in_window';
  }

  /** Records `seq` (call only after `check` accepted it and the frame authenticated). */
  commit(seq) {
    seq = BigInt(seq);
    if (this.maxSeen === null) {
      this.maxSeen = seq;
      this.bitmap = 1n;
    } else if (seq > this.maxSeen) {
      const shift = seq - this.maxSeen;
      this.bitmap = shift >= this._W ? 1n : ((this.bitmap << shift) | 1n) & this._mask;
      this.maxSeen = seq;
    } else {
      const d = this.maxSeen - seq;
      if (d < this._W) this.bitmap |= 1n << d;
    }
  }
}

/**
 * One direction pair of a session: seals outgoing Data payloads and opens incoming ones in the
 * order check → open → commit.
 */
export class SessionCipher {
  /**
   * @param {{sendKey: Uint8Array, recvKey: Uint8Array, sendDirection: number, recvDirection: number,
   *          window?: number, initialSendSeq?: bigint}} opts
   *   `initialSendSeq` exists for the exhaustion test only.
   */
  constructor({ sendKey, recvKey, sendDirection, recvDirection, window = DEFAULT_WINDOW, initialSendSeq = 0n }) {
    if (sendKey.length !== 32 || recvKey.length !== 32) throw err('invalid_argument', 'keys must be 32 bytes');
    this._sendKey = Uint8Array.from(sendKey);
    this._recvKey = Uint8Array.from(recvKey);
    this.sendDirection = sendDirection;
    this.recvDirection = recvDirection;
    this.sendSeq = BigInt(initialSendSeq);
    this.replay = new ReplayWindow(window);
    this.destroyed = false;
  }

  /** True once the next sequence number would be 2^64 − 1: nothing more may be sent. */
  get exhausted() {
    return this.sendSeq >= U64_MAX;
  }

  /**
   * `nonce ‖ ChaCha20-Poly1305(key, nonce, plaintext, aad = empty)`.
   * Throws `sequence_exhausted` when no sequence number is left, `invalid_argument` above 65508.
   * @param {Uint8Array} plaintext
   */
  seal(plaintext) {
    if (this.destroyed) throw err('closed', 'session keys destroyed');
    if (plaintext.length > MAX_PLAINTEXT) throw err('invalid_argument', 'plaintext larger than 65508');
    if (this.exhausted) throw err('sequence_exhausted', 'send sequence exhausted; a new handshake is needed');
    const nonce = makeNonce(this.sendDirection, this.sendSeq);
    const sealed = chacha20poly1305(this._sendKey, nonce).encrypt(plaintext);
    this.sendSeq += 1n;
    return concat(nonce, sealed);
  }

  /**
   * Opens a Data payload. Throws `sequence_error` (duplicate / too old: drop, keep the
   * session) or `decrypt_failed` (wrong direction or bad tag: end the session).
   * @param {Uint8Array} payload
   */
  open(payload) {
    if (this.destroyed) throw err('closed', 'session keys destroyed');
    if (payload.length < DATA_OVERHEAD) throw err('malformed_frame', 'Data payload shorter than 28');
    const nonce = payload.subarray(0, NONCE_LEN);
    if (readU32be(nonce, 0) !== this.recvDirection) throw err('decrypt_failed', 'nonce direction mismatch');
    const seq = readU64be(nonce, 4);
    const verdict = this.replay.check(seq);
    if (verdict.startsWith('reject')) {
      throw err('sequence_error', verdict === 'reject_duplicate' ? 'duplicate sequence number' : 'sequence number too old', { seq });
    }
    let plaintext;
    try {
      plaintext = chacha20poly1305(this._recvKey, Uint8Array.from(nonce)).decrypt(payload.subarray(NONCE_LEN));
    } catch {
      throw err('decrypt_failed', 'authentication tag does not verify');
    }
    this.replay.commit(seq);
    return plaintext;
  }

  /** Zeroizes the traffic keys. */
  destroy() {
    wipe(this._sendKey);
    wipe(this._recvKey);
    this.destroyed = true;
  }
}

/** A client's cipher from handshake keys. */
export const clientCipher = (keys, window) =>
  new SessionCipher({
    sendKey: keys.clientToDaemon,
    recvKey: keys.daemonToClient,
    sendDirection: CLIENT_TO_DAEMON,
    recvDirection: DAEMON_TO_CLIENT,
    window,
  });

/** A daemon's cipher from handshake keys. */
export const daemonCipher = (keys, window) =>
  new SessionCipher({
    sendKey: keys.daemonToClient,
    recvKey: keys.clientToDaemon,
    sendDirection: DAEMON_TO_CLIENT,
    recvDirection: CLIENT_TO_DAEMON,
    window,
  });
