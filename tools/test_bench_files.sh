#!/bin/sh
# ipc-bench's output files from a short run: the JSON parses and holds
# every row asked for with its figures, the CSV has its header and a line
# per figure, the SVG is a whole document with a bar per row, --sizes
# changes the columns, and bad --sizes is a usage error (exit 2).
#
# usage: test_bench_files.sh IPC_BENCH
# SPDX-License-Identifier: MIT
set -u
bench=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() {
	echo "FAIL: $*"
	exit 1
}

"$bench" --quick --only pipe,raw-pipe --sizes 64,4k --json "$tmp/b.json" \
	--csv "$tmp/b.csv" --svg "$tmp/b.svg" >"$tmp/out" 2>"$tmp/err" || {
	cat "$tmp/out" "$tmp/err"
	fail "ipc-bench exited $?"
}
cat "$tmp/out"
grep -q '^| transport | p50 µs | p99 µs | 64 B msg/s | 4 KiB MB/s | notes |$' \
	"$tmp/out" || fail "--sizes 64,4k did not give the columns 64 B and 4 KiB"

if [ -x /usr/bin/python3 ]; then
	/usr/bin/python3 - "$tmp/b.json" <<'PY' || fail "the JSON is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["sizes"] == [64, 4096], d["sizes"]
rows = {r["name"]: r for r in d["rows"]}
assert set(rows) == {"pipe", "raw-pipe"}, rows.keys()
for r in rows.values():
    assert r["status"] == "ok", r
    p = r["p50_ns"]
    assert 0 < p["min"] <= p["median"] <= p["max"], p
    assert len(r["throughput"]) == 2
    assert r["throughput"][0]["msgs_s"]["median"] > 0
print("json: ok")
PY
else
	grep -q '"name": "raw-pipe"' "$tmp/b.json" || fail "no raw-pipe in JSON"
fi

head -n 1 "$tmp/b.csv" | grep -qx 'row,group,status,metric,size,median,min,max,unit' ||
	fail "CSV header"
n=$(grep -c '^pipe,libipc,ok,' "$tmp/b.csv")
[ "$n" = 4 ] || fail "CSV: $n lines for pipe, want 4 (p50, p99, 2 sizes)"
echo "csv: ok"

head -c 100 "$tmp/b.svg" | grep -q '<svg' || grep -q '<svg ' "$tmp/b.svg" ||
	fail "SVG has no <svg>"
tail -n 1 "$tmp/b.svg" | grep -q '</svg>' || fail "SVG is not closed"
bars=$(grep -c '<rect x=.*<title>' "$tmp/b.svg")
[ "$bars" = 4 ] || fail "SVG: $bars bars, want 4 (2 rows x 2 charts)"
echo "svg: ok"

"$bench" --sizes 64,0 >/dev/null 2>&1
[ $? = 2 ] || fail "--sizes 64,0 is not a usage error"
"$bench" --sizes 1G >/dev/null 2>&1
[ $? = 2 ] || fail "--sizes 1G is not a usage error"
echo "ipc-bench output files: all checks passed"
