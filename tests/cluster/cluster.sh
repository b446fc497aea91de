#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for development and tests.
#
# etcd, kube-apiserver, kube-controller-manager and kube-scheduler are built from their official Go modules (the
# versions are pinned by the go.mod files beside this script), kwok simulates two nodes so pods are scheduled and turn
# Running and Ready, and metrics-server serves the resource metrics API (metrics.k8s.io) through the apiserver's
# aggregation layer, from the kubelet of the real node (real-node.sh) when one runs: kwok's nodes have no kubelet, so
# their pods have no metrics. Everything lives under one state folder; nothing outside it is touched.
#
#   cluster.sh build     build the binaries that are not cached yet (needs the Go module proxy the first time)
#   cluster.sh up        build if needed, then start everything and install the tenant guard as an operator does
#                        (manifests/namespace.yaml, manifests/tenant-guard.yaml); idempotent, and applies the guard
#                        to a cluster already running too; waits until the cluster is usable and the guard in force
#   cluster.sh down      stop the processes this script started (by pid), keep the state
#   cluster.sh reset     down, then forget the state (PKI, etcd data)
#   cluster.sh env       print the environment to use the cluster: eval "$(tests/cluster/cluster.sh env)"
#   cluster.sh status    say which components run
#   cluster.sh logs [C]  print the log of component C (etcd, kube-apiserver, ...), or the names of all logs
#   cluster.sh kubectl … run the matching kubectl against the cluster
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache) holds the binaries keyed by version and the state folder
# (CAAS_CLUSTER_DIR, default $CAAS_CACHE_DIR/cluster; give each experiment its own, ports are chosen at random).
#
# Needs Go (only to build), openssl, curl, flock and setsid: when one of the last four is missing it is installed with
# apt-get if this runs as root, otherwise the script stops naming the Debian packages to install.
#
# Every way this script stops says why on stderr, naming the component and its log.
#
# Test hook: CAAS_CLUSTER_WRAPPER="COMMAND [ARGS]" is put in front of every component's binary (COMMAND receives the
# binary and its arguments and must exec it). tests/cluster_script.rs uses it to delay each exec and to make one
# component die at start. Not for normal use.

# The whole script is one { ... } block that bash parses before it runs any of it, so that editing the script while
# a 10-minute build runs (a git checkout, a pull) cannot make the running copy read garbage. (shellcheck cannot see
# that the probes and traps inside it are called.)
# shellcheck disable=SC2317
{
SCRIPT_NAME=cluster
WHAT_STARTS="the cluster"
# Shell options, HERE, REPO, CACHE_DIR, messages, traps, and the process, build and certificate logic cf-api.sh shares.
# shellcheck source=tests/lib/components.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/components.sh"
STATE_DIR="${CAAS_CLUSTER_DIR:-$CACHE_DIR/cluster}"
PKI="$STATE_DIR/pki"
CA_DIR="$PKI"
SERVER_KEY_USAGE="serverAuth,clientAuth"
LOGS="$STATE_DIR/logs"
PIDS="$STATE_DIR/pids"
KUBECONFIG_ADMIN="$STATE_DIR/admin.kubeconfig"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server)

# require_tools: the commands this script runs (require_commands installs what is missing, or names it).
require_tools() { require_commands openssl:openssl curl:curl flock:util-linux setsid:util-linux base64:coreutils awk:mawk; }

K8S_VERSION="$(pinned kubernetes k8s.io/kubernetes)"
ETCD_VERSION="$(pinned etcd go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(pinned kwok sigs.k8s.io/kwok)"
METRICS_SERVER_VERSION="$(pinned metrics-server sigs.k8s.io/metrics-server)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$KWOK_VERSION" && -n "$METRICS_SERVER_VERSION" ]] || die "cannot read the pinned versions from $HERE/*/go.mod"
GO_VERSION="$(go env GOVERSION 2>/dev/null || echo none)"
BIN_K8S="$CACHE_DIR/bin/kubernetes-$K8S_VERSION-$GO_VERSION"
BIN_ETCD="$CACHE_DIR/bin/etcd-$ETCD_VERSION-$GO_VERSION"
BIN_KWOK="$CACHE_DIR/bin/kwok-$KWOK_VERSION-$GO_VERSION"
BIN_METRICS="$CACHE_DIR/bin/metrics-server-$METRICS_SERVER_VERSION-$GO_VERSION"

binary() {
  case "$1" in
    etcd) echo "$BIN_ETCD/etcd" ;;
    kwok) echo "$BIN_KWOK/kwok" ;;
    metrics-server) echo "$BIN_METRICS/metrics-server" ;;
    *) echo "$BIN_K8S/$1" ;;
  esac
}

# --- build -----------------------------------------------------------------------------------------------------------

# What cmd_build would build: the binaries (and kwok's stages file) that are not cached yet.
missing_binaries() {
  local c
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok metrics-server; do
    [[ -x "$(binary "$c")" ]] || echo "$c"
  done
  [[ -s "$BIN_KWOK/stages.yaml" ]] || echo "kwok-stages.yaml"
}

cmd_build() {
  local missing started=$SECONDS
  missing="$(missing_binaries)"
  [[ -z "$missing" ]] && return 0
  # One build at a time per cache (two `up` on different state folders share the binaries).
  take_build_lock || missing="$(missing_binaries)"
  if [[ -n "$missing" ]]; then
    say "building ${missing//$'\n'/ } with $GO_VERSION (all seven take about 10 min on 2 cores from an empty Go build cache; logs in $CACHE_DIR/build-logs)"
    go_build etcd "$BIN_ETCD" go.etcd.io/etcd/server/v3 etcd \
      "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
    local c
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      go_build kubernetes "$BIN_K8S" "k8s.io/kubernetes/cmd/$c" "$c" "$(k8s_ldflags)"
    done
    go_build kwok "$BIN_KWOK" sigs.k8s.io/kwok/cmd/kwok kwok
    go_build metrics-server "$BIN_METRICS" sigs.k8s.io/metrics-server/cmd/metrics-server metrics-server \
      "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
    if [[ ! -s "$BIN_KWOK/stages.yaml" ]]; then
      # kwok's own "fast" stages: nodes turn Ready and keep their lease, pods turn Running and Ready at once.
      local stages f
      stages="$(cd "$HERE/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)" || die "cannot find kwok's module (go list -m sigs.k8s.io/kwok in $HERE/kwok)"
      stages="$stages/kustomize/stage"
      for f in "$stages"/node/fast/node-initialize.yaml "$stages"/node/heartbeat-with-lease/*.yaml "$stages"/pod/fast/pod-*.yaml; do
        [[ -s "$f" ]] || die "kwok's stage file $f is missing"
        echo "---"
        cat "$f"
      done >"$BIN_KWOK/stages.yaml.tmp"
      mv "$BIN_KWOK/stages.yaml.tmp" "$BIN_KWOK/stages.yaml"
    fi
    say "control plane built in $((SECONDS - started)) s"
  fi
  release_build_lock
}

# --- PKI -------------------------------------------------------------------------------------------------------------

make_pki() {
  new_ca "the cluster CA" caas-broker-test-ca
  cert apiserver "/CN=kube-apiserver" \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  cert serving "/CN=caas-local-components" "DNS:localhost,IP:127.0.0.1"
  cert front-proxy "/CN=front-proxy-client"
  # The apiserver's identity towards kubelets (kubectl logs, exec, port-forward on a real node: real-node.sh).
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
  cert admin "/O=system:masters/CN=caas-admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  # metrics-server's serving certificate is checked by the aggregator as <service>.<namespace>.svc; the same key is its
  # client identity towards the apiserver and the kubelet.
  cert metrics-server "/CN=system:metrics-server" "DNS:metrics-server.kube-system.svc,DNS:localhost,IP:127.0.0.1"
  if [[ ! -s "$PKI/sa.key" ]]; then
    quietly "the service-account signing key" openssl genrsa -out "$PKI/sa.key" 2048
    quietly "the service-account public key" openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
  fi
}

# kubeconfig USER FILE: a kubeconfig for the apiserver with USER's client certificate.
kubeconfig() {
  write_kubeconfig "$2" caas-local "https://127.0.0.1:$API_PORT" "$PKI/ca.crt" "$1" "$PKI/$1.crt" "$PKI/$1.key"
}

# --- processes -------------------------------------------------------------------------------------------------------

# The test hook: a command put in front of every component's binary (see the header).
read -ra WRAPPER <<<"${CAAS_CLUSTER_WRAPPER:-}"
# launch BIN ARGS...: what `start` runs in the background.
launch() { exec setsid "${WRAPPER[@]}" "$@"; }

healthy() { curl -fsS --max-time 2 --cacert "$PKI/ca.crt" "https://127.0.0.1:$1/healthz"; }

api_ready() {
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
  [[ "$(kctl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" == 2 ]]
}

system_namespaces() { kctl get namespace default kube-system kube-public kube-node-lease; }
default_service_account() { kctl get serviceaccount default -n default; }

cmd_up() {
  local started=$SECONDS
  require_tools
  cmd_build
  lock_state
  if running kube-apiserver && [[ -s "$STATE_DIR/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$STATE_DIR/ports.env"
  else
    cmd_down_locked quiet
    # Started again after `down`, the cluster keeps its address (as a restarted control plane does, and as clients
    # holding its kubeconfig expect) while its ports are still free; otherwise it gets new ones.
    if ! ports_still_free ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT METRICS_PORT; then
      choose_ports ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT METRICS_PORT
    fi
    # shellcheck source=/dev/null
    source "$STATE_DIR/ports.env"
  fi
  # A cluster started by an older copy of this script has no port for metrics-server yet.
  if [[ -z "${METRICS_PORT:-}" ]]; then
    add_port METRICS_PORT
    # shellcheck source=/dev/null
    source "$STATE_DIR/ports.env"
  fi
  make_pki
  kubeconfig admin "$KUBECONFIG_ADMIN"
  kubeconfig controller-manager "$STATE_DIR/controller-manager.kubeconfig"
  kubeconfig scheduler "$STATE_DIR/scheduler.kubeconfig"
  kubeconfig metrics-server "$STATE_DIR/metrics-server.kubeconfig"

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
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
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
    --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' --profiling=false --v=1 \
    --node-monitor-grace-period=10m
  # (The simulated nodes renew their leases from kwok, which misses some under load: without the long grace period the
  # node controller marks them NotReady, their pods turn unready and get evicted in the middle of a test.)
  start kube-scheduler --kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE_DIR/scheduler.kubeconfig" --authorization-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false --profiling=false --v=1 \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key"
  start kwok --kubeconfig="$KUBECONFIG_ADMIN" --config="$BIN_KWOK/stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --cidr=10.244.0.0/16 --server-address="127.0.0.1:$KWOK_PORT" --v=1

  wait_for kube-controller-manager 60 "$LOGS/kube-controller-manager.log" healthy "$KCM_PORT"
  wait_for kube-scheduler 60 "$LOGS/kube-scheduler.log" healthy "$SCHED_PORT"
  wait_for "the system namespaces" 60 "$LOGS/kube-apiserver.log" system_namespaces
  quietly "creating the kwok nodes (kubectl apply)" kctl apply -f <(nodes_manifest)
  wait_for "the kwok nodes" 60 "$LOGS/kwok.log" nodes_ready
  wait_for "the default ServiceAccount" 60 "$LOGS/kube-controller-manager.log" default_service_account
  apply_tenant_guard
  start_metrics_server
  say "up in $((SECONDS - started))s: Kubernetes $K8S_VERSION at https://127.0.0.1:$API_PORT (KUBECONFIG=$KUBECONFIG_ADMIN)"
}

# The tenant guard, exactly as an operator installs it (docs/operations.md): the broker's namespaces, then its
# ValidatingAdmissionPolicies. Applied at every `up` (server-side, idempotent) so that a cluster already running gets
# the current policies. Its own field manager, forcing conflicts: this script's copy of the manifests wins.
apply_tenant_guard() {
  quietly "installing the tenant guard (kubectl apply)" kctl apply --server-side --force-conflicts \
    --field-manager=caas-broker-cluster-sh -f "$REPO/manifests/namespace.yaml" -f "$REPO/manifests/tenant-guard.yaml"
  wait_for "the tenant guard" 60 "$LOGS/kube-apiserver.log" guard_in_force
}

# The guard refuses, as a server-side dry run: a token Secret that never expires and a Service with an external IP in
# the identity namespace (labelled as tenant namespaces are). A new policy takes a moment to be in force.
guard_in_force() {
  local out
  out="$(kctl create --dry-run=server -f - 2>&1 <<'EOF'
apiVersion: v1
kind: Secret
metadata: {name: guard-probe, namespace: caas-broker-identities, annotations: {kubernetes.io/service-account.name: default}}
type: kubernetes.io/service-account-token
EOF
)" && return 1
  grep -q "never expire" <<<"$out" || { echo "$out"; return 1; }
  out="$(kctl create --dry-run=server -f - 2>&1 <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: guard-probe, namespace: caas-broker-identities}
spec: {ports: [{port: 80}], externalIPs: [10.96.0.1]}
EOF
)" && return 1
  grep -q "external IPs" <<<"$out" || { echo "$out"; return 1; }
}

# ports_still_free NAME...: whether STATE_DIR/ports.env records a port for each NAME and every one is free.
ports_still_free() {
  local name port
  [[ -s "$STATE_DIR/ports.env" ]] || return 1
  for name in "$@"; do
    port="$(sed -n "s/^$name=\([0-9]*\)\$/\1/p" "$STATE_DIR/ports.env")"
    [[ -n "$port" ]] && port_free "$port" || return 1
  done
}

# add_port NAME: a free loopback port for NAME, added to STATE_DIR/ports.env (see choose_ports).
add_port() {
  local port
  while :; do
    port="$(random_port)"
    ! grep -q "=$port\$" "$STATE_DIR/ports.env" && port_free "$port" && break
  done
  echo "$1=$port" >>"$STATE_DIR/ports.env"
}

# --- metrics-server --------------------------------------------------------------------------------------------------

# What an operator installs with metrics-server (its own components.yaml, adapted to a process on the host): its
# identity's rights (read nodes and pods, scrape kubelets, delegate authentication and authorization to the apiserver),
# the aggregated role that gives view, edit and admin the metrics of their namespace, and the APIService that puts it
# behind the apiserver. The Service is an ExternalName for loopback: the aggregator resolves it to 127.0.0.1 and
# METRICS_PORT, and checks the serving certificate against the cluster CA as metrics-server.kube-system.svc.
metrics_manifest() {
  cat <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:metrics-server"}
rules:
- {apiGroups: [""], resources: [nodes/metrics], verbs: [get]}
- {apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: "system:aggregated-metrics-reader"
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
rules:
- {apiGroups: [metrics.k8s.io], resources: [pods, nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:metrics-server"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:metrics-server"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "metrics-server:system:auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-server-auth-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec: {type: ExternalName, externalName: 127.0.0.1}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {namespace: kube-system, name: metrics-server, port: $METRICS_PORT}
  caBundle: $(base64 -w0 <"$PKI/ca.crt")
EOF
}

# start_metrics_server: its rights first (it reads the apiserver's authentication settings as it starts), then the
# process, then the APIService; waits until the apiserver finds it available. Only the real node is scraped: kwok's
# simulated nodes have no kubelet.
start_metrics_server() {
  quietly "installing metrics-server's rights and APIService (kubectl apply)" kctl apply --server-side --force-conflicts \
    --field-manager=caas-broker-cluster-sh -f <(metrics_manifest)
  start metrics-server --kubeconfig="$STATE_DIR/metrics-server.kubeconfig" \
    --authentication-kubeconfig="$STATE_DIR/metrics-server.kubeconfig" \
    --authorization-kubeconfig="$STATE_DIR/metrics-server.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$METRICS_PORT" \
    --tls-cert-file="$PKI/metrics-server.crt" --tls-private-key-file="$PKI/metrics-server.key" \
    --requestheader-client-ca-file="$PKI/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --kubelet-use-node-status-port --node-selector='type!=kwok' --metric-resolution=15s --profiling=false --v=1
  wait_for metrics-server 60 "$LOGS/metrics-server.log" metrics_live
  wait_for "the metrics API (APIService v1beta1.metrics.k8s.io)" 60 "$LOGS/metrics-server.log" metrics_api_available
}

metrics_live() { curl -fsS --max-time 2 --cacert "$PKI/ca.crt" "https://127.0.0.1:$METRICS_PORT/livez"; }

metrics_api_available() {
  [[ "$(kctl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')" == True ]] &&
    kctl get --raw /apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods
}

etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

cmd_down() {
  [[ -d "$STATE_DIR" ]] || return 0
  require_tools
  lock_state
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

cmd_status() { components_status; }


verb="${1:-}"
shift || true
case "$verb" in
  build) require_tools; cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  reset) cmd_reset ;;
  env) cmd_env ;;
  status) cmd_status ;;
  logs) show_logs "$@" ;;
  kubectl) kctl "$@" ;;
  *) sed -n '2,/^$/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
exit
}
