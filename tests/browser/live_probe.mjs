// Signs in to an instance's dashboard in headless Chromium (dashboard_url, sign-in form, token), opens one of its live
// pages (the workloads page by default), and waits for what the test changes meanwhile to show without a reload (htmx
// over the live event stream): by default a pod in the pods section. Reports on stdout, as one JSON object: the final
// URL, whether it appeared, whether the page was reloaded (a marker set on the window survives only if not), and the
// console errors (Content-Security-Policy violations among them; none expected), the live streams that broke (htmx
// logs each as a console error; the page reconnects) and whether the page's stream was open at the end, with a trace of
// the live streams and failed requests that explains them.
//
// Driven by tests/dashboard_live.rs and tests/dashboard_session.rs; configured by environment variables (the token is
// not put on a command line): PROBE_URL (the instance's dashboard_url), PROBE_TOKEN, PROBE_POD (the pod's name) or
// PROBE_PAGE (the page's path under PROBE_URL, default /workloads) and PROBE_SELECTOR (what to wait for, a Playwright
// selector), PROBE_USER_DATA_DIR (a fresh directory), PROBE_SCREENSHOT (a .png path), CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { env, launchOptions, signInWithToken, traceNetwork } from './probe.mjs';

const url = env('PROBE_URL');
const token = env('PROBE_TOKEN');
const pagePath = env('PROBE_PAGE', '/workloads');
const selector = process.env.PROBE_SELECTOR || `#kind-pods tr[data-name="${env('PROBE_POD')}"]`;
const screenshot = env('PROBE_SCREENSHOT');

const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), launchOptions());
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  // htmx logs a broken live stream (an EventSource 'error' event) as this; the trace says which stream and when, and
  // the report whether the page's stream was open again at the end: a break the page recovers from is no page error.
  const streamBreaks = [];
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    (message.text() === '[object Event]' ? streamBreaks : consoleErrors).push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  const network = await traceNetwork(page);
  await signInWithToken(page, url, token);
  await page.goto(`${url}${pagePath}`, { waitUntil: 'load', timeout: 30000 });
  // Set from outside the page (the policy forbids the page's own inline script): gone if the page reloads.
  await page.evaluate(() => { window.__notReloaded = true; });
  let appeared = false;
  try {
    await page.waitForSelector(selector, { timeout: 60000 });
    appeared = true;
  } catch (error) {
    consoleErrors.push(`${selector} did not appear: ${error}`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  const finalPath = new URL(page.url()).pathname;
  // The page's own live stream (a session page also follows a log, whose stream ends when there is no log yet).
  const lastOfFinalPage = network
    .filter((entry) => entry.eventSource && entry.page === finalPath && new URL(entry.url, url).pathname.endsWith('/live'))
    .at(-1);
  const result = {
    finalUrl: page.url(),
    appeared,
    reloaded: !(await page.evaluate(() => window.__notReloaded === true)),
    consoleErrors,
    streamBreaks,
    liveAtEnd: lastOfFinalPage?.eventSource === 'open',
    network,
    screenshot,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  await context.close();
}
