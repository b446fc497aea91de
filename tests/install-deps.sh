#!/usr/bin/env bash
# Installs what the build and the tests need when it is missing, so that `bash tests/run.sh` sets itself up on a
# fresh Debian machine: system packages, then each part's own installer (fuzzer, browser test, BOSH release test),
# each quick when already done. Packages are installed with apt-get when this runs as root; otherwise it stops and
# names the packages that are missing. Go and Rust come with the machine image; their absence is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "install-deps: $*" >&2; }

need=()
# The control plane (tests/cluster/cluster.sh), then the real node (tests/cluster/real-node.sh: containerd, runc, CNI
# plugins, iptables, ipset and nft for kube-proxy, kube-router and its clean-up), then the images it runs
# (images/build.sh: umoci, debootstrap, busybox, gcc, file; gcc also builds the SQLite driver of the OIDC provider,
# tests/oidc/dex.sh); shellcheck for tests/lint.sh. A command may be an absolute path.
for pair in openssl:openssl curl:curl flock:util-linux setsid:util-linux jq:jq python3:python3 \
  ip:iproute2 iptables:iptables ip6tables:iptables ipset:ipset nft:nftables conntrack:conntrack containerd:containerd \
  runc:runc /usr/lib/cni/bridge:containernetworking-plugins socat:socat ethtool:ethtool \
  umoci:umoci debootstrap:debootstrap /bin/busybox:busybox-static gcc:gcc file:file shellcheck:shellcheck; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
    say "missing Debian packages: ${need[*]}; install them (as root: apt-get install ${need[*]}) or run this as root"
    exit 1
  fi
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${need[@]}"
fi
missing=()
command -v go >/dev/null || missing+=("Go >= 1.26 (https://go.dev/dl; it builds the control plane)")
command -v cargo >/dev/null || missing+=("Rust (https://rustup.rs; rust-toolchain.toml pins the toolchain)")
if ((${#missing[@]})); then
  say "not on PATH: $(printf '%s; ' "${missing[@]}")the machine image is expected to provide them"
  exit 1
fi

for installer in tests/fuzz/install-deps.sh tests/browser/install-deps.sh bosh-release/scripts/install-deps.sh; do
  bash "$installer" || { say "$installer failed (its message is above)"; exit 1; }
done
