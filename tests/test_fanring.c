/*
 * Unit tests of the fan-out ring (src/core/fanring.c): geometry limits,
 * every subscriber reading every message in place, slow=block gating and
 * slow=drop counting, history for a late joiner, eviction of a subscriber
 * that holds messages (every slot reusable afterwards), hostile values in
 * the shared region, notification, and threads streaming checksummed
 * messages through futex waits (also under ThreadSanitizer: make tsan;
 * shorter streams under sanitizers, by IPC_TEST_TIME_FACTOR).
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

#include "core/fanring.h"
#include "core/ring.h"
#include "testutil.h"

struct region {
	unsigned char *mem;
	struct ipc_fan_geom g;
};

static struct region
region_new(uint64_t nslots, uint64_t slot_size, uint64_t subs)
{
	struct region r;
	assert_int_equal(ipc_fan_geometry(nslots, slot_size, subs, &r.g), 0);
	r.mem = aligned_alloc(IPC_FAN_LINE, r.g.region);
	assert_non_null(r.mem);
	memset(r.mem, 0xa5, r.g.region);
	assert_int_equal(ipc_fan_format(r.mem, &r.g), 0);
	return r;
}

static long notified[64];
static long notified_pub;

static void
count_notify(void *ctx, long who)
{
	(void)ctx;
	if (who < 0) {
		notified_pub++;
	} else if (who < 64) {
		notified[who]++;
	}
}

static const struct ipc_fan_ops ops = {.notify = count_notify};

static void
publish(struct ipc_fan_pub *p, uint32_t v, size_t len)
{
	void *buf;
	long bad = -1;
	assert_int_equal(ipc_fan_reserve(p, len, &buf, &bad), 0);
	memset(buf, (int)(v & 0xff), len);
	if (len >= 4) {
		memcpy(buf, &v, 4);
	}
	assert_int_equal(ipc_fan_commit(p, len), 0);
}

static uint32_t
take(struct ipc_fan_sub *s)
{
	const void *buf;
	size_t len;
	uint32_t v;
	assert_int_equal(ipc_fan_acquire(s, &buf, &len), 0);
	assert_true(len >= 4);
	memcpy(&v, buf, 4);
	assert_int_equal(ipc_fan_release(s), 0);
	return v;
}

static void
sub_join(struct ipc_fan_pub *p, struct region *r, struct ipc_fan_sub *s,
         int drop)
{
	long i = ipc_fan_admit(p, drop, UINT64_MAX);
	assert_true(i >= 0);
	assert_int_equal(ipc_fan_sub_init(s, r->mem, &r->g, (uint64_t)i, drop,
	                                  &ops, NULL),
	                 0);
}

static void
t_geometry(void **state)
{
	(void)state;
	struct ipc_fan_geom g;
	assert_int_equal(ipc_fan_geometry(3, 64, 1, &g), -EINVAL);
	assert_int_equal(ipc_fan_geometry(1, 64, 1, &g), -EINVAL);
	assert_int_equal(ipc_fan_geometry(4, 64, 0, &g), -EINVAL);
	assert_int_equal(ipc_fan_geometry(4, 64, IPC_FAN_MAXSUBS + 1, &g),
	                 -EINVAL);
	assert_int_equal(
	        ipc_fan_geometry(IPC_FAN_MAXSLOTS, IPC_FAN_MAXSLOT, 1, &g),
	        -EINVAL); /* region too large */
	assert_int_equal(ipc_fan_geometry(16, 100, 1000, &g), 0);
	assert_int_equal(g.stride % 128, 0);
	assert_true(g.stride >= 116);
	assert_true(g.slots_off >= IPC_FAN_HDR + 1000 * IPC_FAN_ENTRY);
	assert_int_equal(g.region, g.slots_off + 16 * g.stride);
}

static void
t_every_sub_every_msg(void **state)
{
	(void)state;
	struct region r = region_new(8, 256, 4);
	struct ipc_fan_pub p;
	struct ipc_fan_sub s[3];
	long bad = -1;
	void *buf;
	assert_int_equal(ipc_fan_pub_init(&p, r.mem, &r.g, 0, &ops, NULL), 0);
	for (int i = 0; i < 3; i++) {
		sub_join(&p, &r, &s[i], 0);
	}
	assert_int_equal(p.nlive, 3);
	assert_int_equal(ipc_fan_admit(&p, 0, 0), 3);
	assert_int_equal(ipc_fan_admit(&p, 0, 0), -EUSERS);
	ipc_fan_evict(&p, 3);
	assert_int_equal(ipc_fan_reserve(&p, 257, &buf, &bad), -EMSGSIZE);
	for (uint32_t v = 0; v < 8; v++) {
		publish(&p, v, 4 + v);
	}
	/* Full: the slot of message 0 is still everybody's. */
	assert_int_equal(ipc_fan_reserve(&p, 4, &buf, &bad), -EAGAIN);
	assert_int_equal(ipc_fan_writable(&p, &bad), 0);
	/* The same bytes, in place, for everybody. */
	const void *b0, *b1;
	size_t l0, l1;
	assert_int_equal(ipc_fan_acquire(&s[0], &b0, &l0), 0);
	assert_int_equal(ipc_fan_acquire(&s[1], &b1, &l1), 0);
	assert_ptr_equal(b0, b1);
	assert_int_equal(l0, 4);
	assert_int_equal(ipc_fan_acquire(&s[0], &b0, &l0), -EBUSY);
	assert_int_equal(ipc_fan_release(&s[0]), 0);
	assert_int_equal(ipc_fan_release(&s[0]), -EINVAL);
	assert_int_equal(ipc_fan_release(&s[1]), 0);
	assert_int_equal(ipc_fan_reserve(&p, 4, &buf, &bad), -EAGAIN);
	assert_int_equal(take(&s[2]), 0);
	assert_int_equal(ipc_fan_writable(&p, &bad), 1);
	publish(&p, 8, 4);
	for (int i = 0; i < 3; i++) {
		for (uint32_t v = 1; v <= 8; v++) {
			assert_int_equal(take(&s[i]), v);
		}
		const void *b;
		size_t l;
		assert_int_equal(ipc_fan_acquire(&s[i], &b, &l), -EAGAIN);
		assert_int_equal(ipc_fan_readable(&s[i]), 0);
	}
	assert_int_equal(p.dropped, 0);
	ipc_fan_pub_close(&p);
	const void *b;
	size_t l;
	assert_int_equal(ipc_fan_acquire(&s[0], &b, &l), -EPIPE);
	assert_int_equal(ipc_fan_readable(&s[0]), 1);
	ipc_fan_pub_free(&p);
	free(r.mem);
}

static void
t_drop_counts(void **state)
{
	(void)state;
	struct region r = region_new(4, 64, 2);
	struct ipc_fan_pub p;
	struct ipc_fan_sub fast, slow;
	assert_int_equal(ipc_fan_pub_init(&p, r.mem, &r.g, 0, &ops, NULL), 0);
	sub_join(&p, &r, &fast, 0); /* policies mix: this one blocks */
	sub_join(&p, &r, &slow, 1);
	/* The slow one holds message 0: the publisher writes 0..3, then
	 * must not overwrite 0. */
	for (uint32_t v = 0; v < 4; v++) {
		publish(&p, v, 8);
		assert_int_equal(take(&fast), v);
	}
	const void *b;
	size_t l;
	assert_int_equal(ipc_fan_acquire(&slow, &b, &l), 0);
	void *buf;
	long bad = -1;
	assert_int_equal(ipc_fan_reserve(&p, 8, &buf, &bad), -EAGAIN);
	assert_int_equal(ipc_fan_release(&slow), 0);
	/* Now it lags without holding: 20 more go out, the fast one reads
	 * them all, the slow one loses all but the last nslots (none is
	 * being written now). */
	for (uint32_t v = 4; v < 24; v++) {
		publish(&p, v, 8);
		assert_int_equal(take(&fast), v);
	}
	uint32_t first = take(&slow);
	assert_int_equal(first, 24 - 4);
	assert_int_equal(slow.dropped, first - 1);
	assert_int_equal(take(&slow), first + 1);
	assert_int_equal(take(&slow), first + 2);
	assert_int_equal(take(&slow), first + 3);
	assert_int_equal(ipc_fan_acquire(&slow, &b, &l), -EAGAIN);
	assert_int_equal(fast.dropped, 0);
	ipc_fan_pub_free(&p);
	free(r.mem);
}

static void
t_history(void **state)
{
	(void)state;
	struct region r = region_new(8, 64, 2);
	struct ipc_fan_pub p;
	struct ipc_fan_sub s;
	assert_int_equal(ipc_fan_pub_init(&p, r.mem, &r.g, 8, &ops, NULL),
	                 -EINVAL); /* history must be < nslots */
	assert_int_equal(ipc_fan_pub_init(&p, r.mem, &r.g, 5, &ops, NULL), 0);
	publish(&p, 0, 8);
	publish(&p, 1, 8);
	assert_int_equal(p.dropped, 0); /* sent to nobody, kept */
	sub_join(&p, &r, &s, 0);        /* fewer than history: gets both */
	assert_int_equal(take(&s), 0);
	assert_int_equal(take(&s), 1);
	ipc_fan_evict(&p, 0);
	for (uint32_t v = 2; v < 30; v++) {
		publish(&p, v, 8); /* nobody: never waits */
	}
	assert_int_equal(p.dropped, 0);
	sub_join(&p, &r, &s, 0);
	for (uint32_t v = 25; v < 30; v++) {
		assert_int_equal(take(&s), v);
	}
	const void *b;
	size_t l;
	assert_int_equal(ipc_fan_acquire(&s, &b, &l), -EAGAIN);
	ipc_fan_pub_free(&p);
	free(r.mem);
}

/* A subscriber that holds a message and lags is evicted: the publisher
 * goes on, and every slot is written again afterwards. */
static void
t_evict_holder(void **state)
{
	(void)state;
	for (int drop = 0; drop < 2; drop++) {
		struct region r = region_new(4, 64, 2);
		struct ipc_fan_pub p;
		struct ipc_fan_sub live, dead;
		assert_int_equal(
		        ipc_fan_pub_init(&p, r.mem, &r.g, 0, &ops, NULL), 0);
		sub_join(&p, &r, &dead, drop);
		sub_join(&p, &r, &live, drop);
		for (uint32_t v = 0; v < 4; v++) {
			publish(&p, v, 8);
		}
		const void *b;
		size_t l;
		assert_int_equal(ipc_fan_acquire(&dead, &b, &l), 0);
		/* Sleeping and polling when it died: its counts go too. */
		assert_int_equal(ipc_fan_sub_arm(&dead), 1);
		for (uint32_t v = 0; v < 4; v++) {
			assert_int_equal(take(&live), v);
		}
		void *buf;
		long bad = -1;
		assert_int_equal(ipc_fan_reserve(&p, 8, &buf, &bad), -EAGAIN);
		ipc_fan_evict(&p, 0);
		assert_int_equal(p.nlive, 1);
		for (uint32_t v = 4; v < 4 + 3 * 4; v++) {
			publish(&p, v, 8);
			assert_int_equal(take(&live), v);
		}
		assert_int_equal(
		        atomic_load(
		                (_Atomic uint32_t
		                         *)(void *)(r.mem +
		                                    IPC_FAN_OFF_NOTIFIERS)),
		        0);
		/* The entry is reused for a newcomer, fresh. */
		struct ipc_fan_sub again;
		sub_join(&p, &r, &again, drop);
		publish(&p, 99, 8);
		assert_int_equal(take(&again), 99);
		assert_int_equal(take(&live), 99);
		ipc_fan_pub_free(&p);
		free(r.mem);
	}
}

static void
poke64(struct region *r, size_t off, uint64_t v)
{
	atomic_store((_Atomic uint64_t *)(void *)(r->mem + off), v);
}

static void
poke32(struct region *r, size_t off, uint32_t v)
{
	atomic_store((_Atomic uint32_t *)(void *)(r->mem + off), v);
}

/* Hostile values: a subscriber's cursor out of range is reported to the
 * publisher (which evicts it); a head, claim, slot number or length that
 * makes no sense fails the subscriber, never reads out of bounds. */
static void
t_hostile(void **state)
{
	(void)state;
	struct region r = region_new(4, 64, 2);
	struct ipc_fan_pub p;
	struct ipc_fan_sub s, t;
	void *buf;
	long bad = -1;
	const void *b;
	size_t l;
	assert_int_equal(ipc_fan_pub_init(&p, r.mem, &r.g, 0, &ops, NULL), 0);
	sub_join(&p, &r, &s, 0);
	sub_join(&p, &r, &t, 0);
	for (uint32_t v = 0; v < 4; v++) {
		publish(&p, v, 8);
	}
	size_t e1 = IPC_FAN_HDR + IPC_FAN_ENTRY;
	poke64(&r, e1 + IPC_FAN_E_CURSOR, 1000);
	assert_int_equal(take(&s), 0);
	assert_int_equal(ipc_fan_reserve(&p, 8, &buf, &bad), -EPROTO);
	assert_int_equal(bad, 1);
	ipc_fan_evict(&p, bad);
	assert_int_equal(ipc_fan_reserve(&p, 8, &buf, &bad), 0);
	assert_int_equal(ipc_fan_commit(&p, 8), 0);
	/* A slot length beyond the slot. */
	size_t slot1 = r.g.slots_off + 1 * r.g.stride;
	poke32(&r, slot1, 65);
	assert_int_equal(ipc_fan_acquire(&s, &b, &l), -EPROTO);
	assert_int_equal(ipc_fan_acquire(&s, &b, &l), -EPROTO); /* sticky */
	assert_int_equal(ipc_fan_readable(&s), 1);
	/* Head far ahead, or behind, of a subscriber's cursor. */
	struct ipc_fan_sub u;
	assert_int_equal(ipc_fan_sub_init(&u, r.mem, &r.g, 0, 0, &ops, NULL),
	                 0);
	u.cursor = 2;
	poke64(&r, IPC_FAN_OFF_HEAD, 100);
	assert_int_equal(ipc_fan_acquire(&u, &b, &l), -EPROTO);
	u.broken = 0;
	poke64(&r, IPC_FAN_OFF_HEAD, 1);
	assert_int_equal(ipc_fan_acquire(&u, &b, &l), -EPROTO);
	/* A slot that says another message number. */
	u.broken = 0;
	poke64(&r, IPC_FAN_OFF_HEAD, 3);
	poke64(&r, r.g.slots_off + 2 * r.g.stride + 8, 6);
	assert_int_equal(ipc_fan_acquire(&u, &b, &l), -EPROTO);
	/* slow=drop: a word that pushes the cursor beyond head, or back. */
	struct ipc_fan_sub d;
	assert_int_equal(ipc_fan_sub_init(&d, r.mem, &r.g, 0, 1, &ops, NULL),
	                 0);
	d.cursor = 1;
	poke64(&r, IPC_FAN_HDR + IPC_FAN_E_HOLD, 1000 << 1);
	assert_int_equal(ipc_fan_acquire(&d, &b, &l), -EPROTO);
	d.broken = 0;
	poke64(&r, IPC_FAN_HDR + IPC_FAN_E_HOLD, 0);
	assert_int_equal(ipc_fan_acquire(&d, &b, &l), -EPROTO);
	/* A header that does not describe the geometry told. */
	struct ipc_fan_geom g2 = r.g;
	g2.nslots = 8;
	assert_int_equal(ipc_fan_sub_init(&d, r.mem, &g2, 0, 0, &ops, NULL),
	                 -EPROTO);
	assert_int_equal(ipc_fan_sub_init(&d, r.mem, &r.g, 2, 0, &ops, NULL),
	                 -EINVAL);
	poke64(&r, IPC_FAN_OFF_MAGIC, 0);
	assert_int_equal(ipc_fan_sub_init(&d, r.mem, &r.g, 0, 0, &ops, NULL),
	                 -EPROTO);
	ipc_fan_pub_free(&p);
	free(r.mem);
}

static void
t_notify(void **state)
{
	(void)state;
	struct region r = region_new(4, 64, 2);
	struct ipc_fan_pub p;
	struct ipc_fan_sub s;
	long bad = -1;
	memset(notified, 0, sizeof(notified));
	notified_pub = 0;
	assert_int_equal(ipc_fan_pub_init(&p, r.mem, &r.g, 0, &ops, NULL), 0);
	sub_join(&p, &r, &s, 0);
	assert_int_equal(ipc_fan_sub_arm(&s), 0);
	assert_int_equal(ipc_fan_sub_arm(&s), 0); /* idempotent */
	publish(&p, 1, 8);
	assert_int_equal(notified[0], 1);
	publish(&p, 2, 8);
	assert_int_equal(notified[0], 1); /* once per arming */
	publish(&p, 3, 8);
	publish(&p, 4, 8);
	assert_int_equal(ipc_fan_pub_arm(&p, &bad), 0);
	assert_int_equal(take(&s), 1);
	assert_int_equal(notified_pub, 1);
	assert_int_equal(take(&s), 2);
	assert_int_equal(notified_pub, 1);
	assert_int_equal(ipc_fan_pub_arm(&p, &bad), 1);
	ipc_fan_pub_disarm(&p);
	assert_int_equal(ipc_fan_sub_arm(&s), 1);
	ipc_fan_pub_close(&p);
	assert_int_equal(notified[0], 2);
	ipc_fan_pub_free(&p);
	free(r.mem);
}

/* One wake-up per sleep, both ways.  A subscriber asleep (its flag set
 * and counted, as ipc_fan_sub_wait leaves them before the futex wait) is
 * woken by the first of 50 commits only: the publisher takes the flag, so
 * the 49 others make no system call.  The publisher asleep on its word is
 * woken by the first of two releases only. */
static void
t_one_wake_per_sleep(void **state)
{
	(void)state;
	struct region r = region_new(64, 64, 2);
	struct ipc_fan_pub p;
	struct ipc_fan_sub s;
	assert_int_equal(ipc_fan_pub_init(&p, r.mem, &r.g, 0, &ops, NULL), 0);
	sub_join(&p, &r, &s, 0);
	unsigned char *e = r.mem + IPC_FAN_HDR + 0 * IPC_FAN_ENTRY;
	_Atomic uint32_t *sleep =
	        (_Atomic uint32_t *)(void *)(e + IPC_FAN_E_SLEEP);
	_Atomic uint32_t *sleepers =
	        (_Atomic uint32_t *)(void *)(r.mem + IPC_FAN_OFF_SLEEPERS);
	_Atomic uint32_t *dwait =
	        (_Atomic uint32_t *)(void *)(r.mem + IPC_FAN_OFF_DWAIT);
	_Atomic uint32_t *pwait =
	        (_Atomic uint32_t *)(void *)(r.mem + IPC_FAN_OFF_PWAIT);
	atomic_store(sleep, 1);
	atomic_store(sleepers, 1);
	uint32_t d0 = atomic_load(dwait);
	for (uint32_t i = 0; i < 50; i++) {
		publish(&p, i, 8);
	}
	assert_int_equal(atomic_load(dwait) - d0, 1);
	assert_int_equal(atomic_load(sleepers), 0);
	assert_int_equal(atomic_load(sleep), 0);
	atomic_fetch_or(pwait, IPC_RING_SLEEP);
	uint32_t w0 = atomic_load(pwait);
	assert_int_equal(take(&s), 0);
	assert_int_equal(take(&s), 1);
	assert_int_equal((atomic_load(pwait) - (w0 & ~IPC_RING_SLEEP)) /
	                         IPC_RING_WAKE1,
	                 1);
	assert_int_equal(atomic_load(pwait) & IPC_RING_SLEEP, 0);
	ipc_fan_pub_close(&p);
	ipc_fan_pub_free(&p);
	free(r.mem);
}

/* ---- threads ---- */

#define NSUB 4

struct stream {
	struct region r;
	struct ipc_fan_pub p;
	int drop;
	uint64_t n;
	pthread_barrier_t go;
};

struct reader {
	struct stream *st;
	struct ipc_fan_sub s;
	uint64_t sum, got, lost, first;
	int drop;
	int err;
};

static uint64_t
mix(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	return v ^ (v >> 29);
}

static void *
reader_main(void *arg)
{
	struct reader *rd = arg;
	pthread_barrier_wait(&rd->st->go);
	uint64_t expect = 0;
	for (;;) {
		const void *b;
		size_t l;
		int r = ipc_fan_acquire(&rd->s, &b, &l);
		if (r == -EAGAIN) {
			ipc_fan_sub_wait(&rd->s, 2000, NULL);
			continue;
		}
		if (r == -EPIPE) {
			break;
		}
		if (r < 0 || l < 8) {
			rd->err = r < 0 ? r : -EBADMSG;
			break;
		}
		uint64_t v;
		memcpy(&v, b, 8);
		/* Every byte must match, also after a while (held = not
		 * overwritten, under slow=drop too). */
		const unsigned char *c = b;
		for (size_t i = 8; i < l; i++) {
			if (c[i] != (unsigned char)(v + i)) {
				rd->err = -EBADMSG;
			}
		}
		if (v < expect || (!rd->drop && v != expect)) {
			rd->err = -EBADMSG;
		}
		if (rd->got == 0) {
			rd->first = v; /* lost before: not counted */
		} else {
			rd->lost += v - expect;
		}
		expect = v + 1;
		rd->sum += mix(v);
		rd->got++;
		ipc_fan_release(&rd->s);
		if (rd->err) {
			break;
		}
	}
	return NULL;
}

static void
run_stream(int drop, uint64_t n)
{
	struct stream st;
	struct reader rd[NSUB];
	pthread_t th[NSUB];
	memset(&st, 0, sizeof(st));
	memset(rd, 0, sizeof(rd));
	st.r = region_new(16, 256, NSUB);
	st.drop = drop;
	st.n = n;
	assert_int_equal(
	        ipc_fan_pub_init(&st.p, st.r.mem, &st.r.g, 0, &ops, NULL), 0);
	pthread_barrier_init(&st.go, NULL, NSUB + 1);
	for (int i = 0; i < NSUB; i++) {
		rd[i].st = &st;
		rd[i].drop = drop && (i & 1) == 0; /* drop: half of them */
		sub_join(&st.p, &st.r, &rd[i].s, rd[i].drop);
		assert_int_equal(
		        pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	pthread_barrier_wait(&st.go);
	uint64_t sum = 0;
	for (uint64_t v = 0; v < n; v++) {
		void *buf;
		long bad = -1;
		size_t len = 8 + (size_t)(mix(v) % 240);
		int r;
		while ((r = ipc_fan_reserve(&st.p, len, &buf, &bad)) ==
		       -EAGAIN) {
			ipc_fan_pub_wait(&st.p, 2000, NULL);
		}
		assert_int_equal(r, 0);
		memcpy(buf, &v, 8);
		for (size_t i = 8; i < len; i++) {
			((unsigned char *)buf)[i] = (unsigned char)(v + i);
		}
		assert_int_equal(ipc_fan_commit(&st.p, len), 0);
		sum += mix(v);
	}
	ipc_fan_pub_close(&st.p);
	uint64_t lost = 0;
	for (int i = 0; i < NSUB; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rd[i].err, 0);
		if (!rd[i].drop) {
			assert_int_equal(rd[i].got, n);
			assert_true(rd[i].sum == sum);
		} else {
			assert_int_equal(rd[i].first + rd[i].got + rd[i].lost,
			                 n);
			assert_int_equal(rd[i].s.dropped, rd[i].lost);
			lost += n - rd[i].got;
		}
	}
	/* The publisher counts exactly what the slow=drop readers never
	 * got, also when a reader is lapped while the publisher waits for
	 * another one to let go of the slot. */
	if (st.p.dropped != lost) {
		fail_msg("publisher counted %llu dropped, readers lost %llu",
		         (unsigned long long)st.p.dropped,
		         (unsigned long long)lost);
	}
	pthread_barrier_destroy(&st.go);
	ipc_fan_pub_free(&st.p);
	free(st.r.mem);
}

static void
t_threads_block(void **state)
{
	(void)state;
	run_stream(0, (uint64_t)(200000 / tu_time_factor()));
}

static void
t_threads_drop(void **state)
{
	(void)state;
	run_stream(1, (uint64_t)(200000 / tu_time_factor()));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_geometry),
	        cmocka_unit_test(t_every_sub_every_msg),
	        cmocka_unit_test(t_drop_counts),
	        cmocka_unit_test(t_history),
	        cmocka_unit_test(t_evict_holder),
	        cmocka_unit_test(t_hostile),
	        cmocka_unit_test(t_notify),
	        cmocka_unit_test(t_one_wake_per_sleep),
	        cmocka_unit_test(t_threads_block),
	        cmocka_unit_test(t_threads_drop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
