#!/usr/bin/env bash
# Compiles every package of a release tarball the way a BOSH agent does on a compilation VM, to prove the release
# builds offline before a director tries:
#
#   bosh-release/scripts/compile-packages.sh /tmp/caas-broker.tgz [WORK_DIR]
#
# Each package is unpacked into WORK_DIR/compile/<name> and its `packaging` runs there as the agent runs it:
# `bash -x packaging` with only BOSH_COMPILE_TARGET, BOSH_INSTALL_TARGET, BOSH_PACKAGE_NAME, BOSH_PACKAGES_DIR
# (WORK_DIR/packages, where the dependencies were installed) and PATH=/usr/local/bin:/usr/bin:/bin in the
# environment, and in a network namespace of its own with no interface up (`unshare --net`, root or user namespaces
# needed), so that anything that reaches for the network fails. The installed packages stay in WORK_DIR/packages
# (WORK_DIR defaults to a new temporary folder; its path is printed). Needs ruby to read release.MF.
set -euo pipefail

die() { echo "compile-packages: $*" >&2; exit 1; }
say() { echo "compile-packages: $*" >&2; }

[[ $# -ge 1 ]] || die "usage: compile-packages.sh RELEASE_TARBALL [WORK_DIR]"
tarball="$(realpath "$1")"
work="${2:-$(mktemp -d "${TMPDIR:-/tmp}/caas-broker-compile.XXXXXX")}"
mkdir -p "$work/release" "$work/compile" "$work/packages"
work="$(realpath "$work")"
tar -xzf "$tarball" -C "$work/release"

isolate=(unshare --net)
if [[ "$(id -u)" != 0 ]]; then isolate=(unshare --net --map-root-user); fi
"${isolate[@]}" true 2>/dev/null || die "cannot make a network namespace (${isolate[*]}); run as root"

# The packages in an order where each comes after its dependencies: "name" lines from release.MF.
mapfile -t order < <(ruby -ryaml -e '
  packages = YAML.safe_load(File.read(ARGV[0]))["packages"].to_h { |p| [p["name"], p["dependencies"] || []] }
  done = []
  until done.size == packages.size
    ready = packages.keys.reject { |n| done.include?(n) }.select { |n| (packages[n] - done).empty? }
    abort "dependency cycle among #{(packages.keys - done).join(", ")}" if ready.empty?
    done.concat(ready.sort)
  end
  puts done' "$work/release/release.MF")

for name in "${order[@]}"; do
  compile="$work/compile/$name" install="$work/packages/$name" started=$SECONDS
  rm -rf "$compile" "$install"
  mkdir -p "$compile" "$install"
  tar -xzf "$work/release/packages/$name.tgz" -C "$compile"
  say "compiling $name (log: $work/compile/$name.log)"
  if ! (cd "$compile" && "${isolate[@]}" env -i BOSH_COMPILE_TARGET="$compile" BOSH_INSTALL_TARGET="$install" \
    BOSH_PACKAGE_NAME="$name" BOSH_PACKAGES_DIR="$work/packages" PATH=/usr/local/bin:/usr/bin:/bin \
    bash -x packaging) >"$work/compile/$name.log" 2>&1; then
    tail -n 30 "$work/compile/$name.log" >&2
    die "compiling $name failed; its log is $work/compile/$name.log"
  fi
  say "compiled $name in $((SECONDS - started))s ($(du -sh "$install" | cut -f1) installed)"
done
echo "$work"
