#!/usr/bin/env bash
# Install everything needed to build, run and test the project on Debian 12,
# from Debian's own packages. Safe to run again; root only.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get)" >&2
  exit 1
fi

# Build: compiler, CMake/Ninja, the chosen libraries (Boost 1.81 for Asio's
# as_tuple and awaitable operators), clang for the libFuzzer targets, and
# scdoc for the manual pages.
build_packages=(
  g++ cmake ninja-build pkg-config clang git ca-certificates
  libboost1.81-dev libssl-dev libspf2-dev libhiredis-dev nlohmann-json3-dev
  libmilter-dev libpsl-dev libgtest-dev libgmock-dev
  libsasl2-dev libpcre2-dev libc-ares-dev
  scdoc
)
# Run: Redis for greylisting and rate state.
run_packages=(redis-server libsasl2-modules)
# Tests: real peers and tools (Postfix, Dovecot, DNS servers for SPF and for
# mta-core's resolver, SMTP clients, milter and SPF peers); groff and man for
# the manual pages; lintian, dpkg-dev (shlibdeps) and file for the Debian
# package; nc for the README's check; Podman (runc, netavark and aardvark-dns
# for compose networks and service names, iptables for its port forwarding)
# and debootstrap for the compose stack's test.
test_packages=(
  postfix swaks curl iproute2 socat python3 python3-yaml python3-dnslib
  dovecot-imapd dovecot-lmtpd procps psmisc docker-compose systemd postgrey bindfs
  sasl2-bin libsasl2-modules-db pflogsumm openssl dnsmasq-base miltertest postfix-policyd-spf-python python3-milter
  opendkim opendkim-tools python3-dkim clamav clamav-daemon clamav-milter
  spamass-milter spamassassin spamd spamc
  groff-base man-db lintian dpkg-dev file netcat-openbsd mailutils
  podman runc netavark aardvark-dns iptables debootstrap
)
# Benchmarks: the peers we compare against.
bench_packages=(postfix-policyd-spf-python postfwd policyd-rate-limit dnsmasq-base)

wanted=("${build_packages[@]}" "${run_packages[@]}" "${test_packages[@]}")
if [ "${WITH_BENCH_PEERS:-0}" = 1 ]; then wanted+=("${bench_packages[@]}"); fi

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix must not configure itself as the system MTA: tests run private instances.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Package scripts must not start daemons (redis, dovecot, postgrey) system-wide.
policy_rc=/usr/sbin/policy-rc.d
created_policy_rc=0
if [ ! -e "$policy_rc" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy_rc"
  chmod 755 "$policy_rc"
  created_policy_rc=1
fi
trap '[ "$created_policy_rc" = 1 ] && rm -f "$policy_rc"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
