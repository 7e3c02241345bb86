/*
 * The fan-out ring (fanring.h): one publisher, many subscribers reading
 * each message in place.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fanring.h"
#include "ring.h"
#include "ringchan.h"

#define FAN_MAGIC 0x316e6166636d6873ull /* "shmcfan1" */

#define U64(base, off) ((_Atomic uint64_t *)(void *)((base) + (off)))
#define U32(base, off) ((_Atomic uint32_t *)(void *)((base) + (off)))

static inline uint64_t
round_up(uint64_t n, uint64_t a)
{
	return (n + a - 1) & ~(a - 1);
}

static void
wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static inline unsigned char *
entry_of(unsigned char *mem, uint64_t i)
{
	return mem + IPC_FAN_HDR + i * IPC_FAN_ENTRY;
}

static inline unsigned char *
slot_of(unsigned char *mem, const struct ipc_fan_geom *g, uint64_t seq)
{
	return mem + g->slots_off + (seq & (g->nslots - 1)) * g->stride;
}

int
ipc_fan_geometry(uint64_t nslots, uint64_t slot_size, uint64_t max_subs,
                 struct ipc_fan_geom *g)
{
	if (nslots < 2 || nslots > IPC_FAN_MAXSLOTS ||
	    (nslots & (nslots - 1)) != 0 || slot_size > IPC_FAN_MAXSLOT ||
	    max_subs < 1 || max_subs > IPC_FAN_MAXSUBS) {
		return -EINVAL;
	}
	g->nslots = nslots;
	g->slot_size = slot_size;
	g->max_subs = max_subs;
	g->stride = round_up(IPC_FAN_SLOTHDR + slot_size, IPC_FAN_LINE);
	g->slots_off = round_up(IPC_FAN_HDR + max_subs * IPC_FAN_ENTRY, 4096);
	/* nslots <= 2^20 and stride <= 2^30 + 128: no overflow. */
	g->region = g->slots_off + nslots * g->stride;
	if (g->region > IPC_FAN_MAXREGION) {
		return -EINVAL;
	}
	return 0;
}

int
ipc_fan_format(void *mem, const struct ipc_fan_geom *g)
{
	unsigned char *m = mem;
	if (((uintptr_t)mem & (IPC_FAN_LINE - 1)) != 0) {
		return -EINVAL;
	}
	memset(m, 0, g->slots_off);
	*(uint64_t *)(void *)(m + IPC_FAN_OFF_NSLOTS) = g->nslots;
	*(uint64_t *)(void *)(m + IPC_FAN_OFF_SLOTSIZE) = g->slot_size;
	*(uint64_t *)(void *)(m + IPC_FAN_OFF_MAXSUBS) = g->max_subs;
	atomic_store(U64(m, IPC_FAN_OFF_MAGIC), FAN_MAGIC);
	return 0;
}

/* Does the header describe geometry g? */
static int
header_ok(unsigned char *m, const struct ipc_fan_geom *g)
{
	return atomic_load(U64(m, IPC_FAN_OFF_MAGIC)) == FAN_MAGIC &&
	       atomic_load(U64(m, IPC_FAN_OFF_NSLOTS)) == g->nslots &&
	       atomic_load(U64(m, IPC_FAN_OFF_SLOTSIZE)) == g->slot_size &&
	       atomic_load(U64(m, IPC_FAN_OFF_MAXSUBS)) == g->max_subs;
}

/* Poll ready(arg) for up to spin_ns (UINT64_MAX: no limit): 1 once it
 * says yes, 0 when the time is up. */
static int
spin(int (*ready)(void *), void *arg, uint64_t spin_ns)
{
	if (spin_ns == 0) {
		return 0;
	}
	uint64_t end = spin_ns == UINT64_MAX ? UINT64_MAX
	                                     : ipc__rchan_now_ns() + spin_ns;
	for (unsigned k = 0;; k++) {
		if (ready(arg)) {
			return 1;
		}
		ipc__cpu_relax();
		if ((k & 63) == 63 && ipc__rchan_now_ns() >= end) {
			return 0;
		}
	}
}

static int
pub_ready(void *arg)
{
	long bad;
	return ipc_fan_writable(arg, &bad);
}

static int
sub_ready(void *arg)
{
	return ipc_fan_readable(arg);
}

/* ---------------------------------------------------------- publisher -- */

int
ipc_fan_pub_init(struct ipc_fan_pub *p, void *mem,
                 const struct ipc_fan_geom *g, uint64_t history,
                 const struct ipc_fan_ops *ops, void *ctx)
{
	memset(p, 0, sizeof(*p));
	if (history >= g->nslots || !header_ok(mem, g)) {
		return -EINVAL;
	}
	p->live = calloc(g->max_subs, 1);
	if (p->live == NULL) {
		return -ENOMEM;
	}
	p->mem = mem;
	p->g = *g;
	p->history = history;
	p->ops = ops;
	p->ctx = ctx;
	p->head = atomic_load(U64(p->mem, IPC_FAN_OFF_HEAD));
	p->gate = p->head;
	return 0;
}

void
ipc_fan_pub_free(struct ipc_fan_pub *p)
{
	free(p->live);
	p->live = NULL;
}

long
ipc_fan_admit(struct ipc_fan_pub *p, int drop, uint64_t history)
{
	uint64_t i;
	for (i = 0; i < p->g.max_subs && p->live[i]; i++) {
	}
	if (i == p->g.max_subs) {
		return -EUSERS;
	}
	uint64_t back = history < p->history ? history : p->history;
	back = back < p->head ? back : p->head;
	uint64_t c = p->head - back;
	unsigned char *e = entry_of(p->mem, i);
	atomic_store(U64(e, IPC_FAN_E_CURSOR), c);
	atomic_store(U64(e, IPC_FAN_E_HOLD), c << 1);
	atomic_store(U64(e, IPC_FAN_E_DROPPED), 0);
	atomic_store(U32(e, IPC_FAN_E_NOTIFY), 0);
	atomic_store(U32(e, IPC_FAN_E_SLEEP), 0);
	atomic_store(U32(e, IPC_FAN_E_STATE), 1);
	p->live[i] = drop ? 2 : 1;
	p->nlive++;
	p->ndrop += drop ? 1 : 0;
	if (i + 1 > p->hiwater) {
		p->hiwater = i + 1;
	}
	if (c < p->gate) {
		p->gate = c;
	}
	return (long)i;
}

void
ipc_fan_evict(struct ipc_fan_pub *p, long i)
{
	if (i < 0 || (uint64_t)i >= p->g.max_subs || !p->live[i]) {
		return;
	}
	unsigned char *e = entry_of(p->mem, (uint64_t)i);
	atomic_store(U32(e, IPC_FAN_E_STATE), 0);
	/* Its flags were counted: take them out, once (the subscriber
	 * clears them with an exchange too). */
	if (atomic_exchange(U32(e, IPC_FAN_E_NOTIFY), 0)) {
		atomic_fetch_sub(U32(p->mem, IPC_FAN_OFF_NOTIFIERS), 1);
	}
	if (atomic_exchange(U32(e, IPC_FAN_E_SLEEP), 0)) {
		atomic_fetch_sub(U32(p->mem, IPC_FAN_OFF_SLEEPERS), 1);
	}
	p->ndrop -= p->live[i] == 2 ? 1 : 0;
	p->live[i] = 0;
	p->nlive--;
	while (p->hiwater > 0 && !p->live[p->hiwater - 1]) {
		p->hiwater--;
	}
}

/* The slow=drop entries before writing over message old: an entry that
 * has not taken old yet is pushed past it (its word goes from old << 1
 * to (old + 1) << 1 with one compare-and-swap, and the loss is counted
 * here, once); one that holds it keeps the slot.  The subscriber takes a
 * message with a compare-and-swap on the same word, so for each entry
 * and message exactly one side wins: the count is exact.  1 when no entry
 * holds old, 0 when one does, -EPROTO with *bad = an entry whose word
 * makes no sense. */
static int
push_drop(struct ipc_fan_pub *p, uint64_t old, long *bad)
{
	int ok = 1;
	for (uint64_t i = 0; i < p->hiwater; i++) {
		if (p->live[i] != 2) {
			continue;
		}
		_Atomic uint64_t *w = U64(entry_of(p->mem, i), IPC_FAN_E_HOLD);
		uint64_t v = atomic_load(w);
		for (;;) {
			uint64_t c = v >> 1;
			if (c > p->head || c < old) {
				*bad = (long)i;
				return -EPROTO;
			}
			if (c > old) {
				break; /* read old, or was pushed past it */
			}
			if (v & 1) {
				ok = 0; /* holds old */
				break;
			}
			if (atomic_compare_exchange_strong(w, &v,
			                                   (old + 1) << 1)) {
				p->dropped++;
				break;
			}
			/* It took old or moved on meanwhile: look again. */
		}
	}
	return ok;
}

/* May message s be written now (its slot's old message let go)?  1 yes,
 * 0 not yet, -EPROTO with *bad = an entry that makes no sense. */
static int
slot_free(struct ipc_fan_pub *p, long *bad)
{
	uint64_t s = p->head, n = p->g.nslots;
	if (s < n) {
		return 1;
	}
	uint64_t old = s - n;
	if (p->ndrop > 0) {
		int r = push_drop(p, old, bad);
		if (r <= 0) {
			return r;
		}
	}
	if (p->gate > old) {
		return 1;
	}
	uint64_t min = s;
	for (uint64_t i = 0; i < p->hiwater; i++) {
		if (p->live[i] != 1) {
			continue;
		}
		uint64_t c = atomic_load(
		        U64(entry_of(p->mem, i), IPC_FAN_E_CURSOR));
		if (c > s || c + n < s) {
			*bad = (long)i;
			return -EPROTO;
		}
		if (c < min) {
			min = c;
		}
	}
	p->gate = min;
	return min > old;
}

int
ipc_fan_reserve(struct ipc_fan_pub *p, size_t len, void **buf, long *bad)
{
	if (p->reserved) {
		return -EBUSY;
	}
	if (len > p->g.slot_size) {
		return -EMSGSIZE;
	}
	int r = slot_free(p, bad);
	if (r <= 0) {
		return r < 0 ? r : -EAGAIN;
	}
	*buf = slot_of(p->mem, &p->g, p->head) + IPC_FAN_SLOTHDR;
	p->reserved = 1;
	return 0;
}

/* Wake the subscribers asleep in ipc_fan_sub_wait, each once: their flags
 * are taken here, so the commits that follow while they wake up make no
 * system call (a sleeper whose flag is gone is awake or about to be). */
static void
wake_sleepers(struct ipc_fan_pub *p)
{
	int any = 0;
	for (uint64_t i = 0; i < p->hiwater; i++) {
		if (p->live[i] &&
		    atomic_exchange(U32(entry_of(p->mem, i), IPC_FAN_E_SLEEP),
		                    0) != 0) {
			atomic_fetch_sub(U32(p->mem, IPC_FAN_OFF_SLEEPERS), 1);
			any = 1;
		}
	}
	if (any) {
		atomic_fetch_add(U32(p->mem, IPC_FAN_OFF_DWAIT), 1);
		wake_all(U32(p->mem, IPC_FAN_OFF_DWAIT));
	}
}

int
ipc_fan_commit(struct ipc_fan_pub *p, size_t len)
{
	if (!p->reserved || len > p->g.slot_size) {
		return -EINVAL;
	}
	unsigned char *sl = slot_of(p->mem, &p->g, p->head);
	atomic_store_explicit(U32(sl, 0), (uint32_t)len, memory_order_relaxed);
	atomic_store_explicit(U64(sl, 8), p->head, memory_order_relaxed);
	p->reserved = 0;
	p->head++;
	atomic_store(U64(p->mem, IPC_FAN_OFF_HEAD), p->head);
	if (p->nlive == 0 && p->history == 0) {
		p->dropped++; /* sent to nobody, and not kept */
	}
	if (atomic_load(U32(p->mem, IPC_FAN_OFF_SLEEPERS)) != 0) {
		wake_sleepers(p);
	}
	if (atomic_load(U32(p->mem, IPC_FAN_OFF_NOTIFIERS)) != 0) {
		for (uint64_t i = 0; i < p->hiwater; i++) {
			_Atomic uint32_t *f =
			        U32(entry_of(p->mem, i), IPC_FAN_E_NOTIFY);
			if (p->live[i] && atomic_load(f) != 0 &&
			    atomic_exchange(f, 0) != 0) {
				atomic_fetch_sub(
				        U32(p->mem, IPC_FAN_OFF_NOTIFIERS), 1);
				if (p->ops != NULL && p->ops->notify != NULL) {
					p->ops->notify(p->ctx, (long)i);
				}
			}
		}
	}
	return 0;
}

int
ipc_fan_writable(struct ipc_fan_pub *p, long *bad)
{
	int r = slot_free(p, bad);
	return r < 0 ? 1 : r; /* a bad entry: reserve reports it */
}

int
ipc_fan_pub_wait(struct ipc_fan_pub *p, uint64_t spin_ns,
                 const struct timespec *until)
{
	_Atomic uint32_t *w = U32(p->mem, IPC_FAN_OFF_PWAIT);
	long bad;
	if (spin(pub_ready, p, spin_ns)) {
		return 0;
	}
	uint32_t v = atomic_fetch_or(w, IPC_RING_SLEEP) | IPC_RING_SLEEP;
	int r = 0;
	if (!ipc_fan_writable(p, &bad)) {
		r = ipc__ring_futex_wait(NULL, IPC_RING_PRODUCER, w, v, until);
	}
	atomic_fetch_and(w, ~IPC_RING_SLEEP);
	return r;
}

int
ipc_fan_pub_arm(struct ipc_fan_pub *p, long *bad)
{
	atomic_fetch_or(U32(p->mem, IPC_FAN_OFF_PWAIT), IPC_RING_NOTIFY);
	return ipc_fan_writable(p, bad);
}

void
ipc_fan_pub_disarm(struct ipc_fan_pub *p)
{
	atomic_fetch_and(U32(p->mem, IPC_FAN_OFF_PWAIT), ~IPC_RING_NOTIFY);
}

void
ipc_fan_pub_close(struct ipc_fan_pub *p)
{
	atomic_store(U32(p->mem, IPC_FAN_OFF_CLOSED), 1);
	atomic_fetch_add(U32(p->mem, IPC_FAN_OFF_DWAIT), 1);
	wake_all(U32(p->mem, IPC_FAN_OFF_DWAIT));
	for (uint64_t i = 0; i < p->hiwater; i++) {
		_Atomic uint32_t *f =
		        U32(entry_of(p->mem, i), IPC_FAN_E_NOTIFY);
		if (p->live[i] && atomic_exchange(f, 0) != 0) {
			atomic_fetch_sub(U32(p->mem, IPC_FAN_OFF_NOTIFIERS),
			                 1);
			if (p->ops != NULL && p->ops->notify != NULL) {
				p->ops->notify(p->ctx, (long)i);
			}
		}
	}
}

/* --------------------------------------------------------- subscriber -- */

static int
sub_fail(struct ipc_fan_sub *s)
{
	s->broken = -EPROTO;
	return -EPROTO;
}

int
ipc_fan_sub_init(struct ipc_fan_sub *s, void *mem,
                 const struct ipc_fan_geom *g, uint64_t index, int drop,
                 const struct ipc_fan_ops *ops, void *ctx)
{
	memset(s, 0, sizeof(*s));
	if (index >= g->max_subs) {
		return -EINVAL;
	}
	if (!header_ok(mem, g)) {
		return -EPROTO;
	}
	s->mem = mem;
	s->g = *g;
	s->entry = entry_of(s->mem, index);
	s->drop = drop;
	s->ops = ops;
	s->ctx = ctx;
	/* The publisher set our cursor before telling us the index. */
	s->cursor = atomic_load(U64(s->entry, IPC_FAN_E_CURSOR));
	return 0;
}

int
ipc_fan_closed(const struct ipc_fan_sub *s)
{
	return atomic_load(U32(s->mem, IPC_FAN_OFF_CLOSED)) != 0;
}

/* Under slow=drop: take message s->cursor (set the held bit of the
 * entry's word with a compare-and-swap), or learn that the publisher
 * pushed this subscriber past messages it overwrote (the word's cursor
 * moved on; what it skipped is counted as dropped).  *h is the head read
 * before.  Returns 1 when held, 0 when nothing is left, -EPROTO. */
static int
hold_next(struct ipc_fan_sub *s, uint64_t *h)
{
	_Atomic uint64_t *w = U64(s->entry, IPC_FAN_E_HOLD);
	uint64_t v = atomic_load(w);
	for (;;) {
		uint64_t c = v >> 1;
		if (c > *h) {
			/* Pushed after we read head: read it again. */
			*h = atomic_load(U64(s->mem, IPC_FAN_OFF_HEAD));
		}
		if (c < s->cursor || c > *h) {
			return sub_fail(s);
		}
		if (v & 1) {
			/* Still held since ipc_fan_unacquire. */
			return c == s->cursor ? 1 : sub_fail(s);
		}
		if (c > s->cursor) {
			if (s->seen) {
				/* Before its first message a subscriber
				 * counts nothing lost (as on every
				 * driver). */
				s->dropped += c - s->cursor;
			}
			atomic_store_explicit(U64(s->entry, IPC_FAN_E_DROPPED),
			                      s->dropped,
			                      memory_order_relaxed);
			s->cursor = c;
			atomic_store(U64(s->entry, IPC_FAN_E_CURSOR), c);
		}
		if (*h == s->cursor) {
			return 0;
		}
		if (atomic_compare_exchange_strong(w, &v, v | 1)) {
			return 1;
		}
		/* The publisher pushed us meanwhile: v is the new word. */
	}
}

int
ipc_fan_acquire(struct ipc_fan_sub *s, const void **buf, size_t *len)
{
	if (s->broken) {
		return s->broken;
	}
	if (s->held) {
		return -EBUSY;
	}
	uint64_t h = atomic_load(U64(s->mem, IPC_FAN_OFF_HEAD));
	if (h == s->cursor && ipc_fan_closed(s)) {
		/* Closed after publishing: look at head again. */
		h = atomic_load(U64(s->mem, IPC_FAN_OFF_HEAD));
		if (h == s->cursor) {
			return -EPIPE;
		}
	}
	if (h < s->cursor) {
		return sub_fail(s);
	}
	if (s->drop) {
		int r = hold_next(s, &h);
		if (r <= 0) {
			return r < 0 ? r : -EAGAIN;
		}
	} else if (h == s->cursor) {
		return -EAGAIN;
	} else if (h - s->cursor > s->g.nslots) {
		return sub_fail(s);
	}
	unsigned char *sl = slot_of(s->mem, &s->g, s->cursor);
	uint64_t n = atomic_load_explicit(U32(sl, 0), memory_order_relaxed);
	uint64_t seq = atomic_load_explicit(U64(sl, 8), memory_order_relaxed);
	if (seq != s->cursor || n > s->g.slot_size) {
		if (s->drop) {
			atomic_store(U64(s->entry, IPC_FAN_E_HOLD),
			             s->cursor << 1);
		}
		return sub_fail(s);
	}
	*buf = sl + IPC_FAN_SLOTHDR;
	*len = (size_t)n;
	s->held = 1;
	s->seen = 1;
	return 0;
}

int
ipc_fan_release(struct ipc_fan_sub *s)
{
	if (!s->held) {
		return -EINVAL;
	}
	s->held = 0;
	s->cursor++;
	atomic_store(U64(s->entry, IPC_FAN_E_CURSOR), s->cursor);
	if (s->drop) {
		/* The publisher never changes a held word: a store will do. */
		atomic_store(U64(s->entry, IPC_FAN_E_HOLD), s->cursor << 1);
	}
	_Atomic uint32_t *w = U32(s->mem, IPC_FAN_OFF_PWAIT);
	uint32_t v = atomic_load(w);
	/* The first release to see the publisher asleep takes its flag and
	 * wakes it; the next ones (it is waking up) make no system call. */
	if ((v & IPC_RING_SLEEP) &&
	    (atomic_fetch_and(w, ~IPC_RING_SLEEP) & IPC_RING_SLEEP)) {
		atomic_fetch_add(w, IPC_RING_WAKE1);
		ipc__ring_futex_wake(NULL, IPC_RING_PRODUCER, w);
	}
	if ((v & IPC_RING_NOTIFY) &&
	    (atomic_fetch_and(w, ~IPC_RING_NOTIFY) & IPC_RING_NOTIFY) &&
	    s->ops != NULL && s->ops->notify != NULL) {
		s->ops->notify(s->ctx, -1);
	}
	return 0;
}

void
ipc_fan_unacquire(struct ipc_fan_sub *s)
{
	s->held = 0;
}

int
ipc_fan_readable(struct ipc_fan_sub *s)
{
	if (s->broken || s->held) {
		return 1;
	}
	return atomic_load(U64(s->mem, IPC_FAN_OFF_HEAD)) != s->cursor ||
	       ipc_fan_closed(s);
}

static void
sub_unsleep(struct ipc_fan_sub *s)
{
	if (atomic_exchange(U32(s->entry, IPC_FAN_E_SLEEP), 0)) {
		atomic_fetch_sub(U32(s->mem, IPC_FAN_OFF_SLEEPERS), 1);
	}
}

int
ipc_fan_sub_wait(struct ipc_fan_sub *s, uint64_t spin_ns,
                 const struct timespec *until)
{
	if (spin(sub_ready, s, spin_ns)) {
		return 0;
	}
	_Atomic uint32_t *dw = U32(s->mem, IPC_FAN_OFF_DWAIT);
	if (atomic_exchange(U32(s->entry, IPC_FAN_E_SLEEP), 1) == 0) {
		atomic_fetch_add(U32(s->mem, IPC_FAN_OFF_SLEEPERS), 1);
	}
	uint32_t v = atomic_load(dw);
	int r = 0;
	if (!ipc_fan_readable(s)) {
		r = ipc__ring_futex_wait(NULL, IPC_RING_CONSUMER, dw, v,
		                         until);
	}
	sub_unsleep(s);
	return r;
}

int
ipc_fan_sub_arm(struct ipc_fan_sub *s)
{
	if (atomic_exchange(U32(s->entry, IPC_FAN_E_NOTIFY), 1) == 0) {
		atomic_fetch_add(U32(s->mem, IPC_FAN_OFF_NOTIFIERS), 1);
	}
	return ipc_fan_readable(s);
}
