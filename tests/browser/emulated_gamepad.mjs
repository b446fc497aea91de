// One standard gamepad the probes plug into a page, as the Gamepad API shows a real one: an init script (run in every
// frame before the page's own scripts) that answers `navigator.getGamepads()` and leaves `window.__probePad` to
// connect the pad (a `gamepadconnected` event) and to press or release its buttons. Chromium has no gamepad of its
// own to emulate headless.

/** The init script; pass it to `context.addInitScript`. Self-contained: it runs in the page, not here. */
export function emulatedGamepad() {
  const pad = {
    id: 'Probe pad (STANDARD GAMEPAD Vendor: 045e Product: 028e)',
    index: 0,
    connected: true,
    mapping: 'standard',
    timestamp: performance.now(),
    axes: [0, 0, 0, 0],
    buttons: Array.from({ length: 17 }, () => ({ pressed: false, touched: false, value: 0 })),
    vibrationActuator: null,
    hapticActuators: [],
  };
  let connected = false;
  Object.defineProperty(Navigator.prototype, 'getGamepads', {
    configurable: true,
    value: () => (connected ? [pad, null, null, null] : [null, null, null, null]),
  });
  window.__probePad = {
    connect: () => {
      connected = true;
      const event = new Event('gamepadconnected');
      Object.defineProperty(event, 'gamepad', { value: pad });
      window.dispatchEvent(event);
    },
    button: (index, down) => {
      pad.buttons[index] = { pressed: down, touched: down, value: down ? 1 : 0 };
      pad.timestamp = performance.now();
    },
  };
}
