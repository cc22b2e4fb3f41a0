#!/bin/sh
# Checks that the Debian packages needed to build and test Postern are installed.
# Run as root it installs what is missing with apt-get (and says so); run by anyone
# else it prints the one apt-get line to run.  Used by `make check` and `make run`;
# plain `make` and `make install` never touch the system.
#   deps.sh check    build and test dependencies
#   deps.sh run      build dependencies only
#   deps.sh list     print the package names (for .ci/run and INSTALL)
set -u
BUILD_PKGS="gcc make pkg-config libssl-dev libbsd-dev libcdb-dev libpcre2-dev libcrypt-dev"
TEST_PKGS="python3 python3-pytest swaks openssl man-db fetchmail python3-dnslib"

case "${1:-check}" in
    check) want="$BUILD_PKGS $TEST_PKGS" ;;
    run)   want="$BUILD_PKGS" ;;
    list)  echo "$BUILD_PKGS $TEST_PKGS"; exit 0 ;;
    *)     echo "usage: deps.sh check|run|list" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; make sure these are installed: $want" >&2
    exit 0
fi

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "Installing missing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || exit 1
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing || exit 1
else
    echo "Missing Debian packages:$missing"
    echo "Install them with:"
    echo "    sudo apt-get install -y$missing"
    exit 1
fi
