#!/bin/sh
# Skipped test cases, with their reasons, from a meson test log:
#
#   tests/skips.sh TESTLOG [EXPECTED]
#
# Prints every skipped cmocka case ("[  SKIPPED ] case" in a test's
# output) and every test skipped whole (exit status 77), each with the
# reason the test printed before it (its last line starting with "SKIP").
# With CI=true, a skip that matches no line of EXPECTED (default
# tests/expected-skips.txt beside this script) fails: exit status 1.
# EXPECTED lines are "TEST CASE REASON": three shell-style globs (* and ?)
# for the test, the case ("-" for a test skipped whole) and the printed
# reason (the rest of the line); # starts a comment.  A skip that printed
# no reason is never expected.
set -u
log=${1:?usage: tests/skips.sh TESTLOG [EXPECTED]}
expected=${2:-$(dirname "$0")/expected-skips.txt}
if [ ! -r "$log" ]; then
	echo "skips: no test log $log"
	exit 1
fi
awk -v expected="$expected" -v ci="${CI:-}" '
function glob2re(g,   r, i, c) {
	r = "^"
	for (i = 1; i <= length(g); i++) {
		c = substr(g, i, 1)
		if (c == "*") r = r ".*"
		else if (c == "?") r = r "."
		else if (c ~ /[][\\^$.|+(){}]/) r = r "\\" c
		else r = r c
	}
	return r "$"
}
function record(test, cas, why) {
	if (why == "") why = "(no reason printed)"
	n++
	st[n] = test; sc[n] = cas; sw[n] = why
}
BEGIN {
	ne = 0
	while ((getline line < expected) > 0) {
		sub(/#.*/, "", line)
		sub(/^[ \t]+/, "", line); sub(/[ \t]+$/, "", line)
		if (line == "") continue
		if (split(line, f, /[ \t]+/) < 3) {
			print "skips: bad line in " expected ": " line; bad = 1
			continue
		}
		rest = line; sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+/, "", rest)
		ne++; et[ne] = glob2re(f[1]); ec[ne] = glob2re(f[2]); er[ne] = glob2re(rest)
	}
	n = 0
}
function flush() {
	if (whole) record(test, "-", last)
	whole = 0; last = ""
}
/^test: / { flush(); test = $0; sub(/^test: +/, "", test); sub(/^[^ ]* \/ /, "", test); why = ""; inlist = 0; next }
/^result: +exit status 77/ { whole = 1; next }
/^\[ RUN      \]/ { why = ""; next }
/^SKIP/ { why = $0; sub(/^SKIP:? */, "", why); last = why; next }
/^\[  SKIPPED \] [0-9]+ test\(s\), listed below:/ { inlist = 1; next }
/^\[  SKIPPED \] / {
	if (inlist) next
	cas = $0; sub(/^\[  SKIPPED \] /, "", cas)
	record(test, cas, why); why = ""; next
}
{ inlist = 0 }
END {
	flush()
	unexpected = 0
	printf "== skipped: %d\n", n
	for (i = 1; i <= n; i++) {
		ok = 0
		for (j = 1; j <= ne; j++)
			if (st[i] ~ et[j] && sc[i] ~ ec[j] && sw[i] ~ er[j]) { ok = 1; break }
		if (sw[i] == "(no reason printed)") ok = 0
		mark = ok ? "" : "  [not in " expected "]"
		printf "  %s / %s: %s%s\n", st[i], sc[i], sw[i], ci == "true" ? mark : ""
		if (!ok) unexpected++
	}
	if (ci == "true" && (unexpected > 0 || bad)) {
		printf "skips: %d unexpected skip(s) (CI=true): add a reviewed line to %s or fix the cause\n", unexpected, expected
		exit 1
	}
}' "$log"
