// The terminal page's own script: it opens xterm.js in #terminal, connects it to the page's WebSocket (keys typed and
// the terminal's size one way, as JSON; the shell's output the other, as bytes), fits the terminal to its box when the
// window changes, says in #terminal-status when and why the terminal closed, and keeps the last MiB the terminal showed
// for #terminal-log to download (a Blob made here: the log never leaves the browser).
(() => {
  'use strict';
  const LOG_LIMIT = 1024 * 1024;

  // xterm.js's DOM renderer writes its rules (the theme's colours, the rows' layout, the scrollbar's) into <style>
  // elements, which the dashboard's policy refuses (`default-src 'self'`: no inline style). It is given, for each, an
  // inert element whose text goes into a constructed stylesheet instead: CSSOM, which the policy allows (as it allows
  // `element.style`), and which only the page's own scripts can reach.
  const create = document.createElement.bind(document);
  document.createElement = (tag, options) => {
    if (String(tag).toLowerCase() !== 'style') return create(tag, options);
    const holder = create('template');
    const sheet = new CSSStyleSheet();
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    let rules = '';
    const text = {
      get: () => rules,
      set: (value) => {
        rules = String(value);
        sheet.replaceSync(rules);
      },
    };
    Object.defineProperty(holder, 'textContent', text);
    Object.defineProperty(holder, 'innerText', text);
    const remove = holder.remove.bind(holder);
    holder.remove = () => {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((kept) => kept !== sheet);
      remove();
    };
    return holder;
  };

  const start = () => {
    const box = document.getElementById('terminal');
    if (!box) return;
    const status = document.getElementById('terminal-status');
    const say = (words) => {
      status.textContent = words;
    };
    const term = new window.Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000 });
    const fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();

    const log = [];
    let logged = 0;
    const keep = (bytes) => {
      log.push(bytes);
      logged += bytes.length;
      while (logged > LOG_LIMIT && log.length > 1) logged -= log.shift().length;
    };

    const url = new URL(box.dataset.socket, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    const send = (message) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    const sized = () => {
      box.dataset.size = `${term.rows} ${term.cols}`;
      send({ resize: { cols: term.cols, rows: term.rows } });
    };
    socket.addEventListener('open', () => {
      box.dataset.state = 'open';
      say(box.dataset.connected);
      sized();
      term.focus();
    });
    socket.addEventListener('message', (event) => {
      const bytes = new Uint8Array(event.data);
      keep(bytes);
      term.write(bytes);
    });
    socket.addEventListener('close', (event) => {
      box.dataset.state = 'closed';
      box.dataset.closeCode = String(event.code);
      say(box.getAttribute(`data-closed-${event.code}`) ?? box.dataset.closed);
      term.options.disableStdin = true;
      term.options.cursorBlink = false;
    });
    term.onData((keys) => send({ input: keys }));
    term.onResize(sized);
    new ResizeObserver(() => fit.fit()).observe(box);

    document.getElementById('terminal-log').addEventListener('click', () => {
      const link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob(log, { type: 'application/octet-stream' }));
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      link.download = `${document.getElementById('terminal-log').dataset.file}-${stamp}.log`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    });
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
