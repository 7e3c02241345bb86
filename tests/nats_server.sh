#!/bin/sh
# Run a command beside a private nats-server: JetStream on, its store in
# a fresh temporary directory, listening on a free loopback port, with
# max_payload 4 MiB (so that 1 MiB messages fit, DESIGN.md 3).  Every
# argument "@NATS@" (or containing it) has it replaced by 127.0.0.1:PORT.
# The server is stopped and its directory removed when the command ends,
# whatever way it ends.
#
# usage: nats_server.sh COMMAND [ARG...]
# Exit 77 (meson's "skipped") with the reason when nats-server is absent.
#
# SPDX-License-Identifier: MIT
set -u

if ! command -v nats-server >/dev/null 2>&1; then
	echo "SKIP: nats-server is not installed (Debian: apt-get install nats-server)"
	exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/ipc-nats.XXXXXX") || exit 1
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

cat >"$dir/server.conf" <<EOF
listen: 127.0.0.1:-1
max_payload: 4MB
ports_file_dir: "$dir"
jetstream { store_dir: "$dir/js", max_memory_store: 256MB, max_file_store: 1GB }
EOF
nats-server -c "$dir/server.conf" -l "$dir/server.log" &
pid=$!
port=
i=0
while [ $i -lt 200 ]; do
	f=$(ls "$dir"/*.ports 2>/dev/null | head -n 1)
	if [ -n "$f" ] && grep -q '"nats"' "$f" && grep -q "Server is ready" "$dir/server.log"; then
		port=$(sed -n 's/.*"nats":\["nats:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$f")
		[ -n "$port" ] && break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
	i=$((i + 1))
done
if [ -z "$port" ]; then
	echo "FAIL: nats-server did not start; its log:"
	cat "$dir/server.log"
	exit 1
fi
echo "nats-server (pid $pid) on 127.0.0.1:$port, JetStream store in $dir"

n=$#
while [ $n -gt 0 ]; do
	a=$1
	shift
	case $a in
	*@NATS@*) a=$(printf '%s' "$a" | sed "s/@NATS@/127.0.0.1:$port/g") ;;
	esac
	set -- "$@" "$a"
	n=$((n - 1))
done
"$@"
