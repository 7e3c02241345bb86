#!/bin/sh
# The iceoryx peer rows: one-to-one (64 B and 1 MiB) and publish/subscribe
# (1, 4, 16 subscribers) must be measured without iceoryx reporting an
# empty mempool or any other error.  Skipped (77) with the row's reason
# when the row could not run here (e.g. another RouDi is running).
bench=$1
out=$("$bench" --quick --only iceoryx --sizes 64,1M --pubsub=iceoryx 2>&1)
rc=$?
printf '%s\n' "$out"
if [ $rc -ne 0 ]; then
	echo "FAIL: ipc-bench exited with $rc"
	exit 1
fi
if printf '%s\n' "$out" | grep -q -e 'ICEORYX error' -e 'MEPOO' \
	-e '\[ Error \]' -e 'has no more space left'; then
	echo "FAIL: iceoryx reported errors (above)"
	exit 1
fi
if ! printf '%s\n' "$out" | grep -q '^| iceoryx | [0-9]'; then
	if printf '%s\n' "$out" | grep -q 'iceoryx.*skipped'; then
		echo "SKIP: the iceoryx row was skipped (reason above)"
		exit 77
	fi
	echo "FAIL: no measured one-to-one iceoryx row"
	exit 1
fi
n=$(printf '%s\n' "$out" | grep -c '^| iceoryx | \(64 B\|1 MiB\) | [0-9]* | [0-9]')
if [ "$n" -ne 6 ]; then
	echo "FAIL: $n of 6 publish/subscribe iceoryx rows measured"
	exit 1
fi
echo "ok: iceoryx rows measured, no iceoryx errors"
