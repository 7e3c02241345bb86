/*
 * The shared-memory SPSC ring (see ring.h for the layout, the trust model
 * and the ordering argument).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "driver.h"
#include "ring.h"

#if ATOMIC_LLONG_LOCK_FREE != 2 || ATOMIC_INT_LOCK_FREE != 2
#error "the ring needs lock-free 32- and 64-bit atomics"
#endif

#define RING_MAGIC 0x676e6972637069ull /* "ipcring" */
#define REC_DATA   0x41544144u         /* "DATA" */
#define REC_WRAP   0x50415257u         /* "WRAP" */

struct ipc_ring_hdr {
	/* Constants, and the close flags (written once). */
	uint64_t magic;
	uint64_t size;
	_Atomic uint32_t prod_closed;
	_Atomic uint32_t cons_closed;
	unsigned char pad0[IPC_RING_LINE - 24];
	/* Producer index: written by the producer only. */
	_Atomic uint64_t head;
	unsigned char pad1[IPC_RING_LINE - 8];
	/* Consumer index: written by the consumer only. */
	_Atomic uint64_t tail;
	unsigned char pad2[IPC_RING_LINE - 8];
	/* The consumer's wait flags (IPC_RING_SLEEP is the consumer's). */
	_Atomic uint32_t cons_wait;
	unsigned char pad3[IPC_RING_LINE - 4];
	/* The producer's wait flags (IPC_RING_SLEEP is the producer's). */
	_Atomic uint32_t prod_wait;
	unsigned char pad4[IPC_RING_LINE - 4];
};

_Static_assert(sizeof(struct ipc_ring_hdr) == IPC_RING_HDR,
               "ring header layout");
_Static_assert(
        offsetof(struct ipc_ring_hdr, prod_closed) == IPC_RING_OFF_PCLOSED &&
                offsetof(struct ipc_ring_hdr, cons_closed) ==
                        IPC_RING_OFF_CCLOSED &&
                offsetof(struct ipc_ring_hdr, head) == IPC_RING_OFF_HEAD &&
                offsetof(struct ipc_ring_hdr, tail) == IPC_RING_OFF_TAIL &&
                offsetof(struct ipc_ring_hdr, cons_wait) ==
                        IPC_RING_OFF_CWAIT &&
                offsetof(struct ipc_ring_hdr, prod_wait) == IPC_RING_OFF_PWAIT,
        "ring header offsets");

struct rec {
	uint32_t len;
	uint32_t kind;
	uint64_t reserved;
};

_Static_assert(sizeof(struct rec) == IPC_RING_REC, "record header layout");

static inline uint64_t
rec_need(uint64_t len)
{
	return IPC_RING_REC + ((len + IPC_RING_REC - 1) & ~(uint64_t)15);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec < 0) {
		return 0;
	}
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static int
fail(struct ipc_ring *r)
{
	r->broken = -EPROTO;
	return -EPROTO;
}

static inline _Atomic uint32_t *
own_word(const struct ipc_ring *r)
{
	return r->role == IPC_RING_CONSUMER ? &r->hdr->cons_wait
	                                    : &r->hdr->prod_wait;
}

/* The other side published an index and saw flags w on the word of
 * `role`: wake it and/or notify it. */
static void
signal_side(struct ipc_ring *r, _Atomic uint32_t *word, uint32_t w,
            enum ipc_ring_role role)
{
	/* The first waker takes the sleeper's flag: while it wakes up, the
	 * next messages make no system call. */
	if ((w & IPC_RING_SLEEP) &&
	    (atomic_fetch_and(word, ~IPC_RING_SLEEP) & IPC_RING_SLEEP)) {
		atomic_fetch_add(word, IPC_RING_WAKE1);
		r->ops->wake(r->ctx, role, word);
	}
	if ((w & IPC_RING_NOTIFY) &&
	    (atomic_fetch_and(word, ~IPC_RING_NOTIFY) & IPC_RING_NOTIFY) &&
	    r->ops->notify != NULL) {
		r->ops->notify(r->ctx, role);
	}
}

int
ipc_ring_size_ok(uint64_t size)
{
	return size >= IPC_RING_MIN && size <= IPC_RING_MAX &&
	       (size & (size - 1)) == 0;
}

int
ipc_ring_format(void *mem, size_t size)
{
	if (mem == NULL || !ipc_ring_size_ok(size) ||
	    ((uintptr_t)mem % IPC_RING_ALIGN) != 0) {
		return -EINVAL;
	}
	struct ipc_ring_hdr *h = mem;
	memset(h, 0, sizeof(*h));
	h->magic = RING_MAGIC;
	h->size = size;
	atomic_store(&h->head, 0);
	atomic_store(&h->tail, 0);
	return 0;
}

int
ipc_ring_attach(struct ipc_ring *r, void *mem, size_t size,
                enum ipc_ring_role role, const struct ipc_ring_ops *ops,
                void *ctx)
{
	memset(r, 0, sizeof(*r));
	if (mem == NULL || ops == NULL || ops->wait == NULL ||
	    ops->wake == NULL || !ipc_ring_size_ok(size) ||
	    ((uintptr_t)mem % IPC_RING_ALIGN) != 0 ||
	    (role != IPC_RING_CONSUMER && role != IPC_RING_PRODUCER)) {
		return -EINVAL;
	}
	struct ipc_ring_hdr *h = mem;
	const volatile uint64_t *vm = &h->magic, *vs = &h->size;
	if (*vm != RING_MAGIC || *vs != size) {
		return -EPROTO;
	}
	/* Resume from the published indices (zero on a fresh ring; a
	 * persistent ring continues where its last users stopped). */
	uint64_t head = atomic_load(&h->head), tail = atomic_load(&h->tail);
	if (head - tail > size || (head % IPC_RING_REC) != 0 ||
	    (tail % IPC_RING_REC) != 0) {
		return -EPROTO;
	}
	r->hdr = h;
	r->data = (unsigned char *)mem + IPC_RING_HDR;
	r->size = size;
	r->mask = size - 1;
	r->role = role;
	r->ops = ops;
	r->ctx = ctx;
	r->head = head;
	r->tail_cache = tail;
	r->tail = tail;
	r->head_cache = head;
	return 0;
}

/* ------------------------------------------------------------ producer -- */

static int
refresh_tail(struct ipc_ring *r)
{
	uint64_t t = atomic_load(&r->hdr->tail);
	if (r->head - t > r->size) {
		return fail(r);
	}
	r->tail_cache = t;
	return 0;
}

static void
publish_head(struct ipc_ring *r)
{
	atomic_store(&r->hdr->head, r->head);
	uint32_t w = atomic_load(&r->hdr->cons_wait);
	if (w & IPC_RING_FLAGS) {
		signal_side(r, &r->hdr->cons_wait, w, IPC_RING_CONSUMER);
	}
}

static void
put_rec(struct ipc_ring *r, uint64_t pos, uint32_t len, uint32_t kind)
{
	volatile struct rec *rc = (volatile struct rec *)(r->data + pos);
	rc->len = len;
	rc->kind = kind;
	rc->reserved = 0;
}

/* 2: a record of `need` bytes fits now; 1: it does not, but a WRAP record
 * that brings the producer back to 0 fits; 0: neither. */
static int
room(const struct ipc_ring *r, uint64_t need)
{
	uint64_t used = r->head - r->tail_cache;
	uint64_t till_end = r->size - (r->head & r->mask);
	if (need <= till_end) {
		return used + need <= r->size ? 2 : 0;
	}
	if (used + till_end + need <= r->size) {
		return 2;
	}
	return used + till_end <= r->size ? 1 : 0;
}

int
ipc_ring_reserve(struct ipc_ring *r, size_t len, void **buf)
{
	if (r->broken) {
		return r->broken;
	}
	if (r->reserved) {
		return -EBUSY;
	}
	if (len > ipc_ring_max_msg(r->size)) {
		return -EMSGSIZE;
	}
	if (atomic_load_explicit(&r->hdr->cons_closed, memory_order_relaxed)) {
		return -EPIPE;
	}
	uint64_t need = rec_need(len);
	for (;;) {
		int st = room(r, need);
		if (st < 2) {
			if (refresh_tail(r) != 0) {
				return -EPROTO;
			}
			st = room(r, need);
		}
		if (st == 0) {
			return -EAGAIN;
		}
		uint64_t pos = r->head & r->mask;
		uint64_t till_end = r->size - pos;
		if (need > till_end) {
			/* Pad to the end and publish that alone, so the
			 * consumer can free it even if the record itself must
			 * wait for more room. */
			put_rec(r, pos, (uint32_t)(till_end - IPC_RING_REC),
			        REC_WRAP);
			r->head += till_end;
			publish_head(r);
			continue;
		}
		r->rsv_pos = r->head;
		r->rsv_len = len;
		r->reserved = 1;
		*buf = r->data + pos + IPC_RING_REC;
		return 0;
	}
}

int
ipc_ring_commit(struct ipc_ring *r, size_t len)
{
	if (!r->reserved || len > r->rsv_len) {
		return -EINVAL;
	}
	put_rec(r, r->rsv_pos & r->mask, (uint32_t)len, REC_DATA);
	r->head = r->rsv_pos + rec_need(len);
	r->reserved = 0;
	publish_head(r);
	return 0;
}

void
ipc_ring_unreserve(struct ipc_ring *r)
{
	r->reserved = 0;
}

int
ipc_ring_writable(struct ipc_ring *r, size_t len)
{
	if (r->broken ||
	    atomic_load_explicit(&r->hdr->cons_closed, memory_order_relaxed)) {
		return 1;
	}
	if (len > ipc_ring_max_msg(r->size)) {
		return 1; /* reserve fails at once */
	}
	uint64_t need = rec_need(len);
	if (room(r, need) == 2) {
		return 1;
	}
	if (refresh_tail(r) != 0) {
		return 1;
	}
	return room(r, need) > 0;
}

/* ------------------------------------------------------------ consumer -- */

static int
refresh_head(struct ipc_ring *r)
{
	uint64_t h = atomic_load(&r->hdr->head);
	if (h - r->tail > r->size || (h % IPC_RING_REC) != 0) {
		return fail(r);
	}
	r->head_cache = h;
	return 0;
}

static void
publish_tail(struct ipc_ring *r)
{
	atomic_store(&r->hdr->tail, r->tail);
	uint32_t w = atomic_load(&r->hdr->prod_wait);
	if (w & IPC_RING_FLAGS) {
		signal_side(r, &r->hdr->prod_wait, w, IPC_RING_PRODUCER);
	}
}

int
ipc_ring_acquire(struct ipc_ring *r, const void **buf, size_t *len)
{
	if (r->broken) {
		return r->broken;
	}
	if (r->acquired) {
		return -EBUSY;
	}
	for (;;) {
		if (r->tail == r->head_cache) {
			if (refresh_head(r) != 0) {
				return -EPROTO;
			}
			if (r->head_cache == r->tail) {
				if (!atomic_load(&r->hdr->prod_closed)) {
					return -EAGAIN;
				}
				/* The producer's last commit precedes its
				 * close: look again before reporting it. */
				if (refresh_head(r) != 0) {
					return -EPROTO;
				}
				if (r->head_cache == r->tail) {
					return -EPIPE;
				}
			}
		}
		uint64_t pos = r->tail & r->mask;
		uint64_t till_end = r->size - pos;
		uint64_t avail = r->head_cache - r->tail;
		const volatile struct rec *rc =
		        (const volatile struct rec *)(r->data + pos);
		uint32_t rlen = rc->len, kind = rc->kind;
		if (kind == REC_WRAP) {
			if (till_end > avail) {
				return fail(r);
			}
			r->tail += till_end;
			publish_tail(r);
			continue;
		}
		uint64_t need = rec_need(rlen);
		if (kind != REC_DATA || need > till_end || need > avail) {
			return fail(r);
		}
		r->cur_need = need;
		r->acquired = 1;
		*buf = r->data + pos + IPC_RING_REC;
		*len = rlen;
		return 0;
	}
}

int
ipc_ring_release(struct ipc_ring *r)
{
	if (!r->acquired) {
		return -EINVAL;
	}
	r->acquired = 0;
	r->tail += r->cur_need;
	publish_tail(r);
	return 0;
}

void
ipc_ring_unacquire(struct ipc_ring *r)
{
	r->acquired = 0;
}

int
ipc_ring_readable(struct ipc_ring *r)
{
	if (r->broken || r->tail != r->head_cache) {
		return 1;
	}
	if (refresh_head(r) != 0 || r->head_cache != r->tail) {
		return 1;
	}
	return atomic_load(&r->hdr->prod_closed) != 0;
}

/* ---------------------------------------------------------------- both -- */

static int
ready(struct ipc_ring *r, size_t len)
{
	return r->role == IPC_RING_CONSUMER ? ipc_ring_readable(r)
	                                    : ipc_ring_writable(r, len);
}

int
ipc_ring_wait(struct ipc_ring *r, size_t len, uint64_t spin_ns,
              const struct timespec *until)
{
	if (ready(r, len)) {
		return 0;
	}
	uint64_t lim = until != NULL ? ts_ns(until) : UINT64_MAX;
	if (spin_ns > 0) {
		/* The clock is read every 64 looks only, the first time
		 * after 64 looks: data that comes at once costs no clock
		 * read (over 100 ns in some virtual machines). */
		uint64_t start = 0;
		for (unsigned i = 1;; i++) {
			/* One pause per look, no backoff: a longer pause only
			 * delays seeing the peer's index (the raw rings of
			 * ipc-bench look as often). */
			ipc__cpu_relax();
			if (ready(r, len)) {
				return 0;
			}
			if ((i & 63) == 0) {
				uint64_t t = now_ns();
				if (start == 0) {
					start = t;
				}
				if (t >= lim) {
					return -ETIMEDOUT;
				}
				if (spin_ns != UINT64_MAX &&
				    t - start >= spin_ns) {
					break;
				}
			}
		}
	}
	_Atomic uint32_t *word = own_word(r);
	uint32_t w = atomic_fetch_or(word, IPC_RING_SLEEP) | IPC_RING_SLEEP;
	int rc = 0;
	if (!ready(r, len)) {
		rc = r->ops->wait(r->ctx, (enum ipc_ring_role)r->role, word, w,
		                  until);
	}
	atomic_fetch_and(word, ~IPC_RING_SLEEP);
	return rc == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

int
ipc_ring_arm_notify(struct ipc_ring *r, size_t len)
{
	atomic_fetch_or(own_word(r), IPC_RING_NOTIFY);
	return ready(r, len);
}

int
ipc_ring_notify_armed(const struct ipc_ring *r)
{
	return (atomic_load(own_word(r)) & IPC_RING_NOTIFY) != 0;
}

void
ipc_ring_disarm_notify(struct ipc_ring *r)
{
	atomic_fetch_and(own_word(r), ~IPC_RING_NOTIFY);
}

void
ipc_ring_close(struct ipc_ring *r)
{
	struct ipc_ring_hdr *h = r->hdr;
	if (h == NULL) {
		return;
	}
	if (r->role == IPC_RING_PRODUCER) {
		atomic_store(&h->prod_closed, 1);
		uint32_t w = atomic_load(&h->cons_wait);
		if (w & IPC_RING_FLAGS) {
			signal_side(r, &h->cons_wait, w, IPC_RING_CONSUMER);
		}
	} else {
		atomic_store(&h->cons_closed, 1);
		uint32_t w = atomic_load(&h->prod_wait);
		if (w & IPC_RING_FLAGS) {
			signal_side(r, &h->prod_wait, w, IPC_RING_PRODUCER);
		}
	}
}

int
ipc_ring_peer_closed(const struct ipc_ring *r)
{
	if (r->hdr == NULL) {
		return 0;
	}
	return atomic_load(r->role == IPC_RING_PRODUCER
	                           ? &r->hdr->cons_closed
	                           : &r->hdr->prod_closed) != 0;
}

/* --------------------------------------------------- persistent regions -- */

void
ipc_ring_reset_role(void *mem, enum ipc_ring_role role)
{
	struct ipc_ring_hdr *h = mem;
	if (role == IPC_RING_PRODUCER) {
		atomic_store(&h->prod_closed, 0);
		atomic_store(&h->prod_wait, 0);
	} else {
		atomic_store(&h->cons_closed, 0);
		atomic_store(&h->cons_wait, 0);
	}
}

long long
ipc_ring_repair(void *mem, size_t size, uint64_t valid)
{
	struct ipc_ring_hdr *h = mem;
	if (!ipc_ring_size_ok(size) || h->magic != RING_MAGIC ||
	    h->size != size) {
		return -EPROTO;
	}
	if (valid > size) {
		valid = size;
	}
	const unsigned char *data = (const unsigned char *)mem + IPC_RING_HDR;
	uint64_t mask = size - 1;
	uint64_t tail = atomic_load(&h->tail), head = atomic_load(&h->head);
	if ((tail % IPC_RING_REC) != 0) {
		return -EPROTO;
	}
	if ((head % IPC_RING_REC) != 0 || head - tail > size) {
		atomic_store(&h->head, tail);
		return 1;
	}
	uint64_t pos = tail;
	while (pos != head) {
		uint64_t p = pos & mask, till_end = size - p;
		const struct rec *rc = (const struct rec *)(data + p);
		uint64_t need;
		if (p + IPC_RING_REC > valid) {
			break;
		}
		if (rc->kind == REC_WRAP) {
			need = till_end;
		} else if (rc->kind == REC_DATA) {
			need = rec_need(rc->len);
			if (need > till_end || p + need > valid) {
				break;
			}
		} else {
			break;
		}
		if (need > head - pos) {
			break;
		}
		pos += need;
	}
	atomic_store(&h->head, pos);
	return (long long)(head - pos);
}

/* --------------------------------------------------------------- futex -- */

int
ipc__ring_futex_wait(void *ctx, enum ipc_ring_role role,
                     _Atomic uint32_t *word, uint32_t val,
                     const struct timespec *until)
{
	(void)ctx;
	(void)role;
	long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, until, NULL,
	                  FUTEX_BITSET_MATCH_ANY);
	if (rc == -1 && errno == ETIMEDOUT) {
		return -ETIMEDOUT;
	}
	return 0;
}

void
ipc__ring_futex_wake(void *ctx, enum ipc_ring_role role,
                     _Atomic uint32_t *word)
{
	(void)ctx;
	(void)role;
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

const struct ipc_ring_ops ipc__ring_futex_ops = {
        .wait = ipc__ring_futex_wait,
        .wake = ipc__ring_futex_wake,
        .notify = NULL,
};

ssize_t
ipc_ring_copy_out(struct ipc_ring *r, const void *src, size_t n, void *buf,
                  size_t cap, const char *uri)
{
	if (n > cap) {
		ipc_ring_unacquire(r);
		return ipc__err_msgsize(uri, n, cap);
	}
	if (n > 0) {
		memcpy(buf, src, n);
	}
	ipc_ring_release(r);
	return (ssize_t)n;
}
