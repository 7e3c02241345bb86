#!/bin/sh
# Install libipc into a scratch DESTDIR, then build every example the way
# a user would -- cc example.c $(pkg-config --cflags --libs libipc) --
# against that installed copy only, run them, and check that the installed
# header also compiles as C++.
#
# usage: test_install.sh BUILD_DIR SOURCE_DIR [MESON [SANITIZE]]
# SANITIZE is the build's b_sanitize ("none", "address,undefined", ...):
# a library built with sanitizers needs programs built with them.
# Exit 77 (meson's "skipped") with the reason when a tool is missing.
#
# SPDX-License-Identifier: MIT
set -u

build=$1
src=$2
meson=${3:-}
sanitize=${4:-none}

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}

command -v pkg-config >/dev/null 2>&1 ||
	skip "pkg-config is not installed (Debian: apt-get install pkgconf)"
cc=${CC:-cc}
san=
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"
command -v "$cc" >/dev/null 2>&1 || skip "no C compiler '$cc' in PATH"
if [ -z "$meson" ]; then
	meson=$(command -v meson) || skip "meson is not in PATH"
fi
if command -v timeout >/dev/null 2>&1; then
	limit="timeout 60"
else
	limit=
fi

tmp=$(mktemp -d) || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest

# --no-rebuild: meson test has built everything already, and a second
# ninja in the same build directory must not run beside it.
"$meson" install -C "$build" --no-rebuild --quiet --destdir "$dest" \
	>"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log"
	fail "meson install --destdir failed"
}
pc=$(find "$dest" -name libipc.pc | head -n 1)
[ -n "$pc" ] || fail "no libipc.pc was installed"
hdr=$(find "$dest" -path '*/ipc/ipc.h' | head -n 1)
[ -n "$hdr" ] || fail "ipc/ipc.h was not installed"

# Point pkg-config at the DESTDIR: PKG_CONFIG_SYSROOT_DIR prefixes the
# .pc file's -I and -L paths with it (pkgconf and pkg-config both do).
# The ALLOW_SYSTEM variables keep -I/usr/include when the prefix is /usr.
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$dest
PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1
PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_ALLOW_SYSTEM_CFLAGS \
	PKG_CONFIG_ALLOW_SYSTEM_LIBS
cflags=$(pkg-config --cflags libipc) || fail "pkg-config --cflags libipc"
libs=$(pkg-config --libs libipc) || fail "pkg-config --libs libipc"
echo "pkg-config: $cflags $libs"
case "$cflags" in
*"$dest"*) ;;
*) fail "--cflags ($cflags) does not point into the DESTDIR $dest" ;;
esac
libdir=
for f in $(pkg-config --libs-only-L libipc); do
	libdir=${f#-L}
done
[ -n "$libdir" ] && [ -e "$libdir/libipc.so" ] ||
	fail "--libs ($libs) names no directory with libipc.so"
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# Strict C11 with warnings as errors: what a user's build may use.
for ex in producer consumer reqrep epoll jsonrpc; do
	# shellcheck disable=SC2086 # word splitting of the flags is wanted
	$cc -std=c11 -Wall -Wextra -Wpedantic -Werror $san $cflags \
		"$src/examples/$ex.c" $libs -o "$tmp/$ex" ||
		fail "examples/$ex.c does not build against the installed libipc"
done
echo "built producer consumer reqrep epoll jsonrpc against $dest"

# The header as C++ (issue 2: "C++-includable"), linked and run.
cxx=${CXX:-c++}
if command -v "$cxx" >/dev/null 2>&1; then
	cat >"$tmp/hdr.cpp" <<'EOF'
#include <ipc/ipc.h>
#include <cerrno>
int main()
{
	ipc_channel *ch = nullptr;
	int r = ipc_open(&ch, "nosuchscheme://x", 0);
	return r == -EPROTONOSUPPORT && ch == nullptr && ipc_close(ch) == 0
	               ? 0
	               : 1;
}
EOF
	# shellcheck disable=SC2086
	$cxx -std=c++11 -Wall -Wextra -Wpedantic -Werror $san $cflags \
		"$tmp/hdr.cpp" $libs -o "$tmp/hdr" ||
		fail "<ipc/ipc.h> does not compile as C++"
	"$tmp/hdr" || fail "the C++ program linked but ipc_open misbehaved"
	echo "ipc.h compiles, links and runs as C++ ($cxx)"
else
	echo "note: no C++ compiler ($cxx): C++ check not run"
fi

# Which transports can this library create?  A small program asks it.
cat >"$tmp/probe.c" <<'EOF'
#include <stdio.h>
#include <ipc/ipc.h>
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		ipc_channel *ch;
		int r = ipc_open(&ch, argv[i], IPC_CREATE);
		if (r == 0) {
			ipc_close(ch);
			printf("%s\n", argv[i]);
		} else {
			fprintf(stderr, "probe: %s: %s\n", argv[i],
			        ipc_last_error());
		}
	}
	return 0;
}
EOF
# shellcheck disable=SC2086
$cc -std=c11 $san $cflags "$tmp/probe.c" $libs -o "$tmp/probe" ||
	fail "probe.c does not build"
name=libipc-inst-$$
port=$((20000 + $$ % 20000))
uris=$("$tmp/probe" "unix://$tmp/demo.sock" "tcp://127.0.0.1:$port" \
	"fifo://$tmp/demo" "shm://$name" "mq://$name" 2>"$tmp/probe.err")
# shellcheck disable=SC2086 # one line for the list
echo "transports found:" ${uris:-none beyond fd://}
# These drivers are always built: one that cannot be created fails.
[ "$(printf '%s\n' "$uris" | grep -c .)" -eq 5 ] ||
	fail "not every transport could be created: $(cat "$tmp/probe.err")"

# Compare the summaries "WHO: N messages, B bytes, checksum X" of two
# outputs, whoever WHO is.
same_summary() {
	a=$(sed -n 's/.*: \([0-9][0-9]* messages, \)/\1/p' "$1")
	b=$(sed -n 's/.*: \([0-9][0-9]* messages, \)/\1/p' "$2")
	[ -n "$a" ] && [ "$a" = "$b" ]
}

# producer/consumer over fd://: the consumer reads a FIFO the producer
# writes.  Their unused directions go to /dev/null, which never blocks.
mkfifo "$tmp/f1" || fail "mkfifo"
$limit "$tmp/consumer" 'fd://3,4' 3<"$tmp/f1" 4>/dev/null >"$tmp/c.out" &
cpid=$!
$limit "$tmp/producer" 'fd://3,4' 300 4>"$tmp/f1" 3</dev/null \
	>"$tmp/p.out" || fail "producer over fd:// failed"
wait $cpid || fail "consumer over fd:// failed"
same_summary "$tmp/p.out" "$tmp/c.out" ||
	fail "fd://: producer and consumer disagree: $(cat "$tmp/p.out" "$tmp/c.out")"
echo "fd://: $(cat "$tmp/c.out")"

# epoll over two fd:// channels at once.
mkfifo "$tmp/e1" "$tmp/e2" || fail "mkfifo"
$limit "$tmp/epoll" 'fd://3,4' 'fd://5,6' 3<"$tmp/e1" 4>/dev/null \
	5<"$tmp/e2" 6>/dev/null >"$tmp/e.out" &
epid=$!
$limit "$tmp/producer" 'fd://3,4' 100 4>"$tmp/e1" 3</dev/null \
	>"$tmp/p1.out" &
p1=$!
$limit "$tmp/producer" 'fd://3,4' 57 4>"$tmp/e2" 3</dev/null \
	>"$tmp/p2.out" || fail "second producer for epoll failed"
wait $p1 || fail "first producer for epoll failed"
wait $epid || fail "epoll example failed"
grep '^fd://3,4: ' "$tmp/e.out" >"$tmp/e1.out"
grep '^fd://5,6: ' "$tmp/e.out" >"$tmp/e2.out"
same_summary "$tmp/p1.out" "$tmp/e1.out" &&
	same_summary "$tmp/p2.out" "$tmp/e2.out" ||
	fail "epoll and the producers disagree: $(cat "$tmp/e.out" "$tmp/p1.out" "$tmp/p2.out")"
echo "epoll over fd://: both channels complete"

# reqrep over fd://: requests on one FIFO, replies on the other.  Open
# order matters for FIFOs: each side opens them in the same order.
mkfifo "$tmp/q" "$tmp/r" || fail "mkfifo"
$limit "$tmp/reqrep" server 'fd://3,4' 1 3<"$tmp/q" 4>"$tmp/r" \
	>"$tmp/s.out" &
spid=$!
$limit "$tmp/reqrep" client 'fd://3,4' 200 4>"$tmp/q" 3<"$tmp/r" \
	>"$tmp/cl.out" || fail "reqrep client over fd:// failed: $(cat "$tmp/cl.out")"
wait $spid || fail "reqrep server over fd:// failed"
grep -q '200 requests, 200 correct replies' "$tmp/cl.out" ||
	fail "reqrep: $(cat "$tmp/cl.out")"
echo "reqrep over fd://: $(cat "$tmp/cl.out")"

# The same unchanged programs over every transport the probe found.
for uri in $uris; do
	$limit "$tmp/consumer" "$uri" >"$tmp/c.out" &
	cpid=$!
	$limit "$tmp/producer" "$uri" 300 >"$tmp/p.out" ||
		fail "producer over $uri failed"
	wait $cpid || fail "consumer over $uri failed"
	same_summary "$tmp/p.out" "$tmp/c.out" ||
		fail "$uri: producer and consumer disagree: $(cat "$tmp/p.out" "$tmp/c.out")"
	echo "$uri: $(cat "$tmp/c.out")"

	# reqrep: two clients in turn where the transport has listeners,
	# else one (such an endpoint joins two processes).
	$limit "$tmp/reqrep" server "$uri" 2 >"$tmp/s.out" &
	spid=$!
	$limit "$tmp/reqrep" client "$uri" 100 >"$tmp/cl.out" ||
		fail "reqrep client over $uri: $(cat "$tmp/cl.out")"
	if grep -q '^reqrep: listening' "$tmp/s.out"; then
		$limit "$tmp/reqrep" client "$uri" 100 >"$tmp/cl.out" ||
			fail "second reqrep client over $uri: $(cat "$tmp/cl.out")"
	fi
	wait $spid || fail "reqrep server over $uri failed"
	grep -q '100 requests, 100 correct replies' "$tmp/cl.out" ||
		fail "reqrep over $uri: $(cat "$tmp/cl.out")"
	echo "$uri: $(head -n 1 "$tmp/s.out"): $(cat "$tmp/cl.out")"
done
# epoll over all of them at once: one producer each, all in flight.
if [ -n "$uris" ]; then
	# shellcheck disable=SC2086 # one argument per URI
	$limit "$tmp/epoll" $uris >"$tmp/e.out" &
	epid=$!
	k=0
	ppids=
	for uri in $uris; do
		k=$((k + 1))
		$limit "$tmp/producer" "$uri" $((k * 50)) >"$tmp/p$k.out" &
		ppids="$ppids $!"
	done
	for p in $ppids; do
		wait "$p" || fail "a producer for epoll failed"
	done
	wait $epid || fail "epoll over $uris failed: $(cat "$tmp/e.out")"
	k=0
	for uri in $uris; do
		k=$((k + 1))
		grep -F "$uri: " "$tmp/e.out" >"$tmp/e$k.out"
		same_summary "$tmp/p$k.out" "$tmp/e$k.out" ||
			fail "epoll: $uri: $(cat "$tmp/e$k.out" "$tmp/p$k.out")"
	done
	echo "epoll over all transports at once: every channel complete"
fi
echo "install test passed"
