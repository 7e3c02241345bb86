#!/bin/sh
# Across hosts, simulated: two network namespaces joined by a veth pair
# (10.77.0.1 in A, 10.77.0.2 in B), the consumer in A and the producer in
# B (examples/consumer.c and producer.c, unchanged) over tcp://,
# tls+tcp:// and nats:// (a nats-server with JetStream in A), and
# ipc-cat over udp://.  Then the same with packet loss and delay on the
# link: netem where the kernel has it, else a random-drop rule (iptables,
# then nft); the one used is printed.  tcp, tls+tcp and nats must deliver
# everything, with the same checksum on both sides; udp's loss is counted.
#
# The conformance suite (tests/conformance) runs across the link too: the
# runner in A, every peer it forks in B (CONF_NETNS; a channel the peer
# creates is at B's address, CONF_NETNS_HOSTS), for tcp://, udp://,
# tls+tcp:// (a certificate for both addresses, signed by the CA of
# tests/tls_certs.sh) and nats:// (JetStream and js=0, the server in A).
# On the clean link every case runs.  On the lossy link:
#   - tcp, tls+tcp and nats run every case but pubsub*: the pub/sub cases
#     fork their subscribers themselves, in A beside the publisher, so
#     they never cross the link (they ran on the clean link, and loopback
#     covers them); leaving them out keeps the lossy phase near a minute.
#   - udp's conformance run is left out: its cases exchange one datagram
#     at a time without resending, so loss fails them by design (udp is
#     not IPC_CAP_RELIABLE); its loss is counted with ipc-cat instead.
#   - nats gets dead=1500 (default 500), times IPC_TEST_TIME_FACTOR as the
#     suite's deadlines are: a heartbeat may stall behind TCP
#     retransmissions (200, 400, 800 ms); a death must still be reported
#     within the suite's 2.5 s (scaled), so not the 5000 of the examples.
# The packets that crossed the veth during each run are printed, so that
# a run which stayed on one side would show.
#
# usage: test_netns.sh BUILD_DIR TLS_CERTS_SH
# Exit 77 (meson's "skipped") with the reason when this is not root, when
# ip is missing or when the kernel refuses network namespaces or veth.
#
# SPDX-License-Identifier: MIT
set -u

build=$1
certs_sh=$2
ex=$build/examples
N=1000

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
[ -x "$ex/consumer" ] && [ -x "$ex/producer" ] || skip "examples not built"

A=ipcA$$
B=ipcB$$
VA=ipca$$
VB=ipcb$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipc-netns.XXXXXX") || exit 1
natspid=
cleanup() {
	[ -n "$natspid" ] && kill "$natspid" 2>/dev/null && wait "$natspid" 2>/dev/null
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

if ! err=$(ip netns add "$A" 2>&1); then
	skip "the kernel refuses network namespaces: $err"
fi
ip netns add "$B" || skip "the kernel refuses a second network namespace"
if ! err=$(ip link add "$VA" type veth peer name "$VB" 2>&1); then
	skip "the kernel refuses a veth pair: $err"
fi
ip link set "$VA" netns "$A" && ip link set "$VB" netns "$B" &&
	ip -n "$A" addr add 10.77.0.1/24 dev "$VA" &&
	ip -n "$B" addr add 10.77.0.2/24 dev "$VB" &&
	ip -n "$A" link set lo up && ip -n "$B" link set lo up &&
	ip -n "$A" link set "$VA" up && ip -n "$B" link set "$VB" up ||
	fail "could not set up the veth link"
echo "namespaces $A (10.77.0.1) and $B (10.77.0.2), joined by veth"

inA() { ip netns exec "$A" "$@"; }
inB() { ip netns exec "$B" "$@"; }

# consumer in A, producer in B; the figures must match.
pair() { # label uri-for-A uri-for-B
	t0=$(date +%s)
	inA "$ex/consumer" "$2" >"$tmp/c" 2>"$tmp/ce" &
	cpid=$!
	sleep 0.3
	inB "$ex/producer" "$3" $N >"$tmp/p" 2>"$tmp/pe"
	prc=$?
	wait $cpid
	crc=$?
	p=$(sed 's/^producer: //' "$tmp/p")
	c=$(sed 's/^consumer: //' "$tmp/c")
	if [ $prc != 0 ] || [ $crc != 0 ] || [ -z "$p" ] || [ "$p" != "$c" ]; then
		cat "$tmp/p" "$tmp/pe" "$tmp/c" "$tmp/ce"
		fail "$1: the two namespaces disagree"
	fi
	echo "  $1: $p (same on both sides), $(($(date +%s) - t0)) s"
}

have_tls=0
if [ -x "$build/tests/test_tls" ] && command -v openssl >/dev/null 2>&1; then
	mkdir "$tmp/pki" && sh "$certs_sh" "$tmp/pki" && have_tls=1
fi
# For the conformance suite: one certificate for both namespaces'
# addresses (either end may serve), signed by that CA.
if [ $have_tls = 1 ]; then
	(
		cd "$tmp/pki" &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout xhost.key -out xhost.csr -subj /CN=xhost >/dev/null 2>&1 &&
			printf 'subjectAltName=IP:10.77.0.1,IP:10.77.0.2\nbasicConstraints=CA:FALSE\n' >xhost.ext &&
			openssl x509 -req -in xhost.csr -CA ca.pem -CAkey ca.key \
				-CAcreateserial -out xhost.pem -days 2 -extfile xhost.ext >/dev/null 2>&1
	) || fail "openssl could not make the certificate for 10.77.0.1 and 10.77.0.2"
fi

# The conformance suite, its peers in B.  Prints the cases passed,
# skipped and failed, and the packets that crossed the link.
conf=$build/tests/conformance
have_conf=0
[ -x "$conf" ] && have_conf=1
confrun() { # label template [case-pattern [skip-pattern]]
	label=$1
	shift
	rx0=$(inA cat "/sys/class/net/$VA/statistics/rx_packets")
	tx0=$(inA cat "/sys/class/net/$VA/statistics/tx_packets")
	t0=$(date +%s)
	hosts=10.77.0.1,10.77.0.2
	case $1 in nats://*) hosts= ;; esac
	CONF_NETNS=/run/netns/$B CONF_NETNS_HOSTS=$hosts inA "$conf" "$@" \
		>"$tmp/conf.out" 2>&1
	rc=$?
	rx=$(($(inA cat "/sys/class/net/$VA/statistics/rx_packets") - rx0))
	tx=$(($(inA cat "/sys/class/net/$VA/statistics/tx_packets") - tx0))
	ok=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$tmp/conf.out")
	sk=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$tmp/conf.out")
	fl=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$tmp/conf.out")
	echo "  conformance $label: ${ok:-0} passed, ${sk:-0} skipped, ${fl:-0} failed; $tx packets A->B, $rx B->A; $(($(date +%s) - t0)) s"
	if [ $rc != 0 ] || [ -n "$fl" ] || [ -z "$ok" ]; then
		cat "$tmp/conf.out"
		fail "conformance $label across the namespaces (exit $rc)"
	fi
	if [ "$tx" -lt 100 ] || [ "$rx" -lt 100 ]; then
		cat "$tmp/conf.out"
		fail "conformance $label: hardly any packets crossed the link"
	fi
}
confphase() { # lossy (0 or 1)
	if [ $have_conf = 0 ]; then
		echo "  conformance: skipped (tests/conformance is not built)"
		return
	fi
	skip=
	[ "$1" = 1 ] && skip='pubsub*'
	confrun "tcp://" "tcp://10.77.0.1:%p" "*" $skip
	if [ "$1" = 1 ]; then
		echo "  conformance udp://: left out on a lossy link (unreliable by its caps: see the header)"
	else
		confrun "udp://" "udp://10.77.0.1:%p"
	fi
	if [ $have_tls = 1 ]; then
		confrun "tls+tcp://" "tls+tcp://10.77.0.1:%p?cert=$tmp/pki/xhost.pem&key=$tmp/pki/xhost.key&ca=$tmp/pki/ca.pem" "*" $skip
	else
		echo "  conformance tls+tcp://: skipped (no tls+tcp:// driver or no openssl command)"
	fi
	if [ $have_nats = 1 ]; then
		o=
		# Scaled like the suite's own deadlines (TU_DEATH_S): under
		# the sanitizers a heartbeat late behind a retransmission
		# must not read as a death.
		[ "$1" = 1 ] && o="&dead=$(awk -v f="${IPC_TEST_TIME_FACTOR:-1}" \
			'BEGIN { f = f + 0; if (f < 1) f = 1; printf "%d", 1500 * f }')"
		confrun "nats:// (JetStream)" "nats://10.77.0.1:4222/%s?storage=memory$o" "*" $skip
		confrun "nats:// (js=0)" "nats://10.77.0.1:4222/%s?js=0$o" "*" $skip
	else
		echo "  conformance nats://: skipped (no nats:// driver or no nats-server)"
	fi
}
have_nats=0
if [ -x "$build/tests/test_nats" ] && command -v nats-server >/dev/null 2>&1; then
	cat >"$tmp/nats.conf" <<EOF
listen: 10.77.0.1:4222
max_payload: 4MB
jetstream { store_dir: "$tmp/js", max_memory_store: 256MB, max_file_store: 1GB }
EOF
	ip netns exec "$A" nats-server -c "$tmp/nats.conf" -l "$tmp/nats.log" &
	natspid=$!
	i=0
	while [ $i -lt 100 ] && ! grep -q "Server is ready" "$tmp/nats.log" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "Server is ready" "$tmp/nats.log" && have_nats=1
fi

phase() { # label nats-options
	echo "$1:"
	pair "tcp://" tcp://10.77.0.1:7000 tcp://10.77.0.1:7000
	if [ $have_tls = 1 ]; then
		pair "tls+tcp://" \
			"tls+tcp://10.77.0.1:7443?cert=$tmp/pki/peer.pem&key=$tmp/pki/peer.key" \
			"tls+tcp://10.77.0.1:7443?ca=$tmp/pki/ca.pem&sni=localhost"
	else
		echo "  tls+tcp://: skipped (no tls+tcp:// driver or no openssl command)"
	fi
	if [ $have_nats = 1 ]; then
		pair "nats:// (JetStream)" "nats://10.77.0.1:4222/xhost$2" \
			"nats://10.77.0.1:4222/xhost$2"
	else
		echo "  nats://: skipped (no nats:// driver or no nats-server)"
	fi
	# udp: N lines from B, what A received is counted
	inA "$build/tools/ipc-cat" -l -U -t 3000 udp://10.77.0.1:7001 >"$tmp/u" 2>"$tmp/ue" &
	upid=$!
	sleep 0.3
	seq 1 $N | inB "$build/tools/ipc-cat" -u udp://10.77.0.1:7001 2>"$tmp/ube"
	wait $upid
	got=$(wc -l <"$tmp/u")
	echo "  udp://: $N sent, $got received, $((N - got)) lost"
}

phase "a clean link" ""
confphase 0

# Loss and delay on both ends of the link.
how=
if inA tc qdisc add dev "$VA" root netem delay 10ms 5ms loss 3% 2>/dev/null &&
	inB tc qdisc add dev "$VB" root netem delay 10ms 5ms loss 3% 2>/dev/null; then
	how="netem: 3% loss, 10 ms +- 5 ms delay each way"
elif inA iptables -A INPUT -i "$VA" -m statistic --mode random --probability 0.03 -j DROP 2>/dev/null &&
	inB iptables -A INPUT -i "$VB" -m statistic --mode random --probability 0.03 -j DROP 2>/dev/null; then
	how="iptables random drop: 3% each way (no netem in this kernel; no delay)"
elif inA nft add table inet ipct 2>/dev/null &&
	inA nft add chain inet ipct in '{ type filter hook input priority 0; }' &&
	inA nft add rule inet ipct in iifname "$VA" numgen random mod 100 '<' 3 counter drop &&
	inB nft add table inet ipct && inB nft add chain inet ipct in '{ type filter hook input priority 0; }' &&
	inB nft add rule inet ipct in iifname "$VB" numgen random mod 100 '<' 3 counter drop; then
	how="nftables random drop: 3% each way (no netem, no iptables; no delay)"
else
	echo "no netem, iptables or nft in these namespaces: the lossy phase is skipped"
	echo "PASS"
	exit 0
fi
echo "lossy link, $how"
# Heartbeats may stall behind TCP retransmissions: a longer dead=.
phase "a lossy link" "?dead=5000"
confphase 1
case $how in
nft*) echo "dropped by the rules: A $(inA nft list table inet ipct | sed -n 's/.*counter packets \([0-9]*\).*/\1/p') packets, B $(inB nft list table inet ipct | sed -n 's/.*counter packets \([0-9]*\).*/\1/p') packets" ;;
iptables*) echo "dropped by the rules: A $(inA iptables -nvxL INPUT | awk '/statistic/ {print $1}') packets, B $(inB iptables -nvxL INPUT | awk '/statistic/ {print $1}') packets" ;;
esac
echo "PASS"
