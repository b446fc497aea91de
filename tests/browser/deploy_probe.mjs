// The deploy form and the endpoint tester as a tenant meets them, in headless Chromium (driven by
// tests/dashboard_deploy.rs):
//  1. an editor signs in with a token and follows the overview's link to the deploy form;
//  2. checks a form with an invalid value (a memory request above its limit), then one over the quota: the cluster's
//     refusals show beside their fields; then prints {"event":"dry-runs-done"} and waits for a line on standard input
//     (the test checks that nothing was made);
//  3. checks a valid form (the YAML preview shows), deploys it, and watches the app become ready on the open page;
//  4. tries the app's Service and a Service with no ready pod in the endpoint tester;
//  5. deletes the app on the apps page.
// A screenshot of each page is kept in SCREENSHOT_DIR. The last line on stdout is one JSON report.
//
// Environment: PROBE_URL (the instance's dashboard_url), PROBE_TOKEN (the editor's token), SCREENSHOT_DIR,
// PROBE_USER_DATA_DIR, CHROMIUM (default /usr/bin/chromium). The token comes in the environment, never on a command
// line.
import { chromium } from 'playwright-core';
import path from 'node:path';
import { env, launchOptions, lines, reporting, say, signInWithToken, step, submit, text } from './probe.mjs';

const url = env('PROBE_URL');
const screenshots = env('SCREENSHOT_DIR');
const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), launchOptions());
const { report, shoot } = reporting();
// Refused forms answer 4xx, which Chromium logs as a failed load: those are the point, not errors.
const watchConsole = (page) => page.on('console', (m) => {
  if (m.type() === 'error' && !/status of (400|409|422)/.test(m.text())) report.consoleErrors.push(`${page.url()}: ${m.text()}`);
});
const fill = async (page, fields) => {
  for (const [name, value] of Object.entries(fields)) await page.fill(`#field-${name}`, value);
};

try {
  step('token sign-in');
  const page = context.pages()[0] ?? (await context.newPage());
  watchConsole(page);
  await signInWithToken(page, url, env('PROBE_TOKEN'));
  await submit(page, page.locator('#deploy-link'));
  report.prefilled = await page.inputValue('#field-memory_limit');
  await shoot(page, '1-deploy-form');

  step('dry runs the cluster refuses');
  await fill(page, { name: 'web', image: 'example.invalid/web:1', memory_request: '1Gi', memory_limit: '256Mi' });
  await submit(page, page.locator('#dry-run'));
  report.invalidError = await text(page, '#error-memory_request');
  await shoot(page, '2-invalid-value');
  await fill(page, { memory_request: '128Mi', replicas: '5', cpu_request: '1', cpu_limit: '1' });
  await submit(page, page.locator('#dry-run'));
  report.quotaError = await text(page, '#error-replicas');
  await shoot(page, '3-over-quota');
  say({ event: 'dry-runs-done' });
  await lines.next();

  step('a valid dry run, then the deploy, live');
  await fill(page, { replicas: '2', cpu_request: '100m', cpu_limit: '500m' });
  await submit(page, page.locator('#dry-run'));
  report.preview = await text(page, '#preview');
  await submit(page, page.locator('#deploy'));
  report.progressUrl = page.url();
  report.firstState = await page.getAttribute('#progress-state', 'data-state');
  await page.evaluate(() => { window.caasSameDocument = true; });
  await page.waitForSelector('#progress-state[data-state=succeeded]', { timeout: 90000 });
  report.readyWithoutReload = await page.evaluate(() => window.caasSameDocument === true);
  report.progress = await text(page, '#progress');
  await shoot(page, '4-deployed-live');

  step('endpoint tester');
  await page.goto(`${url}/try`, { waitUntil: 'load' });
  report.targets = await page.locator('#target option').allTextContents();
  await page.selectOption('#target', 'service/lonely');
  await submit(page, page.locator('#send'));
  report.lonely = await text(page, '#problem');
  await shoot(page, '5-tester-no-endpoint');
  await page.selectOption('#target', 'service/web');
  await page.fill('#path', '/');
  await submit(page, page.locator('#send'));
  report.web = (await page.locator('#answer-status').count()) ? `answer ${await text(page, '#answer-status')}` : await text(page, '#problem');
  await shoot(page, '6-tester-web');

  step('delete on the apps page');
  await page.goto(`${url}/apps`, { waitUntil: 'load' });
  const app = page.locator('#app-deployments-web');
  await app.locator('details summary').last().click();
  await submit(page, app.locator('form:has(input[name=action][value=delete]) button'));
  report.deleted = await text(page, '#notice');
  await shoot(page, '7-deleted');
  say(report);
} catch (error) {
  for (const page of context.pages()) await page.screenshot({ path: path.join(screenshots, 'failure.png'), fullPage: true }).catch(() => {});
  throw error;
} finally {
  await context.close();
  process.stdin.destroy();
}
