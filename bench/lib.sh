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
