#!/bin/sh
# `make install`: copies the built tree into an FHS layout under DESTDIR/PREFIX.
# Touches nothing outside DESTDIR: no users, no services, no queue ownership (see INSTALL).
set -eu
destdir=$1 prefix=$2 build=$3 sysconfdir=$4 queuedir=$5
root="$destdir$prefix"
install -d "$root/sbin" "$root/libexec/postern" \
    "$root/share/man/man1" "$root/share/man/man5" "$root/share/man/man8" "$root/share/doc/postern" \
    "$destdir$sysconfdir" "$destdir$queuedir"
install -m 0755 "$build/sbin/postern" "$root/sbin/postern"
# sendmail(1), with mailq and newaliases as links.  It is setgid posterndrop (the
# setgid_group of postern.conf) so that every local user can write into maildrop/;
# that group exists once "postern init" has run as root.
install -m 0755 "$build/bin/sendmail" "$root/sbin/sendmail"
ln -sf sendmail "$root/sbin/mailq"
ln -sf sendmail "$root/sbin/newaliases"
if [ "$(id -u)" = 0 ] && getent group posterndrop >/dev/null 2>&1; then
    chgrp posterndrop "$root/sbin/sendmail"
    chmod 2755 "$root/sbin/sendmail"
else
    echo "Note: after 'postern init' as root, run" \
        "chgrp posterndrop $prefix/sbin/sendmail && chmod 2755 $prefix/sbin/sendmail"
fi
for f in "$build"/libexec/postern/*; do
    install -m 0755 "$f" "$root/libexec/postern/"
done
for m in man/*.1; do [ -f "$m" ] && install -m 0644 "$m" "$root/share/man/man1/"; done
for m in man/*.5; do [ -f "$m" ] && install -m 0644 "$m" "$root/share/man/man5/"; done
for m in man/*.8; do [ -f "$m" ] && install -m 0644 "$m" "$root/share/man/man8/"; done
install -m 0644 README.md INSTALL "$root/share/doc/postern/"
echo "Installed under $root.  Next: INSTALL, section 'After make install'."
