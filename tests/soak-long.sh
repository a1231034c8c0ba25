#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/soak-long.sh: the soak of tests/integration/soak.sh, for longer
# and outside `make check`: SOAK_S seconds (default 600) of tiny requests,
# abandoned and completed work, exec and module jobs, a new configuration
# and SIGHUP every 10 s, an nginx restart halfway; then exact accounting
# (accepted = every request that reached the server, cancelled = every
# abandoned one), one access line per request across the rotated logs,
# and RSS and descriptors flat after the warm-up.  Its figures go to
# stdout.  Run it from the source tree after scripts/build; it builds
# the test programs it needs.  Exit 0 if every check passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
top_srcdir=${top_srcdir:-$here}
top_builddir=${top_builddir:-$here}
SOAK_SECONDS=${SOAK_S:-600}
export top_srcdir top_builddir SOAK_SECONDS
make -C "$top_builddir" -s src/fcgi-cancel tests/http-client \
    examples/primes.so
exec bash "$top_srcdir/tests/integration/soak.sh"
