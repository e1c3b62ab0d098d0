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

/**
 * Pin store over IndexedDB (the browser default): database `keyline-sbrp`, object store `pins`,
 * values are the 32 raw key bytes. Survives reloads like localStorage but is not readable by
 * synchronous scripts, and works in workers.
 */
export class IndexedDbPinStore {
  /** @param {IDBFactory} [factory] @param {string} [dbName] */
  constructor(factory = globalThis.indexedDB, dbName = IndexedDbPinStore.DB_NAME) {
    if (!factory) throw err('invalid_argument', 'no IndexedDB available; pass a pin store');
    this.factory = factory;
    this.dbName = dbName;
    this._db = null;
  }
  _open() {
    this._db ??= new Promise((resolve, reject) => {
      const req = this.factory.open(this.dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(IndexedDbPinStore.STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(err('pin_store', `cannot open IndexedDB ${this.dbName}: ${req.error?.message}`));
      req.onblocked = () => reject(err('pin_store', `IndexedDB ${this.dbName} is blocked by another tab`));
    });
    return this._db;
  }
  async _tx(mode, run) {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(IndexedDbPinStore.STORE, mode);
      const req = run(tx.objectStore(IndexedDbPinStore.STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => reject(err('pin_store', `IndexedDB ${mode}: ${tx.error?.message}`));
    });
  }
  async get(key) {
    const v = await this._tx('readonly', (s) => s.get(key));
    if (!(v instanceof Uint8Array) && !(v instanceof ArrayBuffer)) return null;
    const b = new Uint8Array(v);
    return b.length === 32 ? Uint8Array.from(b) : null;
  }
  async set(key, pub) {
    await this._tx('readwrite', (s) => s.put(Uint8Array.from(pub), key));
  }
  async delete(key) {
    await this._tx('readwrite', (s) => s.delete(key));
  }
  /** Removes every pin (tests, "forget all daemons"). */
  async clear() {
    await this._tx('readwrite', (s) => s.clear());
  }
}
IndexedDbPinStore.DB_NAME = 'keyline-sbrp';
IndexedDbPinStore.STORE = 'pins';

/** The pin key for a daemon at a relay origin. */
export const pinKey = (relayOrigin, daemonId) => `${relayOrigin}|${daemonId}`;

/** IndexedDB in browsers, memory elsewhere (Node); pass `trust.store` to choose. */
function defaultStore() {
  try {
    if (globalThis.indexedDB) return new IndexedDbPinStore(globalThis.indexedDB);
  } catch {
    // IndexedDB may be unavailable (opaque origins, disabled storage)
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
