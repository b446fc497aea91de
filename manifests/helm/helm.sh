#!/usr/bin/env bash
# The helm CLI for this chart, built from its official Go module (helm.sh/helm/v4, pinned by helm-cli/go.mod beside
# this script) on first use, then run with the given arguments:
#
#   manifests/helm/helm.sh lint manifests/helm/caas-broker
#   manifests/helm/helm.sh install caas-broker manifests/helm/caas-broker -n caas-broker-system
#   manifests/helm/helm.sh --build-only      build if needed and print the binary's path, run nothing
#
# The binary is cached in $CAAS_CACHE_DIR/bin/helm-<version>-<go version>/ (CAAS_CACHE_DIR defaults to <repo>/.cache,
# ignored by git), like the control plane of tests/cluster/cluster.sh; a failed build names its log
# ($CAAS_CACHE_DIR/build-logs/helm.log). Building needs Go and the Go module proxy the first time only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${CAAS_CACHE_DIR:-$REPO/.cache}"
MODULE="$HERE/helm-cli"

die() { echo "helm.sh: $*" >&2; exit 1; }
say() { echo "helm.sh: $*" >&2; }

# The version helm-cli/go.mod pins for helm.sh/helm/v4.
HELM_VERSION="$(awk '$1 == "helm.sh/helm/v4" { print $2; exit } $1 == "require" && $2 == "helm.sh/helm/v4" { print $3; exit }' "$MODULE/go.mod")"
[[ -n "$HELM_VERSION" ]] || die "cannot read the pinned helm version from $MODULE/go.mod"
command -v go >/dev/null || die "building helm needs Go (https://go.dev/dl), which is not on PATH"
GO_VERSION="$(go env GOVERSION)"
BIN_DIR="$CACHE_DIR/bin/helm-$HELM_VERSION-$GO_VERSION"
HELM="$BIN_DIR/helm"

build() {
  [[ -x "$HELM" ]] && return 0
  mkdir -p "$BIN_DIR" "$CACHE_DIR/build-logs"
  # Several callers (parallel tests) may arrive at once: one builds, the others wait for it.
  exec 8>"$BIN_DIR/.lock"
  flock 8
  if [[ ! -x "$HELM" ]]; then
    local log="$CACHE_DIR/build-logs/helm.log" started=$SECONDS version_pkg=helm.sh/helm/v4/internal/version
    say "building helm $HELM_VERSION from helm.sh/helm/v4/cmd/helm (log: $log)"
    # The ldflags of helm's own Makefile for a release build: the version stamped in, no "unreleased" metadata.
    if ! (cd "$MODULE" && CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X $version_pkg.version=$HELM_VERSION -X $version_pkg.metadata= -X $version_pkg.gitTreeState=clean" \
      -o "$HELM.tmp" helm.sh/helm/v4/cmd/helm) >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      rm -f "$HELM.tmp"
      die "building helm failed; its log is $log"
    fi
    mv "$HELM.tmp" "$HELM"
    say "built helm $HELM_VERSION in $((SECONDS - started))s"
  fi
  exec 8>&-
}

build
if [[ "${1:-}" == --build-only ]]; then
  echo "$HELM"
  exit 0
fi
exec "$HELM" "$@"
