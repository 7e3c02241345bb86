#!/bin/sh
# tests/skips.sh against made-up meson logs: it lists skipped cases with
# their reasons, and with CI=true fails on a skip that the expected list
# does not hold, on a skip without a reason, and on a whole test skipped
# (exit status 77) that is not listed.
set -u
skips=${1:?usage: test_skips.sh SKIPS.SH}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$tmp/log" <<'LOG'
==================================== 1/2 ====================================
test:         libipc:conformance / conformance-pipe
result:       exit status 0
----------------------------------- stdout -----------------------------------
[ RUN      ] listener
SKIP: no IPC_CAP_LISTEN (ipc_listen says -EOPNOTSUPP)
[  SKIPPED ] listener
[ RUN      ] sizes
[       OK ] sizes
[  SKIPPED ] 1 test(s), listed below:
[  SKIPPED ] listener
==================================== 2/2 ====================================
test:         libipc:drivers / socat
result:       exit status 0
----------------------------------- stdout -----------------------------------
[ RUN      ] t_tcp
SKIP: socat is not installed
[  SKIPPED ] t_tcp
LOG
printf 'conformance-* listener no IPC_CAP_LISTEN*\n' >"$tmp/exp1"
printf '%s\n' 'conformance-* listener no IPC_CAP_LISTEN*' \
	'socat t_* socat is not installed' >"$tmp/exp2"

out=$(CI=true sh "$skips" "$tmp/log" "$tmp/exp1") &&
	fail "an unexpected skip passed under CI=true: $out"
echo "$out" | grep -q 'socat / t_tcp: socat is not installed' ||
	fail "the summary does not name the skip and its reason: $out"
echo "$out" | grep -q '== skipped: 2' || fail "count: $out"
CI=true sh "$skips" "$tmp/log" "$tmp/exp2" >/dev/null ||
	fail "expected skips failed under CI=true"
CI= sh "$skips" "$tmp/log" "$tmp/exp1" >/dev/null ||
	fail "without CI=true the summary must not fail"

# A listed case whose reason changed is unexpected.
sed 's/socat is not installed/socat crashed/' "$tmp/log" >"$tmp/log2"
CI=true sh "$skips" "$tmp/log2" "$tmp/exp2" >/dev/null &&
	fail "a skip with another reason passed"
# No reason printed: never expected.
grep -v '^SKIP: socat' "$tmp/log" >"$tmp/log3"
printf 'socat t_* *\nconformance-* listener *\n' >"$tmp/exp3"
CI=true sh "$skips" "$tmp/log3" "$tmp/exp3" >/dev/null &&
	fail "a skip without a reason passed"
# A whole test skipped (exit status 77).
cat >"$tmp/log4" <<'LOG'
test:         libipc:conformance / conformance-tcp6
result:       exit status 77
----------------------------------- stdout -----------------------------------
SKIP: conformance tcp://[::1]:%p: ::1 cannot be bound here
LOG
out=$(CI=true sh "$skips" "$tmp/log4" "$tmp/exp1") &&
	fail "a whole skipped test passed: $out"
echo "$out" | grep -q 'conformance-tcp6 / -: conformance' ||
	fail "whole-test skip not listed: $out"
echo "test_skips: ok"
