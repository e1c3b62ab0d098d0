// Shared Chromium harness: a tiny static server for the page (ES modules straight from src/ and
// node_modules/@noble, no bundler) and a playwright-core launch of Debian's /usr/bin/chromium.
import http from 'node:http';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const pkgRoot = resolve(here, '..');
export const CHROMIUM = process.env.SBRP_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ALLOWED = [/^\/test\/page\.(html|mjs)$/, /^\/src\/[a-z0-9_-]+\.js$/, /^\/node_modules\/@noble\/(curves|hashes|ciphers)\/[A-Za-z0-9_./-]+\.js$/];
const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html; charset=utf-8' };

/**
 * Serves the page. With `proxyRelay` set, `POST /v1/sessions` is forwarded to that issuer (the
 * keyline relay sends no CORS headers, so the page asks its own origin).
 * @param {{proxyRelay?: string, host?: string}} [opts]
 */
export async function startStaticServer({ proxyRelay, host = '127.0.0.1' } = {}) {
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://x');
      if (proxyRelay && req.method === 'POST' && url.pathname === '/v1/sessions') {
        const chunks = [];
        let n = 0;
        for await (const c of req) {
          n += c.length;
          if (n > 4096) throw new Error('request too large');
          chunks.push(c);
        }
        const r = await fetch(new URL('/v1/sessions', proxyRelay), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.concat(chunks),
        });
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await r.arrayBuffer()));
        return;
      }
      if (req.method !== 'GET' || !ALLOWED.some((re) => re.test(url.pathname)) || url.pathname.includes('..')) {
        res.writeHead(404).end('not found');
        return;
      }
      const file = normalize(join(pkgRoot, url.pathname));
      if (!file.startsWith(pkgRoot + sep) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end('not found');
        return;
      }
      const ext = file.slice(file.lastIndexOf('.'));
      res.writeHead(200, { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(readFileSync(file));
    } catch (e) {
      res.writeHead(500).end(String(e?.message ?? e));
    }
  });
  await new Promise((r) => server.listen(0, host, r));
  const origin = `http://${host}:${server.address().port}`;
  return { origin, close: () => new Promise((r) => (server.closeAllConnections?.(), server.close(() => r()))) };
}

/** Launches Chromium with a fresh user-data-dir; returns {context, close}. */
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found (apt-get install -y chromium, or set SBRP_CHROMIUM)`);
  }
  const { chromium } = await import('playwright-core');
  const userDataDir = mkdtempSync(join(tmpdir(), 'sbrp-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the page and runs the in-page scenario.
 * @param {{context: import('playwright-core').BrowserContext, pageOrigin: string, cfg: object,
 *          onRotate?: () => Promise<void> | void}} o
 */
export async function runPageScenario({ context, pageOrigin, cfg, onRotate, timeoutMs = 120_000 }) {
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  if (onRotate) await page.exposeFunction('sbrpRotateKey', async () => onRotate());
  await page.goto(`${pageOrigin}/test/page.html`);
  await page.waitForFunction(() => window.sbrpReady === true, null, { timeout: 15_000 });
  page.setDefaultTimeout(timeoutMs);
  const result = await page.evaluate((c) => window.sbrpScenario(c), cfg);
  await page.close();
  return { result, console: consoleLines };
}

/** Asserts the in-page scenario's results; returns the steps by name. */
export function checkScenario(result, { expectRotated, expectFsRead = false }) {
  assert.ok(!result.error, `page error: ${JSON.stringify(result.error)}`);
  const by = Object.fromEntries(result.steps.map((s) => [s.name, s]));
  assert.match(by.connected.fingerprint, /^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.match(by.connected.pinnedHex, /^[0-9a-f]{64}$/, 'TOFU pin stored in IndexedDB');
  assert.ok(by.connected.peerCaps.includes('keyline.chunk/1'));
  assert.equal(by.info.daemonId, result.cfgDaemonId, '$sideband/info names the daemon');
  assert.equal(by.echo_small.ok, true);
  assert.equal(by.echo_1mib.ok, true);
  assert.equal(by.echo_1mib.length, 1024 * 1024);
  if (expectFsRead) {
    const f = by.fs_read;
    assert.ok(f, 'fs.read step ran');
    assert.equal(f.truncated, false, 'fs.read returned the whole file');
    assert.equal(f.size, f.expectedSize);
    assert.equal(f.length, f.expectedSize);
    assert.equal(f.sha256, f.expectedSha256, 'fs.read content byte for byte');
  }
  assert.equal(by.pin_matches.same, true);
  const k = by.key_changed;
  assert.equal(k.rejected, true, 'changed key must be refused');
  assert.equal(k.kind, 'identity_key_changed');
  assert.equal(k.code, 0xe001);
  assert.equal(k.pinnedFingerprint, k.expectedPinned);
  assert.match(k.receivedFingerprint, /^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.notEqual(k.receivedFingerprint, k.pinnedFingerprint);
  if (expectRotated) assert.notEqual(k.receivedFingerprint, by.connected.fingerprint);
  else assert.equal(k.receivedFingerprint, by.connected.fingerprint);
  assert.ok(k.message.includes(k.pinnedFingerprint) && k.message.includes(k.receivedFingerprint));
  assert.notEqual(k.pinAfter, null, 'pin not removed');
  return by;
}
