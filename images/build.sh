#!/usr/bin/env bash
# Builds the container images the test node runs, from Debian packages and pinned sources, without Docker, as OCI
# image-layout archives that `ctr -n k8s.io images import FILE` takes as they are.
#
#   images/build.sh [NAME...]   build the named images (all when none is named); an image whose inputs did not change
#                               since its archive was built is kept
#   images/build.sh --list      print one line per image: NAME REFERENCE ARCHIVE_PATH
#
# Images:
#   pause              registry.k8s.io/pause:<TAG>
#                      build/pause/linux/pause.c of the k8s.io/kubernetes module pinned by
#                      tests/cluster/kubernetes/go.mod, compiled with gcc -Os -static and stripped (TAG from
#                      build/pause/Makefile, as upstream); /pause as uid/gid 65535
#   busybox            localhost/caas/busybox:<version of Debian's busybox-static>
#                      the installed busybox-static binary with a link for each applet (/bin/sh, wget, nc, httpd, ...),
#                      /etc/passwd and /etc/group (root, app 1000, nobody 65534); default command sh
#   webapp             localhost/caas/webapp:1
#                      the busybox layer plus images/webapp/www and start.sh (`httpd -f -v -p 8080 -h /www` as
#                      1000:1000, after holding ALLOCATE_MB MiB of memory when that is set), port 8080, / is
#                      index.html, /cgi-bin/whoami answers {"hostname": ..., "greeting": $GREETING}
#   streaming-session  ghcr.io/caas-broker/streaming-session:1.0.0 (the broker's default workloads.session_image)
#                      the file system images/streaming-session/Dockerfile produces: Debian bookworm (debootstrap
#                      minbase, configured like the debian:bookworm-slim image: slim dpkg excludes, its apt settings,
#                      policy-rc.d), i386 and non-free added, the Dockerfile's debconf answers and packages
#                      (--no-install-recommends), user steam 1000, Selkies' pinned wheels (requirements.txt, from
#                      PyPI, checked against their hashes) in the venv /opt/selkies, the two scripts in
#                      /usr/local/bin, Selkies' joystick interposer (js-interposer/joystick_interposer.c) compiled
#                      64-bit and 32-bit in a copy of the debootstrapped system with gcc and gcc-multilib (the
#                      Dockerfile's build stage; the image gets the two libraries only); the same config (USER 1000:1000, WORKDIR /home/steam, HOME, STATE_DIR, PATH,
#                      port 6080, entrypoint.sh).
#                      Needs root: debootstrap and apt-get run in a chroot with /proc and /dev mounted, unmounted on
#                      every exit. Packages come from http://deb.debian.org/debian and .../debian-security
#                      (CAAS_DEBIAN_MIRROR=URL/debian moves both), the wheels from PyPI, trusting the host's CA
#                      bundle (PIP_CERT, else /etc/ssl/certs/ca-certificates.crt); pip's other settings are not passed.
#   streaming-session-test  localhost/caas/streaming-session-test:1
#                      streaming-session plus python3-tk, pulseaudio-utils and tests/browser/colour_app.py in
#                      /opt/caas-test: a local
#                      app for the real node's session test (SteamCMD cannot download there); built after, and on,
#                      the streaming-session archive
#
# Environment: CAAS_CACHE_DIR (default <repo>/.cache) holds the archives ($CAAS_CACHE_DIR/images/NAME.tar, beside it
# NAME.key, the hash of the inputs it was built from, and NAME.packages.txt, the Debian packages in it, also in the
# image at /usr/share/caas/packages.txt), the downloaded Debian packages ($CAAS_CACHE_DIR/images/debs) and Python
# wheels ($CAAS_CACHE_DIR/images/wheels, pip's cache), reused by the next build and never pruned, the build folders
# ($CAAS_CACHE_DIR/images/work/NAME.PID.*, removed on exit, and at the next run when a killed one left them) and the logs ($CAAS_CACHE_DIR/build-logs/images-NAME.log).
# SOURCE_DATE_EPOCH, when set, dates everything in the images; otherwise it is the time of the last git commit of the
# image's inputs (this script and the image's files).
#
# The input hash covers this script, the image's files in the repository, SOURCE_DATE_EPOCH and the versions of what
# is copied or compiled from the host (gcc and libc6-dev for pause, busybox-static for busybox and webapp). It cannot
# cover the Debian archive: streaming-session keeps the packages it was first built with until its archive (or its
# .key) is deleted, then takes the archive's current ones.
#
# Archive format: a tar of an OCI image layout (oci-layout, index.json, blobs/sha256/...), amd64. The one manifest in
# index.json carries the full reference both as io.containerd.image.name and as org.opencontainers.image.ref.name, so
# a plain `ctr images import` names the image by it (containerd prefixes only references that are a bare tag).
#
# Reproducibility: every layer entry is sorted by name, with numeric owners and its mtime clamped to
# SOURCE_DATE_EPOCH; the config's and the history's dates are SOURCE_DATE_EPOCH; the layout's tar is sorted, owned by
# 0:0 and dated the same; umoci compresses layers deterministically. pause, busybox and webapp are byte-reproducible
# from the same inputs (same gcc and libc6-dev, same busybox-static). streaming-session is byte-reproducible from the
# same package versions (two builds gave the same archive), but those are not pinned: Debian point releases and
# security updates change them, so a build on another day can differ; each build records them in NAME.packages.txt.
# The Python wheels are pinned by hash; pip compiles their modules with SOURCE_DATE_EPOCH set, which makes
# hash-checked .pyc files that do not depend on the build's time.
# The joystick interposer's libraries are byte-reproducible from the same gcc (no debug information, no dates).
# What would vary from one build to the next is removed (the dpkg, alternatives and apt logs, ldconfig's aux-cache)
# or fixed (the dates in /etc/shadow, /etc/machine-id from SOURCE_DATE_EPOCH, /etc/hostname "localhost").
# An apt-get update whose index files a mirror serves inconsistently (caught mid-sync) is tried three times; then
# the build goes on without those index files, and says which.
#
# Needs (Debian packages): umoci, jq, tar, coreutils, util-linux (flock, setsid, findmnt), mount, file; pause: gcc,
# libc6-dev, binutils, golang (go locates the Kubernetes module; the Go module proxy is needed the first time);
# busybox and webapp: busybox-static, and root (the files belong to root and uid 1000); streaming-session: root,
# debootstrap and wget, and the network to deb.debian.org. Run as root, this installs a missing package with apt-get;
# otherwise it stops naming it.
#
# Every way this script stops says why on stderr, naming the step and its log.

# The whole script is one { ... } block that bash parses before it runs any of it, so that editing the script while
# a build runs (a git checkout, a pull) cannot make the running copy read garbage. (shellcheck cannot see that the
# functions and traps inside it are called.)
# shellcheck disable=SC2317
{
SCRIPT_NAME=images
# The shell options, HERE (images/), REPO, CACHE_DIR, messages, the ERR/INT/TERM traps, tail_log, alive,
# install_packages and require_commands.
# shellcheck source=tests/lib/script.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib/script.sh"
umask 022
OUT="$CACHE_DIR/images"
WORK_ROOT="$OUT/work"
DEBS="$OUT/debs"
WHEELS="$OUT/wheels"
LOGS="$CACHE_DIR/build-logs"
MIRROR="${CAAS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMAGES=(pause busybox webapp streaming-session streaming-session-test)
# The image being built, for messages and its log.
BUILDING=""
PROGRESS_SECONDS=30
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EPOCH_OVERRIDE="${SOURCE_DATE_EPOCH:-}"
LISTING=""

STEP_PID=""
WORK=""
LOCK_FD=""
# cleanup: stops an unfinished step (its whole process group), then unmounts and removes the build folder.
cleanup() {
  if [[ -n "$STEP_PID" ]]; then
    say "stopping the unfinished step (process group $STEP_PID)"
    kill -TERM -- "-$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
    STEP_PID=""
  fi
  if [[ -n "$WORK" ]]; then
    release_work "$WORK" || true
    WORK=""
  fi
  return 0
}
trap cleanup EXIT

# package_version PACKAGE: the installed version of a Debian package, installed first if missing.
package_version() {
  local status
  status="$(dpkg-query -W -f '${db:Status-Status} ${Version}' "$1" 2>&1)" || status=""
  if [[ "$status" != "installed "* ]]; then
    [[ -z "$LISTING" ]] || die "the Debian package $1 is missing; install it (as root: apt-get install $1)"
    install_packages "the package $1" "$1"
    status="$(dpkg-query -W -f '${db:Status-Status} ${Version}' "$1")"
  fi
  echo "${status#installed }"
}

STEP_STATUS=0
# run_step IMAGE WHAT COMMAND...: runs COMMAND in a process group of its own with its output in IMAGE's log, saying
# every PROGRESS_SECONDS that it still runs; returns its status (also in STEP_STATUS).
run_step() {
  local image="$1" what="$2" log="$LOGS/images-$1.log" started=$SECONDS next
  shift 2
  printf '\n----- %s: %s\n+ %s\n' "$(date -u +%FT%TZ)" "$what" "$*" >>"$log"
  # Started in the background without job control, setsid makes this very process the leader of a new group. The
  # step must not inherit the image's lock: a step a killed run left behind would hold it.
  setsid "$@" >>"$log" 2>&1 </dev/null {LOCK_FD}>&- &
  STEP_PID=$!
  next=$((SECONDS + PROGRESS_SECONDS))
  while alive "$STEP_PID"; do
    if ((SECONDS >= next)); then
      say "still building $image: $what ($((SECONDS - started)) s)"
      next=$((SECONDS + PROGRESS_SECONDS))
    fi
    sleep 0.2
  done
  STEP_STATUS=0
  wait "$STEP_PID" || STEP_STATUS=$?
  STEP_PID=""
  return "$STEP_STATUS"
}

# step IMAGE WHAT COMMAND...: run_step, and a failure stops with the end of the log.
step() {
  local started=$SECONDS log="$LOGS/images-$1.log"
  run_step "$@" && return 0
  tail_log "$log"
  die "building $1: $2 failed (status $STEP_STATUS after $((SECONDS - started)) s); its log is $log"
}

# --- build folders and mounts ----------------------------------------------------------------------------------------

# mounts_under DIR: the mount points at or below DIR, deepest first.
mounts_under() {
  findmnt -rn -o TARGET | awk -v dir="$1" '$0 == dir || index($0, dir "/") == 1' | sort -r
}

# release_work DIR: unmounts everything below the build folder DIR, then removes it. Nothing is removed while a
# mount remains (it could be the host's /dev).
release_work() {
  local dir="$1" target left
  [[ -d "$dir" ]] || return 0
  while read -r target; do
    [[ -n "$target" ]] || continue
    umount "$target" || umount --lazy "$target" || say "could not unmount $target"
  done < <(mounts_under "$dir")
  left="$(mounts_under "$dir")"
  if [[ -n "$left" ]]; then
    say "not removing the build folder $dir: still mounted there: $left"
    return 1
  fi
  rm -rf --one-file-system "$dir" || { say "could not remove the build folder $dir"; return 1; }
}

# processes_in DIR: the processes whose root or working folder is below DIR (a killed run's chroot steps).
processes_in() {
  local proc root cwd
  for proc in /proc/[0-9]*; do
    { root="$(readlink "$proc/root")" && cwd="$(readlink "$proc/cwd")"; } 2>/dev/null || continue
    if [[ "$root/" == "$1/"* || "$cwd/" == "$1/"* ]]; then echo "${proc#/proc/}"; fi
  done
}

# release_stale_work: build folders of runs that were killed (their pid is in the name and no longer runs), and the
# steps those runs left running in them.
release_stale_work() {
  local dir pid pids
  [[ -d "$WORK_ROOT" ]] || return 0
  for dir in "$WORK_ROOT"/*.*.*; do
    [[ -d "$dir" ]] || continue
    pid="${dir##*/}"
    pid="${pid#*.}"
    pid="${pid%%.*}"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    alive "$pid" && continue
    say "removing the build folder $dir, left by an earlier run (pid $pid) that did not finish"
    mapfile -t pids < <(processes_in "$dir")
    if ((${#pids[@]})); then
      say "stopping what that run left running there: pids ${pids[*]}"
      kill -KILL "${pids[@]}" 2>/dev/null || true
      sleep 1
    fi
    release_work "$dir" || die "cannot clean up $dir; unmount what is mounted there and remove it"
  done
}

# --- inputs ----------------------------------------------------------------------------------------------------------

KUBERNETES_DIR=""
KUBERNETES_VERSION=""
# kubernetes_module: the source folder and version of the k8s.io/kubernetes module tests/cluster/kubernetes pins.
kubernetes_module() {
  [[ -n "$KUBERNETES_DIR" ]] && return 0
  require_commands go:golang jq:jq
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

BUSYBOX=/bin/busybox
# busybox_version: the upstream version of the installed busybox-static (1:1.35.0-4+deb12u1 -> 1.35.0).
busybox_version() {
  local version
  version="$(package_version busybox-static)"
  version="${version#*:}"
  echo "${version%%-*}"
}

# reference NAME: the image's full reference.
reference() {
  case "$1" in
    pause) echo "registry.k8s.io/pause:$(pause_tag)" ;;
    busybox) echo "localhost/caas/busybox:$(busybox_version)" ;;
    webapp) echo "localhost/caas/webapp:1" ;;
    streaming-session) echo "ghcr.io/caas-broker/streaming-session:1.0.0" ;;
    streaming-session-test) echo "localhost/caas/streaming-session-test:1" ;;
    *) die "unknown image '$1' (images: ${IMAGES[*]})" ;;
  esac
}

archive() { echo "$OUT/$1.tar"; }

# input_files NAME: the repository files an image is built from (besides this script), relative to the repository.
input_files() {
  case "$1" in
    pause) echo tests/cluster/kubernetes/go.mod ;;
    webapp) find "$REPO/images/webapp" -type f -printf 'images/webapp/%P\n' | sort ;;
    streaming-session)
      printf 'images/streaming-session/%s\n' Dockerfile entrypoint.sh requirements.txt steamcmd-install.sh \
        js-interposer/joystick_interposer.c
      ;;
    streaming-session-test) echo tests/browser/colour_app.py ;;
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
      echo "libc6-dev $(package_version libc6-dev)"
      ;;
    busybox | webapp)
      echo "busybox-static $(package_version busybox-static) $(sha256sum <"$BUSYBOX")"
      ;;
    streaming-session)
      echo "mirror $MIRROR"
      ;;
  esac
  if [[ "$1" == webapp ]]; then echo "busybox layer epoch $(source_date_epoch busybox)"; fi
  if [[ "$1" == streaming-session-test ]]; then echo "streaming-session $(cat "$OUT/streaming-session.key" 2>&1)"; fi
}

# source_date_epoch NAME: SOURCE_DATE_EPOCH if set, else the time of the last commit of the image's inputs.
source_date_epoch() {
  if [[ -n "$EPOCH_OVERRIDE" ]]; then
    [[ "$EPOCH_OVERRIDE" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds, not '$EPOCH_OVERRIDE'"
    echo "$EPOCH_OVERRIDE"
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
      echo "$file $(stat -c %a "$REPO/$file") $(sha256sum <"$REPO/$file")"
    done < <(input_files "$1")
    input_facts "$1"
  } | sha256sum | cut -d' ' -f1
}

# --- packing ---------------------------------------------------------------------------------------------------------

# layer_tar IMAGE ROOTFS TAR EPOCH [TAR_OPTIONS...] MEMBER...: an uncompressed layer of the MEMBERs of ROOTFS (each
# on its file system only), sorted, numeric owners, mtimes clamped to EPOCH.
layer_tar() {
  local image="$1" rootfs="$2" tar="$3" epoch="$4"
  shift 4
  step "$image" "packing $rootfs into a layer" tar --create --file="$tar" --directory="$rootfs" --format=gnu \
    --sort=name --numeric-owner --one-file-system --mtime="@$epoch" --clamp-mtime "$@"
}

# iso_date EPOCH
iso_date() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# new_layout IMAGE LAYOUT: an OCI layout with an empty amd64 image tagged "build".
new_layout() {
  step "$1" "creating the OCI layout" umoci init --layout "$2"
  step "$1" "creating the image" umoci new --image "$2:build"
}

# add_layer IMAGE LAYOUT TAR EPOCH CREATED_BY: appends the layer TAR, with a history entry dated EPOCH.
add_layer() {
  step "$1" "adding a layer ($5)" umoci raw add-layer --image "$2:build" --history.created "$(iso_date "$4")" \
    --history.created_by "$5" "$3"
}

# configure IMAGE LAYOUT EPOCH UMOCI_CONFIG_OPTIONS...: the image's config, dated EPOCH, with the OCI title, version
# and creation labels.
configure() {
  local image="$1" layout="$2" date ref
  date="$(iso_date "$3")"
  ref="$(reference "$image")"
  shift 3
  step "$image" "configuring the image" umoci config --image "$layout:build" --created "$date" \
    --history.created "$date" --history.created_by "umoci config" --architecture amd64 --os linux \
    --config.label "org.opencontainers.image.title=$image" --config.label "org.opencontainers.image.version=${ref##*:}" \
    --config.label "org.opencontainers.image.created=$date" "$@"
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

# --- pause -----------------------------------------------------------------------------------------------------------

build_pause() {
  local epoch="$1" src tag rootfs="$WORK/rootfs"
  require_commands gcc:gcc strip:binutils umoci:umoci jq:jq file:file
  kubernetes_module
  tag="$(pause_tag)"
  src="$KUBERNETES_DIR/build/pause/linux/pause.c"
  mkdir -p "$rootfs"
  step pause "compiling $src" gcc -Os -Wall -Werror -static "-DVERSION=v$tag-$KUBERNETES_VERSION" -o "$rootfs/pause" "$src"
  step pause "stripping pause" strip "$rootfs/pause"
  file "$rootfs/pause" | grep -q 'statically linked' ||
    die "building pause: $rootfs/pause is not statically linked: $(file "$rootfs/pause")"
  chmod 0755 "$rootfs" "$rootfs/pause"
  layer_tar pause "$rootfs" "$WORK/layer.tar" "$epoch" .
  new_layout pause "$WORK/layout"
  add_layer pause "$WORK/layout" "$WORK/layer.tar" "$epoch" \
    "gcc -Os -static build/pause/linux/pause.c (k8s.io/kubernetes $KUBERNETES_VERSION), strip"
  configure pause "$WORK/layout" "$epoch" --config.user 65535:65535 --config.entrypoint /pause
  finish_layout pause "$WORK/layout" "$epoch"
  : >"$OUT/pause.packages.txt"
}

# --- busybox and webapp ----------------------------------------------------------------------------------------------

# busybox_rootfs DIR: Debian's busybox-static with a symbolic link for each applet, a few users, an empty /tmp.
busybox_rootfs() {
  local dir="$1" applet version
  version="$(package_version busybox-static)"
  mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,home,proc,sys,dev,run,var,usr/share/caas} "$dir/usr/share/doc/busybox-static"
  install -d -m 1777 "$dir/tmp"
  install -d -m 0700 "$dir/root"
  install -m 0755 "$BUSYBOX" "$dir/bin/busybox"
  while read -r applet; do
    [[ -n "$applet" && "$applet" != bin/busybox ]] || continue
    [[ -e "$dir/$applet" || -L "$dir/$applet" ]] || ln -s /bin/busybox "$dir/$applet"
  done < <("$BUSYBOX" --list-full)
  [[ -L "$dir/bin/sh" ]] || die "building busybox: $BUSYBOX --list-full named no bin/sh"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'app:x:1000:1000:app:/home/app:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'app:x:1000:' 'nogroup:x:65534:' >"$dir/etc/group"
  printf '%s\n' 'hosts: files dns' 'passwd: files' 'group: files' >"$dir/etc/nsswitch.conf"
  install -d -m 0755 -o 1000 -g 1000 "$dir/home/app"
  install -m 0644 /usr/share/doc/busybox-static/copyright "$dir/usr/share/doc/busybox-static/copyright"
  printf 'busybox-static\t%s\n' "$version" >"$dir/usr/share/caas/packages.txt"
}

build_busybox() {
  local epoch="$1"
  require_commands umoci:umoci jq:jq
  ((EUID == 0)) || die "building busybox needs root (its files belong to root and to uid 1000); run this as root"
  busybox_rootfs "$WORK/rootfs"
  layer_tar busybox "$WORK/rootfs" "$WORK/layer.tar" "$epoch" .
  new_layout busybox "$WORK/layout"
  add_layer busybox "$WORK/layout" "$WORK/layer.tar" "$epoch" \
    "busybox-static $(package_version busybox-static) with its applet links"
  configure busybox "$WORK/layout" "$epoch" --config.env "PATH=$IMAGE_PATH" --config.cmd sh
  finish_layout busybox "$WORK/layout" "$epoch"
  cp "$WORK/rootfs/usr/share/caas/packages.txt" "$OUT/busybox.packages.txt"
}

build_webapp() {
  local epoch="$1" busybox_epoch www="$WORK/www-rootfs"
  require_commands umoci:umoci jq:jq
  ((EUID == 0)) || die "building webapp needs root (its files belong to root and to uid 1000); run this as root"
  # The first layer is the busybox image's, byte for byte (same files, same date), so a node stores it once.
  busybox_epoch="$(source_date_epoch busybox)"
  busybox_rootfs "$WORK/rootfs"
  layer_tar webapp "$WORK/rootfs" "$WORK/busybox.tar" "$busybox_epoch" .
  mkdir -p "$www"
  cp -R "$HERE/webapp/www" "$www/www"
  chmod -R u=rwX,go=rX "$www/www"
  chmod 0755 "$www/www/cgi-bin/whoami"
  install -m 0755 "$HERE/webapp/start.sh" "$www/start.sh"
  # Only /www and /start.sh: the layer carries no / entry of its own over the busybox layer's.
  layer_tar webapp "$www" "$WORK/www.tar" "$epoch" ./start.sh ./www
  new_layout webapp "$WORK/layout"
  add_layer webapp "$WORK/layout" "$WORK/busybox.tar" "$busybox_epoch" \
    "busybox-static $(package_version busybox-static) with its applet links"
  add_layer webapp "$WORK/layout" "$WORK/www.tar" "$epoch" "images/webapp/www -> /www, images/webapp/start.sh -> /"
  configure webapp "$WORK/layout" "$epoch" --config.env "PATH=$IMAGE_PATH" --config.env "GREETING=hello" \
    --config.user 1000:1000 --config.workingdir /www --config.exposedports 8080/tcp --config.entrypoint /start.sh
  finish_layout webapp "$WORK/layout" "$epoch"
  cp "$WORK/rootfs/usr/share/caas/packages.txt" "$OUT/webapp.packages.txt"
}

# --- streaming-session -----------------------------------------------------------------------------------------------

SLIM_EXCLUDES=(/usr/share/doc/ /usr/share/groff/ /usr/share/info/ /usr/share/linda/ /usr/share/lintian/overrides/
  /usr/share/locale/ /usr/share/man/)
SLIM_INCLUDES=('/usr/share/doc/*/copyright' '/usr/share/doc/kde/HTML/C/*' '/usr/share/gnome/help/*/C/*'
  /usr/share/locale/all_languages '/usr/share/locale/currency/*' '/usr/share/locale/l10n/*' /usr/share/locale/languages
  /usr/share/locale/locale.alias '/usr/share/omf/*/*-C.emf')
SESSION_PACKAGES=(ca-certificates libgbm1 libpixman-1-0 libwayland-server0 libxkbcommon0 novnc openbox pulseaudio
  python3-venv steamcmd:i386 websockify x11-utils x11vnc xdotool xvfb)

CHROOT=()
# chroot_prefix ROOTFS EPOCH: sets CHROOT to the command line that runs a command inside ROOTFS with a clean
# environment (and the host's proxy settings): "${CHROOT[@]}" COMMAND...
chroot_prefix() {
  local var
  CHROOT=(chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8
    DEBIAN_FRONTEND=noninteractive "SOURCE_DATE_EPOCH=$2")
  for var in http_proxy https_proxy no_proxy; do
    if [[ -n "${!var:-}" ]]; then CHROOT+=("$var=${!var}"); fi
  done
}

# mount_chroot ROOTFS: /proc, the host's /dev and the package caches (Debian's at /var/cache/caas-debs, pip's at
# /var/cache/caas-pip) inside ROOTFS; the EXIT trap (release_work) unmounts them.
mount_chroot() {
  local rootfs="$1"
  mkdir -p "$rootfs/var/cache/caas-debs" "$rootfs/var/cache/caas-pip" "$DEBS/partial" "$WHEELS"
  mount -t proc proc "$rootfs/proc" || die "building $BUILDING: cannot mount /proc in $rootfs"
  mount --bind /dev "$rootfs/dev" || die "building $BUILDING: cannot bind-mount /dev in $rootfs"
  mount --bind "$DEBS" "$rootfs/var/cache/caas-debs" ||
    die "building $BUILDING: cannot bind-mount the package cache $DEBS in $rootfs"
  mount --bind "$WHEELS" "$rootfs/var/cache/caas-pip" ||
    die "building $BUILDING: cannot bind-mount the wheel cache $WHEELS in $rootfs"
}

# unmount_chroot ROOTFS: everything mounted below ROOTFS, so that nothing of the host is packed or removed.
unmount_chroot() {
  local target
  while read -r target; do
    [[ -n "$target" ]] || continue
    umount "$target" || die "building $BUILDING: cannot unmount $target"
  done < <(mounts_under "$1")
  [[ -z "$(mounts_under "$1")" ]] || die "building $BUILDING: still mounted below $1: $(mounts_under "$1")"
  rmdir "$1/var/cache/caas-debs" "$1/var/cache/caas-pip"
}

# debian_like_docker ROOTFS: the settings the debian:bookworm-slim image carries (its apt sources with the
# Dockerfile's non-free added, its dpkg and apt configuration, policy-rc.d), so that the Dockerfile's RUN sees the
# same system.
debian_like_docker() {
  local rootfs="$1" pattern
  rm -f "$rootfs/etc/apt/sources.list"
  mkdir -p "$rootfs/etc/apt/sources.list.d"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '%s\n' '#!/bin/sh' '# Services are not started while packages are installed in an image build.' 'exit 101' \
    >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  echo 'force-unsafe-io' >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
  printf '%s\n' "DPkg::Post-Invoke { $clean };" "APT::Update::Post-Invoke { $clean };" \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  {
    echo '# The "slim" variant: documentation, manual pages and translations are not installed.'
    for pattern in "${SLIM_EXCLUDES[@]}"; do echo "path-exclude ${pattern}*"; done
    for pattern in "${SLIM_INCLUDES[@]}"; do echo "path-include $pattern"; done
  } >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
}

# slim ROOTFS: removes what the slim dpkg configuration excludes but debootstrap installed before it was there.
slim() {
  local rootfs="$1" dir pattern include=()
  for pattern in "${SLIM_INCLUDES[@]}"; do
    ((${#include[@]})) && include+=(-o)
    include+=(-path "$rootfs$pattern")
  done
  for dir in "${SLIM_EXCLUDES[@]}"; do
    [[ -d "$rootfs$dir" ]] || continue
    find "$rootfs$dir" -xdev -depth -mindepth 1 -not \( "${include[@]}" \) -not \( -type d -o -type l \) -delete
    while [[ -n "$(find "$rootfs$dir" -xdev -depth -mindepth 1 \( -empty -o -xtype l \) -print -delete)" ]]; do :; done
  done
}

# tidy ROOTFS EPOCH: removes the files that only record when and where the build ran, dates /etc/shadow like the
# Debian images do, names the host like them.
tidy() {
  local rootfs="$1" epoch="$2" file
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
  rm -f "$rootfs"/var/log/dpkg.log "$rootfs"/var/log/bootstrap.log "$rootfs"/var/log/alternatives.log \
    "$rootfs"/var/log/apt/* "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/etc/resolv.conf "$rootfs"/run/mount/utab
  echo localhost >"$rootfs/etc/hostname"
  echo "$epoch" | md5sum | cut -d' ' -f1 >"$rootfs/etc/machine-id"
  for file in "$rootfs/etc/shadow" "$rootfs/etc/shadow-"; do
    [[ -e "$file" ]] || continue
    awk -F: -v OFS=: -v day=$((epoch / 86400)) '$3 > day { $3 = day } { print }' "$file" >"$file.new"
    cat "$file.new" >"$file"
    rm -f "$file.new"
  done
  chown 0:0 "$rootfs"
  chmod 0755 "$rootfs"
}

# apt_update APT_OPTIONS...: apt-get update in the chroot (CHROOT), three attempts. When index files still fail to
# download (a mirror caught mid-sync serves a file that does not match its Release file), the build goes on without
# them, saying which: apt-get then takes the packages from the other indexes (bookworm's point releases carry the
# security updates too), and the install fails if a package cannot be had.
apt_update() {
  local log="$LOGS/images-$BUILDING.log" attempt lines errors
  for attempt in 1 2 3; do
    lines="$(wc -l <"$log")"
    run_step "$BUILDING" "apt-get update (attempt $attempt of 3)" "${CHROOT[@]}" apt-get "$@" update && return 0
    errors="$(tail -n "+$((lines + 1))" "$log" | grep '^E: ')" || errors=""
    if [[ -z "$errors" ]] || grep -qv -e '^E: Failed to fetch ' -e '^E: Some index files failed to download' <<<"$errors"; then
      tail_log "$log"
      die "building $BUILDING: apt-get update failed (status $STEP_STATUS); its log is $log"
    fi
    ((attempt == 3)) || sleep 10
  done
  say "warning: building $BUILDING without these index files, which $MIRROR serves inconsistently (log: $log):"
  grep '^E: Failed to fetch ' <<<"$errors" | sed 's/^E: Failed to fetch /  /' >&2
}

# build_js_interposer BASE_ROOTFS OUT_DIR: the Dockerfile's js-interposer stage: in a copy of BASE_ROOTFS (the
# system debootstrap made, configured like debian:bookworm-slim), gcc, gcc-multilib and libc6-dev compile Selkies'
# joystick interposer into OUT_DIR/selkies_joystick_interposer.so (64-bit) and selkies_joystick_interposer_x86.so
# (32-bit); the copy is removed afterwards.
build_js_interposer() {
  local stage="$WORK/js-interposer-rootfs" out="$2" library
  step streaming-session "copying the system for the interposer's build stage" cp -a "$1" "$stage"
  mount_chroot "$stage"
  chroot_prefix "$stage" "$SOURCE_DATE_EPOCH"
  apt_update -o Dir::Cache::Archives=/var/cache/caas-debs/ -o APT::Sandbox::User=root -o Acquire::Retries=3
  step streaming-session "installing gcc gcc-multilib libc6-dev (the interposer's build stage)" "${CHROOT[@]}" \
    apt-get -o Dir::Cache::Archives=/var/cache/caas-debs/ -o APT::Sandbox::User=root -o Acquire::Retries=3 \
    install -y --no-install-recommends gcc gcc-multilib libc6-dev
  mkdir -p "$stage/src"
  install -m 0644 "$HERE/streaming-session/js-interposer/joystick_interposer.c" "$stage/src/"
  step streaming-session "compiling the joystick interposer (64-bit)" "${CHROOT[@]}" gcc -O2 -shared -fPIC \
    -o /src/selkies_joystick_interposer.so /src/joystick_interposer.c -ldl -pthread
  step streaming-session "compiling the joystick interposer (32-bit)" "${CHROOT[@]}" gcc -m32 -O2 -shared -fPIC \
    -o /src/selkies_joystick_interposer_x86.so /src/joystick_interposer.c -ldl -pthread
  say "compiled the joystick interposer with $("${CHROOT[@]}" gcc --version | head -n 1)"
  unmount_chroot "$stage"
  mkdir -p "$out"
  for library in selkies_joystick_interposer.so selkies_joystick_interposer_x86.so; do
    install -m 0644 "$stage/src/$library" "$out/$library"
  done
  rm -rf --one-file-system "$stage"
}

build_streaming_session() {
  local epoch="$1" rootfs="$WORK/rootfs" src="$HERE/streaming-session" apt_options missing file pip_cert
  require_commands debootstrap:debootstrap wget:wget chroot:coreutils mount:mount umoci:umoci jq:jq
  ((EUID == 0)) || die "building streaming-session needs root (debootstrap, chroot, mounts); run this as root"
  mkdir -p "$DEBS/partial"
  step streaming-session "debootstrap bookworm (minbase) from $MIRROR" debootstrap --variant=minbase --merged-usr \
    --arch=amd64 --cache-dir="$DEBS" bookworm "$rootfs" "$MIRROR"
  [[ -z "$(mounts_under "$rootfs")" ]] || die "building streaming-session: debootstrap left mounts: $(mounts_under "$rootfs")"
  debian_like_docker "$rootfs"
  cat /etc/resolv.conf >"$rootfs/etc/resolv.conf" || die "building streaming-session: cannot copy /etc/resolv.conf"
  build_js_interposer "$rootfs" "$WORK/js-interposer"
  mount_chroot "$rootfs"
  chroot_prefix "$rootfs" "$epoch"
  # Packages go to and come from the cache, out of reach of docker-clean's removal after each dpkg run.
  apt_options=(-o Dir::Cache::Archives=/var/cache/caas-debs/ -o APT::Sandbox::User=root -o Acquire::Retries=3)
  step streaming-session "marking the base packages as automatically installed" "${CHROOT[@]}" sh -c \
    'dpkg-query -W | cut -f1 | xargs apt-mark auto'
  # The Dockerfile's RUN, step by step.
  step streaming-session "adding the i386 architecture" "${CHROOT[@]}" dpkg --add-architecture i386
  step streaming-session "answering steamcmd's licence question" "${CHROOT[@]}" sh -c \
    "echo 'steamcmd steam/question select I AGREE' | debconf-set-selections && echo 'steamcmd steam/license note ' | debconf-set-selections"
  apt_update "${apt_options[@]}"
  step streaming-session "installing ${SESSION_PACKAGES[*]}" "${CHROOT[@]}" apt-get "${apt_options[@]}" \
    install -y --no-install-recommends "${SESSION_PACKAGES[@]}"
  step streaming-session "adding the user steam (1000)" "${CHROOT[@]}" useradd --uid 1000 --user-group \
    --create-home --home-dir /home/steam --shell /bin/bash steam
  step streaming-session "creating /tmp/.X11-unix" "${CHROOT[@]}" install -d -m 1777 /tmp/.X11-unix
  # The Dockerfile's second RUN: Selkies' pinned wheels in a venv. The wheels are cached between builds (at
  # /var/cache/caas-pip, out of the image); pip checks each against its hash in requirements.txt either way.
  # pip in the chroot trusts what the host trusts: PIP_CERT when set (a proxy that intercepts TLS names its CA bundle
  # there), else the host's system bundle, which holds such a proxy's CA when the host was set up to trust it.
  install -m 0644 "$src/requirements.txt" "$rootfs/tmp/selkies-requirements.txt"
  pip_cert=()
  local host_ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
  if [[ -n "${PIP_CERT:-}" || -r "$host_ca" ]]; then
    install -m 0644 "$host_ca" "$rootfs/tmp/caas-pip-ca.pem" || die "building streaming-session: cannot copy the CA bundle $host_ca"
    pip_cert=(--cert /tmp/caas-pip-ca.pem)
  fi
  step streaming-session "creating the venv /opt/selkies" "${CHROOT[@]}" python3 -m venv /opt/selkies
  step streaming-session "installing Selkies' pinned wheels" "${CHROOT[@]}" /opt/selkies/bin/pip install \
    --cache-dir=/var/cache/caas-pip --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: \
    "${pip_cert[@]}" -r /tmp/selkies-requirements.txt
  rm -f "$rootfs/tmp/caas-pip-ca.pem"
  step streaming-session "removing pip from the venv" "${CHROOT[@]}" /opt/selkies/bin/pip uninstall --yes \
    --disable-pip-version-check pip setuptools
  rm "$rootfs/tmp/selkies-requirements.txt"
  step streaming-session "importing Selkies" "${CHROOT[@]}" /opt/selkies/bin/python -c 'import pcmflux, pixelflux, selkies'
  install -m 0755 "$src/entrypoint.sh" "$src/steamcmd-install.sh" "$rootfs/usr/local/bin/"
  install -D -m 0644 "$WORK/js-interposer/selkies_joystick_interposer.so" \
    "$rootfs/usr/lib/x86_64-linux-gnu/selkies_joystick_interposer.so"
  install -D -m 0644 "$WORK/js-interposer/selkies_joystick_interposer_x86.so" \
    "$rootfs/usr/lib/i386-linux-gnu/selkies_joystick_interposer.so"
  mkdir -p "$rootfs/usr/share/caas"
  "${CHROOT[@]}" dpkg-query -W >"$rootfs/usr/share/caas/packages.txt" ||
    die "building streaming-session: dpkg-query -W in the chroot failed"
  unmount_chroot "$rootfs"
  missing=""
  for file in /usr/games/steamcmd /usr/share/novnc/vnc.html /usr/bin/Xvfb /usr/bin/x11vnc /usr/bin/websockify \
    /usr/bin/openbox /usr/bin/xdpyinfo /usr/bin/xprop /usr/bin/xwininfo /usr/bin/pulseaudio /opt/selkies/bin/selkies \
    /usr/lib/x86_64-linux-gnu/selkies_joystick_interposer.so /usr/lib/i386-linux-gnu/selkies_joystick_interposer.so; do
    [[ -e "$rootfs$file" ]] || missing+=" $file"
  done
  [[ -z "$missing" ]] || die "building streaming-session: missing after the install:$missing (log: $LOGS/images-streaming-session.log)"
  slim "$rootfs"
  tidy "$rootfs" "$epoch"
  layer_tar streaming-session "$rootfs" "$WORK/layer.tar" "$epoch" --exclude='./proc/*' --exclude='./sys/*' \
    --exclude='./dev/*' .
  new_layout streaming-session "$WORK/layout"
  add_layer streaming-session "$WORK/layout" "$WORK/layer.tar" "$epoch" \
    "debootstrap bookworm minbase; images/streaming-session/Dockerfile's RUN and COPY (the interposer from its stage)"
  configure streaming-session "$WORK/layout" "$epoch" --config.user 1000:1000 --config.workingdir /home/steam \
    --config.env "PATH=$IMAGE_PATH" --config.env HOME=/home/steam --config.env STATE_DIR=/tmp/session \
    --config.exposedports 6080/tcp --config.entrypoint /usr/local/bin/entrypoint.sh
  finish_layout streaming-session "$WORK/layout" "$epoch"
  cp "$rootfs/usr/share/caas/packages.txt" "$OUT/streaming-session.packages.txt"
}

# --- streaming-session-test ------------------------------------------------------------------------------------------

# The session image with a local test app added, for the real node's tests, where SteamCMD cannot download: Python's
# Tk, PulseAudio's pacat (the app's tone) and tests/browser/colour_app.py (a full-screen colour with a moving bar, a
# 440 Hz tone, a colour per key and gamepad button) in /opt/caas-test, run by the same
# entrypoint. One layer over the session image's, made by umoci repack from the unpacked image; not byte-reproducible
# (the layer keeps the install's mtimes), which a test image does not need.
build_streaming_session_test() {
  local epoch="$1" layout="$WORK/layout" bundle="$WORK/bundle" rootfs="$WORK/bundle/rootfs" apt_options
  require_commands umoci:umoci jq:jq chroot:coreutils mount:mount
  ((EUID == 0)) || die "building streaming-session-test needs root (chroot, mounts); run this as root"
  mkdir -p "$layout"
  step streaming-session-test "unpacking the streaming-session archive" tar --extract \
    --file="$(archive streaming-session)" --directory="$layout"
  # The session's manifest, tagged "build": the tag the packing steps work on.
  jq -c '.manifests[0].annotations = {"org.opencontainers.image.ref.name": "build"}' "$layout/index.json" \
    >"$layout/index.json.new" || die "building streaming-session-test: cannot read $layout/index.json"
  mv "$layout/index.json.new" "$layout/index.json"
  step streaming-session-test "unpacking the session image" umoci unpack --image "$layout:build" "$bundle"
  cat /etc/resolv.conf >"$rootfs/etc/resolv.conf" || die "building streaming-session-test: cannot copy /etc/resolv.conf"
  mount_chroot "$rootfs"
  chroot_prefix "$rootfs" "$epoch"
  apt_options=(-o Dir::Cache::Archives=/var/cache/caas-debs/ -o APT::Sandbox::User=root -o Acquire::Retries=3)
  apt_update "${apt_options[@]}"
  step streaming-session-test "installing python3-tk and pulseaudio-utils" "${CHROOT[@]}" apt-get \
    "${apt_options[@]}" install -y --no-install-recommends python3-tk pulseaudio-utils
  install -D -m 0755 "$REPO/tests/browser/colour_app.py" "$rootfs/opt/caas-test/colour_app.py"
  "${CHROOT[@]}" dpkg-query -W >"$rootfs/usr/share/caas/packages.txt" ||
    die "building streaming-session-test: dpkg-query -W in the chroot failed"
  unmount_chroot "$rootfs"
  slim "$rootfs"
  tidy "$rootfs" "$epoch"
  step streaming-session-test "packing the changes into a layer" umoci repack --image "$layout:build" \
    --history.created "$(iso_date "$epoch")" --history.created_by "python3-tk pulseaudio-utils; tests/browser/colour_app.py" "$bundle"
  configure streaming-session-test "$layout" "$epoch"
  finish_layout streaming-session-test "$layout" "$epoch"
  cp "$rootfs/usr/share/caas/packages.txt" "$OUT/streaming-session-test.packages.txt"
}

# --- main ------------------------------------------------------------------------------------------------------------

# build NAME: builds the image unless its archive was built from the same inputs; one build of an image at a time.
build() {
  local name="$1" epoch key started=$SECONDS
  mkdir -p "$OUT" "$WORK_ROOT" "$LOGS"
  exec {LOCK_FD}>"$OUT/$name.lock"
  if ! flock -n "$LOCK_FD"; then
    say "waiting for another build of $name to finish (lock $OUT/$name.lock)"
    flock "$LOCK_FD"
  fi
  epoch="$(source_date_epoch "$name")"
  key="$(input_key "$name" "$epoch")"
  if [[ -s "$(archive "$name")" && -s "$OUT/$name.key" && "$(cat "$OUT/$name.key")" == "$key" ]]; then
    say "$name is up to date: $(archive "$name")"
    exec {LOCK_FD}>&-
    return 0
  fi
  BUILDING="$name"
  say "building $name ($(reference "$name")); log: $LOGS/images-$name.log"
  : >"$LOGS/images-$name.log"
  rm -f "$OUT/$name.key"
  release_stale_work
  WORK="$(mktemp -d "$WORK_ROOT/$name.$$.XXXXXX")"
  export SOURCE_DATE_EPOCH="$epoch"
  "build_${name//-/_}" "$epoch"
  echo "$key" >"$OUT/$name.key"
  release_work "$WORK" || die "building $name: cannot remove the build folder $WORK"
  WORK=""
  exec {LOCK_FD}>&-
  say "built $name in $((SECONDS - started)) s: $(archive "$name") ($(du -h "$(archive "$name")" | cut -f1))"
}

main() {
  local names=() name
  if [[ "${1:-}" == --list ]]; then
    (($# == 1)) || die "--list takes no other argument"
    LISTING=1
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
  # The test session image is built on the session image's archive.
  if [[ " ${names[*]} " == *" streaming-session-test "* && " ${names[*]} " != *" streaming-session "* ]]; then
    names=(streaming-session "${names[@]}")
  fi
  require_commands flock:util-linux setsid:util-linux findmnt:util-linux tar:tar sha256sum:coreutils
  for name in "${names[@]}"; do
    build "$name"
  done
}

main "$@"
exit
}
