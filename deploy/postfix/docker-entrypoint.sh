#!/bin/sh
# Postfix for deploy/docker-compose.yml: Debian's Postfix plus the main.cf
# snippet of this directory, with the policy services and LMTP reached by
# compose service name instead of 127.0.0.1. Runs in the foreground
# (`postfix start-fg`) and logs to stdout, as a container should.
#
# Environment: MYHOSTNAME (default mx.example.org), MYNETWORKS (default the
# loopback only), and the service addresses POLICYD_SPF, POLICYD_RATELIMIT,
# POLICYD_GREYLIST, DELIVERY_LMTP (HOST:PORT, defaults: the compose names).
set -eu

conf=/etc/postfix
snippets=${SNIPPETS:-/usr/share/mailpolicy/postfix}

# Debian's packaged defaults, then the snippet (later lines win).
cp /usr/share/postfix/main.cf.debian "$conf/main.cf"
cp /usr/share/postfix/master.cf.dist "$conf/master.cf"
cat "$snippets/main.cf" >> "$conf/main.cf"
sed -i \
  -e "s/inet:127\.0\.0\.1:10034/inet:${POLICYD_SPF:-policyd-spf:10034}/g" \
  -e "s/inet:127\.0\.0\.1:10032/inet:${POLICYD_RATELIMIT:-policyd-ratelimit:10032}/g" \
  -e "s/inet:127\.0\.0\.1:10023/inet:${POLICYD_GREYLIST:-policyd-greylist:10023}/g" \
  -e "s/lmtp:inet:127\.0\.0\.1:24/lmtp:inet:${DELIVERY_LMTP:-delivery-maildir:24}/g" \
  "$conf/main.cf"

# The mailbox list is mounted read-only: index a copy.
cp /etc/mailpolicy/vmailbox "$conf/vmailbox"
postmap "$conf/vmailbox"

# Log to stdout for `docker logs`; no aliases (nothing is delivered locally).
# lmtp_host_lookup: the LMTP host is a compose service name, which the system
# resolver knows (Docker's DNS, /etc/hosts) and a DNS-only lookup may not.
postconf -e \
  "myhostname = ${MYHOSTNAME:-mx.example.org}" \
  "mynetworks = ${MYNETWORKS:-127.0.0.0/8}" \
  "virtual_mailbox_maps = hash:$conf/vmailbox" \
  "inet_interfaces = all" \
  "inet_protocols = ipv4" \
  "maillog_file = /dev/stdout" \
  "alias_maps =" \
  "alias_database =" \
  "lmtp_host_lookup = native"
# No chroot: compose service names are resolved through the container's
# resolver, which a chroot would not see.
postconf -F '*/*/chroot = n'

postfix check
exec postfix start-fg
