#!/bin/sh
# Make a throwaway PKI for the tls+tcp:// tests with the openssl command:
#   ca.pem, ca.key          the test's CA
#   peer.pem, peer.key      signed by it, for 127.0.0.1, ::1 and localhost
#                           (no extended key usage: serves as server and
#                           as client certificate)
#   wrong.pem, wrong.key    signed by it, for wrong.example only
#   other-ca.pem            another CA, and rogue.pem/rogue.key: a
#                           certificate for 127.0.0.1 that it signed
# usage: tls_certs.sh DIR          (DIR must exist)
#        tls_certs.sh --run CMD... (a fresh DIR, @CERTS@ in the arguments
#                                   becomes it; removed afterwards)
# Exit 77 (meson's "skipped") with the reason when openssl is absent.
#
# SPDX-License-Identifier: MIT
set -u

if ! command -v openssl >/dev/null 2>&1; then
	echo "SKIP: the openssl command is not installed (Debian: apt-get install openssl)"
	exit 77
fi

mkcerts() {
	d=$1
	(
		cd "$d" || exit 1
		umask 077
		mkca() { # name subject
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
				-nodes -keyout "$1.key" -out "$1.pem" -days 2 \
				-subj "/CN=$2" >/dev/null 2>&1
		}
		mkleaf() { # name ca san
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout "$1.key" -out "$1.csr" -subj "/CN=$1" \
				>/dev/null 2>&1 &&
				printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" >"$1.ext" &&
				openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
					-CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" \
					>/dev/null 2>&1 && rm -f "$1.csr" "$1.ext"
		}
		mkca ca "libipc test CA" &&
			mkca other-ca "another CA" &&
			mkleaf peer ca "IP:127.0.0.1,IP:::1,DNS:localhost" &&
			mkleaf wrong ca "DNS:wrong.example" &&
			mkleaf rogue other-ca "IP:127.0.0.1,DNS:localhost"
	) || {
		echo "FAIL: openssl could not make the test certificates"
		exit 1
	}
}

if [ "${1:-}" != "--run" ]; then
	mkcerts "$1"
	exit 0
fi
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/ipc-tls.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 143' TERM INT HUP
mkcerts "$dir"
n=$#
while [ $n -gt 0 ]; do
	a=$1
	shift
	case $a in
	*@CERTS@*) a=$(printf '%s' "$a" | sed "s|@CERTS@|$dir|g") ;;
	esac
	set -- "$@" "$a"
	n=$((n - 1))
done
"$@"
