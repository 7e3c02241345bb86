#!/bin/sh
# examples/jsonrpc (a JSON-RPC 2.0 server, framing=line) called by clients
# that are not libipc: socat and Python's standard socket module, over
# tcp:// and unix://, malformed requests included.
#
#   tests/test_jsonrpc.sh BUILD/examples/jsonrpc
set -u
rpc=${1:?usage: test_jsonrpc.sh JSONRPC}
py=/usr/bin/python3
command -v socat >/dev/null 2>&1 || { echo "SKIP: socat is not installed (apt-get install socat)"; exit 77; }
[ -x "$py" ] || { echo "SKIP: $py is not installed"; exit 77; }
tmp=$(mktemp -d /tmp/ipc-rpc.XXXXXX) || exit 1
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	[ -f "$tmp/err" ] && sed 's/^/server: /' "$tmp/err"
	exit 1
}

# Start the server on $1; $addr becomes the URI it printed.
serve() {
	# Empty it here: the child's own truncation may come after the
	# first grep below, which would read the previous server's line.
	: >"$tmp/out"
	"$rpc" "$1" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	n=0
	while ! grep -q '^listening on ' "$tmp/out"; do
		kill -0 "$pid" 2>/dev/null || fail "jsonrpc $1 did not start"
		n=$((n + 1))
		[ $n -gt 600 ] && fail "jsonrpc $1 said nothing in 30 s"
		sleep 0.05
	done
	addr=$(sed -n 's/^listening on //p' "$tmp/out")
	echo "server: $addr"
}

# Stop it as a user would (SIGTERM): it closes everything and exits 0.
stop() {
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	pid=
	[ $rc -eq 0 ] || fail "jsonrpc exited with $rc after SIGTERM"
}

cat >"$tmp/requests" <<'REQ'
{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}
{"jsonrpc": "2.0", "method": "echo", "params": {"a": [1, "x\"y"]}, "id": "s"}
{"jsonrpc":"2.0","method":
{"jsonrpc":"2.0","method":"nope","id":2}
{"jsonrpc":"2.0","method":"ping"}
{"jsonrpc":"2.0","method":"add","params":[1],"id":3}
{"foo":1}
[1,2
{"jsonrpc":"2.0","method":"ping","id":4}
REQ
cat >"$tmp/expected" <<'EXP'
{"jsonrpc":"2.0","result":5,"id":1}
{"jsonrpc":"2.0","result":{"a": [1, "x\"y"]},"id":"s"}
{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}
{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":2}
{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params"},"id":3}
{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}
{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}
{"jsonrpc":"2.0","result":"pong","id":4}
EXP

# socat sends every line, then shuts its side down; the server answers
# what it read, sees the end and closes, and socat exits.
socat_calls() {
	socat -t 30 - "$1" <"$tmp/requests" >"$tmp/got" 2>"$tmp/socat.err" ||
		fail "socat $1: $(cat "$tmp/socat.err")"
	diff "$tmp/expected" "$tmp/got" >"$tmp/diff" ||
		fail "socat $1: answers differ: $(cat "$tmp/diff")"
	echo "socat $1: 9 requests, 8 answers as expected"
}

# Python's socket module: the same file line by line, each answer parsed
# as JSON; then binary junk, and a second connection still served.
py_calls() {
	"$py" - "$@" "$tmp/requests" <<'PY' || fail "python client: $*"
import json, socket, sys
fam, where, reqs = sys.argv[1], sys.argv[2], sys.argv[3]
def connect():
    if fam == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(where)
    else:
        host, port = where.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(30)
    return s, s.makefile("rb")
s, f = connect()
answers = []
for line in open(reqs, "rb"):
    s.sendall(line)
    if b'"ping"}' in line:   # the notification: no answer
        continue
    answers.append(json.loads(f.readline()))
assert [a.get("id") for a in answers] == [1, "s", None, 2, 3, None, None, 4], answers
assert answers[0]["result"] == 5 and answers[1]["result"] == {"a": [1, 'x"y']}
assert [a["error"]["code"] for a in answers if "error" in a] == [-32700, -32601, -32602, -32600, -32700]
s.sendall(b"\x00\xff{{{\x7f\n")
bad = json.loads(f.readline())
assert bad["error"]["code"] == -32700 and bad["id"] is None, bad
s.close()
s, f = connect()
s.sendall(b'{"jsonrpc":"2.0","method":"add","params":[0.5,-2],"id":"x"}\n')
ok = json.loads(f.readline())
assert ok == {"jsonrpc": "2.0", "result": -1.5, "id": "x"}, ok
s.close()
print("python %s %s: %d answers, junk answered, server still serving" % (fam, where, len(answers) + 2))
PY
}

serve 'tcp://127.0.0.1:0?framing=line'
port=$(echo "$addr" | sed -n 's|^tcp://127\.0\.0\.1:\([0-9]*\).*|\1|p')
[ -n "$port" ] || fail "no port in $addr"
socat_calls "TCP:127.0.0.1:$port"
py_calls tcp "127.0.0.1:$port"
stop

sock="$tmp/rpc.sock"
serve "unix://$sock?framing=line"
socat_calls "UNIX-CONNECT:$sock"
py_calls unix "$sock"
stop
[ -e "$sock" ] && fail "the server left $sock behind"
echo "jsonrpc: tcp:// and unix:// served socat and python; nothing left"
