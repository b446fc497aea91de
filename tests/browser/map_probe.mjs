// Signs in to an instance's dashboard in headless Chromium and reads, as a tenant would, the events timeline (all;
// then, once its live stream is open, it says so and waits for the test to record an event, which must appear
// without a reload; then filtered to warnings, then to one kind of object), the search page (by label, then by name)
// and the map, and reports on stdout, as one JSON object, what each page shows: the timeline's groups and events in
// page order with their markers, the search results, the map's list and drawing, which controls the keyboard's Tab
// reaches, the controls that have no label, how far each page overflows a phone's width (0 expected) and the console
// errors (none expected). Screenshots go to SCREENSHOT_DIR.
//
// Driven by tests/dashboard_map.rs; configured by environment variables: PROBE_URL (the instance's dashboard_url),
// PROBE_TOKEN, PROBE_USER_DATA_DIR, SCREENSHOT_DIR, PROBE_LOCALE (en-US or ko-KR), PROBE_LABEL (a search by label),
// PROBE_NAME (a search by name), PROBE_KIND (the kind the kind filter picks), PROBE_LIVE (the reason of the event
// recorded while the page is open), CHROMIUM.
import { chromium } from 'playwright-core';
import { env, launchOptions, lines, reporting, say, signInWithToken, step, submit, traceNetwork } from './probe.mjs';

const url = env('PROBE_URL');
const locale = env('PROBE_LOCALE', 'en-US');
const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), { ...launchOptions(), locale });
const { report, shoot } = reporting();
const suffix = locale.slice(0, 2);

/** The ids (else tag names) of what the keyboard's Tab reaches from the top of the page, in order (40 presses). */
const tabbed = async (page) => {
  await page.evaluate(() => document.activeElement?.blur());
  const reached = [];
  for (let press = 0; press < 40; press += 1) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName || ''));
  }
  return reached;
};

/** The form controls of the page that no label names. */
const unlabelled = (page) => page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
  .filter((control) => control.type !== 'hidden' && control.labels.length === 0 && !control.getAttribute('aria-label'))
  .map((control) => control.id || control.name || control.outerHTML.slice(0, 60)));

/** The timeline as the page shows it, in page order. */
const timeline = (page) => page.evaluate(() => [...document.querySelectorAll('#events .event-group')].map((group) => ({
  object: group.dataset.object,
  warning: group.classList.contains('warning'),
  link: group.querySelector('h3 a')?.getAttribute('href') ?? null,
  events: [...group.querySelectorAll('.event')].map((event) => ({
    type: event.dataset.type,
    seen: Number(event.dataset.seen ?? 0),
    marker: event.querySelector('.marker')?.textContent.trim(),
    reason: event.querySelector('.reason')?.textContent.trim(),
    message: event.querySelector('.message')?.textContent.trim(),
  })),
})));

/** Picks `kind` and `type` in the filter and shows what it lets through. */
const filtered = async (page, kind, type) => {
  await page.selectOption('#event-kind', kind);
  await page.selectOption('#event-type', type);
  await submit(page, page.locator('#event-filter button[type=submit]'));
  return { url: page.url(), groups: await timeline(page) };
};

/** Searches for `query` with the keyboard (typed in the box, Enter) and reads the results. */
const search = async (page, query) => {
  await page.fill('#q', query);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: 60000 }), page.press('#q', 'Enter')]);
  return page.evaluate(() => [...document.querySelectorAll('#results tbody tr')].map((row) => ({
    kind: row.dataset.kind, name: row.dataset.name, link: row.querySelector('a')?.getAttribute('href') ?? null,
  })));
};

try {
  const page = context.pages()[0] ?? (await context.newPage());
  const trace = await traceNetwork(page);
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push(`${page.url()}: ${message.text()}`);
  });
  step('sign in');
  await signInWithToken(page, url, env('PROBE_TOKEN'));
  report.lang = await page.getAttribute('html', 'lang');
  report.nav = await page.evaluate(() =>
    [...document.querySelectorAll('nav.pages a')].map((a) => a.textContent.trim()));

  step('the events timeline');
  await page.goto(`${url}/events`, { waitUntil: 'load', timeout: 30000 });
  await page.waitForSelector('#events', { timeout: 30000 });
  report.events = { groups: await timeline(page), tabbed: await tabbed(page), unlabelled: await unlabelled(page) };
  const streamOpen = Date.now() + 30000;
  while (!trace.some((entry) => entry.eventSource === 'open' && entry.page.endsWith('/events'))) {
    if (Date.now() > streamOpen) {
      throw new Error(`the events page's live stream did not open: ${JSON.stringify(trace)}`);
    }
    await page.waitForTimeout(100);
  }
  say({ event: 'timeline-open' });
  await lines.next();
  step('the recorded event, live');
  const live = env('PROBE_LIVE');
  await page.waitForFunction((reason) => [...document.querySelectorAll('#events .reason')]
    .some((element) => element.textContent.trim() === reason), live, { timeout: 30000 });
  report.events.live = await timeline(page);
  await shoot(page, `events-${suffix}`);
  report.warnings = await filtered(page, '', 'Warning');
  await shoot(page, `events-warnings-${suffix}`);
  report.ofKind = await filtered(page, env('PROBE_KIND'), '');

  step('search');
  await page.goto(`${url}/search`, { waitUntil: 'load', timeout: 30000 });
  report.search = { tabbed: await tabbed(page), unlabelled: await unlabelled(page) };
  report.search.byLabel = await search(page, env('PROBE_LABEL'));
  await shoot(page, `search-${suffix}`);
  report.search.byName = await search(page, env('PROBE_NAME'));

  step('the map');
  await page.goto(`${url}/map`, { waitUntil: 'load', timeout: 30000 });
  report.map = await page.evaluate(() => ({
    role: document.querySelector('svg.map')?.getAttribute('role'),
    label: document.querySelector('svg.map')?.getAttribute('aria-label'),
    drawnLinks: [...document.querySelectorAll('svg.map a')].map((a) => a.getAttribute('href')),
    list: [...document.querySelectorAll('#map-list li')].map((item) => ({
      text: item.textContent.replace(/\s+/g, ' ').trim(),
      links: [...item.querySelectorAll('a')].map((a) => a.getAttribute('href')),
    })),
  }));
  await shoot(page, `map-${suffix}`);

  step('on a phone');
  await page.setViewportSize({ width: 390, height: 844 });
  report.phoneOverflowPx = {};
  for (const name of ['events', 'search', 'map']) {
    await page.goto(`${url}/${name}`, { waitUntil: 'load', timeout: 30000 });
    report.phoneOverflowPx[name] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  }
  await shoot(page, `map-phone-${suffix}`);
  say(report);
} finally {
  await context.close();
  // probe.mjs listens on stdin for the test's go-ahead, which this probe never waits for: let node end.
  process.stdin.destroy();
}
