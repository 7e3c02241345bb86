/*
 * consumer: create a libipc endpoint, receive messages until the producer
 * sends an empty one (or closes), and print what arrived.
 *
 *     ./consumer 'shm://demo' &
 *     ./producer 'shm://demo'
 *
 * The consumer creates the endpoint (IPC_CREATE) and returns at once; its
 * first receive waits for the producer.  The output line has the same
 * count, byte total and checksum as the producer's when every message
 * arrived whole and in order.
 *
 * Messages are read with ipc_acquire()/ipc_release(): on shared-memory
 * transports the program reads the message where the producer wrote it,
 * and on the others the library keeps one copy, so no buffer size has to
 * be guessed.  ipc_recv() into a buffer of your own works as well.
 *
 * Build: cc consumer.c $(pkg-config --cflags --libs libipc) -o consumer
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include <ipc/ipc.h>

static void
fail(const char *what, int err)
{
	fprintf(stderr, "consumer: %s: %s (%s)\n", what, ipc_strerror(err),
	        ipc_last_error());
}

/* The producer's checksum: FNV-1a over each message's length and bytes. */
static uint64_t
checksum(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t n = (uint32_t)len;

	for (int i = 0; i < 4; i++) {
		h = (h ^ ((n >> (8 * i)) & 0xff)) * 1099511628211u;
	}
	for (size_t i = 0; i < len; i++) {
		h = (h ^ p[i]) * 1099511628211u;
	}
	return h;
}

int
main(int argc, char **argv)
{
	uint64_t sum = 14695981039346656037u;
	unsigned long long bytes = 0;
	unsigned long count = 0;
	ipc_channel *ch;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s URI\n", argv[0]);
		return 2;
	}
	/* Create the endpoint: bind the socket, make the FIFOs, create the
	 * segment or queue.  This never waits for the producer. */
	r = ipc_open(&ch, argv[1], IPC_CREATE);
	if (r < 0) {
		fail("open", r);
		return 1;
	}
	for (;;) {
		const void *msg;
		size_t len;

		/* Borrow the next message; blocks until one is there. */
		r = ipc_acquire(ch, &msg, &len, 0);
		if (r == -EPIPE) {
			/* The producer closed without its end marker. */
			fprintf(stderr, "consumer: the producer left early\n");
			break;
		}
		if (r < 0) {
			fail("receive", r);
			ipc_close(ch);
			return 1;
		}
		if (len == 0) {
			ipc_release(ch); /* the empty message: done */
			break;
		}
		sum = checksum(sum, msg, len);
		bytes += len;
		count++;
		ipc_release(ch); /* msg is invalid from here on */
	}
	/* Closing removes what this side created (socket file, FIFOs,
	 * segment, queue). */
	ipc_close(ch);
	printf("consumer: %lu messages, %llu bytes, checksum %016" PRIx64 "\n",
	       count, bytes, sum);
	return r == -EPIPE ? 1 : 0;
}
