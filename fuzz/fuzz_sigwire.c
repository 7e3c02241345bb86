/*
 * Fuzz target: the signal:// reassembler (src/core/sigwire.c), which reads
 * the values of signals that any process of the same user may queue.  The
 * input is a list of steps: a control byte, then either 8 raw bytes (a
 * value as a hostile sender would queue it) or a few bytes that make a
 * header close to a valid one (the expected sequence number, a length
 * near the limit), so that the fuzzer reaches deep into messages.  Every
 * value is fed in order; whole messages are taken (first into a buffer
 * that may be too small); the results must be the documented ones and a
 * taken message never longer than max_msg.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sigwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXMSG 3000u

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char out[MAXMSG];
	struct ipc_sw_rx rx;
	size_t i = 0;

	memset(&rx, 0, sizeof(rx));
	rx.max_msg = MAXMSG;
	rx.seq = 1; /* after the HELLO */
	while (i < size) {
		uint8_t c = data[i++];
		uint64_t w = 0;
		if (c & 1) {
			/* A header: kind, words, length from the input; the
			 * sequence number expected unless bit 1 says not. */
			uint8_t b[3] = {0, 0, 0};
			for (int k = 0; k < 3 && i < size; k++) {
				b[k] = data[i++];
			}
			unsigned seq = (c & 2) ? (unsigned)b[0] << 4 : rx.seq;
			uint32_t len = (uint32_t)b[1] * 16u + (c >> 4);
			if (c & 4) {
				len = rx.cur != NULL ? (uint32_t)rx.cur->len
				                     : len;
			}
			w = ipc__sw_hdr((c >> 3) & 7, b[2] % 40, seq, len);
		} else {
			size_t n = size - i < 8 ? size - i : 8;
			memcpy(&w, data + i, n);
			i += n;
		}
		struct ipc_sw_out o;
		int r = ipc__sw_rx_feed(&rx, w, &o, "fuzz");
		if (r == -EPROTO) {
			break; /* a driver fails the channel here */
		}
		if (r != 0) {
			abort();
		}
		while (rx.head != NULL) {
			unsigned sigs;
			ssize_t k = ipc__sw_rx_take(&rx, out, c % 13, &sigs,
			                            "fuzz");
			if (k == -EMSGSIZE) {
				k = ipc__sw_rx_take(&rx, out, sizeof(out),
				                    &sigs, "fuzz");
			}
			if (k < 0 || (size_t)k > MAXMSG || sigs == 0) {
				abort();
			}
		}
	}
	ipc__sw_rx_fini(&rx);
	return 0;
}
