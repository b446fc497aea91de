// Opens a terminal into a running pod from the workloads page in headless Chromium, as a tenant with an `edit` binding
// would, and reports on stdout what the browser saw: an echo of a random word typed into xterm.js coming back on the
// screen, the size the shell reads (`stty size`) before and after the window shrinks, the session log downloaded
// from the page, whether xterm.js's own rules apply under the dashboard's policy, and the console errors (none
// expected: a refused inline style would be one). Then it says it is ready, waits for the test to unbind the binding
// and reports how long the terminal took to close and why, as the page says it.
//
// Driven by tests/dashboard_terminal.rs; configured by environment variables (the token is not put on a command line):
// PROBE_URL (the instance's dashboard_url), PROBE_TOKEN, PROBE_POD, PROBE_WORD, PROBE_USER_DATA_DIR (a fresh
// directory), SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { env, launchOptions, lines, reporting, say, signInWithToken, step } from './probe.mjs';

const pod = env('PROBE_POD');
const word = env('PROBE_WORD');
const { report, shoot } = reporting();

/** The rows of the terminal's screen, as xterm.js renders them, their ends trimmed. */
const screen = (page) =>
  page.$$eval('#terminal .xterm-rows > div', (rows) => rows.map((row) => row.textContent.replace(/\s+$/, '')));

/** Waits until `test` holds of the screen's rows, for up to `ms`; returns whether it did. */
const until = async (page, test, ms) => {
  const deadline = Date.now() + ms;
  while (!test(await screen(page))) {
    if (Date.now() > deadline) return false;
    await page.waitForTimeout(100);
  }
  return true;
};

/** The last row with something on it. */
const last = (rows) => rows.filter((row) => row !== '').at(-1) ?? '';

/** Types `command` at the shell's prompt and, once its echo is on the screen, Enter; then waits until a row after the
 * command's own satisfies `wanted` and returns that row. busybox's line editor asks the terminal where its cursor is
 * when it starts a line (and after a resize) and takes keys typed before the answer as part of it: a command whose
 * echo does not come is typed again on a fresh line (Ctrl-C). */
const run = async (page, command, wanted) => {
  for (let attempt = 0; ; attempt += 1) {
    if (!(await until(page, (rows) => /[#$]$/.test(last(rows)), 20000))) {
      throw new Error(`no prompt on the screen: ${JSON.stringify(await screen(page))}`);
    }
    await page.keyboard.type(command, { delay: 20 });
    if (await until(page, (rows) => last(rows).endsWith(command), 5000)) break;
    if (attempt === 2) throw new Error(`${command} typed is not on the screen: ${JSON.stringify(await screen(page))}`);
    await page.keyboard.press('Control+C');
  }
  await page.keyboard.press('Enter');
  let found;
  const answered = await until(page, (rows) => {
    const typed = rows.findLastIndex((row) => row.endsWith(command));
    found = typed >= 0 ? rows.slice(typed + 1).find(wanted) : undefined;
    return found !== undefined;
  }, 20000);
  if (!answered) throw new Error(`no answer to ${command} on the screen: ${JSON.stringify(await screen(page))}`);
  return found;
};

const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), { ...launchOptions(), acceptDownloads: true });
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push(message.text());
  });
  step('sign in');
  await signInWithToken(page, env('PROBE_URL'), env('PROBE_TOKEN'));
  step('the workloads page\'s Terminal control, reached with the keyboard');
  await page.goto(new URL('workloads', `${page.url().replace(/\/$/, '')}/`).href, { waitUntil: 'load' });
  const control = page.locator(`#kind-pods tr[data-name="${pod}"] a.terminal`);
  await control.focus({ timeout: 30000 });
  // A change in the namespace re-renders the section under the focused control (here made to happen now): the focus
  // must stay on the control, or a keyboard user's Enter would go nowhere.
  await page.evaluate(() => new Promise((settled) => {
    document.body.addEventListener('htmx:afterSettle', () => settled(), { once: true });
    window.htmx.trigger('#kind-pods', 'sse:pods');
  }));
  report.focusAfterRerender = await page.evaluate(() => document.activeElement?.id ?? null);
  await Promise.all([page.waitForURL((u) => u.pathname.includes('/terminal/'), { timeout: 30000 }), page.keyboard.press('Enter')]);
  step('the terminal connects');
  await page.waitForSelector('#terminal[data-state="open"]', { timeout: 30000 });
  report.labels = await page.$$eval('#container, #shell', (fields) =>
    fields.map((field) => document.querySelector(`label[for="${field.id}"]`)?.textContent ?? null));
  report.rowsWhiteSpace = await page.$eval('#terminal .xterm-rows', (rows) => getComputedStyle(rows).whiteSpace);
  report.status = await page.textContent('#terminal-status');

  step('echo');
  await page.click('#terminal');
  report.echoed = await run(page, `echo hello-${word}`, (row) => row === `hello-${word}`);

  step('resize');
  report.sizeBefore = await run(page, 'stty size', (row) => /^\d+ \d+$/.test(row));
  report.pageSizeBefore = await page.$eval('#terminal', (box) => box.dataset.size);
  await shoot(page, 'terminal');
  await page.setViewportSize({ width: 800, height: 600 });
  await page.waitForFunction((before) => document.getElementById('terminal').dataset.size !== before,
    report.pageSizeBefore, { timeout: 20000 });
  report.pageSizeAfter = await page.$eval('#terminal', (box) => box.dataset.size);
  report.sizeAfter = await run(page, 'stty size', (row) => row === report.pageSizeAfter);
  await shoot(page, 'terminal-resized');

  step('the session log');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), page.click('#terminal-log')]);
  report.logName = download.suggestedFilename();
  const log = await readFile(await download.path(), 'utf8');
  report.logHasEcho = log.includes(`hello-${word}`);
  report.logBytes = Buffer.byteLength(log);

  step('ready for the unbind');
  say({ ready: true });
  await lines.next();
  const began = Date.now();
  await page.waitForSelector('#terminal[data-state="closed"]', { timeout: 30000 });
  report.closedAfterMs = Date.now() - began;
  report.closeCode = await page.$eval('#terminal', (box) => box.dataset.closeCode);
  report.closedStatus = await page.textContent('#terminal-status');
  await shoot(page, 'terminal-closed');
  say(report);
} finally {
  await context.close();
  process.stdin.destroy();
}
