#!/usr/bin/env bash
# Installs schemathesis (pinned in requirements.txt) into a virtualenv in the cache; quick when already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${CAAS_CACHE_DIR:-$here/../../.cache}"
venv="$cache/venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ -x "$venv/bin/schemathesis" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then exit 0; fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
    echo "fuzz/install-deps: missing Debian package python3-venv; install it (as root: apt-get install python3-venv)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 python3-venv
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt" || {
  echo "fuzz/install-deps: pip could not install $here/requirements.txt into $venv (its message is above)" >&2
  exit 1
}
echo "$want" >"$stamp"
echo "fuzz: schemathesis installed in $venv"
