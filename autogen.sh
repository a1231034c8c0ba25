#!/bin/sh
# SPDX-License-Identifier: MIT
# Generate ./configure from configure.ac and Makefile.am.
for tool in autoreconf aclocal automake pkg-config; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "autogen.sh: '$tool' not found; install autoconf, automake and pkg-config" >&2
        exit 1
    fi
done
exec autoreconf -fi "$(dirname "$0")"
