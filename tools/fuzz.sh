#!/bin/sh
# Run the libFuzzer targets of a fuzz build (make fuzz):
#
#   tools/fuzz.sh BUILD SECONDS [TARGET...]     fuzz each target SECONDS
#   tools/fuzz.sh --merge BUILD [TARGET...]     minimise fuzz/corpus/TARGET
#                                               with what the runs found
#
# Each target starts from its kept corpus (fuzz/corpus/NAME, read only)
# plus what earlier runs found (BUILD/fuzz-work/NAME).  The run fails when
# any fuzzer exits non-zero (a crash, a leak, a sanitizer report, a failure
# to start) or leaves any artifact (crash-, leak-, timeout-, oom-,
# slow-unit-) in BUILD/fuzz-artifacts/NAME/.  A table of executions and
# edges (cov:) per target is printed at the end.
set -u
merge=0
if [ "${1:-}" = "--merge" ]; then
	merge=1
	shift
fi
build=${1:?usage: tools/fuzz.sh BUILD SECONDS [TARGET...]}
shift
if [ "$merge" = 0 ]; then
	secs=${1:?usage: tools/fuzz.sh BUILD SECONDS [TARGET...]}
	shift
fi
src=$(cd "$(dirname "$0")/.." && pwd)
targets="$*"
if [ -z "$targets" ]; then
	for f in "$build"/fuzz/fuzz_*_libfuzzer; do
		[ -x "$f" ] || continue
		n=$(basename "$f" _libfuzzer)
		n=${n#fuzz_}
		[ "$n" = broken ] && continue # only when asked for by name
		targets="$targets $n"
	done
fi
if [ -z "$targets" ]; then
	echo "fuzz: no libFuzzer targets in $build/fuzz (clang with libFuzzer?)"
	exit 1
fi
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
failed=""
table=""
for n in $targets; do
	bin=$build/fuzz/fuzz_${n}_libfuzzer
	work=$build/fuzz-work/$n
	art=$build/fuzz-artifacts/$n
	log=$build/fuzz-$n.log
	mkdir -p "$work" "$art"
	kept=$src/fuzz/corpus/$n
	[ -d "$kept" ] || kept=
	if [ "$merge" = 1 ]; then
		# Minimise: the kept corpus becomes the smallest set with the
		# coverage of kept + found.
		tmp=$build/fuzz-merge-$n
		rm -rf "$tmp"
		mkdir -p "$tmp"
		mkdir -p "$src/fuzz/corpus/$n"
		"$bin" -merge=1 -max_len=4096 "$tmp" "$src/fuzz/corpus/$n" \
			"$work" >"$log" 2>&1 || { echo "fuzz: merge of $n failed (see $log)"; exit 1; }
		rm -f "$src/fuzz/corpus/$n"/*
		cp "$tmp"/* "$src/fuzz/corpus/$n"/ 2>/dev/null
		echo "fuzz: $n: $(ls "$src/fuzz/corpus/$n" | wc -l) inputs kept"
		continue
	fi
	echo "== fuzz_$n ($secs s)"
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
		-report_slow_units=20 -rss_limit_mb=2560 -max_len=4096 \
		-artifact_prefix="$art/" "$work" $kept >"$log" 2>&1
	rc=$?
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log")
	arts=$(ls "$art" 2>/dev/null)
	table="$table$(printf '%-10s %10s %6s %6s' "$n" "${execs:-?}" "${cov:-?}" "${ft:-?}")
"
	if [ "$rc" != 0 ] || [ -n "$arts" ] || [ -z "$cov" ]; then
		echo "fuzz: fuzz_$n FAILED (exit $rc; artifacts: ${arts:-none})"
		grep -E '^(==|SUMMARY|ERROR|INFO: -|    #[0-9])' "$log" | head -n 40
		echo "fuzz: full log in $log"
		failed="$failed $n"
	fi
done
[ "$merge" = 1 ] && exit 0
echo "== fuzz summary ($secs s per target)"
printf '%-10s %10s %6s %6s\n' target execs cov ft
printf '%s' "$table"
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed"
	exit 1
fi
echo "fuzz: every target ran clean"
