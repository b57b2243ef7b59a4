// Web client figures, recorded (not asserted): run by scripts/bench-web.sh against a release
// server on an empty database.
//   - initial page load, cold (a new browser context each round): bytes transferred and
//     decoded, and time to interactive (navigation start → the login form usable);
//   - message send → shown on the other page (two registered users, a 1:1 conversation);
//   - call click → media connected on both pages (video, direct over loopback).
// Usage: node tests/browser/perf.mjs http://127.0.0.1:PORT [rounds, default 10]
// Prints one JSON line with every sample and the medians.
import { appTest, CALL_FLAGS } from './app.mjs';

const rounds = Number(process.argv[3] ?? 10);
const t = appTest({ script: 'perf.mjs', prefix: 'perf', totalMs: 60_000 + rounds * 30_000 });
const { base, step, check, openPage, register, addContact, launch, registerInvited, startChat, openConversation, messageIn, run } = t;

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const round1 = (x) => Math.round(x * 10) / 10;

/** One cold load of the login page: what it fetched and when it could be used. */
async function coldLoad(browser) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  // Usable: the login form is on screen (the app's script ran and rendered it).
  const interactive = await page.waitForFunction(() => {
    const button = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Log in');
    return button !== undefined && performance.now();
  });
  const interactiveMs = await interactive.jsonValue();
  const bytes = await page.evaluate(() => {
    const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
    return {
      transferred: entries.reduce((sum, e) => sum + e.transferSize, 0),
      decoded: entries.reduce((sum, e) => sum + e.decodedBodySize, 0),
      files: entries.length,
    };
  });
  await context.close();
  return { interactiveMs: round1(interactiveMs), ...bytes };
}

const callState = (page) => page.evaluate(() => window.__securevox.call());

await run(async () => {
  const browser = await launch(CALL_FLAGS);

  step(`page load, cold, ${rounds} rounds`);
  const loads = [];
  for (let i = 0; i < rounds; i++) loads.push(await coldLoad(browser));

  step('two users, a 1:1 conversation');
  const alice = await openPage('alice');
  const bob = await openPage('bob');
  await register(alice, 'alice');
  await registerInvited(bob, 'bob');
  await addContact(alice, 'bob');
  await addContact(bob, 'alice');
  await startChat(alice, ['bob']);
  const composer = alice.getByLabel('Message', { exact: true });
  await composer.fill('warm-up');
  await composer.press('Enter');
  await openConversation(bob, 'alice');
  await messageIn(bob, 'theirs', 'warm-up');

  step(`message send → shown, ${rounds * 2} messages`);
  const messages = [];
  for (let i = 0; i < rounds * 2; i++) {
    const text = `message ${i} ${Date.now()}`;
    await composer.fill(text);
    const sent = Date.now();
    await composer.press('Enter');
    await bob.locator('li.message.theirs .bubble', { hasText: text }).waitFor();
    messages.push(Date.now() - sent);
  }

  step(`call click → connected on both pages, ${Math.min(rounds, 5)} calls`);
  const calls = [];
  for (let i = 0; i < Math.min(rounds, 5); i++) {
    const clicked = Date.now();
    await alice.getByRole('button', { name: 'Video call' }).click();
    await bob.getByRole('dialog', { name: 'Incoming call' }).getByRole('button', { name: 'Accept' }).click();
    for (;;) {
      const states = await Promise.all([callState(alice), callState(bob)]);
      if (states.every((s) => s.active && s.participants[0]?.state === 'connected')) break;
      check(Date.now() - clicked < 20_000, `call ${i} did not connect: ${JSON.stringify(states)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    calls.push(Date.now() - clicked);
    await alice.getByRole('button', { name: 'Hang up' }).click();
    await bob.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
    await alice.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  }

  return {
    rounds,
    medians: {
      loadInteractiveMs: median(loads.map((l) => l.interactiveMs)),
      loadTransferredBytes: median(loads.map((l) => l.transferred)),
      loadDecodedBytes: median(loads.map((l) => l.decoded)),
      messageShownMs: median(messages),
      callConnectedMs: median(calls),
    },
    samples: { loads, messages, calls },
  };
});
