#!/bin/sh
# SPDX-License-Identifier: MIT
# Test program for the exec handler: a CGI header, then the program's whole
# environment, one NAME=VALUE a line, sorted; then the request body.
printf 'Content-Type: text/plain\r\n\r\n'
env | LC_ALL=C sort
echo "--- body"
cat
