#!/usr/bin/env bash
# Runs every test, on a fresh machine too: installs what is missing (tests/install-deps.sh: system packages with
# apt-get when root, otherwise it names them; the fuzzer, browser and BOSH tools; quick when all is there), checks the
# code (tests/lint.sh: cargo fmt, clippy, shellcheck), builds and starts the local control plane
# (tests/cluster/cluster.sh) and joins the real node (tests/cluster/real-node.sh: needs root), then runs the Rust unit
# and integration tests against them. Stops the real node, the control plane (and the Cloud Foundry API of
# tests/cf/cf-api.sh, the OIDC provider of tests/oidc/dex.sh) afterwards only if this script started them.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
bash tests/install-deps.sh || { echo "tests: setting up the machine failed (tests/install-deps.sh; its message is above)" >&2; exit 1; }
echo "tests: set-up checked in $((SECONDS - start))s"
start=$SECONDS
bash tests/lint.sh || { echo "tests: the code checks failed (tests/lint.sh; its message is above)" >&2; exit 1; }
echo "tests: code checked in $((SECONDS - start))s"

cluster=tests/cluster/cluster.sh
started_here=false
status="$(bash "$cluster" status)"
if [[ "$status" != *"kube-apiserver running"* ]]; then started_here=true; fi
real_node=tests/cluster/real-node.sh
node_started_here=false
if [[ "$(bash "$real_node" status)" != *"kubelet running"* ]]; then node_started_here=true; fi
# tests/cf_cli.rs starts the Cloud Foundry API (tests/cf/cf-api.sh up): stopped afterwards too, unless any of it ran.
cf_api=tests/cf/cf-api.sh
cf_started_here=false
if [[ "$(bash "$cf_api" status)" != *" running "* ]]; then cf_started_here=true; fi
# tests/oidc_provider.rs and tests/dashboard_access.rs start the OIDC provider (tests/oidc/dex.sh up): stopped afterwards
# too, unless it ran.
oidc=tests/oidc/dex.sh
oidc_started_here=false
if [[ "$(bash "$oidc" status)" != *"dex running"* ]]; then oidc_started_here=true; fi
# tests/multi_cluster.rs starts a second control plane (state in cluster-b beside the first) and stops it at its end:
# stopped here too when the test stopped before, unless it ran before the tests.
second_dir="${CAAS_CACHE_DIR:-$PWD/.cache}/cluster-b"
second_started_here=false
if [[ "$(CAAS_CLUSTER_DIR="$second_dir" bash "$cluster" status)" != *"kube-apiserver running"* ]]; then
  second_started_here=true
fi
stop() {
  if $second_started_here; then CAAS_CLUSTER_DIR="$second_dir" bash "$cluster" down; fi
  if $oidc_started_here; then bash "$oidc" down; fi
  if $cf_started_here; then bash "$cf_api" down; fi
  if $node_started_here; then bash "$real_node" down; fi
  if $started_here; then bash "$cluster" down; fi
}
trap stop EXIT

start=$SECONDS
bash "$cluster" up || { echo "tests: the control plane did not come up (tests/cluster/cluster.sh up; its message is above)" >&2; exit 1; }
echo "tests: control plane ready after $((SECONDS - start))s"
start=$SECONDS
# The images tests/real_node.rs runs: the web app and the session image with its test app (built on first use).
CAAS_REAL_NODE_IMAGES="webapp streaming-session-test" bash "$real_node" up || { echo "tests: the real node did not come up (tests/cluster/real-node.sh up; its message is above)" >&2; exit 1; }
echo "tests: real node ready after $((SECONDS - start))s"

# Benchmarks are not tests: `cargo bench --bench broker` runs them (`--all-targets` would include them).
cargo test --lib --bins --tests --no-fail-fast -- --test-threads 4
