#!/usr/bin/env bash
# Builds the container images the test node runs, from Debian packages and pinned sources, without Docker, as OCI
# image-layout archives that `ctr -n k8s.io images import FILE` takes as they are.
#
#   images/build.sh [NAME...]   build the named images (all when none is named); an image whose inputs did not change
#                               since its archive was built is kept
#   images/build.sh --list      print one line per image: NAME REFERENCE ARCHIVE_PATH
#
# Images:
#   pause   registry.k8s.io/pause:<TAG>   build/pause/linux/pause.c of the k8s.io/kubernetes module pinned by
#                                         tests/cluster/kubernetes/go.mod, compiled with gcc -Os -static and stripped
#                                         (TAG from build/pause/Makefile); /pause as uid/gid 65535
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache) holds the archives ($CAAS_CACHE_DIR/images/NAME.tar, with
# NAME.key, the hash of the inputs it was built from, and NAME.packages.txt, the Debian packages in it), the build
# folders ($CAAS_CACHE_DIR/images/work, removed on exit) and the logs ($CAAS_CACHE_DIR/build-logs/images-NAME.log).
# SOURCE_DATE_EPOCH, when set, dates everything in the images; otherwise it is the time of the last git commit of
# the image's inputs.
#
# Archive format: a tar of an OCI image layout (oci-layout, index.json, blobs/sha256/...). The one manifest in
# index.json carries the full reference both as io.containerd.image.name and as org.opencontainers.image.ref.name, so
# a plain `ctr images import` names the image by it (containerd only prefixes references that are a bare tag).
#
# Reproducibility: every file's mtime is clamped to SOURCE_DATE_EPOCH, layer entries are sorted by name with numeric
# owners, the config's and history's dates are SOURCE_DATE_EPOCH, and the layout's tar is sorted and dated the same.
# pause is byte-reproducible for the same gcc and libc6-dev versions (both are part of its input hash).
#
# Needs (Debian packages): umoci, gcc, libc6-dev, binutils (strip), golang (go, to locate the Kubernetes module; it
# is downloaded through the Go module proxy the first time), jq, tar, coreutils, file. A missing one stops the script
# naming the packages to install.
#
# Every way this script stops says why on stderr, naming the step and its log.
set -euo pipefail
set -E

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE_DIR="${CAAS_CACHE_DIR:-$REPO/.cache}"

die() { echo "images: $*" >&2; exit 1; }
say() { echo "images: $*" >&2; }

mkdir -p "$CACHE_DIR" || die "cannot create the cache folder $CACHE_DIR (CAAS_CACHE_DIR)"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"
OUT="$CACHE_DIR/images"
WORK_ROOT="$OUT/work"
LOGS="$CACHE_DIR/build-logs"
IMAGES=(pause)
PROGRESS_SECONDS=30

# Anything that fails without its own message (set -e) still says what and where.
on_error() {
  [[ $BASHPID == "$$" ]] || return 0
  say "stopped: '$2' failed with status $1 (in ${FUNCNAME[1]:-the main script}, line $3)"
}
trap 'on_error $? "$BASH_COMMAND" "$LINENO"' ERR
trap 'say "interrupted (SIGINT)"; exit 130' INT
trap 'say "terminated (SIGTERM)"; exit 143' TERM

STEP_PID=""
WORK=""
# cleanup: stops an unfinished step, then removes the build folder.
cleanup() {
  if [[ -n "$STEP_PID" ]]; then
    say "stopping the unfinished step (process group $STEP_PID)"
    kill -TERM -- "-$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
  fi
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    rm -rf "$WORK" || say "could not remove the build folder $WORK"
  fi
  return 0
}
trap cleanup EXIT

# alive PID: the process exists and is not a zombie.
alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# tail_log FILE: the end of a log, framed.
tail_log() {
  [[ -s "$1" ]] || { say "($1 is empty or missing)"; return 0; }
  echo "----- last lines of $1 -----" >&2
  tail -n 20 "$1" >&2
  echo "----- end of $1 -----" >&2
}

# require_tools COMMAND:PACKAGE...: stops naming the Debian packages of the commands that are missing.
require_tools() {
  local missing=() packages=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null && continue
    missing+=("${pair%%:*}")
    [[ " ${packages[*]} " == *" ${pair#*:} "* ]] || packages+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  die "missing commands: ${missing[*]}; install the Debian packages ${packages[*]} (as root: apt-get install ${packages[*]}), then run this again"
}

# step IMAGE WHAT COMMAND...: runs COMMAND in a process group of its own with its output in IMAGE's log, saying every
# PROGRESS_SECONDS that it still runs; a failure stops with the end of the log.
step() {
  local image="$1" what="$2" log="$LOGS/images-$1.log" started=$SECONDS next rc=0
  shift 2
  printf '\n----- %s: %s\n+ %s\n' "$(date -u +%FT%TZ)" "$what" "$*" >>"$log"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  STEP_PID=$!
  next=$((SECONDS + PROGRESS_SECONDS))
  while alive "$STEP_PID"; do
    if ((SECONDS >= next)); then
      say "still building $image: $what ($((SECONDS - started)) s)"
      next=$((SECONDS + PROGRESS_SECONDS))
    fi
    sleep 0.2
  done
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  if ((rc != 0)); then
    tail_log "$log"
    die "building $image: $what failed (status $rc after $((SECONDS - started)) s); its log is $log"
  fi
}

# --- inputs ----------------------------------------------------------------------------------------------------------

KUBERNETES_DIR=""
KUBERNETES_VERSION=""
# kubernetes_module: the source folder and version of the k8s.io/kubernetes module tests/cluster/kubernetes pins.
kubernetes_module() {
  [[ -n "$KUBERNETES_DIR" ]] && return 0
  require_tools go:golang jq:jq
  local json
  json="$(cd "$REPO/tests/cluster/kubernetes" && go mod download -json k8s.io/kubernetes)" ||
    die "go mod download k8s.io/kubernetes (in tests/cluster/kubernetes) failed: ${json:-no output}"
  KUBERNETES_DIR="$(jq -r '.Dir // empty' <<<"$json")"
  KUBERNETES_VERSION="$(jq -r '.Version // empty' <<<"$json")"
  [[ -d "$KUBERNETES_DIR/build/pause/linux" ]] ||
    die "the k8s.io/kubernetes module has no build/pause/linux (go mod download said: $json)"
}

pause_tag() {
  kubernetes_module
  local tag
  tag="$(sed -n 's/^TAG ?= *//p' "$KUBERNETES_DIR/build/pause/Makefile")"
  [[ -n "$tag" ]] || die "no 'TAG ?=' line in $KUBERNETES_DIR/build/pause/Makefile"
  echo "$tag"
}

# reference NAME: the image's full reference.
reference() {
  case "$1" in
    pause) echo "registry.k8s.io/pause:$(pause_tag)" ;;
    *) die "unknown image '$1' (images: ${IMAGES[*]})" ;;
  esac
}

archive() { echo "$OUT/$1.tar"; }

# input_files NAME: the repository files an image is built from (besides this script), relative to the repository.
input_files() {
  case "$1" in
    pause) echo tests/cluster/kubernetes/go.mod ;;
  esac
}

# input_facts NAME: what else an image's content depends on, one fact a line (tool and package versions, sources).
input_facts() {
  case "$1" in
    pause)
      kubernetes_module
      echo "k8s.io/kubernetes $KUBERNETES_VERSION"
      echo "pause.c $(sha256sum <"$KUBERNETES_DIR/build/pause/linux/pause.c")"
      echo "tag $(pause_tag)"
      echo "gcc $(gcc -dumpfullversion)"
      echo "libc6-dev $(dpkg-query -W -f '${Version}' libc6-dev)"
      ;;
  esac
}

# source_date_epoch NAME: SOURCE_DATE_EPOCH if set, else the time of the last commit of the image's inputs.
source_date_epoch() {
  if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
    [[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds, not '$SOURCE_DATE_EPOCH'"
    echo "$SOURCE_DATE_EPOCH"
    return 0
  fi
  local paths epoch
  mapfile -t paths < <(input_files "$1")
  epoch="$(git -C "$REPO" log -1 --format=%ct -- images/build.sh "${paths[@]}")" ||
    die "git log of the inputs of $1 failed; set SOURCE_DATE_EPOCH to build outside a git checkout"
  [[ -n "$epoch" ]] || die "the inputs of $1 have no git commit yet; commit them or set SOURCE_DATE_EPOCH"
  echo "$epoch"
}

# input_key NAME EPOCH: the hash of everything the image is built from.
input_key() {
  local file
  {
    echo "epoch $2"
    sha256sum "$REPO/images/build.sh" | cut -d' ' -f1
    while read -r file; do
      echo "$file $(sha256sum <"$REPO/$file")"
    done < <(input_files "$1")
    input_facts "$1"
  } | sha256sum | cut -d' ' -f1
}

# --- packing ---------------------------------------------------------------------------------------------------------

# layer_tar ROOTFS TAR EPOCH [TAR_OPTIONS...]: an uncompressed layer of ROOTFS, sorted, numeric owners, mtimes clamped.
layer_tar() {
  local rootfs="$1" tar="$2" epoch="$3"
  shift 3
  tar --create --file="$tar" --directory="$rootfs" --format=gnu --sort=name --numeric-owner \
    --mtime="@$epoch" --clamp-mtime "$@" .
}

# iso_date EPOCH
iso_date() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# new_layout IMAGE LAYOUT: an OCI layout with an empty image tagged "build".
new_layout() {
  step "$1" "creating the OCI layout" umoci init --layout "$2"
  step "$1" "creating the image" umoci new --image "$2:build"
}

# finish_layout IMAGE LAYOUT EPOCH: drops unreferenced blobs, names the manifest by the image's full reference (for
# ctr import) and writes the archive.
finish_layout() {
  local image="$1" layout="$2" epoch="$3" ref tmp
  ref="$(reference "$image")"
  step "$image" "removing unreferenced blobs" umoci gc --layout "$layout"
  jq -c --arg ref "$ref" '.manifests |= map(select(.annotations["org.opencontainers.image.ref.name"] == "build")
      | .annotations = {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": $ref}
      | .platform = {"architecture": "amd64", "os": "linux"})' "$layout/index.json" >"$layout/index.json.new"
  [[ "$(jq '.manifests | length' "$layout/index.json.new")" == 1 ]] ||
    die "building $image: the layout $layout does not hold exactly one image tagged 'build'"
  mv "$layout/index.json.new" "$layout/index.json"
  chmod -R u=rwX,go=rX "$layout"
  tmp="$(archive "$image").new"
  step "$image" "writing the archive" tar --create --file="$tmp" --directory="$layout" --format=gnu --sort=name \
    --numeric-owner --owner=0 --group=0 --mtime="@$epoch" oci-layout index.json blobs
  mv "$tmp" "$(archive "$image")"
}

# --- images ----------------------------------------------------------------------------------------------------------

build_pause() {
  local epoch="$1" date src tag
  require_tools gcc:gcc strip:binutils umoci:umoci jq:jq file:file
  kubernetes_module
  tag="$(pause_tag)"
  src="$KUBERNETES_DIR/build/pause/linux/pause.c"
  date="$(iso_date "$epoch")"
  mkdir -p "$WORK/rootfs"
  step pause "compiling $src" gcc -Os -Wall -Werror -static "-DVERSION=v$tag-$KUBERNETES_VERSION" -o "$WORK/rootfs/pause" "$src"
  step pause "stripping pause" strip "$WORK/rootfs/pause"
  file "$WORK/rootfs/pause" | grep -q 'statically linked' || die "building pause: $WORK/rootfs/pause is not static: $(file "$WORK/rootfs/pause")"
  chmod 0755 "$WORK/rootfs" "$WORK/rootfs/pause"
  layer_tar "$WORK/rootfs" "$WORK/layer.tar" "$epoch"
  new_layout pause "$WORK/layout"
  step pause "adding the layer" umoci raw add-layer --image "$WORK/layout:build" --history.created "$date" \
    --history.created_by "gcc -Os -static build/pause/linux/pause.c (k8s.io/kubernetes $KUBERNETES_VERSION), strip" \
    "$WORK/layer.tar"
  step pause "configuring the image" umoci config --image "$WORK/layout:build" --created "$date" \
    --history.created "$date" --history.created_by "umoci config" --architecture amd64 --os linux \
    --config.user 65535:65535 --config.entrypoint /pause \
    --config.label "org.opencontainers.image.title=pause" --config.label "org.opencontainers.image.version=$tag" \
    --config.label "org.opencontainers.image.created=$date"
  finish_layout pause "$WORK/layout" "$epoch"
  : >"$OUT/pause.packages.txt"
}

# build NAME: builds the image unless its archive was built from the same inputs.
build() {
  local name="$1" epoch key started=$SECONDS
  epoch="$(source_date_epoch "$name")"
  key="$(input_key "$name" "$epoch")"
  if [[ -s "$(archive "$name")" && "$(cat "$OUT/$name.key" 2>/dev/null)" == "$key" ]]; then
    say "$name is up to date: $(archive "$name")"
    return 0
  fi
  say "building $name ($(reference "$name")); log: $LOGS/images-$name.log"
  mkdir -p "$OUT" "$WORK_ROOT" "$LOGS"
  : >"$LOGS/images-$name.log"
  rm -f "$OUT/$name.key"
  WORK="$(mktemp -d "$WORK_ROOT/$name.XXXXXX")"
  "build_${name//-/_}" "$epoch"
  echo "$key" >"$OUT/$name.key"
  rm -rf "$WORK"
  WORK=""
  say "built $name in $((SECONDS - started)) s: $(archive "$name") ($(du -h "$(archive "$name")" | cut -f1))"
}

main() {
  local names=() name
  if [[ "${1:-}" == --list ]]; then
    (($# == 1)) || die "--list takes no other argument"
    for name in "${IMAGES[@]}"; do
      echo "$name $(reference "$name") $(archive "$name")"
    done
    return 0
  fi
  for name in "$@"; do
    [[ " ${IMAGES[*]} " == *" $name "* ]] || die "unknown image '$name' (images: ${IMAGES[*]}; --list prints them)"
    names+=("$name")
  done
  ((${#names[@]})) || names=("${IMAGES[@]}")
  for name in "${names[@]}"; do
    build "$name"
  done
}

main "$@"
