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

# The median of numbers, one per line on standard input.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# status=sent lines in a maillog so far.
sent() { grep -c 'status=sent' "$1" 2>/dev/null || true; }

# After a load of MESSAGES that started at START (date +%s.%N) and was all
# accepted at END_ACCEPT: wait until MAILLOG has TARGET sent lines (at most
# two minutes), then print "accepted delivered" in messages per second.
delivery_rates() {  # $1 messages, $2 start, $3 end_accept, $4 maillog, $5 target
  local end_deliver
  for _ in $(seq 6000); do
    [[ $(sent "$4") -ge $5 ]] && break
    sleep 0.02
  done
  end_deliver=$(date +%s.%N)
  [[ $(sent "$4") -ge $5 ]] || echo "not all delivered in time" >&2
  /usr/bin/python3 -c "import sys; m,s,a,d=map(float,sys.argv[1:]); print('%.0f %.0f' % (m/(a-s), m/(d-s)))" \
    "$1" "$2" "$3" "$(date +%s.%N)"
}

# RUNS rounds alternating Postfix and mta-core, each "round PORT MAILLOG"
# (the calling script's own function, printing "accepted delivered"); then
# the medians and mta-core's ratio to Postfix.
compare_mtas() {  # $1 runs, $2 Postfix's port, $3 its maillog, $4 mta-core's port, $5 its maillog
  local r a d pa pd ma md
  local -a pf_acc=() pf_del=() mc_acc=() mc_del=()
  for r in $(seq "$1"); do
    read -r a d < <(round "$2" "$3")
    pf_acc+=("$a"); pf_del+=("$d")
    echo "round $r postfix   accepted $a/s delivered $d/s"
    read -r a d < <(round "$4" "$5")
    mc_acc+=("$a"); mc_del+=("$d")
    echo "round $r mta-core  accepted $a/s delivered $d/s"
  done
  pa=$(printf '%s\n' "${pf_acc[@]}" | median); pd=$(printf '%s\n' "${pf_del[@]}" | median)
  ma=$(printf '%s\n' "${mc_acc[@]}" | median); md=$(printf '%s\n' "${mc_del[@]}" | median)
  printf '\n%-10s %12s %12s\n' "median" "accepted/s" "delivered/s"
  printf '%-10s %12s %12s\n' "postfix" "$pa" "$pd" "mta-core" "$ma" "$md"
  /usr/bin/python3 -c "import sys; pa,pd,ma,md=map(float,sys.argv[1:]); print('ratio      %11.1fx %11.1fx' % (ma/pa, md/pd))" \
    "$pa" "$pd" "$ma" "$md"
}
