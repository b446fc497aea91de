#!/usr/bin/env bash
# Checks the code before the tests run: formatting (cargo fmt), lints (cargo clippy on every target, warnings denied)
# and every shell script of the repository (shellcheck: the *.sh files and the scripts without that suffix that
# .ci/run, the BOSH packages and the test image run). ERB templates are checked where the BOSH release test renders
# them. Then the arrows between the modules (docs/design.md, "The code"): what may not import what, so that the
# broker's privileges stay in src/lifecycle and nothing below a face knows HTTP or HTML. Each failing check names
# itself; its findings are above.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "lint: $* (its findings are above)" >&2; exit 1; }

cargo fmt --check || fail "cargo fmt --check found code that is not formatted: run cargo fmt"
cargo clippy --all-targets --quiet -- -D warnings || fail "cargo clippy --all-targets -- -D warnings failed"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run 'bosh-release/packages/*/packaging' images/webapp/www/cgi-bin/whoami)
shellcheck "${scripts[@]}" || fail "shellcheck found problems in the shell scripts"

# forbid FOLDER PATTERN WHY: no line of code (comments aside) under src/FOLDER matches PATTERN.
arrows=0
forbid() {
  local found
  found="$(grep -rnE "$2" "src/$1" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)"
  if [[ -n "$found" ]]; then
    echo "$found" >&2
    fail "src/$1 may not use $2: $3"
  fi
  arrows=$((arrows + 1))
}
faces='crate::(osb|dashboard|server)\b'
http='\b(axum|askama|axum_extra|hyper)::'
forbid lifecycle "$faces|crate::tenant\b" "the lifecycle is below the faces and the tenant's domain"
forbid lifecycle "$http" "nothing below a face knows HTTP or HTML"
forbid tenant "$faces" "the tenant's domain is below the faces"
forbid tenant "$http" "nothing below a face knows HTTP or HTML"
forbid k8s "crate::(lifecycle|tenant|config|osb|dashboard|server)\b" "k8s is below the domain and knows no settings"
forbid catalog "crate::(lifecycle|tenant|config|osb|dashboard|server|k8s)\b" "the catalog is a leaf"
forbid osb "crate::(dashboard|tenant)\b" "the OSB face uses the lifecycle only"
echo "lint: cargo fmt, cargo clippy, shellcheck (${#scripts[@]} scripts) and $arrows module arrows passed" >&2
