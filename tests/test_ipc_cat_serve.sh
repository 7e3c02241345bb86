#!/bin/sh
# ipc-cat's serving and sending options: -l -k serves several clients at
# once (each in its own process), -x and --ascii dump what passes, -d/-f
# with -n and -i send generated messages, and the exit statuses.
#
# usage: test_ipc_cat_serve.sh IPC_CAT
# SPDX-License-Identifier: MIT
set -u
cat_=$1
tmp=$(mktemp -d) || exit 1
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.out "$tmp"/*.err; do
		[ -f "$f" ] && { echo "--- $f"; cat "$f"; }
	done
	exit 1
}

# 1. -l -k over tcp (port 0: -v says the port the kernel chose) and unix:
# three clients at once, each sending three messages 150 ms apart, so
# that their conversations overlap.
for asked in "tcp://127.0.0.1:0" "unix://$tmp/s.sock"; do
	# Emptied first: the child's truncation may come after the first
	# read below, which would find the previous server's URI.
	: >"$tmp/srv.out"
	: >"$tmp/srv.err"
	"$cat_" -l -k -x -v -U "$asked" >"$tmp/srv.out" 2>"$tmp/srv.err" &
	server=$!
	uri=
	for _ in $(seq 100); do
		uri=$(sed -n 's/^ipc-cat: local URI //p' "$tmp/srv.err" | head -n 1)
		[ -n "$uri" ] && break
		sleep 0.05
	done
	[ -n "$uri" ] || fail "-v printed no local URI for $asked"
	case $asked in
	tcp://*) case $uri in
		tcp://127.0.0.1:0 | tcp://127.0.0.1:) fail "-v gave $uri" ;;
		tcp://127.0.0.1:*) ;;
		*) fail "-v gave $uri for $asked" ;;
		esac ;;
	esac
	pids=
	for i in 1 2 3; do
		"$cat_" -w 5000 -u -d "client $i" -n 3 -i 150 "$uri" \
			>"$tmp/c$i.out" 2>"$tmp/c$i.err" &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || fail "a client of $uri exited $?"
	done
	# The children write as the messages come; give them a moment.
	for _ in $(seq 100); do
		[ "$(grep -c . "$tmp/srv.out")" -ge 9 ] &&
			[ "$(grep -c ": message [123], 8 bytes$" "$tmp/srv.err")" -ge 9 ] &&
			break
		sleep 0.1
	done
	for i in 1 2 3; do
		n=$(grep -cx "client $i" "$tmp/srv.out")
		[ "$n" = 3 ] || fail "$uri: client $i: $n of 3 messages served"
	done
	d=$(grep -c "^< .*: message [123], 8 bytes$" "$tmp/srv.err")
	[ "$d" = 9 ] || fail "$uri: -x dumped $d messages, want 9"
	grep -q '^00000000  63 6c 69 65 6e 74 20 3[123]  *|client [123]|$' \
		"$tmp/srv.err" || fail "$uri: no hex line in the dump"
	kill "$server"
	wait "$server"
	server=
	echo "ok: -l -k -x -v $asked served three clients at once on $uri"
done
[ ! -e "$tmp/s.sock" ] || fail "the listener's socket file was left behind"

# 2. -f sends a whole file (newlines and all) as one message, --ascii
# dumps it as text; -r on the other side writes it out unchanged.
printf 'line one\nline\ttwo\n' >"$tmp/msg.txt"
uri="unix://$tmp/f.sock"
"$cat_" -l -U -r -1 --ascii "$uri" >"$tmp/f.out" 2>"$tmp/f.err" &
server=$!
"$cat_" -w 5000 -u -f "$tmp/msg.txt" "$uri" || fail "-f: exit $?"
wait "$server" || fail "the -1 receiver exited $?"
server=
cmp -s "$tmp/msg.txt" "$tmp/f.out" || fail "-f: the file did not arrive whole"
grep -qx 'line one.line.two.' "$tmp/f.err" || fail "--ascii dump"
echo "ok: -f sends a file as one message; --ascii dumps it"

# 3. Exit statuses: 2 bad usage, 1 an error, 3 -t expired.
"$cat_" -k unix:///nonexistent/x </dev/null >/dev/null 2>&1
[ $? = 2 ] || fail "-k without -l is not a usage error"
"$cat_" -d x unix:///a unix:///b </dev/null >/dev/null 2>&1
[ $? = 2 ] || fail "-d with two URIs is not a usage error"
"$cat_" -n 0 -d x unix:///a </dev/null >/dev/null 2>&1
[ $? = 2 ] || fail "-n 0 is not a usage error"
"$cat_" -d x unix:///nonexistent/x </dev/null >/dev/null 2>&1
[ $? = 1 ] || fail "opening a missing socket is not status 1"
"$cat_" -l -k -t 100 fifo://$tmp/ff </dev/null >/dev/null 2>"$tmp/k.err"
[ $? = 2 ] || fail "-k on a transport without listeners is not status 2"
grep -q "has no listeners" "$tmp/k.err" || fail "-k without listeners: message"
"$cat_" -l -U -t 200 "unix://$tmp/t.sock" </dev/null >/dev/null 2>&1
[ $? = 3 ] || fail "-t expiry is not status 3"
echo "ok: exit statuses 1, 2 and 3"
echo "ipc-cat serve/send: all checks passed"
