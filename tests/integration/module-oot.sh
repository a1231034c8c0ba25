#!/bin/bash
# SPDX-License-Identifier: MIT
# A module built out of the tree, the way a user builds one: `make install
# DESTDIR=$T/root` from the build tree, then examples/primes.c compiled
# alone in an empty directory with the flags of the installed
# fcgi-cancel.pc (header from the install, json-c through Requires:), and
# a tiny C++ module with the same flags.  The installed daemon loads both
# (-t says OK) and serves them through tests/fcgi-client.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

command -v pkg-config > /dev/null 2>&1 ||
    t_fail "pkg-config not installed (scripts/deps installs it)"
CC=${CC:-cc}
# A C++ compiler for the C++ module: g++, or clang++ (scripts/deps).
CXX=${CXX:-}
for c in c++ g++ clang++; do
    if [ -z "$CXX" ] && command -v "$c" > /dev/null 2>&1; then
        CXX=$c
    fi
done
[ -n "$CXX" ] || t_fail "no C++ compiler (scripts/deps installs clang)"
ROOT=$T/root

# The test may run under `make check`: the inner make must not inherit
# its jobserver or flags.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top_builddir" install \
    DESTDIR="$ROOT" > "$T/install.log" 2>&1 ||
    t_fail "make install DESTDIR=$ROOT failed (see install.log)"
pc=$(find "$ROOT" -path '*/pkgconfig/fcgi-cancel.pc' | head -n 1)
daemon=$(find "$ROOT" -path '*/sbin/fcgi-cancel' -type f | head -n 1)
[ -n "$pc" ] || t_fail "no fcgi-cancel.pc installed"
[ -x "$daemon" ] || t_fail "no sbin/fcgi-cancel installed"
export PKG_CONFIG_PATH=${pc%/*}
# The .pc says prefix=/usr/local (or configure's --prefix): point it at
# the DESTDIR copy.
prefix=$(pkg-config --variable=prefix fcgi-cancel)
cflags=$(pkg-config --define-variable=prefix="$ROOT$prefix" --cflags \
    fcgi-cancel)
libs=$(pkg-config --define-variable=prefix="$ROOT$prefix" --libs \
    fcgi-cancel)
[ -f "$ROOT$prefix/include/fcgi_cancel.h" ] ||
    t_fail "fcgi_cancel.h not installed in $prefix/include"
grep -q -- "-I$ROOT$prefix/include" <<< "$cflags" ||
    t_fail "pkg-config --cflags: $cflags"
[ -f "$(find "$ROOT" -path '*/man3/fcgi_cancel.3' | head -n 1)" ] ||
    t_fail "fcgi_cancel.3 not installed"
t_ok "make install: daemon, header, fcgi-cancel.pc ($(pkg-config \
--modversion fcgi-cancel)), fcgi_cancel.3"

mkdir "$T/mod"
cp "$top_srcdir/examples/primes.c" "$T/mod/"
# shellcheck disable=SC2086  # word splitting of the flags is wanted
(cd "$T/mod" && "$CC" -shared -fPIC -Wall -Wextra -Werror $cflags primes.c \
    -o primes.so $libs) > "$T/cc.log" 2>&1 ||
    t_fail "primes.c does not build out of tree (see cc.log)"
cat > "$T/mod/hello.cc" <<'EOF'
// A module in C++: the header declares its entry points extern "C".
#include <fcgi_cancel.h>

FC_MODULE_DECLARE();

extern "C" FC_API int hello_handler(fc_request *, fc_response *,
    fc_token *, void *);

int
hello_handler(fc_request *req, fc_response *resp, fc_token *tok, void *)
{
    const char *who = fc_request_query(req, "who");

    if (fc_token_cancelled(tok))
        return FC_CANCELLED;
    return fc_response_printf(resp, "hello %s from C++",
        who != nullptr ? who : "world") == 0 ? FC_OK : FC_ERROR;
}
EOF
# shellcheck disable=SC2086
(cd "$T/mod" && "$CXX" -shared -fPIC -Wall -Wextra -Werror $cflags \
    hello.cc -o hello.so $libs) > "$T/cxx.log" 2>&1 ||
    t_fail "hello.cc does not build with $CXX (see cxx.log)"
t_ok "built out of tree with pkg-config: primes.c ($CC), hello.cc ($CXX)"

cat > "$T/oot.json" <<EOF
{
    "routes": [
        { "path": "/primes", "handler": "module", "module": "$T/mod/primes.so",
          "symbol": "primes_handler", "options": { "max_n": 1000000 } },
        { "path": "/hello", "handler": "module", "module": "$T/mod/hello.so",
          "symbol": "hello_handler" },
    ],
}
EOF
out=$("$daemon" -t --config "$T/oot.json" 2>&1) || t_fail "-t: $out"
[ "$out" = OK ] || t_fail "-t: $out"

FCGI_CANCEL=$daemon
t_start_server --config "$T/oot.json"
out=$(t_fcgi -u '/primes?n=100' -t 5000 2>/dev/null) ||
    t_fail "/primes: $out"
grep -qF '{"n":100,"primes":25}' <<< "$out" || t_fail "/primes: $out"
out=$(t_fcgi -u '/primes?n=1000001' -t 5000 2>/dev/null) || true
grep -q '^Status: 400' <<< "$out" || t_fail "/primes max_n: $out"
out=$(t_fcgi -u '/hello?who=oot' -t 5000 2>/dev/null) || t_fail "/hello: $out"
grep -qF 'hello oot from C++' <<< "$out" || t_fail "/hello: $out"
t_stop_server || t_fail "the installed daemon did not stop"
[ "$SERVER_STATUS" = 0 ] || t_fail "the installed daemon exited $SERVER_STATUS"
t_ok "the installed daemon serves them: n=100 -> 25 (max_n applied), C++"
