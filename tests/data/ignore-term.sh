#!/bin/sh
# SPDX-License-Identifier: MIT
# Test program for the exec handler: traps SIGTERM and keeps going, so only
# the SIGKILL sent after the route's kill_grace_ms stops it.  Writes its own
# PID (the process group id) to $PID_FILE when that is set, prints a CGI
# header, then a line every 100 ms for $STEPS steps (default 3000, 5 min).
trap 'echo "ignore-term.sh: SIGTERM ignored" >&2' TERM
steps=${STEPS:-3000}
if [ -n "${PID_FILE-}" ]; then
    echo "$$" > "$PID_FILE.tmp" && mv "$PID_FILE.tmp" "$PID_FILE"
fi
# X-Accel-Buffering: nginx streams each line instead of buffering.
printf 'Content-Type: text/plain\r\nX-Accel-Buffering: no\r\n\r\n'
i=1
while [ "$i" -le "$steps" ]; do
    echo "still here $i"
    sleep 0.1
    i=$((i + 1))
done
