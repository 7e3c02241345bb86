/*
 * The shared-memory ring: one single-producer/single-consumer queue of
 * variable-length records in memory that two processes map.  Used by every
 * memory backend (shm://, and the System V and mapped-file drivers); the
 * backend chooses how the memory is mapped and how a side sleeps.
 *
 * Memory.  A ring lives in one caller-given region of
 * ipc_ring_region_size(size) bytes, aligned to IPC_RING_ALIGN (a page-
 * aligned mapping always is).  size, the data capacity, is a power of two
 * between IPC_RING_MIN and IPC_RING_MAX.  One side formats the region with
 * ipc_ring_format(); each side (the formatter too) then binds a private
 * struct ipc_ring to it with ipc_ring_attach() as either the producer or
 * the consumer.  The region may be in any shared mapping (memfd, System V
 * segment, regular file); the ring never maps, unmaps or frees it.
 *
 * Layout.  The region starts with a header of IPC_RING_HDR bytes: one
 * cache-line pair (128 bytes, so that the adjacent-line prefetcher does not
 * make them share) each for the constants and close flags, the producer's
 * index, the consumer's index, the consumer's wait flags and the producer's
 * wait flags.  The data area follows.  Indices are 64-bit byte counts that
 * only grow; position = index & (size - 1).  A record is a 16-byte header
 * {u32 len, u32 kind, u64 reserved} followed by len bytes, padded to 16
 * bytes, and never wraps: when a record does not fit before the end of the
 * data area the producer writes a WRAP record over the rest and starts
 * again at 0.  A payload pointer is therefore always 16-byte aligned and
 * contiguous, which is what makes reserve/acquire zero-copy.  The largest
 * payload is ipc_ring_max_msg(size) = size - 16.
 *
 * Trust.  The peer may be broken or hostile and may write anything into the
 * region at any time.  Each side keeps its own index in private memory and
 * never reads it back; the remote index and every record header are read
 * once into locals and checked (remote index within [own - size, own] for
 * the producer, [own, own + size] for the consumer; record kind, length
 * and placement within the published bytes and the data area).  A failed
 * check makes the ring return -EPROTO from then on.  Payload bytes are not
 * checked: they may change under a reader that holds them.  What the ring
 * cannot guard against is the mapping itself vanishing (a peer shrinking a
 * file): backends must prevent that (shm:// seals its memfd).
 *
 * Ordering.  Producer: write the record, publish head with a seq_cst
 * store, then load the consumer's wait flags; consumer: consume, publish
 * tail with a seq_cst store, then load the producer's wait flags.  A side
 * about to sleep sets its own flag with a seq_cst read-modify-write and
 * re-checks the ring before sleeping, so either it sees the new index or
 * the other side sees its flag.  The sleeper sets IPC_RING_SLEEP (and
 * clears it when it wakes); the first waker to see it takes it with a
 * read-modify-write, bumps the wake count in the same word
 * (IPC_RING_WAKE1), then wakes: a sleeper that has not entered ops->wait
 * yet then finds the word changed and looks again instead of sleeping
 * through a wake-up that came too early (no lost wake-up either way).  A
 * busy stream therefore costs no system call: the wake hook runs once per
 * sleep, not once per message sent while the sleeper is waking up.
 * The remote index is cached and re-read only when the cached value says
 * the ring is empty (consumer) or full (producer).
 *
 * Waiting is pluggable through struct ipc_ring_ops: a futex
 * (ipc__ring_futex_ops, the default), System V semaphores, or anything
 * that can sleep until woken or a deadline passes.  A second flag,
 * IPC_RING_NOTIFY, is for sides that wait in poll(2) on a descriptor
 * rather than in ops->wait: the other side clears it (read-modify-write)
 * and calls ops->notify once, so the descriptor is written once per arming.
 *
 * Threads: one thread may produce while another consumes; a struct
 * ipc_ring is used by one role and one thread at a time.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_RING_H
#define IPC_CORE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define IPC_RING_LINE  128u /* separation of independently written words */
#define IPC_RING_ALIGN 128u /* required alignment of a region */
#define IPC_RING_HDR   (5u * IPC_RING_LINE) /* header bytes before the data */
#define IPC_RING_REC   16u /* record header and record alignment */
#define IPC_RING_MIN   4096u
#define IPC_RING_MAX   (1ull << 30)

/* Byte offsets of the header fields in a region (the layout is part of
 * the cross-process contract; tests and fuzzers poke at them). */
#define IPC_RING_OFF_MAGIC   0u            /* u64 */
#define IPC_RING_OFF_SIZE    8u            /* u64 */
#define IPC_RING_OFF_PCLOSED 16u           /* u32: the producer closed */
#define IPC_RING_OFF_CCLOSED 20u           /* u32: the consumer closed */
#define IPC_RING_OFF_HEAD    IPC_RING_LINE /* u64 */
#define IPC_RING_OFF_TAIL    (2u * IPC_RING_LINE) /* u64 */
#define IPC_RING_OFF_CWAIT   (3u * IPC_RING_LINE) /* u32 */
#define IPC_RING_OFF_PWAIT   (4u * IPC_RING_LINE) /* u32 */

/* Bits of a wait-flag word. */
#define IPC_RING_SLEEP  0x1u /* owner is (about to be) asleep in ops->wait */
#define IPC_RING_NOTIFY 0x2u /* owner polls a descriptor: call ops->notify */
#define IPC_RING_FLAGS  0xffu
/* The rest of the word counts wake-ups: a waker adds IPC_RING_WAKE1 before
 * waking, so that a sleeper who set IPC_RING_SLEEP and looked at the ring
 * just before the waker published, but has not entered ops->wait yet, finds
 * the word changed and does not sleep (its wake-up came too early to find
 * it in the kernel).  Wraps harmlessly; never touches the flag bits. */
#define IPC_RING_WAKE1 0x100u

/* Who a wait/wake/notify is about: the side waiting for data or for room. */
enum ipc_ring_role {
	IPC_RING_CONSUMER = 0,
	IPC_RING_PRODUCER = 1,
};

struct ipc_ring_ops {
	/* Sleep while *word == val, until woken, a spurious wake-up, or the
	 * absolute CLOCK_MONOTONIC time `until` (NULL: no limit).  Returns 0
	 * or -ETIMEDOUT once `until` has passed.  `role` names whose flag
	 * word this is. */
	int (*wait)(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word,
	            uint32_t val, const struct timespec *until);
	/* Wake the side `role` sleeping on word (its IPC_RING_SLEEP is set).
	 */
	void (*wake)(void *ctx, enum ipc_ring_role role,
	             _Atomic uint32_t *word);
	/* The side `role` asked for IPC_RING_NOTIFY: make its descriptor
	 * readable.  May be NULL when no side ever sets IPC_RING_NOTIFY. */
	void (*notify)(void *ctx, enum ipc_ring_role role);
};

/* Futex waiting on the flag words (shared, not process-private futexes,
 * so the region may be mapped by several processes).  notify is NULL in
 * ipc__ring_futex_ops; a backend that offers descriptors builds its own
 * table from the two functions and its notify. */
int ipc__ring_futex_wait(void *ctx, enum ipc_ring_role role,
                         _Atomic uint32_t *word, uint32_t val,
                         const struct timespec *until);
void ipc__ring_futex_wake(void *ctx, enum ipc_ring_role role,
                          _Atomic uint32_t *word);
extern const struct ipc_ring_ops ipc__ring_futex_ops;

/* The shared header, for the record: backends use the functions below. */
struct ipc_ring_hdr;

/* One side's private view of a ring. */
struct ipc_ring {
	struct ipc_ring_hdr *hdr;
	unsigned char *data;
	uint64_t size, mask;
	int role;   /* enum ipc_ring_role */
	int broken; /* 0, or the sticky error (-EPROTO) */
	const struct ipc_ring_ops *ops;
	void *ctx;
	/* producer */
	uint64_t head;       /* next byte to write (private truth) */
	uint64_t tail_cache; /* last consumer index seen */
	uint64_t rsv_pos;    /* reserved record position (index) */
	uint64_t rsv_len;    /* bytes reserved */
	int reserved;
	/* consumer */
	uint64_t tail;       /* next byte to read (private truth) */
	uint64_t head_cache; /* last producer index seen */
	uint64_t cur_need;   /* bytes of the record handed out */
	int acquired;
};

/* The pause of a spin-wait loop. */
static inline void
ipc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* Bytes a region for a ring of `size` data bytes needs. */
static inline size_t
ipc_ring_region_size(size_t size)
{
	return IPC_RING_HDR + size;
}

/* Largest payload a ring of `size` data bytes carries. */
static inline size_t
ipc_ring_max_msg(size_t size)
{
	return size - IPC_RING_REC;
}

/* Is size a valid data capacity (power of two in [MIN, MAX])? */
int ipc_ring_size_ok(uint64_t size);

/* Write an empty ring into mem[0 .. ipc_ring_region_size(size)).  Only the
 * side that creates the region calls it, before the peer can see it.
 * Returns 0 or -EINVAL (bad size or misaligned mem). */
int ipc_ring_format(void *mem, size_t size);

/* Bind r to a formatted region as `role`.  `size` is what this side
 * expects (agreed out of band); the header must say the same.  ops/ctx
 * choose the waiting; the ring keeps the pointers.  Returns 0, -EINVAL
 * (bad arguments) or -EPROTO (the header does not describe such a ring). */
int ipc_ring_attach(struct ipc_ring *r, void *mem, size_t size,
                    enum ipc_ring_role role, const struct ipc_ring_ops *ops,
                    void *ctx);

/* ---- producer ---- */

/* Room for a record of len bytes: *buf points into the data area (16-byte
 * aligned).  Returns 0, -EAGAIN (not enough free room now), -EMSGSIZE (len
 * > ipc_ring_max_msg), -EPIPE (the consumer closed), -EPROTO (corrupt
 * consumer index), -EBUSY (a reservation is open).  Nothing is visible to
 * the consumer until ipc_ring_commit. */
int ipc_ring_reserve(struct ipc_ring *r, size_t len, void **buf);
/* Publish the reserved record with its final length (<= reserved).
 * Returns 0, or -EINVAL (nothing reserved, len too large). */
int ipc_ring_commit(struct ipc_ring *r, size_t len);
/* Drop an open reservation without publishing anything. */
void ipc_ring_unreserve(struct ipc_ring *r);
/* Could a record of len bytes be reserved now, or would reserve fail
 * without waiting (closed, broken)?  Refreshes the cached consumer index. */
int ipc_ring_writable(struct ipc_ring *r, size_t len);

/* ---- consumer ---- */

/* The next record, in place.  Returns 0 with *buf and *len set (valid until
 * ipc_ring_release), -EAGAIN (empty), -EPIPE (empty and the producer
 * closed), -EPROTO (corrupt ring), -EBUSY (a record is held). */
int ipc_ring_acquire(struct ipc_ring *r, const void **buf, size_t *len);
/* Free the held record.  Returns 0 or -EINVAL (none held). */
int ipc_ring_release(struct ipc_ring *r);
/* Give the held record back unread: the next acquire returns it again. */
void ipc_ring_unacquire(struct ipc_ring *r);

/* After ipc_ring_acquire gave (src, n): copy the record into buf[cap] and
 * release it, returning n; or, when it does not fit, put it back and
 * return -EMSGSIZE (recorded against uri).  The one copy of ipc_recv on
 * ring drivers. */
ssize_t ipc_ring_copy_out(struct ipc_ring *r, const void *src, size_t n,
                          void *buf, size_t cap, const char *uri);
/* Is there a record (or the producer's close) to see now?  Refreshes the
 * cached producer index; corrupt state counts as ready (acquire reports
 * it). */
int ipc_ring_readable(struct ipc_ring *r);

/* ---- both ---- */

/* Wait until readable (consumer) or writable for len bytes (producer):
 * spin for spin_ns nanoseconds (UINT64_MAX: spin until `until`, never
 * sleep), then set IPC_RING_SLEEP, re-check and sleep in ops->wait.
 * until: absolute CLOCK_MONOTONIC limit, NULL for none.  Returns 0 when
 * the ring may be ready (or was woken), -ETIMEDOUT at `until`. */
int ipc_ring_wait(struct ipc_ring *r, size_t len, uint64_t spin_ns,
                  const struct timespec *until);

/* Ask for ops->notify on the next change (IPC_RING_NOTIFY on our flag
 * word).  Returns 1 if the ring is already ready (readable, or writable
 * for len bytes), else 0.  Cheap and idempotent. */
int ipc_ring_arm_notify(struct ipc_ring *r, size_t len);
/* Is our IPC_RING_NOTIFY still set (nobody has notified since arming)? */
int ipc_ring_notify_armed(const struct ipc_ring *r);
/* Withdraw IPC_RING_NOTIFY. */
void ipc_ring_disarm_notify(struct ipc_ring *r);

/* Mark our side closed and wake the other side if it waits.  Producer:
 * the consumer drains what was committed, then gets -EPIPE.  Consumer:
 * the producer gets -EPIPE from reserve. */
void ipc_ring_close(struct ipc_ring *r);
/* Has the other side closed? */
int ipc_ring_peer_closed(const struct ipc_ring *r);

/* ---- persistent regions (mmap://) ---- */

/* A region in a file outlives its users.  Before a new user takes `role`,
 * clear what the last user of that role left: its close flag and its wait
 * flags.  Only the side that is about to own the role calls it. */
void ipc_ring_reset_role(void *mem, enum ipc_ring_role role);

/* Cut a formatted region of `size` data bytes back to what is sound, while
 * nobody has it attached (after a crash or a power loss): walk the records
 * from the consumer index towards the producer index and set the producer
 * index to the end of the last well-formed record lying wholly within the
 * first `valid` bytes of the data area (what a truncated file kept; the
 * rest reads as zeros).  Indices that make no sense empty the ring at the
 * consumer index, or format it when that index is unusable too.  Returns
 * the number of bytes dropped (0: nothing), or -EPROTO if the header does
 * not describe a ring of `size` (the caller formats it). */
long long ipc_ring_repair(void *mem, size_t size, uint64_t valid);

#endif /* IPC_CORE_RING_H */
