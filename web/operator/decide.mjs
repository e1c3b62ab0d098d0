#!/usr/bin/env node
// Decides one bunker approval through the operator page in headless Chromium, as an operator
// would: open the auth_url link, log in with the operator token, read what is asked, click.
//
//   node decide.mjs --url <auth_url> --token <operator token> --decision allow_once|allow_always|allow_hour|deny
//
// Prints one JSON line {"ok", "decision", "details": {…what the page showed…}, "status"} and
// exits 0 when the page reported the decision, 1 otherwise.
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.KEYLINE_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const BUTTONS = { allow_once: '#allow-once', allow_always: '#allow-always', allow_hour: '#allow-hour', deny: '#deny' };

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const url = arg('url');
  const token = arg('token') ?? process.env.KEYLINE_OPERATOR_TOKEN;
  const decision = arg('decision');
  if (!url || !token || !BUTTONS[decision]) {
    process.stderr.write('usage: decide.mjs --url AUTH_URL --token TOKEN --decision allow_once|allow_always|allow_hour|deny\n');
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const out = { ok: false, decision };
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    // Console "Failed to load resource" lines are expected (the 401 before login, favicon).
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(m.text()));
    page.setDefaultTimeout(20_000);
    await page.goto(url);
    // Not logged in yet: the page asks for the token.
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', token);
    await page.click('#login-button');
    await page.waitForSelector('#approve:not([hidden]) #approval-buttons:not([hidden])');
    out.details = await page.$$eval('#approval-details dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    out.timeLeft = await page.textContent('#approval-time-left');
    await page.click(BUTTONS[decision]);
    await page.waitForFunction(() => document.getElementById('approval-status').textContent.startsWith('decided'));
    out.status = await page.textContent('#approval-status');
    out.problems = problems;
    out.ok = problems.length === 0;
  } catch (e) {
    out.error = String(e?.message ?? e);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(out.ok ? 0 : 1);
}

main();
