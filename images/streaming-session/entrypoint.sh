#!/usr/bin/env bash
# Runs one interactive streaming session: an application on a virtual X display, shared by VNC and by noVNC in the
# browser. The session container's entrypoint; it runs outside a container too, as a normal user or as root.
#
#   Xvfb :DISPLAY_NUMBER  <-  window manager, APP_COMMAND
#        ^
#   x11vnc (127.0.0.1/::1 only, password from VNC_PASSWORD_FILE)  <-  websockify + noVNC on NOVNC_PORT (the one port
#                                                                      to expose: the page and its WebSocket)
#
# Configured only by environment variables:
#   APP_COMMAND        required; the command run on the display (bash syntax), e.g. the game's launcher. Let it `exec`
#                      the real program so that it receives SIGTERM. The session ends when it exits, with its status.
#   VNC_PASSWORD_FILE  required; a file whose first line is the VNC password. Only its first 8 characters count
#                      (VNC authentication). It is turned into an x11vnc rfbauth file and never printed.
#   DISPLAY_NUMBER     X display number (default 1, i.e. DISPLAY=:1)
#   RESOLUTION         Xvfb screen, WIDTHxHEIGHTxDEPTH (default 1280x720x24)
#   VNC_PORT           port x11vnc listens on, loopback only (default 5900)
#   NOVNC_PORT         port websockify serves noVNC and the WebSocket on (default 6080)
#   NOVNC_LISTEN       address websockify binds (default: all interfaces, as a pod needs; 127.0.0.1 on a workstation)
#   NOVNC_WEB          noVNC's web root (default /usr/share/novnc; the page is vnc.html)
#   WINDOW_MANAGER     window manager command (default openbox)
#   STATE_DIR          writable directory for the pid, log and rfbauth files (default $HOME/.session)
#   STARTUP_TIMEOUT    seconds to wait for the display and for x11vnc (default 20)
#   STOP_TIMEOUT       seconds the processes get to stop after SIGTERM before SIGKILL (default 10)
#
# SIGTERM or SIGINT stop every process (SIGTERM to each, the app first, Xvfb last) and the script exits 128+signal.
# If a component (Xvfb, the window manager, x11vnc, websockify) dies, the session stops and the script exits 1,
# naming it and showing the end of its log. Components log to STATE_DIR/<name>.log; the app logs to this script's
# stdout and stderr.
set -euo pipefail

DISPLAY_NUMBER="${DISPLAY_NUMBER:-1}"
RESOLUTION="${RESOLUTION:-1280x720x24}"
VNC_PORT="${VNC_PORT:-5900}"
NOVNC_PORT="${NOVNC_PORT:-6080}"
NOVNC_LISTEN="${NOVNC_LISTEN:-}"
NOVNC_WEB="${NOVNC_WEB:-/usr/share/novnc}"
WINDOW_MANAGER="${WINDOW_MANAGER:-openbox}"
APP_COMMAND="${APP_COMMAND:-}"
VNC_PASSWORD_FILE="${VNC_PASSWORD_FILE:-}"
STATE_DIR="${STATE_DIR:-${HOME:?set HOME or STATE_DIR}/.session}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-20}"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"

log() { printf 'streaming-session: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_port() { is_uint "$1" && ((10#$1 >= 1 && 10#$1 <= 65535)); }

[[ -n "$APP_COMMAND" ]] || die "APP_COMMAND is required (the command to run on the display)"
[[ -n "$VNC_PASSWORD_FILE" ]] || die "VNC_PASSWORD_FILE is required (a file holding the VNC password)"
[[ -r "$VNC_PASSWORD_FILE" ]] || die "VNC_PASSWORD_FILE=$VNC_PASSWORD_FILE is not a readable file"
is_uint "$DISPLAY_NUMBER" || die "DISPLAY_NUMBER must be a number, not '$DISPLAY_NUMBER'"
[[ "$RESOLUTION" =~ ^[0-9]+x[0-9]+x[0-9]+$ ]] || die "RESOLUTION must be WIDTHxHEIGHTxDEPTH, not '$RESOLUTION'"
is_port "$VNC_PORT" || die "VNC_PORT must be a port number, not '$VNC_PORT'"
is_port "$NOVNC_PORT" || die "NOVNC_PORT must be a port number, not '$NOVNC_PORT'"
((VNC_PORT != NOVNC_PORT)) || die "VNC_PORT and NOVNC_PORT must differ"
is_uint "$STARTUP_TIMEOUT" || die "STARTUP_TIMEOUT must be a number of seconds"
is_uint "$STOP_TIMEOUT" || die "STOP_TIMEOUT must be a number of seconds"
[[ -f "$NOVNC_WEB/vnc.html" ]] || die "NOVNC_WEB=$NOVNC_WEB has no vnc.html (is noVNC installed?)"
read -r -a wm_command <<<"$WINDOW_MANAGER"
((${#wm_command[@]})) || die "WINDOW_MANAGER is empty"
for tool in Xvfb xdpyinfo x11vnc websockify "${wm_command[0]}"; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"
rfbauth="$STATE_DIR/rfbauth"

# The rfbauth file, made without the password ever appearing in a command line or in the output: x11vnc reads it
# (twice, then the confirmation) from standard input, which printf, a builtin, feeds.
password=""
IFS= read -r password <"$VNC_PASSWORD_FILE" || true
password="${password%$'\r'}"
[[ -n "$password" ]] || die "VNC_PASSWORD_FILE=$VNC_PASSWORD_FILE holds no password on its first line"
((${#password} <= 8)) || log "warning: only the first 8 characters of the VNC password count"
rm -f "$rfbauth"
if ! (umask 077 && printf '%s\n%s\ny\n' "$password" "$password" | x11vnc -storepasswd "$rfbauth" \
  >"$STATE_DIR/storepasswd.log" 2>&1) || [[ ! -s "$rfbauth" ]]; then
  die "x11vnc -storepasswd could not write $rfbauth (see $STATE_DIR/storepasswd.log)"
fi
password=""
rm -f "$STATE_DIR/storepasswd.log"

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
  for group in "app websockify x11vnc wm" "xvfb"; do
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
  rm -f "$STATE_DIR"/*.pid "$rfbauth"
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
vnc_listening() { (: <"/dev/tcp/127.0.0.1/$VNC_PORT") 2>/dev/null; }

if [[ -e "/tmp/.X11-unix/X$DISPLAY_NUMBER" ]] && display_ready; then
  die "display :$DISPLAY_NUMBER is already in use"
fi
start xvfb "$STATE_DIR/xvfb.log" Xvfb ":$DISPLAY_NUMBER" -screen 0 "$RESOLUTION" -nolisten tcp -noreset
wait_until xvfb "display :$DISPLAY_NUMBER" display_ready
export DISPLAY=":$DISPLAY_NUMBER"

start wm "$STATE_DIR/wm.log" "${wm_command[@]}"
start app - bash -c "$APP_COMMAND"
start x11vnc "$STATE_DIR/x11vnc.log" x11vnc -display ":$DISPLAY_NUMBER" -localhost -rfbauth "$rfbauth" \
  -rfbport "$VNC_PORT" -forever -shared
wait_until x11vnc "x11vnc to listen on port $VNC_PORT" vnc_listening
start websockify "$STATE_DIR/websockify.log" websockify --web "$NOVNC_WEB" \
  "${NOVNC_LISTEN:+$NOVNC_LISTEN:}$NOVNC_PORT" "localhost:$VNC_PORT"
log "session on display :$DISPLAY_NUMBER ($RESOLUTION): noVNC at http://${NOVNC_LISTEN:-<host>}:$NOVNC_PORT/vnc.html"

while true; do
  finished=""
  status=0
  wait -n -p finished "${!name_of[@]}" || status=$?
  if [[ -n "$stop_signal" ]]; then
    log "received SIG$stop_signal; stopping the session"
    stop_all
    exit $((128 + $(kill -l "$stop_signal")))
  fi
  [[ -n "$finished" ]] || continue
  name="${name_of[$finished]}"
  unset "name_of[$finished]" "pid_of[$name]"
  if [[ "$name" == app ]]; then
    log "the app exited with status $status; stopping the session"
    stop_all
    exit "$status"
  fi
  fail "$name exited unexpectedly with status $status" "$name"
done
