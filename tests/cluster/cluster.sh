#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for development and tests.
#
# etcd, kube-apiserver, kube-controller-manager and kube-scheduler are built from their official Go modules (the
# versions are pinned by the go.mod files beside this script), kwok simulates two nodes so pods are scheduled and turn
# Running and Ready. Everything lives under one state folder; nothing outside it is touched.
#
#   cluster.sh build     build the binaries that are not cached yet (needs the Go module proxy the first time)
#   cluster.sh up        build if needed, then start everything (idempotent; waits until the cluster is usable)
#   cluster.sh down      stop the processes this script started (by pid), keep the state
#   cluster.sh reset     down, then forget the state (PKI, etcd data)
#   cluster.sh env       print the environment to use the cluster: eval "$(tests/cluster/cluster.sh env)"
#   cluster.sh status    say which components run
#   cluster.sh logs [C]  print the log of component C (etcd, kube-apiserver, ...), or the names of all logs
#   cluster.sh kubectl … run the matching kubectl against the cluster
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache) holds the binaries keyed by version and the state folder
# (CAAS_CLUSTER_DIR, default $CAAS_CACHE_DIR/cluster).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${CAAS_CACHE_DIR:-$REPO/.cache}"
STATE_DIR="${CAAS_CLUSTER_DIR:-$CACHE_DIR/cluster}"
PKI="$STATE_DIR/pki"
LOGS="$STATE_DIR/logs"
PIDS="$STATE_DIR/pids"
KUBECONFIG_ADMIN="$STATE_DIR/admin.kubeconfig"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

die() { echo "cluster: $*" >&2; exit 1; }
say() { echo "cluster: $*" >&2; }

# The version a go.mod in this folder pins for a module.
pinned() { awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$HERE/$1/go.mod"; }

K8S_VERSION="$(pinned kubernetes k8s.io/kubernetes)"
ETCD_VERSION="$(pinned etcd go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(pinned kwok sigs.k8s.io/kwok)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$KWOK_VERSION" ]] || die "cannot read the pinned versions from $HERE/*/go.mod"
GO_VERSION="$(go env GOVERSION 2>/dev/null || echo none)"
BIN_K8S="$CACHE_DIR/bin/kubernetes-$K8S_VERSION-$GO_VERSION"
BIN_ETCD="$CACHE_DIR/bin/etcd-$ETCD_VERSION-$GO_VERSION"
BIN_KWOK="$CACHE_DIR/bin/kwok-$KWOK_VERSION-$GO_VERSION"

binary() {
  case "$1" in
    etcd) echo "$BIN_ETCD/etcd" ;;
    kwok) echo "$BIN_KWOK/kwok" ;;
    *) echo "$BIN_K8S/$1" ;;
  esac
}

# --- build -----------------------------------------------------------------------------------------------------------

# go_build MODULE_DIR OUT_DIR PACKAGE NAME [LDFLAGS]: one binary, with a log that a failure points at.
go_build() {
  local module="$1" out="$2" package="$3" name="$4" ldflags="${5:-}"
  [[ -x "$out/$name" ]] && return 0
  command -v go >/dev/null || die "building $name needs Go (https://go.dev/dl), which is not on PATH"
  mkdir -p "$out" "$CACHE_DIR/build-logs"
  local log="$CACHE_DIR/build-logs/$name.log" started=$SECONDS
  say "building $name from $package (log: $log)"
  if ! (cd "$HERE/$module" && go build -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$package") >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "building $name failed; its log is $log"
  fi
  mv "$out/$name.tmp" "$out/$name"
  say "built $name in $((SECONDS - started))s"
}

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

cmd_build() {
  go_build etcd "$BIN_ETCD" go.etcd.io/etcd/server/v3 etcd \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    go_build kubernetes "$BIN_K8S" "k8s.io/kubernetes/cmd/$c" "$c" "$(k8s_ldflags)"
  done
  go_build kwok "$BIN_KWOK" sigs.k8s.io/kwok/cmd/kwok kwok
  if [[ ! -s "$BIN_KWOK/stages.yaml" ]]; then
    # kwok's own "fast" stages: nodes turn Ready and keep their lease, pods turn Running and Ready at once.
    local stages
    stages="$(cd "$HERE/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage" || die "cannot find kwok's stages"
    for f in "$stages"/node/fast/node-initialize.yaml "$stages"/node/heartbeat-with-lease/*.yaml "$stages"/pod/fast/pod-*.yaml; do
      echo "---"
      cat "$f"
    done >"$BIN_KWOK/stages.yaml.tmp"
    mv "$BIN_KWOK/stages.yaml.tmp" "$BIN_KWOK/stages.yaml"
  fi
}

# --- PKI -------------------------------------------------------------------------------------------------------------

# cert NAME SUBJECT [SAN]: a key and a certificate signed by the cluster CA.
cert() {
  local name="$1" subject="$2" san="${3:-}" ext="$PKI/$1.ext"
  [[ -s "$PKI/$name.crt" ]] && return 0
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "$san" ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"; else echo "extendedKeyUsage=clientAuth"; fi
  } >"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -s "$PKI/ca.crt" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
      -subj "/CN=caas-broker-test-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  fi
  cert apiserver "/CN=kube-apiserver" \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  cert serving "/CN=caas-local-components" "DNS:localhost,IP:127.0.0.1"
  cert front-proxy "/CN=front-proxy-client"
  cert admin "/O=system:masters/CN=caas-admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  if [[ ! -s "$PKI/sa.key" ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
}

# kubeconfig USER FILE: a kubeconfig for the apiserver with USER's client certificate.
kubeconfig() {
  local user="$1" file="$2"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: caas-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$user.crt")
    client-key-data: $(base64 -w0 <"$PKI/$user.key")
contexts:
- name: caas-local
  context: {cluster: caas-local, user: $user}
current-context: caas-local
EOF
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

# --- processes -------------------------------------------------------------------------------------------------------

# running NAME: the component's recorded process is alive and is still our binary.
running() {
  local pidfile="$PIDS/$1.pid" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ -d "/proc/$pid" ]] || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(binary "$1")"* ]]
}

start() {
  local name="$1"
  shift
  running "$name" && return 0
  mkdir -p "$LOGS" "$PIDS"
  # fd 9 holds the state lock: the long-running child must not inherit it.
  setsid "$(binary "$name")" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name.pid"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Picks free loopback ports for a cold start and records them, so env and kubeconfigs agree.
choose_ports() {
  local names=(ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT) taken=" " name port
  : >"$STATE_DIR/ports.env.tmp"
  for name in "${names[@]}"; do
    while :; do
      port=$((20000 + RANDOM % 30000))
      [[ "$taken" != *" $port "* ]] && port_free "$port" && break
    done
    taken+="$port "
    echo "$name=$port" >>"$STATE_DIR/ports.env.tmp"
  done
  mv "$STATE_DIR/ports.env.tmp" "$STATE_DIR/ports.env"
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds, or fails naming WHAT and its log.
wait_for() {
  local what="$1" limit="$2" log="$3" deadline=$((SECONDS + $2))
  shift 3
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      [[ -f "$log" ]] && tail -n 15 "$log" >&2
      die "$what did not come up within ${limit}s; its log is $log"
    fi
    sleep 0.5
  done
}

alive_or_die() {
  running "$1" || { tail -n 15 "$LOGS/$1.log" >&2 2>/dev/null; die "$1 exited; its log is $LOGS/$1.log"; }
}

healthy() { alive_or_die "$1"; curl -fsS --max-time 2 --cacert "$PKI/ca.crt" "https://127.0.0.1:$2/healthz"; }

api_ready() {
  alive_or_die kube-apiserver
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz"
}

kctl() { "$BIN_K8S/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# Two simulated nodes; kwok manages nodes with its annotation and makes them and their pods Ready.
nodes_manifest() {
  local i
  for i in 1 2; do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
spec: {}
status:
  allocatable: {cpu: "32", memory: 128Gi, pods: "110", nvidia.com/gpu: "4", ephemeral-storage: 500Gi}
  capacity: {cpu: "32", memory: 128Gi, pods: "110", nvidia.com/gpu: "4", ephemeral-storage: 500Gi}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: $K8S_VERSION}
EOF
  done
}

nodes_ready() {
  alive_or_die kwok
  [[ "$(kctl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" == 2 ]]
}

system_namespaces() { kctl get namespace default kube-system kube-public kube-node-lease; }
default_service_account() { kctl get serviceaccount default -n default; }

cmd_up() {
  local started=$SECONDS
  cmd_build
  mkdir -p "$STATE_DIR" "$LOGS" "$PIDS"
  exec 9>"$STATE_DIR/lock"
  flock 9
  if running kube-apiserver && [[ -s "$STATE_DIR/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$STATE_DIR/ports.env"
  else
    cmd_down_locked quiet
    choose_ports
    # shellcheck source=/dev/null
    source "$STATE_DIR/ports.env"
  fi
  make_pki
  kubeconfig admin "$KUBECONFIG_ADMIN"
  kubeconfig controller-manager "$STATE_DIR/controller-manager.kubeconfig"
  kubeconfig scheduler "$STATE_DIR/scheduler.kubeconfig"

  start etcd --name=caas-local --data-dir="$STATE_DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="caas-local=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level=warn
  wait_for etcd 30 "$LOGS/etcd.log" etcd_healthy

  start kube-apiserver --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=false \
    --requestheader-client-ca-file="$PKI/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy.crt" --proxy-client-key-file="$PKI/front-proxy.key" \
    --endpoint-reconciler-type=none --profiling=false --v=1 \
    --service-account-max-token-expiration=168h --service-account-extend-token-expiration=false
  wait_for kube-apiserver 120 "$LOGS/kube-apiserver.log" api_ready

  start kube-controller-manager --kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' --profiling=false --v=1
  start kube-scheduler --kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE_DIR/scheduler.kubeconfig" --authorization-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false --profiling=false --v=1 \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key"
  start kwok --kubeconfig="$KUBECONFIG_ADMIN" --config="$BIN_KWOK/stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --cidr=10.244.0.0/16 --server-address="127.0.0.1:$KWOK_PORT" --v=1

  wait_for kube-controller-manager 60 "$LOGS/kube-controller-manager.log" healthy kube-controller-manager "$KCM_PORT"
  wait_for kube-scheduler 60 "$LOGS/kube-scheduler.log" healthy kube-scheduler "$SCHED_PORT"
  wait_for "the system namespaces" 60 "$LOGS/kube-apiserver.log" system_namespaces
  nodes_manifest | kctl apply -f - >/dev/null
  wait_for "the kwok nodes" 60 "$LOGS/kwok.log" nodes_ready
  wait_for "the default ServiceAccount" 60 "$LOGS/kube-controller-manager.log" default_service_account
  say "up in $((SECONDS - started))s: Kubernetes $K8S_VERSION at https://127.0.0.1:$API_PORT (KUBECONFIG=$KUBECONFIG_ADMIN)"
}

etcd_healthy() { alive_or_die etcd; curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

cmd_down_locked() {
  local name pid i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    name="${COMPONENTS[$i]}"
    if running "$name"; then
      pid="$(cat "$PIDS/$name.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do [[ -d "/proc/$pid" ]] || break; sleep 0.1; done
      [[ -d "/proc/$pid" ]] && kill -9 "$pid" 2>/dev/null || true
      [[ "${1:-}" == quiet ]] || say "stopped $name ($pid)"
    fi
    rm -f "$PIDS/$name.pid"
  done
}

cmd_down() {
  [[ -d "$STATE_DIR" ]] || return 0
  exec 9>"$STATE_DIR/lock"
  flock 9
  cmd_down_locked
}

cmd_reset() {
  cmd_down
  rm -rf "$STATE_DIR"
  say "state removed"
}

cmd_env() {
  [[ -s "$KUBECONFIG_ADMIN" ]] || die "no cluster yet: run '$0 up'"
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "export PATH=$BIN_K8S:\$PATH"
}

cmd_status() {
  local name
  for name in "${COMPONENTS[@]}"; do
    if running "$name"; then echo "$name running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name stopped"; fi
  done
}

cmd_logs() {
  if [[ -z "${1:-}" ]]; then ls "$LOGS"/*.log "$CACHE_DIR"/build-logs/*.log 2>/dev/null; return; fi
  local log="$LOGS/$1.log"
  [[ -f "$log" ]] || log="$CACHE_DIR/build-logs/$1.log"
  [[ -f "$log" ]] || die "no log for '$1'; known: ${COMPONENTS[*]}"
  cat "$log"
}

verb="${1:-}"
shift || true
case "$verb" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  reset) cmd_reset ;;
  env) cmd_env ;;
  status) cmd_status ;;
  logs) cmd_logs "$@" ;;
  kubectl) kctl "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
