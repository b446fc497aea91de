#!/bin/sh
# The test web app's entrypoint: serves /www on port 8080 with busybox httpd (CGI in /www/cgi-bin). ALLOCATE_MB, when
# set, makes it hold that many MiB of memory first, so that a test can watch a container go over its memory limit
# (the kernel kills it: OOMKilled). The string doubles until it is that long: a few large allocations by this very
# process, which the kernel kills at once, rather than a slow climb it can stall by reclaiming file pages.
set -eu
if [ -n "${ALLOCATE_MB:-}" ]; then
  held=x
  while [ "${#held}" -lt "$((ALLOCATE_MB * 1048576))" ]; do held="$held$held"; done
  echo "webapp: holding ${#held} bytes" >&2
fi
exec httpd -f -v -p 8080 -h /www
