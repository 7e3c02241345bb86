#!/bin/sh
# examples/producer and examples/consumer, unchanged, over nats:// through
# a private nats-server (run by tests/nats_server.sh, which replaces @NATS@
# with its address): both must print the same count, bytes and checksum.
#
# usage: test_nats_examples.sh EXAMPLES_DIR HOST:PORT
#
# SPDX-License-Identifier: MIT
set -u
ex=$1
srv=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipc-natsex.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

run() { # uri count
	"$ex/consumer" "$1" >"$tmp/c" 2>"$tmp/ce" &
	cpid=$!
	"$ex/producer" "$1" "$2" >"$tmp/p" 2>"$tmp/pe"
	prc=$?
	wait $cpid
	crc=$?
	echo "$1:"
	cat "$tmp/p" "$tmp/c" "$tmp/pe" "$tmp/ce"
	[ $prc = 0 ] && [ $crc = 0 ]
}

run "nats://$srv/demo" 10000 || { echo "FAIL: the examples failed over JetStream"; exit 1; }
p=$(sed 's/^producer: //' "$tmp/p")
c=$(sed 's/^consumer: //' "$tmp/c")
[ -n "$p" ] && [ "$p" = "$c" ] || { echo "FAIL: producer and consumer disagree"; exit 1; }
echo "same figures on both sides"
echo "PASS"
