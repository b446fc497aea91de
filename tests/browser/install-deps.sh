#!/usr/bin/env bash
# Installs what the streaming-session scripts (images/streaming-session/) and their end-to-end test
# (tests/streaming_session_e2e.rs) need on a Debian (bookworm) host: the X/VNC/noVNC stack, PulseAudio, TigerVNC's
# viewer, Chromium, Tk for the test application, gcc for Selkies' joystick interposer (the test compiles it), Node.js
# when missing, then Selkies in /opt/selkies (as the image has it: images/streaming-session/requirements.txt, pinned by
# hash) and this directory's npm packages (playwright-core; no browser download). Idempotent and quick when everything
# is there: apt runs only when a package is missing, pip only when requirements.txt changed, npm only when
# package-lock.json changed. Run as root (CI does).
set -euo pipefail
cd "$(dirname "$0")"

packages=(
  xvfb              # the virtual display
  x11-utils         # xdpyinfo, xprop, xwininfo: is the display up, is the app's window viewable?
  openbox           # the window manager
  x11vnc            # VNC server of the display
  novnc             # the browser client (/usr/share/novnc)
  websockify        # serves noVNC and bridges its WebSocket to x11vnc
  chromium          # the browser of the test (/usr/bin/chromium)
  fonts-dejavu-core # text in noVNC's page
  fonts-nanum       # Korean glyphs: the Korean pages' screenshots show words, not boxes
  python3-tk        # the test's X application (tests/browser/colour_app.py)
  pulseaudio        # the session's sound server
  pulseaudio-utils  # pacat: the test application's tone
  python3-venv      # Selkies' venv
  xdotool           # some of Selkies' key injection
  tigervnc-viewer   # the native client of the test (xtigervncviewer)
  iproute2          # ss: the bytes the browser received, for the bitrate
  gcc               # compiles Selkies' joystick interposer (images/streaming-session/js-interposer/) for the test
  libc6-dev         # its headers
)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then packages+=(nodejs npm); fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f '${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
    echo "browser/install-deps: missing Debian packages ${missing[*]}; install them (as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
fi

# Build the font caches now (quick when they are current), not during the first Tk or Chromium start of a test.
fc-cache >/dev/null 2>&1 || true

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
  echo "install-deps: playwright-core needs Node.js 20 or later; this host has $(node --version)" >&2
  exit 1
fi

# Selkies, as images/streaming-session/Dockerfile installs it.
requirements=../../images/streaming-session/requirements.txt
selkies_stamp=/opt/selkies/.requirements.sha256
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -x /opt/selkies/bin/selkies || "$(cat "$selkies_stamp" 2>/dev/null)" != "$wanted" ]]; then
  if ((EUID != 0)); then
    echo "browser/install-deps: Selkies is missing in /opt/selkies; run this script as root to install it" >&2
    exit 1
  fi
  echo "install-deps: Selkies into /opt/selkies"
  rm -rf /opt/selkies
  /usr/bin/python3 -m venv /opt/selkies
  /opt/selkies/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: \
    -r "$requirements"
  echo "$wanted" >"$selkies_stamp"
fi

stamp=node_modules/.package-lock.sha256
wanted="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f node_modules/playwright-core/package.json || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "install-deps: npm ci in tests/browser"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted" >"$stamp"
fi
