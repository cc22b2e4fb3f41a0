#!/bin/sh
# Checks that programs were built with the hardening flags of the Makefile, by reading
# their ELF headers with readelf: position-independent (type DYN), full RELRO (a
# GNU_RELRO segment and BIND_NOW), the stack protector (__stack_chk_fail imported) and,
# with --fortify, _FORTIFY_SOURCE (some __*_chk function imported).
#   hardening-check.sh [--fortify] PROGRAM...
fortify=no
if [ "${1:-}" = "--fortify" ]; then
    fortify=yes
    shift
fi
[ $# -gt 0 ] || { echo "usage: hardening-check.sh [--fortify] PROGRAM..." >&2; exit 2; }
command -v readelf >/dev/null 2>&1 || { echo "hardening-check: readelf not found" >&2; exit 2; }

status=0
for p in "$@"; do
    missing=""
    header=$(readelf -hW "$p" 2>/dev/null) || { echo "hardening-check: $p: not an ELF file"; status=1; continue; }
    segments=$(readelf -lW "$p" 2>/dev/null)
    dynamic=$(readelf -dW "$p" 2>/dev/null)
    symbols=$(readelf --dyn-syms -W "$p" 2>/dev/null)
    printf '%s\n' "$header" | grep -Eq 'Type:[[:space:]]+DYN' || missing="$missing PIE"
    printf '%s\n' "$segments" | grep -q 'GNU_RELRO' || missing="$missing RELRO"
    printf '%s\n' "$dynamic" | grep -Eq '\(BIND_NOW\)|FLAGS.*[[:space:]]BIND_NOW|FLAGS_1.*[[:space:]]NOW' \
        || missing="$missing BIND_NOW"
    printf '%s\n' "$symbols" | grep -q '__stack_chk_fail' || missing="$missing stack-protector"
    if [ "$fortify" = yes ]; then
        printf '%s\n' "$symbols" | grep -v '__stack_chk_fail' | grep -Eq '__[a-z0-9_]+_chk' \
            || missing="$missing FORTIFY_SOURCE"
    fi
    if [ -n "$missing" ]; then
        echo "hardening-check: $p lacks:$missing"
        status=1
    fi
done
[ $status -eq 0 ] && echo "hardening-check: $# programs: PIE, full RELRO, stack protector$( [ $fortify = yes ] && echo ', FORTIFY_SOURCE')"
exit $status
