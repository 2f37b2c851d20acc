#!/bin/sh
# No mutable globals: every object file of the project must define nothing in .data or .bss
# (static const tables live in .rodata / .data.rel.ro). Also checks the formatting of the C
# sources against .clang-format when clang-format is installed.
# usage: lint.sh OBJECT_OR_ARCHIVE...
set -u
bad=0
for obj in "$@"; do
    out=$(objdump -t "$obj" | awk '$0 ~ /[ \t]\.(data|bss)[ \t]/ && $NF !~ /^\./ && $(NF-1) !~ /^0+$/ { print $NF }')
    if [ -n "$out" ]; then
        echo "lint: mutable global state in $obj:" >&2
        echo "$out" | sed 's/^/  /' >&2
        bad=1
    fi
done
if command -v clang-format >/dev/null 2>&1; then
    files=$(git ls-files '*.c' '*.h' 2>/dev/null)
    unformatted=""
    for f in $files; do
        clang-format --dry-run "$f" 2>&1 | grep -q warning && unformatted="$unformatted $f"
    done
    [ -z "$unformatted" ] || echo "lint: not clang-formatted (advisory):$unformatted" >&2
fi
[ "$bad" -eq 0 ] && echo "lint: no mutable globals"
exit "$bad"
