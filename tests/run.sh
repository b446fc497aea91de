#!/usr/bin/env bash
# Runs every test: builds and starts the local control plane (tests/cluster/cluster.sh), then the Rust unit and
# integration tests against it. Stops the control plane afterwards only if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=tests/cluster/cluster.sh
started_here=false
status="$(bash "$cluster" status)"
if [[ "$status" != *"kube-apiserver running"* ]]; then started_here=true; fi
stop() { if $started_here; then bash "$cluster" down; fi; }
trap stop EXIT

start=$SECONDS
bash "$cluster" up
echo "tests: control plane ready after $((SECONDS - start))s"

# Benchmarks are not tests: `cargo bench --bench broker` runs them (`--all-targets` would include them).
cargo test --lib --bins --tests --no-fail-fast -- --test-threads 4
