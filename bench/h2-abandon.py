#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""h2-abandon: HTTP/2 requests abandoned one after another by a stream
reset, over one cleartext connection (prior knowledge), for bench table 8.

    h2-abandon.py [-c CLOSE_MS] [-g GAP_MS] COUNT HOST PORT PATH

COUNT times: open a stream with "GET PATH" ("%d" in PATH replaced by the
index, from 0), read what comes back for CLOSE_MS, then send RST_STREAM
(CANCEL) on that stream only, and print "INDEX closed_at_ms=EPOCH_MS"
(CLOCK_REALTIME just before the reset); then wait GAP_MS.  The connection
stays open throughout, so each reset is of one stream: the front end must
pass that on by itself.  Exit status: 0 ok, 1 error, 2 usage.
"""
import getopt
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


def pump(sock, conn, seconds):
    """Read and answer frames for the given time; False if the peer left."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return True
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        data = sock.recv(65536)
        if not data:
            return False
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length,
                                               ev.stream_id)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


def main(argv):
    close_ms, gap_ms = 300, 20
    try:
        opts, args = getopt.getopt(argv, "c:g:")
        for o, v in opts:
            if o == "-c":
                close_ms = int(v)
            else:
                gap_ms = int(v)
        count, host, port, path = int(args[0]), args[1], int(args[2]), args[3]
    except (getopt.GetoptError, ValueError, IndexError):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    sock = socket.create_connection((host, port), timeout=10)
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    for i in range(count):
        sid = conn.get_next_available_stream_id()
        p = path.replace("%d", str(i))
        conn.send_headers(sid, [(":method", "GET"), (":path", p),
                                (":scheme", "http"),
                                (":authority", "%s:%d" % (host, port))],
                          end_stream=True)
        sock.sendall(conn.data_to_send())
        if not pump(sock, conn, close_ms / 1000.0):
            print("connection closed by the peer", file=sys.stderr)
            return 1
        closed = time.time() * 1000.0
        try:
            conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.StreamClosedError:
            pass            # it ended first: the reset comes too late
        sock.sendall(conn.data_to_send())
        print("%d closed_at_ms=%.3f" % (i, closed), flush=True)
        if not pump(sock, conn, gap_ms / 1000.0):
            print("connection closed by the peer", file=sys.stderr)
            return 1
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
