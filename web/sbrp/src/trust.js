// Trust policies and pin stores (spec section 5).
//
// Pins are keyed by relay origin and daemon id; the value is the 32-byte Ed25519 identity key.
// keyline never silently re-pins: `tofu` fails with `identity_key_changed` on a changed key.

import { equalBytes, fromHex, toHex } from './bytes.js';
import { err } from './errors.js';
import { fingerprint } from './handshake.js';

/** @typedef {{get(key: string): (Uint8Array|null|Promise<Uint8Array|null>), set(key: string, pub: Uint8Array): (void|Promise<void>), delete?(key: string): (void|Promise<void>)}} PinStore */

/** In-memory pin store (tests, Node). */
export class MemoryPinStore {
  constructor() {
    this.map = new Map();
  }
  get(key) {
    const v = this.map.get(key);
    return v ? Uint8Array.from(v) : null;
  }
  set(key, pub) {
    this.map.set(key, Uint8Array.from(pub));
  }
  delete(key) {
    this.map.delete(key);
  }
}

/** Pin store over a Web Storage object (default `localStorage`); values are hex. */
export class LocalStoragePinStore {
  /** @param {Storage} [storage] @param {string} [prefix] */
  constructor(storage = globalThis.localStorage, prefix = 'keyline.sbrp.pin:') {
    if (!storage) throw err('invalid_argument', 'no localStorage available; pass a pin store');
    this.storage = storage;
    this.prefix = prefix;
  }
  get(key) {
    const v = this.storage.getItem(this.prefix + key);
    if (v === null) return null;
    try {
      const b = fromHex(v);
      return b.length === 32 ? b : null;
    } catch {
      return null;
    }
  }
  set(key, pub) {
    this.storage.setItem(this.prefix + key, toHex(pub));
  }
  delete(key) {
    this.storage.removeItem(this.prefix + key);
  }
}

/** The pin key for a daemon at a relay origin. */
export const pinKey = (relayOrigin, daemonId) => `${relayOrigin}|${daemonId}`;

function defaultStore() {
  try {
    if (globalThis.localStorage) return new LocalStoragePinStore(globalThis.localStorage);
  } catch {
    // localStorage may throw (opaque origins, disabled storage)
  }
  return new MemoryPinStore();
}

/**
 * Normalises the `trust` option of `connect`.
 * @param {undefined | 'tofu' | 'prompt' | 'strict' | {policy?: string, store?: PinStore,
 *   prompt?: (info: object) => boolean | Promise<boolean>}} trust
 */
export function normalizeTrust(trust) {
  const t = typeof trust === 'string' ? { policy: trust } : { ...(trust ?? {}) };
  t.policy ??= 'tofu';
  if (!['tofu', 'prompt', 'strict'].includes(t.policy)) throw err('invalid_argument', `unknown trust policy ${t.policy}`);
  if (t.policy === 'prompt' && typeof t.prompt !== 'function') throw err('invalid_argument', 'trust policy prompt needs a prompt function');
  t.store ??= defaultStore();
  return t;
}

/**
 * Applies the policy to an advertised identity key. Returns the key to verify the signature
 * with and whether to store it as the pin after the handshake succeeds.
 * Throws `identity_key_changed` (with `daemonId`, `pinnedFingerprint`, `receivedFingerprint`)
 * or `handshake_failed`.
 * @returns {Promise<{selectedKey: Uint8Array, pinAfter: boolean}>}
 */
export async function applyTrust({ trust, key, daemonId, identityPub }) {
  const pinned = await trust.store.get(key);
  const received = fingerprint(identityPub);
  if (pinned && equalBytes(pinned, identityPub)) return { selectedKey: pinned, pinAfter: false };
  if (!pinned) {
    if (trust.policy === 'tofu') return { selectedKey: identityPub, pinAfter: true };
    if (trust.policy === 'strict') throw err('handshake_failed', `no pinned identity key for daemon ${daemonId} (strict policy)`, { daemonId, receivedFingerprint: received });
    const ok = await trust.prompt({ daemonId, fingerprint: received, pinnedFingerprint: null, changed: false });
    if (ok === true) return { selectedKey: identityPub, pinAfter: true };
    throw err('handshake_failed', `identity key for daemon ${daemonId} not accepted`, { daemonId, receivedFingerprint: received });
  }
  const pinnedFp = fingerprint(pinned);
  const changed = () =>
    err('identity_key_changed', `identity key of daemon ${daemonId} changed: pinned ${pinnedFp}, received ${received}`, {
      daemonId,
      pinnedFingerprint: pinnedFp,
      receivedFingerprint: received,
    });
  if (trust.policy === 'prompt') {
    const ok = await trust.prompt({ daemonId, fingerprint: received, pinnedFingerprint: pinnedFp, changed: true });
    if (ok === true) return { selectedKey: identityPub, pinAfter: true };
  }
  throw changed();
}
