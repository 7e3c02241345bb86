/*
 * What sysvmq:// and sysvshm:// share: keys derived from the channel name,
 * and the System V semaphore set that every such channel has beside its
 * queue or segment (same key, since System V keys are per object type).
 *
 * Keys.  For kind K ("sysvmq", "sysvshm") and NAME, probe i (0..7) uses
 *   key_i = fold32(FNV-1a-64("libipc:K:NAME") mixed with i), never 0
 * and the set stores a tag in four semaphores of 15 bits: 45 bits of a
 * second FNV-1a-64 of the same string (other offset basis), and 15 bits
 * hashed from K and the key alone (sv_tag_key), by which a tool that does
 * not know the name (ipc-cat --list) recognises a libipc set and its kind.  A
 * creator takes the first probe whose key is free (or holds its own stale
 * channel); a set whose tag differs, or that has another size, belongs to
 * somebody else and the next probe is tried.  An opener looks at all probes
 * for its tag.  So two names whose keys collide, or a foreign object on the
 * key, cost a probe, never a mixed channel.
 *
 * The set.  Per side (creator 0, opener 1):
 *   SLOT   1 while free; the side claims it with -1 and SEM_UNDO, so the
 *          kernel frees it when the process dies.  Live = 0.
 *   PIDLO, PIDHI  its pid in two 15-bit halves (0: never arrived).
 *   RXW, TXW      what the side waits on to receive / to send; the driver
 *          decides the meaning (sysvmq: units in flight and credit;
 *          sysvshm: doorbells).
 * plus CONF (a driver parameter) and TAG0..3.  When a side arrives it adds
 * w and subtracts w with SEM_UNDO on the peer's RXW and TXW in one
 * operation: no change now, but its death adds w to both and wakes a peer
 * that waits on either.  Closing adds w with SEM_UNDO: the same wake, and
 * nothing left for the kernel to undo.  The set is ready once sem_otime is
 * set (the creator's claim); the last side to close removes the objects;
 * a creator that finds both slots free (and the set ready, or unready for
 * over SV_INIT_GRACE seconds) reclaims them.
 *
 * Only static functions: included by sysvmq.c and sysvshm.c.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_BACKENDS_SYSV_SEM_H
#define IPC_BACKENDS_SYSV_SEM_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/proc.h"
#include "core/trust.h"

#define SV_PROBES     8
#define SV_INIT_GRACE 5 /* seconds a set may stay unready while created */
#define SV_SEMVMX     32767

enum {
	SV_SLOT = 0,  /* + side */
	SV_PIDLO = 2, /* + side */
	SV_PIDHI = 4, /* + side */
	SV_RXW = 6,   /* + side */
	SV_TXW = 8,   /* + side */
	SV_CONF = 10,
	SV_TAG = 11, /* 4 semaphores */
	SV_NSEMS = 15,
};

#define SV_CREATOR 0
#define SV_OPENER  1

union sv_semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct sv_ids {
	key_t key;
	int semid;
	unsigned short tag[4];
};

static inline uint64_t
sv_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static inline uint64_t
sv_hash(const char *kind, const char *name, uint64_t basis)
{
	uint64_t h = sv_fnv(basis, "libipc:", 7);

	h = sv_fnv(h, kind, strlen(kind));
	h = sv_fnv(h, ":", 1);
	return sv_fnv(h, name, strlen(name));
}

static inline key_t
sv_key(const char *kind, const char *name, unsigned probe)
{
	unsigned char p = (unsigned char)probe;
	uint64_t h = sv_fnv(sv_hash(kind, name, 0xcbf29ce484222325ull), &p, 1);
	uint32_t k = (uint32_t)(h ^ (h >> 32)) & 0x7fffffffu;

	return (key_t)(k == 0 ? 1 : k);
}

static inline void
sv_tag(const char *kind, const char *name, unsigned short tag[4])
{
	uint64_t h = sv_hash(kind, name, 0x84222325cbf29ce4ull);

	for (int i = 0; i < 4; i++) {
		tag[i] = (unsigned short)((h >> (15 * i)) & 0x7fff);
	}
	tag[0] |= 1; /* never all zero: an unready set is all zero */
}

/* Read the set's values.  A set found on a key is foreign until proven
 * ours, and semctl(GETALL) writes as many values as the set has, whatever
 * buffer it is given: a planted set of 300 semaphores would overrun v.  So
 * GETALL is never used: the size is checked (IPC_STAT; another size is
 * -EPROTO, nothing read) and each value is read with GETVAL, which the
 * kernel bounds by the set's real size.  Values can change between two
 * GETVALs (a peer claims its slot and writes its pid in one semop), so the
 * set is read until two passes agree on everything but the wait counters
 * (v holds one of the two). */
/* Do two reads agree on what says who is there (slots, pids, conf, tag)?
 * RXW and TXW are wait counters that move with every message, so they
 * are left out: a busy channel would never read the same twice. */
static inline int
sv_same_identity(const unsigned short *a, const unsigned short *b)
{
	for (int i = 0; i < SV_NSEMS; i++) {
		if (i >= SV_RXW && i <= SV_TXW + 1) {
			continue;
		}
		if (a[i] != b[i]) {
			return 0;
		}
	}
	return 1;
}

static inline int
sv_getall(int semid, unsigned short v[SV_NSEMS])
{
	struct semid_ds ds;
	union sv_semun st = {.buf = &ds};
	unsigned short w[SV_NSEMS];

	if (semctl(semid, 0, IPC_STAT, st) < 0) {
		return -errno;
	}
	if (ds.sem_nsems != SV_NSEMS) {
		errno = EPROTO;
		return -EPROTO;
	}
	for (int pass = 0; pass < 64; pass++) {
		unsigned short *dst = pass % 2 ? w : v;
		for (int i = 0; i < SV_NSEMS; i++) {
			int x = semctl(semid, i, GETVAL);
			if (x < 0) {
				return -errno;
			}
			dst[i] = (unsigned short)x;
		}
		if (pass > 0 && sv_same_identity(v, w)) {
			return 0;
		}
	}
	errno = EAGAIN;
	return -EAGAIN;
}

/* Is the peer's slot still held (a live peer, once it has arrived)?  The
 * liveness look of a channel whose peer is known: one GETVAL, which the
 * kernel bounds by the set's real size (checked when the channel was
 * opened), instead of a whole consistent read (sv_getall, 2 x SV_NSEMS + 1
 * system calls) on every empty receive.  0 once the slot is free or the
 * set is removed. */
static inline int
sv_peer_held(int semid, int side)
{
	return semctl(semid, SV_SLOT + 1 - side, GETVAL) == 0;
}

/* TAG[3]: a function of the kind and the key only.  Set for each probe. */
static inline unsigned short
sv_keytag(const char *kind, key_t key)
{
	uint32_t k = (uint32_t)key;
	uint64_t h = sv_fnv(0x84222325cbf29ce4ull, "libipc-key:", 11);

	h = sv_fnv(h, kind, strlen(kind));
	h = sv_fnv(h, &k, sizeof(k));
	return (unsigned short)((h ^ (h >> 15) ^ (h >> 30)) & 0x7fff);
}

static inline void
sv_tag_key(unsigned short tag[4], const char *kind, key_t key)
{
	tag[3] = sv_keytag(kind, key);
}

static inline int
sv_tag_ok(const unsigned short v[SV_NSEMS], const unsigned short tag[4])
{
	for (int i = 0; i < 4; i++) {
		if (v[SV_TAG + i] != tag[i]) {
			return 0;
		}
	}
	return 1;
}

static inline pid_t
sv_pid(const unsigned short v[SV_NSEMS], int side)
{
	return (pid_t)(v[SV_PIDLO + side] |
	               ((unsigned)v[SV_PIDHI + side] << 15));
}

static inline int
sv_semop(int semid, struct sembuf *ops, size_t n)
{
	int r;

	do {
		r = semop(semid, ops, n);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* Add w now and -w with SEM_UNDO to sem (in ops[0..1]): nothing changes,
 * but this process's death adds w. */
static inline size_t
sv_arm(struct sembuf *ops, int sem, short w)
{
	ops[0] = (struct sembuf){(unsigned short)sem, w, IPC_NOWAIT};
	ops[1] = (struct sembuf){(unsigned short)sem, (short)-w,
	                         IPC_NOWAIT | SEM_UNDO};
	return 2;
}

/* The set's state for a creator that found the key taken. */
enum sv_found { SV_FOREIGN, SV_INUSE, SV_STALE, SV_GONE };

static inline enum sv_found
sv_inspect(int semid, const unsigned short tag[4])
{
	unsigned short v[SV_NSEMS];
	struct semid_ds ds;
	union sv_semun a = {.buf = &ds};

	if (semctl(semid, 0, IPC_STAT, a) < 0) {
		return errno == EINVAL || errno == EIDRM ? SV_GONE
		                                         : SV_FOREIGN;
	}
	if (ds.sem_nsems != SV_NSEMS || sv_getall(semid, v) < 0) {
		return SV_FOREIGN;
	}
	if (ds.sem_otime == 0) {
		/* Unready: being created, or its creator died doing it. */
		int zero = 1;
		for (int i = 0; i < SV_NSEMS; i++) {
			zero &= v[i] == 0 || i < SV_TAG;
		}
		if (!zero && !sv_tag_ok(v, tag)) {
			return SV_FOREIGN;
		}
		return time(NULL) - ds.sem_ctime > SV_INIT_GRACE ? SV_STALE
		                                                 : SV_INUSE;
	}
	if (!sv_tag_ok(v, tag)) {
		return SV_FOREIGN;
	}
	if (v[SV_SLOT + SV_CREATOR] == 1 && v[SV_SLOT + SV_OPENER] == 1) {
		return SV_STALE;
	}
	return SV_INUSE;
}

/* Does the owner of a System V object found on a key pass t?  Its
 * creator (cuid) and its owner (uid, which IPC_SET may change) must both
 * be trusted.  Fills c with the creator.  0 or -EACCES (recorded). */
static inline int
sv_trust(const struct ipc_perm *p, const struct ipc_trust *t, const char *uri,
         struct ipc_cred *c)
{
	struct ipc_cred o = {1, 0, p->uid, p->gid};
	int r;

	*c = (struct ipc_cred){1, 0, p->cuid, p->cgid};
	r = ipc__trust_check(t, uri, "the channel's creator", c);
	if (r == 0 && (p->uid != p->cuid || p->gid != p->cgid)) {
		r = ipc__trust_check(t, uri, "the channel's owner", &o);
	}
	return r;
}

/* Find the ready set of this name (an opener).  A set on a key is
 * foreign until proven ours: its owner passes t before anything is read
 * from it, then its size and tag are checked.  Returns the probe index
 * with ids filled and *creator set, or -ENOENT / -EACCES (recorded). */
static inline int
sv_find(struct sv_ids *ids, const char *kind, const char *name,
        const struct ipc_trust *t, const char *uri, struct ipc_cred *creator)
{
	int err = -ENOENT;
	struct ipc_cred refused = {0};

	sv_tag(kind, name, ids->tag);
	for (unsigned i = 0; i < SV_PROBES; i++) {
		unsigned short v[SV_NSEMS];
		struct semid_ds ds;
		union sv_semun a = {.buf = &ds};
		struct ipc_cred c;
		key_t key = sv_key(kind, name, i);
		sv_tag_key(ids->tag, kind, key);
		int id = semget(key, SV_NSEMS, 0);
		if (id < 0 || semctl(id, 0, IPC_STAT, a) < 0) {
			if (errno == EACCES) {
				err = -EACCES;
			}
			continue;
		}
		if (sv_trust(&ds.sem_perm, t, uri, &c) < 0) {
			refused = c;
			if (ds.sem_perm.uid != ds.sem_perm.cuid &&
			    ipc__trust_check(t, uri, "", &c) == 0) {
				refused.uid = ds.sem_perm.uid;
			}
			continue;
		}
		if (sv_getall(id, v) < 0) {
			if (errno == EACCES) {
				err = -EACCES;
			}
			continue;
		}
		if (sv_tag_ok(v, ids->tag)) {
			int p = semctl(id, SV_PIDLO + SV_CREATOR, GETPID);
			ids->key = key;
			ids->semid = id;
			*creator = c;
			creator->pid = p > 0 ? p : 0;
			return (int)i;
		}
	}
	if (refused.known) {
		return ipc__trust_check(t, uri, "the channel's creator",
		                        &refused);
	}
	return err == -EACCES ? ipc__err(err, uri, "permission denied")
	                      : ipc__err(err, uri, "no such channel");
}

/* ipc_peer_cred of a System V channel: c once the peer is known (up or
 * gone, unless refused). */
static inline int
sv_peer_cred(int up, int refused, const struct ipc_cred *c, const char *uri,
             pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ipc_cred none = {0};

	if (up && !refused && !c->known) {
		return ipc__err(-ESRCH, uri,
		                "ipc_peer_cred: the peer was gone before it "
		                "could be identified");
	}
	return ipc__cred_out(up && !refused ? c : &none, uri, pid, uid, gid);
}

/* The opener of a set (a creator's peer): its pid as the kernel saw its
 * claim (GETPID of the semaphore it wrote), and its ids from /proc. */
static inline int
sv_opener_cred(int semid, struct ipc_cred *c)
{
	int pid = semctl(semid, SV_PIDLO + SV_OPENER, GETPID);

	*c = (struct ipc_cred){0};
	if (pid <= 0) {
		return -ESRCH;
	}
	return ipc__cred_pid(pid, c);
}

/* An opener found the set: is it ready, with a live creator and no peer
 * yet?  Fills v.  Returns 0, or the error to report. */
static inline int
sv_check_open(int semid, unsigned short v[SV_NSEMS], const char *uri)
{
	struct semid_ds ds;
	union sv_semun a = {.buf = &ds};

	if (semctl(semid, 0, IPC_STAT, a) < 0 || sv_getall(semid, v) < 0) {
		if (errno == EACCES) {
			return ipc__err(-EACCES, uri, "permission denied");
		}
		return ipc__err(-ENOENT, uri, "channel was just removed");
	}
	if (ds.sem_otime == 0) {
		return ipc__err(-ENOENT, uri,
		                "channel is still being created");
	}
	if (sv_pid(v, SV_OPENER) != 0) {
		return ipc__err(-ECONNREFUSED, uri,
		                "channel already has its peer (one opener per "
		                "channel)");
	}
	if (v[SV_SLOT + SV_CREATOR] != 0) {
		return ipc__err(-ECONNREFUSED, uri,
		                "the creator of this channel is gone");
	}
	return 0;
}

/* Fill a new set: both slots free, the creator's pid, conf, the tag, and
 * initial RXW/TXW values for both sides.  Not yet ready (no semop). */
static inline int
sv_setall(const struct sv_ids *ids, unsigned short conf, unsigned short rxw,
          unsigned short txw)
{
	unsigned short v[SV_NSEMS] = {0};
	pid_t pid = getpid();
	union sv_semun a = {.array = v};

	v[SV_SLOT + SV_CREATOR] = v[SV_SLOT + SV_OPENER] = 1;
	v[SV_PIDLO + SV_CREATOR] = (unsigned short)(pid & 0x7fff);
	v[SV_PIDHI + SV_CREATOR] = (unsigned short)((pid >> 15) & 0x7fff);
	v[SV_RXW + 0] = v[SV_RXW + 1] = rxw;
	v[SV_TXW + 0] = v[SV_TXW + 1] = txw;
	v[SV_CONF] = conf;
	memcpy(&v[SV_TAG], ids->tag, sizeof(ids->tag));
	return semctl(ids->semid, 0, SETALL, a) < 0 ? -errno : 0;
}

/* Claim our slot and arm the death wake-ups of the peer's waits.  The
 * opener also requires a live creator and a slot never used before, and
 * writes its pid.  Returns 0, -EAGAIN (refused: see the values), or
 * another -errno. */
static inline int
sv_claim(int semid, int side, short wrx, short wtx)
{
	struct sembuf ops[12];
	size_t n = 0;
	int peer = 1 - side;

	ops[n++] = (struct sembuf){(unsigned short)(SV_SLOT + side), -1,
	                           IPC_NOWAIT | SEM_UNDO};
	n += sv_arm(&ops[n], SV_RXW + peer, wrx);
	n += sv_arm(&ops[n], SV_TXW + peer, wtx);
	if (side == SV_OPENER) {
		pid_t pid = getpid();
		ops[n++] =
		        (struct sembuf){SV_SLOT + SV_CREATOR, 0, IPC_NOWAIT};
		ops[n++] =
		        (struct sembuf){SV_PIDLO + SV_OPENER, 0, IPC_NOWAIT};
		ops[n++] =
		        (struct sembuf){SV_PIDHI + SV_OPENER, 0, IPC_NOWAIT};
		ops[n++] = (struct sembuf){SV_PIDLO + SV_OPENER,
		                           (short)(pid & 0x7fff), IPC_NOWAIT};
		ops[n++] = (struct sembuf){SV_PIDHI + SV_OPENER,
		                           (short)((pid >> 15) & 0x7fff),
		                           IPC_NOWAIT};
	}
	int r = sv_semop(semid, ops, n);
	return r == -ERANGE ? -EAGAIN : r;
}

/* Give our slot back and wake the peer (cancels the SEM_UNDO of claim). */
static inline void
sv_release(int semid, int side, short wrx, short wtx)
{
	int peer = 1 - side;
	struct sembuf slot = {(unsigned short)(SV_SLOT + side), 1,
	                      IPC_NOWAIT | SEM_UNDO};
	struct sembuf rx = {(unsigned short)(SV_RXW + peer), wrx,
	                    IPC_NOWAIT | SEM_UNDO};
	struct sembuf tx = {(unsigned short)(SV_TXW + peer), wtx,
	                    IPC_NOWAIT | SEM_UNDO};

	/* One at a time: a wake that would overflow must not keep the
	 * slot. */
	(void)sv_semop(semid, &rx, 1);
	(void)sv_semop(semid, &tx, 1);
	(void)sv_semop(semid, &slot, 1);
}

/* After our release: is the peer's slot free too (we are the last)? */
static inline int
sv_peer_free(int semid, int side)
{
	int v = semctl(semid, SV_SLOT + 1 - side, GETVAL);

	return v != 0; /* 1 free; -1 removed already */
}

/* semtimedop until the absolute monotonic deadline dl (NULL: none),
 * sleeping at most cap_ms.  Returns 0 (done or woken), -ETIMEDOUT (dl
 * passed), -EAGAIN (cap reached), or -errno (set removed). */
static inline int
sv_timedwait(int semid, struct sembuf *ops, size_t n,
             const struct timespec *dl, int cap_ms)
{
	int rem = ipc__remaining_ms(dl);
	int t = rem < 0 || rem > cap_ms ? cap_ms : rem;
	struct timespec ts = {t / 1000, (long)(t % 1000) * 1000000L};

	if (dl != NULL && rem == 0) {
		return -ETIMEDOUT;
	}
	if (semtimedop(semid, ops, n, &ts) == 0) {
		return 0;
	}
	if (errno == EINTR) {
		return 0;
	}
	if (errno == EAGAIN) {
		return t == rem ? -ETIMEDOUT : -EAGAIN;
	}
	return -errno;
}

#endif /* IPC_BACKENDS_SYSV_SEM_H */
