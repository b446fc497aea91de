#!/usr/bin/env bash
# Builds the cf CLI at the version scripts/cf-cli/go.mod pins (code.cloudfoundry.org/cli/v8, static, CGO_ENABLED=0),
# once per cf and Go version, and prints the binary's path on stdout. The one way the project builds the cf CLI: the
# BOSH release's cf-cli blob (prepare-blobs.sh) and the Cloud Foundry tests (tests/cf/cf-api.sh) both use it.
#
#   cf="$(bosh-release/scripts/build-cf-cli.sh)"
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache): the binary goes to bin/cf-cli-<version>-<go version>/cf, the
# build's log to build-logs/cf-cli.log.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${CAAS_CACHE_DIR:-$REPO/.cache}"
MODULE=code.cloudfoundry.org/cli/v8

die() { echo "build-cf-cli: $*" >&2; exit 1; }
say() { echo "build-cf-cli: $*" >&2; }

command -v go >/dev/null || die "building the cf CLI needs Go (https://go.dev/dl), which is not on PATH"
version="$(awk -v m="$MODULE" '$1 == m { print $2; exit }' "$HERE/cf-cli/go.mod")"
[[ -n "$version" ]] || die "cannot read the pinned version of $MODULE from $HERE/cf-cli/go.mod"
bin="$CACHE_DIR/bin/cf-cli-$version-$(go env GOVERSION)/cf"
if [[ ! -x "$bin" ]]; then
  log="$CACHE_DIR/build-logs/cf-cli.log"
  started=$SECONDS
  mkdir -p "${bin%/*}" "$CACHE_DIR/build-logs"
  say "building the cf CLI $version from $MODULE (log: $log)"
  # A temporary file of this process's own: two builds sharing the cache each write theirs and the last rename wins.
  if ! (cd "$HERE/cf-cli" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o "$bin.tmp.$$" \
    -ldflags "-s -w -X $MODULE/version.binaryVersion=${version#v}" "$MODULE") >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "building the cf CLI failed; its log is $log"
  fi
  mv "$bin.tmp.$$" "$bin"
  say "built the cf CLI in $((SECONDS - started))s"
fi
echo "$bin"
