#!/bin/sh
# The test web app's entrypoint: serves /www on port 8080 with busybox httpd (CGI in /www/cgi-bin). ALLOCATE_MB, when
# set, makes it hold that many MiB of memory first, so that a test can watch a container go over its memory limit
# (the kernel kills it: OOMKilled).
set -eu
if [ -n "${ALLOCATE_MB:-}" ]; then
  held="$(head -c "$((ALLOCATE_MB * 1048576))" /dev/zero | tr '\0' x)"
  echo "webapp: holding ${#held} bytes" >&2
fi
exec httpd -f -v -p 8080 -h /www
