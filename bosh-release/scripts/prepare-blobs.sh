#!/usr/bin/env bash
# Prepares what `bosh create-release` needs beyond the files git holds, so that the release compiles offline:
#
#   1. the broker's crates, `cargo vendor`ed for Cargo.lock      -> blob caas-broker-crates/vendored-crates.tgz
#   2. the Rust toolchain this repository pins (rustc, cargo and rust-std for x86_64-unknown-linux-gnu, from
#      `rustc --print sysroot`, without docs or sources)        -> blob rust-toolchain/rust-<version>-<host>.tgz
#   3. the cf CLI, built by scripts/build-cf-cli.sh from code.cloudfoundry.org/cli/v8 at the version
#      scripts/cf-cli/go.mod pins (static, CGO_ENABLED=0)          -> blob cf-cli/cf-<version>-linux-amd64.tgz
#   4. a copy of the broker's sources (Cargo.toml, Cargo.lock, src/, catalog/) in src/caas-broker/, where the
#      caas-broker package takes its files from (README.md says why a copy and not a symlink)
#
# Idempotent and cached: each tarball is written once per content key (Cargo.lock and cargo version; toolchain
# release and commit; cf version and Go version) under $CAAS_CACHE_DIR/bosh-blobs/ (default <repo>/.cache), packed
# reproducibly (fixed order, owner and time), and `bosh add-blob` runs only when config/blobs.yml does not already
# hold that exact blob. Blobs of an older version of the same package are removed from config/blobs.yml.
#
#   bosh-release/scripts/prepare-blobs.sh && bosh-release/scripts/bosh-cli.sh create-release --force
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RELEASE_DIR="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$RELEASE_DIR/.." && pwd)"
CACHE_DIR="${CAAS_CACHE_DIR:-$REPO/.cache}"
BLOB_CACHE="$CACHE_DIR/bosh-blobs"
BOSH=(bash "$HERE/bosh-cli.sh")
HOST=x86_64-unknown-linux-gnu
# Later than the epoch, so that tar does not warn about implausibly old files when a package unpacks a blob.
PACK_MTIME=2024-01-01T00:00:00Z

die() { echo "prepare-blobs: $*" >&2; exit 1; }
say() { echo "prepare-blobs: $*" >&2; }

# pack OUT DIR PATH...: a gzipped tar of PATHs under DIR whose bytes depend only on their contents and modes.
pack() {
  local out="$1" dir="$2"
  shift 2
  # A temporary file of this process's own: two runs sharing the cache (two checkouts, two CI jobs) each write theirs
  # and the last rename wins; both are byte-identical.
  tar --sort=name --mtime="$PACK_MTIME" --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$dir" -cf - "$@" | gzip -n -6 >"$out.tmp.$$"
  mv "$out.tmp.$$" "$out"
}

# blob_sha PATH: the sha256 config/blobs.yml records for the blob PATH, if any.
blob_sha() {
  awk -v path="$1:" '
    /^[^ ]/ { current = $1 }
    current == path && $1 == "sha:" { sub(/^sha256:/, "", $2); print $2; exit }
  ' "$RELEASE_DIR/config/blobs.yml"
}

# add_blob FILE PATH: makes FILE the release's blob PATH, and the only blob in PATH's folder.
add_blob() {
  local file="$1" path="$2" folder="${2%%/*}" listed sha
  while read -r listed; do
    if [[ "$listed" != "$path" ]]; then
      say "removing the stale blob $listed"
      "${BOSH[@]}" remove-blob "$listed" >/dev/null
    fi
  done < <(awk -F: -v folder="$folder/" '/^[^ -]/ && index($1, folder) == 1 { print $1 }' \
    "$RELEASE_DIR/config/blobs.yml")
  sha="$(sha256sum "$file" | cut -d' ' -f1)"
  if [[ "$(blob_sha "$path")" == "$sha" && -f "$RELEASE_DIR/blobs/$path" ]]; then
    say "blob $path is up to date ($(du -h "$file" | cut -f1))"
    return 0
  fi
  say "adding blob $path ($(du -h "$file" | cut -f1))"
  "${BOSH[@]}" add-blob "$file" "$path" >/dev/null
  [[ "$(blob_sha "$path")" == "$sha" ]] || die "bosh add-blob did not record $path with sha256 $sha"
}

vendored_crates() {
  local key out work
  key="$( (sha256sum "$REPO/Cargo.lock" | cut -d' ' -f1; cd "$REPO" && cargo --version) | sha256sum | cut -c1-16)"
  out="$BLOB_CACHE/vendored-crates-$key.tgz"
  if [[ ! -s "$out" ]]; then
    say "vendoring the crates of Cargo.lock"
    work="$(mktemp -d "$BLOB_CACHE/vendor.XXXXXX")"
    if ! (cd "$REPO" && cargo vendor --locked --quiet "$work/vendor" >/dev/null); then
      rm -rf "$work"
      die "cargo vendor failed"
    fi
    pack "$out" "$work" vendor
    rm -rf "$work"
  fi
  add_blob "$out" caas-broker-crates/vendored-crates.tgz
}

rust_toolchain() {
  local info version commit host sysroot out
  info="$(cd "$REPO" && rustc -vV)"
  version="$(awk '$1 == "release:" { print $2 }' <<<"$info")"
  commit="$(awk '$1 == "commit-hash:" { print substr($2, 1, 12) }' <<<"$info")"
  host="$(awk '$1 == "host:" { print $2 }' <<<"$info")"
  [[ "$host" == "$HOST" ]] || die "the Rust toolchain is for $host; the release needs one for $HOST"
  sysroot="$(cd "$REPO" && rustc --print sysroot)"
  out="$BLOB_CACHE/rust-$version-$commit-$HOST.tgz"
  if [[ ! -s "$out" ]]; then
    say "packing the Rust $version toolchain from $sysroot"
    local paths=(bin/rustc bin/cargo "lib/rustlib/$HOST/lib" "lib/rustlib/$HOST/bin")
    local lib
    for lib in "$sysroot"/lib/*.so*; do paths+=("lib/${lib##*/}"); done
    [[ -x "$sysroot/bin/cargo" ]] || die "$sysroot has no cargo"
    pack "$out" "$sysroot" "${paths[@]}"
  fi
  add_blob "$out" "rust-toolchain/rust-$version-$HOST.tgz"
}

cf_cli() {
  local version go_version bin out work
  bin="$(bash "$HERE/build-cf-cli.sh")" || die "the cf CLI could not be built (see the message above)"
  # .../bin/cf-cli-<version>-<go version>/cf
  version="${bin%/*}"
  version="${version##*/cf-cli-}"
  go_version="go${version##*-go}"
  version="${version%-go*}"
  out="$BLOB_CACHE/cf-${version#v}-linux-amd64-$go_version.tgz"
  if [[ ! -s "$out" ]]; then
    work="$(mktemp -d "$BLOB_CACHE/cf.XXXXXX")"
    cp "$bin" "$work/cf"
    pack "$out" "$work" cf
    rm -rf "$work"
  fi
  add_blob "$out" "cf-cli/cf-${version#v}-linux-amd64.tgz"
}

# A fresh copy each time, swapped in whole; BOSH fingerprints package files by content, so an unchanged source
# gives the same package version. Cargo reads the entry file of every target Cargo.toml declares (tests, benches,
# examples) before it builds the one binary the package asks for, so those files get empty stand-ins: the package
# changes when a target is added or removed, not when a test is edited.
broker_sources() {
  local dest="$RELEASE_DIR/src/caas-broker" stage="$RELEASE_DIR/src/.caas-broker.tmp" targets target
  # Fails early, here rather than on a compilation VM, when Cargo.lock does not match Cargo.toml.
  (cd "$REPO" && cargo metadata --format-version 1 --offline --locked >/dev/null) ||
    die "Cargo.lock is not up to date with Cargo.toml (the package builds with --locked)"
  targets="$(cd "$REPO" && cargo metadata --no-deps --format-version 1 --offline)" || die "cargo metadata failed"
  rm -rf "$stage"
  mkdir -p "$stage"
  cp "$REPO/Cargo.toml" "$REPO/Cargo.lock" "$stage/"
  cp -R "$REPO/src" "$REPO/catalog" "$stage/"
  while read -r target; do
    [[ -e "$stage/$target" ]] && continue
    mkdir -p "$(dirname "$stage/$target")"
    echo "// Stand-in: the caas-broker BOSH package builds only the binary (bosh-release/scripts/prepare-blobs.sh)." \
      >"$stage/$target"
  done < <(jq -r --arg root "$REPO/" '.packages[0].targets[]
    | select(any(.kind[]; . != "lib" and . != "bin")) | .src_path | ltrimstr($root)' <<<"$targets")
  rm -rf "$dest"
  mv "$stage" "$dest"
  say "copied the broker's sources to ${dest#"$REPO"/}"
}

command -v cargo >/dev/null || die "needs cargo (rustup; the toolchain is pinned in rust-toolchain.toml)"
command -v go >/dev/null || die "needs Go to build the BOSH and cf CLIs"
command -v jq >/dev/null || die "needs jq (bosh-release/scripts/install-deps.sh installs it)"
mkdir -p "$BLOB_CACHE"
vendored_crates
rust_toolchain
cf_cli
broker_sources
