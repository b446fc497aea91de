// The whole dashboard as tenants meet it, in headless Chromium (driven by tests/dashboard_flow.rs):
//  1. an admin of the virtual cluster signs in with a token and sees the overview;
//  2. an alert appears on the open overview when a pod starts failing, without a reload (the test makes the pod fail
//     when this prints {"event":"ready-for-alert"} and answers on standard input);
//  3. on the apps page, stops, starts, restarts and scales the tenant's app `web` with the page's own buttons;
//  4. invites a member (MEMBER_EMAIL) with the view role on the members page;
//  5. downloads a kubeconfig with the overview's button;
//  6. is refused another instance's page and a cross-site form;
//  7. the member signs in through the OpenID Connect provider (Dex's login form), sees no control on the apps page,
//     and a forged action from their session is refused;
//  8. through Cloud Foundry's single sign-on (the same provider as UAA, and the test's stand-in Cloud Controller):
//     CF_MANAGER, whom the Cloud Controller lets manage the instance, gets the controls; CF_STRANGER, whom it gives
//     nothing, is refused.
// A screenshot of each page is kept in SCREENSHOT_DIR. The last line on stdout is one JSON report.
//
// Environment: PROBE_URL (the instance's dashboard_url), PROBE_TOKEN (the admin's token), OTHER_URL (another
// instance's dashboard_url), MEMBER_EMAIL, MEMBER_PASSWORD, CF_MANAGER, CF_MANAGER_PASSWORD, CF_STRANGER,
// CF_STRANGER_PASSWORD, PROVIDER_SPKI (base64 SHA-256 of the provider's TLS public
// key: the only certificate Chromium is told to accept without its CA), SCREENSHOT_DIR, DOWNLOAD_DIR,
// PROBE_USER_DATA_DIR, CHROMIUM (default /usr/bin/chromium). Secrets come in the environment, never on a command line.
import { chromium } from 'playwright-core';
import path from 'node:path';
import { env, launchOptions, lines, reporting, say, signInWithToken, step, submit, text } from './probe.mjs';

const url = env('PROBE_URL');
const origin = new URL(url).origin;
const downloads = env('DOWNLOAD_DIR');
const providerCertificate = [`--ignore-certificate-errors-spki-list=${env('PROVIDER_SPKI')}`];
const context = await chromium.launchPersistentContext(env('PROBE_USER_DATA_DIR'), {
  ...launchOptions(providerCertificate),
  acceptDownloads: true,
});
const { report, shoot } = reporting();
// Console errors, except while a refusal is the point (a 403 page is logged as a failed load).
let refusalExpected = false;
const watchConsole = (page) => page.on('console', (m) => {
  if (m.type() === 'error' && !refusalExpected) report.consoleErrors.push(`${page.url()}: ${m.text()}`);
});

try {
  // 1. Token sign-in.
  step('token sign-in');
  const page = context.pages()[0] ?? (await context.newPage());
  watchConsole(page);
  await signInWithToken(page, url, env('PROBE_TOKEN'));
  report.overviewUrl = page.url();
  report.signedInAs = await text(page, '.who');
  await shoot(page, '1-overview');

  // 2. The alert, live.
  step('waiting for the alert, live');
  await page.evaluate(() => { window.caasSameDocument = true; });
  report.alertsBefore = await text(page, '#alerts');
  say({ event: 'ready-for-alert' });
  await lines.next();
  await page.waitForFunction(() => document.querySelector('#alerts')?.textContent.includes('CrashLoopBackOff'), null, { timeout: 90000 });
  report.alertsAfter = await text(page, '#alerts');
  report.alertWithoutReload = await page.evaluate(() => window.caasSameDocument === true);
  await shoot(page, '2-alert-live');

  // 3. Apps: stop, start, restart, scale, with the page's buttons.
  step('apps');
  await submit(page, page.locator('#apps-link'));
  const app = () => page.locator('#app-deployments-web');
  report.notices = [];
  for (const action of ['stop', 'start', 'restart']) {
    await submit(page, app().locator(`form:has(input[name=action][value=${action}]) button`));
    report.notices.push(await text(page, '#notice'));
  }
  const scale = app().locator('form:has(input[name=action][value=scale])');
  await scale.locator('input[name=replicas]').fill('2');
  await submit(page, scale.locator('button'));
  report.notices.push(await text(page, '#notice'));
  report.appAfterActions = await text(page, '#app-deployments-web');
  await shoot(page, '3-apps');

  // 4. Members: invite with the view role.
  step('members');
  await page.goto(`${url}/members`, { waitUntil: 'load' });
  await page.fill('#member-name', env('MEMBER_EMAIL'));
  await page.selectOption('#member-role', 'view');
  await submit(page, page.locator('#invite button[type=submit]'));
  report.members = await text(page, '#members');
  await shoot(page, '4-members');

  // 5. The kubeconfig download.
  step('kubeconfig');
  await page.goto(url, { waitUntil: 'load' });
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 30000 }),
    page.locator('#kubectl form button').click(),
  ]);
  report.kubeconfigName = download.suggestedFilename();
  report.kubeconfig = path.join(downloads, report.kubeconfigName);
  await download.saveAs(report.kubeconfig);
  report.kubectlCommands = await text(page, '#kubectl');
  await shoot(page, '5-kubectl');

  // 6. Another instance's page, a cross-site form.
  step('refusals');
  refusalExpected = true;
  const other = await page.goto(env('OTHER_URL'), { waitUntil: 'load' });
  report.otherInstanceStatus = other.status();
  await shoot(page, '6-other-instance');
  refusalExpected = false;
  const crossSite = await context.request.post(`${url}/apps/deployments/web`, {
    headers: { origin: 'https://evil.example' },
    form: { action: 'stop' },
    maxRedirects: 0,
  });
  report.crossSiteStatus = crossSite.status();

  // 7. The member, through the OpenID Connect provider, in a browser of their own.
  step('member sign-in through the provider');
  const providerBrowser = await chromium.launch(launchOptions(providerCertificate));
  // Signs in through the provider `kind` (oidc, cf) as `email` in a fresh browser context; the page where it ends.
  const throughProvider = async (kind, email, password, shot) => {
    const visitor = await (await providerBrowser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } })).newPage();
    watchConsole(visitor);
    await visitor.goto(url, { waitUntil: 'load' });
    await submit(visitor, visitor.locator(`a[href$="/login/${kind}"]`));
    const at = visitor.url();
    await visitor.fill('input[name=login]', email);
    await visitor.fill('input[name=password]', password);
    const [answer] = await Promise.all([
      visitor.waitForResponse((r) => new URL(r.url()).pathname === '/auth/callback', { timeout: 60000 }),
      visitor.locator('button[type=submit]').click(),
    ]);
    await visitor.waitForLoadState('load');
    await shoot(visitor, shot);
    return { visitor, providerUrl: at, callbackStatus: answer.status() };
  };
  try {
    const { visitor: member, providerUrl } = await throughProvider('oidc', env('MEMBER_EMAIL'), env('MEMBER_PASSWORD'), '7-member-overview');
    report.providerLoginUrl = providerUrl;
    await member.waitForSelector('#quota', { timeout: 30000 });
    report.memberUrl = member.url();
    report.memberSignedInAs = await text(member, '.who');
    report.memberIdentity = await member.getAttribute('.who', 'title');
    await member.goto(`${url}/apps`, { waitUntil: 'load' });
    report.memberControls = await member.locator('input[name=action]').count();
    report.memberViewOnly = await member.locator('#view-only').count();
    await shoot(member, '8-member-apps');
    const forged = await member.context().request.post(`${url}/apps/deployments/web`, {
      headers: { origin },
      form: { action: 'scale', replicas: '0' },
      maxRedirects: 0,
    });
    report.memberForgedStatus = forged.status();
    report.memberForgedBody = (await forged.text()).replace(/\s+/g, ' ');

    // 8. Cloud Foundry's single sign-on: the Cloud Controller's answer decides, at sign-in.
    step('Cloud Foundry single sign-on');
    const { visitor: manager } = await throughProvider('cf', env('CF_MANAGER'), env('CF_MANAGER_PASSWORD'), '9-cf-manager');
    await manager.waitForSelector('#quota', { timeout: 30000 });
    report.cfManagerSignedInAs = await text(manager, '.who');
    report.cfManagerIdentity = await manager.getAttribute('.who', 'title');
    await manager.goto(`${url}/apps`, { waitUntil: 'load' });
    report.cfManagerControls = await manager.locator('input[name=action]').count();
    refusalExpected = true;
    const { visitor: stranger, callbackStatus } = await throughProvider('cf', env('CF_STRANGER'), env('CF_STRANGER_PASSWORD'), '10-cf-stranger');
    refusalExpected = false;
    report.cfStrangerStatus = callbackStatus;
    report.cfStrangerPage = await text(stranger, 'main');
  } finally {
    await providerBrowser.close();
  }
  say(report);
} catch (error) {
  for (const page of context.pages()) await page.screenshot({ path: path.join(env('SCREENSHOT_DIR'), 'failure.png'), fullPage: true }).catch(() => {});
  throw error;
} finally {
  await context.close();
  process.stdin.destroy();
}
