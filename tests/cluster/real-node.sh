#!/usr/bin/env bash
# One real Kubernetes node for the local control plane, on this machine: tenant pods really run (containerd and runc)
# and NetworkPolicy is really enforced (kube-router's firewall), next to cluster.sh's two simulated kwok nodes.
#
#   real-node.sh build       build the node's binaries that are not cached yet (kubelet, kube-proxy, kube-router,
#                            local-path-provisioner; needs the Go module proxy the first time)
#   real-node.sh up          cluster.sh up, then join the node (idempotent; waits until the node is Ready, the images
#                            are imported and the StorageClass is served)
#   real-node.sh down        delete the node's pods, stop its processes, delete the Node object and the StorageClass,
#                            and give the machine back as it was before `up` (see below); keeps images and volumes
#   real-node.sh reset       down, then forget the state (certificates, images, volumes)
#   real-node.sh env         print the environment a test needs: eval "$(tests/cluster/real-node.sh env)"
#   real-node.sh status      say which components run, whether the node is Ready, what images it has
#   real-node.sh logs [C]    print the log of component C (kubelet, containerd, ...), or the names of all logs
#   real-node.sh images [N]  build and import the images named N (images/build.sh --list), or list the imported ones
#
# The node: Node `caas-real-node`, labels type=real and caas.dev/real-node=true, taint caas.dev/real-node=true:NoSchedule
# (the kwok-based tests never land on it; a pod that wants it has nodeSelector caas.dev/real-node: "true" and tolerates
# the taint), node IP 10.88.0.1 on the bridge caas-node0 (pods get 10.88.0.0/16), StorageClass `local-path` (the
# default class; volumes live under the state folder, only on this node: a claim for a kwok node fails with an event).
# Images come from images/build.sh (no registry is reachable): pods use imagePullPolicy IfNotPresent or Never.
#
# What it changes on the machine, and `down` puts back: iptables and ip6tables rules and chains (KUBE-*, CNI-*) and
# the tables they created, kube-router's ipsets, the bridge, the cgroups kubepods, the sysctls the kubelet, kube-proxy
# and the bridge plugin set (recorded before `up`), mounts, network namespaces and the folders /var/lib/kubelet,
# /var/log/containers, /var/lib/cni, /run/containerd and /run/netns when `up` created them. Everything else
# (containerd's root, state and socket, the kubelet's root, CNI's configuration and addresses, the volumes, logs) is
# in the state folder. That is machine-wide state: one real node per machine, behind the lock /run/caas-real-node.lock
# (which holds the state folder of the node that owns the machine).
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache) holds the binaries keyed by version and Go version and the
# state folder (CAAS_REAL_NODE_DIR, default $CAAS_CACHE_DIR/real-node); CAAS_CLUSTER_DIR names the control plane's
# state folder as for cluster.sh; CAAS_REAL_NODE_IMAGES (default "webapp") names the images `up` imports besides
# pause and busybox, which the node itself needs (images already built are imported too).
#
# Needs root, Go (only to build) and the Debian packages containerd, runc, containernetworking-plugins, iptables,
# ipset, nftables, iproute2, conntrack, openssl, curl, util-linux and jq: a missing one is installed with apt-get.
#
# Every way this script stops says why on stderr, naming the component and its log.

# The whole script is one { ... } block that bash parses before it runs any of it (see cluster.sh).
# shellcheck disable=SC2317
{
SCRIPT_NAME=real-node
WHAT_STARTS="the real node"
# Shell options, HERE, REPO, CACHE_DIR, messages, traps, and the process, build and certificate logic.
# shellcheck source=tests/lib/components.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/components.sh"
STATE_DIR="${CAAS_REAL_NODE_DIR:-$CACHE_DIR/real-node}"
mkdir -p "$STATE_DIR" || die "cannot create the state folder $STATE_DIR (CAAS_REAL_NODE_DIR)"
STATE_DIR="$(cd "$STATE_DIR" && pwd -P)"
CLUSTER_DIR="${CAAS_CLUSTER_DIR:-$CACHE_DIR/cluster}"
CLUSTER_SH="$HERE/cluster.sh"
PKI="$STATE_DIR/pki"
CA_DIR="$CLUSTER_DIR/pki"
SERVER_KEY_USAGE="serverAuth"
LOGS="$STATE_DIR/logs"
PIDS="$STATE_DIR/pids"
KUBECONFIG_ADMIN="$CLUSTER_DIR/admin.kubeconfig"
COMPONENTS=(containerd kubelet kube-proxy kube-router local-path-provisioner)

NODE=caas-real-node
NODE_LABELS=(type=real caas.dev/real-node=true)
TAINT_KEY=caas.dev/real-node
BRIDGE=caas-node0
NODE_IP=10.88.0.1
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/16
STORAGE_CLASS=local-path
PROVISIONER=rancher.io/local-path
STORAGE_NAMESPACE=local-path-storage
MACHINE_LOCK=/run/caas-real-node.lock

CONTAINERD_DIR="$STATE_DIR/containerd"
CONTAINERD_SOCK="$CONTAINERD_DIR/containerd.sock"
CNI_DIR="$STATE_DIR/cni"
KUBELET_DIR="$STATE_DIR/kubelet"
STORAGE_DIR="$STATE_DIR/volumes"
BASELINE="$STATE_DIR/machine"
# What `down` did, step by step, with the output of every cleanup command.
DOWN_LOG="$LOGS/down.log"

# Machine-wide folders the node's components create whatever they are told (hard-coded paths: the kubelet's device
# plugin socket and log links, libcni's cache, containerd's shim sockets, network namespaces); `down` removes the
# ones that did not exist before `up`.
MACHINE_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd /run/netns /run/xtables.lock)
# The sysctls the kubelet (kernel.*, vm.*), kube-proxy (route_localnet, conntrack) and the bridge plugin
# (forwarding) may set; `down` writes back the values recorded before `up`.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding
  net.ipv4.conf.all.route_localnet net.ipv4.conf.default.route_localnet net.ipv6.conf.all.forwarding
  net.ipv6.conf.default.forwarding net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_be_liberal
  net.netfilter.nf_conntrack_udp_timeout net.netfilter.nf_conntrack_udp_timeout_stream)

require_tools() {
  ((EUID == 0)) || die "the real node needs root (containerd, the kubelet, iptables and the bridge change the machine)"
  require_commands openssl:openssl curl:curl flock:util-linux setsid:util-linux base64:coreutils awk:mawk jq:jq \
    ip:iproute2 containerd:containerd ctr:containerd runc:runc iptables:iptables ip6tables:iptables ipset:ipset \
    nft:nftables conntrack:conntrack /usr/lib/cni/bridge:containernetworking-plugins
  local plugin
  for plugin in bridge host-local loopback portmap; do
    [[ -x /usr/lib/cni/$plugin ]] || die "the CNI plugin /usr/lib/cni/$plugin is missing; reinstall the Debian package containernetworking-plugins"
  done
}

K8S_VERSION="$(pinned kubernetes k8s.io/kubernetes)"
KUBE_ROUTER_VERSION="$(pinned kube-router github.com/cloudnativelabs/kube-router/v2)"
LPP_VERSION="$(pinned local-path-provisioner github.com/rancher/local-path-provisioner)"
[[ -n "$K8S_VERSION" && -n "$KUBE_ROUTER_VERSION" && -n "$LPP_VERSION" ]] ||
  die "cannot read the pinned versions from $HERE/{kubernetes,kube-router,local-path-provisioner}/go.mod"
GO_VERSION="$(go env GOVERSION 2>/dev/null || echo none)"
BIN_K8S="$CACHE_DIR/bin/kubernetes-$K8S_VERSION-$GO_VERSION"
BIN_KUBE_ROUTER="$CACHE_DIR/bin/kube-router-$KUBE_ROUTER_VERSION-$GO_VERSION"
BIN_LPP="$CACHE_DIR/bin/local-path-provisioner-$LPP_VERSION-$GO_VERSION"

binary() {
  case "$1" in
    containerd) command -v containerd || echo /usr/bin/containerd ;;
    kube-router) echo "$BIN_KUBE_ROUTER/kube-router" ;;
    local-path-provisioner) echo "$BIN_LPP/local-path-provisioner" ;;
    *) echo "$BIN_K8S/$1" ;;
  esac
}

# --- build -----------------------------------------------------------------------------------------------------------

missing_binaries() {
  local c
  for c in kubelet kube-proxy kube-router local-path-provisioner; do
    [[ -x "$(binary "$c")" ]] || echo "$c"
  done
}

cmd_build() {
  local missing started=$SECONDS
  missing="$(missing_binaries)"
  [[ -z "$missing" ]] && return 0
  take_build_lock || missing="$(missing_binaries)"
  if [[ -n "$missing" ]]; then
    say "building ${missing//$'\n'/ } with $GO_VERSION (about 4 min on 2 cores when the control plane was built before; logs in $CACHE_DIR/build-logs)"
    local c
    for c in kubelet kube-proxy; do
      go_build kubernetes "$BIN_K8S" "k8s.io/kubernetes/cmd/$c" "$c" "$(k8s_ldflags)"
    done
    go_build kube-router "$BIN_KUBE_ROUTER" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router kube-router \
      "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=1970-01-01T00:00:00Z"
    go_build local-path-provisioner "$BIN_LPP" github.com/rancher/local-path-provisioner local-path-provisioner \
      "-X main.VERSION=$LPP_VERSION"
    say "node binaries built in $((SECONDS - started)) s"
  fi
  release_build_lock
}

# --- images ----------------------------------------------------------------------------------------------------------

declare -A IMAGE_REF=() IMAGE_ARCHIVE=()
UP_IMAGES=()
# image_list: reads images/build.sh --list (NAME REFERENCE ARCHIVE) into IMAGE_REF and IMAGE_ARCHIVE.
image_list() {
  ((${#IMAGE_REF[@]})) && return 0
  local list name ref archive
  list="$(bash "$REPO/images/build.sh" --list 2>&1)" || { echo "$list" >&2; die "images/build.sh --list failed (its message is above)"; }
  while read -r name ref archive; do
    [[ -n "$name" ]] || continue
    IMAGE_REF[$name]="$ref"
    IMAGE_ARCHIVE[$name]="$archive"
  done <<<"$list"
  local required
  for required in pause busybox; do
    [[ -n "${IMAGE_REF[$required]:-}" ]] || die "images/build.sh --list names no '$required' image, which the node needs (it said: $list)"
  done
}

ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# archive_digest FILE: the digest of the one manifest of an OCI archive.
archive_digest() {
  tar -xOf "$1" index.json | jq -er '.manifests[0].digest' || die "cannot read the manifest digest of $1 (an OCI archive from images/build.sh)"
}

# imported NAME: the image's reference points at the digest of its archive.
imported() {
  local want have
  [[ -s "${IMAGE_ARCHIVE[$1]}" ]] || return 1
  want="$(archive_digest "${IMAGE_ARCHIVE[$1]}")"
  have="$(ctr_ images ls "name==${IMAGE_REF[$1]}" | awk 'NR > 1 { print $3 }')"
  [[ "$have" == "$want" ]]
}

# build_images NAME...: images/build.sh builds them (it keeps those whose inputs did not change).
build_images() {
  local name
  image_list
  for name in "$@"; do
    [[ -n "${IMAGE_REF[$name]:-}" ]] || die "unknown image '$name'; images/build.sh --list names: ${!IMAGE_REF[*]}"
  done
  bash "$REPO/images/build.sh" "$@" 7>&- 9>&- || die "images/build.sh $* failed (its message is above)"
}

# import_images NAME...: imports each image whose digest containerd does not have yet under its reference.
import_images() {
  local name log="$LOGS/images.log" started
  for name in "$@"; do
    imported "$name" && continue
    started=$SECONDS
    echo "----- $(date -u +%FT%TZ) importing ${IMAGE_ARCHIVE[$name]}" >>"$log"
    if ! ctr_ images import "${IMAGE_ARCHIVE[$name]}" >>"$log" 2>&1; then
      tail_log "$log"
      die "importing the image $name (${IMAGE_ARCHIVE[$name]}) into containerd failed; the log is $log"
    fi
    imported "$name" || die "containerd does not show ${IMAGE_REF[$name]} with the digest of ${IMAGE_ARCHIVE[$name]} after the import; the log is $log"
    say "imported $name as ${IMAGE_REF[$name]} in $((SECONDS - started)) s"
  done
}

# up_images: what `up` builds and imports: pause and busybox (the node needs them) and CAAS_REAL_NODE_IMAGES; every
# other image whose archive is already built is imported as it is.
up_images() {
  local wanted=(pause busybox) built=() name extra
  read -ra extra <<<"${CAAS_REAL_NODE_IMAGES-webapp}"
  image_list
  for name in "${extra[@]}"; do
    [[ " ${wanted[*]} " == *" $name "* ]] || wanted+=("$name")
  done
  build_images "${wanted[@]}"
  for name in "${!IMAGE_REF[@]}"; do
    [[ " ${wanted[*]} " != *" $name "* && -s "${IMAGE_ARCHIVE[$name]}" ]] && built+=("$name")
  done
  UP_IMAGES=("${wanted[@]}" "${built[@]}")
  import_images "${UP_IMAGES[@]}"
}

# --- machine: lock, baseline, restore --------------------------------------------------------------------------------

# machine_lock: one real node per machine; a second script waits for the first. The lock file holds the state folder
# of the node that owns the machine (empty when none).
machine_lock() {
  exec 7<>"$MACHINE_LOCK"
  if ! flock -n 7; then
    say "waiting for another real-node.sh working on this machine (lock $MACHINE_LOCK)"
    flock 7
  fi
}
machine_owner() { cat "$MACHINE_LOCK" 2>/dev/null || true; }
set_machine_owner() { printf '%s' "$1" >"$MACHINE_LOCK"; }

sysctl_path() { local p="${1//./\/}"; echo "/proc/sys/$p"; }

# Pieces of machine state, one line each, as recorded before `up` and compared after `down`.
kube_chains() { { iptables-save; ip6tables-save; } 2>/dev/null | awk '/^\*/ { t = $1 } /^:(KUBE-|CNI-)/ { print t, $1 }'; }
our_ipsets() { ipset list -n 2>/dev/null | grep -E '^(inet6:)?(KUBE-|kube-router)' || true; }
nft_tables() { nft list tables 2>/dev/null || true; }
our_cgroups() { compgen -G "/sys/fs/cgroup/*/kubepods" || true; }
netns_pins() { compgen -G "/run/netns/*" || true; }

# record_baseline: what `down` restores, recorded when the machine has no real node yet.
record_baseline() {
  local key path
  rm -rf "$BASELINE"
  mkdir -p "$BASELINE"
  for key in "${SYSCTLS[@]}"; do
    path="$(sysctl_path "$key")"
    [[ -r "$path" ]] && printf '%s=%s\n' "$key" "$(cat "$path")"
  done >"$BASELINE/sysctl"
  for path in /proc/sys/net/ipv4/conf/*/forwarding; do
    key="${path#/proc/sys/}"
    printf '%s=%s\n' "${key//\//.}" "$(cat "$path")"
  done >>"$BASELINE/sysctl"
  for path in "${MACHINE_PATHS[@]}"; do
    [[ -e "$path" ]] && echo "$path"
  done >"$BASELINE/paths"
  nft_tables >"$BASELINE/nft-tables"
  our_ipsets >"$BASELINE/ipsets"
  netns_pins >"$BASELINE/netns"
  touch "$BASELINE/complete"
}

# check_machine_free: a machine without a recorded real node must not look like it has one (another kubelet,
# kube-proxy or CNI bridge would be torn down by our `down`).
check_machine_free() {
  local found=()
  [[ -z "$(kube_chains)" ]] || found+=("iptables chains KUBE-*/CNI-* ($(kube_chains | head -3 | tr '\n' ' ')...)")
  [[ -z "$(our_ipsets)" ]] || found+=("ipsets $(our_ipsets | head -3 | tr '\n' ' ')")
  [[ -z "$(our_cgroups)" ]] || found+=("cgroups $(our_cgroups | head -3 | tr '\n' ' ')")
  ! ip link show "$BRIDGE" >/dev/null 2>&1 || found+=("the bridge $BRIDGE")
  ((${#found[@]} == 0)) && return 0
  die "this machine already has Kubernetes node state that no real-node.sh recorded: ${found[*]}; another kubelet, kube-proxy or CNI may run here. Remove it (or stop what made it) before 'up'"
}

# --- PKI and kubeconfigs ---------------------------------------------------------------------------------------------

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  [[ -s "$CA_DIR/ca.crt" && -s "$CA_DIR/ca.key" ]] || die "the control plane has no CA at $CA_DIR (cluster.sh up makes it)"
  # A control plane that was reset has a new CA: the node's certificates are issued again.
  if [[ -s "$PKI/kubelet.crt" ]] && ! openssl verify -CAfile "$CA_DIR/ca.crt" "$PKI/kubelet.crt" >/dev/null 2>&1; then
    say "the control plane's CA changed (cluster.sh reset): issuing the node's certificates again"
    rm -f "$PKI"/*.crt "$PKI"/*.key "$PKI/ca.srl"
  fi
  cert kubelet "/O=system:nodes/CN=system:node:$NODE"
  cert kubelet-serving "/CN=$NODE" "DNS:$NODE,IP:$NODE_IP"
  cert kube-proxy "/CN=system:kube-proxy"
  cert kube-router "/CN=caas:kube-router"
  cert local-path-provisioner "/CN=caas:local-path-provisioner"
}

kubeconfigs() {
  local user
  for user in kubelet kube-proxy kube-router local-path-provisioner; do
    write_kubeconfig "$STATE_DIR/$user.kubeconfig" caas-local "$API_URL" "$CA_DIR/ca.crt" "$user" "$PKI/$user.crt" "$PKI/$user.key"
  done
}

kctl() { "$BIN_K8S/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# What the node's components may do, the StorageClass and the provisioner's namespace and scripts.
cluster_objects() {
  cat <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "caas:apiserver-kubelet-client"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:kubelet-api-admin"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "caas:kube-router"}
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, nodes, endpoints]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "caas:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "caas:kube-router"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "caas:kube-router"}]
---
apiVersion: v1
kind: Namespace
metadata: {name: $STORAGE_NAMESPACE}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: $STORAGE_NAMESPACE}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "caas:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [update, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "caas:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "caas:local-path-provisioner"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "caas:local-path-provisioner"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "caas:local-path-provisioner", namespace: $STORAGE_NAMESPACE}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "caas:local-path-provisioner", namespace: $STORAGE_NAMESPACE}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "caas:local-path-provisioner"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "caas:local-path-provisioner"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: $STORAGE_NAMESPACE}
data:
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $STORAGE_CLASS
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: $PROVISIONER
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
}

# --- configuration files ---------------------------------------------------------------------------------------------

containerd_config() {
  cat <<EOF
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"
# Plugins that would make folders outside the state folder or that the node does not use.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${IMAGE_REF[pause]}"
  # root here lacks CAP_SYS_RESOURCE: runc fails ("can't get final child's PID from pipe") when a container's
  # oom_score_adj would be lower than containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_DIR/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CONTAINERD_DIR/runc"
EOF
}

cni_config() {
  cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "caas-real-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$CNI_DIR/networks",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]], "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

kubelet_config() {
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 only.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTH_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CA_DIR/ca.crt}
authorization:
  mode: Webhook
registerWithTaints:
- {key: $TAINT_KEY, value: "true", effect: NoSchedule}
podLogsDirectory: $STATE_DIR/pod-logs
volumePluginDir: $STATE_DIR/volume-plugins
staticPodPath: ""
failSwapOn: false
clusterDomain: cluster.local
# Images cannot be pulled again here: never collect them; and no eviction for a shared machine's full disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
EOF
}

local_path_config() {
  cat <<EOF
{"nodePathMap": [{"node": "$NODE", "paths": ["$STORAGE_DIR"]}]}
EOF
}

helper_pod() {
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  containers:
  - name: helper-pod
    image: ${IMAGE_REF[busybox]}
    imagePullPolicy: IfNotPresent
EOF
}

# write_file FILE: stdin into FILE, replacing it only when the content changed. Returns 0 when it changed.
write_file() {
  local new
  new="$(cat)"
  [[ -f "$1" && "$(cat "$1")" == "$new" ]] && return 1
  printf '%s\n' "$new" >"$1.tmp"
  mv "$1.tmp" "$1"
}

# --- processes and probes --------------------------------------------------------------------------------------------

# launch BIN ARGS...: what `start` runs in the background; the machine lock (fd 7) is not inherited either.
launch() { exec setsid "$@" 7>&-; }


containerd_ready() { ctr --address "$CONTAINERD_SOCK" version; }
# node_ready: the running kubelet is healthy and has reported the node Ready since it started (a Ready condition
# posted by a kubelet that was killed stays Ready for the node monitor's grace period).
node_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$KUBELET_HEALTH_PORT/healthz" || return 1
  local state since
  state="$(kctl get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}')" || return 1
  since="$(stat -c %Y "/proc/$(cat "$PIDS/kubelet.pid")")" || return 1
  [[ "${state%% *}" == True ]] || { echo "Ready: ${state:-unknown}"; return 1; }
  (($(date -d "${state#* }" +%s) >= since - 1)) || { echo "the last heartbeat (${state#* }) is older than the kubelet"; return 1; }
}
kube_proxy_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$PROXY_HEALTH_PORT/healthz"; }
kube_router_ready() { iptables -S FORWARD | grep -q -- '-j KUBE-ROUTER-FORWARD'; }
provisioner_ready() { log_since_start local-path-provisioner | grep -qF "\"Started provisioner controller\" component=\"${PROVISIONER}_"; }
# log_since_start NAME: the component's log since `start` last started it.
log_since_start() { awk -v s="$SCRIPT_NAME.sh starts $1 -----" 'index($0, s) { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$LOGS/$1.log"; }
images_ready() {
  local name
  for name in "$@"; do imported "$name" || { echo "${IMAGE_REF[$name]} is not imported"; return 1; }; done
}
storage_class_ready() {
  [[ "$(kctl get storageclass "$STORAGE_CLASS" -o jsonpath='{.provisioner} {.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}')" == "$PROVISIONER true" ]]
}

# api_reachable: the control plane this node joins answers.
api_reachable() { [[ -s "$KUBECONFIG_ADMIN" ]] && kctl get --raw /readyz >/dev/null 2>&1; }

# apiserver_has_kubelet_flags: the running kube-apiserver talks to kubelets by InternalIP with a client certificate
# (a control plane started by a cluster.sh older than the real node does not).
apiserver_has_kubelet_flags() {
  local pid cmdline
  pid="$(cat "$CLUSTER_DIR/pids/kube-apiserver.pid" 2>/dev/null)" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *--kubelet-client-certificate=* && "$cmdline" == *--kubelet-preferred-address-types=InternalIP* ]]
}

cluster_up() {
  bash "$CLUSTER_SH" up 7>&- 9>&- || die "the control plane did not come up (cluster.sh up; its message is above)"
}

# --- up --------------------------------------------------------------------------------------------------------------

make_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    quietly "creating the bridge $BRIDGE" ip link add "$BRIDGE" type bridge
  fi
  if ! ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/"; then
    quietly "giving $BRIDGE the node IP $NODE_IP" ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  fi
  quietly "bringing $BRIDGE up" ip link set "$BRIDGE" up
}

cmd_up() {
  local started=$SECONDS api_url_file="$STATE_DIR/api.url" name
  require_tools
  cmd_build
  cluster_up
  machine_lock
  if ! apiserver_has_kubelet_flags; then
    say "the running kube-apiserver was started without --kubelet-client-certificate and --kubelet-preferred-address-types=InternalIP (by an older cluster.sh): restarting the control plane (cluster.sh down, then up; etcd's data is kept)"
    bash "$CLUSTER_SH" down 7>&- 9>&- || die "cluster.sh down failed (its message is above)"
    cluster_up
    apiserver_has_kubelet_flags || die "the restarted kube-apiserver still lacks --kubelet-client-certificate; see $CLUSTER_SH and its log ($CLUSTER_DIR/logs/kube-apiserver.log)"
  fi
  # shellcheck source=/dev/null
  source "$CLUSTER_DIR/ports.env"
  API_URL="https://127.0.0.1:$API_PORT"

  local owner
  owner="$(machine_owner)"
  if [[ -n "$owner" && "$owner" != "$STATE_DIR" ]]; then
    die "this machine's real node belongs to the state folder $owner; stop it first: CAAS_REAL_NODE_DIR=$owner $0 down"
  fi
  lock_state
  if [[ -z "$owner" || ! -e "$BASELINE/complete" ]]; then
    check_machine_free
    record_baseline
    set_machine_owner "$STATE_DIR"
  fi
  ((${#CONTAINERD_SOCK} < 100)) || die "the containerd socket path $CONTAINERD_SOCK is too long for a unix socket; use a shorter CAAS_REAL_NODE_DIR"
  [[ -s "$STATE_DIR/ports.env" ]] || choose_ports KUBELET_PORT KUBELET_HEALTH_PORT PROXY_HEALTH_PORT PROXY_METRICS_PORT
  # shellcheck source=/dev/null
  source "$STATE_DIR/ports.env"

  make_pki
  kubeconfigs
  # The control plane was restarted on other ports since the node's components started: they follow it.
  if [[ -s "$api_url_file" && "$(cat "$api_url_file")" != "$API_URL" ]]; then
    say "the control plane moved from $(cat "$api_url_file") to $API_URL: restarting the node's components"
    for name in local-path-provisioner kube-router kube-proxy kubelet; do stop "$name"; done
  fi
  echo "$API_URL" >"$api_url_file"
  quietly "applying the node's RBAC, namespace and StorageClass (kubectl apply)" kctl apply -f <(cluster_objects)

  image_list
  mkdir -p "$CONTAINERD_DIR" "$CNI_DIR/net.d" "$CNI_DIR/networks" "$KUBELET_DIR" "$STATE_DIR/pod-logs" \
    "$STATE_DIR/volume-plugins" "$STORAGE_DIR" "$STATE_DIR/local-path"
  make_bridge
  if containerd_config | write_file "$CONTAINERD_DIR/config.toml" && running containerd; then
    say "containerd's configuration changed: restarting it"
    stop containerd
  fi
  start containerd --config "$CONTAINERD_DIR/config.toml"
  wait_for containerd 60 "$LOGS/containerd.log" containerd_ready
  up_images
  cni_config | write_file "$CNI_DIR/net.d/10-caas-real-node.conflist" || true

  if kubelet_config | write_file "$STATE_DIR/kubelet.yaml" && running kubelet; then
    say "the kubelet's configuration changed: restarting it"
    stop kubelet
  fi
  start kubelet --config="$STATE_DIR/kubelet.yaml" --kubeconfig="$STATE_DIR/kubelet.kubeconfig" \
    --root-dir="$KUBELET_DIR" --cert-dir="$PKI" --hostname-override="$NODE" --node-ip="$NODE_IP" \
    --node-labels="$(IFS=,; echo "${NODE_LABELS[*]}")" --v=1
  wait_for "the node $NODE to be Ready" 120 "$LOGS/kubelet.log" node_ready
  # Labels and the taint hold even for a Node object that was registered before (they are set at registration only).
  quietly "labelling $NODE" kctl label node "$NODE" --overwrite "${NODE_LABELS[@]}"
  quietly "tainting $NODE" kctl taint node "$NODE" --overwrite "$TAINT_KEY=true:NoSchedule"

  start kube-proxy --kubeconfig="$STATE_DIR/kube-proxy.kubeconfig" --hostname-override="$NODE" --proxy-mode=iptables \
    --cluster-cidr="$POD_CIDR" --nodeport-addresses="$NODE_IP/32" --iptables-localhost-nodeports=false \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --healthz-bind-address="127.0.0.1:$PROXY_HEALTH_PORT" --metrics-bind-address="127.0.0.1:$PROXY_METRICS_PORT" --v=1
  start kube-router --kubeconfig="$STATE_DIR/kube-router.kubeconfig" --hostname-override="$NODE" \
    --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false --enable-ipv6=false \
    --service-cluster-ip-range="$SERVICE_CIDR" --health-port=0 --metrics-port=0 --v=1
  local_path_config | write_file "$STATE_DIR/local-path/config.json" || true
  if helper_pod | write_file "$STATE_DIR/local-path/helper-pod.yaml" && running local-path-provisioner; then
    stop local-path-provisioner
  fi
  start local-path-provisioner start --kubeconfig="$STATE_DIR/local-path-provisioner.kubeconfig" \
    --config="$STATE_DIR/local-path/config.json" --helper-pod-file="$STATE_DIR/local-path/helper-pod.yaml" \
    --namespace="$STORAGE_NAMESPACE" --service-account-name=local-path-provisioner \
    --configmap-name=local-path-config --helper-image="${IMAGE_REF[busybox]}" --provisioner-name="$PROVISIONER"

  wait_for kube-proxy 60 "$LOGS/kube-proxy.log" kube_proxy_ready
  wait_for kube-router 60 "$LOGS/kube-router.log" kube_router_ready
  wait_for "the images ${UP_IMAGES[*]}" 30 "$LOGS/images.log" images_ready "${UP_IMAGES[@]}"
  wait_for "the StorageClass $STORAGE_CLASS" 60 "$LOGS/local-path-provisioner.log" storage_class_ready
  wait_for local-path-provisioner 60 "$LOGS/local-path-provisioner.log" provisioner_ready
  say "up in $((SECONDS - started))s: node $NODE Ready at $NODE_IP (images: ${UP_IMAGES[*]}; StorageClass $STORAGE_CLASS)"
}

# --- down ------------------------------------------------------------------------------------------------------------

node_pods() { kctl get pods --all-namespaces --field-selector "spec.nodeName=$NODE" -o name 2>&1; }
no_node_pods() { [[ -z "$(node_pods)" ]]; }

# drain: the node's pods are deleted through the API while the kubelet runs, so it stops them as it would (CNI teardown,
# volumes unmounted); the node is cordoned first so that their controllers' replacements wait elsewhere.
drain() {
  running kubelet && api_reachable || return 0
  [[ -n "$(node_pods)" ]] || return 0
  quietly "cordoning $NODE" kctl cordon "$NODE"
  say "deleting the pods on $NODE: $(node_pods | tr '\n' ' ')"
  quietly "deleting the pods on $NODE" kctl delete pods --all-namespaces --field-selector "spec.nodeName=$NODE" \
    --grace-period=2 --wait=false
  wait_for "the pods on $NODE to be deleted" 90 "$LOGS/kubelet.log" no_node_pods
}

# ctr_cleanup: what the kubelet left in containerd (a killed kubelet's pods, stopped sandboxes) is removed directly.
ctr_cleanup() {
  running containerd || return 0
  local ids id
  ids="$(ctr_ containers ls -q 2>>"$DOWN_LOG")" || return 0
  [[ -z "$ids" ]] || say "removing the containers the kubelet left in containerd: $(wc -w <<<"$ids")"
  for id in $ids; do
    ctr_ tasks kill -s SIGKILL "$id" >>"$DOWN_LOG" 2>&1 || true
  done
  for id in $ids; do
    for _ in $(seq 1 50); do
      ctr_ tasks delete "$id" >>"$DOWN_LOG" 2>&1 && break
      ctr_ tasks ls -q 2>>"$DOWN_LOG" | grep -qx "$id" || break
      sleep 0.1
    done
    ctr_ containers delete "$id" >>"$DOWN_LOG" 2>&1 || say "could not delete the container $id (see $DOWN_LOG)"
  done
}

# kill_leftovers: processes of this node that outlived containerd: shims serving our socket, and anything still in the
# kubepods cgroups (containers whose shim died).
kill_leftovers() {
  local pid cmdline pids=() file
  for file in /proc/[0-9]*/exe; do
    [[ "$(readlink "$file" 2>/dev/null)" == */containerd-shim* ]] || continue
    pid="${file#/proc/}"
    pid="${pid%/exe}"
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || continue
    [[ "$cmdline" == *"-address $CONTAINERD_SOCK "* ]] && pids+=("$pid")
  done
  while read -r file; do
    while read -r pid; do [[ -n "$pid" ]] && pids+=("$pid"); done <"$file"
  done < <(find /sys/fs/cgroup/*/kubepods -name cgroup.procs 2>>"$DOWN_LOG")
  ((${#pids[@]})) || return 0
  say "killing processes left by the node's containers: ${pids[*]}"
  kill -9 "${pids[@]}" 2>>"$DOWN_LOG" || true
  for _ in $(seq 1 50); do
    local left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  say "processes still alive after SIGKILL: ${pids[*]}"
}

# our_mounts: mount points of this node (under the state folder, network namespace pins, containerd's run folder and
# /var/lib/kubelet), deepest first.
our_mounts() {
  awk '{ print $5 }' /proc/self/mountinfo | while read -r m; do
    m="$(printf '%b' "${m//\\/\\0}")"
    case "$m" in
      "$STATE_DIR"/* | /run/netns/cni-* | /run/containerd/* | /var/lib/kubelet/* | /var/lib/kubelet) echo "$m" ;;
    esac
  done | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-
}

unmount_all() {
  local m
  while read -r m; do
    [[ -n "$m" ]] || continue
    umount "$m" 2>>"$DOWN_LOG" || umount -l "$m" 2>>"$DOWN_LOG" || say "could not unmount $m (see $DOWN_LOG)"
  done < <(our_mounts)
  local left
  left="$(our_mounts)"
  [[ -z "$left" ]] || die "these mounts of the node are still there: $(tr '\n' ' ' <<<"$left")"
  for m in $(netns_pins); do
    grep -qx "$m" "$BASELINE/netns" 2>/dev/null || rm -f "$m"
  done
}

# clean_iptables: the node's chains (KUBE-*, CNI-*) and every rule that jumps to them go, other rules stay; a table the
# node's components created (nft) is deleted once it is empty.
clean_iptables() {
  local fam save filtered family table
  for fam in iptables ip6tables; do
    save="$("$fam-save" 2>&1)" || die "$fam-save failed: $save"
    filtered="$(awk '
      /^:(KUBE-|CNI-)/ { next }
      /^-A (KUBE-|CNI-)/ { next }
      / -[jg] (KUBE-|CNI-)/ { next }
      { print }' <<<"$save")"
    if [[ "$filtered" != "$save" ]]; then
      local out
      out="$("$fam-restore" <<<"$filtered" 2>&1)" || die "$fam-restore of the rules without the node's chains failed: $out"
    fi
  done
  for family in ip ip6; do
    for table in filter nat mangle raw security; do
      nft list table "$family" "$table" >/dev/null 2>&1 || continue
      grep -qx "table $family $table" "$BASELINE/nft-tables" 2>/dev/null && continue
      # Only base chains with policy accept and no rules: what iptables leaves of a table it created.
      if [[ -z "$(nft list table "$family" "$table" | grep -vE '^\s*(table .*\{|chain .*\{|type .* policy accept;|\}|)$' || true)" ]]; then
        quietly "deleting the nft table $family $table" nft delete table "$family" "$table"
      fi
    done
  done
}

clean_ipsets() {
  local set
  for set in $(our_ipsets); do
    grep -qx "$set" "$BASELINE/ipsets" 2>/dev/null && continue
    ipset destroy "$set" 2>>"$DOWN_LOG" || say "could not destroy the ipset $set (see $DOWN_LOG)"
  done
}

clean_cgroups() {
  local dir
  for dir in $(our_cgroups); do
    find "$dir" -depth -type d -exec rmdir {} + 2>>"$DOWN_LOG" || true
    [[ ! -d "$dir" ]] || say "could not remove the cgroup $dir (processes left in it: $(find "$dir" -name cgroup.procs -exec cat {} + | tr '\n' ' '))"
  done
}

restore_sysctls() {
  [[ -s "$BASELINE/sysctl" ]] || return 0
  local line key value path
  while IFS= read -r line; do
    key="${line%%=*}"
    value="${line#*=}"
    path="$(sysctl_path "$key")"
    [[ -w "$path" && "$(cat "$path")" != "$value" ]] || continue
    printf '%s' "$value" 2>>"$DOWN_LOG" >"$path" || say "could not restore the sysctl $key to $value"
  done <"$BASELINE/sysctl"
}

remove_machine_paths() {
  local path
  for path in "${MACHINE_PATHS[@]}"; do
    [[ -e "$path" ]] || continue
    grep -qx "$path" "$BASELINE/paths" 2>/dev/null && continue
    rm -rf --one-file-system "$path" || say "could not remove $path"
  done
}

cmd_down() {
  require_tools
  machine_lock
  local owner
  owner="$(machine_owner)"
  if [[ -n "$owner" && "$owner" != "$STATE_DIR" ]]; then
    say "this machine's real node belongs to $owner, not to $STATE_DIR: nothing to stop here"
    return 0
  fi
  if [[ -z "$owner" && ! -e "$BASELINE/complete" ]]; then
    say "no real node is up on this machine"
    return 0
  fi
  lock_state
  echo "----- $(date -u +%FT%TZ) $SCRIPT_NAME.sh down -----" >>"$DOWN_LOG"
  local api=false
  if [[ -s "$CLUSTER_DIR/ports.env" ]] && api_reachable; then api=true; fi
  stop local-path-provisioner
  if $api; then
    drain
  else
    say "the control plane is not running: the node's pods are removed through containerd only, and the Node object $NODE stays until the control plane runs again"
  fi
  stop kube-router
  stop kube-proxy
  stop kubelet
  ctr_cleanup
  stop containerd
  kill_leftovers
  unmount_all
  if $api; then
    kctl delete node "$NODE" --ignore-not-found >>"$DOWN_LOG" 2>&1 || say "could not delete the Node object $NODE (see $DOWN_LOG)"
    kctl delete storageclass "$STORAGE_CLASS" --ignore-not-found >>"$DOWN_LOG" 2>&1 ||
      say "could not delete the StorageClass $STORAGE_CLASS (see $DOWN_LOG)"
  fi
  clean_iptables
  clean_ipsets
  if ip link show "$BRIDGE" >/dev/null 2>&1; then quietly "deleting the bridge $BRIDGE" ip link delete "$BRIDGE"; fi
  clean_cgroups
  restore_sysctls
  rm -rf --one-file-system "$KUBELET_DIR" "$CNI_DIR/networks" "$CONTAINERD_DIR/state" "$STATE_DIR/pod-logs"
  remove_machine_paths
  rm -rf "$BASELINE" "$STATE_DIR/api.url"
  set_machine_owner ""
  say "down: the node's processes are stopped and the machine is as before 'up' (images and volumes kept in $STATE_DIR)"
}

cmd_reset() {
  cmd_down
  local left
  left="$(our_mounts)"
  [[ -z "$left" ]] || die "not removing $STATE_DIR: mounts are left in it: $left"
  rm -rf --one-file-system "$STATE_DIR"
  say "state removed"
}

cmd_env() {
  [[ -s "$KUBECONFIG_ADMIN" ]] || die "no control plane yet: run '$0 up'"
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "export PATH=$BIN_K8S:\$PATH"
  echo "export CAAS_REAL_NODE=$NODE"
  echo "export CAAS_REAL_NODE_IP=$NODE_IP"
  echo "export CAAS_REAL_NODE_TAINT=$TAINT_KEY=true:NoSchedule"
  echo "export CAAS_REAL_NODE_STORAGE_CLASS=$STORAGE_CLASS"
  echo "export CAAS_REAL_NODE_STORAGE_DIR=$STORAGE_DIR"
  echo "export CONTAINERD_ADDRESS=$CONTAINERD_SOCK"
  local name var
  image_list
  for name in "${!IMAGE_REF[@]}"; do
    var="${name^^}"
    echo "export CAAS_IMAGE_${var//-/_}=${IMAGE_REF[$name]}"
  done | sort
}

cmd_status() {
  components_status
  if api_reachable; then
    echo "node $NODE: $(kctl get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}' 2>/dev/null || echo absent)"
  else
    echo "control plane not running"
  fi
  if running containerd; then
    echo "images:"
    ctr_ images ls -q | grep -v '^sha256:' | sed 's/^/  /'
  fi
  echo "machine owner: $(machine_owner || true)"
}

cmd_images() {
  require_tools
  running containerd || die "the node is not up: run '$0 up' first"
  if (($# == 0)); then
    ctr_ images ls -q | grep -v '^sha256:'
    return 0
  fi
  build_images "$@"
  import_images "$@"
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
  logs) show_logs "$@" ;;
  images) cmd_images "$@" ;;
  *) sed -n '2,/^$/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
exit
}
