#!/bin/sh
# SPDX-License-Identifier: MIT
# Test program for the exec handler (CGI output): starts a grandchild
# (`sleep 300 &`) and writes its PID to the file named by $PID_FILE (set by
# the route's "env"), prints a CGI header, then one line every 100 ms,
# $STEPS times (default 100, i.e. 10 s).  Cancelling the request must take
# the grandchild down with it: it shares the process group.
steps=${STEPS:-100}
sleep 300 &
if [ -n "${PID_FILE-}" ]; then
    echo "$!" > "$PID_FILE.tmp" && mv "$PID_FILE.tmp" "$PID_FILE"
fi
# X-Accel-Buffering: nginx streams each line instead of buffering.
printf 'Content-Type: text/plain\r\nX-Accel-Buffering: no\r\n\r\n'
i=1
while [ "$i" -le "$steps" ]; do
    echo "progress $i of $steps"
    sleep 0.1
    i=$((i + 1))
done
echo "progress.sh: done" >&2
