/*
 * The fan-out ring: one publisher, any number of subscribers, one copy of
 * each message in shared memory that every subscriber reads in place
 * (shm:// publish/subscribe).  Like ring.h, the ring never maps memory or
 * finds peers: the driver does that and tells the ring who joined and who
 * died.
 *
 * Memory.  A region of ipc_fan_region_size(nslots, slot_size, max_subs)
 * bytes holds a header, a table of max_subs subscriber entries (128 bytes
 * each) and nslots slots of slot_size payload bytes (each after a 16-byte
 * slot header {u32 len, u32 pad, u64 seq}).  nslots is a power of two.
 * Messages are numbered 0, 1, 2...: message s lives in slot s & (nslots-1)
 * and the header's head says how many were published.
 *
 * References.  A subscriber's entry holds its cursor, the number of the
 * next message it will read: it holds references to every message from its
 * cursor to head, and releasing a message moves the cursor past it.  Under
 * slow=block the publisher reuses the slot of message s - nslots (to write
 * s) only when every live subscriber's cursor has passed it: the reference
 * count of a slot is the number of live cursors at or before it, read by
 * the publisher rather than stored, so that a dead subscriber's references
 * all go at once when the driver frees its entry (ipc_fan_evict), and no
 * count can leak.  The publisher caches the lowest cursor it saw and reads
 * the entries again only when that cache says the slot might be held.
 * Each subscriber chooses its policy when it is admitted.
 * Under slow=drop the publisher overwrites messages a subscriber has not
 * read yet, but never one it holds.  Such an entry's word (hold) is its
 * cursor shifted left by one, with bit 0 set while it holds the message
 * at its cursor.  The subscriber takes message c by a compare-and-swap
 * from c << 1 to c << 1 | 1 and lets go by storing (c + 1) << 1.  Before
 * writing message s the publisher looks at each slow=drop word: one that
 * holds s - nslots keeps the slot (-EAGAIN); one still at s - nslots, not
 * held, is pushed to s - nslots + 1 by a compare-and-swap, and the
 * publisher counts that loss.  Whichever compare-and-swap wins decides,
 * so a message is either read or counted lost by both sides, never one
 * only; the subscriber learns of its loss from its word having moved on
 * when it next acquires.
 *
 * Joining.  Only the publisher admits subscribers (ipc_fan_admit), between
 * its own calls, so a new entry's cursor (head minus history) is set while
 * nothing is being written.  Admitting writes one entry: no message is
 * copied.  The driver evicts an entry when its subscriber goes (a socket
 * hang-up); entries are reused.
 *
 * Waiting.  Subscribers sleep on one futex word (dwait) after setting
 * their entry's sleep flag and raising the shared sleeper count; while
 * that count is non-zero the publisher takes every set flag (lowering the
 * count), bumps dwait and wakes them all once, so a busy stream makes no
 * system call, and neither do the messages published while they wake.  A
 * subscriber that polls a descriptor sets its entry's notify flag and
 * raises the notifier count; the publisher then clears each set flag and
 * calls ops->notify(ctx, index).  The publisher sleeps on its own word
 * (pwait, the IPC_RING_SLEEP / IPC_RING_NOTIFY / IPC_RING_WAKE1 protocol of
 * ring.h), which a subscriber looks at after each release: the first
 * release to see IPC_RING_SLEEP takes it and wakes the publisher.
 *
 * Trust.  The subscribers may be hostile, and so may the publisher be to a
 * subscriber.  Each side keeps its own truth in private memory; every
 * index, length and count read from the region is checked before use: a
 * subscriber's cursor outside [head - nslots, head] makes the publisher
 * evict it (ipc_fan_reserve reports it through *bad); a head, word, slot
 * length or slot number that makes no sense makes a subscriber fail with
 * -EPROTO.  Counts (sleepers, notifiers) only ever cost a system call.
 *
 * Threads: one thread publishes; each subscriber view is used by one
 * thread at a time.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_FANRING_H
#define IPC_CORE_FANRING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define IPC_FAN_LINE      128u
#define IPC_FAN_HDR       (5u * IPC_FAN_LINE) /* header bytes */
#define IPC_FAN_ENTRY     128u                /* one subscriber entry */
#define IPC_FAN_SLOTHDR   16u
#define IPC_FAN_MAXSLOTS  (1u << 20)
#define IPC_FAN_MAXSUBS   (1u << 16)
#define IPC_FAN_MAXSLOT   (1ull << 30) /* payload bytes of one slot */
#define IPC_FAN_MAXREGION (1ull << 40)

/* Byte offsets of the shared fields (the cross-process layout; tests and
 * fuzzers poke at them). */
#define IPC_FAN_OFF_MAGIC     0u
#define IPC_FAN_OFF_NSLOTS    8u
#define IPC_FAN_OFF_SLOTSIZE  16u
#define IPC_FAN_OFF_MAXSUBS   24u
#define IPC_FAN_OFF_CLOSED    32u          /* u32: the publisher closed */
#define IPC_FAN_OFF_HEAD      IPC_FAN_LINE /* u64 */
#define IPC_FAN_OFF_DWAIT     (3u * IPC_FAN_LINE)      /* u32 futex word */
#define IPC_FAN_OFF_SLEEPERS  (3u * IPC_FAN_LINE + 4u) /* u32 */
#define IPC_FAN_OFF_NOTIFIERS (3u * IPC_FAN_LINE + 8u) /* u32 */
#define IPC_FAN_OFF_PWAIT     (4u * IPC_FAN_LINE)      /* u32 */
/* In an entry (at IPC_FAN_HDR + i * IPC_FAN_ENTRY): */
#define IPC_FAN_E_STATE   0u  /* u32, publisher-written: 1 live */
#define IPC_FAN_E_NOTIFY  4u  /* u32 */
#define IPC_FAN_E_CURSOR  8u  /* u64 */
#define IPC_FAN_E_HOLD    16u /* u64: cursor << 1 | held (drop) */
#define IPC_FAN_E_DROPPED 24u /* u64: what the subscriber skipped */
#define IPC_FAN_E_SLEEP   32u /* u32: asleep in ipc_fan_sub_wait (counted) */

struct ipc_fan_ops {
	/* Make a descriptor readable: subscriber `who`'s (who >= 0, called
	 * by the publisher) or the publisher's (who = -1, called by a
	 * subscriber).  May be NULL. */
	void (*notify)(void *ctx, long who);
};

struct ipc_fan_geom {
	uint64_t nslots, slot_size, max_subs;
	uint64_t stride, slots_off, region;
};

/* The publisher's private view. */
struct ipc_fan_pub {
	unsigned char *mem;
	struct ipc_fan_geom g;
	const struct ipc_fan_ops *ops;
	void *ctx;
	uint64_t history;    /* kept for late joiners, < nslots */
	uint64_t head;       /* messages published (private truth) */
	uint64_t gate;       /* every live cursor was >= gate */
	unsigned char *live; /* private: entry i is 0 free, 1 block, 2 drop */
	uint64_t nlive, hiwater; /* live entries; none at or above hiwater */
	uint64_t ndrop;          /* live entries under slow=drop */
	int reserved;
	uint64_t dropped; /* sent to nobody; missed by slow=drop ones */
};

/* A subscriber's private view. */
struct ipc_fan_sub {
	unsigned char *mem;
	struct ipc_fan_geom g;
	const struct ipc_fan_ops *ops;
	void *ctx;
	unsigned char *entry;
	int drop;
	int broken;      /* 0 or -EPROTO, sticky */
	uint64_t cursor; /* next message (private truth) */
	int held;
	int seen;         /* has had a message */
	uint64_t dropped; /* lost since its first message */
};

/* Check the parameters and compute the layout: 0 or -EINVAL. */
int ipc_fan_geometry(uint64_t nslots, uint64_t slot_size, uint64_t max_subs,
                     struct ipc_fan_geom *g);

/* Write an empty fan ring into mem (g->region bytes, 128-aligned, zeroed
 * or not).  Only the creator calls it, before anyone else sees it. */
int ipc_fan_format(void *mem, const struct ipc_fan_geom *g);

/* Bind the publisher's view (the region was formatted with g).  Returns
 * 0, -EINVAL, -ENOMEM. */
int ipc_fan_pub_init(struct ipc_fan_pub *p, void *mem,
                     const struct ipc_fan_geom *g, uint64_t history,
                     const struct ipc_fan_ops *ops, void *ctx);
void ipc_fan_pub_free(struct ipc_fan_pub *p);

/* A free entry for a new subscriber (slow=drop if drop), made live with
 * its cursor at head - min(history, p->history, head): its index, or
 * -EUSERS when all max_subs are taken. */
long ipc_fan_admit(struct ipc_fan_pub *p, int drop, uint64_t history);
/* The subscriber of entry i is gone: its references and cursor go. */
void ipc_fan_evict(struct ipc_fan_pub *p, long i);

/* Room for the next message (len <= slot_size): *buf in its slot.
 * Returns 0; -EAGAIN while a live subscriber keeps the slot (slow=block:
 * has not read the message in it; slow=drop: holds it); -EMSGSIZE;
 * -EBUSY (a reservation is open); -EPROTO with *bad set to an entry whose
 * cursor makes no sense (the caller evicts it and tries again). */
int ipc_fan_reserve(struct ipc_fan_pub *p, size_t len, void **buf, long *bad);
/* Publish the reserved message with its final length; wake and notify
 * the subscribers that asked.  0 or -EINVAL. */
int ipc_fan_commit(struct ipc_fan_pub *p, size_t len);
/* Would reserve succeed now (1), or return -EAGAIN (0)? */
int ipc_fan_writable(struct ipc_fan_pub *p, long *bad);
/* Spin up to spin_ns, then sleep until a subscriber released something,
 * `until` passed (-ETIMEDOUT) or a spurious wake-up (0).  Re-checks after
 * setting the flag; never sleeps when writable. */
int ipc_fan_pub_wait(struct ipc_fan_pub *p, uint64_t spin_ns,
                     const struct timespec *until);
/* Poll support: ask subscribers for ops->notify(-1) on their next
 * release; 1 if writable already. */
int ipc_fan_pub_arm(struct ipc_fan_pub *p, long *bad);
void ipc_fan_pub_disarm(struct ipc_fan_pub *p);
/* Mark the ring closed and wake every subscriber: they read what is
 * published, then get -EPIPE. */
void ipc_fan_pub_close(struct ipc_fan_pub *p);

/* Bind a subscriber's view to entry `index` of a region that should have
 * geometry g (told by the publisher; the header must agree).  0, -EINVAL
 * or -EPROTO. */
int ipc_fan_sub_init(struct ipc_fan_sub *s, void *mem,
                     const struct ipc_fan_geom *g, uint64_t index, int drop,
                     const struct ipc_fan_ops *ops, void *ctx);
/* The next message in place: 0 with *buf and *len (valid until release),
 * -EAGAIN, -EPIPE (published all and closed), -EPROTO, -EBUSY (held). */
int ipc_fan_acquire(struct ipc_fan_sub *s, const void **buf, size_t *len);
/* Let go of the held message.  0 or -EINVAL (none held). */
int ipc_fan_release(struct ipc_fan_sub *s);
/* Keep the held message for the next acquire (recv with a small buffer). */
void ipc_fan_unacquire(struct ipc_fan_sub *s);
/* Something to acquire (or the close, or corruption) now? */
int ipc_fan_readable(struct ipc_fan_sub *s);
/* Spin up to spin_ns, then sleep until published, closed, `until`
 * (-ETIMEDOUT) or a spurious wake-up (0). */
int ipc_fan_sub_wait(struct ipc_fan_sub *s, uint64_t spin_ns,
                     const struct timespec *until);
/* Poll support: ops->notify(index) on the next publication; 1 if
 * readable already. */
int ipc_fan_sub_arm(struct ipc_fan_sub *s);
/* Has the publisher closed? */
int ipc_fan_closed(const struct ipc_fan_sub *s);

#endif /* IPC_CORE_FANRING_H */
