// Opens a streaming session's noVNC page in headless Chromium, as a tenant's browser would, and reports on stdout,
// as one JSON object, what the browser received:
//
//   wrong: the page opened with a wrong password: noVNC's status line, whether any frame showed the app's colour,
//          the share of the page that has the app's colour (screenshot).
//   right: the page opened with the right password: the time from navigation start to the first canvas frame showing
//          the app's colour, the share of the canvas in the app's colour (screenshot), and the frame rate over
//          PROBE_MEASURE_MS: canvas frames per second that differ from the previous one, plus the raw rate of
//          framebuffer updates drawn to the visible canvas.
//
// Driven by tests/streaming_session_e2e.rs; configured by environment variables (the password is not put on a command
// line): PROBE_BASE_URL (http://127.0.0.1:PORT), PROBE_PASSWORD, PROBE_WRONG_PASSWORD, PROBE_COLOUR (#rrggbb),
// PROBE_USER_DATA_DIR (a fresh directory), PROBE_OUT_DIR (screenshots), PROBE_MEASURE_MS (default 5000),
// CHROMIUM (default /usr/bin/chromium).
//
// Through the dashboard instead (tests/real_node.rs): PROBE_DASHBOARD_PAGE (a session's dashboard page) and
// PROBE_COOKIE (the signed-in session cookie, name=value) replace PROBE_BASE_URL and the passwords: the probe opens
// the page, clicks its Open button and measures the noVNC tab it opens (`wrong` is null; `right.openedPath` and
// `right.openedQuery` say where the tab went, without the fragment that carries the password).
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
};
const dashboardPage = process.env.PROBE_DASHBOARD_PAGE ?? '';
const baseUrl = dashboardPage ? '' : env('PROBE_BASE_URL');
const password = dashboardPage ? '' : env('PROBE_PASSWORD');
const wrongPassword = dashboardPage ? '' : env('PROBE_WRONG_PASSWORD');
const colour = env('PROBE_COLOUR', '#ff00aa');
const userDataDir = env('PROBE_USER_DATA_DIR');
const outDir = env('PROBE_OUT_DIR');
const measureMs = Number(env('PROBE_MEASURE_MS', '5000'));
const executablePath = env('CHROMIUM', '/usr/bin/chromium');

const rgb = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
if (!rgb) throw new Error(`PROBE_COLOUR must be #rrggbb, not ${colour}`);
const target = rgb.slice(1).map((hex) => parseInt(hex, 16));
// noVNC may receive JPEG-compressed (Tight) rectangles: allow for small colour shifts.
const TOLERANCE = 40;
const FIRST_FRAME_TIMEOUT_MS = 30000; // generous: a busy 2-core CI machine can take seconds
const VIEWPORT = { width: 1280, height: 720 };

// Runs in every page before noVNC's scripts. noVNC draws each framebuffer update into an off-screen canvas and then
// copies the changed region onto the visible canvas with drawImage ("flip"): counting drawImage calls on a canvas
// that is in the document counts the updates the user sees. Each animation frame in which the canvas changed is
// sampled (160x90, nearest neighbour) and hashed, so that only frames that differ from the previous one count.
function instrument([target, tolerance]) {
  const probe = {
    navigationToFirstAppFrameMs: null,
    navigationToFirstUpdateMs: null,
    updates: 0,
    frames: 0,
    distinctFrames: 0,
    windowStart: null,
    dirty: false,
    lastHash: 0,
  };
  window.__probe = probe;
  const originalDrawImage = CanvasRenderingContext2D.prototype.drawImage;
  let sampler = null;
  const sample = (canvas) => {
    if (!sampler) {
      sampler = document.createElement('canvas');
      sampler.width = 160;
      sampler.height = 90;
    }
    const ctx = sampler.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = false;
    originalDrawImage.call(ctx, canvas, 0, 0, sampler.width, sampler.height);
    return ctx.getImageData(0, 0, sampler.width, sampler.height).data;
  };
  const appShare = (pixels) => {
    let matching = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (
        Math.abs(pixels[i] - target[0]) <= tolerance &&
        Math.abs(pixels[i + 1] - target[1]) <= tolerance &&
        Math.abs(pixels[i + 2] - target[2]) <= tolerance
      ) {
        matching += 1;
      }
    }
    return matching / (pixels.length / 4);
  };
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    const result = originalDrawImage.apply(this, args);
    const canvas = this.canvas;
    if (canvas.isConnected && canvas !== sampler && canvas.width > 0 && canvas.height > 0) {
      probe.updates += 1;
      probe.dirty = canvas;
      if (probe.navigationToFirstUpdateMs === null) probe.navigationToFirstUpdateMs = performance.now();
      if (probe.navigationToFirstAppFrameMs === null && appShare(sample(canvas)) >= 0.5) {
        probe.navigationToFirstAppFrameMs = performance.now();
      }
    }
    return result;
  };
  const tick = () => {
    if (probe.dirty) {
      const pixels = sample(probe.dirty);
      probe.dirty = false;
      probe.frames += 1;
      let hash = 2166136261;
      for (let i = 0; i < pixels.length; i += 1) hash = Math.imul(hash ^ pixels[i], 16777619);
      if (hash !== probe.lastHash) probe.distinctFrames += 1;
      probe.lastHash = hash;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  probe.startWindow = () => {
    probe.updates = 0;
    probe.frames = 0;
    probe.distinctFrames = 0;
    probe.windowStart = performance.now();
  };
  // The share of a screenshot (PNG, base64) in the app's colour, decoded by the browser itself. Its OffscreenCanvas is
  // not a CanvasRenderingContext2D, so decoding does not count as a canvas update.
  probe.colourShare = async (base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = offscreen.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    return { share: appShare(pixels), width: bitmap.width, height: bitmap.height };
  };
  probe.readWindow = () => {
    const seconds = (performance.now() - probe.windowStart) / 1000;
    return {
      seconds,
      updates: probe.updates,
      frames: probe.frames,
      distinctFrames: probe.distinctFrames,
    };
  };
}

// The share of a screenshot's pixels that have the app's colour, counted in `page` by the instrument's own test.
const colourShare = (page, png) =>
  page.evaluate((base64) => window.__probe.colourShare(base64), png.toString('base64'));

const pageUrl = (pw) => `${baseUrl}/vnc.html?autoconnect=1&resize=scale&password=${encodeURIComponent(pw)}`;
const statusText = (page) =>
  page.evaluate(() => document.getElementById('noVNC_status')?.textContent?.trim() ?? '');

async function probeWrongPassword(context) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(pageUrl(wrongPassword), { waitUntil: 'domcontentloaded' });
  // noVNC shows the server's refusal in its status line.
  let status = '';
  const deadline = Date.now() + FIRST_FRAME_TIMEOUT_MS;
  while (Date.now() < deadline) {
    status = await statusText(page);
    if (/reject|fail|authenticat|closed|wrong/i.test(status)) break;
    await page.waitForTimeout(100);
  }
  await page.waitForTimeout(1000); // any frame that slipped through would be drawn by now
  const screenshot = join(outDir, 'wrong-password.png');
  const png = await page.screenshot({ path: screenshot });
  const { share } = await colourShare(page, png);
  const probe = await page.evaluate(() => ({
    updates: window.__probe.updates,
    firstAppFrameMs: window.__probe.navigationToFirstAppFrameMs,
  }));
  await page.close();
  return {
    status,
    appFrameSeen: probe.firstAppFrameMs !== null,
    canvasUpdates: probe.updates,
    pageColourShare: share,
    screenshot,
    pageErrors: errors,
  };
}

// The noVNC page opened with the right password: directly, or by the dashboard session page's Open button.
async function openRight(context, errors) {
  if (!dashboardPage) {
    const page = await context.newPage();
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(pageUrl(password), { waitUntil: 'domcontentloaded' });
    return page;
  }
  const cookie = env('PROBE_COOKIE');
  const separator = cookie.indexOf('=');
  await context.addCookies([
    { name: cookie.slice(0, separator), value: cookie.slice(separator + 1), url: dashboardPage },
  ]);
  const sessionPage = await context.newPage();
  await sessionPage.goto(dashboardPage, { waitUntil: 'domcontentloaded' });
  const [page] = await Promise.all([context.waitForEvent('page'), sessionPage.click('#open')]);
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.waitForLoadState('domcontentloaded');
  await sessionPage.close();
  return page;
}

async function probeRightPassword(context) {
  const errors = [];
  const page = await openRight(context, errors);
  const opened = new URL(page.url());
  const canvas = page.locator('#noVNC_container canvas');
  await canvas.waitFor({ state: 'visible', timeout: FIRST_FRAME_TIMEOUT_MS });
  try {
    await page.waitForFunction(() => window.__probe.navigationToFirstAppFrameMs !== null, null, {
      timeout: FIRST_FRAME_TIMEOUT_MS,
      polling: 50,
    });
  } catch (error) {
    const status = await statusText(page);
    await page.screenshot({ path: join(outDir, 'right-password-no-frame.png') });
    throw new Error(`no canvas frame showed the app's colour (noVNC status: "${status}"): ${error.message}`);
  }
  const timings = await page.evaluate(() => ({
    domContentLoadedMs: performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd ?? null,
    firstUpdateMs: window.__probe.navigationToFirstUpdateMs,
    firstAppFrameMs: window.__probe.navigationToFirstAppFrameMs,
  }));
  await page.evaluate(() => window.__probe.startWindow());
  await page.waitForTimeout(measureMs);
  const window_ = await page.evaluate(() => window.__probe.readWindow());
  const box = await canvas.boundingBox();
  const screenshot = join(outDir, 'right-password.png');
  const png = await page.screenshot({ path: screenshot, clip: box });
  const { share, width, height } = await colourShare(page, png);
  const status = await statusText(page);
  await page.close();
  return {
    status,
    openedPath: opened.pathname,
    openedQuery: opened.search,
    timeToFirstFrameMs: timings.firstAppFrameMs,
    timeToDomContentLoadedMs: timings.domContentLoadedMs,
    timeToFirstCanvasUpdateMs: timings.firstUpdateMs,
    framesPerSecond: window_.distinctFrames / window_.seconds,
    canvasUpdatesPerSecond: window_.updates / window_.seconds,
    measuredSeconds: window_.seconds,
    distinctFrames: window_.distinctFrames,
    canvasColourShare: share,
    canvasScreenshotSize: [width, height],
    screenshot,
    pageErrors: errors,
  };
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: VIEWPORT,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let exitCode = 0;
try {
  await context.addInitScript(instrument, [target, TOLERANCE]);
  const wrong = dashboardPage ? null : await probeWrongPassword(context);
  const right = await probeRightPassword(context);
  const browserVersion = context.browser()?.version() ?? null;
  process.stdout.write(`${JSON.stringify({ browserVersion, wrong, right })}\n`);
} catch (error) {
  process.stderr.write(`novnc_probe: ${error.stack ?? error}\n`);
  exitCode = 1;
} finally {
  await context.close();
}
process.exit(exitCode);
