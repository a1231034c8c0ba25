#!/bin/bash
# SPDX-License-Identifier: MIT
# `make install DESTDIR=...` from the build tree, checked as an operator
# would: the daemon; the systemd units (the one server's and the pool
# templates) in systemd's unit directory, with the configured paths in
# them, clean for `systemd-analyze verify` once pointed at the DESTDIR
# copy; the example configuration (which -t accepts) and the logrotate
# file in sysconfdir, not overwritten by a second install and kept by
# uninstall once edited; the module directory that fcgi-cancel.pc names;
# the header, the .pc and the three man pages.  Then `make uninstall`
# leaves nothing but the edited configuration.
# shellcheck disable=SC2154  # sbindir, sysconfdir...: eval'd from make
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

command -v systemd-analyze > /dev/null 2>&1 ||
    t_fail "systemd-analyze not installed (package systemd; scripts/deps)"
command -v logrotate > /dev/null 2>&1 ||
    t_fail "logrotate not installed (scripts/deps installs it)"
ROOT=$T/root

# submake TARGET...: make in the build tree, not under the jobserver or
# the flags of the `make check` that may run this test.
submake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top_builddir" "$@"
}

# The configured directories: sbindir=... sysconfdir=... and so on.
eval "$(submake -s print-install-dirs)"
[ "$systemdsystemunitdir" != no ] ||
    t_fail "configure found no systemd unit directory (pkg-config systemd)"

submake install DESTDIR="$ROOT" > "$T/install.log" 2>&1 ||
    t_fail "make install DESTDIR=$ROOT failed (see install.log)"
[ -x "$ROOT$sbindir/fcgi-cancel" ] || t_fail "no $sbindir/fcgi-cancel"
for f in "$includedir/fcgi_cancel.h" "$pkgconfigdir/fcgi-cancel.pc" \
         "$mandir/man3/fcgi_cancel.3" "$mandir/man5/fcgi-cancel.json.5" \
         "$mandir/man8/fcgi-cancel.8"; do
    [ -f "$ROOT$f" ] || t_fail "not installed: $f"
done
t_ok "daemon, header, .pc and man pages 3, 5, 8 installed"

# ---- the units ------------------------------------------------------------
UD=$ROOT$systemdsystemunitdir
for u in fcgi-cancel.service fcgi-cancel@.service; do
    [ -f "$UD/$u" ] || t_fail "not installed: $systemdsystemunitdir/$u"
    inst=fcgi-cancel
    [ "$u" = fcgi-cancel.service ] || inst=%i
    want="ExecStart=$sbindir/fcgi-cancel --config $sysconfdir/fcgi-cancel/$inst.json"
    grep -qxF "$want" "$UD/$u" || t_fail "$u: no line $want"
done
for u in fcgi-cancel.socket fcgi-cancel@.socket; do
    [ -f "$UD/$u" ] || t_fail "not installed: $systemdsystemunitdir/$u"
done
! grep -n '@[a-z_]*@' "$UD"/fcgi-cancel* || t_fail "a placeholder is left"
t_ok "units in $systemdsystemunitdir: ExecStart=$sbindir/fcgi-cancel --config $sysconfdir/fcgi-cancel/..."

# verify, with ExecStart= and the Documentation= pages pointed at the
# DESTDIR copies (the templates as the instance "www").
mkdir "$T/units"
for u in "$UD"/fcgi-cancel*; do
    sed "s|^ExecStart=$sbindir/|ExecStart=$ROOT$sbindir/|" "$u" \
        > "$T/units/${u##*/}"
done
t_verify_units "$ROOT$mandir" \
    "$T/units/fcgi-cancel.socket" "$T/units/fcgi-cancel.service" \
    "$T/units/fcgi-cancel@www.socket" "$T/units/fcgi-cancel@www.service"
t_ok "systemd-analyze verify: the installed units, fcgi-cancel@www too"

# ---- configuration, logrotate, module directory ---------------------------
CONF=$ROOT$sysconfdir/fcgi-cancel/fcgi-cancel.json
LR=$ROOT$sysconfdir/logrotate.d/fcgi-cancel
cmp -s "$top_srcdir/conf/fcgi-cancel.json" "$CONF" ||
    t_fail "$sysconfdir/fcgi-cancel/fcgi-cancel.json is not conf/fcgi-cancel.json"
out=$("$ROOT$sbindir/fcgi-cancel" -t --config "$CONF" 2>&1) &&
    [ "$out" = OK ] || t_fail "-t on the installed configuration: $out"
cmp -s "$top_srcdir/conf/logrotate" "$LR" ||
    t_fail "$sysconfdir/logrotate.d/fcgi-cancel is not conf/logrotate"
logrotate -d -s "$T/logrotate.state" "$LR" > "$T/logrotate.log" 2>&1 ||
    t_fail "logrotate -d rejects the installed file (see logrotate.log)"
moddir=$(PKG_CONFIG_PATH=$ROOT$pkgconfigdir pkg-config \
    --variable=moduledir fcgi-cancel)
[ "$moddir" = "$moduledir" ] ||
    t_fail "fcgi-cancel.pc: moduledir=$moddir, make installs $moduledir"
[ -d "$ROOT$moddir" ] || t_fail "module directory $moddir not created"
t_ok "config (-t OK), logrotate (logrotate -d OK), module dir $moddir"

# A second install leaves an edited configuration alone.
echo '// edited' >> "$CONF"
cp "$CONF" "$T/edited.json"
submake install DESTDIR="$ROOT" > "$T/install2.log" 2>&1 ||
    t_fail "second make install failed (see install2.log)"
cmp -s "$T/edited.json" "$CONF" || t_fail "make install overwrote the configuration"
grep -q "fcgi-cancel.json exists: left as it is" "$T/install2.log" ||
    t_fail "the second install does not say it kept the configuration"
t_ok "a second make install keeps the edited configuration, and says so"

# Uninstall: everything goes but the edited configuration.
submake uninstall DESTDIR="$ROOT" > "$T/uninstall.log" 2>&1 ||
    t_fail "make uninstall failed (see uninstall.log)"
remains=$(find "$ROOT" -type f)
[ "$remains" = "$CONF" ] || t_fail "after make uninstall: $remains"
[ ! -e "$ROOT$moddir" ] || t_fail "make uninstall left the empty $moddir"
t_ok "make uninstall removes all but the edited configuration"
