/*
 * Unit tests of the stream framing (src/core/stream.c), through fd://
 * channels on one end of a socketpair while the test plays the raw peer
 * on the other end: hostile and fragmented frames, line and raw framing,
 * partly sent messages.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"

struct fixture {
	ipc_channel *ch;
	int peer; /* raw end */
};

static void
open_fd(struct fixture *f, const char *opts)
{
	int sv[2];
	char uri[128];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	snprintf(uri, sizeof(uri), "fd://%d%s", sv[0], opts);
	int r = ipc_open(&f->ch, uri, 0);
	if (r != 0) {
		print_error("%s: %s\n", uri, ipc_last_error());
	}
	assert_int_equal(r, 0);
	f->peer = sv[1];
}

static void
close_fd(struct fixture *f)
{
	ipc_close(f->ch);
	close(f->peer);
}

static void
put(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void
put_hdr(int fd, uint32_t len)
{
	unsigned char h[4] = {len >> 24, len >> 16, len >> 8, len};
	put(fd, h, 4);
}

static void
test_fragmented_frames(void **state)
{
	struct fixture f;
	char buf[64];
	(void)state;

	open_fd(&f, "");
	const char msg[] = "\0\0\0\x05hello\0\0\0\0\0\0\0\x01Z";
	for (size_t i = 0; i < 9; i++) {
		assert_int_equal(
		        ipc_recv(f.ch, buf, sizeof(buf), IPC_NONBLOCK),
		        -EAGAIN);
		put(f.peer, msg + i, 1);
	}
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	put(f.peer, msg + 9, sizeof(msg) - 1 - 9);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 0);
	/* too small: stays queued */
	assert_int_equal(ipc_recv(f.ch, buf, 0, 0), -EMSGSIZE);
	assert_non_null(strstr(ipc_last_error(), "stays queued"));
	assert_int_equal(ipc_recv(f.ch, buf, 1, 0), 1);
	assert_int_equal(buf[0], 'Z');
	close_fd(&f);
}

static void
test_hostile_length(void **state)
{
	struct fixture f;
	char buf[64];
	(void)state;

	open_fd(&f, "?maxmsg=100");
	put_hdr(f.peer, 101);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPROTO);
	assert_non_null(strstr(ipc_last_error(), "101-byte"));
	/* sticky: the stream cannot be trusted any more */
	put_hdr(f.peer, 1);
	put(f.peer, "x", 1);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPROTO);
	close_fd(&f);

	/* 4 GiB - 1 announced with the default maxmsg: no allocation */
	open_fd(&f, "");
	put_hdr(f.peer, 0xffffffffu);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPROTO);
	close_fd(&f);
}

static void
test_eof(void **state)
{
	struct fixture f;
	char buf[64];
	(void)state;

	open_fd(&f, "");
	put_hdr(f.peer, 3);
	put(f.peer, "abc", 3);
	put_hdr(f.peer, 10);
	put(f.peer, "part", 4);
	close(f.peer);
	f.peer = -1;
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 3);
	/* the cut message is never delivered in part */
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPIPE);
	assert_non_null(strstr(ipc_last_error(), "middle of a message"));
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_send(f.ch, "x", 1, 0), -EPIPE);
	ipc_close(f.ch);
}

static void
test_line(void **state)
{
	struct fixture f;
	char buf[64];
	(void)state;

	open_fd(&f, "?framing=line");
	const char in[] = "a\nbb\r\n\nlast";
	put(f.peer, in, sizeof(in) - 1);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 1);
	assert_memory_equal(buf, "a", 1);
	assert_int_equal(ipc_recv(f.ch, buf, 2, 0), -EMSGSIZE);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "bb\r", 3);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 0);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), IPC_NONBLOCK),
	                 -EAGAIN);
	shutdown(f.peer, SHUT_WR);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "last", 4);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPIPE);

	assert_int_equal(ipc_send(f.ch, "x\ny", 3, 0), -EINVAL);
	assert_non_null(strstr(ipc_last_error(), "newline"));
	assert_int_equal(ipc_send(f.ch, "xy", 2, 0), 2);
	assert_int_equal(ipc_send(f.ch, "", 0, 0), 0);
	assert_int_equal(read(f.peer, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "xy\n\n", 4);
	close_fd(&f);

	/* a line longer than maxmsg fails the channel */
	open_fd(&f, "?framing=line&maxmsg=8");
	put(f.peer, "0123456789", 10);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPROTO);
	close_fd(&f);
}

static void
test_raw(void **state)
{
	struct fixture f;
	char buf[64];
	(void)state;

	open_fd(&f, "?framing=raw");
	put(f.peer, "abcdef", 6);
	assert_int_equal(ipc_recv(f.ch, buf, 4, 0), 4);
	assert_memory_equal(buf, "abcd", 4);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), 2);
	assert_int_equal(ipc_send(f.ch, "xyz", 3, 0), 3);
	assert_int_equal(read(f.peer, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "xyz", 3);
	close(f.peer);
	assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0), -EPIPE);
	ipc_close(f.ch);
}

static void
test_maxmsg(void **state)
{
	struct fixture f;
	char buf[16] = {0};
	(void)state;

	open_fd(&f, "?maxmsg=10");
	assert_int_equal(ipc_max_msg(f.ch), 10);
	assert_int_equal(ipc_send(f.ch, buf, 11, 0), -EMSGSIZE);
	assert_int_equal(ipc_send(f.ch, buf, 10, 0), 10);
	close_fd(&f);
}

/* Drain the raw peer end, checking a 4-byte header then the pattern. */
struct drain {
	int fd;
	size_t want;
	size_t got;
	int bad;
	int slow;
};

static void *
drain_thread(void *arg)
{
	struct drain *d = arg;
	unsigned char buf[4096];

	while (d->got < d->want) {
		ssize_t n = read(d->fd, buf, sizeof(buf));
		if (n <= 0) {
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			size_t pos = d->got + (size_t)i;
			if (pos >= 4 && buf[i] != (unsigned char)(pos * 31)) {
				d->bad = 1;
			}
		}
		d->got += (size_t)n;
		if (d->slow) {
			usleep(200);
		}
	}
	return NULL;
}

static unsigned char *
pattern(size_t n)
{
	unsigned char *p = malloc(n);
	for (size_t i = 0; i < n; i++) {
		p[i] = (unsigned char)((i + 4) * 31);
	}
	return p;
}

/* A blocking 1 MiB send continues from the caller's buffer
 * (-EINPROGRESS inside the core) while a slow reader drains. */
static void
test_partial_blocking(void **state)
{
	struct fixture f;
	pthread_t t;
	size_t n = 1u << 20;
	(void)state;

	open_fd(&f, "");
	unsigned char *p = pattern(n);
	struct drain d = {.fd = f.peer, .want = n + 4, .slow = 1};
	pthread_create(&t, NULL, drain_thread, &d);
	assert_int_equal(ipc_send(f.ch, p, n, 0), (ssize_t)n);
	pthread_join(t, NULL);
	assert_int_equal(d.got, n + 4);
	assert_false(d.bad);
	free(p);
	close_fd(&f);
}

/* A send that times out after part of the message went out still
 * reports the message sent, and the rest follows from a copy even though
 * the caller's buffer is gone and the caller only receives afterwards. */
static void
test_partial_detach(void **state)
{
	struct fixture f;
	char buf[8];
	size_t n = 1u << 20;
	(void)state;

	open_fd(&f, "");
	unsigned char *p = pattern(n);
	assert_int_equal(ipc_set_timeout(f.ch, 20), 0);
	assert_int_equal(ipc_send(f.ch, p, n, 0), (ssize_t)n);
	memset(p, 0, n); /* the library must not read it any more */
	free(p);
	struct drain d = {.fd = f.peer, .want = n + 4};
	pthread_t t;
	pthread_create(&t, NULL, drain_thread, &d);
	/* Only receiving: each recv pushes the tail a little further. */
	for (int i = 0; i < 100000 && d.got < d.want; i++) {
		assert_int_equal(ipc_recv(f.ch, buf, sizeof(buf), 0),
		                 -ETIMEDOUT);
	}
	pthread_join(t, NULL);
	assert_int_equal(d.got, n + 4);
	assert_false(d.bad);
	/* The next message follows intact. */
	assert_int_equal(ipc_send(f.ch, "ok", 2, 0), 2);
	assert_int_equal(read(f.peer, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "\0\0\0\x02ok", 6);
	close_fd(&f);
}

/* Non-blocking: -EAGAIN sends nothing; once part went out, the message
 * counts as sent. */
static void
test_nonblock_full(void **state)
{
	struct fixture f;
	static unsigned char big[256 << 10];
	int accepted = 0, again = 0;
	(void)state;

	open_fd(&f, "");
	for (int i = 0; i < 64; i++) {
		ssize_t r = ipc_send(f.ch, big, sizeof(big), IPC_NONBLOCK);
		if (r == -EAGAIN) {
			again++;
			break;
		}
		assert_int_equal(r, (ssize_t)sizeof(big));
		accepted++;
	}
	assert_int_equal(again, 1);
	assert_true(accepted >= 1);
	ipc_pollitem it = {.channel = f.ch, .fd = -1, .events = IPC_POLLOUT};
	assert_int_equal(ipc_poll(&it, 1, 0), 0);
	/* Drain everything the peer got: exactly accepted whole frames. */
	size_t want = (size_t)accepted * (sizeof(big) + 4);
	struct drain d = {.fd = f.peer, .want = want};
	pthread_t t;
	pthread_create(&t, NULL, drain_thread, &d);
	char tiny[1];
	while (d.got < want) {
		(void)ipc_recv(f.ch, tiny, 1, IPC_NONBLOCK);
		usleep(100);
	}
	pthread_join(t, NULL);
	assert_int_equal(d.got, want);
	assert_int_equal(ipc_poll(&it, 1, 1000), 1);
	assert_true(it.revents & IPC_POLLOUT);
	close_fd(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fragmented_frames),
	        cmocka_unit_test(test_hostile_length),
	        cmocka_unit_test(test_eof),
	        cmocka_unit_test(test_line),
	        cmocka_unit_test(test_raw),
	        cmocka_unit_test(test_maxmsg),
	        cmocka_unit_test(test_partial_blocking),
	        cmocka_unit_test(test_partial_detach),
	        cmocka_unit_test(test_nonblock_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
