/*
 * Unit tests of the shared-memory ring (src/core/ring.c): the record
 * format, wrapping, limits, misuse, close, corrupt shared state, waiting
 * and notification, and a two-thread checksummed stream.  The same file is
 * built a second time with -fsanitize=thread (test_ring_tsan), where the
 * streams are shorter.
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
#include <time.h>

#include <cmocka.h>

#include "core/ring.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* A region with its own heap block, so ASan sees any access outside. */
struct region {
	unsigned char *mem;
	size_t size;
};

static struct region
region_new(size_t size)
{
	struct region g;
	size_t bytes = ipc_ring_region_size(size);
	g.mem = aligned_alloc(IPC_RING_ALIGN, bytes);
	assert_non_null(g.mem);
	memset(g.mem, 0xa5, bytes);
	g.size = size;
	assert_int_equal(ipc_ring_format(g.mem, size), 0);
	return g;
}

static void
pair_attach(struct region *g, struct ipc_ring *p, struct ipc_ring *c,
            const struct ipc_ring_ops *ops, void *ctx)
{
	assert_int_equal(ipc_ring_attach(p, g->mem, g->size, IPC_RING_PRODUCER,
	                                 ops, ctx),
	                 0);
	assert_int_equal(ipc_ring_attach(c, g->mem, g->size, IPC_RING_CONSUMER,
	                                 ops, ctx),
	                 0);
}

static void
poke64(struct region *g, size_t off, uint64_t v)
{
	memcpy(g->mem + off, &v, sizeof(v));
}

static void
poke32(struct region *g, size_t off, uint32_t v)
{
	memcpy(g->mem + off, &v, sizeof(v));
}

static uint64_t
peek64(struct region *g, size_t off)
{
	uint64_t v;
	memcpy(&v, g->mem + off, sizeof(v));
	return v;
}

static int
send_bytes(struct ipc_ring *p, const void *buf, size_t len)
{
	void *dst;
	int rc = ipc_ring_reserve(p, len, &dst);
	if (rc != 0) {
		return rc;
	}
	assert_int_equal((uintptr_t)dst % 16, 0);
	memcpy(dst, buf, len);
	return ipc_ring_commit(p, len);
}

static int
recv_bytes(struct ipc_ring *c, void *buf, size_t cap, size_t *len)
{
	const void *src;
	int rc = ipc_ring_acquire(c, &src, len);
	if (rc != 0) {
		return rc;
	}
	assert_int_equal((uintptr_t)src % 16, 0);
	assert_true(*len <= cap);
	memcpy(buf, src, *len);
	return ipc_ring_release(c);
}

/* Deterministic message contents: the size and bytes of message `seq`. */
static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static size_t
msg_len(uint64_t seq, size_t maxlen)
{
	uint64_t h = mix(seq);
	/* Mostly small, sometimes up to maxlen. */
	if ((h & 15) == 0) {
		return (size_t)((h >> 8) % (maxlen + 1));
	}
	return (size_t)((h >> 8) % 257);
}

static void
msg_fill(uint64_t seq, unsigned char *p, size_t len)
{
	uint64_t x = mix(seq ^ 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0) {
			x = mix(x + i);
		}
		p[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
}

static int
msg_check(uint64_t seq, const unsigned char *p, size_t len, size_t maxlen)
{
	if (len != msg_len(seq, maxlen)) {
		return 0;
	}
	uint64_t x = mix(seq ^ 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0) {
			x = mix(x + i);
		}
		if (p[i] != (unsigned char)(x >> ((i & 7) * 8))) {
			return 0;
		}
	}
	return 1;
}

/* ----------------------------------------------------------- the tests -- */

static void
test_format_attach(void **state)
{
	(void)state;
	struct ipc_ring r;
	unsigned char *mem = aligned_alloc(IPC_RING_ALIGN,
	                                   ipc_ring_region_size(8192) + 128);
	assert_non_null(mem);
	assert_int_equal(ipc_ring_format(mem, 3000), -EINVAL);
	assert_int_equal(ipc_ring_format(mem, 6000), -EINVAL);
	assert_int_equal(ipc_ring_format(mem, 2048), -EINVAL);
	assert_int_equal(ipc_ring_format(mem + 8, 4096), -EINVAL);
	assert_int_equal(ipc_ring_format(NULL, 4096), -EINVAL);
	assert_int_equal(ipc_ring_format(mem, 8192), 0);
	/* Wrong expected size, bad role, no ops. */
	assert_int_equal(ipc_ring_attach(&r, mem, 4096, IPC_RING_CONSUMER,
	                                 &ipc__ring_futex_ops, NULL),
	                 -EPROTO);
	assert_int_equal(
	        ipc_ring_attach(&r, mem, 8192, 7, &ipc__ring_futex_ops, NULL),
	        -EINVAL);
	assert_int_equal(
	        ipc_ring_attach(&r, mem, 8192, IPC_RING_CONSUMER, NULL, NULL),
	        -EINVAL);
	assert_int_equal(ipc_ring_attach(&r, mem, 8192, IPC_RING_CONSUMER,
	                                 &ipc__ring_futex_ops, NULL),
	                 0);
	/* A bad magic, and published indices that make no sense. */
	mem[IPC_RING_OFF_MAGIC] ^= 1;
	assert_int_equal(ipc_ring_attach(&r, mem, 8192, IPC_RING_CONSUMER,
	                                 &ipc__ring_futex_ops, NULL),
	                 -EPROTO);
	mem[IPC_RING_OFF_MAGIC] ^= 1;
	uint64_t v = 8192 + 16;
	memcpy(mem + IPC_RING_OFF_HEAD, &v, 8);
	assert_int_equal(ipc_ring_attach(&r, mem, 8192, IPC_RING_PRODUCER,
	                                 &ipc__ring_futex_ops, NULL),
	                 -EPROTO);
	v = 8;
	memcpy(mem + IPC_RING_OFF_HEAD, &v, 8);
	assert_int_equal(ipc_ring_attach(&r, mem, 8192, IPC_RING_PRODUCER,
	                                 &ipc__ring_futex_ops, NULL),
	                 -EPROTO);
	/* A persistent ring resumes from its published indices. */
	v = 64;
	memcpy(mem + IPC_RING_OFF_HEAD, &v, 8);
	v = 32;
	memcpy(mem + IPC_RING_OFF_TAIL, &v, 8);
	assert_int_equal(ipc_ring_attach(&r, mem, 8192, IPC_RING_PRODUCER,
	                                 &ipc__ring_futex_ops, NULL),
	                 0);
	assert_int_equal(r.head, 64);
	free(mem);
}

static void
test_roundtrip_sizes(void **state)
{
	(void)state;
	struct region g = region_new(1 << 16);
	struct ipc_ring p, c;
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	size_t max = ipc_ring_max_msg(g.size);
	unsigned char *in = malloc(max), *out = malloc(max);
	assert_non_null(in);
	assert_non_null(out);
	size_t len;
	assert_int_equal(recv_bytes(&c, out, max, &len), -EAGAIN);
	/* Every size from 0 to 600, then large ones, with wrapping. */
	for (uint64_t seq = 0; seq < 3000; seq++) {
		size_t n = seq <= 600 ? (size_t)seq : msg_len(seq, max);
		msg_fill(seq, in, n);
		int rc = send_bytes(&p, in, n);
		if (rc == -EAGAIN) {
			/* A lone wrap: the consumer skips it. */
			assert_int_equal(recv_bytes(&c, out, max, &len),
			                 -EAGAIN);
			rc = send_bytes(&p, in, n);
		}
		assert_int_equal(rc, 0);
		assert_int_equal(recv_bytes(&c, out, max, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(in, out, n);
	}
	/* The largest message goes through repeatedly, whatever the
	 * position. */
	for (uint64_t seq = 0; seq < 40; seq++) {
		msg_fill(seq, in, max);
		assert_int_equal(send_bytes(&p, in, seq % 3), 0);
		assert_int_equal(recv_bytes(&c, out, max, &len), 0);
		for (int tries = 0;; tries++) {
			int rc = send_bytes(&p, in, max);
			if (rc == 0) {
				break;
			}
			/* Only a WRAP can stand in the way: the consumer
			 * frees it. */
			assert_int_equal(rc, -EAGAIN);
			assert_true(tries < 1);
			assert_int_equal(recv_bytes(&c, out, max, &len),
			                 -EAGAIN);
		}
		assert_int_equal(recv_bytes(&c, out, max, &len), 0);
		assert_int_equal(len, max);
		assert_memory_equal(in, out, max);
	}
	assert_int_equal(recv_bytes(&c, out, max, &len), -EAGAIN);
	free(in);
	free(out);
	free(g.mem);
}

static void
test_full_and_limits(void **state)
{
	(void)state;
	struct region g = region_new(4096);
	struct ipc_ring p, c;
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	void *buf;
	assert_int_equal(ipc_ring_reserve(&p, 4096 - 16 + 1, &buf), -EMSGSIZE);
	assert_int_equal(ipc_ring_reserve(&p, SIZE_MAX, &buf), -EMSGSIZE);
	/* 64-byte messages take 80 bytes: 51 fit in 4096. */
	unsigned char msg[64];
	int sent = 0;
	while (send_bytes(&p, msg, sizeof(msg)) == 0) {
		sent++;
	}
	assert_int_equal(sent, 4096 / 80);
	/* The failed 52nd send padded the last 16 bytes with a wrap. */
	assert_false(ipc_ring_writable(&p, 64));
	assert_false(ipc_ring_writable(&p, 0));
	assert_true(ipc_ring_readable(&c));
	size_t len;
	unsigned char out[64];
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	assert_true(ipc_ring_writable(&p, 64));
	for (int i = 1; i < sent; i++) {
		assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	}
	/* Only the wrap is left: readable says maybe, acquire skips it. */
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), -EAGAIN);
	assert_false(ipc_ring_readable(&c));
	free(g.mem);
}

static void
test_wrap_alone(void **state)
{
	(void)state;
	struct region g = region_new(4096);
	struct ipc_ring p, c;
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	unsigned char *big = calloc(1, 4080), out[4080];
	size_t len;
	assert_non_null(big);
	assert_int_equal(send_bytes(&p, big, 100), 0);
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	/* At 128 the largest record cannot fit before the end nor after a
	 * wrap while the wrap is unread: reserve publishes the wrap alone. */
	assert_true(ipc_ring_writable(&p, 4080));
	assert_int_equal(send_bytes(&p, big, 4080), -EAGAIN);
	assert_false(ipc_ring_writable(&p, 4080));
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), -EAGAIN);
	assert_true(ipc_ring_writable(&p, 4080));
	big[4079] = 7;
	assert_int_equal(send_bytes(&p, big, 4080), 0);
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	assert_int_equal(len, 4080);
	assert_int_equal(out[4079], 7);
	free(big);
	free(g.mem);
}

static void
test_misuse(void **state)
{
	(void)state;
	struct region g = region_new(4096);
	struct ipc_ring p, c;
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	void *buf;
	const void *cbuf;
	size_t len;
	assert_int_equal(ipc_ring_commit(&p, 0), -EINVAL);
	assert_int_equal(ipc_ring_release(&c), -EINVAL);
	assert_int_equal(ipc_ring_reserve(&p, 100, &buf), 0);
	assert_int_equal(ipc_ring_reserve(&p, 10, &buf), -EBUSY);
	assert_int_equal(ipc_ring_commit(&p, 101), -EINVAL);
	memcpy(buf, "hello", 5);
	/* A shorter commit than reserved. */
	assert_int_equal(ipc_ring_commit(&p, 5), 0);
	assert_int_equal(ipc_ring_reserve(&p, 10, &buf), 0);
	ipc_ring_unreserve(&p);
	assert_int_equal(ipc_ring_commit(&p, 0), -EINVAL);
	assert_int_equal(ipc_ring_reserve(&p, 0, &buf), 0);
	assert_int_equal(ipc_ring_commit(&p, 0), 0);
	assert_int_equal(ipc_ring_acquire(&c, &cbuf, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(cbuf, "hello", 5);
	assert_int_equal(ipc_ring_acquire(&c, &cbuf, &len), -EBUSY);
	/* Given back unread, it comes again. */
	ipc_ring_unacquire(&c);
	assert_int_equal(ipc_ring_release(&c), -EINVAL);
	assert_int_equal(ipc_ring_acquire(&c, &cbuf, &len), 0);
	assert_int_equal(len, 5);
	assert_int_equal(ipc_ring_release(&c), 0);
	assert_int_equal(ipc_ring_acquire(&c, &cbuf, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(ipc_ring_release(&c), 0);
	assert_int_equal(ipc_ring_acquire(&c, &cbuf, &len), -EAGAIN);
	free(g.mem);
}

static void
test_close(void **state)
{
	(void)state;
	struct region g = region_new(4096);
	struct ipc_ring p, c;
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	unsigned char out[16];
	size_t len;
	assert_false(ipc_ring_peer_closed(&c));
	assert_int_equal(send_bytes(&p, "a", 1), 0);
	assert_int_equal(send_bytes(&p, "bc", 2), 0);
	ipc_ring_close(&p);
	assert_true(ipc_ring_peer_closed(&c));
	/* Drained first, then -EPIPE, and that stays. */
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	assert_int_equal(len, 2);
	assert_true(ipc_ring_readable(&c));
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), -EPIPE);
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), -EPIPE);
	free(g.mem);

	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	assert_false(ipc_ring_peer_closed(&p));
	ipc_ring_close(&c);
	assert_true(ipc_ring_peer_closed(&p));
	assert_true(ipc_ring_writable(&p, 10));
	assert_int_equal(send_bytes(&p, "a", 1), -EPIPE);
	free(g.mem);
}

/* Corrupt consumer-visible state: each case must give -EPROTO, sticky. */
static void
expect_consumer_fails(struct region *g, struct ipc_ring *c)
{
	const void *buf;
	size_t len;
	assert_int_equal(ipc_ring_acquire(c, &buf, &len), -EPROTO);
	assert_int_equal(ipc_ring_acquire(c, &buf, &len), -EPROTO);
	assert_true(ipc_ring_readable(c));
	free(g->mem);
}

static void
test_corrupt_consumer(void **state)
{
	(void)state;
	struct ipc_ring p, c;
	struct region g;

	/* Head beyond one ring's worth of bytes. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	poke64(&g, IPC_RING_OFF_HEAD, 4096 + 16);
	expect_consumer_fails(&g, &c);

	/* Head behind the consumer. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	poke64(&g, IPC_RING_OFF_HEAD, (uint64_t)-16);
	expect_consumer_fails(&g, &c);

	/* Head not on a record boundary. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	poke64(&g, IPC_RING_OFF_HEAD, 40);
	expect_consumer_fails(&g, &c);

	/* A record longer than what was published. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	assert_int_equal(send_bytes(&p, "abcdefgh", 8), 0);
	poke32(&g, IPC_RING_HDR, 17);
	expect_consumer_fails(&g, &c);

	/* A huge length. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	assert_int_equal(send_bytes(&p, "abcdefgh", 8), 0);
	poke32(&g, IPC_RING_HDR, UINT32_MAX);
	expect_consumer_fails(&g, &c);

	/* An unknown record kind. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	assert_int_equal(send_bytes(&p, "abcdefgh", 8), 0);
	poke32(&g, IPC_RING_HDR + 4, 0x12345678);
	expect_consumer_fails(&g, &c);

	/* A wrap record before everything up to the end was published. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	assert_int_equal(send_bytes(&p, "abcdefgh", 8), 0);
	poke32(&g, IPC_RING_HDR + 4, 0x50415257);
	expect_consumer_fails(&g, &c);

	/* A record that crosses the end of the data area. */
	g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	{
		unsigned char big[4000] = {0}, out[4000];
		size_t len;
		assert_int_equal(send_bytes(&p, big, 4000), 0);
		assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
		/* Now at 4016, 80 bytes before the end; publish 96 bytes
		 * whose header claims 65 bytes (a 96-byte record): it would
		 * cross the end, so it is rejected. */
		poke32(&g, IPC_RING_HDR + 4016, 65);
		poke32(&g, IPC_RING_HDR + 4016 + 4, 0x41544144);
		poke64(&g, IPC_RING_OFF_HEAD, 4016 + 96);
		expect_consumer_fails(&g, &c);
	}
}

static void
test_corrupt_producer(void **state)
{
	(void)state;
	struct ipc_ring p, c;
	struct region g = region_new(4096);
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	unsigned char msg[1000] = {0};
	void *buf;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(send_bytes(&p, msg, sizeof(msg)), 0);
	}
	/* Full: the producer reads the tail, which claims to be ahead. */
	poke64(&g, IPC_RING_OFF_TAIL, peek64(&g, IPC_RING_OFF_HEAD) + 16);
	assert_int_equal(ipc_ring_reserve(&p, 1000, &buf), -EPROTO);
	assert_int_equal(ipc_ring_reserve(&p, 0, &buf), -EPROTO);
	assert_true(ipc_ring_writable(&p, 0));
	free(g.mem);
}

/* Counting ops around the futex. */
struct counts {
	_Atomic int wakes, notifies[2];
};

static int
count_wait(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word,
           uint32_t val, const struct timespec *until)
{
	return ipc__ring_futex_wait(ctx, role, word, val, until);
}

static void
count_wake(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word)
{
	struct counts *k = ctx;
	atomic_fetch_add(&k->wakes, 1);
	ipc__ring_futex_wake(ctx, role, word);
}

static void
count_notify(void *ctx, enum ipc_ring_role role)
{
	struct counts *k = ctx;
	atomic_fetch_add(&k->notifies[role], 1);
}

static const struct ipc_ring_ops count_ops = {
        .wait = count_wait,
        .wake = count_wake,
        .notify = count_notify,
};

static void
test_notify(void **state)
{
	(void)state;
	struct counts k = {0};
	struct region g = region_new(4096);
	struct ipc_ring p, c;
	pair_attach(&g, &p, &c, &count_ops, &k);
	unsigned char out[64];
	size_t len;

	/* Nobody waits: no wake, no notify. */
	assert_int_equal(send_bytes(&p, "x", 1), 0);
	assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	assert_int_equal(k.wakes, 0);
	assert_int_equal(k.notifies[0] + k.notifies[1], 0);

	/* Armed: exactly one notify however many commits follow. */
	assert_int_equal(ipc_ring_arm_notify(&c, 0), 0);
	assert_true(ipc_ring_notify_armed(&c));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(send_bytes(&p, "y", 1), 0);
	}
	assert_int_equal(k.notifies[IPC_RING_CONSUMER], 1);
	assert_false(ipc_ring_notify_armed(&c));
	/* Arming when data is there says so. */
	assert_int_equal(ipc_ring_arm_notify(&c, 0), 1);
	ipc_ring_disarm_notify(&c);
	assert_false(ipc_ring_notify_armed(&c));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(recv_bytes(&c, out, sizeof(out), &len), 0);
	}
	assert_int_equal(k.notifies[IPC_RING_PRODUCER], 0);

	/* The producer arms for room; a release notifies it. */
	free(g.mem);
	g = region_new(4096);
	pair_attach(&g, &p, &c, &count_ops, &k);
	unsigned char big[2032] = {0};
	assert_int_equal(send_bytes(&p, big, 2032), 0);
	assert_int_equal(send_bytes(&p, big, 2032), 0);
	assert_int_equal(ipc_ring_arm_notify(&p, 2032), 0);
	assert_int_equal(recv_bytes(&c, big, sizeof(big), &len), 0);
	assert_int_equal(k.notifies[IPC_RING_PRODUCER], 1);
	assert_int_equal(k.wakes, 0);

	/* Close notifies an armed peer too. */
	assert_int_equal(ipc_ring_arm_notify(&p, 4080), 0);
	ipc_ring_close(&c);
	assert_int_equal(k.notifies[IPC_RING_PRODUCER], 2);
	free(g.mem);
}

static void
deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void
test_wait_timeout(void **state)
{
	(void)state;
	struct region g = region_new(4096);
	struct ipc_ring p, c;
	pair_attach(&g, &p, &c, &ipc__ring_futex_ops, NULL);
	struct timespec until;
	/* Sleeping, spinning, and busy waits all end at the deadline. */
	deadline_in(&until, 20);
	assert_int_equal(ipc_ring_wait(&c, 0, 0, &until), -ETIMEDOUT);
	deadline_in(&until, 20);
	assert_int_equal(ipc_ring_wait(&c, 0, 1000000, &until), -ETIMEDOUT);
	deadline_in(&until, 20);
	assert_int_equal(ipc_ring_wait(&c, 0, UINT64_MAX, &until), -ETIMEDOUT);
	/* A ready ring returns at once; so does a full one for a
	 * producer once there is room. */
	assert_int_equal(send_bytes(&p, "z", 1), 0);
	assert_int_equal(ipc_ring_wait(&c, 0, 0, NULL), 0);
	assert_int_equal(ipc_ring_wait(&p, 100, 0, NULL), 0);
	/* The flag words are left clear. */
	assert_int_equal(peek64(&g, IPC_RING_OFF_CWAIT) & 0xffffffffu, 0);
	free(g.mem);
}

/* ---------------------------------------------------- threaded stream -- */

struct stream {
	struct ipc_ring p, c;
	uint64_t count;
	size_t maxlen;
	uint64_t spin_ns;
	uint64_t bad;
	int zero_copy;
};

static void *
producer_main(void *arg)
{
	struct stream *s = arg;
	unsigned char *tmp = malloc(s->maxlen + 1);
	assert_non_null(tmp);
	for (uint64_t seq = 0; seq < s->count; seq++) {
		size_t n = msg_len(seq, s->maxlen);
		void *dst;
		int rc;
		while ((rc = ipc_ring_reserve(&s->p, n, &dst)) == -EAGAIN) {
			ipc_ring_wait(&s->p, n, s->spin_ns, NULL);
		}
		assert_int_equal(rc, 0);
		if (s->zero_copy) {
			msg_fill(seq, dst, n);
		} else {
			msg_fill(seq, tmp, n);
			memcpy(dst, tmp, n);
		}
		assert_int_equal(ipc_ring_commit(&s->p, n), 0);
	}
	ipc_ring_close(&s->p);
	free(tmp);
	return NULL;
}

static void
run_stream(uint64_t count, size_t ring, size_t maxlen, uint64_t spin_ns,
           int zero_copy)
{
	struct region g = region_new(ring);
	struct stream *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	pair_attach(&g, &s->p, &s->c, &ipc__ring_futex_ops, NULL);
	s->count = count;
	s->maxlen = maxlen;
	s->spin_ns = spin_ns;
	s->zero_copy = zero_copy;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, producer_main, s), 0);
	uint64_t seq = 0;
	for (;;) {
		const void *buf;
		size_t len;
		int rc = ipc_ring_acquire(&s->c, &buf, &len);
		if (rc == -EAGAIN) {
			ipc_ring_wait(&s->c, 0, s->spin_ns, NULL);
			continue;
		}
		if (rc == -EPIPE) {
			break;
		}
		assert_int_equal(rc, 0);
		if (!msg_check(seq, buf, len, maxlen)) {
			s->bad++;
		}
		seq++;
		assert_int_equal(ipc_ring_release(&s->c), 0);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(seq, count);
	assert_int_equal(s->bad, 0);
	free(s);
	free(g.mem);
}

static void
test_stream_sleepy(void **state)
{
	(void)state;
	/* No spinning: every wait goes through the futex. */
	run_stream(UNDER_TSAN ? 50000 : 200000, 4096, 1000, 0, 0);
}

static void
test_stream_spin(void **state)
{
	(void)state;
	run_stream(UNDER_TSAN ? 200000 : 1000000, 1 << 16, 4000, 20000, 1);
}

static void
test_stream_large(void **state)
{
	(void)state;
	/* Records of up to the whole ring, to exercise lone wraps. */
	run_stream(UNDER_TSAN ? 5000 : 20000, 8192, 8192 - 16, 5000, 0);
}

/*
 * The lost wake-up window, made deterministic: the consumer has set its
 * sleeping flag and looked at the empty ring; before it enters ops->wait,
 * the producer publishes and wakes (nobody is in the kernel yet, so a real
 * futex wake would find no sleeper).  ops->wait must then see the word
 * changed, as futex(2) would, and return at once instead of sleeping.
 */
struct race {
	struct ipc_ring p, c;
	int wakes;
	int slept_through; /* ops->wait found *word == val: a lost wake-up */
};

static void
race_wake(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word)
{
	struct race *x = ctx;
	(void)role;
	(void)word;
	x->wakes++;
}

static int
race_wait(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word,
          uint32_t val, const struct timespec *until)
{
	struct race *x = ctx;
	void *buf;
	(void)role;
	(void)until;
	/* The producer runs in the window, then the futex value check. */
	assert_int_equal(ipc_ring_reserve(&x->p, 8, &buf), 0);
	memset(buf, 7, 8);
	assert_int_equal(ipc_ring_commit(&x->p, 8), 0);
	if (atomic_load(word) == val) {
		x->slept_through = 1; /* futex_wait would sleep forever */
	}
	return 0;
}

static void
test_wake_in_window(void **state)
{
	static const struct ipc_ring_ops ops = {
	        .wait = race_wait, .wake = race_wake, .notify = NULL};
	struct region g = region_new(4096);
	struct race x = {0};
	const void *b;
	size_t n;
	(void)state;
	pair_attach(&g, &x.p, &x.c, &ops, &x);
	assert_int_equal(ipc_ring_acquire(&x.c, &b, &n), -EAGAIN);
	assert_int_equal(ipc_ring_wait(&x.c, 0, 0, NULL), 0);
	assert_int_equal(x.wakes, 1);
	assert_false(x.slept_through);
	assert_int_equal(ipc_ring_acquire(&x.c, &b, &n), 0);
	assert_int_equal(n, 8);
	assert_int_equal(ipc_ring_release(&x.c), 0);
	free(g.mem);
}

/*
 * One wake-up per sleep: while the consumer wakes up (its flag is set, it
 * is not running yet), the producer publishes 50 messages.  Only the first
 * may call ops->wake; the others find the flag taken.  A wake per message
 * costs a system call each on a stream that outruns the sleeper's wake-up.
 */
static int
burst_wait(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word,
           uint32_t val, const struct timespec *until)
{
	struct race *x = ctx;
	void *buf;
	(void)role;
	(void)word;
	(void)val;
	(void)until;
	for (int i = 0; i < 50; i++) {
		assert_int_equal(ipc_ring_reserve(&x->p, 8, &buf), 0);
		memset(buf, i, 8);
		assert_int_equal(ipc_ring_commit(&x->p, 8), 0);
	}
	return 0;
}

static void
test_one_wake_per_sleep(void **state)
{
	static const struct ipc_ring_ops ops = {
	        .wait = burst_wait, .wake = race_wake, .notify = NULL};
	struct region g = region_new(4096);
	struct race x = {0};
	const void *b;
	size_t n;
	(void)state;
	pair_attach(&g, &x.p, &x.c, &ops, &x);
	assert_int_equal(ipc_ring_wait(&x.c, 0, 0, NULL), 0);
	assert_int_equal(x.wakes, 1);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(ipc_ring_acquire(&x.c, &b, &n), 0);
		assert_int_equal(n, 8);
		ipc_ring_release(&x.c);
	}
	/* Asleep again: the next message wakes it again, once. */
	assert_int_equal(ipc_ring_wait(&x.c, 0, 0, NULL), 0);
	assert_int_equal(x.wakes, 2);
	free(g.mem);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_format_attach),
	        cmocka_unit_test(test_roundtrip_sizes),
	        cmocka_unit_test(test_full_and_limits),
	        cmocka_unit_test(test_wrap_alone),
	        cmocka_unit_test(test_misuse),
	        cmocka_unit_test(test_close),
	        cmocka_unit_test(test_corrupt_consumer),
	        cmocka_unit_test(test_corrupt_producer),
	        cmocka_unit_test(test_notify),
	        cmocka_unit_test(test_wait_timeout),
	        cmocka_unit_test(test_wake_in_window),
	        cmocka_unit_test(test_one_wake_per_sleep),
	        cmocka_unit_test(test_stream_sleepy),
	        cmocka_unit_test(test_stream_spin),
	        cmocka_unit_test(test_stream_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
