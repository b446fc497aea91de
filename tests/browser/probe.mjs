// What the dashboard's browser probes share: their settings from the environment (secrets never on a command line),
// Chromium's flags for this closed network, talking to the test that drives them (JSON lines on stdout, a line on
// stdin to go on, progress on stderr), and a report with screenshots.
import { createInterface } from 'node:readline';
import path from 'node:path';

/** The environment variable `name`, or `fallback`; a probe stops naming one that is missing. */
export const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
};

/** Chromium's flags: headless on a closed network (its start-up stalls on what it would fetch otherwise). */
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Options of a browser (context) as the probes launch it: Debian's Chromium, English, a laptop's screen. */
export const launchOptions = (extraArgs = []) => ({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  locale: 'en-US',
  viewport: { width: 1280, height: 900 },
  args: [...CHROMIUM_ARGS, ...extraArgs],
});

/** One JSON line to the test. */
export const say = (object) => process.stdout.write(JSON.stringify(object) + '\n');
/** Where the probe is, for the test's failure message. */
export const step = (name) => process.stderr.write(`probe: ${name}\n`);
/** The lines the test sends (`await lines.next()` waits for it to say go on). */
export const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** The text of `selector`'s first match, its white space folded. */
export const text = async (page, selector) =>
  ((await page.locator(selector).first().textContent({ timeout: 10000 })) ?? '').replace(/\s+/g, ' ').trim();

/** Submits the form of `button` and waits for the page it leads to. */
export const submit = async (page, button) => {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: 60000 }), button.click()]);
};

/** Signs in to the dashboard at `url` by pasting `token` on the sign-in page it sends to; waits for the overview. */
export const signInWithToken = async (page, url, token) => {
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  await page.fill('#token', token);
  await submit(page, page.locator('form button[type=submit]').last());
  await page.waitForSelector('#quota', { timeout: 30000 });
};

/** A report of console errors and screenshots (kept in SCREENSHOT_DIR), and the function that takes them. */
export const reporting = () => {
  const report = { consoleErrors: [], screenshots: [] };
  const shoot = async (page, name) => {
    const file = path.join(env('SCREENSHOT_DIR'), `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    report.screenshots.push(file);
  };
  return { report, shoot };
};

/**
 * Keeps a trace of the page's live streams (every EventSource's opening and error, with its URL, state and time since
 * the probe began) and of every answer of 400 or more and every failed request, so that a console error such as
 * htmx's "[object Event]" (a stream that broke) says which request failed and when. Installed before any page loads,
 * from outside the page (its policy forbids inline scripts); call before the first navigation.
 */
export const traceNetwork = async (page) => {
  const began = Date.now();
  const trace = [];
  const at = () => `${Date.now() - began}ms`;
  await page.exposeBinding('__traceEventSource', (_source, entry) => trace.push({ at: at(), ...entry }));
  await page.addInitScript(() => {
    const Original = window.EventSource;
    window.EventSource = class extends Original {
      constructor(url, options) {
        super(url, options);
        const note = (event) => window.__traceEventSource({
          eventSource: event, url: String(url), readyState: this.readyState, page: location.pathname,
        });
        this.addEventListener('open', () => note('open'));
        this.addEventListener('error', () => note('error'));
      }
    };
  });
  page.on('response', (response) => {
    if (response.status() >= 400) trace.push({ at: at(), status: response.status(), url: response.url() });
  });
  page.on('requestfailed', (request) =>
    trace.push({ at: at(), failed: request.failure()?.errorText, url: request.url() }));
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) trace.push({ at: at(), navigated: frame.url() });
  });
  return trace;
};
