// Control codes (spec section 6) and the error type of this library.

/**
 * Wire control codes: code → [name, terminal, sidScope].
 * @type {Map<number, [string, boolean, '0' | 'S']>}
 */
export const WIRE_CODES = new Map([
  [0x0101, ['unauthorized', true, '0']],
  [0x0102, ['forbidden', true, '0']],
  [0x0201, ['daemon_not_found', true, 'S']],
  [0x0202, ['daemon_offline', true, 'S']],
  [0x0301, ['session_not_found', true, 'S']],
  [0x0302, ['session_expired', true, 'S']],
  [0x0401, ['malformed_frame', true, '0']],
  [0x0402, ['payload_too_large', true, '0']],
  [0x0403, ['invalid_frame_type', true, '0']],
  [0x0404, ['invalid_session_id', true, '0']],
  [0x0405, ['disallowed_sender', true, 'S']],
  [0x0601, ['internal_error', true, '0']],
  [0x0901, ['rate_limited', false, '0']],
  [0x0902, ['backpressure', true, '0']],
  [0x1001, ['session_paused', false, 'S']],
  [0x1002, ['session_resumed', false, 'S']],
  [0x1003, ['session_ended', false, 'S']],
  [0x1004, ['session_pending', false, 'S']],
]);

/** SDK-only codes (never on the wire). */
export const SDK_CODES = new Map([
  [0xe001, 'identity_key_changed'],
  [0xe002, 'handshake_failed'],
  [0xe003, 'handshake_timeout'],
  [0xe004, 'decrypt_failed'],
  [0xe005, 'sequence_error'],
]);

/** Codes by name (wire and SDK). */
export const CODES = Object.freeze(
  Object.fromEntries([
    ...[...WIRE_CODES].map(([c, [n]]) => [n, c]),
    ...[...SDK_CODES].map(([c, n]) => [n, c]),
  ]),
);

/** Name of a code; unknown codes are `unknown_0xNNNN`. @param {number} code */
export function codeName(code) {
  const w = WIRE_CODES.get(code);
  if (w) return w[0];
  const s = SDK_CODES.get(code);
  if (s) return s;
  return `unknown_0x${code.toString(16).padStart(4, '0')}`;
}

/** Whether a wire code is terminal; any code not in the table is terminal (fail-safe). */
export function isTerminal(code) {
  const w = WIRE_CODES.get(code);
  return w ? w[1] : true;
}

/** The sid scope of a wire code ('0' or 'S'), or null for unknown codes. */
export function sidScope(code) {
  const w = WIRE_CODES.get(code);
  return w ? w[2] : null;
}

/**
 * The error every failure of this library is reported as.
 * `kind` is a stable string: the SBRP code name (e.g. `identity_key_changed`,
 * `daemon_offline`, `decrypt_failed`) or for local failures `rpc_error`, `closed`,
 * `invalid_argument`, `protocol_violation`, `malformed_frame`, `http_error`, `timeout`,
 * `pin_store` (the pin store failed).
 * `code` is the numeric SBRP code (wire or SDK) or SBP/RPC code where one applies.
 */
export class SbrpError extends Error {
  /**
   * @param {string} kind
   * @param {string} message
   * @param {{code?: number, [k: string]: unknown}} [details]
   */
  constructor(kind, message, details = {}) {
    super(message);
    this.name = 'SbrpError';
    /** @type {string} */
    this.kind = kind;
    Object.assign(this, details);
    /** @type {number | undefined} */
    this.code = details.code ?? CODES[kind];
  }
}

/** @param {string} kind @param {string} message @param {object} [details] */
export const err = (kind, message, details) => new SbrpError(kind, message, details);
