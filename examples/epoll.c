/*
 * epoll: one process serves several libipc channels from an epoll(7)
 * loop, the way a program with its own event loop (or libuv, or an
 * async runtime) would embed libipc.
 *
 *     ./epoll 'unix:///tmp/a.sock' 'shm://b' 'fifo:///tmp/c' &
 *     ./producer 'unix:///tmp/a.sock' &
 *     ./producer 'shm://b' &
 *     ./producer 'fifo:///tmp/c'
 *
 * Each URI is created like the consumer does it, and each channel prints
 * the consumer's summary line when its producer is done, so the lines can
 * be compared with the producers' output.  The program exits when every
 * channel is done.
 *
 * The pattern, from the ipc_fd() contract in <ipc/ipc.h>:
 *  - register ipc_fd(ch) for EPOLLIN (level-triggered);
 *  - when it is readable, call ipc_recv(..., IPC_NONBLOCK) until it
 *    returns -EAGAIN (the descriptor is level-triggered, so one receive
 *    per wake-up would do too; draining saves wake-ups);
 *  - never read from or close that descriptor yourself: ipc_close() does.
 *
 * Build: cc epoll.c $(pkg-config --cflags --libs libipc) -o epoll
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <ipc/ipc.h>

#define MAX_CHANNELS 32
#define MAX_MSG      (64 * 1024)

struct conn {
	const char *uri;
	ipc_channel *ch;
	int fd; /* ipc_fd(ch): the channel's, not ours to read or close */
	unsigned long count;
	unsigned long long bytes;
	uint64_t sum;
};

static void
fail(const char *what, int err)
{
	fprintf(stderr, "epoll: %s: %s (%s)\n", what, ipc_strerror(err),
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

/* Receive everything that is there now.  Returns 1 while the channel
 * stays open, 0 when its producer is done, -1 on an error. */
static int
drain(struct conn *c)
{
	static char buf[MAX_MSG];

	for (;;) {
		ssize_t n = ipc_recv(c->ch, buf, sizeof(buf), IPC_NONBLOCK);
		if (n == -EAGAIN) {
			return 1; /* nothing more for now: back to epoll */
		}
		if (n == 0 || n == -EPIPE) {
			return 0; /* end marker, or the producer closed */
		}
		if (n < 0) {
			fail(c->uri, (int)n);
			return -1;
		}
		c->sum = checksum(c->sum, buf, (size_t)n);
		c->bytes += (size_t)n;
		c->count++;
	}
}

int
main(int argc, char **argv)
{
	static struct conn conns[MAX_CHANNELS];
	int nconn = argc - 1, open_left = 0, status = 0;

	if (nconn < 1 || nconn > MAX_CHANNELS) {
		fprintf(stderr, "usage: %s URI... (at most %d)\n", argv[0],
		        MAX_CHANNELS);
		return 2;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("epoll: epoll_create1");
		return 1;
	}
	for (int i = 0; i < nconn; i++) {
		struct conn *c = &conns[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		int r;

		c->uri = argv[i + 1];
		c->sum = 14695981039346656037u;
		/* IPC_NONBLOCK at open: no call on this channel ever blocks
		 * the loop, even one that forgets the per-call flag. */
		r = ipc_open(&c->ch, c->uri, IPC_CREATE | IPC_NONBLOCK);
		if (r < 0) {
			fail("open", r);
			status = 1;
			break;
		}
		open_left++;
		c->fd = ipc_fd(c->ch);
		if (c->fd < 0) {
			fail("ipc_fd", c->fd);
			status = 1;
			break;
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
			perror("epoll: epoll_ctl");
			status = 1;
			break;
		}
	}

	while (status == 0 && open_left > 0) {
		struct epoll_event ev[MAX_CHANNELS];
		int n = epoll_wait(ep, ev, MAX_CHANNELS, -1);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			perror("epoll: epoll_wait");
			status = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			int r = drain(c);
			if (r < 0) {
				status = 1;
			}
			if (r <= 0) {
				/* Done with this one: leave the epoll set
				 * before ipc_close() closes the descriptor.
				 */
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				printf("%s: %lu messages, %llu bytes, "
				       "checksum %016" PRIx64 "\n",
				       c->uri, c->count, c->bytes, c->sum);
				fflush(stdout);
				ipc_close(c->ch);
				c->ch = NULL;
				open_left--;
			}
		}
	}
	for (int i = 0; i < nconn; i++) {
		ipc_close(conns[i].ch); /* closing NULL is a no-op */
	}
	close(ep);
	return status;
}
