// Edits a Deployment's YAML in headless Chromium as a tenant would: signs in, opens the Deployment's page, opens the
// editor from its Edit link with the keyboard, changes `replicas: 1` to `replicas: 3`, reviews (the cluster's dry
// run) and applies; then asks for a change the cluster's admission refuses (a Service claiming external IPs) and
// reviews it; then reads the editor's controls in Korean. Reports on stdout, as one JSON object, what the pages
// showed: the changes listed, the page after Apply, the refusal, the Korean labels, console errors (each with the
// step it came in: the refusal's page answers 403, which Chromium logs), screenshots.
//
// Driven by tests/dashboard_edit.rs; configured by environment variables (the token is not put on a command line):
// PROBE_URL (the instance's dashboard_url), PROBE_TOKEN, PROBE_DEPLOYMENT and PROBE_SERVICE (object page paths),
// PROBE_USER_DATA_DIR (a fresh directory), SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { env, launchOptions, reporting, signInWithToken, step, submit, text } from './probe.mjs';

const url = env('PROBE_URL');
const origin = new URL(url).origin;
const { report, shoot } = reporting();

let now = 'sign in';
/** A browser signed in with the token, speaking `locale`; its console errors are reported with the step they came in. */
const signedIn = async (dir, locale) => {
  const context = await chromium.launchPersistentContext(dir, { ...launchOptions(), locale });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push({ step: now, text: message.text() });
  });
  await signInWithToken(page, url, env('PROBE_TOKEN'));
  return { context, page };
};
/** Names the step under way, for the report and the test's failure message. */
const go = (name) => {
  now = name;
  step(name);
};

const { context, page } = await signedIn(env('PROBE_USER_DATA_DIR'), 'en-US');
try {
  go('open the Deployment and its editor, with the keyboard');
  await page.goto(origin + env('PROBE_DEPLOYMENT'), { waitUntil: 'load', timeout: 30000 });
  await page.focus('#edit');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: 30000 }), page.keyboard.press('Enter')]);
  report.editorUrl = page.url();
  report.yamlLabel = await text(page, 'label[for=yaml]');
  const yaml = await page.inputValue('#yaml');
  report.replicasLines = yaml.split('\n').filter((line) => /^\s*replicas: /.test(line));
  await page.fill('#yaml', yaml.replace(/^(\s*)replicas: 1$/m, '$1replicas: 3'));
  await page.focus('#yaml');
  await page.keyboard.press('Tab');
  report.afterYamlTab = await page.evaluate(() => document.activeElement?.id ?? '');

  go('review');
  await submit(page, page.locator('#edit-review'));
  await page.waitForSelector('#changes', { timeout: 30000 });
  report.changes = await page.locator('#changes li').allTextContents();
  report.changes = report.changes.map((change) => change.replace(/\s+/g, ' ').trim());
  await shoot(page, 'review');

  go('apply');
  await submit(page, page.locator('#edit-apply'));
  await page.waitForSelector('#notice', { timeout: 30000 });
  report.afterApplyUrl = page.url();
  report.notice = await text(page, '#notice');
  report.appliedYaml = await page.locator('pre code').first().textContent();
  await shoot(page, 'applied');

  go('refused');
  await page.goto(origin + env('PROBE_SERVICE') + '/edit', { waitUntil: 'load', timeout: 30000 });
  const service = await page.inputValue('#yaml');
  await page.fill('#yaml', service.replace(/^spec:$/m, 'spec:\n  externalIPs:\n  - 203.0.113.7'));
  await submit(page, page.locator('#edit-review'));
  await page.waitForSelector('#refused', { timeout: 30000 });
  report.refusedHeading = await text(page, '#refused p');
  report.refusal = await text(page, '#refusal-message');
  report.refusedChanges = await page.locator('#changes').count();
  await shoot(page, 'refused');

  go('the controls in Korean');
  const korean = await signedIn(env('PROBE_USER_DATA_DIR') + '-ko', 'ko-KR');
  try {
    await korean.page.goto(origin + env('PROBE_DEPLOYMENT'), { waitUntil: 'load', timeout: 30000 });
    report.koreanEdit = await text(korean.page, '#edit');
    await korean.page.goto(origin + env('PROBE_DEPLOYMENT') + '/edit', { waitUntil: 'load', timeout: 30000 });
    report.koreanLang = await korean.page.getAttribute('html', 'lang');
    report.koreanReview = await text(korean.page, '#edit-review');
    report.koreanApply = await text(korean.page, '#edit-apply');
    report.koreanYamlLabel = await text(korean.page, 'label[for=yaml]');
    await shoot(korean.page, 'korean');
  } finally {
    await korean.context.close();
  }
  process.stdout.write(JSON.stringify(report) + '\n');
} finally {
  await context.close();
}
