#!/bin/sh
# SPDX-License-Identifier: MIT
# Test program for the exec handler: a CGI header, then the request body
# echoed back by cat(1) as it is read (both pipes are busy at once).
printf 'Content-Type: application/octet-stream\r\n\r\n'
exec cat
