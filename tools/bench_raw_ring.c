/*
 * ipc-bench raw rings: the floor of the shared-memory rows.  One
 * single-producer/single-consumer ring per direction in a shared mapping,
 * written the plain way: look, pause once, look again; after SPIN_NS of
 * looking, sleep (futex, or a System V semaphore for raw-sysvshm), or
 * never sleep (raw-busy-ring).
 *
 * Records are an 8-byte header (the length) and the payload, rounded up
 * to 16 bytes, never wrapping: a record that does not fit before the end
 * is preceded by a padding record.  head and tail count bytes forever;
 * each is written by one side only and sits on its own 128-byte line pair
 * (the adjacent-line prefetcher moves lines in pairs) with the other
 * side's "I am asleep" flag, which that side sets and this side clears
 * before waking it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "bench_raw.h"

#define RING_CAP   (4u << 20)
#define RING_ALIGN 16u
#define RING_PAD   0xffffffffu
#define SPIN_NS    50000 /* longer than a futex wake-up here (~6 us) */

struct ring {
	_Alignas(128) _Atomic uint64_t head; /* consumer's */
	_Atomic uint32_t prod_sleeps;        /* producer waits for room */
	_Alignas(128) _Atomic uint64_t tail; /* producer's */
	_Atomic uint32_t cons_sleeps;        /* consumer waits for data */
	_Alignas(128) unsigned char data[RING_CAP];
};

struct rings {
	struct ring r[2]; /* 0: A to B, 1: B to A */
	int semid;        /* RAW_RING_SYSV: 4 semaphores, one per flag */
};

struct ringep {
	struct rings *rs;
	struct ring *tx, *rx;
	uint64_t tail, head_seen; /* tx side, local copies */
	uint64_t head, tail_seen; /* rx side, local copies */
	enum raw_ring_kind kind;
};

static size_t
rec_size(size_t len)
{
	return (8 + len + RING_ALIGN - 1) & ~(size_t)(RING_ALIGN - 1);
}

/* The semaphore of a sleep flag: 2 per ring (producer, consumer). */
static unsigned short
flag_sem(struct ringep *e, _Atomic uint32_t *flag)
{
	for (unsigned short i = 0; i < 2; i++) {
		if (flag == &e->rs->r[i].prod_sleeps) {
			return (unsigned short)(2 * i);
		}
		if (flag == &e->rs->r[i].cons_sleeps) {
			return (unsigned short)(2 * i + 1);
		}
	}
	return 0;
}

static void
sleep_on(struct ringep *e, _Atomic uint32_t *flag)
{
	if (e->kind == RAW_RING_SYSV) {
		struct sembuf op = {flag_sem(e, flag), -1, 0};
		(void)semop(e->rs->semid, &op, 1);
		return;
	}
	syscall(SYS_futex, (uint32_t *)flag, FUTEX_WAIT, 1, NULL, NULL, 0);
}

/* After publishing: wake the other side if it sleeps. */
static void
ring_wake(struct ringep *e, _Atomic uint32_t *flag)
{
	if (e->kind == RAW_RING_BUSY) {
		return;
	}
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(flag, memory_order_relaxed) == 0 ||
	    atomic_exchange(flag, 0) == 0) {
		return;
	}
	if (e->kind == RAW_RING_SYSV) {
		struct sembuf op = {flag_sem(e, flag), 1, 0};
		(void)semop(e->rs->semid, &op, 1);
		return;
	}
	syscall(SYS_futex, (uint32_t *)flag, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Room for need bytes in tx? */
static int
have_room(struct ringep *e, size_t need)
{
	if (RING_CAP - (e->tail - e->head_seen) >= need) {
		return 1;
	}
	e->head_seen =
	        atomic_load_explicit(&e->tx->head, memory_order_acquire);
	return RING_CAP - (e->tail - e->head_seen) >= need;
}

/* Anything in rx? */
static int
have_data(struct ringep *e, size_t unused)
{
	(void)unused;
	if (e->head != e->tail_seen) {
		return 1;
	}
	e->tail_seen =
	        atomic_load_explicit(&e->rx->tail, memory_order_acquire);
	return e->head != e->tail_seen;
}

/* Wait until ready(e, arg): look, one pause, look again; after SPIN_NS
 * (sleeping rows) sleep on flag. */
static void
ring_wait(struct ringep *e, int (*ready)(struct ringep *, size_t), size_t arg,
          _Atomic uint32_t *flag)
{
	uint64_t t0 = 0;
	for (unsigned i = 1;; i++) {
		if (ready(e, arg)) {
			return;
		}
		bench_relax();
		if (e->kind == RAW_RING_BUSY || (i & 255) != 0) {
			continue;
		}
		uint64_t now = bench_now_ns();
		if (t0 == 0) {
			t0 = now;
		} else if (now - t0 >= SPIN_NS) {
			break;
		}
	}
	for (;;) {
		atomic_store_explicit(flag, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (ready(e, arg)) {
			atomic_store_explicit(flag, 0, memory_order_relaxed);
			return;
		}
		sleep_on(e, flag);
	}
}

static ssize_t
ring_send(void *ep, const void *buf, size_t len)
{
	struct ringep *e = ep;
	size_t rec = rec_size(len);
	if (rec > RING_CAP / 2) {
		return -EMSGSIZE;
	}
	size_t pos = (size_t)(e->tail & (RING_CAP - 1));
	size_t pad = RING_CAP - pos < rec ? RING_CAP - pos : 0;
	if (!have_room(e, pad + rec)) {
		ring_wait(e, have_room, pad + rec, &e->tx->prod_sleeps);
	}
	unsigned char *d = e->tx->data;
	if (pad > 0) {
		uint32_t p = RING_PAD;
		memcpy(d + pos, &p, 4);
		pos = 0;
	}
	uint32_t l = (uint32_t)len;
	memcpy(d + pos, &l, 4);
	memcpy(d + pos + 8, buf, len);
	e->tail += pad + rec;
	atomic_store_explicit(&e->tx->tail, e->tail, memory_order_release);
	ring_wake(e, &e->tx->cons_sleeps);
	return (ssize_t)len;
}

static ssize_t
ring_recv(void *ep, void *buf, size_t cap)
{
	struct ringep *e = ep;
	for (;;) {
		if (!have_data(e, 0)) {
			ring_wait(e, have_data, 0, &e->rx->cons_sleeps);
		}
		size_t pos = (size_t)(e->head & (RING_CAP - 1));
		const unsigned char *d = e->rx->data;
		uint32_t l;
		memcpy(&l, d + pos, 4);
		if (l == RING_PAD) {
			e->head += RING_CAP - pos;
			continue;
		}
		if (l > cap || rec_size(l) > RING_CAP - pos) {
			return -EMSGSIZE;
		}
		memcpy(buf, d + pos + 8, l);
		e->head += rec_size(l);
		atomic_store_explicit(&e->rx->head, e->head,
		                      memory_order_release);
		ring_wake(e, &e->rx->prod_sleeps);
		return (ssize_t)l;
	}
}

/* The mapping: anonymous shared memory, or (raw-sysvshm) a System V
 * segment and semaphore set, both private (IPC_PRIVATE) and marked for
 * removal at once so that nothing outlives the row. */
static int
ring_prepare(struct bench_env *e, const void *arg, char *why)
{
	enum raw_ring_kind k = *(const enum raw_ring_kind *)arg;
	void *p;
	if (k != RAW_RING_SYSV) {
		p = mmap(NULL, sizeof(struct rings), PROT_READ | PROT_WRITE,
		         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			return bench_why(why, BENCH_FAIL, "mmap: %s",
			                 strerror(errno));
		}
		((struct rings *)p)->semid = -1;
		e->state = p;
		return BENCH_OK;
	}
	int shmid =
	        shmget(IPC_PRIVATE, sizeof(struct rings), IPC_CREAT | 0600);
	if (shmid < 0) {
		return bench_why(why, BENCH_FAIL, "shmget: %s",
		                 strerror(errno));
	}
	p = shmat(shmid, NULL, 0);
	(void)shmctl(shmid, IPC_RMID, NULL);
	if (p == (void *)-1) {
		return bench_why(why, BENCH_FAIL, "shmat: %s",
		                 strerror(errno));
	}
	int semid = semget(IPC_PRIVATE, 4, IPC_CREAT | 0600);
	if (semid < 0) {
		int err = errno;
		shmdt(p);
		return bench_why(why, BENCH_FAIL, "semget: %s", strerror(err));
	}
	((struct rings *)p)->semid = semid; /* all four start at 0 */
	e->state = p;
	return BENCH_OK;
}

static int
ring_open(struct bench_env *env, const void *arg, int server, void **ep,
          char *why)
{
	struct rings *rs = env->state;
	struct ringep *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	e->kind = *(const enum raw_ring_kind *)arg;
	e->rs = rs;
	e->tx = &rs->r[server ? 0 : 1];
	e->rx = &rs->r[server ? 1 : 0];
	*ep = e;
	return BENCH_OK;
}

static size_t
ring_max_msg(void *ep)
{
	(void)ep;
	return RING_CAP / 2 - 64;
}

static void
ring_close(void *ep, int server)
{
	(void)server;
	free(ep);
}

static void
ring_cleanup(struct bench_env *e, const void *arg)
{
	struct rings *rs = e->state;
	if (rs == NULL) {
		return;
	}
	if (*(const enum raw_ring_kind *)arg == RAW_RING_SYSV) {
		(void)semctl(rs->semid, 0, IPC_RMID);
		shmdt(rs);
	} else {
		munmap(rs, sizeof(struct rings));
	}
	e->state = NULL;
}

const struct bench_ops bench_raw_ring_ops = {
        .prepare = ring_prepare,
        .open = ring_open,
        .send = ring_send,
        .recv = ring_recv,
        .max_msg = ring_max_msg,
        .close = ring_close,
        .cleanup = ring_cleanup,
};
