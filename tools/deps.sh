#!/bin/sh
# Checks that the Debian packages needed to build and test Postern are installed.
# Run as root it installs what is missing with apt-get (and says so); run by anyone
# else it prints the one apt-get line to run.  Used by `make check`, `make run` and
# .ci/run; plain `make` and `make install` never touch the system.
#   deps.sh check    build and test dependencies
#   deps.sh run      build dependencies only
#   deps.sh list     print the package names (for INSTALL)
set -u
BUILD_PKGS="gcc make pkg-config libssl-dev libbsd-dev libcdb-dev libpcre2-dev libcrypt-dev zlib1g-dev"
# What the tests run, each package for:
#   python3 python3-pytest   the integration tests
#   python3-dnslib           the test DNS server (tests/integration/dnsserver.py)
#   swaks libnet-ssleay-perl SMTP client; swaks needs Net::SSLeay for --tls (a Recommends,
#                            which --no-install-recommends would leave out)
#   openssl                  test certificates
#   man-db                   man(1): the man pages render without warnings
#   fetchmail                a POP3 client that is not ours
#   passwd                   useradd, userdel, chpasswd (postern init and the system-user tests)
#   postfix                  the peer of the interoperability tests and of make bench
#   pflogsumm                the log summariser the log-format tests feed
#   systemd                  systemd-analyze: the unit file passes verify
#   isync curl               IMAP clients (mbsync, curl's imap:// URLs)
#   offlineimap3             an IMAP client that syncs both ways (test_imap_ext)
#   dovecot-core             doveadm reads the Maildirs imapd writes
#   dovecot-imapd            the IMAP peer of make bench
#   opendkim opendkim-tools python3-dkim, spamass-milter spamassassin spamd spamc,
#   clamav-daemon clamav-milter, rspamd
#                            the mail filters the milter tests run on loopback
TEST_PKGS="python3 python3-pytest python3-dnslib swaks libnet-ssleay-perl openssl man-db \
fetchmail passwd postfix pflogsumm systemd isync curl offlineimap3 dovecot-core dovecot-imapd opendkim opendkim-tools \
python3-dkim spamass-milter spamassassin spamd spamc clamav-daemon clamav-milter rspamd"

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

if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages:$missing"
    echo "Install them with:"
    case " $missing " in *" postfix "*)
        echo "    echo 'postfix postfix/main_mailer_type select No configuration' |" \
             "sudo debconf-set-selections"
    esac
    echo "    sudo apt-get install -y --no-install-recommends$missing"
    exit 1
fi

echo "Installing missing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# The servers among them (dovecot, the filters, freshclam) are test peers that the
# tests start on their own ports: their packages must not start the system's copies.
# policy-rc.d (Debian's invoke-rc.d policy) says no for the time of the install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" || exit 1
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -q >/dev/null || exit 1
others="" postfix=""
for p in $missing; do
    if [ "$p" = postfix ]; then postfix=postfix; else others="$others $p"; fi
done
if [ -n "$others" ]; then
    # shellcheck disable=SC2086
    apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends --no-remove $others || exit 1
fi
if [ -n "$postfix" ]; then
    # Postfix is only a test peer: the tests run private instances of it from their own
    # directories.  "No configuration" writes no /etc/postfix/main.cf, and without one the
    # system's Postfix cannot start (its init script exits at once, its systemd unit fails
    # before anything listens): nothing takes port 25.  --no-remove: Postfix conflicts with
    # any other mail server, which is never removed for a test peer.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
        || exit 1
    if ! apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends --no-remove postfix; then
        echo "deps.sh: postfix not installed (another mail server is installed here?);" \
             "the Postfix interoperability tests will be skipped" >&2
    fi
fi
exit 0
