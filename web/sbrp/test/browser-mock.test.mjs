// Real Chromium (Debian /usr/bin/chromium via playwright-core) running the page scenario against
// the Node mock relay + daemon built with this library. Skipped (with a message) when Chromium
// is not installed; set SBRP_REQUIRE_BROWSER=1 to make that a failure instead.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import { CHROMIUM, checkScenario, launchChromium, runPageScenario, startStaticServer } from './browser-harness.mjs';
import { MockDaemon, startMockRelay } from './mock-relay.mjs';

const have = existsSync(CHROMIUM);
if (!have && process.env.SBRP_REQUIRE_BROWSER === '1') throw new Error(`${CHROMIUM} missing`);


test('Chromium: connect through the mock relay, echo small + 1 MiB, TOFU pin, rotated key → identity_key_changed', { skip: !have && `${CHROMIUM} not installed` }, async () => {
  const daemon = new MockDaemon({ id: 'browser-mock-daemon' });
  const relay = await startMockRelay({ daemon });
  const site = await startStaticServer();
  const browser = await launchChromium();
  try {
    const firstFp = daemon.fingerprint;
    const { result, console: lines } = await runPageScenario({
      context: browser.context,
      pageOrigin: site.origin,
      cfg: { relay: relay.relay, daemonId: daemon.id, echoMethod: 'echo', keyChange: 'rotate' },
      onRotate: () => daemon.rotateKey(),
    });
    if (result.error) console.error(lines.join('\n'));
    const by = checkScenario(result, { expectRotated: true });
    assert.equal(by.connected.fingerprint, firstFp);
    assert.equal(by.key_changed.receivedFingerprint, daemon.fingerprint);
    assert.ok(daemon.calls.filter((m) => m === 'echo').length >= 2);
  } finally {
    await browser.close();
    await site.close();
    await relay.close();
  }
});

test('Chromium: pre-seeded different pin → identity_key_changed (the check used with the Rust daemon)', { skip: !have && `${CHROMIUM} not installed` }, async () => {
  const daemon = new MockDaemon({ id: 'browser-mock-daemon-2' });
  const relay = await startMockRelay({ daemon });
  // Same wiring as e2e.mjs with the keyline relay: the page asks its own origin, which proxies.
  const site = await startStaticServer({ proxyRelay: relay.relay });
  const browser = await launchChromium();
  try {
    const { result } = await runPageScenario({
      context: browser.context,
      pageOrigin: site.origin,
      cfg: { relay: site.origin, daemonId: daemon.id, echoMethod: '$sideband/echo', keyChange: 'seed-pin' },
    });
    checkScenario(result, { expectRotated: false });
  } finally {
    await browser.close();
    await site.close();
    await relay.close();
  }
});
