#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the store tests and prints the
# variable that points them at it:
#
#	eval "$(bash .ci/postgres.sh)"
#	go test -race ./internal/store/...
#
# Idempotent: a second call finds the cluster already running and prints the
# same line. Everything but the export line goes to stderr.
#
# Settings (environment):
#	HANGAR_PG_DIR   data directory (default /var/tmp/hangar-pg)
#	HANGAR_PG_PORT  preferred port (default 55432; the next free one is used if taken)
set -euo pipefail

dir=${HANGAR_PG_DIR:-/var/tmp/hangar-pg}
want_port=${HANGAR_PG_PORT:-55432}

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

bin=$(find_bin || true)
if [[ -z $bin ]]; then
	log "PostgreSQL binaries not found; installing the postgresql package"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
	bin=$(find_bin) || {
		log "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
		exit 1
	}
fi

# as_owner runs a command as the cluster's owner: the postgres user when we
# are root (initdb refuses root), ourselves otherwise.
as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		if command -v runuser >/dev/null; then
			runuser -u postgres -- "$@"
		else
			su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	else
		"$@"
	fi
}

mkdir -p "$dir"
if [[ $(id -u) -eq 0 ]]; then
	chown postgres: "$dir"
fi
chmod 700 "$dir"

if [[ ! -f $dir/PG_VERSION ]]; then
	log "initdb $dir"
	as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --no-sync >&2
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
	# Line 4 of postmaster.pid is the port the running cluster listens on.
	port=$(sed -n 4p "$dir/postmaster.pid")
	log "already running on port $port"
else
	port=$want_port
	while port_in_use "$port"; do
		port=$((port + 1))
		if ((port > want_port + 100)); then
			log "no free port in $want_port..$((want_port + 100))"
			exit 1
		fi
	done
	log "starting on 127.0.0.1:$port"
	as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
		start >&2 || {
		log "start failed; server log follows"
		tail -n 50 "$dir/server.log" >&2 || true
		exit 1
	}
fi

for _ in $(seq 1 60); do
	if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
		echo "export HANGAR_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
		exit 0
	fi
	sleep 0.5
done
log "PostgreSQL on port $port did not become ready"
exit 1
