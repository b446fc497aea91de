#!/usr/bin/env bash
# Installs (or updates and validates) one Steam app with SteamCMD: the streaming session's init-container step.
#
# Usage: steamcmd-install.sh [--dry-run]
#   --dry-run  print the SteamCMD command line, the password shown as ***, and run nothing
#
# Configured by environment variables:
#   STEAM_APP_ID        required; the app's id, digits only (e.g. 1007, which anonymous accounts may install)
#   INSTALL_DIR         required; where the app goes (created if missing), e.g. on the session's volume
#   STEAM_USERNAME      optional; absent means the anonymous account
#   STEAM_PASSWORD      optional; with STEAM_USERNAME. Absent with a username: SteamCMD uses the login it has
#                       cached in its config directory (~/.steam, ~/.local/share/Steam; keep them on a volume so that
#                       Steam Guard is asked once)
#   STEAMCMD            the SteamCMD program (default: steamcmd on PATH, else /usr/games/steamcmd)
#   STEAMCMD_ATTEMPTS   how many times to run SteamCMD before giving up (default 3: it updates itself on its first
#                       run and may fail an app update transiently)
#   STEAMCMD_RETRY_DELAY seconds between attempts (default 5)
#
# Succeeds when SteamCMD exits 0 and the app's manifest (INSTALL_DIR/steamapps/appmanifest_ID.acf) exists.
# The password is never printed (and this script must not run under `set -x`).
set -euo pipefail

dry_run=false
case "${1:-}" in
  --dry-run) dry_run=true ;;
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
  *)
    echo "steamcmd-install: unknown argument '$1' (try --help)" >&2
    exit 2
    ;;
esac

die() {
  echo "steamcmd-install: error: $*" >&2
  exit 1
}

STEAM_APP_ID="${STEAM_APP_ID:-}"
INSTALL_DIR="${INSTALL_DIR:-}"
STEAM_USERNAME="${STEAM_USERNAME:-}"
STEAM_PASSWORD="${STEAM_PASSWORD:-}"
STEAMCMD_ATTEMPTS="${STEAMCMD_ATTEMPTS:-3}"
STEAMCMD_RETRY_DELAY="${STEAMCMD_RETRY_DELAY:-5}"
if [[ -z "${STEAMCMD:-}" ]]; then
  STEAMCMD="$(command -v steamcmd || echo /usr/games/steamcmd)"
fi

[[ "$STEAM_APP_ID" =~ ^[0-9]{1,10}$ ]] || die "STEAM_APP_ID must be the app's numeric id, not '$STEAM_APP_ID'"
[[ -n "$INSTALL_DIR" ]] || die "INSTALL_DIR is required"
[[ "$INSTALL_DIR" != *$'\n'* ]] || die "INSTALL_DIR must not contain a newline"
if [[ -n "$STEAM_USERNAME" ]]; then
  [[ "$STEAM_USERNAME" =~ ^[A-Za-z0-9_.@-]+$ ]] ||
    die "STEAM_USERNAME may hold only letters, digits and _ . @ -"
elif [[ -n "$STEAM_PASSWORD" ]]; then
  die "STEAM_PASSWORD is set without STEAM_USERNAME"
fi
[[ "$STEAMCMD_ATTEMPTS" =~ ^[1-9][0-9]*$ ]] || die "STEAMCMD_ATTEMPTS must be a positive number"
[[ "$STEAMCMD_RETRY_DELAY" =~ ^[0-9]+$ ]] || die "STEAMCMD_RETRY_DELAY must be a number of seconds"

login=("${STEAM_USERNAME:-anonymous}")
shown_login=("${login[@]}")
if [[ -n "$STEAM_PASSWORD" ]]; then
  login+=("$STEAM_PASSWORD")
  shown_login+=("***")
fi
# set_steam_args LOGIN...: sets steam_args to SteamCMD's arguments around the given +login arguments.
steam_args=()
set_steam_args() {
  steam_args=(+@NoPromptForPassword 1 +force_install_dir "$INSTALL_DIR" +login "$@" +app_update "$STEAM_APP_ID" validate
    +quit)
}

if $dry_run; then
  set_steam_args "${shown_login[@]}"
  printf '%q' "$STEAMCMD"
  for arg in "${steam_args[@]}"; do
    if [[ "$arg" == "***" ]]; then printf ' ***'; else printf ' %q' "$arg"; fi
  done
  printf '\n'
  exit 0
fi

[[ -x "$STEAMCMD" ]] || command -v "$STEAMCMD" >/dev/null || die "SteamCMD not found at '$STEAMCMD'"
mkdir -p "$INSTALL_DIR"
set_steam_args "${login[@]}"
manifest="$INSTALL_DIR/steamapps/appmanifest_$STEAM_APP_ID.acf"

for ((attempt = 1; attempt <= STEAMCMD_ATTEMPTS; attempt++)); do
  echo "steamcmd-install: installing app $STEAM_APP_ID into $INSTALL_DIR as ${login[0]}" \
    "(attempt $attempt of $STEAMCMD_ATTEMPTS)" >&2
  status=0
  "$STEAMCMD" "${steam_args[@]}" || status=$?
  if ((status == 0)) && [[ -f "$manifest" ]]; then
    echo "steamcmd-install: app $STEAM_APP_ID is installed ($manifest)" >&2
    exit 0
  fi
  if ((status == 0)); then
    echo "steamcmd-install: SteamCMD succeeded but $manifest is missing" >&2
  else
    echo "steamcmd-install: SteamCMD exited with status $status" >&2
  fi
  if ((attempt < STEAMCMD_ATTEMPTS)); then sleep "$STEAMCMD_RETRY_DELAY"; fi
done
die "app $STEAM_APP_ID was not installed after $STEAMCMD_ATTEMPTS attempts"
