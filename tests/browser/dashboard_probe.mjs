// Signs in to an instance's dashboard in headless Chromium as a tenant would (opens the dashboard_url, is sent to the
// sign-in page, pastes a token, submits) and reports on stdout, as one JSON object, what the browser then shows: the
// final URL, the page's language, who it says is signed in, the text of the quota and alert sections, the number of quota bars, the console
// errors and Content-Security-Policy violations (none expected), whether the cookie is out of scripts' reach, and
// the screenshots' paths (laptop and phone) and how far the page overflows a phone's width (0 expected).
//
// Driven by tests/dashboard.rs; configured by environment variables (the token is not put on a command line):
// PROBE_URL (the instance's dashboard_url), PROBE_TOKEN, PROBE_USER_DATA_DIR (a fresh directory), PROBE_SCREENSHOT
// (a .png path), PROBE_LOCALE (default en-US), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { env, launchOptions } from './probe.mjs';

const url = env('PROBE_URL');
const token = env('PROBE_TOKEN');
const screenshot = env('PROBE_SCREENSHOT');

const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), {
  ...launchOptions(),
  locale: env('PROBE_LOCALE', 'en-US'),
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  const signInUrl = page.url();
  await page.fill('#token', token);
  await Promise.all([page.waitForURL((u) => !u.pathname.endsWith('/login'), { timeout: 30000 }), page.click('button[type=submit]')]);
  await page.waitForSelector('#quota', { timeout: 30000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  const text = async (selector) => ((await page.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
  const result = {
    signInUrl,
    finalUrl: page.url(),
    lang: await page.getAttribute('html', 'lang'),
    who: await text('.who'),
    plan: await text('#plan'),
    quota: await text('#quota'),
    quotaBars: await page.locator('#quota meter').count(),
    alerts: await text('#alerts'),
    cookieVisibleToScripts: await page.evaluate(() => document.cookie.includes('caas_dashboard_session')),
    consoleErrors,
    screenshot,
  };
  // The same page on a phone: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  result.phoneOverflowPx = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  result.phoneScreenshot = screenshot.replace(/\.png$/, '-phone.png');
  await page.screenshot({ path: result.phoneScreenshot, fullPage: true });
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  await context.close();
}
