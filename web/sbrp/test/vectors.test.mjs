// Every client-applicable case of sbrp-v1-vectors.json, byte for byte.
import test from 'node:test';
import assert from 'node:assert/strict';

import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { fromHex, toHex, utf8 } from '../src/bytes.js';
import { WIRE_CODES, SDK_CODES, codeName, isTerminal, sidScope, CODES } from '../src/errors.js';
import * as F from '../src/frame.js';
import * as H from '../src/handshake.js';
import { ReplayWindow, SessionCipher, makeNonce, CLIENT_TO_DAEMON, DAEMON_TO_CLIENT } from '../src/session.js';
import * as S from '../src/sbp.js';
import { decodeEnvelope, request, response } from '../src/rpc.js';
import { MemoryPinStore, applyTrust, normalizeTrust } from '../src/trust.js';
import { loadVectors } from './vectors-path.mjs';

const V = loadVectors();
const hx = (b) => toHex(b);

const throwsKind = (fn, kind) => {
  assert.throws(fn, (e) => {
    assert.equal(e.kind, kind, `expected ${kind}, got ${e.kind}: ${e.message}`);
    return true;
  });
};
const rejectsKind = async (p, kind) => {
  await assert.rejects(p, (e) => {
    assert.equal(e.kind, kind, `expected ${kind}, got ${e.kind}: ${e.message}`);
    return true;
  });
};

test('constants', () => {
  const c = V.constants;
  assert.equal(c.header_size, F.HEADER_LEN);
  assert.equal(c.max_payload, F.MAX_PAYLOAD);
  assert.equal(c.min_data_payload, F.DATA_OVERHEAD);
  assert.equal(c.max_plaintext, F.MAX_PLAINTEXT);
  assert.equal(c.max_ping_payload, F.MAX_PING_PAYLOAD);
  assert.equal(c.handshake_init_payload, F.INIT_LEN);
  assert.equal(c.handshake_accept_payload, F.ACCEPT_LEN);
  assert.equal(c.signal_payload, F.SIGNAL_LEN);
  assert.equal(c.handshake_context, H.HANDSHAKE_CONTEXT);
  assert.equal(c.transcript_context, H.TRANSCRIPT_CONTEXT);
  assert.equal(c.hkdf_info, H.HKDF_INFO);
  assert.equal(c.direction_client_to_daemon, CLIENT_TO_DAEMON);
  assert.equal(c.direction_daemon_to_client, DAEMON_TO_CLIENT);
  assert.deepEqual(c.frame_types, {
    handshake_init: F.FrameType.HandshakeInit,
    handshake_accept: F.FrameType.HandshakeAccept,
    data: F.FrameType.Data,
    signal: F.FrameType.Signal,
    ping: F.FrameType.Ping,
    pong: F.FrameType.Pong,
    control: F.FrameType.Control,
  });
  assert.deepEqual(c.signal_codes, { ready: F.Signal.Ready, close: F.Signal.Close });
  assert.deepEqual(c.signal_reasons, { none: 0, state_lost: 1, shutdown: 2, policy: 3, error: 4 });
});

for (const h of V.handshakes) {
  const idSeed = fromHex(h.daemon_identity.seed);
  const idPub = fromHex(h.daemon_identity.public_key);
  const cPriv = fromHex(h.client_ephemeral.private_key);
  const cPub = fromHex(h.client_ephemeral.public_key);
  const dPriv = fromHex(h.daemon_ephemeral.private_key);
  const dPub = fromHex(h.daemon_ephemeral.public_key);
  const sig = fromHex(h.signature);
  const sid = BigInt(h.sid);

  test(`handshake ${h.name}: primitives`, () => {
    assert.equal(hx(utf8(h.daemon_id)), h.daemon_id_utf8);
    assert.equal(F.encodeSid(sid), h.sid_base64url);
    assert.equal(BigInt('0x' + h.sid_hex), sid);
    assert.equal(F.decodeSid(h.sid_base64url), sid);
    assert.equal(hx(H.identityPublicKey(idSeed)), h.daemon_identity.public_key);
    assert.equal(H.fingerprint(idPub), h.daemon_identity.fingerprint);
    assert.equal(hx(x25519.getPublicKey(cPriv)), h.client_ephemeral.public_key);
    assert.equal(hx(x25519.getPublicKey(dPriv)), h.daemon_ephemeral.public_key);
    assert.equal(hx(H.signaturePreimage(h.daemon_id, cPub, dPub)), h.signature_preimage);
    const payload = H.signaturePayload(h.daemon_id, cPub, dPub);
    assert.equal(hx(payload), h.signature_payload);
    assert.equal(hx(ed25519.sign(payload, idSeed)), h.signature);
    assert.ok(H.verifyStrict(sig, payload, idPub));
    assert.equal(hx(H.x25519Shared(dPriv, cPub)), h.shared_secret);
    assert.equal(hx(H.x25519Shared(cPriv, dPub)), h.shared_secret);
    assert.equal(hx(H.transcriptPreimage(h.daemon_id, cPub, dPub, sig)), h.transcript_preimage);
    const transcript = H.transcriptHash(h.daemon_id, cPub, dPub, sig);
    assert.equal(hx(transcript), h.transcript_hash);
    const keys = H.deriveSessionKeys(fromHex(h.shared_secret), transcript);
    assert.equal(hx(keys.okm), h.okm);
    assert.equal(hx(keys.clientToDaemon), h.client_to_daemon_key);
    assert.equal(hx(keys.daemonToClient), h.daemon_to_client_key);
    assert.equal(hx(F.encodeInit(sid, cPub)), h.handshake_init_frame);
    assert.equal(hx(F.encodeAccept(sid, idPub, dPub, sig)), h.handshake_accept_frame);
    assert.equal(h.handshake_accept_frame.slice(26), h.handshake_accept_payload);
  });

  test(`handshake ${h.name}: client role`, async () => {
    const hs = new H.ClientHandshake({ daemonId: h.daemon_id, sid, ephemeralPrivateKey: cPriv });
    assert.equal(hx(hs.initFrame()), h.handshake_init_frame);
    const acc = hs.parseAccept(fromHex(h.handshake_accept_frame));
    assert.equal(hx(acc.identityPub), h.daemon_identity.public_key);
    assert.equal(hx(acc.acceptPub), h.daemon_ephemeral.public_key);
    assert.equal(hx(acc.signature), h.signature);
    // tofu, first contact: the advertised key is selected and pinned after success
    const trust = normalizeTrust({ policy: 'tofu', store: new MemoryPinStore() });
    const d = await applyTrust({ trust, key: 'k', daemonId: h.daemon_id, identityPub: acc.identityPub });
    assert.equal(d.pinAfter, true);
    const keys = hs.complete(d.selectedKey);
    assert.equal(hx(keys.clientToDaemon), h.client_to_daemon_key);
    assert.equal(hx(keys.daemonToClient), h.daemon_to_client_key);
    assert.equal(hx(keys.transcript), h.transcript_hash);
    throwsKind(() => hs.complete(d.selectedKey), 'handshake_failed'); // ephemeral wiped, single use
  });

  test(`handshake ${h.name}: daemon role`, () => {
    const r = H.daemonAccept({ identitySeed: idSeed, daemonId: h.daemon_id, init: fromHex(h.handshake_init_frame), ephemeralPrivateKey: dPriv });
    assert.equal(hx(r.acceptFrame), h.handshake_accept_frame);
    assert.equal(r.sid, sid);
    assert.equal(hx(r.clientToDaemon), h.client_to_daemon_key);
    assert.equal(hx(r.daemonToClient), h.daemon_to_client_key);
  });

  test(`handshake ${h.name}: ${h.messages.length} Data messages`, () => {
    const keyOf = { client_to_daemon_key: fromHex(h.client_to_daemon_key), daemon_to_client_key: fromHex(h.daemon_to_client_key) };
    for (const m of h.messages) {
      const dir = m.direction === 'client_to_daemon' ? CLIENT_TO_DAEMON : DAEMON_TO_CLIENT;
      const other = dir === CLIENT_TO_DAEMON ? DAEMON_TO_CLIENT : CLIENT_TO_DAEMON;
      const key = keyOf[m.key];
      const wrongKey = m.key === 'client_to_daemon_key' ? keyOf.daemon_to_client_key : keyOf.client_to_daemon_key;
      const seq = BigInt(m.seq);
      assert.equal(hx(makeNonce(dir, seq)), m.nonce);
      const sender = new SessionCipher({ sendKey: key, recvKey: wrongKey, sendDirection: dir, recvDirection: other, initialSendSeq: seq });
      const payload = sender.seal(fromHex(m.plaintext));
      assert.equal(hx(payload), m.data_payload);
      assert.equal(hx(payload.subarray(12, payload.length - 16)), m.ciphertext);
      assert.equal(hx(payload.subarray(payload.length - 16)), m.tag);
      assert.equal(hx(F.encodeData(sid, payload)), m.frame);
      const f = F.decodeFrame(fromHex(m.frame));
      assert.equal(f.direction, dir);
      assert.equal(f.seq, seq);
      const receiver = new SessionCipher({ sendKey: wrongKey, recvKey: key, sendDirection: other, recvDirection: dir });
      assert.equal(hx(receiver.open(f.payload)), m.plaintext);
      const wrong = new SessionCipher({ sendKey: key, recvKey: wrongKey, sendDirection: other, recvDirection: dir });
      throwsKind(() => wrong.open(f.payload), 'decrypt_failed');
      // a receiver expecting the other direction refuses the nonce
      const wrongDir = new SessionCipher({ sendKey: key, recvKey: key, sendDirection: dir, recvDirection: other });
      throwsKind(() => wrongDir.open(f.payload), 'decrypt_failed');
    }
  });
}

test('handshake ascii_daemon_id: plaintexts are the SBP/RPC frames this library emits and parses', () => {
  const h = V.handshakes[0];
  const [cHs, dHs, req, res] = h.messages.map((m) => fromHex(m.plaintext));
  const client = new S.SbpEndpoint({ peerId: 'client-1' });
  assert.equal(hx(client.handshakeFrame(fromHex('000102030405060708090a0b0c0d0e0f'))), hx(cHs));
  const ev = client.receive(dHs);
  assert.equal(ev.type, 'handshake');
  assert.equal(ev.handshake.peerId, 'daemon-1');
  assert.ok(client.chunking);
  const cid = '101112131415161718191a1b1c1d1e1f';
  assert.deepEqual(client.encodeMessage(fromHex(cid), 'rpc', request(cid, '$sideband/echo', 'hello')).map(hx), [hx(req)]);
  const r = client.receive(res);
  assert.equal(r.type, 'message');
  assert.equal(r.subject, 'rpc');
  const env = decodeEnvelope(r.subject, r.data);
  assert.deepEqual(env, { t: 'R', cid, result: 'hello' });
  assert.equal(hx(S.encodeMessage(fromHex('909192939495969798999a9b9c9d9e9f'), 'rpc', response(cid, 'hello'))), hx(res));
});

const negByName = (n) => V.handshake_negative.filter((x) => x.name === n);

test('handshake_negative: signature_bit_flipped and wrong_daemon_id → handshake_failed', async () => {
  for (const n of [...negByName('signature_bit_flipped'), ...negByName('wrong_daemon_id')]) {
    const base = V.handshakes.find((h) => h.name === n.handshake);
    const daemonId = n.client_expects_daemon_id ?? base.daemon_id;
    const store = new MemoryPinStore();
    store.set('k', fromHex(n.pinned_identity_key));
    const trust = normalizeTrust({ policy: 'tofu', store });
    const hs = new H.ClientHandshake({ daemonId, sid: BigInt(base.sid), ephemeralPrivateKey: fromHex(base.client_ephemeral.private_key) });
    const acc = hs.parseAccept(fromHex(n.handshake_accept_frame));
    const d = await applyTrust({ trust, key: 'k', daemonId, identityPub: acc.identityPub });
    assert.equal(d.pinAfter, false);
    throwsKind(() => hs.complete(d.selectedKey), n.expect);
  }
});

test('handshake_negative: identity_differs_from_pin → identity_key_changed with both fingerprints', async () => {
  const [n] = negByName('identity_differs_from_pin');
  const base = V.handshakes.find((h) => h.name === n.handshake);
  assert.equal(H.fingerprint(fromHex(n.pinned_identity_key)), n.pinned_fingerprint);
  for (const policy of ['tofu', 'strict']) {
    const store = new MemoryPinStore();
    store.set('k', fromHex(n.pinned_identity_key));
    const hs = new H.ClientHandshake({ daemonId: base.daemon_id, sid: BigInt(base.sid), ephemeralPrivateKey: fromHex(base.client_ephemeral.private_key) });
    const acc = hs.parseAccept(fromHex(n.handshake_accept_frame));
    await assert.rejects(applyTrust({ trust: normalizeTrust({ policy, store }), key: 'k', daemonId: base.daemon_id, identityPub: acc.identityPub }), (e) => {
      assert.equal(e.kind, n.expect);
      assert.equal(e.code, 0xe001);
      assert.equal(e.pinnedFingerprint, n.pinned_fingerprint);
      assert.equal(e.receivedFingerprint, n.received_fingerprint);
      assert.equal(e.daemonId, base.daemon_id);
      assert.ok(e.message.includes(n.pinned_fingerprint) && e.message.includes(n.received_fingerprint));
      return true;
    });
    assert.equal(hx(store.get('k')), n.pinned_identity_key, 'pin untouched');
  }
});

test('handshake_negative: low_order_client_ephemeral rejected (daemon side and client side)', () => {
  const cases = negByName('low_order_client_ephemeral');
  assert.equal(cases.length, 3);
  const base = V.handshakes[0];
  const idSeed = fromHex(base.daemon_identity.seed);
  for (const n of cases) {
    const init = fromHex(n.handshake_init_frame);
    throwsKind(
      () => H.daemonAccept({ identitySeed: idSeed, daemonId: base.daemon_id, init, ephemeralPrivateKey: fromHex(n.daemon_ephemeral_private_key) }),
      'handshake_failed',
    );
    // client side: a correctly signed Accept whose daemon ephemeral is the low-order point
    const lowPub = F.decodeFrame(init).payload;
    const hs = new H.ClientHandshake({ daemonId: base.daemon_id, sid: BigInt(base.sid), ephemeralPrivateKey: fromHex(base.client_ephemeral.private_key) });
    const sig = ed25519.sign(H.signaturePayload(base.daemon_id, hs.clientPub, lowPub), idSeed);
    const idPub = fromHex(base.daemon_identity.public_key);
    hs.parseAccept(F.encodeAccept(BigInt(base.sid), idPub, lowPub, sig));
    throwsKind(() => hs.complete(idPub), 'handshake_failed');
  }
});

test('handshake: 96-byte Accept, wrong sid and non-Accept frames are handshake_failed', () => {
  const base = V.handshakes[0];
  const hs = new H.ClientHandshake({ daemonId: base.daemon_id, sid: BigInt(base.sid) });
  const old = V.endpoint_decode.find((c) => c.name === 'accept_96_bytes_old_layout');
  throwsKind(() => hs.parseAccept(fromHex(old.frame)), 'handshake_failed');
  const hs2 = new H.ClientHandshake({ daemonId: base.daemon_id, sid: 1n });
  throwsKind(() => hs2.parseAccept(fromHex(base.handshake_accept_frame)), 'handshake_failed');
  throwsKind(() => hs2.parseAccept(fromHex(base.handshake_init_frame)), 'handshake_failed');
});

test('verifyStrict rejects small-order keys, non-canonical S, and wrong messages', () => {
  const h = V.handshakes[0];
  const sig = fromHex(h.signature);
  const msg = fromHex(h.signature_payload);
  const pub = fromHex(h.daemon_identity.public_key);
  assert.ok(H.verifyStrict(sig, msg, pub));
  const badMsg = Uint8Array.from(msg);
  badMsg[0] ^= 1;
  assert.ok(!H.verifyStrict(sig, badMsg, pub));
  // S + L (non-canonical S)
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]);
  let s2 = s + L;
  const sig2 = Uint8Array.from(sig);
  for (let i = 32; i < 64; i++) {
    sig2[i] = Number(s2 & 0xffn);
    s2 >>= 8n;
  }
  assert.ok(!H.verifyStrict(sig2, msg, pub));
  // identity point as public key (small order) with R = identity, S = 0: passes cofactored zip215, not strict
  const idPoint = fromHex('0100000000000000000000000000000000000000000000000000000000000000');
  const weakSig = new Uint8Array(64);
  weakSig.set(idPoint, 0);
  assert.ok(!H.verifyStrict(weakSig, msg, idPoint));
  assert.ok(!H.verifyStrict(new Uint8Array(63), msg, pub));
});

test('replay traces (W = 64 and 128): result and state after every step', () => {
  assert.equal(V.replay.traces.length, 4);
  for (const t of V.replay.traces) {
    const w = new ReplayWindow(t.window);
    for (const [i, s] of t.steps.entries()) {
      const seq = BigInt(s.seq);
      const r = w.check(seq);
      assert.equal(r, s.result, `${t.name}/W${t.window} step ${i}`);
      assert.equal(r.startsWith('accept'), s.accepted);
      if (s.accepted) w.commit(seq);
      assert.equal(String(w.maxSeen), s.max_seen_after, `${t.name}/W${t.window} step ${i} max_seen`);
      assert.equal(w.bitmap.toString(16).padStart(t.window / 4, '0'), s.bitmap_after, `${t.name}/W${t.window} step ${i} bitmap`);
    }
  }
  assert.throws(() => new ReplayWindow(63));
});

test('replay check → decrypt → commit', () => {
  const c = V.replay.check_decrypt_commit;
  const cipher = new SessionCipher({ sendKey: new Uint8Array(32), recvKey: fromHex(c.key), sendDirection: 2, recvDirection: 1, window: c.window });
  for (const s of c.steps) {
    const p = fromHex(s.data_payload);
    if (s.expect === 'accept') cipher.open(p);
    else throwsKind(() => cipher.open(p), s.expect);
    assert.equal(String(cipher.replay.maxSeen), s.max_seen_after);
  }
});

test('sequence exhaustion: a sender at 2^64 − 2 sends once, then stops', () => {
  const c = new SessionCipher({ sendKey: new Uint8Array(32).fill(1), recvKey: new Uint8Array(32), sendDirection: 1, recvDirection: 2, initialSendSeq: (1n << 64n) - 2n });
  assert.ok(!c.exhausted);
  const p = c.seal(new Uint8Array(1));
  assert.equal(hx(p.subarray(0, 12)), '00000001fffffffffffffffe');
  assert.ok(c.exhausted);
  throwsKind(() => c.seal(new Uint8Array(1)), 'sequence_exhausted');
});

test('sid_base64url: valid both ways, invalid refused', () => {
  for (const v of V.sid_base64url.valid) {
    assert.equal(F.encodeSid(BigInt(v.sid)), v.base64url);
    assert.equal(F.decodeSid(v.base64url), BigInt(v.sid));
    assert.equal(BigInt('0x' + v.sid_hex), BigInt(v.sid));
  }
  for (const v of V.sid_base64url.invalid) throwsKind(() => F.decodeSid(v.base64url), 'invalid_argument');
  assert.equal(V.sid_base64url.invalid.length, 7);
});

test('control codes: names, numbers, terminality, sid scope; unknown is terminal', () => {
  assert.equal(V.control_codes.wire.length, WIRE_CODES.size);
  for (const c of V.control_codes.wire) {
    assert.equal(c.code, parseInt(c.code_hex, 16));
    assert.equal(codeName(c.code), c.name);
    assert.equal(CODES[c.name], c.code);
    assert.equal(isTerminal(c.code), c.terminal, c.name);
    assert.equal(sidScope(c.code), c.sid_scope, c.name);
  }
  assert.equal(V.control_codes.sdk_only.length, SDK_CODES.size);
  for (const c of V.control_codes.sdk_only) {
    assert.equal(codeName(c.code), c.name);
    assert.equal(c.code, parseInt(c.code_hex, 16));
  }
  for (const unknown of [0x0000, 0x0903, 0x0103, 0x1005, 0xffff]) assert.equal(isTerminal(unknown), true);
});

test('frames: decode to fields, re-encode identically; Pong echoes Ping', () => {
  assert.equal(V.frames.length, 18);
  const byName = Object.fromEntries(V.frames.map((f) => [f.name, f]));
  for (const v of V.frames) {
    const bytes = fromHex(v.frame);
    const f = F.decodeFrame(bytes);
    if (v.sid !== undefined) assert.equal(f.sid, BigInt(v.sid));
    let again;
    switch (f.type) {
      case F.FrameType.Ping:
        again = F.encodePing(f.payload);
        break;
      case F.FrameType.Pong:
        again = F.encodePong(f.payload);
        break;
      case F.FrameType.Signal:
        again = F.encodeSignal(f.sid, f.signal, f.reason);
        break;
      case F.FrameType.Control:
        again = F.encodeControl(f.code, f.sid, f.message);
        if (v.message !== undefined) assert.equal(f.message, v.message);
        break;
      default:
        assert.fail(`unexpected type in ${v.name}`);
    }
    if (v.payload !== undefined) assert.equal(hx(f.payload), v.payload);
    assert.equal(hx(again), v.frame, v.name);
    assert.equal(hx(F.encodeFrame(f.type, f.sid, f.payload)), v.frame);
  }
  const ping = F.decodeFrame(fromHex(byName.ping_8_bytes.frame));
  assert.equal(hx(F.encodePong(ping.payload)), byName.pong_echoing_ping_8_bytes.frame);
  assert.equal(hx(F.encodePong(F.decodeFrame(fromHex(byName.ping_empty.frame)).payload)), byName.pong_empty.frame);
  const sig = F.decodeFrame(fromHex(byName.signal_close_shutdown.frame));
  assert.equal(sig.signal, F.Signal.Close);
  assert.equal(sig.reason, F.SignalReason.Shutdown);
  const ctl = F.decodeFrame(fromHex(byName.control_daemon_offline.frame));
  assert.equal(codeName(ctl.code), 'daemon_offline');
});

test('endpoint_decode: all 8 cases', () => {
  assert.equal(V.endpoint_decode.length, 8);
  for (const c of V.endpoint_decode) {
    const bytes = fromHex(c.frame);
    if (c.expect === 'malformed_frame') throwsKind(() => F.decodeFrame(bytes), 'malformed_frame');
    else if (c.expect === 'terminal_unknown_code') {
      const f = F.decodeFrame(bytes);
      assert.equal(f.type, F.FrameType.Control);
      assert.equal(isTerminal(f.code), true);
    } else if (c.expect === 'ok_message_lossy') {
      assert.equal(F.decodeFrame(bytes).message, c.decoded_message);
    } else assert.fail(`unknown expectation ${c.expect}`);
  }
});

test('endpoint decoder order and encoder refusals (section 2.5)', () => {
  throwsKind(() => F.decodeFrame(new Uint8Array(12)), 'malformed_frame');
  throwsKind(() => F.decodeFrame(fromHex('05000000000000000000000001')), 'invalid_frame_type');
  throwsKind(() => F.decodeFrame(fromHex('05000100010000000000000001')), 'invalid_frame_type');
  throwsKind(() => F.decodeFrame(fromHex('03000100010000000000000001')), 'payload_too_large');
  throwsKind(() => F.decodeFrame(fromHex('03000000000000000000000000')), 'invalid_session_id');
  throwsKind(() => F.decodeFrame(fromHex('10000000000000000000000005')), 'invalid_session_id');
  throwsKind(() => F.decodeFrame(fromHex('100000000900000000000000000102030405060708ff')), 'payload_too_large');
  const big = new Uint8Array(65537);
  throwsKind(() => F.encodeFrame(F.FrameType.Data, 1n, big), 'invalid_argument');
  throwsKind(() => F.encodeFrame(F.FrameType.Data, 0n, new Uint8Array(28)), 'invalid_argument');
  throwsKind(() => F.encodeFrame(F.FrameType.Ping, 1n), 'invalid_argument');
  throwsKind(() => F.encodeFrame(F.FrameType.Ping, 0n, new Uint8Array(9)), 'invalid_argument');
  throwsKind(() => F.encodeFrame(F.FrameType.HandshakeInit, 1n, new Uint8Array(31)), 'invalid_argument');
  throwsKind(() => F.encodeFrame(F.FrameType.HandshakeAccept, 1n, new Uint8Array(96)), 'invalid_argument');
  throwsKind(() => F.encodeFrame(F.FrameType.Data, 1n, new Uint8Array(27)), 'invalid_argument');
  throwsKind(() => F.encodeFrame(F.FrameType.Signal, 1n, new Uint8Array(3)), 'invalid_argument');
  throwsKind(() => F.encodeFrame(0x05, 1n, new Uint8Array(3)), 'invalid_argument');
  // largest frame round-trips
  const max = F.encodeFrame(F.FrameType.Data, 7n, new Uint8Array(65536));
  assert.equal(F.decodeFrame(max).payload.length, 65536);
});

test('chunking: example reassembles; 12 negative runs are protocol violations (Error 1000)', () => {
  const ch = V.chunking;
  assert.equal(ch.capability, S.CHUNK_CAPABILITY);
  assert.equal(ch.max_total_default, S.DEFAULT_MAX_CHUNKED);
  assert.equal(ch.max_slice_in_one_data_frame, S.MAX_CHUNK_SLICE);
  const orig = fromHex(ch.example.original_frame);
  assert.equal(orig.length, ch.example.total_length);
  const frameId = orig.subarray(2, 18);
  assert.deepEqual(S.splitIntoChunks(orig, frameId, ch.example.slice_size).map(hx), ch.example.chunks);
  const mk = () => {
    const ep = new S.SbpEndpoint({ peerId: 'client-1' });
    ep.receive(S.encodeControl(new Uint8Array(16), S.ControlOp.Handshake, utf8(JSON.stringify(S.makeHandshake('daemon-1')))));
    return ep;
  };
  const ep = mk();
  const evs = ch.example.chunks.map((c) => ep.receive(fromHex(c)));
  assert.deepEqual(evs.slice(0, -1).map((e) => e.type), ['chunk_buffered', 'chunk_buffered', 'chunk_buffered']);
  const last = evs.at(-1);
  assert.equal(last.type, 'message');
  assert.equal(hx(S.encodeMessage(last.frameId, last.subject, last.data)), ch.example.original_frame);
  // Other frames may be interleaved between chunks.
  const ep2 = mk();
  ep2.receive(fromHex(ch.example.chunks[0]));
  assert.equal(ep2.receive(S.encodeAck(new Uint8Array(16), new Uint8Array(16))).type, 'ack');
  for (const c of ch.example.chunks.slice(1)) ep2.receive(fromHex(c));

  assert.equal(ch.negative.length, 12);
  for (const n of ch.negative) {
    const e = mk();
    let violation = null;
    for (const f of n.frames) {
      try {
        e.receive(fromHex(f));
      } catch (x) {
        violation = x;
        break;
      }
    }
    assert.ok(violation, `${n.name}: expected a violation`);
    assert.equal(violation.kind, 'protocol_violation', `${n.name}: ${violation.message}`);
    assert.equal(violation.code, 1000);
  }
  const errFrame = S.decodeSbp(fromHex(ch.sbp_error_protocol_violation));
  assert.equal(errFrame.kind, S.Kind.Error);
  assert.equal(errFrame.code, 1000);
  assert.equal(hx(S.encodeError(errFrame.frameId, 1000, errFrame.message)), ch.sbp_error_protocol_violation);
  // Without the capability a Chunk frame is itself a violation.
  const plain = new S.SbpEndpoint({ peerId: 'c', caps: ['rpc'] });
  plain.receive(S.encodeControl(new Uint8Array(16), S.ControlOp.Handshake, utf8(JSON.stringify(S.makeHandshake('d')))));
  throwsKind(() => plain.receive(fromHex(ch.example.chunks[0])), 'protocol_violation');
});

test('chunking: sender splits only oversize Messages, into ≤ 65508-byte plaintexts that reassemble', () => {
  const a = new S.SbpEndpoint({ peerId: 'a' });
  const b = new S.SbpEndpoint({ peerId: 'b' });
  a.receive(b.handshakeFrame(new Uint8Array(16)));
  b.receive(a.handshakeFrame(new Uint8Array(16)));
  const fid = new Uint8Array(16).fill(7);
  const exact = 65508 - 18 - 4 - 3;
  assert.equal(a.encodeMessage(fid, 'rpc', new Uint8Array(exact)).length, 1);
  const data = new Uint8Array(1024 * 1024 + 3).map((_, i) => i * 31);
  const parts = a.encodeMessage(fid, 'rpc', data);
  assert.ok(parts.length > 16);
  for (const p of parts) assert.ok(p.length <= 65508);
  let out;
  for (const p of parts) out = b.receive(p);
  assert.equal(out.type, 'message');
  assert.deepEqual(out.data, data);
  // without the capability: refused, never an unsendable frame
  const c = new S.SbpEndpoint({ peerId: 'c', caps: ['rpc'] });
  c.receive(b.handshakeFrame(new Uint8Array(16)));
  throwsKind(() => c.encodeMessage(fid, 'rpc', new Uint8Array(exact + 1)), 'payload_too_large');
});

test('SBP: handshake first, version mismatch 1001, reserved flags, bad frames', () => {
  const ep = new S.SbpEndpoint({ peerId: 'x' });
  throwsKind(() => ep.receive(S.encodeMessage(new Uint8Array(16), 'rpc', utf8('{}'))), 'protocol_violation');
  const bad = { protocol: 'sideband', version: '2', peerId: 'p' };
  assert.throws(() => new S.SbpEndpoint({ peerId: 'x' }).receive(S.encodeControl(new Uint8Array(16), 0, utf8(JSON.stringify(bad)))), (e) => e.code === 1001);
  const flags = S.encodeAck(new Uint8Array(16), new Uint8Array(16));
  flags[1] = 2;
  assert.throws(() => S.decodeSbp(flags), (e) => e.code === 1002);
  assert.throws(() => S.decodeSbp(new Uint8Array(17)), (e) => e.code === 1002);
  assert.throws(() => S.decodeSbp(fromHex('09' + '00'.repeat(17))), (e) => e.code === 1002);
  const ts = S.decodeSbp(fromHex('0201' + '00'.repeat(16) + '0100000000000000' + '11'.repeat(16)));
  assert.equal(ts.timestamp, 1n);
  const big = utf8(JSON.stringify({ ...S.makeHandshake('p'), metadata: { x: 'a'.repeat(9000) } }));
  throwsKind(() => new S.SbpEndpoint({ peerId: 'x' }).receive(S.encodeControl(new Uint8Array(16), 0, big)), 'protocol_violation');
});

test('RPC envelopes: subjects, cid case, mismatches', () => {
  const cid = 'ABCDEF00000000000000000000000000';
  assert.equal(decodeEnvelope('rpc/x', utf8(`{"t":"R","cid":"${cid}"}`)).cid, cid.toLowerCase());
  throwsKind(() => decodeEnvelope('rpc', utf8('{"t":"R","cid":"abc"}')), 'invalid_envelope');
  throwsKind(() => decodeEnvelope('rpc', utf8('{"t":"N","e":"x"}')), 'envelope_mismatch');
  throwsKind(() => decodeEnvelope('event', utf8(`{"t":"R","cid":"${cid}"}`)), 'envelope_mismatch');
  throwsKind(() => decodeEnvelope('app/x', utf8('{}')), 'envelope_mismatch');
  throwsKind(() => decodeEnvelope('rpc', utf8('not json')), 'invalid_envelope');
  assert.deepEqual(decodeEnvelope('event/foo', utf8('{"t":"N","e":"tick","d":{"a":1}}')), { t: 'N', name: 'tick', data: { a: 1 } });
  const e = decodeEnvelope('rpc', utf8(`{"t":"E","cid":"${cid}","code":2000,"message":"boom","data":{"reason":"result_too_large","limit":65508}}`));
  assert.equal(e.code, 2000);
});

test('trust policies: tofu / prompt / strict × no pin / match / mismatch', async () => {
  const [a, b] = V.handshakes.map((h) => fromHex(h.daemon_identity.public_key));
  const run = async (policy, pinned, answer) => {
    const store = new MemoryPinStore();
    if (pinned) store.set('k', pinned);
    const asked = [];
    const trust = normalizeTrust({ policy, store, prompt: async (info) => (asked.push(info), answer) });
    const r = await applyTrust({ trust, key: 'k', daemonId: 'd', identityPub: a });
    return { r, asked };
  };
  // tofu
  assert.equal((await run('tofu', null)).r.pinAfter, true);
  assert.equal((await run('tofu', a)).r.pinAfter, false);
  await rejectsKind(run('tofu', b), 'identity_key_changed');
  // strict
  await rejectsKind(run('strict', null), 'handshake_failed');
  assert.equal((await run('strict', a)).r.pinAfter, false);
  await rejectsKind(run('strict', b), 'identity_key_changed');
  // prompt
  const p1 = await run('prompt', null, true);
  assert.equal(p1.r.pinAfter, true);
  assert.equal(p1.asked[0].fingerprint, H.fingerprint(a));
  await rejectsKind(run('prompt', null, false), 'handshake_failed');
  assert.equal((await run('prompt', a, false)).asked.length, 0);
  const p2 = await run('prompt', b, true);
  assert.equal(p2.r.pinAfter, true);
  assert.equal(p2.asked[0].pinnedFingerprint, H.fingerprint(b));
  assert.equal(p2.asked[0].fingerprint, H.fingerprint(a));
  await rejectsKind(run('prompt', b, false), 'identity_key_changed');
});
