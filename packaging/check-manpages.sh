#!/bin/sh
# Formats each man page given and fails on any warning; exits 77 (skip) without a formatter.
# Used by the ctest entry packaging.manpage.
set -u
if command -v groff >/dev/null 2>&1; then
    fmt="groff -z -man -ww -t"
elif command -v man >/dev/null 2>&1; then
    fmt="man --warnings -l"
else
    echo "no groff or man on this machine: skipped"
    exit 77
fi
status=0
for page in "$@"; do
    if [ ! -r "$page" ]; then
        echo "$page: cannot read"
        status=1
        continue
    fi
    # Warnings go to stderr; groff's exit status does not reflect them.
    out=$(MANWIDTH=80 $fmt "$page" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        printf '%s: %s (status %d)\n%s\n' "$page" "$fmt" "$rc" "$out"
        status=1
    else
        echo "$page: formats cleanly ($fmt)"
    fi
done
exit $status
