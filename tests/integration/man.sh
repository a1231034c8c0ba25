#!/bin/bash
# SPDX-License-Identifier: MIT
# The manual pages: mandoc -Tlint finds nothing at level warning or above,
# fcgi-cancel(8) documents every long option that `fcgi-cancel --help`
# prints, and fcgi-cancel.json(5) every top-level key of the annotated
# conf/fcgi-cancel.json and every key of the configuration tables in the
# sources (top level, routes, the work and exec handlers).  The README and
# docs/ as a reader follows them: every relative link leads to a file of
# the tree (and its #anchor to a heading there), README links every page
# of docs/, and every conf/ snippet is named in docs/frontends.md.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

command -v mandoc >/dev/null 2>&1 ||
    t_fail "mandoc not installed (scripts/deps installs it)"
[ -x "$FCGI_CANCEL" ] || t_fail "server binary not built: $FCGI_CANCEL"
MAN8=$top_srcdir/man/fcgi-cancel.8
MAN5=$top_srcdir/man/fcgi-cancel.json.5

# 1. Lint.  (Messages below "warning", such as a reference to a page that
# is not installed here, are style notes.)
rc=0
mandoc -Tlint -W warning "$MAN8" "$MAN5" "$top_srcdir/man/fcgi_cancel.3" \
    > "$T/lint.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || [ -s "$T/lint.log" ]; then
    cat "$T/lint.log" >&2
    t_fail "mandoc -Tlint -W warning: status $rc"
fi
t_ok "mandoc -Tlint -W warning: clean"

# The pages as a reader sees them: plain text, no overstrike.
render() {
    mandoc -Tascii "$1" 2>/dev/null | sed 's/.\x08//g'
}
render "$MAN8" > "$T/fcgi-cancel.8.txt"
render "$MAN5" > "$T/fcgi-cancel.json.5.txt"
[ -s "$T/fcgi-cancel.8.txt" ] && [ -s "$T/fcgi-cancel.json.5.txt" ] ||
    t_fail "mandoc rendered nothing"

# 2. Every long option of --help, in fcgi-cancel(8).
"$FCGI_CANCEL" --help > "$T/help.txt"
mapfile -t opts < <(grep -oE -- '--[a-z][a-z-]*' "$T/help.txt" | sort -u)
[ "${#opts[@]}" -ge 10 ] ||
    t_fail "found only ${#opts[@]} long options in --help"
missing=()
for o in "${opts[@]}"; do
    grep -qE -- "(^|[^a-z-])$o([^a-z-]|\$)" "$T/fcgi-cancel.8.txt" ||
        missing+=("$o")
done
[ "${#missing[@]}" -eq 0 ] ||
    t_fail "fcgi-cancel.8 does not document: ${missing[*]}"
t_ok "fcgi-cancel.8 documents all ${#opts[@]} long options: ${opts[*]}"

# has_key KEY: the page names KEY as a word (not inside a longer name).
has_key() {
    grep -qE "(^|[^a-z_])$1([^a-z_]|\$)" "$T/fcgi-cancel.json.5.txt"
}

# 3. Every top-level key of conf/fcgi-cancel.json (written at an indent of
# four spaces, one per line), in fcgi-cancel.json(5).
mapfile -t keys < <(sed -n 's/^    "\([a-z_][a-z0-9_]*\)":.*/\1/p' \
    "$top_srcdir/conf/fcgi-cancel.json")
[ "${#keys[@]}" -ge 10 ] ||
    t_fail "found only ${#keys[@]} top-level keys in conf/fcgi-cancel.json"
missing=()
for k in "${keys[@]}"; do
    has_key "$k" || missing+=("$k")
done
[ "${#missing[@]}" -eq 0 ] ||
    t_fail "fcgi-cancel.json.5 does not document: ${missing[*]}"
t_ok "fcgi-cancel.json.5 documents the ${#keys[@]} top-level keys: ${keys[*]}"

# 4. Every key the code reads: the .name fields of the key tables of
# src/config.c (top-level keys), src/router.c (the keys of every route)
# and each handler's row in src/handlers/.
mapfile -t code_keys < <(
    sed -n 's/.*\.name = "\([a-z_][a-z0-9_]*\)".*/\1/p' \
        "$top_srcdir/src/config.c" "$top_srcdir/src/router.c" \
        "$top_srcdir"/src/handlers/*.c | sort -u)
[ "${#code_keys[@]}" -ge 20 ] ||
    t_fail "found only ${#code_keys[@]} keys in the sources' key tables"
missing=()
for k in "${code_keys[@]}"; do
    has_key "$k" || missing+=("$k")
done
[ "${#missing[@]}" -eq 0 ] ||
    t_fail "fcgi-cancel.json.5 does not document: ${missing[*]}"
t_ok "fcgi-cancel.json.5 documents the ${#code_keys[@]} keys of the code's tables"

# 5. The handlers a route may name, the reasons, the deadline parameter.
for w in work exec module sql status ping client_gone aborted write_error deadline \
         shutdown FCGI_CANCEL_DEADLINE_MS; do
    grep -qw -- "$w" "$T/fcgi-cancel.json.5.txt" ||
        grep -qw -- "$w" "$T/fcgi-cancel.8.txt" ||
        t_fail "neither page mentions $w"
done
for w in SIGTERM SIGINT SIGHUP NOTIFY_SOCKET LISTEN_FDS READY=1 STOPPING=1 \
         WATCHDOG=1 STATUS=; do
    grep -qF -- "$w" "$T/fcgi-cancel.8.txt" ||
        t_fail "fcgi-cancel.8 does not mention $w"
done
t_ok "handlers, reasons, signals, environment and notify messages documented"

# 6. The README and docs/: the links a reader follows.
# slug HEADING: the anchor GitHub gives a heading (lower case, punctuation
# but - and _ dropped, spaces as -).
slug() {
    printf '%s\n' "$1" | tr '[:upper:]' '[:lower:]' |
        sed -e 's/[^a-z0-9 _-]//g' -e 's/ /-/g'
}
pages=("$top_srcdir/README.md" "$top_srcdir"/docs/*.md)
[ "${#pages[@]}" -ge 5 ] || t_fail "docs/ holds only $((${#pages[@]} - 1)) pages"
nlinks=0
broken=()
for page in "${pages[@]}"; do
    dir=$(dirname "$page")
    while IFS= read -r link; do
        case $link in http:* | https:* | mailto:*) continue ;; esac
        nlinks=$((nlinks + 1))
        file=${link%%#*}
        target=$page
        [ -n "$file" ] && target=$dir/$file
        if [ ! -e "$target" ]; then
            broken+=("${page#"$top_srcdir"/}: $link")
            continue
        fi
        case $link in *'#'*) ;; *) continue ;; esac
        anchor=${link#*#}
        found=0
        while IFS= read -r h; do
            [ "$(slug "$h")" = "$anchor" ] && { found=1; break; }
        done < <(sed -n 's/^#\{1,6\} \(.*\)/\1/p' "$target")
        [ "$found" -eq 1 ] || broken+=("${page#"$top_srcdir"/}: $link (no such heading)")
    done < <(grep -oE '\]\([^) ]+\)' "$page" | sed -e 's/^](//' -e 's/)$//')
done
[ "${#broken[@]}" -eq 0 ] || t_fail "broken links: ${broken[*]}"
[ "$nlinks" -ge 20 ] || t_fail "found only $nlinks relative links in README and docs/"
missing=()
for page in "$top_srcdir"/docs/*.md; do
    grep -qF "](docs/$(basename "$page"))" "$top_srcdir/README.md" ||
        missing+=("docs/$(basename "$page")")
done
for snippet in "$top_srcdir"/conf/*.conf "$top_srcdir"/conf/*.Caddyfile; do
    case $(basename "$snippet") in nginx*|lighttpd*|apache*|h2o*|caddy*) ;; *) continue ;; esac
    grep -qF "conf/$(basename "$snippet")" "$top_srcdir/docs/frontends.md" ||
        missing+=("conf/$(basename "$snippet") in docs/frontends.md")
done
[ "${#missing[@]}" -eq 0 ] || t_fail "not linked: ${missing[*]}"
t_ok "README and docs/: $nlinks relative links resolve, every page and front-end snippet is linked"
