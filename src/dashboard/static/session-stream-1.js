// The session page's embedded Selkies stream (src/dashboard/templates/session.html): loads the frame once the session
// is ready (the page's live part marks it, re-read whenever the session's pods change, e.g. after Open woke it), says
// "waiting for the first frame" until the stream shows one, and drives the bar above it: full screen, sound on/off,
// "gamepad detected", and an overlay of latency, frames per second and bitrate. The numbers are Selkies' own
// (`window.stream_stats.latest` in its page, kept while its statistics are open); the frame is on the dashboard's own
// origin when the dashboard carries the stream, so the page reads them and sends Selkies' page its messages
// (`statsOpen`, `setMute`). A frame from the session's Ingress is another origin: the bar then offers full screen only.
(() => {
  'use strict';
  const section = document.getElementById('stream-section');
  const frame = document.getElementById('stream');
  if (!section || !frame) return;
  const live = document.getElementById('session-live');
  const waiting = document.getElementById('stream-waiting');
  const stats = document.getElementById('stream-stats');
  const sound = document.getElementById('stream-sound');
  const gamepad = document.getElementById('stream-gamepad');
  const [latencyLabel, fpsLabel, bitrateLabel] = JSON.parse(stats.dataset.labels);

  // The frame's window when it is on this origin, else null.
  const own = () => {
    try {
      return frame.contentWindow && frame.contentWindow.document ? frame.contentWindow : null;
    } catch {
      return null;
    }
  };
  const tell = (message) => {
    const inner = own();
    if (inner) inner.postMessage(message, window.location.origin);
  };

  // Load the stream once the session is ready; the live part is swapped in place whenever its state changes.
  const load = () => {
    const ready = live && live.querySelector('[data-ready]');
    if (ready && !frame.getAttribute('src')) {
      frame.setAttribute('src', frame.dataset.src);
      section.dataset.state = 'loading';
    }
  };
  load();
  if (live) new MutationObserver(load).observe(live, { childList: true, subtree: true });

  document.getElementById('stream-fullscreen').addEventListener('click', () => {
    frame.requestFullscreen().catch(() => {});
    frame.focus();
  });

  let muted = false;
  sound.addEventListener('click', () => {
    muted = !muted;
    tell({ type: 'setMute', value: muted });
    sound.textContent = muted ? sound.dataset.on : sound.dataset.off;
    sound.setAttribute('aria-pressed', String(muted));
  });

  const gamepads = new Set();
  const showGamepads = () => {
    gamepad.hidden = gamepads.size === 0;
    gamepad.dataset.count = String(gamepads.size);
  };
  window.addEventListener('gamepadconnected', (event) => {
    gamepads.add(event.gamepad.index);
    showGamepads();
  });
  window.addEventListener('gamepaddisconnected', (event) => {
    gamepads.delete(event.gamepad.index);
    showGamepads();
  });

  // Once a second: Selkies' latest numbers, shown in the overlay; the first shown frame ends the waiting.
  let statsOpened = false;
  const number = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
  setInterval(() => {
    const inner = own();
    if (!inner || !frame.getAttribute('src')) return;
    if (!statsOpened && inner.stream_stats) {
      tell({ type: 'statsOpen', open: true });
      statsOpened = true;
    }
    const latest = (inner.stream_stats && inner.stream_stats.latest) || {};
    const fps = Number(latest.fps);
    stats.dataset.fps = Number.isFinite(fps) ? String(fps) : '0';
    stats.textContent =
      `${latencyLabel} ${number(Number(latest.rtt_ms), 0)} ms · ${number(fps, 0)} ${fpsLabel} · ` +
      `${number(Number(latest.mbps), 2)} ${bitrateLabel}`;
    if (fps > 0 && section.dataset.state !== 'playing') {
      section.dataset.state = 'playing';
      waiting.hidden = true;
    }
  }, 1000);

  // A frame from another origin cannot say when it shows a frame: it is taken as shown once it loaded.
  frame.addEventListener('load', () => {
    if (!own()) {
      section.dataset.state = 'playing';
      waiting.hidden = true;
      sound.hidden = true;
      stats.hidden = true;
    }
  });
})();
