// Opens a streaming session's dashboard page in headless Chromium, as a signed-in member's browser would, and reports
// on stdout, as one JSON object, what the page's embedded Selkies stream showed:
//
//   opened: with PROBE_OPEN=1, the page's Open button was clicked first (a stopped session: Open starts it, and the
//           page loads the stream once the session is ready); openedPath is where it led.
//   frameSrc, framePath: where the page's stream frame points (its path: the dashboard's proxy, or the Ingress).
//   timeToFirstFrameMs: from navigation start until the frame shows the app's colour (PROBE_COLOUR) on > 95 %.
//   colourShare: the share of the frame in that colour (from a screenshot of the frame).
//   afterKey: the key PROBE_KEY ("2") pressed in the frame; keyColourShare: the share of the frame in PROBE_KEY_COLOUR
//             after it, and keyToColourMs: how long until it showed.
//   gamepad (with PROBE_GAMEPAD_COLOUR): an emulated gamepad (the frame's navigator.getGamepads replaced by one pad,
//            gamepadconnected dispatched) presses its button 0; gamepadColourShare: the share of the frame in
//            PROBE_GAMEPAD_COLOUR after it, and gamepadToColourMs: how long until it showed.
//   overlay: the page's statistics overlay (its text and frames per second) after PROBE_MEASURE_MS.
//   waitingHidden: whether "waiting for the first frame" went away.
//   errors: the page's and the frame's console errors and Content-Security-Policy violations.
//
// Driven by tests/real_node.rs; configured by environment variables (the cookie is not put on a command line):
// PROBE_DASHBOARD_PAGE (the session's dashboard page), PROBE_COOKIE (the signed-in session cookie, name=value),
// PROBE_COLOUR, PROBE_KEY, PROBE_KEY_COLOUR, PROBE_GAMEPAD_COLOUR (#rrggbb; optional), PROBE_USER_DATA_DIR (a fresh
// directory), PROBE_OUT_DIR (screenshots), PROBE_MEASURE_MS (default 3000), PROBE_OPEN (1: click Open first),
// CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { join } from 'node:path';
import { emulatedGamepad } from './emulated_gamepad.mjs';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
};
const pageUrl = env('PROBE_DASHBOARD_PAGE');
const cookie = env('PROBE_COOKIE');
const colour = env('PROBE_COLOUR', '#ff00aa');
const key = env('PROBE_KEY', '2');
const keyColour = env('PROBE_KEY_COLOUR', '#00c0ff');
const gamepadColour = process.env.PROBE_GAMEPAD_COLOUR || null;
const userDataDir = env('PROBE_USER_DATA_DIR');
const outDir = env('PROBE_OUT_DIR');
const measureMs = Number(env('PROBE_MEASURE_MS', '3000'));
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
const open = process.env.PROBE_OPEN === '1';

const rgb = (hex) => {
  const parts = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!parts) throw new Error(`a colour must be #rrggbb, not ${hex}`);
  return parts.slice(1).map((part) => parseInt(part, 16));
};
// H.264 with 4:2:0 chroma shifts colours a little, and most at the sweeping bar's edges.
const TOLERANCE = 40;
// A busy 2-core machine starting a pod's stream can take a while, and a stopped session starts its pod first.
const FIRST_FRAME_TIMEOUT_MS = open ? 180000 : 60000;
const KEY_TIMEOUT_MS = 10000;
const VIEWPORT = { width: 1600, height: 1200 };

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: VIEWPORT,
  args: ['--autoplay-policy=no-user-gesture-required', '--no-first-run'],
});
const errors = [];
const report = { errors };
try {
  const url = new URL(pageUrl);
  const [name, ...value] = cookie.split('=');
  await context.addCookies([{ name, value: value.join('='), domain: url.hostname, path: '/', httpOnly: true }]);
  if (gamepadColour) {
    // In every frame (Selkies' page is the stream's frame): one standard pad that the probe connects and presses.
    await context.addInitScript(emulatedGamepad);
  }
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.location().url}: ${message.text()}`.slice(0, 300));
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`.slice(0, 300)));
  const started = Date.now();
  await page.goto(pageUrl, { waitUntil: 'domcontentloaded' });
  if (open) {
    await Promise.all([page.waitForURL((url) => url.hash === '#stream'), page.locator('#open').click()]);
    report.opened = true;
    report.openedPath = new URL(page.url()).pathname;
  }
  const frameElement = page.locator('#stream');
  await frameElement.waitFor({ state: 'attached', timeout: 10000 });
  // The frame is loaded once the session is ready (at once for a running one).
  const deadline = Date.now() + FIRST_FRAME_TIMEOUT_MS;
  while (!(await frameElement.getAttribute('src'))) {
    if (Date.now() > deadline) throw new Error('the stream frame was never loaded: the session did not get ready');
    await page.waitForTimeout(100);
  }
  report.frameSrc = await frameElement.getAttribute('src');
  report.framePath = new URL(report.frameSrc, pageUrl).pathname;

  // The share of the frame in `target`, from a screenshot of it: what the user sees, whichever way Selkies draws.
  const share = async (target) => {
    const box = await frameElement.boundingBox();
    if (!box || box.width < 10 || box.height < 10) return 0;
    const png = await page.screenshot({ clip: box });
    return page.evaluate(
      async ([data, target, tolerance]) => {
        const image = await createImageBitmap(new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))]));
        const canvas = new OffscreenCanvas(160, 90);
        const ctx = canvas.getContext('2d');
        ctx.drawImage(image, 0, 0, 160, 90);
        const pixels = ctx.getImageData(0, 0, 160, 90).data;
        let matching = 0;
        for (let i = 0; i < pixels.length; i += 4) {
          const near = [0, 1, 2].every((c) => Math.abs(pixels[i + c] - target[c]) <= tolerance);
          if (near) matching += 1;
        }
        return matching / (pixels.length / 4);
      },
      [png.toString('base64'), target, TOLERANCE],
    );
  };
  const until = async (target, minimum, timeoutMs) => {
    const end = Date.now() + timeoutMs;
    let last = 0;
    while (Date.now() < end) {
      last = await share(target);
      if (last >= minimum) return { share: last, at: Date.now() };
      await page.waitForTimeout(100);
    }
    return { share: last, at: null };
  };

  const first = await until(rgb(colour), 0.95, Math.max(1000, deadline - Date.now()));
  report.colourShare = first.share;
  report.timeToFirstFrameMs = first.at === null ? null : first.at - started;
  await page.screenshot({ path: join(outDir, 'stream-first-frame.png') });

  // A key press through the dashboard's page: focus the stream (a click on it), then the key.
  await frameElement.click();
  const pressed = Date.now();
  await page.keyboard.press(key);
  const afterKey = await until(rgb(keyColour), 0.95, KEY_TIMEOUT_MS);
  report.keyColourShare = afterKey.share;
  report.keyToColourMs = afterKey.at === null ? null : afterKey.at - pressed;
  await page.screenshot({ path: join(outDir, 'stream-after-key.png') });

  if (gamepadColour) {
    const frame = await (await frameElement.elementHandle()).contentFrame();
    await frame.evaluate(() => window.__probePad.connect());
    // The client polls the pad; a press held until the colour shows cannot be missed between two polls.
    await page.waitForTimeout(500);
    const padPressed = Date.now();
    await frame.evaluate(() => window.__probePad.button(0, true));
    const afterPad = await until(rgb(gamepadColour), 0.95, KEY_TIMEOUT_MS);
    await frame.evaluate(() => window.__probePad.button(0, false));
    report.gamepadColourShare = afterPad.share;
    report.gamepadToColourMs = afterPad.at === null ? null : afterPad.at - padPressed;
    await page.screenshot({ path: join(outDir, 'stream-after-gamepad.png') });
  }

  await page.waitForTimeout(measureMs);
  report.overlay = await page.evaluate(() => {
    const stats = document.getElementById('stream-stats');
    return { text: stats.textContent, fps: Number(stats.dataset.fps) };
  });
  report.waitingHidden = await page.locator('#stream-waiting').isHidden();
  report.fullscreenButton = await page.locator('#stream-fullscreen').isVisible();
  report.soundButton = await page.locator('#stream-sound').textContent();
} catch (error) {
  report.failure = String(error && error.stack ? error.stack : error);
} finally {
  await context.close();
}
console.log(JSON.stringify(report));
