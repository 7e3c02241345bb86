/*
 * Fuzz target: the fragment reassembler of the message-queue drivers
 * (src/core/frag.c), which reads units a hostile peer put in a queue.
 * The input is split into units by a length byte before each; every unit
 * is fed in order, a ready message is taken (first into a buffer that may
 * be too small, then into one that fits), and the outcome must be one of
 * the documented results.  Nothing may be allocated beyond max_msg.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/frag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXMSG 5000u

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char out[MAXMSG];
	struct ipc_frag_rx rx;
	size_t i = 0;

	memset(&rx, 0, sizeof(rx));
	while (i < size) {
		size_t n = data[i++];
		if (n > size - i) {
			n = size - i;
		}
		/* The unit must outlive a WHOLE result (see frag.h). */
		unsigned char *unit = malloc(n ? n : 1);
		if (unit == NULL) {
			break;
		}
		memcpy(unit, data + i, n);
		i += n;
		uint32_t arg = 0;
		int r = ipc__frag_rx_feed(&rx, unit, n, MAXMSG, &arg, "fuzz");
		if (r == IPC_FRAG_WHOLE) {
			size_t small = n % 7;
			ssize_t k = ipc__frag_rx_take(&rx, out, small, "fuzz");
			if (k == -EMSGSIZE) {
				k = ipc__frag_rx_take(&rx, out, sizeof(out),
				                      "fuzz");
			}
			if (k < 0 || (size_t)k > MAXMSG) {
				abort();
			}
		} else if (r == -EPROTO) {
			free(unit);
			break; /* a driver fails the channel here */
		} else if (r != IPC_FRAG_NEED && r != IPC_FRAG_HELLO &&
		           r != IPC_FRAG_CLOSE) {
			abort();
		}
		free(unit);
	}
	ipc__frag_rx_fini(&rx);
	return 0;
}
