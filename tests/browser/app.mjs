// What the browser tests of the web app share (chat.mjs, app_call.mjs, group_call.mjs, link.mjs,
// cli_chat.mjs, perf.mjs): the app's base URL from argv or SECUREVOX_URL, a watchdog, Chromium
// pages that record console errors, screenshots in target/browser-artifacts (or
// SECUREVOX_ARTIFACTS), the app's own steps (sign-up from an invite, contacts, conversations,
// messages), and `run`, which reports the outcome as one JSON line. Env: CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const PASSWORD = 'correct horse battery';
export const STEP_MS = 20_000;
/** Chromium flags for calls: fake camera and microphones, host candidates on loopback, and no
 *  throttling of pages in the background (every page of a test is). */
export const CALL_FLAGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

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
    /** A new invite code from the admin (the first account, `alice`). */
    async invite() {
      t.adminToken ??= (await t.api('POST', '/api/v1/auth/login', undefined, { username: 'alice', password: PASSWORD, device_name: script })).access_token;
      return (await t.api('POST', '/api/v1/admin/invites', t.adminToken, {})).code;
    },
    /** Registers `username` in `page` from a new invite of the admin's. */
    async registerInvited(page, username) {
      await t.register(page, username, await t.invite());
    },
    /** Starts a conversation with `members` (a group when named) and waits until it shows. */
    async startChat(page, members, groupName) {
      await page.getByRole('button', { name: 'Chats', exact: true }).click();
      await page.getByRole('button', { name: 'New chat' }).click();
      for (const member of members) await page.getByRole('checkbox', { name: member }).check();
      if (groupName !== undefined) await page.getByLabel(/Group name/).fill(groupName);
      await page.getByRole('button', { name: 'Start chat' }).click();
      await page.getByRole('region', { name: `Conversation ${groupName ?? members[0]}` }).waitFor();
    },
    async openConversation(page, title) {
      await page.getByRole('button', { name: 'Chats', exact: true }).click();
      await page.locator('button.conversation', { hasText: title }).click();
      await page.getByRole('region', { name: `Conversation ${title}` }).waitFor();
    },
    /** Waits for a message with `text` on `side` (`mine` or `theirs`). */
    async messageIn(page, side, text) {
      await page.locator(`li.message.${side} .bubble`, { hasText: text }).waitFor();
    },
    async sendText(page, text) {
      await page.getByLabel('Message', { exact: true }).fill(text);
      await page.getByLabel('Message', { exact: true }).press('Enter');
      await t.messageIn(page, 'mine', text);
    },
    /** Runs the test: `body` returns what to report. Passed: no console errors, one JSON line
     *  `{ok: true, …, totalMs}`, exit 0. Failed: the error, screenshots, exit 1. */
    async run(body) {
      try {
        const summary = await body();
        t.check(t.consoleErrors.length === 0, `console errors:\n${t.consoleErrors.join('\n')}`);
        clearTimeout(t.watchdog);
        await t.browser?.close();
        console.log(JSON.stringify({ ok: true, ...summary, totalMs: Date.now() - started }));
      } catch (e) {
        console.error(`FAIL: ${e.stack ?? e}`);
        if (t.consoleErrors.length > 0) console.error(`console errors:\n${t.consoleErrors.join('\n')}`);
        await t.shoot('failure');
        await t.browser?.close().catch(() => {});
        process.exit(1);
      }
    },
  };
  t.watchdog = setTimeout(async () => {
    console.error(`FAIL: not done within ${totalMs / 1000} s`);
    await t.shoot('timeout').catch(() => {});
    process.exit(1);
  }, totalMs);
  return t;
}
