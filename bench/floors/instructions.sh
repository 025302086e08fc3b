#!/usr/bin/env bash
# Instructions per handshake (valgrind's callgrind counts instructions: the same figure on a
# busy machine as on an idle one). Each figure is (I(N2) - I(N1)) / (N2 - N1), which leaves out
# start-up. Run from the repository root after `node bench/build.mjs`; each line takes minutes.
#
#   bash bench/floors/instructions.sh client raw|effect      the bench's client, against the raw server
#   bash bench/floors/instructions.sh resumed raw|effect     the same resuming TLS 1.3 sessions, against the effect-ssl server
#   bash bench/floors/instructions.sh floor one|steps|one-loop|steps-loop   floors/client.mjs
#   bash bench/floors/instructions.sh server raw|effect|floor   a server process, under floors/rawClient.mjs
set -u
kind=$1; variant=$2; n1=${3:-300}; n2=${4:-900}
cd "$(dirname "$0")/.."
grind() { valgrind --tool=callgrind --callgrind-out-file=/dev/null --smc-check=all-non-file "$@" 2>&1 | sed -n 's/.*Collected : //p'; }
serverRun() {
  local n=$1 out; out=$(mktemp -d)
  if [ "$variant" = floor ]; then set -- node floors/server.mjs; else set -- node dist/children-server.js --impl "$variant"; fi
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --smc-check=all-non-file "$@" > "$out/ports" 2> "$out/log" &
  local pid=$!
  until grep -q '}$' "$out/ports" 2>/dev/null; do sleep 0.5; done
  node floors/rawClient.mjs "$(node -e "console.log(JSON.parse(require('fs').readFileSync('$out/ports', 'utf8')).rsa)")" "$n"
  kill -TERM $pid; wait $pid
  sed -n 's/.*Collected : //p' "$out/log"; rm -rf "$out"
}
run() {
  case $kind in
    client) grind node dist/profile.js handshakes --count "$1" --side "$variant" --server raw ;;
    resumed) grind node dist/profile.js handshakes --count "$1" --side "$variant" --server effect --resumed ;;
    floor) grind node floors/client.mjs "$1" "$variant" ;;
    server) serverRun "$1" ;;
  esac
}
a=$(run "$n1"); b=$(run "$n2")
echo "$kind $variant: $(( (b - a) / (n2 - n1) )) instructions per handshake"
