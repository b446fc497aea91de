# shellcheck shell=bash
# What every script of the project's test tooling does the same way (tests/cluster/cluster.sh, real-node.sh,
# tests/cf/cf-api.sh through tests/lib/components.sh, and images/build.sh): strict shell options, HERE (the running
# script's folder), REPO, CACHE_DIR (from CAAS_CACHE_DIR, physical path), messages prefixed with the script's name,
# a message for any command that fails without its own, Ctrl-C and SIGTERM said and turned into the EXIT trap (each
# script sets its own), and the helpers below.
#
# Before sourcing, the script sets SCRIPT_NAME, the prefix of every message (`cluster: ...`).
# (shellcheck cannot see that the traps below are called, nor where the script's variables are set.)
# shellcheck disable=SC2317,SC2154,SC2034,SC2153

set -euo pipefail
set -E
# Background children stay in this script's process group (no job control), so `setsid` calls setsid(2) and execs in
# place instead of forking: the pid of a background `setsid COMMAND &` is COMMAND's own, and leads its own group.
set +m

HERE="$(cd "$(dirname "${BASH_SOURCE[${#BASH_SOURCE[@]} - 1]}")" && pwd)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${CAAS_CACHE_DIR:-$REPO/.cache}"
mkdir -p "$CACHE_DIR" || { echo "$SCRIPT_NAME: cannot create the cache folder $CACHE_DIR (CAAS_CACHE_DIR)" >&2; exit 1; }
# Its physical path: a component's /proc/PID/exe is compared with the binary's path.
CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"

die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }
say() { echo "$SCRIPT_NAME: $*" >&2; }

# Anything that fails without its own message (set -e) still says what and where; only the script's own process
# speaks, not the subshells of command substitutions.
on_error() {
  [[ $BASHPID == "$$" ]] || return 0
  say "stopped: '$2' failed with status $1 (in ${FUNCNAME[1]:-the main script}, line $3)"
}
trap 'on_error $? "$BASH_COMMAND" "$LINENO"' ERR
# Interrupted or terminated: run the script's EXIT trap, which stops what is half done.
trap 'say "interrupted (SIGINT)"; exit 130' INT
trap 'say "terminated (SIGTERM)"; exit 143' TERM

# tail_log FILE: the end of a log, framed, so a failure shows what the program said last.
tail_log() {
  [[ -s "$1" ]] || { echo "$SCRIPT_NAME: ($1 is empty or missing)" >&2; return 0; }
  echo "----- last lines of $1 -----" >&2
  tail -n 20 "$1" >&2
  echo "----- end of $1 -----" >&2
}

# quietly WHAT COMMAND...: runs COMMAND without its chatter; when it fails, shows the chatter and stops naming WHAT.
quietly() {
  local what="$1" out
  shift
  if ! out="$("$@" 2>&1)"; then
    [[ -n "$out" ]] && echo "$out" >&2
    die "$what failed ($*)"
  fi
}

# alive PID: the process exists and is not a zombie (an exited child that nobody reaped yet).
alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# install_packages WHY PACKAGE...: installs Debian packages with apt-get when this runs as root (log in
# CACHE_DIR/build-logs/apt-get.log); otherwise stops naming them and WHY they are needed.
install_packages() {
  local why="$1" log="$CACHE_DIR/build-logs/apt-get.log"
  shift
  if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
    die "missing $why; install the Debian packages $* (as root: apt-get install $*), then run this again"
  fi
  mkdir -p "$CACHE_DIR/build-logs"
  say "installing $* with apt-get, for $why (log: $log)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$@"; } >"$log" 2>&1; then
    tail_log "$log"
    die "installing $* failed; its log is $log"
  fi
}

# require_commands COMMAND:PACKAGE...: each COMMAND (a name on PATH, or an absolute path) that is missing is installed
# from its Debian PACKAGE (install_packages).
require_commands() {
  local missing=() packages=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null && continue
    missing+=("${pair%%:*}")
    [[ " ${packages[*]} " == *" ${pair#*:} "* ]] || packages+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  install_packages "commands: ${missing[*]}" "${packages[@]}"
  for pair in "${missing[@]}"; do
    command -v "$pair" >/dev/null ||
      die "$pair is still missing after installing ${packages[*]}; apt-get's log is $CACHE_DIR/build-logs/apt-get.log"
  done
}
