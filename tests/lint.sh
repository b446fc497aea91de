#!/usr/bin/env bash
# Checks the code before the tests run: formatting (cargo fmt), lints (cargo clippy on every target, warnings denied)
# and every shell script of the repository (shellcheck: the *.sh files and the scripts without that suffix that
# .ci/run, the BOSH packages and the test image run). ERB templates are checked where the BOSH release test renders
# them. Each failing check names itself; its findings are above.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "lint: $* (its findings are above)" >&2; exit 1; }

cargo fmt --check || fail "cargo fmt --check found code that is not formatted: run cargo fmt"
cargo clippy --all-targets --quiet -- -D warnings || fail "cargo clippy --all-targets -- -D warnings failed"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run 'bosh-release/packages/*/packaging' images/webapp/www/cgi-bin/whoami)
shellcheck "${scripts[@]}" || fail "shellcheck found problems in the shell scripts"
echo "lint: cargo fmt, cargo clippy and shellcheck (${#scripts[@]} scripts) passed" >&2
