#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian package, as a user of Debian 12 gets it: `make distdir` (the
# tarball's tree, with debian/) into the scratch directory, built there
# with `dpkg-buildpackage -us -uc -b`; lintian on the .changes reports no
# error and no warning; the two packages installed on this machine with
# apt-get; the installed units clean for `systemd-analyze verify` (the
# pool template as an instance); the installed binary's -t accepts the
# installed configuration; examples/primes.c builds against the installed
# fcgi-cancel-dev with `pkg-config --cflags --libs fcgi-cancel` and the
# installed server loads it (-t); then both packages are purged and
# nothing of them is left.  Needs root (CI runs as root): it installs and
# removes packages, and refuses to start if fcgi-cancel is installed.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

[ "$(id -u)" = 0 ] || t_fail "needs root: it installs the built packages"
for c in dpkg-buildpackage lintian apt-get systemd-analyze pkg-config; do
    command -v "$c" > /dev/null 2>&1 ||
        t_fail "$c not installed (scripts/deps installs it)"
done
PKGS="fcgi-cancel fcgi-cancel-dev"
# installed PKG: true if dpkg knows PKG as installed (or half so).
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -qv 'not-installed'
}
for p in $PKGS; do
    ! installed "$p" || t_fail "$p is installed on this machine already;" \
        "this test installs and purges it: remove it first"
done
# apt-get, waiting (bounded) for a dpkg lock that another install holds.
apt() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 \
        -y -q "$@"
}
# purge: purge those of the packages that are installed.
purge() {
    local p there=()
    for p in $PKGS; do
        if installed "$p"; then
            there+=("$p")
        fi
    done
    [ "${#there[@]}" -eq 0 ] || apt purge "${there[@]}" > "$T/purge.log" 2>&1
}
# Whatever happens, the packages do not stay installed.
on_exit() {
    local rc=$?
    trap - EXIT
    set +e
    purge
    t_cleanup "$rc"
    exit "$rc"
}
trap on_exit EXIT
started=$(t_now_ms)

# ---- build ----------------------------------------------------------------
version=$(sed -n '1s/^fcgi-cancel (\([^)]*\)).*/\1/p' \
    "$top_srcdir/debian/changelog")
[ -n "$version" ] || t_fail "no version in debian/changelog"
mkdir "$T/build"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top_builddir" -s distdir \
    distdir="$T/build/fcgi-cancel-$version" > "$T/distdir.log" 2>&1 ||
    t_fail "make distdir failed (see distdir.log)"
(cd "$T/build/fcgi-cancel-$version" && env -u MAKEFLAGS -u MFLAGS \
    -u MAKELEVEL dpkg-buildpackage -us -uc -b) > "$T/build.log" 2>&1 ||
    t_fail "dpkg-buildpackage failed (see build.log)"
changes=$T/build/fcgi-cancel_${version}_$(dpkg --print-architecture).changes
[ -f "$changes" ] || t_fail "no $changes"
built=$(( $(t_now_ms) - started ))
t_ok "dpkg-buildpackage -us -uc -b: $(cd "$T/build" && echo *.deb) in $built ms"

# lintian: informational tags are fine, errors and warnings are not.
rc=0
lintian --fail-on error,warning "$changes" > "$T/lintian.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$T/lintian.log" >&2
    t_fail "lintian: status $rc, output above"
fi
t_ok "lintian: no error, no warning"

# ---- install --------------------------------------------------------------
apt install "$T/build/fcgi-cancel_${version}_"*.deb \
    "$T/build/fcgi-cancel-dev_${version}_"*.deb > "$T/install.log" 2>&1 ||
    t_fail "apt-get install of the built packages failed (see install.log)"
for p in $PKGS; do
    installed "$p" || t_fail "$p is not installed"
done
dpkg -L fcgi-cancel > "$T/files"
for f in /usr/sbin/fcgi-cancel /etc/fcgi-cancel/fcgi-cancel.json \
         /etc/logrotate.d/fcgi-cancel /usr/share/man/man8/fcgi-cancel.8.gz \
         /usr/share/man/man5/fcgi-cancel.json.5.gz; do
    grep -qxF "$f" "$T/files" || t_fail "fcgi-cancel does not ship $f"
done
UD=$(grep -m1 '/systemd/system/fcgi-cancel\.service$' "$T/files") ||
    t_fail "fcgi-cancel ships no fcgi-cancel.service"
UD=${UD%/*}
for u in fcgi-cancel.socket fcgi-cancel@.service fcgi-cancel@.socket; do
    grep -qxF "$UD/$u" "$T/files" || t_fail "fcgi-cancel does not ship $UD/$u"
done
grep -qx 'ExecStart=/usr/sbin/fcgi-cancel --config /etc/fcgi-cancel/%i\.json' \
    "$UD/fcgi-cancel@.service" || t_fail "the pool unit's ExecStart="
# Enabled as Debian enables services (the purge must undo it).
[ -L /etc/systemd/system/sockets.target.wants/fcgi-cancel.socket ] ||
    t_fail "fcgi-cancel.socket is not enabled after the install"
t_ok "installed: server, units ($UD, fcgi-cancel.socket enabled), configuration, logrotate, man pages"

# The installed units, against the installed binary and man pages.
t_verify_units "" "$UD/fcgi-cancel.socket" "$UD/fcgi-cancel.service" \
    "$UD/fcgi-cancel@www.socket" "$UD/fcgi-cancel@www.service"
out=$(/usr/sbin/fcgi-cancel -t --config /etc/fcgi-cancel/fcgi-cancel.json \
    2>&1) && [ "$out" = OK ] ||
    t_fail "-t on /etc/fcgi-cancel/fcgi-cancel.json: $out"
t_ok "systemd-analyze verify on the installed units; -t on the installed configuration: OK"

# A module against the installed fcgi-cancel-dev, loaded by the installed
# server.
moduledir=$(pkg-config --variable=moduledir fcgi-cancel)
[ -d "$moduledir" ] || t_fail "moduledir $moduledir (fcgi-cancel.pc) missing"
mkdir "$T/mod"
cp "$top_srcdir/examples/primes.c" "$T/mod/"
# shellcheck disable=SC2046  # the flags are words
(cd "$T/mod" && ${CC:-cc} -shared -fPIC -Wall -Wextra -Werror primes.c \
    -o primes.so $(pkg-config --cflags --libs fcgi-cancel)) \
    > "$T/cc.log" 2>&1 || t_fail "primes.c does not build (see cc.log)"
printf '{ "routes": [ { "path": "/primes", "handler": "module",\n  "module": "%s", "symbol": "primes_handler" } ] }\n' \
    "$T/mod/primes.so" > "$T/mod.json"
out=$(/usr/sbin/fcgi-cancel -t --config "$T/mod.json" 2>&1) &&
    [ "$out" = OK ] || t_fail "-t with the module: $out"
t_ok "primes.c built with pkg-config fcgi-cancel; the installed server loads it"

# ---- purge ----------------------------------------------------------------
purge || t_fail "apt-get purge failed (see purge.log)"
for p in $PKGS; do
    ! installed "$p" || t_fail "$p still installed after purge"
    ! dpkg -L "$p" > /dev/null 2>&1 || t_fail "dpkg -L $p still answers"
done
remains=""
for f in /usr/sbin/fcgi-cancel /etc/fcgi-cancel /etc/logrotate.d/fcgi-cancel \
         "$UD/fcgi-cancel.service" "$UD/fcgi-cancel@.service" "$moduledir" \
         /usr/include/fcgi_cancel.h; do
    if [ -e "$f" ]; then
        remains="$remains $f"
    fi
done
enabled=$(find /etc/systemd/system -name 'fcgi-cancel*' 2>/dev/null)
[ -z "$remains$enabled" ] || t_fail "left after purge:$remains $enabled"
t_ok "purged: no package, no file, no unit enabled; $(( $(t_now_ms) - started )) ms in all"
