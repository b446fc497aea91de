#!/usr/bin/env bash
# Installs what building the BOSH release and tests/bosh_release.rs need on a fresh Debian machine, when missing:
# ruby (renders the job templates, reads release.MF), jq (reads `cargo metadata`), git (bosh create-release records
# the commit), openssl (the test's TLS certificate), flock (bosh-cli.sh builds the CLI once) and unshare
# (compile-packages.sh cuts the network). Go and Rust come with the machine image. Idempotent; run as root.
set -euo pipefail

need=()
for pair in ruby:ruby jq:jq git:git openssl:openssl flock:util-linux tar:tar gzip:gzip unshare:util-linux; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# ruby's erb and yaml are in Debian's ruby package; an older or partial install may lack them.
if command -v ruby >/dev/null && ! ruby -rerb -ryaml -rjson -e '' 2>/dev/null; then need+=(ruby); fi
if ((${#need[@]})); then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
    echo "bosh-release/install-deps: missing Debian packages ${need[*]}; install them (as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "bosh-release/install-deps: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${need[@]}"
fi
command -v go >/dev/null || { echo "install-deps: Go is required (it builds the BOSH and cf CLIs)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "install-deps: Rust (rustup) is required" >&2; exit 1; }
