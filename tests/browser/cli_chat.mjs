// A person in the web app (headless Chromium) and a person on the Rust command-line client
// (`securevox-cli`, run as a child process) talk through the same server, in the same MLS
// group: the CLI user starts a group with the web user and writes, the web user reads and
// answers, and they send each other files (a photo the web app previews, a document the CLI
// decrypts); their safety numbers match; when the CLI user starts over with a new identity, the
// web user is warned that the safety number changed. Usage:
//   SECUREVOX_CLI=target/debug/securevox-cli node tests/browser/cli_chat.mjs http://127.0.0.1:PORT
// The server must be empty (the web user registers first and is admin). Env: CHROMIUM,
// SECUREVOX_ARTIFACTS. Prints one JSON summary line; exit 0 = passed.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { appTest, PASSWORD } from './app.mjs';

const t = appTest({ script: 'cli_chat.mjs', prefix: 'cli-chat', totalMs: 120_000 });
const { base, step, check, screenshot, openPage, register, addContact, launch, invite, openConversation, messageIn, run } = t;
const binary = process.env.SECUREVOX_CLI;
if (binary === undefined) {
  console.error('SECUREVOX_CLI must name the securevox-cli binary');
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), 'securevox-cli-'));
const execFileAsync = promisify(execFile);

/** Runs the CLI with `--json`; returns its parsed output (it fails the test if the CLI does). */
const cli = (...args) => cliAt(profile, ...args);

async function cliAt(profileDir, ...args) {
  try {
    const { stdout } = await execFileAsync(binary, ['--server', base, '--profile', profileDir, '--json', ...args], {
      env: { ...process.env, SECUREVOX_PASSWORD: PASSWORD },
    });
    return JSON.parse(stdout);
  } catch (e) {
    throw new Error(`securevox-cli ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** Polls the CLI's history of `conversation` until a message satisfies `want`. */
async function cliReceives(conversation, want, what) {
  const until = Date.now() + 30_000;
  for (;;) {
    const found = (await cli('messages', conversation)).find((m) => !m.outgoing && want(m.content));
    if (found !== undefined) return found;
    check(Date.now() < until, `the CLI did not get ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

await run(async () => {
  await launch();
  const alice = await openPage('alice');

  step('alice registers in the browser; dave registers with the CLI from her invite');
  await alice.goto(`${base}/`);
  await register(alice, 'alice');
  const dave = await cli('register', 'dave', '--invite', await invite());
  check(dave.username === 'dave', `CLI registration: ${JSON.stringify(dave)}`);

  step('they add each other; dave (CLI) starts a group with alice and writes');
  await cli('contact', 'add', 'alice');
  await addContact(alice, 'dave');
  const { conversation_id: conversation } = await cli('group', 'create', 'Web and CLI', 'alice');
  await cli('send', conversation, 'Hello from the command line');

  step('alice reads it in the browser and answers');
  await openConversation(alice, 'Web and CLI');
  await messageIn(alice, 'theirs', 'Hello from the command line');
  await alice.getByLabel('Message', { exact: true }).fill('Hello from the browser');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  const answer = await cliReceives(conversation, (c) => c.type === 'text' && c.body === 'Hello from the browser', 'the answer');
  check(answer.sender_user_id !== dave.user_id, 'the answer is from alice');

  step('dave sends a photo from the CLI: the browser shows it inline');
  const photo = join(profile, 'photo.png');
  writeFileSync(photo, await alice.screenshot({ clip: { x: 0, y: 0, width: 90, height: 60 } }));
  await cli('send-file', conversation, photo);
  const preview = alice.locator('li.message.theirs img.preview[alt="photo.png"]');
  await preview.waitFor();
  const size = await preview.evaluate((img) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
  check(size[0] === 90 && size[1] === 60, `the CLI's photo decoded in the browser as 90×60: ${size}`);

  step('alice sends a document from the browser: the CLI decrypts it');
  const notes = `notes for dave, ${new Date().toISOString()}\n`.repeat(30);
  await alice.locator('input[type="file"]').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(notes) });
  const file = await cliReceives(conversation, (c) => c.type === 'file' && c.name === 'notes.txt', 'the document');
  check(file.content.mime === 'text/plain', `the media type travels inside the message: ${JSON.stringify(file.content)}`);
  const out = join(profile, 'notes-received.txt');
  await cli('fetch-file', conversation, file.content.attachment, out);
  check(readFileSync(out, 'utf8') === notes, 'the CLI decrypted the document whole');
  await screenshot(alice, 'conversation');

  step('their safety numbers match');
  const cliNumber = (await cli('safety-number', 'alice')).safety_number;
  await alice.getByRole('button', { name: 'Contacts', exact: true }).click();
  await alice.getByRole('button', { name: 'Safety number with dave' }).click();
  const webNumber = await alice.getByRole('dialog', { name: 'Safety number with dave' }).locator('.digits').textContent();
  check(webNumber.replace(/\s+/g, '') === cliNumber.replace(/\s+/g, ''), `safety numbers differ: ${webNumber} / ${cliNumber}`);
  await alice.getByRole('dialog', { name: 'Safety number with dave' }).getByRole('button', { name: 'Close' }).click();

  step('dave starts over with a new identity: alice is warned that their safety number changed');
  await openConversation(alice, 'Web and CLI');
  const fresh = mkdtempSync(join(tmpdir(), 'securevox-cli-'));
  await cliAt(fresh, 'login', 'dave', '--new-identity');
  const warning = alice.getByRole('alert').filter({ hasText: 'Your safety number with dave changed' });
  await warning.waitFor();
  await screenshot(alice, 'safety-number-changed');
  // The new number is shown at once: the one "I compared it" accepts.
  const shown = await warning.locator('.digits').textContent();
  const renewed = (await cliAt(fresh, 'safety-number', 'alice')).safety_number;
  check(shown.replace(/\s+/g, '') === renewed.replace(/\s+/g, ''), `the warning shows the new number: ${shown} / ${renewed}`);
  check(renewed !== cliNumber, 'a new identity, a new safety number');
  await warning.getByRole('button', { name: 'I compared it' }).click();
  await warning.waitFor({ state: 'detached' });
  await alice.reload();
  await openConversation(alice, 'Web and CLI');
  await messageIn(alice, 'theirs', 'Hello from the command line');
  check((await alice.getByRole('alert').count()) === 0, 'accepted: no warning after a reload');

  return { conversation };
});
