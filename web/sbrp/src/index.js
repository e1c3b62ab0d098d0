// @keyline/sbrp — SBRP v1 client (browser and Node). See README.md.
export { connect, fetchSessionToken, ClientSession } from './client.js';
export { SbrpError, WIRE_CODES, SDK_CODES, CODES, codeName, isTerminal, sidScope } from './errors.js';
export * as frame from './frame.js';
export * as handshake from './handshake.js';
export * as session from './session.js';
export * as sbp from './sbp.js';
export * as rpc from './rpc.js';
export * as bytes from './bytes.js';
export { MemoryPinStore, LocalStoragePinStore, IndexedDbPinStore, pinKey, applyTrust, normalizeTrust } from './trust.js';
export { fingerprint } from './handshake.js';
export { encodeSid, decodeSid } from './frame.js';
