// The client end to end in Node against the mock relay + daemon (WebSocket from `ws`).
import test from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';

import { connect, MemoryPinStore, fingerprint } from '../src/index.js';
import { MockDaemon, startMockRelay } from './mock-relay.mjs';

const kindIs = (kind) => (e) => {
  assert.equal(e.kind, kind, `expected ${kind}, got ${e.kind}: ${e.message}`);
  return true;
};

async function withRelay(fn, daemonOpts) {
  const m = await startMockRelay({ daemon: new MockDaemon(daemonOpts) });
  try {
    await fn(m);
  } finally {
    await m.close();
  }
}

const opts = (m, store, extra = {}) => ({ relay: m.relay, daemonId: m.daemon.id, trust: { policy: 'tofu', store }, WebSocket, ...extra });

test('connect, echo small and 1 MiB, events, errors, TOFU pin then changed key', async () => {
  await withRelay(async (m) => {
    const store = new MemoryPinStore();
    const s = await connect(opts(m, store));
    assert.equal(s.state, 'open');
    assert.equal(s.fingerprint, m.daemon.fingerprint);
    assert.ok(s.peer.caps.includes('keyline.chunk/1'));
    assert.deepEqual(store.get(`${new URL(m.relay).origin}|${m.daemon.id}`), m.daemon.publicKey);
    assert.equal(await s.call('echo', 'hi'), 'hi');
    assert.deepEqual(await s.call('$sideband/echo', { a: [1, 2, 3] }), { a: [1, 2, 3] });
    const big = 'x'.repeat(1024 * 1024);
    assert.equal(await s.call('echo', big), big);
    const ticks = [];
    const all = [];
    s.on('test.tick', (d) => ticks.push(d.n));
    s.on('event', (e) => all.push(e.name));
    assert.deepEqual(await s.call('test.emit'), { ok: true });
    assert.deepEqual(ticks, [1, 2]);
    assert.deepEqual(all, ['test.tick', 'test.tick']);
    await assert.rejects(s.call('test.fail'), (e) => e.kind === 'rpc_error' && e.code === 2000 && e.message === 'handler failed');
    await assert.rejects(s.call('nope'), (e) => e.kind === 'rpc_error' && e.code === 1101);
    await assert.rejects(s.call('test.silence', null, { timeoutMs: 100 }), (e) => e.kind === 'timeout' && e.code === 1103);
    const closed = new Promise((r) => s.on('close', r));
    s.close();
    assert.deepEqual(await closed, { error: null });
    await assert.rejects(s.call('echo', 1), kindIs('closed'));

    // second connection: pin matches
    const s2 = await connect(opts(m, store));
    assert.equal(await s2.call('echo', 2), 2);
    s2.close();

    // changed key: identity_key_changed with both fingerprints, pin untouched
    const oldFp = m.daemon.fingerprint;
    const oldKey = m.daemon.publicKey;
    m.daemon.rotateKey();
    await assert.rejects(connect(opts(m, store)), (e) => {
      kindIs('identity_key_changed')(e);
      assert.equal(e.code, 0xe001);
      assert.equal(e.pinnedFingerprint, oldFp);
      assert.equal(e.receivedFingerprint, m.daemon.fingerprint);
      assert.equal(e.daemonId, m.daemon.id);
      return true;
    });
    assert.deepEqual(store.get(`${new URL(m.relay).origin}|${m.daemon.id}`), oldKey);
    // strict without pin, then prompt re-pins
    await assert.rejects(connect(opts(m, new MemoryPinStore(), { trust: { policy: 'strict', store: new MemoryPinStore() } })), kindIs('handshake_failed'));
    let asked;
    const s3 = await connect(opts(m, store, { trust: { policy: 'prompt', store, prompt: async (i) => ((asked = i), true) } }));
    assert.equal(asked.pinnedFingerprint, oldFp);
    assert.equal(asked.fingerprint, fingerprint(m.daemon.publicKey));
    assert.deepEqual(store.get(`${new URL(m.relay).origin}|${m.daemon.id}`), m.daemon.publicKey);
    s3.close();
  });
});

test('bad signature → handshake_failed, nothing pinned', async () => {
  await withRelay(async (m) => {
    m.daemon.mangleSignature = true;
    const store = new MemoryPinStore();
    await assert.rejects(connect(opts(m, store)), kindIs('handshake_failed'));
    assert.equal(store.map.size, 0);
  });
});

test('wrong daemon id in the signature → handshake_failed', async () => {
  await withRelay(async (m) => {
    // The mock signs with its own id; the client asks the issuer for it but hashes another id.
    const { fetchSessionToken } = await import('../src/client.js');
    const tok = await fetchSessionToken(m.relay, m.daemon.id);
    await assert.rejects(connect({ ...opts(m, new MemoryPinStore()), daemonId: 'someone-else', session: tok }), kindIs('handshake_failed'));
  });
});

test('issuer errors: daemon_not_found, daemon_offline', async () => {
  await withRelay(async (m) => {
    await assert.rejects(connect({ ...opts(m, new MemoryPinStore()), daemonId: 'nobody' }), kindIs('daemon_not_found'));
    m.daemon.online = false;
    await assert.rejects(connect(opts(m, new MemoryPinStore())), kindIs('daemon_offline'));
  });
});

test('replayed frame → sequence_error, session continues; forged frame → decrypt_failed, session ends', async () => {
  await withRelay(async (m) => {
    const s = await connect(opts(m, new MemoryPinStore()));
    const seqErr = new Promise((r) => s.on('sequence_error', r));
    await s.call('test.replay');
    const e = await seqErr;
    assert.equal(e.kind, 'sequence_error');
    assert.equal(s.stats.sequenceErrors, 1);
    assert.equal(await s.call('echo', 'still'), 'still');
    const closed = new Promise((r) => s.on('close', r));
    await s.call('test.tamper');
    const c = await closed;
    assert.equal(c.error.kind, 'decrypt_failed');
    assert.equal(s.state, 'closed');
  });
});

test('session_paused queues sends until session_resumed; session_expired is terminal', async () => {
  await withRelay(async (m) => {
    const s = await connect(opts(m, new MemoryPinStore()));
    const events = [];
    for (const n of ['paused', 'pending', 'resumed']) s.on(n, () => events.push(n));
    const paused = new Promise((r) => s.on('paused', r));
    await s.call('test.pause', { ms: 200 });
    await paused;
    assert.equal(s.state, 'paused');
    const before = m.daemon.calls.length;
    const p = s.call('echo', 'after-resume');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(m.daemon.calls.length, before, 'nothing sent while paused');
    assert.equal(await p, 'after-resume');
    assert.deepEqual(events, ['paused', 'pending', 'resumed']);
    const closed = new Promise((r) => s.on('close', r));
    await s.call('test.expire');
    const c = await closed;
    assert.equal(c.error.kind, 'session_expired');
    assert.equal(c.error.code, 0x0302);
  });
});

test('peer without keyline.chunk/1: oversize call refused locally', async () => {
  await withRelay(
    async (m) => {
      const s = await connect(opts(m, new MemoryPinStore()));
      assert.ok(!s.peer.caps.includes('keyline.chunk/1'));
      assert.equal(await s.call('echo', 'x'.repeat(60000)).then((r) => r.length), 60000);
      await assert.rejects(s.call('echo', 'x'.repeat(70000)), kindIs('payload_too_large'));
      s.close();
    },
    { caps: ['rpc'] },
  );
});

test('handshake timeout when the daemon never answers', async () => {
  await withRelay(async (m) => {
    const s = connect(opts(m, new MemoryPinStore(), { handshakeTimeoutMs: 300 }));
    // The token request is still in flight: make the session that is about to be paired ignore Init.
    const orig = m.sessions.set.bind(m.sessions);
    m.sessions.set = (k, v) => {
      v.onFrame = () => {};
      return orig(k, v);
    };
    await assert.rejects(s, kindIs('handshake_timeout'));
  });
});
