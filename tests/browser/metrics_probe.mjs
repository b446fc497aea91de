// Signs in to an instance's dashboard in headless Chromium as a tenant would and reports on stdout, as one JSON
// object, the measured use the overview shows as the browser renders it: each pod's and workload's CPU and memory
// figures and what they are measured against, each pod's sparklines (their titles and points) or the words saying
// their history is being collected, the quota's reserved and in-use-now figures, the month's usage, the console
// errors and Content-Security-Policy violations (none expected), burn-0's CPU figure once the card has refreshed itself,
// and how far the page overflows a phone's width.
//
// Driven by tests/dashboard_metrics.rs; configured by environment variables (the token is not put on a command line):
// PROBE_URL (the instance's dashboard_url), PROBE_TOKEN, PROBE_USER_DATA_DIR (a fresh directory), PROBE_SCREENSHOT
// (a .png path), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { env, launchOptions, say, step, text } from './probe.mjs';

const url = env('PROBE_URL');
const screenshot = env('PROBE_SCREENSHOT');

const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), launchOptions());
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  step('sign in');
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  await page.fill('#token', env('PROBE_TOKEN'));
  await Promise.all([page.waitForURL((u) => !u.pathname.endsWith('/login'), { timeout: 30000 }), page.click('button[type=submit]')]);
  step('the overview\'s measured use');
  await page.waitForSelector('#metrics', { timeout: 30000 });
  step('the broker\'s first samples of burn-0 (the card refreshes itself every 30 s)');
  await page.waitForSelector('#pod-usage tr[data-pod="burn-0"] td.cpu svg.sparkline', { timeout: 180000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  const pods = await page.$$eval('#pod-usage tr[data-pod]', (rows) => rows.map((row) => {
    const fold = (node) => (node?.textContent ?? '').replace(/\s+/g, ' ').trim();
    const cell = (name) => ({
      used: fold(row.querySelector(`td.${name} .used`)),
      against: [...row.querySelectorAll(`td.${name} .against`)].map(fold),
      collecting: row.querySelectorAll(`td.${name} .history-collecting`).length,
      sparklines: [...row.querySelectorAll(`td.${name} svg.sparkline`)].map((svg) => ({
        title: fold(svg.querySelector('title')),
        label: svg.getAttribute('aria-label'),
        points: svg.querySelector('polyline')?.getAttribute('points') ?? null,
        dot: svg.querySelector('circle') !== null,
        width: svg.getBoundingClientRect().width,
      })),
    });
    return { pod: row.dataset.pod, cpu: cell('cpu'), memory: cell('memory') };
  }));
  const workloads = await page.$$eval('#workload-usage tr[data-workload]', (rows) => rows.map((row) => {
    const fold = (node) => (node?.textContent ?? '').replace(/\s+/g, ' ').trim();
    return {
      workload: row.dataset.workload,
      pods: fold(row.querySelector('td.pods')),
      cpu: fold(row.querySelector('td.cpu .used')),
      memory: fold(row.querySelector('td.memory .used')),
      against: [...row.querySelectorAll('.against')].map(fold),
    };
  }));
  const quota = await page.$$eval('#quota tbody tr', (rows) => rows.map((row) => {
    const fold = (node) => (node?.textContent ?? '').replace(/\s+/g, ' ').trim();
    return {
      resource: row.querySelector('label')?.getAttribute('title') ?? '',
      words: fold(row.querySelector('label')),
      reserved: fold(row.querySelector('td.num')),
      inUse: row.querySelector('td.in-use .now') ? fold(row.querySelector('td.in-use .now')) : null,
      inUseBar: row.querySelector('td.in-use meter')?.getAttribute('value') ?? null,
    };
  }));
  step('the card refreshing itself (every 30 s)');
  const refreshed = await page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('/usage'), { timeout: 60000 });
  await page.waitForLoadState('networkidle', { timeout: 30000 }).catch(() => {});
  const refresh = {
    status: refreshed.status(),
    burning: await text(page, '#pod-usage tr[data-pod="burn-0"] td.cpu .used'),
  };
  const result = {
    refresh,
    finalUrl: page.url(),
    metricsUnavailable: (await page.locator('#metrics-unavailable').count()) > 0,
    pods,
    workloads,
    quota,
    month: await text(page, '#month-usage'),
    consoleErrors,
    screenshot,
  };
  // The same page on a phone: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  result.phoneOverflowPx = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  result.phoneScreenshot = screenshot.replace(/\.png$/, '-phone.png');
  await page.screenshot({ path: result.phoneScreenshot, fullPage: true });
  say(result);
} finally {
  await context.close();
  process.stdin.destroy();
}
