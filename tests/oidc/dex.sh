#!/usr/bin/env bash
# A real OpenID Connect provider on loopback, for the dashboard's login tests: Dex, with a confidential client for the
# dashboard (authorization code flow, PKCE allowed) and two users in its password database.
#
# Dex is built from its Go module (v2.45.1's commit, pinned by dex/go.mod beside this script) and serves HTTPS on
# 127.0.0.1 at a port chosen at random on the first `up` and kept while it is free, with a certificate from a CA of its
# own; its issuer is https://127.0.0.1:PORT/dex. Storage is an SQLite file in the state folder, so the signing keys
# outlive a restart.
#
#   dex.sh build     build Dex if it is not cached yet (needs the Go module proxy the first time)
#   dex.sh up        build if needed, then start Dex (idempotent; waits until the discovery document and the JWKS answer
#                    over TLS with the CA). A change of configuration (CAAS_OIDC_REDIRECT_URIS) restarts it.
#   dex.sh down      stop Dex (by pid); keep the state
#   dex.sh reset     down, then forget the state (CA, secrets, passwords, the database)
#   dex.sh env       print the environment for a client: eval "$(tests/oidc/dex.sh env)"
#   dex.sh status    say whether Dex runs, and its issuer
#   dex.sh logs [C]  print the log of C (dex, or a build log), or the names of all logs
#
# The client `caas-dashboard` is confidential (its secret is in the file CAAS_OIDC_CLIENT_SECRET_FILE) and may use
# PKCE (S256 or plain); its redirect URIs are CAAS_OIDC_REDIRECT_URIS at `up` (comma-separated; default
# http://127.0.0.1:8081/auth/callback). The users alice@example.test (groups caas-admins, team-a) and bob@example.test
# (group team-b) log in with the passwords in CAAS_OIDC_USERS_FILE (EMAIL:PASSWORD lines). Secrets and passwords are
# made once per state folder, kept in files of mode 600 there, and never put on a command line or in a log.
#
# Dex knows the scopes openid, email, profile, groups, offline_access, federated:id and audience:server:client_id:ID
# and refuses any other (invalid_scope): Cloud Foundry's UAA scopes such as cloud_controller_service_permissions.read
# belong to the client's configuration for a UAA, not to this provider.
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache) holds the binary keyed by version; CAAS_OIDC_DIR (default
# $CAAS_CACHE_DIR/oidc) the state folder.
#
# Needs Go and gcc (only to build: Dex's SQLite storage is cgo), openssl, curl, flock and setsid: when one is missing it
# is installed with apt-get if this runs as root, otherwise the script stops naming the Debian packages to install.
#
# Every way this script stops says why on stderr, naming what failed and its log.

# The whole script is one { ... } block that bash parses before it runs any of it, so that editing the script while
# a build runs cannot make the running copy read garbage. (shellcheck cannot see that the probes and traps inside it
# are called.)
# shellcheck disable=SC2317
{
SCRIPT_NAME="dex"
WHAT_STARTS="Dex"
# Shell options, HERE, REPO, CACHE_DIR, messages, traps, and the process, build and certificate logic cluster.sh shares.
# shellcheck source=tests/lib/components.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/components.sh"
STATE_DIR="${CAAS_OIDC_DIR:-$CACHE_DIR/oidc}"
PKI="$STATE_DIR/pki"
CA_DIR="$PKI"
SERVER_KEY_USAGE="serverAuth"
LOGS="$STATE_DIR/logs"
PIDS="$STATE_DIR/pids"
CONFIG="$STATE_DIR/config.yaml"
SECRET_FILE="$STATE_DIR/client-secret"
USERS_FILE="$STATE_DIR/users"
HASHES_FILE="$STATE_DIR/users.bcrypt"
COMPONENTS=(dex)
CLIENT_ID="caas-dashboard"
DEFAULT_REDIRECT_URIS="http://127.0.0.1:8081/auth/callback"
# The static users: EMAIL USERNAME NAME GROUPS (comma-separated). The username is also the user's id in Dex.
USERS=(
  "alice@example.test alice Alice caas-admins,team-a"
  "bob@example.test bob Bob team-b"
)

# require_tools: the commands this script runs (require_commands installs what is missing, or names it).
require_tools() { require_commands openssl:openssl curl:curl flock:util-linux setsid:util-linux awk:mawk; }

DEX_VERSION="$(pinned dex github.com/dexidp/dex)"
# The release the pinned commit is, from the first line of dex/go.mod ("// Pins Dex vX.Y.Z ..."): Dex reports it.
DEX_RELEASE="$(awk 'NR == 1 && $2 == "Pins" && $3 == "Dex" { print $4 }' "$HERE/dex/go.mod")"
[[ -n "$DEX_VERSION" && "$DEX_RELEASE" == v* ]] || die "cannot read the pinned Dex version and release from $HERE/dex/go.mod"
GO_VERSION="$(go env GOVERSION 2>/dev/null || echo none)"
BIN_DEX="$CACHE_DIR/bin/dex-$DEX_VERSION-$GO_VERSION"

binary() { echo "$BIN_DEX/$1"; }

# --- build -----------------------------------------------------------------------------------------------------------

cmd_build() {
  [[ -x "$(binary dex)" ]] && return 0
  # One build at a time per cache (the other scripts' builds too: two cores are enough for one).
  take_build_lock || true
  if [[ ! -x "$(binary dex)" ]]; then
    # Dex's SQLite storage is the cgo driver github.com/mattn/go-sqlite3: without cgo it is left out.
    require_commands gcc:gcc
    say "building Dex $DEX_RELEASE ($DEX_VERSION) with $GO_VERSION (about 3 min on 2 cores from an empty Go build cache)"
    CGO_ENABLED=1 go_build dex "$BIN_DEX" github.com/dexidp/dex/cmd/dex dex "-X main.version=$DEX_RELEASE"
  fi
  release_build_lock
}

# --- PKI and secrets -------------------------------------------------------------------------------------------------

make_pki() {
  new_ca "the OIDC provider's CA" caas-broker-test-oidc-ca
  cert dex "/CN=dex" "DNS:localhost,IP:127.0.0.1"
}

# secret: prints a new random secret (32 hexadecimal digits) to standard output.
secret() { openssl rand -hex 16 || die "openssl rand failed: cannot make a secret"; }

# make_secrets: the client secret, a password for each user (USERS_FILE, EMAIL:PASSWORD lines) and their bcrypt hashes
# (HASHES_FILE, one a line in the order of USERS_FILE), each made once, all mode 600. A user added to USERS gets a
# password at the next `up`.
make_secrets() {
  local user email log="$LOGS/bcrypt.log"
  (
    umask 077
    if [[ ! -s "$SECRET_FILE" ]]; then
      secret >"$SECRET_FILE.tmp"
      mv "$SECRET_FILE.tmp" "$SECRET_FILE"
    fi
    [[ -e "$USERS_FILE" ]] || : >"$USERS_FILE"
    for user in "${USERS[@]}"; do
      email="${user%% *}"
      awk -F: -v email="$email" '$1 == email { found = 1 } END { exit !found }' "$USERS_FILE" ||
        { printf '%s:' "$email" && secret; } >>"$USERS_FILE"
    done
  )
  [[ -s "$HASHES_FILE" && "$HASHES_FILE" -nt "$USERS_FILE" ]] && return 0
  # golang.org/x/crypto/bcrypt (dex/bcrypt/main.go) at the version Dex's module graph pins: the passwords go in on
  # standard input, the hashes come out on standard output.
  command -v go >/dev/null || die "hashing the users' passwords needs Go (https://go.dev/dl), which is not on PATH"
  say "hashing the users' passwords with bcrypt (log: $log)"
  if ! (umask 077 && cut -d: -f2- "$USERS_FILE" | (cd "$HERE/dex" && exec go run ./bcrypt) >"$HASHES_FILE.tmp" 2>"$log"); then
    tail_log "$log"
    die "hashing the users' passwords failed (go run ./bcrypt in $HERE/dex); its log is $log"
  fi
  [[ "$(wc -l <"$HASHES_FILE.tmp")" == "$(wc -l <"$USERS_FILE")" ]] ||
    die "the bcrypt helper printed $(wc -l <"$HASHES_FILE.tmp") hashes for $(wc -l <"$USERS_FILE") users; its log is $log"
  mv "$HASHES_FILE.tmp" "$HASHES_FILE"
}

# --- configuration ---------------------------------------------------------------------------------------------------

# quote TEXT: TEXT as a double-quoted YAML (and JSON) string.
quote() {
  local text="${1//\\/\\\\}"
  printf '"%s"' "${text//\"/\\\"}"
}

# read_redirect_uris: REDIRECT_URIS, the client's redirect URIs, from CAAS_OIDC_REDIRECT_URIS (comma-separated); each
# must be an absolute http(s) URL.
read_redirect_uris() {
  local uris=() uri
  IFS=, read -ra uris <<<"${CAAS_OIDC_REDIRECT_URIS:-$DEFAULT_REDIRECT_URIS}"
  REDIRECT_URIS=()
  for uri in "${uris[@]}"; do
    uri="${uri#"${uri%%[![:space:]]*}"}"
    uri="${uri%"${uri##*[![:space:]]}"}"
    [[ -z "$uri" ]] && continue
    [[ "$uri" =~ ^https?://[^/[:space:]]+(/[^[:space:]]*)?$ ]] ||
      die "CAAS_OIDC_REDIRECT_URIS: '$uri' is not an absolute http(s) URL"
    REDIRECT_URIS+=("$uri")
  done
  ((${#REDIRECT_URIS[@]})) || die "CAAS_OIDC_REDIRECT_URIS names no redirect URI"
}

# dex_config: prints Dex's configuration, with the client secret, REDIRECT_URIS and the password hashes.
dex_config() {
  local uri user email username name groups group i=0 hashes=() client_secret
  mapfile -t hashes <"$HASHES_FILE"
  client_secret="$(cat "$SECRET_FILE")"
  cat <<EOF
issuer: $(quote "$ISSUER")
storage:
  type: sqlite3
  config:
    file: $(quote "$STATE_DIR/dex.db")
web:
  https: 127.0.0.1:$DEX_PORT
  tlsCert: $(quote "$PKI/dex.crt")
  tlsKey: $(quote "$PKI/dex.key")
logger:
  level: info
  format: text
oauth2:
  responseTypes: [code]
  # Logging in is consent: the browser goes from the login form straight back to the client.
  skipApprovalScreen: true
staticClients:
- id: $CLIENT_ID
  name: caas-broker dashboard
  secret: $(quote "$client_secret")
  redirectURIs:
EOF
  for uri in "${REDIRECT_URIS[@]}"; do echo "  - $(quote "$uri")"; done
  echo "enablePasswordDB: true"
  echo "staticPasswords:"
  while IFS=: read -r email _; do
    for user in "${USERS[@]}"; do
      [[ "${user%% *}" == "$email" ]] || continue
      read -r _ username name groups <<<"$user"
      echo "- email: $(quote "$email")"
      echo "  hash: $(quote "${hashes[$i]}")"
      echo "  username: $(quote "$username")"
      echo "  preferredUsername: $(quote "$username")"
      echo "  name: $(quote "$name")"
      echo "  emailVerified: true"
      echo "  userID: $(quote "$username")"
      echo "  groups:"
      for group in ${groups//,/ }; do echo "  - $(quote "$group")"; done
    done
    i=$((i + 1))
  done <"$USERS_FILE"
}

# configure: writes Dex's configuration; when that changes the configuration of a running Dex, stops it so that `up`
# starts it with the new one.
configure() {
  local mask
  mask="$(umask)"
  umask 077
  dex_config >"$CONFIG.tmp"
  umask "$mask"
  if cmp -s "$CONFIG.tmp" "$CONFIG"; then
    rm -f "$CONFIG.tmp"
    return 0
  fi
  mv "$CONFIG.tmp" "$CONFIG"
  if ours dex; then
    say "Dex's configuration changed ($CONFIG): restarting it"
    stop dex quiet
  fi
}

# --- processes -------------------------------------------------------------------------------------------------------

# launch BIN ARGS...: what `start` runs in the background.
launch() { exec setsid "$@"; }

# discovery_ready: the discovery document answers over TLS with the CA and names this issuer.
discovery_ready() {
  local doc
  doc="$(curl -fsS --max-time 2 --cacert "$PKI/ca.crt" "$ISSUER/.well-known/openid-configuration")" || return 1
  [[ "$(tr -d ' \n' <<<"$doc")" == *"\"issuer\":\"$ISSUER\""* ]] && return 0
  echo "the discovery document does not name the issuer $ISSUER:"
  echo "$doc"
  return 1
}

# jwks_ready: the JWKS answers and holds a signing key (Dex makes its first key as it starts).
jwks_ready() { curl -fsS --max-time 2 --cacert "$PKI/ca.crt" "$ISSUER/keys" | grep -F '"kid"'; }

# load_ports: DEX_PORT and ISSUER from the state folder.
load_ports() {
  # shellcheck source=/dev/null
  source "$STATE_DIR/ports.env"
  ISSUER="https://127.0.0.1:$DEX_PORT/dex"
}

cmd_up() {
  local started=$SECONDS
  read_redirect_uris
  require_tools
  cmd_build
  lock_state
  # The database holds Dex's signing keys, the configuration the client secret and the password hashes.
  chmod 700 "$STATE_DIR"
  # The port (so the issuer) stays as long as it is free: clients keep their configuration across down and up.
  if [[ -s "$STATE_DIR/ports.env" ]]; then
    load_ports
    if ! ours dex && ! port_free "$DEX_PORT"; then
      say "port $DEX_PORT, Dex's until now, is taken by another process: choosing another one (the issuer changes)"
      rm -f "$STATE_DIR/ports.env"
    fi
  fi
  if [[ ! -s "$STATE_DIR/ports.env" ]]; then
    choose_ports DEX_PORT
  fi
  load_ports
  make_pki
  make_secrets
  configure
  start dex serve "$CONFIG"
  wait_for "Dex's discovery document ($ISSUER/.well-known/openid-configuration)" 60 "$LOGS/dex.log" discovery_ready
  wait_for "Dex's signing keys ($ISSUER/keys)" 30 "$LOGS/dex.log" jwks_ready
  say "up in $((SECONDS - started)) s: Dex $DEX_RELEASE at $ISSUER (eval \"\$($0 env)\")"
}

cmd_down() {
  [[ -d "$STATE_DIR" ]] || return 0
  lock_state
  stop dex
}

cmd_reset() {
  cmd_down
  rm -rf "$STATE_DIR"
  say "state removed"
}

cmd_env() {
  [[ -s "$STATE_DIR/ports.env" && -s "$CONFIG" ]] || die "no OIDC provider yet: run '$0 up'"
  load_ports
  local uris
  uris="$(redirect_uris_configured)"
  printf 'export CAAS_OIDC_ISSUER=%q\n' "$ISSUER"
  printf 'export CAAS_OIDC_CA_FILE=%q\n' "$PKI/ca.crt"
  printf 'export CAAS_OIDC_CLIENT_ID=%q\n' "$CLIENT_ID"
  printf 'export CAAS_OIDC_CLIENT_SECRET_FILE=%q\n' "$SECRET_FILE"
  printf 'export CAAS_OIDC_USERS_FILE=%q\n' "$USERS_FILE"
  printf 'export CAAS_OIDC_REDIRECT_URIS=%q\n' "$uris"
}

# redirect_uris_configured: the redirect URIs in Dex's configuration, comma-separated.
redirect_uris_configured() {
  awk '/^  redirectURIs:/ { on = 1; next } on && /^  - / { sub(/^  - "/, ""); sub(/"$/, ""); printf "%s%s", sep, $0; sep = ","; next } { on = 0 }' \
    "$CONFIG"
}

cmd_status() {
  components_status
  if running dex && [[ -s "$STATE_DIR/ports.env" ]]; then
    load_ports
    echo "issuer $ISSUER"
  fi
}

# cmd_logs [C]: the log of C, or the names of this script's logs (Dex's, the bcrypt helper's, Dex's build log).
cmd_logs() {
  if [[ -n "${1:-}" ]]; then
    show_logs "$1"
    return
  fi
  local logs=()
  mapfile -t logs < <(compgen -G "$LOGS/*.log"; compgen -G "$CACHE_DIR/build-logs/dex.log")
  ((${#logs[@]})) || die "no logs yet in $LOGS or $CACHE_DIR/build-logs"
  printf '%s\n' "${logs[@]}"
}

verb="${1:-}"
shift || true
case "$verb" in
  build) require_tools; cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  reset) cmd_reset ;;
  env) cmd_env ;;
  status) cmd_status ;;
  logs) cmd_logs "$@" ;;
  *) sed -n '2,/^$/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
exit
}
