#!/usr/bin/env bash
# A real Cloud Foundry API on loopback, for development and tests: Korifi (the CF API on Kubernetes) with its
# experimental managed services, driven by the real cf CLI.
#
# Korifi is built from its Go module (the version is pinned by korifi/go.mod beside this script), the cf CLI by
# bosh-release/scripts/build-cf-cli.sh (the version the BOSH release pins). Korifi runs as two processes,
# korifi-controllers and korifi-api, against a control plane of its own: tests/cluster/cluster.sh with the state folder
# $CAAS_CF_DIR/cluster. That is the platform's cluster, where CF orgs, spaces, apps and service instances are
# objects; it is not the tenants' cluster (tests/cluster/cluster.sh's default state), where the broker creates the
# virtual clusters. The cf CLI logs in as `cf-admin` with a client certificate of that cluster (no UAA).
#
#   cf-api.sh build     build what is not cached yet: korifi-api, korifi-controllers, the cf CLI, the cluster's binaries
#   cf-api.sh up        build if needed, then start the platform's cluster, install Korifi's CRDs, CF roles and
#                       webhooks, start korifi-controllers and korifi-api, and log the cf CLI in (idempotent; waits
#                       until `cf orgs` works)
#   cf-api.sh down      stop korifi-api, korifi-controllers and the platform's cluster (by pid); keep the state
#   cf-api.sh reset     down, then forget the state (PKI, etcd data, the cf CLI's home)
#   cf-api.sh env       print the environment for the cf CLI: eval "$(tests/cf/cf-api.sh env)"; cf orgs
#   cf-api.sh status    say which components run
#   cf-api.sh logs [C]  print the log of component C (korifi-api, korifi-controllers, kube-apiserver, ...), or the
#                       names of all logs
#   cf-api.sh cf …      run the cf CLI as cf-admin
#
# korifi-controllers v0.18.0 does not parse its flags: it always listens on *:8080 (metrics), *:8081 (probes) and
# *:9443 (webhooks), so `up` refuses to start when another process holds one of them, and a broker under test must
# listen elsewhere. korifi-api listens on a free port chosen at the first start (`env` prints CF_API).
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache) holds the binaries keyed by version; CAAS_CF_DIR (default
# $CAAS_CACHE_DIR/cf) the state folder.
#
# Every way this script stops says why on stderr, naming the component and its log.

# The whole script is one { ... } block that bash parses before it runs any of it, so that editing the script while
# a 10-minute build runs cannot make the running copy read garbage. (shellcheck cannot see that the probes and traps
# inside it are called.)
# shellcheck disable=SC2317
{
SCRIPT_NAME="cf-api"
WHAT_STARTS="Korifi"
# Shell options, HERE, REPO, CACHE_DIR, messages, traps, and the process, build and certificate logic cluster.sh shares.
# shellcheck source=tests/lib/components.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/components.sh"
export CAAS_CACHE_DIR="$CACHE_DIR"
STATE_DIR="${CAAS_CF_DIR:-$CACHE_DIR/cf}"
CLUSTER_STATE="$STATE_DIR/cluster"
PKI="$STATE_DIR/pki"
# Certificates are signed by the platform cluster's CA (so its apiserver accepts the cf-admin client certificate and
# verifies the webhooks' serving certificate).
CA_DIR="$CLUSTER_STATE/pki"
SERVER_KEY_USAGE="serverAuth"
LOGS="$STATE_DIR/logs"
PIDS="$STATE_DIR/pids"
CF_HOME_DIR="$STATE_DIR/cf-home"
CF_KUBECONFIG="$STATE_DIR/cf-admin.kubeconfig"
CF_USER="cf-admin"
ROOT_NAMESPACE=cf
COMPONENTS=(korifi-controllers korifi-api)
# Fixed by korifi-controllers (see above).
CONTROLLER_PORTS=(8080 8081 9443)
WEBHOOK_PORT=9443
PROBE_PORT=8081

KORIFI_VERSION="$(awk '$1 == "code.cloudfoundry.org/korifi" { print $2; exit }' "$HERE/korifi/go.mod")"
[[ -n "$KORIFI_VERSION" ]] || die "cannot read the pinned Korifi version from $HERE/korifi/go.mod"
GO_VERSION="$(go env GOVERSION 2>/dev/null || echo none)"
BIN_KORIFI="$CACHE_DIR/bin/korifi-$KORIFI_VERSION-$GO_VERSION"

binary() { echo "$BIN_KORIFI/$1"; }

# The platform's control plane: cluster.sh with a state folder of its own.
cluster() { CAAS_CLUSTER_DIR="$CLUSTER_STATE" bash "$REPO/tests/cluster/cluster.sh" "$@"; }
kctl() { cluster kubectl "$@"; }

# --- build -----------------------------------------------------------------------------------------------------------

# korifi_build NAME PACKAGE: one Korifi binary, with a log that a failure points at. Says every PROGRESS_SECONDS that
# it is still building.
korifi_build() {
  local name="$1" package="$2" out log started
  out="$(binary "$name")"
  [[ -x "$out" ]] && return 0
  command -v go >/dev/null || die "building $name needs Go (https://go.dev/dl), which is not on PATH"
  mkdir -p "$BIN_KORIFI" "$CACHE_DIR/build-logs"
  log="$CACHE_DIR/build-logs/$name.log"
  started=$SECONDS
  say "building $name from $package $KORIFI_VERSION (log: $log)"
  (cd "$HERE/korifi" && exec go build -ldflags "-s -w -X code.cloudfoundry.org/korifi/version.Version=$KORIFI_VERSION" \
    -o "$out.tmp" "$package") >"$log" 2>&1 </dev/null &
  await_build "$name" $! "$log" "$started"
  mv "$out.tmp" "$out"
  say "built $name in $((SECONDS - started)) s"
}

# The cf CLI's path; built by the one script that builds it (for the BOSH release too) when not cached.
cf_cli() { bash "$REPO/bosh-release/scripts/build-cf-cli.sh" || die "the cf CLI could not be built (see above)"; }

# The folder of Korifi's module in the module cache, where its Helm chart (CRDs, roles, webhooks) is.
korifi_dir() {
  (cd "$HERE/korifi" && go list -m -f '{{.Dir}}' code.cloudfoundry.org/korifi) ||
    die "cannot find the Korifi module (go list -m code.cloudfoundry.org/korifi in $HERE/korifi)"
}

cmd_build() {
  cluster build
  local missing=() name
  for name in "${COMPONENTS[@]}"; do [[ -x "$(binary "$name")" ]] || missing+=("$name"); done
  if ((${#missing[@]})); then
    # One build at a time per cache (the tests may call `up` from several processes).
    mkdir -p "$CACHE_DIR/bin"
    exec 8>"$CACHE_DIR/bin/.korifi-build.lock"
    if ! flock -n 8; then
      say "waiting for another cf-api.sh that is building into $CACHE_DIR/bin (lock $CACHE_DIR/bin/.korifi-build.lock)"
      flock 8
    fi
    say "building Korifi $KORIFI_VERSION with $GO_VERSION (about 10 min each on 2 cores from an empty Go build cache)"
    korifi_build korifi-controllers code.cloudfoundry.org/korifi/controllers
    korifi_build korifi-api code.cloudfoundry.org/korifi/api
    exec 8>&-
  fi
  cf_cli >/dev/null
}

# --- PKI -------------------------------------------------------------------------------------------------------------

# tls_dir NAME DIR: tls.crt, tls.key and ca.crt, the layout Korifi reads certificates from.
tls_dir() {
  mkdir -p "$2"
  cp "$PKI/$1.crt" "$2/tls.crt"
  cp "$PKI/$1.key" "$2/tls.key"
  cp "$CLUSTER_STATE/pki/ca.crt" "$2/ca.crt"
}

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  cert korifi-api "/CN=korifi-api" "DNS:localhost,IP:127.0.0.1"
  cert korifi-webhooks "/CN=korifi-controllers-webhooks" "IP:127.0.0.1"
  cert "$CF_USER" "/CN=$CF_USER"
  tls_dir korifi-api "$STATE_DIR/api-tls"
  # controller-runtime's webhook server reads $TMPDIR/k8s-webhook-server/serving-certs.
  tls_dir korifi-webhooks "$STATE_DIR/tmp/k8s-webhook-server/serving-certs"
}

# The kubeconfig the cf CLI takes the cf-admin client certificate from (`cf auth cf-admin`).
cf_kubeconfig() {
  local server
  server="$(awk '$1 == "server:" { print $2; exit }' "$CLUSTER_STATE/admin.kubeconfig")"
  [[ -n "$server" ]] || die "cannot read the apiserver's address from $CLUSTER_STATE/admin.kubeconfig"
  write_kubeconfig "$CF_KUBECONFIG" cf-platform "$server" "$CLUSTER_STATE/pki/ca.crt" "$CF_USER" \
    "$PKI/$CF_USER.crt" "$PKI/$CF_USER.key"
}

# --- configuration ---------------------------------------------------------------------------------------------------

# What the chart's controllers/configmap.yaml renders, for local processes: no kpack, job-task or statefulset
# runners, no route controller (no gateway), managed services on, brokers on plain http allowed (the broker under
# test listens on http://127.0.0.1).
controllers_config() {
  cat <<EOF
includeKpackImageBuilder: false
includeJobTaskRunner: false
includeStatefulsetRunner: false
builderName: kpack-image-builder
runnerName: statefulset-runner
cfProcessDefaults:
  memoryMB: 1024
  diskQuotaMB: 1024
cfRootNamespace: $ROOT_NAMESPACE
containerRegistrySecretNames: []
taskTTL: 720h
namespaceLabels: {}
extraVCAPApplicationValues:
  cf_api: https://localhost:$KORIFI_API_PORT
maxRetainedPackagesPerApp: 5
maxRetainedBuildsPerApp: 5
logLevel: info
networking:
  gatewayNamespace: korifi-gateway
  gatewayName: korifi
experimentalManagedServicesEnabled: true
trustInsecureServiceBrokers: true
disableRouteController: true
EOF
}

# What the chart's api/configmap.yaml renders, with the API on https://localhost:KORIFI_API_PORT.
api_config() {
  cat <<EOF
externalFQDN: localhost
externalPort: $KORIFI_API_PORT
internalFQDN: korifi-api.internal
internalPort: $KORIFI_API_PORT
idleTimeout: 900
readTimeout: 900
readHeaderTimeout: 10
writeTimeout: 900
infoConfig:
  description: caas-broker test Cloud Foundry (Korifi $KORIFI_VERSION)
  name: korifi
  minCLIVersion: ""
  recommendedCLIVersion: ""
  supportAddress: https://www.cloudfoundry.org/technology/korifi/
rootNamespace: $ROOT_NAMESPACE
builderName: kpack-image-builder
runnerName: statefulset-runner
defaultLifecycleConfig:
  type: buildpack
  stack: cflinuxfs3
  stagingMemoryMB: 0
containerRepositoryPrefix: ""
packageRegistrySecretNames: []
defaultDomainName: apps.localhost
# The cf-admin certificate lives as long as the state folder (10 years): no warning on every command.
userCertificateExpirationWarningDuration: 100000h
logLevel: info
list:
  defaultPageSize: 50
experimental:
  managedServices:
    enabled: true
  uaa:
    enabled: false
  externalLogCache:
    enabled: false
  k8sclient:
    qps: 0
    burst: 0
  securityGroups:
    enabled: false
EOF
}

# The chart's role mappings, as they are.
role_mappings() {
  awk '/^  role_mappings_config.yaml: \|/ { on = 1; next } on && /^  [^ ]/ { on = 0 } on { sub(/^    /, ""); print }' \
    "$KORIFI_CHART/api/configmap.yaml"
}

# configure NAME FILE GENERATOR: writes what GENERATOR prints to FILE; when that changes a running component's
# configuration, stops the component so that `up` starts it with the new one.
configure() {
  local name="$1" file="$2" text
  text="$("$3")" || die "cannot write $file"
  mkdir -p "${file%/*}"
  [[ -f "$file" && "$(cat "$file")" == "$text" ]] && return 0
  printf '%s\n' "$text" >"$file"
  if ours "$name"; then
    say "the configuration of $name changed ($file): restarting it"
    stop "$name" quiet
  fi
}

# --- installing Korifi into the platform's cluster -------------------------------------------------------------------

crds_established() { kctl wait --for condition=established --timeout=30s -f "$KORIFI_CHART/controllers/crds"; }

root_namespace_manifest() {
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ROOT_NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: default-admin-binding
  namespace: $ROOT_NAMESPACE
  annotations:
    cloudfoundry.org/propagate-cf-role: "true"
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: korifi-controllers-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: $CF_USER
EOF
}

# apply WHAT FILE: server-side apply into the platform's cluster, kubectl's output in the install log.
apply() {
  local log="$LOGS/install.log"
  if ! kctl apply --server-side --force-conflicts -f "$2" >>"$log" 2>&1; then
    tail_log "$log"
    die "applying $1 ($2) to the platform's cluster failed; the log is $log"
  fi
}

install_resources() {
  apply "Korifi's CRDs" "$KORIFI_CHART/controllers/crds"
  apply "Korifi's CF roles" "$KORIFI_CHART/controllers/cf_roles"
  root_namespace_manifest >"$STATE_DIR/root-namespace.yaml"
  apply "the root namespace and the cf-admin binding" "$STATE_DIR/root-namespace.yaml"
  wait_for "Korifi's CRDs to be established" 120 "$LOGS/install.log" crds_established
}

# The chart's webhooks, pointed at the controllers on loopback: a url and the CA instead of an in-cluster Service.
webhooks_manifest() {
  awk -v ca="$(base64 -w0 <"$CLUSTER_STATE/pki/ca.crt")" -v base="https://127.0.0.1:$WEBHOOK_PORT" '
    /^ *service:$/ { service = 1; indent = substr($0, 1, index($0, "s") - 1); next }
    service && /^ *(name|namespace):/ { next }
    service && /^ *path:/ { sub(/^ *path: */, ""); print indent "url: " base $0; service = 0; next }
    /^ *caBundle:/ { sub(/caBundle:.*/, "caBundle: " ca) }
    /cert-manager.io\/inject-ca-from/ { next }
    { print }
  ' "$KORIFI_CHART/controllers/manifests.yaml"
}

register_webhooks() {
  local manifest="$STATE_DIR/webhooks.yaml" source="$KORIFI_CHART/controllers/manifests.yaml"
  webhooks_manifest >"$manifest"
  if grep -q '{{' "$manifest" || [[ "$(grep -c 'url: https://127.0.0.1' "$manifest")" != "$(grep -c 'path:' "$source")" ]]; then
    die "the webhooks of $source did not all turn into loopback URLs (see $manifest)"
  fi
  apply "Korifi's webhooks" "$manifest"
}

# --- processes -------------------------------------------------------------------------------------------------------

# launch BIN VAR=VALUE...: what `start` runs in the background: the component with that environment.
launch() {
  local bin="$1"
  shift
  exec setsid env "$@" "$bin"
}

# holder PORT: who listens on a TCP port, for a message.
holder() {
  if command -v ss >/dev/null; then ss -Hltnp "sport = :$1" 2>&1 || true; else echo "(ss, from iproute2, would say which)"; fi
}

# The controllers answer their readiness probe, and their webhook server answers TLS with our certificate.
controllers_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$PROBE_PORT/readyz" &&
    curl -sS --max-time 2 -o /dev/null --cacert "$CLUSTER_STATE/pki/ca.crt" "https://127.0.0.1:$WEBHOOK_PORT/"
}

api_ready() {
  curl -fsS --max-time 2 --cacert "$CLUSTER_STATE/pki/ca.crt" "https://localhost:$KORIFI_API_PORT/" | grep -q '"cf_on_k8s":true'
}

# The cf CLI as cf-admin, with the state folder's CF_HOME.
cf_cmd() {
  local cf
  cf="$(cf_cli)"
  CF_HOME="$CF_HOME_DIR" KUBECONFIG="$CF_KUBECONFIG" CF_COLOR=false "$cf" "$@"
}

cf_login() {
  local log="$LOGS/cf-login.log"
  mkdir -p "$CF_HOME_DIR"
  if ! { cf_cmd api "https://localhost:$KORIFI_API_PORT" --skip-ssl-validation && cf_cmd auth "$CF_USER"; } >>"$log" 2>&1; then
    tail_log "$log"
    die "the cf CLI could not log in to https://localhost:$KORIFI_API_PORT as $CF_USER; its log is $log, korifi-api's $LOGS/korifi-api.log"
  fi
  wait_for "cf orgs as $CF_USER" 30 "$log" cf_cmd orgs
}

cmd_up() {
  local started=$SECONDS port admin="$CLUSTER_STATE/admin.kubeconfig"
  cmd_build
  cluster up
  lock_state
  KORIFI_CHART="$(korifi_dir)/helm/korifi"
  if ! ours korifi-controllers; then
    for port in "${CONTROLLER_PORTS[@]}"; do
      port_free "$port" || die "korifi-controllers always listens on port $port, which another process holds:
$(holder "$port")"
    done
  fi
  if ! running korifi-api || [[ ! -s "$STATE_DIR/ports.env" ]]; then
    cmd_down_locked quiet
    choose_ports KORIFI_API_PORT
  fi
  # shellcheck source=/dev/null
  source "$STATE_DIR/ports.env"
  make_pki
  cf_kubeconfig
  configure korifi-controllers "$STATE_DIR/controllers-config/config.yaml" controllers_config
  configure korifi-api "$STATE_DIR/api-config/korifi_api_config.yaml" api_config
  configure korifi-api "$STATE_DIR/api-config/role_mappings_config.yaml" role_mappings
  grep -q '^roleMappings:' "$STATE_DIR/api-config/role_mappings_config.yaml" ||
    die "cannot read the role mappings from $KORIFI_CHART/api/configmap.yaml"
  install_resources

  start korifi-controllers "KUBECONFIG=$admin" "CONTROLLERSCONFIG=$STATE_DIR/controllers-config" "TMPDIR=$STATE_DIR/tmp"
  wait_for korifi-controllers 120 "$LOGS/korifi-controllers.log" controllers_ready
  # The webhooks fail closed: register them only once the controllers serve them.
  register_webhooks
  start korifi-api "KUBECONFIG=$admin" "APICONFIG=$STATE_DIR/api-config" "CERT_PATH=$STATE_DIR/api-tls" \
    "INTERNAL_CERT_PATH=$STATE_DIR/api-tls"
  wait_for korifi-api 60 "$LOGS/korifi-api.log" api_ready
  cf_login
  say "up in $((SECONDS - started)) s: Korifi $KORIFI_VERSION at https://localhost:$KORIFI_API_PORT, the cf CLI logged in as $CF_USER (eval \"\$($0 env)\")"
}

cmd_down() {
  [[ -d "$STATE_DIR" ]] || return 0
  lock_state
  cmd_down_locked
  cluster down
}

cmd_reset() {
  cmd_down
  cluster reset
  rm -rf "$STATE_DIR"
  say "state removed"
}

cmd_env() {
  [[ -s "$STATE_DIR/ports.env" && -s "$CF_KUBECONFIG" ]] || die "no Cloud Foundry API yet: run '$0 up'"
  # shellcheck source=/dev/null
  source "$STATE_DIR/ports.env"
  local cf
  cf="$(cf_cli)"
  echo "export CF_API=https://localhost:$KORIFI_API_PORT"
  echo "export CF_HOME=$CF_HOME_DIR"
  echo "export CF_USERNAME=$CF_USER"
  echo "export CF_KUBECONFIG=$CF_KUBECONFIG"
  echo "export KUBECONFIG=$CF_KUBECONFIG"
  echo "export CF_API_LOGS=$LOGS"
  echo "export PATH=${cf%/*}:\$PATH"
}

cmd_status() {
  components_status
  cluster status
}

cmd_logs() {
  if [[ -z "${1:-}" ]]; then
    compgen -G "$LOGS/*.log" || true
    compgen -G "$CACHE_DIR/build-logs/korifi-*.log" || true
    compgen -G "$CACHE_DIR/build-logs/cf-cli.log" || true
    cluster logs
    return
  fi
  local log="$LOGS/$1.log"
  [[ -f "$log" ]] || log="$CACHE_DIR/build-logs/$1.log"
  if [[ -f "$log" ]]; then cat "$log"; else cluster logs "$1"; fi
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
  cf) cf_cmd "$@" ;;
  *) sed -n '2,/^$/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
exit
}
