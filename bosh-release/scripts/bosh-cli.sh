#!/usr/bin/env bash
# The BOSH CLI, built from its official Go module at the version scripts/bosh-cli/go.mod pins, then run with the
# arguments given, from the release folder (bosh-release/):
#
#   bosh-release/scripts/bosh-cli.sh create-release --force --tarball /tmp/caas-broker.tgz
#
# The binary is built once (needs the Go module proxy the first time) and cached in
# $CAAS_CACHE_DIR/bin/bosh-cli-<version>-<go version>/bosh (CAAS_CACHE_DIR defaults to <repo>/.cache, as for
# tests/cluster/cluster.sh). `bosh-cli.sh path` builds it if needed and prints that path.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RELEASE_DIR="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$RELEASE_DIR/.." && pwd)"
CACHE_DIR="${CAAS_CACHE_DIR:-$REPO/.cache}"
MODULE=github.com/cloudfoundry/bosh-cli/v7

die() { echo "bosh-cli: $*" >&2; exit 1; }

command -v go >/dev/null || die "building the BOSH CLI needs Go (https://go.dev/dl), which is not on PATH"
VERSION="$(awk -v m="$MODULE" '$1 == m { print $2; exit }' "$HERE/bosh-cli/go.mod")"
[[ -n "$VERSION" ]] || die "cannot read the pinned version of $MODULE from $HERE/bosh-cli/go.mod"
GO_VERSION="$(go env GOVERSION)"
BIN_DIR="$CACHE_DIR/bin/bosh-cli-$VERSION-$GO_VERSION"
BOSH="$BIN_DIR/bosh"

build() {
  mkdir -p "$BIN_DIR" "$CACHE_DIR/build-logs"
  local log="$CACHE_DIR/build-logs/bosh-cli.log"
  # One build at a time: a second caller waits for the first and then finds the binary.
  (
    flock 9
    if [[ -x "$BOSH" ]]; then exit 0; fi
    started=$SECONDS
    echo "bosh-cli: building the BOSH CLI $VERSION from $MODULE (log: $log)" >&2
    if ! (cd "$HERE/bosh-cli" && go build -trimpath -o "$BOSH.tmp" \
      -ldflags "-s -w -X $MODULE/cmd.VersionLabel=${VERSION#v}" "$MODULE") >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      die "building the BOSH CLI failed; its log is $log"
    fi
    mv "$BOSH.tmp" "$BOSH"
    echo "bosh-cli: built in $((SECONDS - started))s" >&2
  ) 9>"$BIN_DIR/.lock"
}

[[ -x "$BOSH" ]] || build
if [[ "${1:-}" == path ]]; then
  echo "$BOSH"
  exit 0
fi
cd "$RELEASE_DIR"
exec "$BOSH" "$@"
