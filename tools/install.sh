#!/bin/sh
# `make install` and `make uninstall`: the built tree in an FHS layout under
# DESTDIR/PREFIX, and back out again.
#
#   sh tools/install.sh [-u] DESTDIR PREFIX BUILD SYSCONFDIR QUEUEDIR [UNITDIR]
#
# Installs PREFIX/sbin/postern, PREFIX/lib/postern/ (the daemons), PREFIX/sbin/sendmail
# with PREFIX/bin/mailq and PREFIX/bin/newaliases linked to it (when the build has a
# sendmail program), the manual pages (those whose names Postfix also uses, such as
# master(8) or smtpd(8), as postern-NAME), the systemd unit in UNITDIR (default
# PREFIX/lib/systemd/system), the documentation, and the empty directories SYSCONFDIR
# and QUEUEDIR.  Touches nothing outside DESTDIR: no users, no services, no ownership
# (see INSTALL).  -u removes what an install put there; SYSCONFDIR and QUEUEDIR go
# only when empty, so an instance's configuration and mail are never removed.
set -eu
uninstall=0
if [ "${1:-}" = "-u" ]; then
    uninstall=1
    shift
fi
destdir=$1 prefix=$2 build=$3 sysconfdir=$4 queuedir=$5
unitdir=${6:-$prefix/lib/systemd/system}
root="$destdir$prefix"

# The name a manual page is installed under: ours keep theirs, the others get a
# postern- prefix so that they sit beside Postfix's in one man path.
man_name() {
    b=$(basename "$1")
    case $b in
        postern*) echo "$b" ;;
        *) echo "postern-$b" ;;
    esac
}

if [ $uninstall = 1 ]; then
    rm -f "$root/sbin/postern" "$root/sbin/sendmail" "$root/bin/mailq" \
        "$root/bin/newaliases" "$destdir$unitdir/postern.service"
    rm -rf "$root/lib/postern" "$root/share/doc/postern"
    for m in man/*.[1-8]; do
        [ -f "$m" ] || continue
        sect=${m##*.}
        rm -f "$root/share/man/man$sect/$(man_name "$m")"
    done
    for d in "$destdir$sysconfdir" "$destdir$queuedir"; do
        rmdir "$d" 2>/dev/null || true
    done
    echo "Removed from $root."
    exit 0
fi

install -d "$root/sbin" "$root/lib/postern" "$root/share/doc/postern" \
    "$destdir$sysconfdir" "$destdir$queuedir" "$destdir$unitdir"
install -m 0755 "$build/sbin/postern" "$root/sbin/postern"
for f in "$build"/libexec/postern/*; do
    install -m 0755 "$f" "$root/lib/postern/"
done
if [ -x "$build/bin/sendmail" ]; then
    install -d "$root/bin"
    install -m 0755 "$build/bin/sendmail" "$root/sbin/sendmail"
    ln -sf ../sbin/sendmail "$root/bin/mailq"
    ln -sf ../sbin/sendmail "$root/bin/newaliases"
    # setgid posterndrop (the setgid_group of postern.conf) lets every local user
    # write into maildrop/; the group exists once "postern init" has run as root
    if [ "$(id -u)" = 0 ] && getent group posterndrop >/dev/null 2>&1; then
        chgrp posterndrop "$root/sbin/sendmail"
        chmod 2755 "$root/sbin/sendmail"
    else
        echo "Note: make $prefix/sbin/sendmail setgid posterndrop:" \
            "chgrp posterndrop $prefix/sbin/sendmail && chmod 2755 $prefix/sbin/sendmail"
    fi
fi
for m in man/*.[1-8]; do
    [ -f "$m" ] || continue
    sect=${m##*.}
    install -d "$root/share/man/man$sect"
    install -m 0644 "$m" "$root/share/man/man$sect/$(man_name "$m")"
done
sed -e "s|@SBINDIR@|$prefix/sbin|g" -e "s|@SYSCONFDIR@|$sysconfdir|g" \
    -e "s|@QUEUEDIR@|$queuedir|g" systemd/postern.service.in > "$destdir$unitdir/postern.service"
chmod 0644 "$destdir$unitdir/postern.service"
install -m 0644 README.md INSTALL "$root/share/doc/postern/"
echo "Installed under $root.  Next: INSTALL, section 'After make install'."
