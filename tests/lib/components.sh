# shellcheck shell=bash
# What tests/cluster/cluster.sh, tests/cluster/real-node.sh and tests/cf/cf-api.sh share: each starts long-running
# components in sessions of their own, records their pids in a state folder, builds Go binaries in the background and
# stops the same way, with the same messages. This file holds that logic once, so that a fix to it reaches every script.
#
# Sourced at the start of the script's { ... } block (bash reads a sourced file whole before running it). It sources
# tests/lib/script.sh (shell options, HERE, REPO, CACHE_DIR, messages, traps, basic helpers), sets the EXIT trap and
# defines the functions below.
#
# Before sourcing, the script sets:
#   SCRIPT_NAME   the prefix of every message, e.g. `cluster` (`cluster: ...`, and `cluster.sh` in the lock and log lines)
#   WHAT_STARTS   what `up` brings up, for a component that dies meanwhile: "while WHAT_STARTS was starting"
# and, before calling the functions, defines:
#   STATE_DIR, LOGS, PIDS   the state folder, its logs and pid files
#   COMPONENTS              the components `down` stops (in reverse order) and `status` lists
#   binary NAME             prints the path of a component's binary
#   launch BIN ARGS...      execs (exec setsid ...) the component BIN with the arguments `start` got, in place
# (shellcheck cannot see that the traps and probes below are called, nor where the script's variables are set.)
# shellcheck disable=SC2317,SC2154,SC2034,SC2153

# The shell options, HERE, REPO, CACHE_DIR, messages, the ERR/INT/TERM traps and the basic helpers (tail_log,
# quietly, alive, install_packages, require_commands).
# shellcheck source=tests/lib/script.sh
source "$(dirname "${BASH_SOURCE[0]}")/script.sh"

BUILD_PID=""
STARTING_PID=""
cleanup() {
  if [[ -n "$BUILD_PID" ]]; then
    say "stopping the unfinished build (pid $BUILD_PID)"
    kill "$BUILD_PID" 2>/dev/null || true
  fi
  if [[ -n "$STARTING_PID" ]]; then
    say "stopping the half-started component (pid $STARTING_PID)"
    kill -- "-$STARTING_PID" 2>/dev/null || true
  fi
  return 0
}
trap cleanup EXIT

# --- build -----------------------------------------------------------------------------------------------------------

PROGRESS_SECONDS=30

# await_build NAME PID LOG STARTED: waits for the background `go build` PID of NAME, begun at SECONDS=STARTED and
# writing LOG, saying every PROGRESS_SECONDS that it is still building; a failure stops with the end of LOG. The pid
# is in BUILD_PID meanwhile, so that the EXIT trap stops an unfinished build.
await_build() {
  local name="$1" log="$3" started="$4" next rc=0
  BUILD_PID=$2
  next=$((SECONDS + PROGRESS_SECONDS))
  while alive "$BUILD_PID"; do
    if ((SECONDS >= next)); then
      say "still building $name ($((SECONDS - started)) s)"
      next=$((SECONDS + PROGRESS_SECONDS))
    fi
    sleep 1
  done
  wait "$BUILD_PID" || rc=$?
  BUILD_PID=""
  if ((rc != 0)); then
    tail_log "$log"
    die "building $name failed (go build exited with status $rc after $((SECONDS - started)) s); its log is $log"
  fi
}

# pinned DIR MODULE: the version the go.mod in HERE/DIR pins for MODULE.
pinned() { awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$HERE/$1/go.mod"; }

# go_build MODULE_DIR OUT_DIR PACKAGE NAME [LDFLAGS]: one binary, built in the module HERE/MODULE_DIR, with a log that
# a failure points at. Says every PROGRESS_SECONDS that it is still building, since one binary can take five minutes.
go_build() {
  local module="$1" out="$2" package="$3" name="$4" ldflags="${5:-}"
  [[ -x "$out/$name" ]] && return 0
  command -v go >/dev/null || die "building $name needs Go (https://go.dev/dl), which is not on PATH"
  mkdir -p "$out" "$CACHE_DIR/build-logs"
  local log="$CACHE_DIR/build-logs/$name.log" started=$SECONDS
  say "building $name from $package (log: $log)"
  (cd "$HERE/$module" && exec go build -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$package") >"$log" 2>&1 </dev/null &
  await_build "$name" $! "$log" "$started"
  mv "$out/$name.tmp" "$out/$name"
  say "built $name in $((SECONDS - started)) s"
}

# k8s_ldflags: the ldflags that stamp K8S_VERSION into a binary of the k8s.io/kubernetes module (what the release
# build does), so that the apiserver and the kubelet report it.
k8s_ldflags() {
  local v="${K8S_VERSION#v}" ldflags="" pkg
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ldflags"
}

# take_build_lock: one build at a time per cache (cluster.sh and real-node.sh, on any state folder, share the
# binaries); holds fd 8 until release_build_lock. Returns 1 when it had to wait (another run may have built meanwhile).
take_build_lock() {
  mkdir -p "$CACHE_DIR/bin"
  exec 8>"$CACHE_DIR/bin/.build.lock"
  flock -n 8 && return 0
  say "waiting for another script that is building into $CACHE_DIR/bin (lock $CACHE_DIR/bin/.build.lock)"
  flock 8
  return 1
}
release_build_lock() { exec 8>&-; }

# --- PKI -------------------------------------------------------------------------------------------------------------

# new_ca WHAT CN: the folder PKI (mode 700) with a self-signed CA (ca.crt, ca.key; WHAT names it in messages) that
# `cert` signs with, made once.
new_ca() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  [[ -s "$PKI/ca.crt" ]] && return 0
  quietly "$1" openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
    -days 3650 -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
}

# cert NAME SUBJECT [SAN]: a key and a certificate in $PKI signed by the CA in the folder CA_DIR (ca.crt, ca.key), for
# a client, or with SAN for a server with the extended key usage SERVER_KEY_USAGE.
cert() {
  local name="$1" subject="$2" san="${3:-}" ext="$PKI/$1.ext"
  [[ -s "$PKI/$name.crt" ]] && return 0
  quietly "the $name key" openssl genrsa -out "$PKI/$name.key" 2048
  quietly "the $name certificate request" openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "$san" ]]; then echo "extendedKeyUsage=$SERVER_KEY_USAGE"; echo "subjectAltName=$san"; else echo "extendedKeyUsage=clientAuth"; fi
  } >"$ext"
  quietly "signing the $name certificate" openssl x509 -req -in "$PKI/$name.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" \
    -CAcreateserial -CAserial "$PKI/ca.srl" -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt"
  rm -f "$PKI/$name.csr" "$ext"
}

# --- processes -------------------------------------------------------------------------------------------------------

# running NAME: the component's recorded process is alive and is still our binary.
running() {
  local pidfile="$PIDS/$1.pid" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  alive "$pid" || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(binary "$1")"* ]]
}

# ours NAME: the recorded process is the component, or is on its way to exec it (setsid, env or a test wrapper, whose
# command line names the binary): what `down` must stop.
ours() {
  running "$1" && return 0
  local pidfile="$PIDS/$1.pid" pid cmdline
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  alive "$pid" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$(binary "$1") "* ]]
}

STARTED_PIDS=" "
WATCHED=()

# exited NAME PID WHEN: reports a component that is gone, with its exit status when this run started it, and the end
# of its log, then stops.
exited() {
  local name="$1" pid="$2" when="$3" log="$LOGS/$1.log" status="" rc=0
  if [[ "$STARTED_PIDS" == *" $pid "* ]]; then
    wait "$pid" 2>/dev/null || rc=$?
    status=" with status $rc"
  fi
  if [[ "$pid" == "$STARTING_PID" ]]; then STARTING_PID=""; fi
  rm -f "$PIDS/$name.pid"
  tail_log "$log"
  die "$name (pid $pid) exited$status $when; its log is $log"
}

# start NAME ARGS...: starts the component (the script's `launch` with its binary and ARGS) in its own session and
# returns once its recorded pid runs the binary, so that every later check of it (running, status, down) holds; a
# component that exits before is reported.
start() {
  local name="$1" bin pid exe deadline
  shift
  bin="$(binary "$name")"
  [[ -x "$bin" ]] || die "$name's binary $bin is missing; run '$0 build'"
  if running "$name"; then
    WATCHED+=("$name")
    return 0
  fi
  mkdir -p "$LOGS" "$PIDS"
  echo "----- $(date -u +%FT%TZ) $SCRIPT_NAME.sh starts $name -----" >>"$LOGS/$name.log"
  # fd 9 holds the state lock: the long-running child must not inherit it.
  launch "$bin" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  pid=$!
  STARTING_PID=$pid
  STARTED_PIDS+="$pid "
  echo "$pid" >"$PIDS/$name.pid"
  deadline=$((SECONDS + 30))
  while :; do
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || exe=""
    [[ "$exe" == "$bin"* ]] && break
    alive "$pid" || exited "$name" "$pid" "before it started"
    if ((SECONDS >= deadline)); then
      kill -- "-$pid" 2>/dev/null || true
      STARTING_PID=""
      rm -f "$PIDS/$name.pid"
      tail_log "$LOGS/$name.log"
      die "$name (pid $pid) still runs ${exe:-an unknown program} instead of $bin after 30 s; stopped it; its log is $LOGS/$name.log"
    fi
    sleep 0.05
  done
  STARTING_PID=""
  WATCHED+=("$name")
  say "started $name (pid $pid, log: $LOGS/$name.log)"
}

# check_alive: every component started or found by this run still runs; one that died is reported.
check_alive() {
  local name
  for name in "${WATCHED[@]}"; do
    running "$name" || exited "$name" "$(cat "$PIDS/$name.pid" 2>/dev/null || echo '?')" "while $WHAT_STARTS was starting"
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# random_port: a random port from 20000 up to the start of the kernel's ephemeral range (ip_local_port_range), so that
# no outgoing connection (the apiserver's to etcd, say) can hold it by chance between choosing it and listening on it.
random_port() {
  local low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 21000)) || low=32768
  echo $((20000 + RANDOM % (low - 20000)))
}

# choose_ports NAME...: a free loopback port for each variable NAME, recorded as NAME=PORT in STATE_DIR/ports.env (written
# whole), so that a later run and the env verb find the same ports.
choose_ports() {
  local taken=" " name port
  : >"$STATE_DIR/ports.env.tmp"
  for name in "$@"; do
    while :; do
      port="$(random_port)"
      [[ "$taken" != *" $port "* ]] && port_free "$port" && break
    done
    taken+="$port "
    echo "$name=$port" >>"$STATE_DIR/ports.env.tmp"
  done
  mv "$STATE_DIR/ports.env.tmp" "$STATE_DIR/ports.env"
}

# wait_for WHAT SECONDS LOG COMMAND...: retries COMMAND until it succeeds, or stops naming WHAT and LOG with the
# end of LOG and COMMAND's last output. A component that dies meanwhile is reported at once.
wait_for() {
  local what="$1" limit="$2" log="$3" deadline=$((SECONDS + $2)) out=""
  shift 3
  while :; do
    check_alive
    if out="$("$@" 2>&1)"; then return 0; fi
    if ((SECONDS >= deadline)); then
      tail_log "$log"
      [[ -n "$out" ]] && printf '%s: the last check (%s) said:\n%s\n' "$SCRIPT_NAME" "$*" "$(tail -n 10 <<<"$out")" >&2
      die "$what did not come up within ${limit} s; its log is $log"
    fi
    sleep 0.5
  done
}

# lock_state: one script at a time changes a state folder; a second one says what it waits for.
lock_state() {
  mkdir -p "$STATE_DIR" "$LOGS" "$PIDS"
  exec 9>"$STATE_DIR/lock"
  if ! flock -n 9; then
    say "waiting for another $SCRIPT_NAME.sh working on $STATE_DIR (lock $STATE_DIR/lock)"
    flock 9
  fi
}

# stop NAME [quiet]: stops the component by its recorded pid (its own process group, from setsid, so a test wrapper
# goes too): TERM, then KILL after 5 s.
stop() {
  local name="$1" pid
  if ours "$name"; then
    pid="$(cat "$PIDS/$name.pid")"
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      say "$name ($pid) did not stop within 5 s of SIGTERM; sending SIGKILL"
      kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    fi
    [[ "${2:-}" == quiet ]] || say "stopped $name ($pid)"
  fi
  rm -f "$PIDS/$name.pid"
}

# cmd_down_locked [quiet]: stops the COMPONENTS, the last first.
cmd_down_locked() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[$i]}" "${1:-}"; done
}

# components_status: says which of the COMPONENTS run.
components_status() {
  local name
  for name in "${COMPONENTS[@]}"; do
    if running "$name"; then echo "$name running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name stopped"; fi
  done
}

# write_kubeconfig FILE NAME SERVER CA_CRT USER CRT KEY: a kubeconfig (mode 600, written whole) for the apiserver at
# SERVER trusted through CA_CRT, as USER with the client certificate CRT and key KEY; NAME names its cluster/context.
write_kubeconfig() {
  local file="$1" name="$2" server="$3" user="$5" ca crt key
  ca="$(base64 -w0 <"$4")" || die "cannot read $4"
  crt="$(base64 -w0 <"$6")" || die "cannot read $6"
  key="$(base64 -w0 <"$7")" || die "cannot read $7"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: $user
  user:
    client-certificate-data: $crt
    client-key-data: $key
contexts:
- name: $name
  context: {cluster: $name, user: $user}
current-context: $name
EOF
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

# show_logs [NAME]: prints the log of component NAME (from LOGS, else the build logs), or, without NAME, the paths of
# all the logs.
show_logs() {
  if [[ -z "${1:-}" ]]; then
    local logs=()
    mapfile -t logs < <(compgen -G "$LOGS/*.log"; compgen -G "$CACHE_DIR/build-logs/*.log")
    ((${#logs[@]})) || die "no logs yet in $LOGS or $CACHE_DIR/build-logs"
    printf '%s\n' "${logs[@]}"
    return
  fi
  local log="$LOGS/$1.log"
  [[ -f "$log" ]] || log="$CACHE_DIR/build-logs/$1.log"
  [[ -f "$log" ]] || die "no log for '$1'; known: ${COMPONENTS[*]} and the build logs ('$(basename "$0") logs' lists them)"
  cat "$log"
}
