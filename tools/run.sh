#!/bin/sh
# `make run`: makes ./run (port base 10000, domain example.test, user demo@example.test
# with password "demo") when it is not there yet, then starts it in the foreground.
set -eu
build=${1:?usage: run.sh BUILDDIR}
postern="$build/sbin/postern"
dir=./run
if [ ! -f "$dir/postern.conf" ]; then
    "$postern" init "$dir" --port-base 10000 --domain example.test
fi
if ! "$postern" -c "$dir" user list | grep -qx 'demo@example.test'; then
    echo demo | "$postern" -c "$dir" user add demo@example.test
fi
echo "Postern: SMTP on 127.0.0.1:10025 and [::1]:10025; mail for demo@example.test"
echo "lands in $dir/mail/example.test/demo/.  Ctrl-C stops it."
exec "$postern" -c "$dir" start -f
