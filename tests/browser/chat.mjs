// Two people use the web app (served at `/`) in two headless Chromium pages: they register
// (the first is admin and invites the second), add each other as contacts, chat end-to-end
// encrypted both ways live (typing, read receipts, a reaction, an edit, a deletion, a photo shown
// inline and a document downloaded, a file too large refused), reload and
// keep their history, catch up after being away, see the offline state, compare safety
// numbers, log out and back in; a third person joins, the first starts a group of three, and
// the third is logged out when her session is revoked; the admin disables the second, who is
// logged out and cannot log back in. Usage:
//   node tests/browser/chat.mjs http://127.0.0.1:PORT      (or SECUREVOX_URL=...)
// The URL is where the app is served (the server itself, or `npx vite` proxying to it). The
// server must be empty (the first user becomes admin). Env: CHROMIUM (default
// /usr/bin/chromium), SECUREVOX_ARTIFACTS (screenshots; default target/browser-artifacts).
// Prints one JSON summary line; exit 0 = passed.
import { appTest, PASSWORD } from './app.mjs';

const t = appTest({ script: 'chat.mjs', prefix: 'chat', totalMs: 120_000 });
const { base, consoleErrors, step, check, screenshot, openPage, register, api, addContact, launch } = t;
const { registerInvited, startChat, messageIn, sendText, run } = t;
const timings = {};

async function safetyNumber(page, username) {
  await page.getByRole('button', { name: 'Contacts', exact: true }).click();
  await page.getByRole('button', { name: `Safety number with ${username}` }).click();
  const dialog = page.getByRole('dialog', { name: `Safety number with ${username}` });
  const digits = (await dialog.locator('.digits').textContent()).trim();
  return { dialog, digits };
}

await run(async () => {
  await launch();
  const alice = await openPage('alice');
  const bob = await openPage('bob');

  step('alice registers (the first account: admin, no invite)');
  await alice.goto(`${base}/`);
  await alice.getByRole('button', { name: 'Log in' }).first().waitFor();
  await screenshot(alice, 'login');
  let t = Date.now();
  await register(alice, 'alice');
  timings.registerMs = Date.now() - t;

  step('alice invites bob (API), bob registers from the invite link');
  await registerInvited(bob, 'bob');

  step('they add each other as contacts');
  await addContact(alice, 'bob');
  await addContact(bob, 'alice');
  await screenshot(alice, 'contacts');

  step('alice starts a 1:1 conversation with bob and writes');
  await startChat(alice, ['bob']);
  t = Date.now();
  await sendText(alice, 'Hello Bob, this is encrypted');

  step('bob gets the conversation and the message live, unread first');
  await bob.getByRole('button', { name: 'Chats', exact: true }).click();
  const conversation = bob.locator('button.conversation', { hasText: 'alice' });
  await conversation.locator('.badge', { hasText: '1' }).waitFor();
  timings.firstMessageMs = Date.now() - t;
  await conversation.click();
  await messageIn(bob, 'theirs', 'Hello Bob, this is encrypted');
  await bob.locator('.badge').waitFor({ state: 'detached' });

  step('alice sees that bob read it');
  await alice.locator('li.message.mine .status[data-status="read"]').waitFor();

  step('bob types (alice sees it), then answers');
  await bob.getByLabel('Message', { exact: true }).pressSequentially('Hi Al');
  await alice.getByText('bob is typing…').waitFor();
  await bob.getByLabel('Message', { exact: true }).pressSequentially('ice!');
  t = Date.now();
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await messageIn(bob, 'mine', 'Hi Alice!');
  await messageIn(alice, 'theirs', 'Hi Alice!');
  timings.replyMs = Date.now() - t;
  await alice.getByText('bob is typing…').waitFor({ state: 'detached' });

  step('alice reacts to bob’s message and edits her own');
  await alice.locator('li.message.theirs', { hasText: 'Hi Alice!' }).getByRole('button', { name: 'React 👍' }).click();
  await bob.locator('li.message.mine', { hasText: 'Hi Alice!' }).getByRole('button', { name: /^👍 by alice/ }).waitFor();
  const mine = alice.locator('li.message.mine', { hasText: 'Hello Bob' });
  await mine.getByRole('button', { name: 'Edit' }).click();
  await alice.getByLabel('Edit message').fill('Hello Bob, this is end-to-end encrypted');
  await alice.getByLabel('Edit message').press('Enter');
  await bob.locator('li.message.theirs', { hasText: 'this is end-to-end encrypted' }).getByText('edited').waitFor();

  step('bob sends a message and deletes it');
  await sendText(bob, 'oops, wrong chat');
  await messageIn(alice, 'theirs', 'oops, wrong chat');
  await bob.locator('li.message.mine', { hasText: 'oops, wrong chat' }).getByRole('button', { name: 'Delete' }).click();
  await alice.locator('li.message.theirs', { hasText: 'message deleted' }).waitFor();
  await alice.locator('li.message.theirs', { hasText: 'oops, wrong chat' }).waitFor({ state: 'detached' });

  step('alice sends a photo and a document: bob sees the photo inline and downloads the document');
  const photo = await alice.screenshot({ clip: { x: 0, y: 0, width: 120, height: 80 } });
  const minutes = `minutes of ${new Date().toISOString()}\n`.repeat(40);
  await alice.locator('input[type="file"]').setInputFiles([
    { name: 'photo.png', mimeType: 'image/png', buffer: photo },
    { name: 'minutes.txt', mimeType: 'text/plain', buffer: Buffer.from(minutes) },
  ]);
  await alice.locator('li.message.mine', { hasText: 'minutes.txt' }).waitFor();
  const preview = bob.locator('li.message.theirs img.preview[alt="photo.png"]');
  await preview.waitFor();
  const size = await preview.evaluate((img) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
  check(size[0] === 120 && size[1] === 80, `the photo decrypted and decoded as 120×80: ${size}`);
  const [download] = await Promise.all([
    bob.waitForEvent('download'),
    bob.getByRole('button', { name: 'Download minutes.txt' }).click(),
  ]);
  const { readFile } = await import('node:fs/promises');
  check(download.suggestedFilename() === 'minutes.txt', `download name: ${download.suggestedFilename()}`);
  check((await readFile(await download.path(), 'utf8')) === minutes, 'the document downloads decrypted and whole');
  await alice.locator('input[type="file"]').setInputFiles({ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(11 * 1024 * 1024) });
  await alice.getByRole('alert').getByText('huge.bin is 11 MB: files can be at most 10.0 MB').waitFor();
  await screenshot(alice, 'conversation-alice');
  await screenshot(bob, 'conversation-bob');

  step('alice reloads: still logged in, history kept, live again');
  await alice.reload();
  await alice.locator('.me[data-username="alice"]').waitFor();
  await alice.getByText('● live').waitFor();
  await alice.locator('button.conversation', { hasText: 'bob' }).click();
  await messageIn(alice, 'mine', 'Hello Bob, this is end-to-end encrypted');
  await messageIn(alice, 'theirs', 'Hi Alice!');
  await alice.locator('li.message.theirs', { hasText: 'message deleted' }).waitFor();
  await sendText(bob, 'Still there after your reload?');
  await messageIn(alice, 'theirs', 'Still there after your reload?');
  await sendText(alice, 'Yes!');
  await messageIn(bob, 'theirs', 'Yes!');

  step('alice is away: what bob sends meanwhile is there when she comes back');
  await alice.goto('about:blank');
  await sendText(bob, 'While you were away');
  await alice.goto(`${base}/`);
  await alice.locator('button.conversation', { hasText: 'bob' }).click();
  await messageIn(alice, 'theirs', 'While you were away');

  step('offline and back: the header says so');
  const beforeOffline = consoleErrors.length;
  await alice.context().setOffline(true);
  await alice.getByRole('status').getByText('offline').waitFor();
  await screenshot(alice, 'offline');
  await alice.context().setOffline(false);
  await alice.getByText('● live').waitFor();
  // Chromium logs the requests the network refused meanwhile.
  consoleErrors.push(...consoleErrors.splice(beforeOffline).filter((e) => !/ERR_INTERNET_DISCONNECTED/.test(e)));
  await sendText(bob, 'Back online?');
  await messageIn(alice, 'theirs', 'Back online?');

  step('both see the same safety number; alice sees bob online');
  const a = await safetyNumber(alice, 'bob');
  await alice.locator('li.contact[data-username="bob"] .dot[aria-label="online"]').waitFor();
  const b = await safetyNumber(bob, 'alice');
  check(/^(\d{5} ?){12}$/.test(a.digits.replace(/\s+/g, ' ')), `a 60-digit safety number: ${a.digits}`);
  check(a.digits === b.digits, `safety numbers differ: ${a.digits} / ${b.digits}`);
  await screenshot(alice, 'safety-number');
  await a.dialog.getByRole('button', { name: 'Close' }).click();

  step('bob on a phone-sized screen');
  await bob.setViewportSize({ width: 390, height: 760 });
  // One pane at a time: the open conversation, then (back) the list.
  await messageIn(bob, 'theirs', 'Yes!');
  await screenshot(bob, 'phone-conversation');
  await bob.getByRole('button', { name: 'Back to conversations' }).click();
  await bob.getByRole('button', { name: 'Chats', exact: true }).click();
  await bob.locator('button.conversation', { hasText: 'alice' }).waitFor();
  await screenshot(bob, 'phone-conversations');
  await bob.locator('button.conversation', { hasText: 'alice' }).click();

  step('alice logs out and back in: same device, same history');
  await alice.getByRole('button', { name: 'Log out' }).click();
  await alice.getByRole('button', { name: 'Log in' }).last().waitFor();
  check((await alice.getByLabel('Username').inputValue()) === 'alice', 'the login form remembers the username');
  await alice.getByLabel('Password').fill(PASSWORD);
  await alice.getByRole('button', { name: 'Log in' }).last().click();
  await alice.locator('.me[data-username="alice"]').waitFor();
  await alice.locator('button.conversation', { hasText: 'bob' }).click();
  await messageIn(alice, 'theirs', 'Still there after your reload?');
  await sendText(bob, 'Welcome back');
  await messageIn(alice, 'theirs', 'Welcome back');

  step('carol joins; alice starts a group with bob and carol');
  const carol = await openPage('carol');
  await registerInvited(carol, 'carol');
  await addContact(carol, 'alice');
  await addContact(alice, 'carol');
  await startChat(alice, ['bob', 'carol'], 'Team');
  await sendText(alice, 'Hi team');
  await carol.getByRole('button', { name: 'Chats', exact: true }).click();
  await carol.locator('button.conversation', { hasText: 'Team' }).click();
  await messageIn(carol, 'theirs', 'Hi team');
  await sendText(carol, 'Hello from carol');
  await alice.locator('li.message.theirs', { hasText: 'Hello from carol' }).locator('.sender', { hasText: 'carol' }).waitFor();
  await bob.setViewportSize({ width: 1100, height: 760 });
  await bob.getByRole('button', { name: 'Chats', exact: true }).click();
  await bob.locator('button.conversation', { hasText: 'Team' }).click();
  await messageIn(bob, 'theirs', 'Hi team');
  await messageIn(bob, 'theirs', 'Hello from carol');
  await screenshot(alice, 'group');

  step('carol sees her sessions; revoking her browser session logs that page out');
  const carolApi = await api('POST', '/api/v1/auth/login', undefined, { username: 'carol', password: PASSWORD, device_name: 'chat.mjs' });
  await carol.getByRole('button', { name: 'Account', exact: true }).click();
  await carol.getByRole('list', { name: 'Sessions' }).getByText('chat.mjs').waitFor();
  await carol.getByRole('list', { name: 'Chat devices' }).getByText('(this browser)').waitFor();
  await screenshot(carol, 'account');
  const sessions = await api('GET', '/api/v1/me/sessions', carolApi.access_token);
  const browserSession = sessions.find((s) => !s.current);
  check(browserSession !== undefined, `carol's browser session in ${JSON.stringify(sessions)}`);
  const revoked = await fetch(`${base}/api/v1/me/sessions/${browserSession.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${carolApi.access_token}` },
  });
  check(revoked.status === 204, `revoke: ${revoked.status}`);
  const beforeRevoke = consoleErrors.length;
  await carol.getByRole('alert').getByText(/you were logged out/).waitFor();
  await carol.getByRole('button', { name: 'Log in' }).last().waitFor();
  // Finding out costs one refused request (and its refused refresh), which Chromium logs.
  const refused = consoleErrors.splice(beforeRevoke).filter((e) => !/^carol: .*status of 401/.test(e));
  consoleErrors.push(...refused);

  step('alice (admin) disables bob on the admin pages: he is logged out and cannot log back in');
  await alice.getByRole('button', { name: 'Admin', exact: true }).click();
  const users = alice.getByRole('region', { name: 'Administration' });
  const beforeDisable = consoleErrors.length;
  await users.getByRole('button', { name: 'Disable bob' }).click();
  await users.getByRole('button', { name: 'Enable bob' }).waitFor();
  await bob.getByRole('alert').getByText(/you were logged out: .*disabled/).waitFor();
  await screenshot(bob, 'disabled');
  await bob.getByLabel('Password').fill(PASSWORD);
  await bob.getByRole('button', { name: 'Log in' }).last().click();
  await bob.getByRole('alert').getByText(/disabled/).waitFor();
  check((await bob.locator('.me').count()) === 0, 'a disabled account stays logged out');
  // The refused reconnection and login are logged by Chromium.
  consoleErrors.push(...consoleErrors.splice(beforeDisable).filter((e) => !/^bob: .*status of (401|403)/.test(e)));

  return { safetyNumber: a.digits, timings };
});
