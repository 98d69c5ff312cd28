#!/bin/sh
# Checks deploy/systemd/*.service with systemd's own tools, offline (no
# running systemd needed): `systemd-analyze verify` must print nothing about
# our units, and `systemd-analyze security` must rate each one "OK" (exposure
# below 2.0 of 10). The ExecStart paths are pointed at the built binaries,
# since verify checks that they exist; the man: links are not followed (the
# pages are not installed here; the package test verifies them installed).
# Usage: check_units.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for unit in "$src"/deploy/systemd/*.service; do
  name=$(basename "$unit" .service)
  sed "s#/usr/sbin/$name#$build/$name/$name#g" "$unit" > "$tmp/$name.service"
done
cd "$tmp"
for unit in *.service; do
  out=$(systemd-analyze verify --man=no "./$unit" 2>&1 | grep -F "$unit" || true)
  if [ -n "$out" ]; then
    echo "FAIL $unit: systemd-analyze verify:"; echo "$out"; status=1
  fi
  level=$(systemd-analyze security --offline=yes "./$unit" 2>&1 | sed -n 's/.*exposure level for .*: \([0-9.]*\) .*/\1/p')
  if [ -z "$level" ] || ! awk -v l="$level" 'BEGIN { exit !(l < 2.0) }'; then
    echo "FAIL $unit: exposure level '${level}' (want < 2.0)"; status=1
  else
    echo "ok   $unit: verify clean, exposure $level"
  fi
done
exit $status
