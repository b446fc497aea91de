#!/usr/bin/env bash
# Runs one interactive streaming session: an application on a virtual X display, with its sound, streamed to the
# browser by Selkies (H.264 video and Opus audio over one WebSocket, keyboard, mouse, gamepads) or by noVNC, and to a
# native VNC client through x11vnc on the loopback interface. The session container's entrypoint; it runs outside a
# container too, as a normal user or as root.
#
#   Xvfb :DISPLAY_NUMBER  <-  openbox (every window undecorated and maximized), APP_COMMAND
#        ^                    PulseAudio (a null sink "output"; the app plays to it through PULSE_SERVER)
#        |
#        +-- Selkies on STREAM_PORT (STREAM_PROTOCOL=selkies: its page and /api/websockets, the app's gamepads through
#        |   the sockets in SELKIES_JS_SOCKET_PATH, which the app reads as /dev/input/js0 through the joystick
#        |   interposer it is run with; the sound from output.monitor)
#        +-- x11vnc on 127.0.0.1/::1 VNC_PORT (always; the native client's path, through kubectl port-forward)
#              ^-- websockify + noVNC on STREAM_PORT (STREAM_PROTOCOL=novnc)
#
# Configured only by environment variables:
#   APP_COMMAND        required; the command run on the display (bash syntax), e.g. the game's launcher. Let it `exec`
#                      the real program so that it receives SIGTERM. The session ends when it exits, with its status.
#                      It gets DISPLAY, PULSE_SERVER and SELKIES_JS_SOCKET_PATH; with STREAM_PROTOCOL=selkies also
#                      GAMEPAD_INTERPOSER prepended to its LD_PRELOAD, so that it finds the browser's gamepads at
#                      /dev/input/js0-js3 and event1000-event1003, and, without GAMEPAD_DEVICES,
#                      SDL_JOYSTICK_DEVICE=/dev/input/js0 (unless set). It starts once Selkies serves the gamepads.
#   VNC_PASSWORD_FILE  required; a file whose first line is the session's password. x11vnc uses its first 8
#                      characters (VNC authentication); Selkies takes the whole line as the token of its one controller
#                      (?token= on its WebSocket). Never printed.
#   STREAM_PROTOCOL    selkies (default) or novnc: what serves the browser on STREAM_PORT
#   STREAM_PORT        the one port to expose (default 6080): Selkies' page and WebSocket, or noVNC's
#   STREAM_LISTEN      address the stream server binds (default: all interfaces, as a pod needs; 127.0.0.1 on a
#                      workstation)
#   VIDEO_ENCODER      software (default: x264 on the CPU) or nvenc (the GPU's encoder; Selkies falls back to software
#                      where the driver's libraries are missing)
#   STREAM_FRAMERATE   frames per second Selkies captures and encodes at most (default 60)
#   STREAM_FRAME_ANCESTORS  origins (comma-separated, e.g. https://dashboard.example.com) whose pages may show
#                      Selkies' page in a frame, besides its own origin (default: none)
#   IDLE_STOP_MINUTES  stop the session after that many minutes without a viewer (no established TCP connection to
#                      STREAM_PORT or VNC_PORT); 0 (default) never. Then TERMINATION_LOG (default
#                      /dev/termination-log, when writable) says "idle-stop: no viewer for N minutes" and the script
#                      exits 0.
#   DISPLAY_NUMBER     X display number (default 1, i.e. DISPLAY=:1)
#   RESOLUTION         Xvfb screen, WIDTHxHEIGHTxDEPTH (default 1280x720x24); Selkies streams exactly that size
#   VNC_PORT           port x11vnc listens on, loopback only (default 5900)
#   NOVNC_WEB          noVNC's web root (default /usr/share/novnc; the page is vnc.html)
#   SELKIES            the Selkies command (default /opt/selkies/bin/selkies, else selkies on PATH)
#   GAMEPAD_INTERPOSER Selkies' joystick interposer, the LD_PRELOAD library that turns the app's opens of
#                      /dev/input/js0-js3 and event1000-event1003 into connections to Selkies' gamepad sockets (no
#                      /dev/uinput, no device files needed); default '/usr/$LIB/selkies_joystick_interposer.so' (the
#                      literal $LIB: the dynamic loader picks the 64-bit or the 32-bit build); empty: none
#   GAMEPAD_DEVICES    a writable directory, mounted at /dev/input, where the interposed devices are listed as empty
#                      files (js0-js3, event1000-event1003) for games that look for joysticks by listing /dev/input
#                      (SDL does) rather than opening a known path (the interposer answers their stat and open);
#                      default: none
#   WINDOW_MANAGER     window manager command (default openbox, configured by this script)
#   STATE_DIR          writable directory for the pid, log, socket and readiness files (default $HOME/.session)
#   STARTUP_TIMEOUT    seconds to wait for the display, the sound server and the stream servers (default 20)
#   STOP_TIMEOUT       seconds the processes get to stop after SIGTERM before SIGKILL (default 10)
#
# Readiness, as files in STATE_DIR: display.ready once Xvfb answers and the window manager runs; session.ready once
# the app has a viewable top-level window on the display AND the stream server accepts connections.
# SIGTERM or SIGINT stop every process (SIGTERM to each, the app first, Xvfb last) and the script exits 128+signal.
# If a component (Xvfb, the window manager, PulseAudio, Selkies, x11vnc, websockify) dies, the session stops and the
# script exits 1, naming it and showing the end of its log. Components log to STATE_DIR/<name>.log; the app logs to
# this script's stdout and stderr.
set -euo pipefail

DISPLAY_NUMBER="${DISPLAY_NUMBER:-1}"
RESOLUTION="${RESOLUTION:-1280x720x24}"
STREAM_PROTOCOL="${STREAM_PROTOCOL:-selkies}"
STREAM_PORT="${STREAM_PORT:-6080}"
STREAM_LISTEN="${STREAM_LISTEN:-}"
STREAM_FRAMERATE="${STREAM_FRAMERATE:-60}"
STREAM_FRAME_ANCESTORS="${STREAM_FRAME_ANCESTORS:-}"
VIDEO_ENCODER="${VIDEO_ENCODER:-software}"
IDLE_STOP_MINUTES="${IDLE_STOP_MINUTES:-0}"
TERMINATION_LOG="${TERMINATION_LOG:-/dev/termination-log}"
VNC_PORT="${VNC_PORT:-5900}"
NOVNC_WEB="${NOVNC_WEB:-/usr/share/novnc}"
SELKIES="${SELKIES:-}"
GAMEPAD_INTERPOSER="${GAMEPAD_INTERPOSER-/usr/\$LIB/selkies_joystick_interposer.so}"
GAMEPAD_DEVICES="${GAMEPAD_DEVICES:-}"
WINDOW_MANAGER="${WINDOW_MANAGER:-openbox}"
APP_COMMAND="${APP_COMMAND:-}"
VNC_PASSWORD_FILE="${VNC_PASSWORD_FILE:-}"
STATE_DIR="${STATE_DIR:-${HOME:?set HOME or STATE_DIR}/.session}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-20}"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"
# How often the idle watch looks for viewers, in seconds.
IDLE_CHECK_SECONDS=5

log() { printf 'streaming-session: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_port() { is_uint "$1" && ((10#$1 >= 1 && 10#$1 <= 65535)); }

[[ -n "$APP_COMMAND" ]] || die "APP_COMMAND is required (the command to run on the display)"
[[ -n "$VNC_PASSWORD_FILE" ]] || die "VNC_PASSWORD_FILE is required (a file holding the session's password)"
[[ -r "$VNC_PASSWORD_FILE" ]] || die "VNC_PASSWORD_FILE=$VNC_PASSWORD_FILE is not a readable file"
[[ "$STREAM_PROTOCOL" == selkies || "$STREAM_PROTOCOL" == novnc ]] ||
  die "STREAM_PROTOCOL must be selkies or novnc, not '$STREAM_PROTOCOL'"
[[ "$VIDEO_ENCODER" == software || "$VIDEO_ENCODER" == nvenc ]] ||
  die "VIDEO_ENCODER must be software or nvenc, not '$VIDEO_ENCODER'"
is_uint "$DISPLAY_NUMBER" || die "DISPLAY_NUMBER must be a number, not '$DISPLAY_NUMBER'"
[[ "$RESOLUTION" =~ ^([0-9]+)x([0-9]+)x[0-9]+$ ]] || die "RESOLUTION must be WIDTHxHEIGHTxDEPTH, not '$RESOLUTION'"
width="${BASH_REMATCH[1]}" height="${BASH_REMATCH[2]}"
is_port "$VNC_PORT" || die "VNC_PORT must be a port number, not '$VNC_PORT'"
is_port "$STREAM_PORT" || die "STREAM_PORT must be a port number, not '$STREAM_PORT'"
((VNC_PORT != STREAM_PORT)) || die "VNC_PORT and STREAM_PORT must differ"
{ is_uint "$STREAM_FRAMERATE" && ((10#$STREAM_FRAMERATE >= 1 && 10#$STREAM_FRAMERATE <= 240)); } ||
  die "STREAM_FRAMERATE must be a number of frames per second from 1 to 240, not '$STREAM_FRAMERATE'"
[[ -z "$STREAM_FRAME_ANCESTORS" || "$STREAM_FRAME_ANCESTORS" =~ ^https?://[A-Za-z0-9.-]+(:[0-9]+)?(,https?://[A-Za-z0-9.-]+(:[0-9]+)?)*$ ]] ||
  die "STREAM_FRAME_ANCESTORS must be origins like https://dashboard.example.com, comma-separated, not '$STREAM_FRAME_ANCESTORS'"
{ is_uint "$IDLE_STOP_MINUTES" && ((${#IDLE_STOP_MINUTES} <= 6)); } ||
  die "IDLE_STOP_MINUTES must be a number of minutes (0 = never), not '$IDLE_STOP_MINUTES'"
IDLE_STOP_MINUTES=$((10#$IDLE_STOP_MINUTES)) STREAM_FRAMERATE=$((10#$STREAM_FRAMERATE))
is_uint "$STARTUP_TIMEOUT" || die "STARTUP_TIMEOUT must be a number of seconds"
is_uint "$STOP_TIMEOUT" || die "STOP_TIMEOUT must be a number of seconds"
read -r -a wm_command <<<"$WINDOW_MANAGER"
((${#wm_command[@]})) || die "WINDOW_MANAGER is empty"
tools=(Xvfb xdpyinfo xprop xwininfo x11vnc pulseaudio "${wm_command[0]}")
if [[ "$STREAM_PROTOCOL" == novnc ]]; then
  [[ -f "$NOVNC_WEB/vnc.html" ]] || die "NOVNC_WEB=$NOVNC_WEB has no vnc.html (is noVNC installed?)"
  tools+=(websockify)
else
  if [[ -z "$SELKIES" ]]; then
    SELKIES=/opt/selkies/bin/selkies
    [[ -x "$SELKIES" ]] || SELKIES=selkies
  fi
  tools+=("$SELKIES")
  if [[ -n "$GAMEPAD_INTERPOSER" ]]; then
    [[ "$GAMEPAD_INTERPOSER" == /* && "$GAMEPAD_INTERPOSER" != *[[:space:]:]* ]] ||
      die "GAMEPAD_INTERPOSER must be an absolute path without spaces or colons, not '$GAMEPAD_INTERPOSER'"
    # The loader's $LIB for this machine's native processes.
    interposer="${GAMEPAD_INTERPOSER//\$LIB/lib/$(uname -m)-linux-gnu}"
    [[ -f "$interposer" ]] ||
      die "GAMEPAD_INTERPOSER: $interposer does not exist (set GAMEPAD_INTERPOSER= to run without)"
    if [[ -n "$GAMEPAD_DEVICES" ]]; then
      [[ -d "$GAMEPAD_DEVICES" && -w "$GAMEPAD_DEVICES" ]] ||
        die "GAMEPAD_DEVICES=$GAMEPAD_DEVICES is not a writable directory"
    fi
  fi
fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"
rm -f "$STATE_DIR/display.ready" "$STATE_DIR/session.ready"
rfbauth="$STATE_DIR/rfbauth"
tokens_file="$STATE_DIR/selkies-tokens.json"

# The session's password, read without it ever appearing in a command line or in the output: x11vnc's rfbauth file
# is made from standard input (the password twice, then the confirmation), which printf, a builtin, feeds; Selkies'
# tokens file is written by a builtin too.
password=""
IFS= read -r password <"$VNC_PASSWORD_FILE" || true
password="${password%$'\r'}"
[[ -n "$password" ]] || die "VNC_PASSWORD_FILE=$VNC_PASSWORD_FILE holds no password on its first line"
[[ "$password" =~ ^[[:print:]]+$ ]] || die "the password in VNC_PASSWORD_FILE must be printable characters"
((${#password} <= 8)) || log "warning: only the first 8 characters of the password count for VNC"
rm -f "$rfbauth" "$tokens_file"
if ! (umask 077 && printf '%s\n%s\ny\n' "$password" "$password" | x11vnc -storepasswd "$rfbauth" \
  >"$STATE_DIR/storepasswd.log" 2>&1) || [[ ! -s "$rfbauth" ]]; then
  die "x11vnc -storepasswd could not write $rfbauth (see $STATE_DIR/storepasswd.log)"
fi
rm -f "$STATE_DIR/storepasswd.log"
if [[ "$STREAM_PROTOCOL" == selkies ]]; then
  # One controller: the password is its token; it holds keyboard and mouse and drives the first gamepad.
  token="${password//\\/\\\\}"
  token="${token//\"/\\\"}"
  (umask 077 && printf '{"%s": {"role": "controller", "mk_control": true, "slot": 1}}\n' "$token" >"$tokens_file")
  token=""
fi
password=""

declare -A pid_of=()  # component name -> pid
declare -A name_of=() # pid -> component name
stop_signal=""

# start NAME LOG COMMAND...: runs COMMAND in the background, output to LOG ("-" keeps this script's stdout/stderr).
start() {
  local name="$1" log_file="$2"
  shift 2
  if [[ "$log_file" == - ]]; then
    "$@" &
  else
    "$@" >"$log_file" 2>&1 &
  fi
  pid_of[$name]=$!
  name_of[$!]="$name"
  echo "$!" >"$STATE_DIR/$name.pid"
}

alive() { [[ -n "${pid_of[$1]:-}" ]] && kill -0 "${pid_of[$1]}" 2>/dev/null; }

show_log() {
  local file="$STATE_DIR/$1.log"
  if [[ -s "$file" ]]; then
    log "last lines of $file:"
    tail -n 15 "$file" | sed 's/^/  | /' >&2
  fi
}

# stop_all: SIGTERM to the app and the components (Xvfb last, once the others are gone), SIGKILL after STOP_TIMEOUT.
stop_all() {
  local name deadline
  rm -f "$STATE_DIR/session.ready" "$STATE_DIR/display.ready"
  for group in "monitor app selkies websockify x11vnc pulseaudio wm" "xvfb"; do
    for name in $group; do
      if alive "$name"; then kill -TERM "${pid_of[$name]}" 2>/dev/null || true; fi
    done
    deadline=$((SECONDS + STOP_TIMEOUT))
    for name in $group; do
      while alive "$name" && ((SECONDS < deadline)); do sleep 0.1; done
      if alive "$name"; then
        log "$name did not stop within ${STOP_TIMEOUT}s; killing it"
        kill -KILL "${pid_of[$name]}" 2>/dev/null || true
      fi
    done
  done
  wait 2>/dev/null || true
  rm -f "$STATE_DIR"/*.pid "$rfbauth" "$tokens_file"
}

on_signal() {
  stop_signal="$1"
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

# fail MESSAGE [COMPONENT]: the session cannot go on; stop what was started and exit 1.
fail() {
  log "error: $1"
  if [[ -n "${2:-}" ]]; then show_log "$2"; fi
  stop_all
  exit 1
}

# wait_until COMPONENT WHAT COMMAND...: polls COMMAND until it succeeds, failing if COMPONENT dies or time runs out.
wait_until() {
  local component="$1" what="$2" deadline=$((SECONDS + STARTUP_TIMEOUT))
  shift 2
  until "$@"; do
    [[ -z "$stop_signal" ]] || {
      stop_all
      exit $((128 + $(kill -l "$stop_signal")))
    }
    alive "$component" || fail "$component exited before $what" "$component"
    ((SECONDS < deadline)) || fail "timed out after ${STARTUP_TIMEOUT}s waiting for $what" "$component"
    sleep 0.1
  done
}

display_ready() { xdpyinfo -display ":$DISPLAY_NUMBER" >/dev/null 2>&1; }
listening() { (: <"/dev/tcp/$1/$2") 2>/dev/null; }
# The window manager runs once it owns the screen's _NET_SUPPORTING_WM_CHECK window.
wm_ready() { xprop -display ":$DISPLAY_NUMBER" -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id'; }
pulse_socket="$STATE_DIR/pulse/native"
pulse_ready() { [[ -S "$pulse_socket" ]]; }
stream_address="${STREAM_LISTEN:-127.0.0.1}"
[[ "$stream_address" != 0.0.0.0 && "$stream_address" != "::" ]] || stream_address=127.0.0.1

# app_window_viewable: a window the window manager manages (a top-level client window) is mapped and viewable.
app_window_viewable() {
  local list id
  list="$(xprop -display ":$DISPLAY_NUMBER" -root _NET_CLIENT_LIST 2>/dev/null)" || return 1
  [[ "$list" == *"window id"* ]] || return 1
  list="${list#*#}"
  for id in ${list//,/ }; do
    if xwininfo -display ":$DISPLAY_NUMBER" -id "$id" 2>/dev/null | grep -q 'Map State: IsViewable'; then
      return 0
    fi
  done
  return 1
}

# viewer_connected: an established TCP connection has STREAM_PORT or VNC_PORT as its local port (IPv4 or IPv6).
viewer_connected() {
  awk -v stream="$(printf %04X "$STREAM_PORT")" -v vnc="$(printf %04X "$VNC_PORT")" '
    FNR > 1 && $4 == "01" { port = $2; sub(/.*:/, "", port); if (port == stream || port == vnc) found = 1 }
    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# monitor: writes session.ready once the app's window is viewable and the stream server accepts connections; from the
# start, watches for viewers and exits 0 once none was connected for IDLE_STOP_MINUTES (never when that is 0).
monitor() {
  trap - TERM INT
  local ready="" idle_since=$SECONDS limit=$((IDLE_STOP_MINUTES * 60)) next_check=0
  while true; do
    if [[ -z "$ready" ]] && app_window_viewable && listening "$stream_address" "$STREAM_PORT"; then
      : >"$STATE_DIR/session.ready"
      log "session ready: the app's window is viewable and the stream accepts connections on port $STREAM_PORT"
      ready=1
      ((limit > 0)) || exec sleep infinity
    fi
    if ((limit > 0 && SECONDS >= next_check)); then
      if viewer_connected; then idle_since=$SECONDS; fi
      ((SECONDS - idle_since < limit)) || exit 0
      next_check=$((SECONDS + IDLE_CHECK_SECONDS))
    fi
    sleep 0.2
  done
}

# run_selkies: Selkies in secure mode, in the background: a master token that nobody outside this process knows (the
# control API's), the viewer's token from the tokens file; its page is public, its WebSocket needs ?token=. It streams
# the display's resolution, serves gamepads on the interposer sockets only (no /dev/uinput), and what the session does
# not need (file transfers, printing, webcam, sharing links, the WebRTC mode) is off. Its settings go by environment,
# so that no token is on a command line.
run_selkies() {
  trap - TERM INT
  SELKIES_MASTER_TOKEN="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export SELKIES_MASTER_TOKEN SELKIES_PORT="$STREAM_PORT" SELKIES_TOKENS_FILE="$tokens_file" \
    SELKIES_ENABLE_BASIC_AUTH=false SELKIES_MODE=websockets SELKIES_ENABLE_DUAL_MODE=false \
    SELKIES_MANUAL_RESOLUTION=true SELKIES_MANUAL_WIDTH="$width" SELKIES_MANUAL_HEIGHT="$height" \
    SELKIES_ENABLE_RESIZE=false SELKIES_SECOND_SCREEN=false SELKIES_ENCODER=h264enc \
    SELKIES_FRAMERATE="$STREAM_FRAMERATE,8-$STREAM_FRAMERATE" SELKIES_AUDIO_DEVICE_NAME=output.monitor \
    SELKIES_UINPUT_GAMEPAD=false SELKIES_FILE_TRANSFERS=none SELKIES_PRINTING_ENABLED=false \
    SELKIES_WEBCAM_ENABLED=false SELKIES_ENABLE_SHARING=false SELKIES_RTC_CONFIG_JSON="$STATE_DIR/rtc.json" \
    SELKIES_FILE_MANAGER_PATH="$STATE_DIR/files"
  if [[ -n "$STREAM_LISTEN" ]]; then export SELKIES_ADDR="$STREAM_LISTEN"; else export SELKIES_PUBLIC=true; fi
  if [[ "$VIDEO_ENCODER" == software ]]; then export SELKIES_USE_CPU=true; else export SELKIES_USE_CPU=false; fi
  export SELKIES_FRAME_ANCESTORS="'self'${STREAM_FRAME_ANCESTORS:+,$STREAM_FRAME_ANCESTORS}"
  exec "$SELKIES"
}

if [[ -e "/tmp/.X11-unix/X$DISPLAY_NUMBER" ]] && display_ready; then
  die "display :$DISPLAY_NUMBER is already in use"
fi
start xvfb "$STATE_DIR/xvfb.log" Xvfb ":$DISPLAY_NUMBER" -screen 0 "$RESOLUTION" -nolisten tcp -noreset
wait_until xvfb "display :$DISPLAY_NUMBER" display_ready
export DISPLAY=":$DISPLAY_NUMBER"

# openbox: every window without decorations and maximized, one desktop, so the app fills the display.
openbox_rc="$STATE_DIR/openbox-rc.xml"
cat >"$openbox_rc" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<openbox_config xmlns="http://openbox.org/3.4/rc">
  <desktops><number>1</number></desktops>
  <margins><top>0</top><bottom>0</bottom><left>0</left><right>0</right></margins>
  <applications>
    <application class="*">
      <decor>no</decor>
      <maximized>yes</maximized>
      <focus>yes</focus>
    </application>
  </applications>
</openbox_config>
EOF
if [[ "${wm_command[0]}" == openbox ]]; then wm_command+=(--config-file "$openbox_rc"); fi
start wm "$STATE_DIR/wm.log" "${wm_command[@]}"
if [[ "${wm_command[0]}" == openbox ]]; then wait_until wm "the window manager" wm_ready; fi
: >"$STATE_DIR/display.ready"

# PulseAudio: one null sink, "output", whose monitor Selkies captures; clients connect to its socket in STATE_DIR.
mkdir -p "$STATE_DIR/pulse"
chmod 700 "$STATE_DIR/pulse"
cat >"$STATE_DIR/pulse/default.pa" <<EOF
load-module module-native-protocol-unix socket=$pulse_socket auth-anonymous=1
load-module module-null-sink sink_name=output sink_properties=device.description=output
set-default-sink output
set-default-source output.monitor
EOF
start pulseaudio "$STATE_DIR/pulseaudio.log" env HOME="$STATE_DIR/pulse" PULSE_RUNTIME_PATH="$STATE_DIR/pulse" \
  PULSE_STATE_PATH="$STATE_DIR/pulse" pulseaudio --daemonize=no --exit-idle-time=-1 --use-pid-file=no --realtime=no \
  --high-priority=no --disable-shm=yes --log-target=stderr -n -F "$STATE_DIR/pulse/default.pa"
wait_until pulseaudio "the sound server's socket $pulse_socket" pulse_ready
export PULSE_SERVER="unix:$pulse_socket"
export SELKIES_JS_SOCKET_PATH="$STATE_DIR/gamepads"
mkdir -p "$SELKIES_JS_SOCKET_PATH"
chmod 700 "$SELKIES_JS_SOCKET_PATH"

start x11vnc "$STATE_DIR/x11vnc.log" x11vnc -display ":$DISPLAY_NUMBER" -localhost -rfbauth "$rfbauth" \
  -rfbport "$VNC_PORT" -forever -shared
wait_until x11vnc "x11vnc to listen on port $VNC_PORT" listening 127.0.0.1 "$VNC_PORT"

if [[ "$STREAM_PROTOCOL" == novnc ]]; then
  start websockify "$STATE_DIR/websockify.log" websockify --web "$NOVNC_WEB" \
    "${STREAM_LISTEN:+$STREAM_LISTEN:}$STREAM_PORT" "localhost:$VNC_PORT"
  wait_until websockify "websockify to listen on port $STREAM_PORT" listening "$stream_address" "$STREAM_PORT"
  log "session on display :$DISPLAY_NUMBER ($RESOLUTION): noVNC at http://${STREAM_LISTEN:-<host>}:$STREAM_PORT/vnc.html"
else
  start selkies "$STATE_DIR/selkies.log" run_selkies
  wait_until selkies "Selkies to listen on port $STREAM_PORT" listening "$stream_address" "$STREAM_PORT"
  log "session on display :$DISPLAY_NUMBER ($RESOLUTION, $VIDEO_ENCODER encoder): Selkies at" \
    "http://${STREAM_LISTEN:-<host>}:$STREAM_PORT/ (its WebSocket takes ?token=<password>)"
fi

# The app reads the gamepads as a game does, from /dev/input/js0 (or event1000): the interposer makes it so. It starts
# once Selkies serves them: a game looks for joysticks when it starts, and an open before then fails.
app_env=()
if [[ "$STREAM_PROTOCOL" == selkies && -n "$GAMEPAD_INTERPOSER" ]]; then
  wait_until selkies "Selkies' gamepad sockets in $SELKIES_JS_SOCKET_PATH" \
    test -S "$SELKIES_JS_SOCKET_PATH/selkies_js0.sock"
  app_env=(env "LD_PRELOAD=$GAMEPAD_INTERPOSER${LD_PRELOAD:+:$LD_PRELOAD}")
  if [[ -n "$GAMEPAD_DEVICES" ]]; then
    # Listed, the devices are found as a machine's own are (SDL: event1000-event1003, one per gamepad slot).
    for device in js0 js1 js2 js3 event1000 event1001 event1002 event1003; do
      : >>"$GAMEPAD_DEVICES/$device" || fail "cannot list the gamepad $device in GAMEPAD_DEVICES=$GAMEPAD_DEVICES"
    done
  else
    # Nothing to list: SDL is told where the first gamepad is (with the listing, it would see that one twice).
    app_env+=("SDL_JOYSTICK_DEVICE=${SDL_JOYSTICK_DEVICE:-/dev/input/js0}")
  fi
fi
start app - "${app_env[@]}" bash -c "$APP_COMMAND"
start monitor - monitor

# Waits for the first component to end. A component that ended while this script was between two commands may be a
# job bash has already cleaned up, which `wait -n` then never reports ("no such job") and waits on the others: so a
# one-second tick ends every wait, and a component that is not alive is found with its status.
while true; do
  finished=""
  status=0
  sleep 1 &
  tick=$!
  wait -n -p finished "${!name_of[@]}" "$tick" || status=$?
  finished="${finished:-}" # a signal that ends the wait leaves it unset
  if [[ "$finished" != "$tick" ]]; then kill "$tick" 2>/dev/null || true; fi
  wait "$tick" 2>/dev/null || true
  if [[ -n "$stop_signal" ]]; then
    log "received SIG$stop_signal; stopping the session"
    stop_all
    exit $((128 + $(kill -l "$stop_signal")))
  fi
  if [[ -z "$finished" || "$finished" == "$tick" ]]; then
    finished=""
    for pid in "${!name_of[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        finished="$pid"
        status=0
        wait "$pid" || status=$?
        break
      fi
    done
    [[ -n "$finished" ]] || continue
  fi
  name="${name_of[$finished]}"
  unset "name_of[$finished]" "pid_of[$name]"
  if [[ "$name" == app ]]; then
    log "the app exited with status $status; stopping the session"
    stop_all
    exit "$status"
  fi
  if [[ "$name" == monitor && "$status" == 0 ]]; then
    message="idle-stop: no viewer for $IDLE_STOP_MINUTES minutes"
    log "$message; stopping the session"
    if { : >>"$TERMINATION_LOG"; } 2>/dev/null; then printf '%s\n' "$message" >"$TERMINATION_LOG"; fi
    stop_all
    exit 0
  fi
  fail "$name exited unexpectedly with status $status" "$name"
done
