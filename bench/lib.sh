# Helpers shared by the bench/*/run.sh scripts (sourced, not run).

# A loopback port that was free a moment ago.
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait until something accepts on 127.0.0.1:PORT, at most SECONDS (default 10).
wait_port() {
  local port=$1 tries=$(( ${2:-10} * 20 )) i
  for ((i = 0; i < tries; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$port" >&2
  return 1
}

# A private Postfix's master.cf: smtpd on 127.0.0.1:PORT, then the services
# Postfix needs, none chrooted, and the delivery agents named after the port
# ("local", "smtp relay", ...). The same list as tests/support/postfix_instance.cpp.
postfix_master_cf() {  # $1 smtpd port, then the delivery agents to add
  local port=$1 agent
  shift
  echo "127.0.0.1:$port inet n - n - - smtpd"
  cat <<'MASTER'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MASTER
  for agent in "$@"; do
    case $agent in
      local) echo "local     unix  -       n       n       -       -       local" ;;
      smtp)  echo "smtp      unix  -       -       n       -       -       smtp" ;;
      relay) echo "relay     unix  -       -       n       -       -       smtp" ;;
    esac
  done
}
