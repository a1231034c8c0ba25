#!/bin/sh
# SPDX-License-Identifier: MIT
# Test program for the exec handler: a CGI Status, a custom header and a
# short body, with LF line ends.
printf 'Status: 201 Created\nContent-Type: text/plain\n'
printf 'X-Custom: yes\n\ncreated\n'
