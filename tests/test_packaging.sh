#!/bin/sh
# What a user does with the source tree, from the outside:
#  1. make install PREFIX=A, then PREFIX=B with the same build directory:
#     each install lands wholly under its own prefix;
#  2. the installed ipc-cat starts without LD_LIBRARY_PATH (relative
#     rpath) and the library's symbols carry the version LIBIPC_0; the
#     installed ipc-bench links no peer library (ZeroMQ, nng, iceoryx);
#  3. a meson project that uses libipc as a subproject with
#     default_library=static builds only the static library: no tools,
#     tests, examples or fuzzers, and installs no program.
#
# usage: test_packaging.sh SOURCE_DIR [MESON]
# Exit 77 (meson's "skipped") with the reason when a tool is missing.
#
# SPDX-License-Identifier: MIT
set -u

src=$1
meson=${2:-}

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}

[ -n "$meson" ] || meson=$(command -v meson) || skip "meson is not in PATH"
command -v make >/dev/null 2>&1 || skip "make is not in PATH"
command -v ninja >/dev/null 2>&1 || skip "ninja is not in PATH"
command -v objdump >/dev/null 2>&1 || skip "objdump is not in PATH (binutils)"

tmp=$(mktemp -d) || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT INT TERM
opts='-Dtests=disabled -Dfuzzers=disabled -Dexamples=disabled'

# 1. Two prefixes, one build directory.
for p in a b; do
	make -s -C "$src" install PREFIX="$tmp/$p" BUILD="$tmp/build" \
		MESON_OPTS="$opts" >"$tmp/install-$p.log" 2>&1 || {
		cat "$tmp/install-$p.log"
		fail "make install PREFIX=$tmp/$p failed"
	}
	[ -x "$tmp/$p/bin/ipc-cat" ] || fail "no $tmp/$p/bin/ipc-cat"
	[ -x "$tmp/$p/bin/ipc-bench" ] || fail "no $tmp/$p/bin/ipc-bench"
	[ -n "$(find "$tmp/$p" -name 'libipc.so.0*' | head -n 1)" ] ||
		fail "no libipc.so.0 under $tmp/$p"
	[ -n "$(find "$tmp/$p" -name libipc.pc | head -n 1)" ] ||
		fail "no libipc.pc under $tmp/$p"
	[ -f "$tmp/$p/include/ipc/ipc.h" ] || fail "no ipc/ipc.h under $tmp/$p"
	echo "make install PREFIX=$tmp/$p: everything under the prefix"
done
if grep -q "/usr/local" "$tmp/install-b.log"; then
	cat "$tmp/install-b.log"
	fail "the second install mentions /usr/local"
fi

# 2. Installed programs run without LD_LIBRARY_PATH.
out=$(env -u LD_LIBRARY_PATH "$tmp/a/bin/ipc-cat" --version 2>&1) ||
	fail "installed ipc-cat --version does not start: $out"
echo "installed ipc-cat --version: $out"
lib=$(find "$tmp/a" -name 'libipc.so.0.*' | head -n 1)
objdump -T "$lib" | grep -q 'LIBIPC_0 *ipc_open$' ||
	fail "ipc_open in $lib carries no version LIBIPC_0"
if objdump -T "$lib" | grep -v 'LIBIPC_0' | grep -q ' ipc_'; then
	fail "$lib exports ipc_ symbols without a version"
fi
if objdump -T "$lib" | grep -q ' ipc__'; then
	fail "$lib exports internal ipc__ symbols"
fi
echo "exported symbols carry LIBIPC_0; no internal ones"

# The installed ipc-bench links no peer library, whatever was found.
for peer in zmq nng iceoryx; do
	if ldd "$tmp/a/bin/ipc-bench" | grep -q "lib$peer"; then
		fail "the installed ipc-bench links lib$peer"
	fi
done
if ldd "$tmp/build/tools/ipc-bench" | grep -q "libzmq"; then
	echo "the build tree's ipc-bench links libzmq; the installed one does not"
fi

# 3. libipc as a meson subproject of a tiny project.
parent=$tmp/parent
mkdir -p "$parent/subprojects" || fail "mkdir"
ln -s "$(cd "$src" && pwd)" "$parent/subprojects/libipc"
cat >"$parent/meson.build" <<'MESON'
project('parent', 'c', default_options : ['default_library=static'])
libipc_dep = dependency('libipc', fallback : ['libipc', 'libipc_dep'])
executable('app', 'app.c', dependencies : libipc_dep, install : true)
MESON
cat >"$parent/app.c" <<'C'
#include <ipc/ipc.h>
#include <stdio.h>
int main(void)
{
	ipc_channel *a, *b;
	char buf[8];
	if (ipc_pair(&a, &b, "pipe:") != 0 || ipc_send(a, "hi", 2, 0) != 2 ||
	    ipc_recv(b, buf, sizeof buf, 0) != 2)
		return 1;
	ipc_close(a);
	ipc_close(b);
	puts("subproject app ok");
	return 0;
}
C
"$meson" setup "$parent/build" "$parent" --force-fallback-for=libipc \
	--prefix="$tmp/parent-prefix" >"$tmp/sub.log" 2>&1 || {
	cat "$tmp/sub.log"
	fail "meson setup of the parent project failed"
}
ninja -C "$parent/build" >>"$tmp/sub.log" 2>&1 || {
	cat "$tmp/sub.log"
	fail "the parent project does not build"
}
"$parent/build/app" || fail "the parent's program does not run"
built=$(cd "$parent/build" && find . -type f \( -perm -u+x -o -name '*.so*' \) \
	! -name '*.o' ! -path '*/meson-*' ! -path '*CMakeFiles*' | sort)
echo "built in the parent: $(echo $built)"
for f in $built; do
	case $f in
	./app) ;;
	*) fail "the subproject built $f (only the static library is wanted)" ;;
	esac
done
[ -n "$(find "$parent/build" -name 'libipc.a')" ] ||
	fail "no static libipc.a with default_library=static"
DESTDIR=$tmp/pd "$meson" install -C "$parent/build" --no-rebuild \
	>>"$tmp/sub.log" 2>&1 || fail "meson install of the parent failed"
progs=$(find "$tmp/pd" -path '*/bin/*' -type f | sed 's|.*/||' | sort)
[ "$progs" = app ] || fail "the parent installed programs: $progs"
echo "subproject: only the static library was built; installed: $progs"
echo "packaging: all checks passed"
