/*
 * Fuzz target: the stream frame decoders (length, line and raw framing) as
 * a hostile peer drives them.  A channel adopted with fd:// reads one end
 * of a socketpair; the harness writes the other end.  The input is a
 * small program, so that a short input can describe a long stream and
 * deliver it in chunks while the receiver reads:
 *
 *   byte 0   framing (bits 0-1), maxmsg (bits 2-4, see maxmsgs[])
 *   then ops, each a byte whose low 2 bits pick:
 *     0  literal: the next (op >> 2) bytes are written as they are
 *     1  run: (next byte + 1) * 256 * (op >> 2 | 1) copies of the byte
 *        after it (lines and frames longer than the 128 KiB read buffer,
 *        and than maxmsg)
 *     2  receive once, into a buffer of caps[op >> 2 & 15] bytes
 *     3  a length-framing header announcing (op >> 2) * 4099 bytes
 *
 * Writes that do not fit in the socket are finished by receiving, so the
 * decoder sees frames cut at every place (-EAGAIN mid-frame, buffer
 * compaction, growth).  Checked: every result is a length no larger than
 * the buffer and maxmsg, or one of the documented errors; -EPROTO is
 * sticky; after the stream ends, what was not received ends in -EPIPE or
 * -EPROTO.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names its line (and the library's last error). */
#define FAIL()                                                                \
	do {                                                                  \
		fprintf(stderr, "%s:%d: check failed (last error: %s)\n",     \
		        __FILE__, __LINE__, ipc_last_error());                \
		abort();                                                      \
	} while (0)

#define BIG     ((size_t)1 << 20) /* the largest maxmsg used */
#define MAX_OUT ((size_t)3 << 20) /* bytes written per input, at most */

/* framing=line's buffer grows geometrically, so line streams may be as
 * long as any other.  -DLINE_TRAP=1 stops them a little past the read
 * buffer (160 KiB), as was needed while it grew one byte per read. */
#ifndef LINE_TRAP
#define LINE_TRAP 0
#endif
#define LINE_MAX_OUT ((size_t)160 << 10)

static const size_t maxmsgs[8] = {1, 2, 7, 100, 4096, 70000, 200000, BIG};
static const size_t caps[16] = {0,      1,      3,    7,      12,    100,
                                1000,   4095,   4096, 4097,   65536, 131072,
                                131073, 300000, BIG,  BIG + 1};

struct fx {
	ipc_channel *ch;
	int wfd;
	int framing;
	size_t maxmsg;
	int failed; /* -EPROTO seen: it must stay */
	int ended;  /* -EPIPE seen */
	size_t written;
};

static unsigned char *rbuf;

static void
check(struct fx *f, ssize_t n, size_t cap)
{
	if (n >= 0) {
		if (f->failed || f->ended || (size_t)n > cap ||
		    (f->framing != 2 && (size_t)n > f->maxmsg)) {
			FAIL();
		}
		return;
	}
	if (f->failed && n != -EPROTO) {
		FAIL(); /* the error is sticky */
	}
	switch (n) {
	case -EAGAIN:
	case -EMSGSIZE:
		return;
	case -EPROTO:
		if (f->framing == 2) {
			FAIL(); /* raw framing has nothing to break */
		}
		f->failed = 1;
		return;
	case -EPIPE:
		f->ended = 1;
		return;
	default:
		FAIL(); /* nothing else is a valid outcome */
	}
}

static void
receive(struct fx *f, size_t cap)
{
	check(f, ipc_recv(f->ch, rbuf, cap, IPC_NONBLOCK), cap);
}

/* Write p[0..n) whole, receiving into a large buffer whenever the socket
 * is full.  Gives up when the receiver cannot take more (it failed). */
static void
put(struct fx *f, const unsigned char *p, size_t n)
{
	size_t max = LINE_TRAP && f->framing == 1 ? LINE_MAX_OUT : MAX_OUT;
	while (n > 0 && !f->failed && f->written < max) {
		size_t k = n < max - f->written ? n : max - f->written;
		ssize_t w = write(f->wfd, p, k);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			f->written += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN) {
			FAIL();
		}
		receive(f, BIG + 1);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const framing[] = {"length", "line", "raw"};
	static unsigned char run[64 << 10];
	char uri[128];
	struct fx f;
	int sv[2];

	if (size < 1 || size > 4096) {
		return 0;
	}
	if (rbuf == NULL && (rbuf = malloc(BIG + 1)) == NULL) {
		FAIL();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		return 0;
	}
	memset(&f, 0, sizeof(f));
	f.framing = (data[0] & 3) % 3;
	f.maxmsg = maxmsgs[(data[0] >> 2) & 7];
	f.wfd = sv[1];
	snprintf(uri, sizeof(uri), "fd://%d?framing=%s&maxmsg=%zu", sv[0],
	         framing[f.framing], f.maxmsg);
	if (ipc_open(&f.ch, uri, IPC_NONBLOCK) != 0) {
		FAIL();
	}
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0) {
		FAIL();
	}
	size_t i = 1;
	while (i < size && !f.ended) {
		unsigned op = data[i++];
		unsigned arg = op >> 2;
		switch (op & 3) {
		case 0: {
			size_t n = arg < size - i ? arg : size - i;
			put(&f, data + i, n);
			i += n;
			break;
		}
		case 1: {
			if (size - i < 2) {
				i = size;
				break;
			}
			size_t n = ((size_t)data[i] + 1) * 256 * (arg | 1);
			memset(run, data[i + 1], sizeof(run));
			i += 2;
			while (n > 0 && !f.failed && f.written < MAX_OUT) {
				size_t k = n < sizeof(run) ? n : sizeof(run);
				put(&f, run, k);
				n -= k;
			}
			break;
		}
		case 2:
			receive(&f, caps[arg & 15]);
			break;
		default: {
			uint32_t len = arg * 4099u;
			unsigned char h[4] = {(unsigned char)(len >> 24),
			                      (unsigned char)(len >> 16),
			                      (unsigned char)(len >> 8),
			                      (unsigned char)len};
			put(&f, h, sizeof(h));
			break;
		}
		}
	}
	close(sv[1]);
	/* Drain: every message left is delivered, then the end (or the
	 * framing error) is reported. */
	for (size_t k = 0; k < MAX_OUT + 2 && !f.ended; k++) {
		ssize_t n = ipc_recv(f.ch, rbuf, BIG + 1, IPC_NONBLOCK);
		if (n == -EAGAIN) {
			FAIL(); /* the writer is gone: nothing to wait for */
		}
		check(&f, n, BIG + 1);
		if (f.failed) {
			check(&f, ipc_recv(f.ch, rbuf, BIG + 1, IPC_NONBLOCK),
			      BIG + 1);
			break;
		}
	}
	if (!f.ended && !f.failed) {
		FAIL();
	}
	ipc_close(f.ch);
	return 0;
}
