// Signs in to an instance's dashboard in headless Chromium and visits each page named, checking what a user of a
// screen reader or of the keyboard alone needs: every control (field, list, button, link, disclosure) has a name a screen reader
// can say, and pressing Tab reaches every one of them. Reports on stdout, as one JSON object, per page: its status,
// how many controls it has, those without a name and those Tab never reached (both empty when all is well), and
// a screenshot.
//
// Driven by tests/dashboard_accessibility.rs; configured by environment variables: PROBE_URL (the instance's
// dashboard_url), PROBE_TOKEN, PROBE_PAGES (a JSON list of paths under PROBE_URL, "" for the overview),
// PROBE_USER_DATA_DIR (a fresh directory), SCREENSHOT_DIR, PROBE_LOCALE (default en-US), CHROMIUM.
import { chromium } from 'playwright-core';
import { env, launchOptions, reporting, say, signInWithToken, step } from './probe.mjs';

const url = env('PROBE_URL');
const pages = JSON.parse(env('PROBE_PAGES'));
const { report, shoot } = reporting();
report.pages = [];

const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), {
  ...launchOptions(),
  locale: env('PROBE_LOCALE', 'en-US'),
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push(`${page.url()}: ${message.text()}`);
  });
  step('signing in');
  await signInWithToken(page, url, env('PROBE_TOKEN'));
  for (const [index, path] of pages.entries()) {
    step(`page ${path || '/'}`);
    const answer = await page.goto(url + path, { waitUntil: 'load', timeout: 30000 });
    // Every control a user can reach, each known by what it is (live parts of a page may be drawn again meanwhile, so
    // an element itself is no key); and those without a name.
    const keyOf = () => {
      window.__controlKey = (element) => [
        element.tagName, element.id, element.getAttribute('href'), element.getAttribute('name'),
        element.getAttribute('value'), element.textContent.trim().slice(0, 60),
      ].join('|');
    };
    await page.evaluate(keyOf);
    const controls = await page.evaluate(() => {
      // Shown: rendered, visible, and not inside a closed disclosure (whose content Chromium skips).
      const shown = (element) => element.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true });
      const named = (element) => {
        const aria = element.getAttribute('aria-label') || element.getAttribute('aria-labelledby');
        if (aria || element.getAttribute('title')) return true;
        if (['INPUT', 'SELECT', 'TEXTAREA'].includes(element.tagName)) {
          return [...(element.labels ?? [])].some((label) => label.textContent.trim() !== '');
        }
        return element.textContent.trim() !== '' || element.querySelector('img[alt]:not([alt=""])') !== null;
      };
      const selector =
        'input:not([type=hidden]), select, textarea, button, a[href], summary, [tabindex]:not([tabindex="-1"])';
      // A control taken out of the Tab order on purpose (`tabindex="-1"`: the map's drawing, whose list beside it holds
      // the same links) is no control of its own.
      const found = [...document.querySelectorAll(selector)]
        .filter((element) => shown(element) && !element.disabled && element.getAttribute('tabindex') !== '-1');
      return found.map((element) => {
        const what = `${element.tagName.toLowerCase()}${element.id ? '#' + element.id : ''}`;
        return { key: window.__controlKey(element), what: `${what} "${element.textContent.trim().slice(0, 40)}"`, named: named(element) };
      });
    });
    step(`${controls.length} controls; pressing Tab`);
    const reached = new Set();
    const wanted = new Set(controls.map((control) => control.key));
    await page.locator('body').focus();
    for (let presses = 0; presses < 2 * controls.length + 20 && [...wanted].some((key) => !reached.has(key)); presses += 1) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => (document.activeElement && document.activeElement !== document.body
        ? window.__controlKey(document.activeElement) : null));
      if (focused !== null) reached.add(focused);
    }
    await shoot(page, `page-${index}`);
    report.pages.push({
      path,
      status: answer?.status() ?? 0,
      controls: controls.length,
      unnamed: controls.filter((control) => !control.named).map((control) => control.what),
      unreachable: controls.filter((control) => !reached.has(control.key)).map((control) => control.what),
    });
  }
  say(report);
} finally {
  await context.close();
  process.stdin.destroy();
}
