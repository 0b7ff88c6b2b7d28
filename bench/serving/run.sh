#!/usr/bin/env bash
# Side-by-side benchmark: internal/serving vs Flask + gunicorn, both with 2
# worker processes running the same entry scripts (the digits example's
# score.py with a freshly trained LogisticRegression, and an echo script),
# loaded by wrk with one digits sample per request.
#
#   bench/serving/run.sh            # needs: wrk, gunicorn, python3-flask, python3-sklearn
#   DURATION=20s CONNS=64 bench/serving/run.sh
#
# Debian: apt-get install -y wrk gunicorn python3-flask python3-sklearn
#
# With 2+ CPUs wrk is pinned to CPU 0 and the server under test (front end
# and workers) to the others (taskset); PIN=0 turns pinning off. Two loads
# per server: CONNS connections (throughput) and one connection per worker
# (latency without queueing, to compare with run() called in-process).
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PYTHON:-/usr/bin/python3}
WORKERS=${WORKERS:-2}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
PIN=${PIN:-1}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v gunicorn >/dev/null || missing+=(gunicorn)
"$PY" -c 'import flask' 2>/dev/null || missing+=(python3-flask)
"$PY" -c 'import sklearn' 2>/dev/null || missing+=(python3-sklearn)
if ((${#missing[@]})); then
	echo "Error: missing ${missing[*]}" >&2
	echo "Try: apt-get install -y ${missing[*]}" >&2
	exit 1
fi

load_pin=() server_pin=()
ncpu=$(nproc)
if [[ $PIN == 1 && $ncpu -ge 2 ]] && command -v taskset >/dev/null; then
	load_pin=(taskset -c 0)
	server_pin=(taskset -c "1-$((ncpu - 1))")
fi

tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building the front end and training the digits model..." >&2
go build -o "$tmp/serve" ./bench/serving
mkdir -p "$tmp/model"
"$PY" - "$tmp/model/model.pkl" "$tmp/body.json" <<'EOF'
import json, pickle, sys
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
d = load_digits()
model = LogisticRegression(max_iter=2000).fit(d.data / 16.0, d.target)
pickle.dump(model, open(sys.argv[1], "wb"))
json.dump({"data": [d.data[0].astype(int).tolist()]}, open(sys.argv[2], "w"))
EOF
export BODY_FILE=$tmp/body.json

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() { # url
	"$PY" - "$1" "$BODY_FILE" <<'EOF'
import sys, time, urllib.request
url, body = sys.argv[1], open(sys.argv[2], "rb").read()
for _ in range(600):
    try:
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        if urllib.request.urlopen(req, timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("server at %s never answered 200" % url)
EOF
}

# wrk_row NAME SERVER CONNS URL: one wrk run, one table row.
wrk_row() {
	local out
	out=$("${load_pin[@]}" wrk -t1 -c"$3" -d"$DURATION" --latency -s bench/serving/post.lua "$4")
	awk -v name="$1" -v server="$2" -v conns="$3" '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
			if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
			return v
		}
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/Requests\/sec/ { rps = $2 }
		/Non-2xx/ { bad = $NF }
		END { printf "| %-6s | %-16s | %5d | %9.0f | %7.2f | %7.2f | %7d |\n", name, server, conns, rps, p50, p99, bad + 0 }
	' <<<"$out"
}

# bench NAME SRC_DIR ENTRY MODEL_DIR
bench() {
	local name=$1 src=$2 entry=$3 model=$4 port
	read -r ip50 ip99 < <("${server_pin[@]}" env AZUREML_MODEL_DIR="$model" "$PY" bench/serving/inprocess.py "$src" "$entry" "$BODY_FILE")
	printf '| %-6s | %-16s | %5s | %9s | %7.3f | %7.3f | %7s |\n' "$name" "run() in-process" - - "$ip50" "$ip99" -

	port=$(free_port)
	"${server_pin[@]}" "$tmp/serve" -python "$PY" -source "$src" -entry "$entry" -model-dir "$model" \
		-workers "$WORKERS" -addr "127.0.0.1:$port" >"$tmp/serve.out" 2>&1 &
	server_pid=$!
	wait_ready "http://127.0.0.1:$port/score"
	"${load_pin[@]}" wrk -t1 -c"$CONNS" -d2s -s bench/serving/post.lua "http://127.0.0.1:$port/score" >/dev/null # warm-up
	wrk_row "$name" "hangar serving" "$CONNS" "http://127.0.0.1:$port/score"
	wrk_row "$name" "hangar serving" "$WORKERS" "http://127.0.0.1:$port/score"
	kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

	port=$(free_port)
	SCORE_DIR=$src SCORE_ENTRY=$entry AZUREML_MODEL_DIR=$model "${server_pin[@]}" \
		"$PY" -m gunicorn -w "$WORKERS" -b "127.0.0.1:$port" --chdir bench/serving \
		--log-level warning flask_app:app >"$tmp/gunicorn.out" 2>&1 &
	server_pid=$!
	wait_ready "http://127.0.0.1:$port/score"
	"${load_pin[@]}" wrk -t1 -c"$CONNS" -d2s -s bench/serving/post.lua "http://127.0.0.1:$port/score" >/dev/null
	wrk_row "$name" "flask+gunicorn" "$CONNS" "http://127.0.0.1:$port/score"
	wrk_row "$name" "flask+gunicorn" "$WORKERS" "http://127.0.0.1:$port/score"
	kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
}

echo "# $(nproc) CPUs, $WORKERS workers, wrk -t1 for $DURATION; load pinned: ${load_pin[*]:-no}, servers: ${server_pin[*]:-no}; $(uptime | sed "s/.*load/load/")"
echo "| script | server           | conns |     req/s | p50 ms  | p99 ms  | non-2xx |"
echo "|--------|------------------|-------|-----------|---------|---------|---------|"
bench digits "$PWD/examples/digits" score.py "$tmp/model"
bench echo "$PWD/bench/serving/echo" score.py "$tmp/model"
