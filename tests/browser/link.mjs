// Linking a second browser to an account in the web app (served at `/`), in headless Chromium:
// alice registers in page A and chats with bob; she logs in in page B (another browser
// context: a new device), which shows the link code; A refuses a wrong code, then approves
// with the right one; B reaches the chat with the conversation with bob; what bob sends
// afterwards appears on both of alice's pages, and what B sends reaches bob; bob is told
// that alice added a device. Usage:
//   node tests/browser/link.mjs http://127.0.0.1:PORT      (or SECUREVOX_URL=...)
// The server must be empty (the first user becomes admin). Env: CHROMIUM (default
// /usr/bin/chromium), SECUREVOX_ARTIFACTS (screenshots; default target/browser-artifacts).
// Prints one JSON summary line; exit 0 = passed.
import { appTest, PASSWORD } from './app.mjs';

const t = appTest({ script: 'link.mjs', prefix: 'link', totalMs: 120_000 });
const { base, step, check, screenshot, openPage, register, api, addContact, launch } = t;
const { registerInvited, startChat, openConversation, messageIn, sendText, run } = t;
const timings = {};

await run(async () => {
  await launch();
  const alice = await openPage('alice');
  const bob = await openPage('bob');
  const second = await openPage('alice-second');

  step('alice registers (admin), invites bob; they add each other and chat');
  await register(alice, 'alice');
  await registerInvited(bob, 'bob');
  await addContact(alice, 'bob');
  await addContact(bob, 'alice');
  await startChat(alice, ['bob']);
  await sendText(alice, 'Hello before the link');
  await openConversation(bob, 'alice');
  await messageIn(bob, 'theirs', 'Hello before the link');

  step('alice logs in in a second browser: it must be linked, and shows its code');
  let at = Date.now();
  await second.goto(`${base}/`);
  await second.getByLabel('Username').fill('alice');
  await second.getByLabel('Password').fill(PASSWORD);
  await second.getByRole('button', { name: 'Log in' }).last().click();
  await second.getByRole('heading', { name: 'Link this device' }).waitFor();
  const codeLocator = second.getByRole('group', { name: 'Link code' }).locator('[data-code]');
  await codeLocator.waitFor();
  const code = await codeLocator.getAttribute('data-code');
  check(/^[0-9]{16}$/.test(code ?? ''), `a 16-digit code: ${code}`);
  const shown = (await codeLocator.textContent()).trim();
  check(shown === code.match(/.{4}/g).join(' '), `the code shown in groups of four: ${shown}`);
  await second.getByRole('status').getByText('Waiting for approval').waitFor();
  await screenshot(second, 'link-screen');
  const focusOn = (name) =>
    second.waitForFunction((text) => document.activeElement?.textContent?.trim() === text, name, { timeout: 5_000 });
  await second.getByRole('button', { name: 'Start a new identity instead' }).click();
  const warning = second.getByRole('alertdialog', { name: 'Start a new identity' });
  await warning.getByText('Only if you lost your other devices').waitFor();
  const describedBy = await warning.getAttribute('aria-describedby');
  check(
    describedBy !== null && (await second.locator(`[id="${describedBy}"]`).textContent()).includes('Only if you lost'),
    `the warning describes the dialog: ${describedBy}`,
  );
  await focusOn('Keep linking');
  await screenshot(second, 'new-identity-warning');
  await warning.getByRole('button', { name: 'Keep linking' }).click();
  await warning.waitFor({ state: 'detached' });
  await focusOn('Start a new identity instead');

  step('on A, the request appears on the Account page; a wrong code is refused');
  await alice.getByRole('button', { name: 'Account', exact: true }).click();
  const requests = alice.getByRole('list', { name: 'Link requests' });
  const request = requests.locator('li.link-request');
  await request.waitFor();
  const codeField = request.getByLabel(/^Code shown on/);
  const wrong = `${code.slice(0, 15)}${(Number(code[15]) + 1) % 10}`;
  await codeField.fill(wrong);
  await request.getByRole('button', { name: 'Approve' }).click();
  await request.getByRole('alert').getByText('This code does not match').waitFor();
  await request.getByRole('button', { name: 'Reject' }).scrollIntoViewIfNeeded();
  await screenshot(alice, 'wrong-code');
  const pending = await api('GET', '/api/v1/devices/links', t.adminToken);
  check(pending.length === 1 && pending[0].state === 'pending', `still waiting: ${JSON.stringify(pending)}`);
  check(await second.getByRole('heading', { name: 'Link this device' }).isVisible(), 'B still waits');

  step('A approves with the code B shows; B reaches the chat with the conversation with bob');
  await codeField.fill(code.match(/.{4}/g).join(' '));
  await request.getByRole('button', { name: 'Approve' }).click();
  await alice.getByRole('region', { name: 'Link a device' }).getByRole('status').getByText(/^Linked /).waitFor();
  await second.locator('.me[data-username="alice"]').waitFor();
  await second.getByText('● live').waitFor();
  timings.linkMs = Date.now() - at;
  await alice.getByRole('list', { name: 'Chat devices' }).locator('li').nth(1).waitFor();
  await screenshot(alice, 'approved');
  await openConversation(second, 'bob');
  // Forward secrecy: the new device sees the conversation from its joining on.
  check((await second.locator('li.message').count()) === 0, 'no history from before the link');

  step('bob, in the conversation with alice, is told she added a device, and accepts it');
  const notice = bob.getByRole('alert').filter({ hasText: 'alice added a new device' });
  await notice.waitFor();
  await screenshot(bob, 'new-device-notice');
  await notice.getByRole('button', { name: 'OK' }).click();
  await notice.waitFor({ state: 'detached' });

  step('bob writes: both of alice\'s browsers read it');
  await openConversation(alice, 'bob');
  at = Date.now();
  await sendText(bob, 'Hi to both of your browsers');
  await messageIn(second, 'theirs', 'Hi to both of your browsers');
  await messageIn(alice, 'theirs', 'Hi to both of your browsers');
  timings.afterLinkMessageMs = Date.now() - at;

  step('the new browser writes: bob reads it, and so does alice\'s first browser');
  await sendText(second, 'Hello from my new browser');
  await messageIn(bob, 'theirs', 'Hello from my new browser');
  await messageIn(alice, 'mine', 'Hello from my new browser');
  await screenshot(second, 'chat');

  return { timings };
});
