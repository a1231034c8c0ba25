#!/bin/sh
# SPDX-License-Identifier: MIT
# Test program for the exec handler: a line on stderr, then exit status 3
# before any output (the client must get a 502).
echo "fail.sh: failing on purpose" >&2
exit 3
