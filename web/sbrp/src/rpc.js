// RPC and event envelopes (spec section 10): JSON in the data of an SBP Message.

import { toHex, fromHex, utf8, utf8Strict } from './bytes.js';
import { err } from './errors.js';
import { SbpCode } from './sbp.js';

export const SUBJECT_RPC = 'rpc';
export const SUBJECT_EVENT = 'event';

/** 'rpc' | 'event' | null */
export function subjectKind(subject) {
  if (subject === SUBJECT_RPC || subject.startsWith('rpc/')) return 'rpc';
  if (subject === SUBJECT_EVENT || subject.startsWith('event/')) return 'event';
  return null;
}

/** frame id → cid (32 lowercase hex). */
export const cidOf = (frameId) => toHex(frameId);

function parseCid(c) {
  if (typeof c !== 'string' || c.length !== 32 || !/^[0-9a-fA-F]{32}$/.test(c)) return null;
  return c.toLowerCase();
}

export const request = (cid, method, params) =>
  utf8(JSON.stringify(params === undefined ? { t: 'r', m: method, cid } : { t: 'r', m: method, p: params, cid }));
export const response = (cid, result) => utf8(JSON.stringify(result === undefined ? { t: 'R', cid } : { t: 'R', cid, result }));
export const errorResponse = (cid, code, message, data) =>
  utf8(JSON.stringify(data === undefined ? { t: 'E', cid, code, message } : { t: 'E', cid, code, message, data }));
export const event = (name, data) => utf8(JSON.stringify(data === undefined ? { t: 'N', e: name } : { t: 'N', e: name, d: data }));

/**
 * Parses an envelope. Bad JSON or fields → `invalid_envelope` (1100); an event under `rpc`
 * or a request/response under `event` → `envelope_mismatch` (1104). `cid` is normalised to
 * lowercase.
 * @param {string} subject @param {Uint8Array} data
 */
export function decodeEnvelope(subject, data) {
  const kind = subjectKind(subject);
  if (!kind) throw err('envelope_mismatch', 'subject is not rpc or event', { code: SbpCode.EnvelopeMismatch });
  const bad = (m) => err('invalid_envelope', `invalid envelope: ${m}`, { code: SbpCode.InvalidEnvelope });
  const text = utf8Strict(data);
  if (text === null) throw bad('not UTF-8');
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad('not an object');
  let env;
  switch (v.t) {
    case 'r': {
      const cid = parseCid(v.cid);
      if (!cid || typeof v.m !== 'string') throw bad('request needs m and cid');
      env = { t: 'r', method: v.m, params: v.p, cid };
      break;
    }
    case 'R': {
      const cid = parseCid(v.cid);
      if (!cid) throw bad('response needs cid');
      env = { t: 'R', cid, result: v.result };
      break;
    }
    case 'E': {
      const cid = parseCid(v.cid);
      if (!cid || typeof v.code !== 'number' || !Number.isInteger(v.code) || typeof v.message !== 'string') {
        throw bad('error needs cid, code and message');
      }
      env = { t: 'E', cid, code: v.code, message: v.message, data: v.data };
      break;
    }
    case 'N':
      if (typeof v.e !== 'string') throw bad('event needs e');
      env = { t: 'N', name: v.e, data: v.d };
      break;
    default:
      throw bad('unknown t');
  }
  if ((env.t === 'N') !== (kind === 'event')) {
    throw err('envelope_mismatch', 'envelope does not fit its subject', { code: SbpCode.EnvelopeMismatch });
  }
  return env;
}

export { fromHex as cidToBytes };
