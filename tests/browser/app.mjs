// What the browser tests of the web app share (chat.mjs, app_call.mjs): the app's base URL from
// argv or SECUREVOX_URL, a watchdog, Chromium pages that record console errors, screenshots in
// target/browser-artifacts (or SECUREVOX_ARTIFACTS), and the app's own sign-up and contacts
// steps. Env: CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const PASSWORD = 'correct horse battery';
export const STEP_MS = 20_000;

/** One test run: `prefix` names its screenshots; it fails after `totalMs`. */
export function appTest({ script, prefix, totalMs }) {
  const base = (process.argv[2] ?? process.env.SECUREVOX_URL ?? '').replace(/\/$/, '');
  const artifacts = process.env.SECUREVOX_ARTIFACTS ?? join(here, '../../target/browser-artifacts');
  if (!base.startsWith('http')) {
    console.error(`usage: node ${script} <app base URL, e.g. http://127.0.0.1:8080>`);
    process.exit(2);
  }
  const started = Date.now();
  const t = {
    base,
    pages: {},
    consoleErrors: [],
    browser: undefined,
    step: (what) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`),
    check(condition, message) {
      if (!condition) throw new Error(message);
    },
    /** Screenshots of every page, for a failure. */
    async shoot(name) {
      mkdirSync(artifacts, { recursive: true });
      for (const [who, page] of Object.entries(t.pages)) {
        await page.screenshot({ path: join(artifacts, `${prefix}-${name}-${who}.png`) }).catch(() => {});
      }
    },
    async screenshot(page, name) {
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, `${prefix}-${name}.png`) });
    },
    async launch(args = []) {
      const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
      t.browser = await chromium.launch({ executablePath, args: ['--headless=new', '--no-sandbox', '--disable-gpu', ...args] });
      return t.browser;
    },
    async openPage(who) {
      const context = await t.browser.newContext({ viewport: { width: 1100, height: 760 } });
      const page = await context.newPage();
      page.setDefaultTimeout(STEP_MS);
      page.on('console', (m) => {
        if (m.type() === 'error') t.consoleErrors.push(`${who}: ${m.text()}`);
      });
      page.on('pageerror', (e) => t.consoleErrors.push(`${who}: page error: ${e.message}`));
      // Deleting a message asks for confirmation.
      page.on('dialog', (d) => void d.accept());
      t.pages[who] = page;
      return page;
    },
    async register(page, username, invite) {
      await page.goto(invite === undefined ? `${base}/` : `${base}/register?invite=${encodeURIComponent(invite)}`);
      if (invite === undefined) await page.getByRole('tab', { name: 'Register' }).click();
      else t.check((await page.getByLabel(/Invite code/).inputValue()) === invite, 'the invite link fills in the code');
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.locator(`.me[data-username="${username}"]`).waitFor();
      await page.getByText('● live').waitFor();
    },
    async api(method, path, token, body) {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = await response.json().catch(() => null);
      t.check(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
      return json;
    },
    async addContact(page, username) {
      await page.getByRole('button', { name: 'Contacts', exact: true }).click();
      await page.getByLabel('Find users by username').fill(username);
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('button', { name: `Add ${username} to contacts` }).click();
      await page.locator(`li.contact[data-username="${username}"]`).waitFor();
    },
  };
  t.watchdog = setTimeout(async () => {
    console.error(`FAIL: not done within ${totalMs / 1000} s`);
    await t.shoot('timeout').catch(() => {});
    process.exit(1);
  }, totalMs);
  return t;
}
