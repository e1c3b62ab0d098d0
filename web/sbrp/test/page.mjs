// In-page scenario for the Chromium tests. Exposes window.sbrpScenario(cfg) → results object.
// cfg: {relay, daemonId, echoMethod, keyChange: 'rotate' | 'seed-pin', bigBytes}
//   'rotate'   — calls window.sbrpRotateKey() (exposed by the Node side) to change the daemon key
//   'seed-pin' — writes a different key into the IndexedDB pin (works with any daemon)
// cfg.fsRead: {path, sha256Hex, size} — also reads that file through `$sideband/fs.read`
import { connect, IndexedDbPinStore, pinKey, fingerprint, bytes } from '/src/index.js';

const b64decode = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const sha256Hex = async (b) => bytes.toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', b)));

const log = (m) => {
  document.getElementById('log').textContent += m + '\n';
};

async function scenario(cfg) {
  const out = { steps: [], cfgDaemonId: cfg.daemonId };
  const step = (name, data = {}) => {
    out.steps.push({ name, ...data });
    log(`${name} ${JSON.stringify(data)}`);
  };
  const echo = cfg.echoMethod ?? '$sideband/echo';
  const store = new IndexedDbPinStore();
  await store.clear();
  const key = pinKey(new URL(cfg.relay).origin, cfg.daemonId);
  const pinnedHex = async () => {
    const p = await store.get(key);
    return p ? bytes.toHex(p) : null;
  };

  // 1. first contact: TOFU pin in IndexedDB (default trust, default store)
  const s = await connect({ relay: cfg.relay, daemonId: cfg.daemonId });
  step('connected', { fingerprint: s.fingerprint, pinnedHex: await pinnedHex(), peerCaps: s.peer.caps, isSecureContext });
  const info = await s.call('$sideband/info');
  step('info', { daemonId: info?.daemonId, implementation: info?.implementation });
  const small = await s.call(echo, { hello: 'wörld', n: 42 });
  step('echo_small', { ok: JSON.stringify(small) === JSON.stringify({ hello: 'wörld', n: 42 }) });
  const n = cfg.bigBytes ?? 1024 * 1024;
  const big = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  const t0 = performance.now();
  const bigBack = await s.call(echo, big);
  step('echo_1mib', { ok: bigBack === big, length: bigBack.length, ms: Math.round(performance.now() - t0) });
  if (cfg.fsRead) {
    const t1 = performance.now();
    const r = await s.call('$sideband/fs.read', { path: cfg.fsRead.path });
    const content = r.encoding === 'base64' ? b64decode(r.content) : new TextEncoder().encode(r.content);
    step('fs_read', {
      encoding: r.encoding,
      size: r.size,
      truncated: r.truncated,
      length: content.length,
      sha256: await sha256Hex(content),
      expectedSha256: cfg.fsRead.sha256Hex,
      expectedSize: cfg.fsRead.size,
      ms: Math.round(performance.now() - t1),
    });
  }
  s.close();

  // 2. second contact: pin matches
  const s2 = await connect({ relay: cfg.relay, daemonId: cfg.daemonId, trust: { policy: 'strict', store } });
  step('pin_matches', { fingerprint: s2.fingerprint, same: s2.fingerprint === s.fingerprint });
  s2.close();

  // 3. changed key → identity_key_changed with both fingerprints
  let expectedPinned = s.fingerprint;
  if (cfg.keyChange === 'rotate') {
    await window.sbrpRotateKey();
  } else {
    const other = bytes.fromHex(cfg.otherKeyHex ?? 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025');
    await store.set(key, other);
    expectedPinned = fingerprint(other);
  }
  try {
    const s3 = await connect({ relay: cfg.relay, daemonId: cfg.daemonId });
    s3.close();
    step('key_changed', { rejected: false });
  } catch (e) {
    step('key_changed', {
      rejected: true,
      kind: e.kind,
      code: e.code,
      pinnedFingerprint: e.pinnedFingerprint,
      receivedFingerprint: e.receivedFingerprint,
      expectedPinned,
      message: e.message,
      pinAfter: await pinnedHex(),
    });
  }
  return out;
}

window.sbrpScenario = (cfg) => scenario(cfg).catch((e) => ({ error: { kind: e.kind, message: String(e.message ?? e), stack: e.stack } }));
window.sbrpReady = true;
