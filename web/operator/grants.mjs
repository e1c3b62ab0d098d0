#!/usr/bin/env node
// Replaces one client's grants through the operator page in headless Chromium, as an operator
// would: open the connections page, log in with the operator token, click "Edit grants" for the
// client, edit the JSON, save.
//
//   node grants.mjs --url <operator base URL> --token <operator token> --client <pubkey hex> --grants '<JSON array>'
//
// Prints one JSON line {"ok", "before": [...grants shown...], "status"} and exits 0 when the page
// reported "saved", 1 otherwise.
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.KEYLINE_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const [url, token, client, grants] = ['url', 'token', 'client', 'grants'].map(arg);
  if (!url || !token || !client || !grants) {
    process.stderr.write('usage: grants.mjs --url BASE --token TOKEN --client PUBKEY --grants JSON\n');
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const out = { ok: false };
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(m.text()));
    page.setDefaultTimeout(20_000);
    await page.goto(`${url}/#connections`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', token);
    await page.click('#login-button');
    const edit = `button.edit-grants[data-client="${client}"]`;
    await page.waitForSelector(edit);
    await page.click(edit);
    await page.waitForSelector('#grants-editor:not([hidden])');
    out.before = JSON.parse(await page.inputValue('#grants-json'));
    await page.fill('#grants-json', grants);
    await page.click('#grants-save');
    await page.waitForFunction(() => document.getElementById('grants-status').textContent !== '');
    out.status = await page.textContent('#grants-status');
    out.problems = problems;
    out.ok = out.status === 'saved' && problems.length === 0;
  } catch (e) {
    out.error = String(e?.message ?? e);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(out.ok ? 0 : 1);
}

main();
