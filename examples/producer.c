/*
 * producer: send COUNT messages over any libipc channel, then an empty
 * message that means "done", and print what was sent.
 *
 *     ./consumer 'unix:///tmp/demo.sock' &
 *     ./producer 'unix:///tmp/demo.sock'
 *
 * The same two programs work unchanged over tcp://127.0.0.1:7000,
 * fifo:///tmp/demo, shm://demo, mq://demo, ...: only the URI changes.
 * The consumer creates the endpoint; the producer opens it, retrying for a
 * few seconds while it does not exist yet.  Both print a count, a byte
 * total and a checksum, which must match.
 *
 * Build: cc producer.c $(pkg-config --cflags --libs libipc) -o producer
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ipc/ipc.h>

#define DEFAULT_COUNT 1000
#define MAX_PAYLOAD   2048
#define OPEN_WAIT_MS  5000 /* how long to wait for the consumer */

/* Print a failed call: the error's name and the library's detail, which
 * names the URI and the reason. */
static void
fail(const char *what, int err)
{
	fprintf(stderr, "producer: %s: %s (%s)\n", what, ipc_strerror(err),
	        ipc_last_error());
}

/* FNV-1a over each message's length and bytes, so that a message split
 * or merged on the way changes the result, not only a changed byte. */
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

/* Open without IPC_CREATE: the consumer made the endpoint.  If it is not
 * there yet (-ENOENT, or -ECONNREFUSED for sockets), try again shortly. */
static int
open_retry(ipc_channel **ch, const char *uri)
{
	const struct timespec pause = {0, 50 * 1000000L};
	int r;

	for (int waited = 0;; waited += 50) {
		r = ipc_open(ch, uri, 0);
		if ((r != -ENOENT && r != -ECONNREFUSED) ||
		    waited >= OPEN_WAIT_MS) {
			return r;
		}
		nanosleep(&pause, NULL);
	}
}

/* Message i: a readable head, then letters; lengths vary up to about
 * MAX_PAYLOAD bytes so that every run crosses buffer boundaries. */
static size_t
make_message(unsigned i, char *buf)
{
	int head = snprintf(buf, MAX_PAYLOAD, "message %u ", i);
	size_t len = (size_t)head + (i * 131u) % (MAX_PAYLOAD - 32);

	for (size_t j = (size_t)head; j < len; j++) {
		buf[j] = (char)('a' + (i + j) % 26);
	}
	return len;
}

int
main(int argc, char **argv)
{
	static char buf[MAX_PAYLOAD];
	unsigned long count = DEFAULT_COUNT;
	uint64_t sum = 14695981039346656037u; /* FNV offset basis */
	unsigned long long bytes = 0;
	ipc_channel *ch;
	int r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s URI [COUNT]\n", argv[0]);
		return 2;
	}
	if (argc == 3) {
		char *end;
		count = strtoul(argv[2], &end, 10);
		if (*argv[2] == '\0' || *end != '\0') {
			fprintf(stderr, "producer: bad COUNT '%s'\n", argv[2]);
			return 2;
		}
	}

	r = open_retry(&ch, argv[1]);
	if (r < 0) {
		fail("open", r);
		return 1;
	}
	for (unsigned long i = 0; i < count; i++) {
		size_t len = make_message((unsigned)i, buf);
		/* Blocks while the channel is full, or until the consumer
		 * has arrived on transports where it could be late. */
		ssize_t n = ipc_send(ch, buf, len, 0);
		if (n < 0) {
			fail("send", (int)n);
			ipc_close(ch);
			return 1;
		}
		sum = checksum(sum, buf, len);
		bytes += len;
	}
	/* The empty message says "no more": the consumer stops there, on
	 * every transport, even one that cannot report our close. */
	ssize_t n = ipc_send(ch, "", 0, 0);
	if (n < 0) {
		fail("send", (int)n);
		ipc_close(ch);
		return 1;
	}
	/* Messages already sent stay readable for the consumer after we
	 * close; close only fails if queued bytes could not be handed over.
	 */
	r = ipc_close(ch);
	if (r < 0) {
		fail("close", r);
		return 1;
	}
	printf("producer: %lu messages, %llu bytes, checksum %016" PRIx64 "\n",
	       count, bytes, sum);
	return 0;
}
