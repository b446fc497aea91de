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
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
echo "$want" >"$stamp"
echo "fuzz: schemathesis installed in $venv"
