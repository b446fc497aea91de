// Opens a streaming session's Selkies page in headless Chromium, as a tenant's browser would, uses it like a player
// (keyboard, gamepad) and reports on stdout, as one JSON object, what the browser received:
//
//   refused: the page opened without a token and with a wrong one: the status of a WebSocket handshake with the same
//            token, whether any frame showed the app's colour, the share of the page in the app's colour (screenshot).
//   right:   the page opened with the right token (?token=): the time from navigation start to the first frame
//            showing the app's colour; over PROBE_MEASURE_MS the frames per second (frames the page presented that
//            differ from the previous one) and the bitrate (bytes received on the connections to the stream's port); the share of the
//            stream's element in the app's colour (screenshot); the loudest frequency of the sound the page plays
//            (an AnalyserNode on every node connected to an AudioContext's destination); a key press's effect ("2"
//            turns the app PROBE_KEY_COLOUR) and its input-to-photon latency, PROBE_LATENCY_SAMPLES times (keys "2"
//            and "1" alternately, from the keydown event to the first presented frame in the new colour, p50/p95); an
//            emulated gamepad's button 0 (navigator.getGamepads overridden, gamepadconnected dispatched) turning the
//            app PROBE_GAMEPAD_COLOUR.
//
// The same measurements of a noVNC page, for the benchmark that compares the two (PROBE_ENGINE=novnc: the password
// goes in noVNC's URL, no refusal, sound or gamepad checks).
//
// Driven by tests/streaming_session_e2e.rs and benches/session.rs; configured by environment variables (the token is
// not put on a command line): PROBE_BASE_URL (http://127.0.0.1:PORT), PROBE_TOKEN, PROBE_WRONG_TOKEN, PROBE_COLOUR,
// PROBE_KEY_COLOUR, PROBE_GAMEPAD_COLOUR (#rrggbb), PROBE_USER_DATA_DIR (a fresh directory), PROBE_OUT_DIR
// (screenshots), PROBE_MEASURE_MS (default 5000; the bitrate is measured after it, over at most 3 s), PROBE_LATENCY_SAMPLES (default 5), PROBE_ENGINE (selkies, the
// default, or novnc), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { emulatedGamepad } from './emulated_gamepad.mjs';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
};
const engine = env('PROBE_ENGINE', 'selkies');
if (engine !== 'selkies' && engine !== 'novnc') throw new Error(`PROBE_ENGINE must be selkies or novnc, not ${engine}`);
const baseUrl = env('PROBE_BASE_URL');
const token = env('PROBE_TOKEN');
const wrongToken = engine === 'selkies' ? env('PROBE_WRONG_TOKEN') : '';
const userDataDir = env('PROBE_USER_DATA_DIR');
const outDir = env('PROBE_OUT_DIR');
const measureMs = Number(env('PROBE_MEASURE_MS', '5000'));
const latencySamples = Number(env('PROBE_LATENCY_SAMPLES', '5'));
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
const rgb = (name, fallback) => {
  const value = env(name, fallback);
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(value);
  if (!match) throw new Error(`${name} must be #rrggbb, not ${value}`);
  return match.slice(1).map((hex) => parseInt(hex, 16));
};
const colours = {
  app: rgb('PROBE_COLOUR', '#ff00aa'),
  key: rgb('PROBE_KEY_COLOUR', '#00c0ff'),
  gamepad: rgb('PROBE_GAMEPAD_COLOUR', '#20e020'),
};
// Video and JPEG coding shift colours a little.
const TOLERANCE = 40;
const FIRST_FRAME_TIMEOUT_MS = 30000; // generous: a busy 2-core CI machine can take seconds
const CHANGE_TIMEOUT_MS = 5000;
const VIEWPORT = { width: 1280, height: 720 };

// Runs in every page before the client's scripts. Whatever element the client shows the stream in (Selkies: a
// <video> fed by a MediaStreamTrackGenerator, or a canvas; noVNC: a canvas) is sampled (160x90) at each frame it
// presents: each video frame (requestVideoFrameCallback) and each drawImage onto a visible canvas. A sample records
// which of the watched colours covers at least half of it and whether it differs from the previous one. Every audio
// node connected to a destination also feeds an analyser; the gamepad API is replaced by one pad the probe drives.
function instrument([colours, tolerance]) {
  const probe = {
    firstAppFrameMs: null,
    frames: 0,
    distinctFrames: 0,
    lastHash: 0,
    windowStart: null,
    analysers: [],
    seen: {}, // colour name -> time of the first frame in that colour since arm()
    current: null, // colour name of the last frame, if one covers half of it
    lastFrameMs: null,
  };
  window.__probe = probe;
  const originalDrawImage = CanvasRenderingContext2D.prototype.drawImage;
  let sampler = null;
  const shares = (pixels) => {
    const counts = Object.fromEntries(Object.keys(colours).map((name) => [name, 0]));
    for (let i = 0; i < pixels.length; i += 4) {
      for (const [name, c] of Object.entries(colours)) {
        if (
          Math.abs(pixels[i] - c[0]) <= tolerance &&
          Math.abs(pixels[i + 1] - c[1]) <= tolerance &&
          Math.abs(pixels[i + 2] - c[2]) <= tolerance
        ) {
          counts[name] += 1;
        }
      }
    }
    const total = pixels.length / 4;
    return Object.fromEntries(Object.entries(counts).map(([name, n]) => [name, n / total]));
  };
  probe.shares = shares;
  const sample = (source) => {
    if (!sampler) {
      sampler = document.createElement('canvas');
      sampler.width = 160;
      sampler.height = 90;
    }
    const ctx = sampler.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = false;
    originalDrawImage.call(ctx, source, 0, 0, sampler.width, sampler.height);
    const pixels = ctx.getImageData(0, 0, sampler.width, sampler.height).data;
    const now = performance.now();
    probe.frames += 1;
    probe.lastFrameMs = now;
    let hash = 2166136261;
    for (let i = 0; i < pixels.length; i += 1) hash = Math.imul(hash ^ pixels[i], 16777619);
    if (hash !== probe.lastHash) probe.distinctFrames += 1;
    probe.lastHash = hash;
    const share = shares(pixels);
    probe.current = Object.keys(share).find((name) => share[name] >= 0.5) ?? null;
    if (probe.current === 'app' && probe.firstAppFrameMs === null) probe.firstAppFrameMs = now;
    if (probe.current && probe.seen[probe.current] === null) probe.seen[probe.current] = now;
  };
  probe.arm = (name) => {
    probe.seen[name] = null;
  };
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    const result = originalDrawImage.apply(this, args);
    const canvas = this.canvas;
    if (canvas !== sampler && canvas.isConnected && canvas.width > 16 && canvas.getClientRects().length > 0) {
      sample(canvas);
    }
    return result;
  };
  const watched = new WeakSet();
  const watchVideos = () => {
    for (const video of document.querySelectorAll('video')) {
      if (watched.has(video) || !video.requestVideoFrameCallback) continue;
      watched.add(video);
      const onFrame = () => {
        if (video.videoWidth > 0 && video.getClientRects().length > 0) sample(video);
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
    setTimeout(watchVideos, 200);
  };
  watchVideos();

  const originalConnect = AudioNode.prototype.connect;
  AudioNode.prototype.connect = function (destination, ...rest) {
    const result = originalConnect.call(this, destination, ...rest);
    if (destination instanceof AudioDestinationNode) {
      const analyser = this.context.createAnalyser();
      analyser.fftSize = 8192;
      originalConnect.call(this, analyser);
      probe.analysers.push(analyser);
    }
    return result;
  };
  // The loudest frequency any analyser hears now: [Hz, dB], or null without sound.
  probe.peak = () => {
    let best = null;
    for (const analyser of probe.analysers) {
      const bins = new Float32Array(analyser.frequencyBinCount);
      analyser.getFloatFrequencyData(bins);
      for (let i = 1; i < bins.length; i += 1) {
        if (Number.isFinite(bins[i]) && (best === null || bins[i] > best[1])) {
          best = [(i * analyser.context.sampleRate) / analyser.fftSize, bins[i]];
        }
      }
    }
    return best;
  };

  probe.keydownTimes = [];
  window.addEventListener('keydown', (event) => probe.keydownTimes.push(event.timeStamp), true);
  probe.startWindow = () => {
    probe.frames = 0;
    probe.distinctFrames = 0;
    probe.windowStart = performance.now();
  };
  probe.readWindow = () => ({
    seconds: (performance.now() - probe.windowStart) / 1000,
    frames: probe.frames,
    distinctFrames: probe.distinctFrames,
  });
  // The share of a screenshot (PNG, base64) in each watched colour, decoded by the browser itself.
  probe.screenshotShares = async (base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = offscreen.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    return { ...shares(ctx.getImageData(0, 0, bitmap.width, bitmap.height).data), size: [bitmap.width, bitmap.height] };
  };
}

// How the server answers a WebSocket handshake on Selkies' socket path with `secret` as ?token= (none when null):
// { status, closeCode }: the HTTP status (101 when it upgrades), and the code of the close frame it sends within 3 s
// of upgrading (Selkies checks the token once the socket is open), null when it keeps the socket open. Selkies'
// client reads its socket in a worker, out of the page's sight, hence this look of the probe's own.
function handshakeStatus(secret) {
  const url = new URL(`${baseUrl}/api/websockets`);
  if (secret !== null) url.searchParams.set('token', secret);
  return new Promise((resolve, reject) => {
    const request = http.get(url, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
      timeout: 10000,
    });
    request.on('upgrade', (response, socket, head) => {
      let data = head;
      const finish = () => {
        clearTimeout(timer);
        socket.destroy();
        // The server's first frame, unmasked: opcode 8 is a close frame, its payload starts with the code.
        const close = data.length >= 4 && (data[0] & 0x0f) === 8 && (data[1] & 0x7f) >= 2;
        resolve({ status: response.statusCode, closeCode: close ? data.readUInt16BE(2) : null });
      };
      const timer = setTimeout(finish, 3000);
      socket.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
        if (data.length >= 4) finish();
      });
      socket.on('error', finish);
      socket.on('close', finish);
    });
    request.on('response', (response) => {
      response.resume();
      resolve({ status: response.statusCode, closeCode: null });
    });
    request.on('timeout', () => request.destroy(new Error('no answer to the WebSocket handshake in 10 s')));
    request.on('error', reject);
  });
}

// The bytes each of this host's TCP connections to the stream's port has received so far (the kernel's tcp_info, by
// `ss`), by connection: what the browser received over its WebSocket, framing included, whichever thread reads it.
// Only for a server on this host (PROBE_BASE_URL on the loopback interface).
function bytesReceived() {
  const port = new URL(baseUrl).port || '80';
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
  const connections = new Map();
  let current = null;
  for (const line of out.split('\n')) {
    const ends = /^\s*\d+\s+\d+\s+(\S+)\s+(\S+)/.exec(line);
    if (ends) current = `${ends[1]} ${ends[2]}`;
    const bytes = /bytes_received:(\d+)/.exec(line);
    if (bytes && current) connections.set(current, Number(bytes[1]));
  }
  return connections;
}

// The bytes received between two `bytesReceived` snapshots, over the connections open at the second: a connection
// that closed in between (the page's own HTTP requests) does not count, one opened in between counts whole.
const bytesBetween = (before, after) =>
  [...after].reduce((sum, [connection, bytes]) => sum + bytes - (before.get(connection) ?? 0), 0);

const screenshotShares = (page, png) =>
  page.evaluate((base64) => window.__probe.screenshotShares(base64), png.toString('base64'));

const pageUrl = (secret) =>
  engine === 'novnc'
    ? `${baseUrl}/vnc.html?autoconnect=1&resize=scale&password=${encodeURIComponent(secret)}`
    : `${baseUrl}/${secret === null ? '' : `?token=${encodeURIComponent(secret)}`}`;

// The element the stream is shown in: the visible <video> or canvas of the client.
async function streamBox(page) {
  const box = await page.evaluate(() => {
    const candidates = [...document.querySelectorAll('video, canvas')].filter((e) => {
      const r = e.getBoundingClientRect();
      return r.width > 100 && r.height > 100 && getComputedStyle(e).display !== 'none';
    });
    const r = candidates[0]?.getBoundingClientRect();
    return r ? { x: r.x, y: r.y, width: r.width, height: r.height, element: candidates[0].tagName } : null;
  });
  if (!box) throw new Error('the page shows no video or canvas element');
  return box;
}

async function probeRefused(context, secret, label) {
  const handshake = await handshakeStatus(secret);
  const page = await context.newPage();
  await page.goto(pageUrl(secret), { waitUntil: 'domcontentloaded' });
  // The client's WebSocket is refused at once: any frame that slipped through would be shown within seconds.
  await page.waitForTimeout(4000);
  const screenshot = join(outDir, `refused-${label}.png`);
  const png = await page.screenshot({ path: screenshot });
  const shares = await screenshotShares(page, png);
  const seen = await page.evaluate(() => ({ firstAppFrameMs: window.__probe.firstAppFrameMs, frames: window.__probe.frames }));
  await page.close();
  return { handshake, appFrameSeen: seen.firstAppFrameMs !== null, frames: seen.frames, pageColourShare: shares.app, screenshot };
}

// Waits until a presented frame shows colour `name` (armed before the input that causes it); its time, or null.
async function waitForColour(page, name, timeoutMs = CHANGE_TIMEOUT_MS) {
  try {
    const handle = await page.waitForFunction((n) => window.__probe.seen[n], name, { timeout: timeoutMs, polling: 20 });
    return await handle.jsonValue();
  } catch {
    return null;
  }
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function probeRight(context) {
  const errors = [];
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(pageUrl(token), { waitUntil: 'domcontentloaded' });
  try {
    await page.waitForFunction(() => window.__probe.firstAppFrameMs !== null, null, {
      timeout: FIRST_FRAME_TIMEOUT_MS,
      polling: 50,
    });
  } catch (error) {
    await page.screenshot({ path: join(outDir, 'right-no-frame.png') });
    throw new Error(`no frame showed the app's colour: ${error.message}`);
  }
  const timings = await page.evaluate(() => ({
    domContentLoadedMs: performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd ?? null,
    firstAppFrameMs: window.__probe.firstAppFrameMs,
  }));

  const bytesBefore = bytesReceived();
  await page.evaluate(() => window.__probe.startWindow());
  await page.waitForTimeout(measureMs);
  const window_ = await page.evaluate(() => window.__probe.readWindow());
  const bitrateKbps = (bytesBetween(bytesBefore, bytesReceived()) * 8) / 1000 / window_.seconds;
  const box = await streamBox(page);
  const screenshot = join(outDir, 'right.png');
  const png = await page.screenshot({ path: screenshot, clip: box });
  const shares = await screenshotShares(page, png);

  let audio = null;
  if (engine === 'selkies') {
    // The tone plays continuously: the analyser's peak settles on it within a few hundred ms of sound.
    const deadline = Date.now() + 10000;
    let peak = null;
    while (Date.now() < deadline) {
      peak = await page.evaluate(() => window.__probe.peak());
      if (peak && peak[1] > -70 && Math.abs(peak[0] - 440) < 12) break;
      await page.waitForTimeout(100);
    }
    const analysers = await page.evaluate(() => window.__probe.analysers.length);
    audio = { analysers, peakHz: peak?.[0] ?? null, peakDb: peak?.[1] ?? null };
  }

  // Keyboard: noVNC takes keys once its canvas has the focus (a click); Selkies listens on the window.
  if (engine === 'novnc') await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  const latencies = [];
  const failures = [];
  for (let i = 0; i < latencySamples; i += 1) {
    const [key, name] = i % 2 === 0 ? ['2', 'key'] : ['1', 'app'];
    await page.evaluate((n) => {
      window.__probe.arm(n);
      window.__probe.keydownTimes = [];
    }, name);
    await page.keyboard.press(key);
    const seenAt = await waitForColour(page, name);
    const pressedAt = await page.evaluate(() => window.__probe.keydownTimes[0] ?? null);
    if (seenAt === null || pressedAt === null) {
      failures.push({ key, expected: name, keydownSeen: pressedAt !== null });
      continue;
    }
    latencies.push(seenAt - pressedAt);
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const keys = {
    samples: latencies.length,
    failures,
    latencyMs: latencies,
    p50Ms: sorted.length ? percentile(sorted, 50) : null,
    p95Ms: sorted.length ? percentile(sorted, 95) : null,
  };

  let gamepad = null;
  if (engine === 'selkies') {
    // The app is back in its own colour (an even number of key presses ends on "1"; press it to be sure).
    await page.evaluate(() => window.__probe.arm('app'));
    await page.keyboard.press('1');
    await waitForColour(page, 'app');
    await page.evaluate(() => {
      window.__probePad.connect();
      window.__probe.arm('gamepad');
    });
    // The client polls the pad; a press held for a while cannot be missed between two polls.
    await page.waitForTimeout(500);
    const pressedAt = await page.evaluate(() => {
      window.__probePad.button(0, true);
      return performance.now();
    });
    const seenAt = await waitForColour(page, 'gamepad');
    await page.evaluate(() => window.__probePad.button(0, false));
    gamepad = { colourChanged: seenAt !== null, latencyMs: seenAt === null ? null : seenAt - pressedAt };
    if (seenAt === null) await page.screenshot({ path: join(outDir, 'gamepad-no-change.png') });
    // Leave the app in its own colour for whoever looks next.
    await page.evaluate(() => window.__probe.arm('app'));
    await page.keyboard.press('1');
    await waitForColour(page, 'app');
  }

  await page.close();
  return {
    handshake: engine === 'selkies' ? await handshakeStatus(token) : null,
    timeToFirstFrameMs: timings.firstAppFrameMs,
    timeToDomContentLoadedMs: timings.domContentLoadedMs,
    framesPerSecond: window_.distinctFrames / window_.seconds,
    presentedFramesPerSecond: window_.frames / window_.seconds,
    bitrateKbps,
    measuredSeconds: window_.seconds,
    streamElement: box.element,
    colourShare: shares.app,
    screenshotSize: shares.size,
    screenshot,
    audio,
    keys,
    gamepad,
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
    '--autoplay-policy=no-user-gesture-required',
  ],
});
let exitCode = 0;
try {
  await context.addInitScript(emulatedGamepad);
  await context.addInitScript(instrument, [colours, TOLERANCE]);
  const refused =
    engine === 'selkies'
      ? { missing: await probeRefused(context, null, 'missing'), wrong: await probeRefused(context, wrongToken, 'wrong') }
      : null;
  const right = await probeRight(context);
  const browserVersion = context.browser()?.version() ?? null;
  process.stdout.write(`${JSON.stringify({ engine, browserVersion, refused, right })}\n`);
} catch (error) {
  process.stderr.write(`selkies_probe: ${error.stack ?? error}\n`);
  exitCode = 1;
} finally {
  await context.close();
}
process.exit(exitCode);
