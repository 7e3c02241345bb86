#!/bin/sh
# ipc-cat end to end: usage and exit statuses, line and raw modes, -1, -t,
# relays, a peer that closes early, signals; over fd:// (always built) and
# over every other transport this build can create.
#
# usage: test_ipc_cat.sh PATH/TO/ipc-cat
#
# SPDX-License-Identifier: MIT
set -u

cat_bin=$1
tmp=$(mktemp -d) || exit 1
pids=
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "ok $passed - $*"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL - $*"
	for f in "$tmp"/err*; do
		[ -s "$f" ] && sed "s|^|    ${f##*/}: |" "$f"
	done
}

if command -v timeout >/dev/null 2>&1; then
	ic() { timeout 30 "$cat_bin" "$@"; }
else
	ic() { "$cat_bin" "$@"; }
fi

# expect STATUS DESCRIPTION -- run the command after "--", compare status.
expect() {
	want=$1
	what=$2
	shift 3
	"$@" 2>"$tmp/err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$what"
	else
		bad "$what: exit status $got, expected $want"
	fi
}

# Input: 500 lines of varying length, and binary data for raw mode.
awk 'BEGIN { for (i = 0; i < 500; i++) {
	s = "line " i ":"; for (j = 0; j < (i * 37) % 300; j++) s = s "x";
	print s } }' >"$tmp/in.txt"
head -c 300000 /dev/urandom >"$tmp/in.bin"
printf 'one\ntwo\nthree\n' >"$tmp/three.txt"

# ------------------------------------------------------ usage and errors --
expect 2 "no URI is a usage error" -- ic
expect 2 "-u with -U is a usage error" -- ic -u -U fd://0
expect 2 "-t needs a number" -- ic -t soon fd://0
expect 2 "three URIs are a usage error" -- ic fd://0 fd://1 fd://2
expect 2 "-L without a second URI is a usage error" -- ic -L fd://0
if ic --help >"$tmp/help" && grep -q 'EXIT STATUS' "$tmp/help"; then
	ok "--help prints the manual"
else
	bad "--help"
fi
expect 1 "an unknown scheme fails with status 1" -- \
	ic nosuchscheme://x </dev/null
grep -q 'nosuchscheme://x' "$tmp/err" &&
	ok "the error names the URI" ||
	bad "the error does not name the URI: $(cat "$tmp/err")"
expect 1 "a bad descriptor fails with status 1" -- ic -U fd://77 </dev/null

# ------------------------------------------- stdio over fd:// channels --
# Receive only: a line-framed file is a channel whose peer wrote three
# messages and closed.
ic -U 'fd://3?framing=line' 3<"$tmp/three.txt" >"$tmp/out" 2>"$tmp/err"
st=$?
[ $st -eq 0 ] && cmp -s "$tmp/out" "$tmp/three.txt" &&
	ok "-U prints each message on a line, ends when the peer closed" ||
	bad "-U over a line-framed file (status $st)"

# Send only: each stdin line becomes one message of a line-framed file.
ic -u 'fd://3,4?framing=line' 3</dev/null 4>"$tmp/out" <"$tmp/in.txt" \
	2>"$tmp/err"
st=$?
[ $st -eq 0 ] && cmp -s "$tmp/out" "$tmp/in.txt" &&
	ok "-u sends stdin line by line and ends at end of input" ||
	bad "-u into a line-framed file (status $st)"

# A last line without a newline is still a message.
printf 'a\nb' | ic -u 'fd://3,4?framing=line' 3</dev/null 4>"$tmp/out" \
	2>"$tmp/err"
[ "$(cat "$tmp/out")" = "$(printf 'a\nb')" ] &&
	ok "a last line without newline is sent" ||
	bad "last line without newline: $(od -c "$tmp/out")"

# Raw: the bytes go through unchanged.
ic -r -u 'fd://3,4?framing=raw' 3</dev/null 4>"$tmp/out" <"$tmp/in.bin" \
	2>"$tmp/err"
st=$?
[ $st -eq 0 ] && cmp -s "$tmp/out" "$tmp/in.bin" &&
	ok "-r copies binary data unchanged" || bad "-r (status $st)"
ic -r -U 'fd://3?framing=raw' 3<"$tmp/in.bin" >"$tmp/out" 2>"$tmp/err"
st=$?
[ $st -eq 0 ] && cmp -s "$tmp/out" "$tmp/in.bin" &&
	ok "-r -U writes messages without adding newlines" ||
	bad "-r -U (status $st)"

# Two ipc-cats over framed (length-prefixed) fd:// channels through a
# FIFO.  The sender's receive side is /dev/null, which reads as a peer
# that closed at once, so it sends only (-u).
mkfifo "$tmp/f1"
ic -U 'fd://3,4' 3<"$tmp/f1" 4>/dev/null >"$tmp/out" 2>"$tmp/err.recv" &
rp=$!
ic -u 'fd://3,4' 4>"$tmp/f1" 3</dev/null <"$tmp/in.txt" 2>"$tmp/err.send"
st=$?
wait $rp
st2=$?
[ $st -eq 0 ] && [ $st2 -eq 0 ] && cmp -s "$tmp/out" "$tmp/in.txt" &&
	ok "ipc-cat to ipc-cat over fd:// carries every line" ||
	bad "ipc-cat to ipc-cat over fd:// (status $st/$st2)"
rm -f "$tmp"/err.*

# -1: only the first message.
ic -1 -U 'fd://3?framing=line' 3<"$tmp/three.txt" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 0 ] && [ "$(cat "$tmp/out")" = one ] &&
	ok "-1 -U prints one message and exits" ||
	bad "-1 -U: $(cat "$tmp/out")"
ic -1 -u 'fd://3,4?framing=line' 3</dev/null 4>"$tmp/out" \
	<"$tmp/three.txt" 2>"$tmp/err"
[ $? -eq 0 ] && [ "$(cat "$tmp/out")" = one ] &&
	ok "-1 -u sends one line and exits" || bad "-1 -u: $(cat "$tmp/out")"

# -1 as a request/reply client: end of input must not end ipc-cat before
# the reply.  The "server" is a shell that answers in upper case only
# after it read the request.  Both open the FIFOs in the same order.
mkfifo "$tmp/req" "$tmp/rep"
(
	exec 6>"$tmp/rep" 5<"$tmp/req"
	read -r line <&5
	echo "$line" | tr a-z A-Z >&6
) &
sp=$!
echo ping | ic -1 'fd://3,4?framing=line' 3<"$tmp/rep" 4>"$tmp/req" \
	>"$tmp/out" 2>"$tmp/err"
st=$?
wait $sp
[ $st -eq 0 ] && [ "$(cat "$tmp/out")" = PING ] &&
	ok "-1 sends the request and waits for the one reply" ||
	bad "-1 request/reply (status $st): $(cat "$tmp/out")"

# -t: a channel that stays silent.
mkfifo "$tmp/quiet"
(
	exec 5>"$tmp/quiet"
	exec sleep 20 >/dev/null 2>&1
) &
qp=$!
pids="$pids $qp"
expect 3 "-t ends a silent session with status 3" -- \
	ic -t 200 -U 'fd://3' 3<"$tmp/quiet"
kill $qp 2>/dev/null
wait $qp 2>/dev/null

# A peer that goes away while we still send: status 4.
mkfifo "$tmp/short"
head -c 10 "$tmp/short" >/dev/null &
expect 4 "a peer that closes early gives status 4" -- \
	ic -u 'fd://3,4' 3</dev/null 4>"$tmp/short" <"$tmp/in.bin"
wait

# A line longer than the channel's largest message.
head -c 2000 /dev/zero | tr '\0' y >"$tmp/long.txt"
expect 1 "a line above maxmsg fails with status 1" -- \
	ic -u 'fd://3,4?maxmsg=1000' 3</dev/null 4>/dev/null <"$tmp/long.txt"

# Relay: line-framed file -> relay -> framed FIFO -> receiving ipc-cat.
mkfifo "$tmp/r1"
ic -U 'fd://3,4' 3<"$tmp/r1" 4>/dev/null >"$tmp/out" 2>"$tmp/err.recv" &
rp=$!
ic -u 'fd://3?framing=line' 'fd://4,5' 3<"$tmp/in.txt" 4</dev/null \
	5>"$tmp/r1" 2>"$tmp/err.relay"
st=$?
wait $rp
[ $st -eq 0 ] && cmp -s "$tmp/out" "$tmp/in.txt" &&
	ok "a relay URI1 -> URI2 forwards every message" ||
	bad "relay over fd:// (status $st)"

# A signal: ipc-cat dies of it after closing.
(
	exec 5>"$tmp/quiet"
	exec sleep 20 >/dev/null 2>&1
) &
qp=$!
pids="$pids $qp"
"$cat_bin" -U 'fd://3' 3<"$tmp/quiet" 2>"$tmp/err" &
cp=$!
sleep 0.3
kill -TERM $cp
wait $cp 2>/dev/null
st=$?
kill $qp 2>/dev/null
wait $qp 2>/dev/null
[ $st -eq 143 ] && ok "SIGTERM: ipc-cat exits by the signal" ||
	bad "SIGTERM: status $st"
rm -f "$tmp"/err*

# ------------------------------------------ every transport it must make --
# These drivers are always built: "ipc-cat -l" creates each, waits, and
# -t 1 ends it with status 3.  Anything else is a failure, not a transport
# to leave out.
name=libipc-cat-$$
port=$((20000 + $$ % 20000))
found=
for uri in "unix://$tmp/s.sock" "tcp://127.0.0.1:$port" "fifo://$tmp/fifo" \
	"shm://$name" "mq://$name"; do
	"$cat_bin" -l -U -t 1 "$uri" </dev/null >/dev/null 2>"$tmp/err.create"
	st=$?
	if [ $st -eq 3 ]; then
		found="$found $uri"
	else
		bad "$uri: cannot be created (status $st: $(cat "$tmp/err.create"))"
	fi
done
echo "# transports found:${found:- none besides fd://}"

for uri in $found; do
	# Receiver creates; the sender waits for it with -w.  The receiver
	# ends when the sender closes; without IPC_CAP_PEERCLOSE it ends by
	# -t instead (the verbose open line says which).
	ic -v -l -U -t 5000 "$uri" >"$tmp/out" 2>"$tmp/err.recv" &
	rp=$!
	ic -w 5000 "$uri" <"$tmp/in.txt" 2>"$tmp/err.send"
	st=$?
	wait $rp
	st2=$?
	if grep -q peerclose "$tmp/err.recv"; then want=0; else want=3; fi
	[ $st -eq 0 ] && [ $st2 -eq $want ] && cmp -s "$tmp/out" "$tmp/in.txt" &&
		ok "$uri: every line arrives, in order" ||
		bad "$uri: lines (status $st/$st2, expected 0/$want)"

	# Raw chunks.
	ic -v -l -r -U -t 5000 "$uri" >"$tmp/out" 2>"$tmp/err.recv" &
	rp=$!
	ic -r -w 5000 "$uri" <"$tmp/in.bin" 2>"$tmp/err.send"
	st=$?
	wait $rp
	st2=$?
	if grep -q peerclose "$tmp/err.recv"; then want=0; else want=3; fi
	[ $st -eq 0 ] && [ $st2 -eq $want ] &&
		cmp -s "$tmp/out" "$tmp/in.bin" &&
		ok "$uri: raw data arrives unchanged" ||
		bad "$uri: raw (status $st/$st2, expected 0/$want)"
	rm -f "$tmp"/err.*
done

# Relay between two created endpoints of real transports:
# sender -> B -> relay -> A -> receiver.  Needs peer-close reports.
set -- $found
if [ $# -ge 1 ]; then
	a=$1
	b=${2:-}
	case $a in
	unix://*) b=${b:-"unix://$tmp/b.sock"} ;;
	fifo://*) b=${b:-"fifo://$tmp/b"} ;;
	shm://*) b=${b:-"shm://$name-b"} ;;
	tcp://*) b=${b:-"tcp://127.0.0.1:$((port + 1))"} ;;
	mq://*) b=${b:-"mq://$name-b"} ;;
	esac
	ic -v -l -U -t 5000 "$a" >"$tmp/out" 2>"$tmp/err.recv" &
	rp=$!
	ic -v -w 5000 -L -t 5000 "$a" "$b" 2>"$tmp/err.relay" &
	lp=$!
	ic -w 5000 "$b" <"$tmp/in.txt" 2>"$tmp/err.send"
	st=$?
	wait $lp
	st2=$?
	wait $rp
	st3=$?
	[ $st -eq 0 ] && [ $st2 -eq 0 ] && [ $st3 -eq 0 ] &&
		cmp -s "$tmp/out" "$tmp/in.txt" &&
		ok "relay $b -> $a forwards every line (status $st/$st2/$st3)" ||
		bad "relay $b -> $a (status $st/$st2/$st3)"
	rm -f "$tmp"/err.*

	# SIGTERM while it holds a created endpoint: nothing left behind.
	case $a in
	unix://* | fifo://*)
		"$cat_bin" -l -U "$a" </dev/null >/dev/null 2>"$tmp/err" &
		cp=$!
		# Wait (up to 10 s) for the endpoint to exist: the test is
		# about removing it, so it must have appeared.
		seen=
		for i in $(seq 1 200); do
			ls "$tmp" | grep -qE '^(s\.sock|fifo)' && { seen=1; break; }
			sleep 0.05
		done
		kill -TERM $cp
		wait $cp 2>/dev/null
		st=$?
		left=$(ls "$tmp" | grep -E '^(s\.sock|fifo)' || true)
		[ -n "$seen" ] && [ $st -eq 143 ] && [ -z "$left" ] &&
			ok "$a: SIGTERM removes the created endpoint" ||
			bad "$a: SIGTERM (endpoint seen: ${seen:-no}, status $st, left: ${left:-nothing})"
		;;
	esac
fi

# -v prints the resolved local URI: a receiver on tcp port 0 says which
# port the kernel bound, and a second ipc-cat reaches it there.
case $found in
*tcp://*)
	# Emptied first: the child's truncation may come after the first
	# read below, which would find an earlier run's local URI.
	: >"$tmp/err.recv"
	ic -v -l -U -t 5000 tcp://127.0.0.1:0 >"$tmp/out" 2>"$tmp/err.recv" &
	rp=$!
	lu=
	i=0
	while [ $i -lt 100 ]; do
		lu=$(sed -n 's/^ipc-cat: local URI //p' "$tmp/err.recv")
		[ -n "$lu" ] && break
		i=$((i + 1))
		sleep 0.1
	done
	case $lu in
	tcp://127.0.0.1:0 | "") bad "-v -l tcp://127.0.0.1:0: local URI \"$lu\"" ;;
	tcp://127.0.0.1:[1-9]*)
		ok "-v -l tcp://127.0.0.1:0 prints the bound port ($lu)" ;;
	*) bad "-v -l tcp://127.0.0.1:0: local URI \"$lu\"" ;;
	esac
	if [ -n "$lu" ]; then
		ic -w 5000 "$lu" <"$tmp/three.txt" 2>"$tmp/err.send"
		st=$?
	else
		st=1
		kill $rp 2>/dev/null
	fi
	wait $rp
	[ $st -eq 0 ] && cmp -s "$tmp/out" "$tmp/three.txt" &&
		ok "a second ipc-cat reaches $lu" ||
		bad "a second ipc-cat to $lu (status $st)"
	rm -f "$tmp"/err.*
	;;
esac

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
