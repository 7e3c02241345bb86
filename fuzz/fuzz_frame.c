/*
 * Fuzz target: the stream frame decoders (length, line and raw framing).
 * The input is written by a hostile peer into one end of a socketpair; a
 * channel adopted with fd:// on the other end receives until the stream is
 * exhausted.  The first byte picks the framing, a small maxmsg and the
 * receive buffer size.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const framing[] = {"length", "line", "raw"};
	static unsigned char buf[4096];
	char uri[96];
	ipc_channel *ch;
	int sv[2];

	if (size < 1 || size > 60000) {
		return 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		return 0;
	}
	unsigned sel = data[0];
	size_t cap = (size_t)(sel >> 2) * 64 + 1; /* 1 .. 4033 */
	snprintf(uri, sizeof(uri), "fd://%d?framing=%s&maxmsg=%u", sv[0],
	         framing[(sel & 3) % 3], 1000u + (sel & 0x80u) * 16u);
	if (ipc_open(&ch, uri, IPC_NONBLOCK) != 0) {
		abort();
	}
	/* The socket buffer holds the whole input (size is bounded). */
	if (write(sv[1], data + 1, size - 1) != (ssize_t)(size - 1)) {
		abort();
	}
	close(sv[1]);
	for (int i = 0; i < 100000; i++) {
		ssize_t n = ipc_recv(ch, buf, cap, 0);
		if (n == -EMSGSIZE) {
			n = ipc_recv(ch, buf, sizeof(buf), 0);
		}
		if (n >= 0) {
			if ((size_t)n > sizeof(buf)) {
				abort();
			}
			continue;
		}
		if (n != -EPIPE && n != -EPROTO && n != -EMSGSIZE) {
			abort(); /* nothing else is a valid outcome */
		}
		break;
	}
	ipc_close(ch);
	return 0;
}
