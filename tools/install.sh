#!/bin/sh
# `make install`: copies the built tree into an FHS layout under DESTDIR/PREFIX.
# Touches nothing outside DESTDIR: no users, no services, no queue ownership (see INSTALL).
set -eu
destdir=$1 prefix=$2 build=$3 sysconfdir=$4 queuedir=$5
root="$destdir$prefix"
install -d "$root/sbin" "$root/libexec/postern" \
    "$root/share/man/man5" "$root/share/man/man8" "$root/share/doc/postern" \
    "$destdir$sysconfdir" "$destdir$queuedir"
install -m 0755 "$build/sbin/postern" "$root/sbin/postern"
for f in "$build"/libexec/postern/*; do
    install -m 0755 "$f" "$root/libexec/postern/"
done
for m in man/*.5; do [ -f "$m" ] && install -m 0644 "$m" "$root/share/man/man5/"; done
for m in man/*.8; do [ -f "$m" ] && install -m 0644 "$m" "$root/share/man/man8/"; done
install -m 0644 README.md INSTALL "$root/share/doc/postern/"
echo "Installed under $root.  Next: INSTALL, section 'After make install'."
