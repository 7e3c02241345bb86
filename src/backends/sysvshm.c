/*
 * sysvshm://NAME: a System V shared memory segment (shmget/shmat) holding
 * two rings of src/core/ring.h, one per direction, and a System V
 * semaphore set for sleeping instead of futexes.  Keys, slots, peer
 * arrival, death and cleanup are those of sysv_sem.h.
 *
 * Segment: one header page {magic, version, ring size, NAME} (the name
 * double-checks the key), then the creator -> opener ring, then the
 * opener -> creator ring.  The opener marks the segment IPC_RMID once it
 * is attached: from then on the kernel frees it when both sides detach or
 * die, whatever happens.
 *
 * Waiting.  A side about to sleep sets its flag in the ring, re-checks,
 * and sleeps in semtimedop on its RXW (for data) or TXW (for room)
 * semaphore; the other side posts that semaphore only when it sees the
 * flag, so a busy stream makes no system call.  The peer's death posts
 * both (SEM_UNDO, see sysv_sem.h) and its close sets the ring's close
 * flag and posts, so neither is missed.  A sleep lasts at most SLICE_MS
 * before the peer's slot is looked at again.  ipc_poll cannot sleep on a
 * semaphore: it polls the peer's pidfd and looks at the rings again after
 * 0, 1, 2, 4 ... 50 ms (restarting after each success).  ipc_fd() comes
 * from the core's helper thread (core/readyfd.c), which sleeps in this
 * driver's wait slot.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "backends/sysv_sem.h"
#include "core/driver.h"
#include "core/ring.h"
#include "core/ringchan.h"

#define KIND         "sysvshm"
#define SEG_HDR      4096u
#define SEG_MAGIC    0x31736d68737673ull /* "svshms1" */
#define SEG_VERSION  1u
#define DEFAULT_SIZE (4u << 20) /* per direction: carries 1 MiB messages */
#define DEFAULT_SPIN 20u        /* microseconds before sleeping */
#define SLICE_MS     250
#define POLL_MAX_MS  50

enum { PEER_NONE, PEER_UP, PEER_GONE };

struct seg_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t name_len;
	uint64_t ring_size;
	char name[208];
};

struct svs_chan {
	const char *uri;
	int side;
	pid_t owner;
	struct sv_ids ids;
	int shmid;
	unsigned char *seg;
	size_t seg_len, ring_size;
	uint64_t spin_ns;
	struct ipc_ring rx, tx;

	_Atomic int peer;
	int pidfd;
	pthread_mutex_t peer_mu;
	struct ipc_trust trust;
	struct ipc_cred cred; /* the peer's: set before PEER_UP */
	_Atomic int refused;  /* creator: the peer failed allow_uid= */
	_Atomic int backoff;
	_Atomic size_t want_tx;      /* the size a blocked send waits for */
	_Atomic uint64_t checked_ns; /* last liveness look of an empty recv */
};

static const struct ipc_optspec svs_opts[] = {
        {"size", IPC_OPT_SIZE, IPC_RING_MIN, IPC_RING_MAX, NULL,
         "bytes of each ring, a power of two (default 4M)"},
        {"spin", IPC_OPT_UINT, 0, 1000000, NULL,
         "microseconds to spin before sleeping (default 20)"},
        {"mode", IPC_OPT_MODE, 0, 0777, NULL,
         "permissions of created objects, default 0600"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

/* ------------------------------------------------------- ring waiting -- */

static int
svs_ring_wait(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word,
              uint32_t val, const struct timespec *until)
{
	struct svs_chan *s = ctx;
	int sem = (role == IPC_RING_CONSUMER ? SV_RXW : SV_TXW) + s->side;
	struct sembuf op = {(unsigned short)sem, -1, 0};
	int r;

	if (atomic_load(word) != val) {
		return 0;
	}
	r = sv_timedwait(s->ids.semid, &op, 1, until, SLICE_MS);
	return r == -ETIMEDOUT ? r : 0;
}

static void
svs_ring_wake(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word)
{
	struct svs_chan *s = ctx;
	int sem = (role == IPC_RING_CONSUMER ? SV_RXW : SV_TXW) + 1 - s->side;
	struct sembuf op = {(unsigned short)sem, 1, IPC_NOWAIT};

	(void)word;
	(void)sv_semop(s->ids.semid, &op, 1); /* ERANGE: awake anyway */
}

static const struct ipc_ring_ops svs_ring_ops = {
        .wait = svs_ring_wait,
        .wake = svs_ring_wake,
        .notify = NULL,
};

/* ---------------------------------------------------------------- peer -- */

static int
peer_check(struct svs_chan *s)
{
	unsigned short v[SV_NSEMS];
	int peer = 1 - s->side;
	int p = atomic_load(&s->peer);

	if (p == PEER_GONE) {
		return p;
	}
	if (p == PEER_UP) {
		if (sv_peer_held(s->ids.semid, s->side)) {
			return PEER_UP;
		}
		atomic_store(&s->peer, PEER_GONE);
		return PEER_GONE;
	}
	if (sv_getall(s->ids.semid, v) < 0) {
		atomic_store(&s->peer, PEER_GONE);
		return PEER_GONE;
	}
	pid_t pid = sv_pid(v, peer);
	if (pid == 0) {
		return PEER_NONE;
	}
	if (p == PEER_NONE) {
		pthread_mutex_lock(&s->peer_mu);
		if (atomic_load(&s->peer) == PEER_NONE &&
		    s->side == SV_CREATOR) {
			(void)sv_opener_cred(s->ids.semid, &s->cred);
			if (ipc__trust_check(&s->trust, s->uri, "the peer",
			                     &s->cred) < 0) {
				/* It failed allow_uid=/allow_gid=. */
				atomic_store(&s->refused, 1);
				atomic_store(&s->peer, PEER_GONE);
			}
		}
		if (atomic_load(&s->peer) == PEER_NONE) {
			s->pidfd = ipc__pidfd_open(pid);
			atomic_store(&s->peer, PEER_UP);
		}
		pthread_mutex_unlock(&s->peer_mu);
		if (atomic_load(&s->refused)) {
			return PEER_GONE;
		}
	}
	if (v[SV_SLOT + peer] != 0) {
		atomic_store(&s->peer, PEER_GONE);
		return PEER_GONE;
	}
	return PEER_UP;
}

/* The look of an empty receive: at most every IPC_RCHAN_LAZY_MS while
 * the peer is up (a system call per empty receive would be most of a
 * ping-pong's latency).  A blocking receive does not depend on it: a wait
 * woken without data looks at once (svs_wait). */
static int
peer_check_lazy(struct svs_chan *s)
{
	if (atomic_load_explicit(&s->peer, memory_order_relaxed) == PEER_UP) {
		uint64_t t = ipc__rchan_coarse_ns();
		if (t - atomic_load_explicit(&s->checked_ns,
		                             memory_order_relaxed) <
		    (uint64_t)IPC_RCHAN_LAZY_MS * 1000000u) {
			return PEER_UP;
		}
		atomic_store_explicit(&s->checked_ns, t, memory_order_relaxed);
	}
	return peer_check(s);
}

/* ---------------------------------------------------------------- data -- */

/* The peer is gone, or was refused (allow_uid=/allow_gid=).  A peer that
 * closed marked its ends of the rings first: without that, it died. */
static int
peer_gone_err(ipc_channel *ch, const struct svs_chan *s, const char *what)
{
	if (atomic_load(&s->refused)) {
		return ipc__trust_check(&s->trust, ch->uri, "the peer",
		                        &s->cred);
	}
	return ipc__err_peer(ch->uri, what,
	                     ipc_ring_peer_closed(&s->rx) ||
	                                     ipc_ring_peer_closed(&s->tx)
	                             ? IPC_PEER_CLOSED
	                             : IPC_PEER_DIED);
}

static int
tx_fail(ipc_channel *ch, struct svs_chan *s, int r, size_t len)
{
	if (r == -EAGAIN) {
		/* A full ring: the peer may be gone meanwhile. */
		if (peer_check(s) == PEER_GONE) {
			return peer_gone_err(ch, s, "send");
		}
		s->want_tx = len;
		return -EAGAIN;
	}
	if (r == -EPIPE) {
		return ipc__err_peer(ch->uri, "send", IPC_PEER_CLOSED);
	}
	if (r == -EPROTO) {
		return ipc__err(-EPROTO, ch->uri,
		                "the peer corrupted the shared ring");
	}
	if (r == -EBUSY) {
		return ipc__err(-EBUSY, ch->uri, "a reservation is open");
	}
	return ipc__err(r, ch->uri, "send failed");
}

/* The creator may not send before the opener arrived. */
static int
peer_there(struct svs_chan *s)
{
	return atomic_load(&s->peer) != PEER_NONE ||
	       peer_check(s) != PEER_NONE;
}

/* Before a send: -EPIPE once the peer is known to be gone, -EAGAIN while
 * it has not arrived, else 0. */
static int
tx_check(ipc_channel *ch, struct svs_chan *s, size_t len)
{
	if (!peer_there(s)) {
		atomic_store(&s->want_tx, len);
		return -EAGAIN;
	}
	if (atomic_load_explicit(&s->peer, memory_order_relaxed) ==
	    PEER_GONE) {
		return peer_gone_err(ch, s, "send");
	}
	return 0;
}

static ssize_t
svs_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct svs_chan *s = ipc__priv(ch);
	void *dst;
	int r;

	r = tx_check(ch, s, len);
	if (r < 0) {
		return r;
	}
	r = ipc_ring_reserve(&s->tx, len, &dst);
	if (r != 0) {
		return tx_fail(ch, s, r, len);
	}
	if (len > 0) {
		memcpy(dst, buf, len);
	}
	ipc_ring_commit(&s->tx, len);
	atomic_store(&s->backoff, 0);
	return (ssize_t)len;
}

static int
rx_fail(ipc_channel *ch, int r)
{
	if (r == -EPIPE) {
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_CLOSED);
	}
	if (r == -EPROTO) {
		return ipc__err(-EPROTO, ch->uri,
		                "the peer corrupted the shared ring");
	}
	if (r == -EBUSY) {
		return ipc__err(-EBUSY, ch->uri,
		                "a message is acquired: release it first");
	}
	return ipc__err(r, ch->uri, "receive failed");
}

/* The next record; -EPIPE once a gone peer's records are all taken. */
static int
rx_next(ipc_channel *ch, struct svs_chan *s, const void **p, size_t *n)
{
	/* A creator delivers nothing before its peer passed allow_uid=. */
	if (s->side == SV_CREATOR && atomic_load(&s->peer) == PEER_NONE) {
		(void)peer_check(s);
	}
	if (atomic_load(&s->refused)) {
		return peer_gone_err(ch, s, "recv");
	}
	int r = ipc_ring_acquire(&s->rx, p, n);

	if (r == -EAGAIN && atomic_load(&s->peer) != PEER_NONE &&
	    peer_check_lazy(s) == PEER_GONE) {
		/* What it published before going is visible now. */
		r = ipc_ring_acquire(&s->rx, p, n);
		if (r == -EAGAIN) {
			return peer_gone_err(ch, s, "recv");
		}
	}
	if (r == 0) {
		atomic_store(&s->backoff, 0);
		return 0;
	}
	return r == -EAGAIN ? r : rx_fail(ch, r);
}

static ssize_t
svs_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct svs_chan *s = ipc__priv(ch);
	const void *src;
	size_t n;
	int r = rx_next(ch, s, &src, &n);

	if (r < 0) {
		return r;
	}
	return ipc_ring_copy_out(&s->rx, src, n, buf, cap, ch->uri);
}

static int
svs_reserve(ipc_channel *ch, size_t len, void **buf)
{
	struct svs_chan *s = ipc__priv(ch);
	int r;

	r = tx_check(ch, s, len);
	if (r < 0) {
		return r;
	}
	r = ipc_ring_reserve(&s->tx, len, buf);
	return r == 0 ? 0 : tx_fail(ch, s, r, len);
}

static int
svs_commit(ipc_channel *ch, size_t len)
{
	struct svs_chan *s = ipc__priv(ch);
	int r = ipc_ring_commit(&s->tx, len);

	if (r < 0) {
		return ipc__err(r, ch->uri, "commit without a reservation");
	}
	atomic_store(&s->backoff, 0);
	return 0;
}

static int
svs_acquire(ipc_channel *ch, const void **buf, size_t *len)
{
	struct svs_chan *s = ipc__priv(ch);

	return rx_next(ch, s, buf, len);
}

static int
svs_release(ipc_channel *ch)
{
	struct svs_chan *s = ipc__priv(ch);
	int r = ipc_ring_release(&s->rx);

	if (r < 0) {
		return ipc__err(r, ch->uri, "release without an acquire");
	}
	return 0;
}

/* ------------------------------------------------------------- waiting -- */

static int
svs_wait(ipc_channel *ch, short events, const struct timespec *dl)
{
	struct svs_chan *s = ipc__priv(ch);
	int in = (events & IPC_POLLIN) != 0;

	if ((events & IPC_POLLOUT) && !in && !peer_there(s)) {
		/* The creator waits for the opener's slot to be taken. */
		struct sembuf op = {SV_SLOT + SV_OPENER, 0, 0};
		int r = sv_timedwait(s->ids.semid, &op, 1, dl, SLICE_MS);
		return r == -ETIMEDOUT ? r : 0;
	}
	if (in && (events & IPC_POLLOUT)) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
		return 0;
	}
	struct ipc_ring *ring = in ? &s->rx : &s->tx;
	size_t len = in ? 0 : s->want_tx;
	uint64_t spin = s->spin_ns;

	for (;;) {
		if (atomic_load(&s->peer) == PEER_GONE) {
			return 0;
		}
		struct timespec until;
		ipc__deadline_coarse(&until, SLICE_MS);
		int last = dl != NULL && (until.tv_sec > dl->tv_sec ||
		                          (until.tv_sec == dl->tv_sec &&
		                           until.tv_nsec >= dl->tv_nsec));
		if (last) {
			until = *dl;
		}
		int r = ipc_ring_wait(ring, len, spin, &until);
		if (r == 0 && (in ? ipc_ring_readable(ring)
		                  : ipc_ring_writable(ring, len))) {
			return 0;
		}
		/* Woken without data or room (the peer's death posts our
		 * semaphores), or a slice passed: look at the peer. */
		if (peer_check(s) == PEER_GONE || r == 0) {
			return 0;
		}
		if (last) {
			return -ETIMEDOUT;
		}
		spin = 0;
	}
}

static int
svs_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct svs_chan *s = ipc__priv(ch);
	int bo = atomic_load(&s->backoff);
	int n = 0;

	(void)events;
	if (atomic_load(&s->peer) == PEER_UP && s->pidfd >= 0) {
		pfd[n++] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
	}
	*retry_ms = bo;
	bo = bo == 0 ? 1 : bo * 2;
	atomic_store(&s->backoff, bo > POLL_MAX_MS ? POLL_MAX_MS : bo);
	return n;
}

static short
svs_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct svs_chan *s = ipc__priv(ch);
	short r = 0;
	int died = 0;

	int pidfd = atomic_load(&s->peer) == PEER_NONE ? -1 : s->pidfd;
	for (int i = 0; pfd != NULL && i < npfd; i++) {
		if (pidfd >= 0 && pfd[i].fd == pidfd &&
		    (pfd[i].revents & POLLIN)) {
			died = 1;
		}
	}
	if (died || (pfd != NULL && atomic_load(&s->peer) != PEER_GONE)) {
		(void)peer_check(s);
	}
	int p = atomic_load(&s->peer);
	int gone = p == PEER_GONE || ipc_ring_peer_closed(&s->rx) ||
	           ipc_ring_peer_closed(&s->tx);
	if ((events & IPC_POLLIN) && (gone || ipc_ring_readable(&s->rx))) {
		r |= IPC_POLLIN;
	}
	if ((events & IPC_POLLOUT) &&
	    (gone ||
	     (p == PEER_UP && ipc_ring_writable(&s->tx, s->want_tx)))) {
		r |= IPC_POLLOUT;
	}
	if (gone) {
		r |= IPC_POLLHUP;
	}
	if (s->rx.broken || s->tx.broken) {
		r |= IPC_POLLERR;
	}
	if (r != 0) {
		atomic_store(&s->backoff, 0);
	}
	return r;
}

/* ---------------------------------------------------------- open/close -- */

static void
chan_init(struct svs_chan *s, ipc_channel *ch)
{
	memset(s, 0, sizeof(*s));
	s->uri = ch->uri;
	s->owner = getpid();
	s->ids.semid = -1;
	s->shmid = -1;
	s->pidfd = -1;
	atomic_init(&s->peer, PEER_NONE);
	atomic_init(&s->backoff, 1);
	pthread_mutex_init(&s->peer_mu, NULL);
}

static void
chan_free(struct svs_chan *s)
{
	if (s->seg != NULL) {
		(void)shmdt(s->seg);
		s->seg = NULL;
	}
	if (s->pidfd >= 0) {
		close(s->pidfd);
	}
	pthread_mutex_destroy(&s->peer_mu);
}

static void
remove_objects(struct svs_chan *s)
{
	if (s->shmid >= 0) {
		(void)shmctl(s->shmid, IPC_RMID, NULL);
	}
	if (s->ids.semid >= 0) {
		(void)semctl(s->ids.semid, 0, IPC_RMID);
	}
}

static size_t
seg_len_for(size_t ring)
{
	return SEG_HDR + 2 * ipc_ring_region_size(ring);
}

/* Bind both rings: creator->opener first, then opener->creator. */
static int
bind_rings(struct svs_chan *s)
{
	unsigned char *r0 = s->seg + SEG_HDR;
	unsigned char *r1 = r0 + ipc_ring_region_size(s->ring_size);
	unsigned char *mine_rx = s->side == SV_CREATOR ? r1 : r0;
	unsigned char *mine_tx = s->side == SV_CREATOR ? r0 : r1;
	int r = ipc_ring_attach(&s->rx, mine_rx, s->ring_size,
	                        IPC_RING_CONSUMER, &svs_ring_ops, s);

	if (r == 0) {
		r = ipc_ring_attach(&s->tx, mine_tx, s->ring_size,
		                    IPC_RING_PRODUCER, &svs_ring_ops, s);
	}
	return r < 0 ? ipc__err(-EPROTO, s->uri,
	                        "the segment does not hold two valid rings")
	             : 0;
}

/* Is the segment at key a stale one of ours (nobody attached, our name)? */
static int
stale_segment(key_t key, const char *name)
{
	int id = shmget(key, 0, 0);
	struct shmid_ds ds;
	int ours = 0;

	if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0 || ds.shm_nattch != 0 ||
	    ds.shm_segsz < sizeof(struct seg_hdr)) {
		return 0;
	}
	const struct seg_hdr *h = shmat(id, NULL, SHM_RDONLY);
	if (h == (void *)-1) {
		return 0;
	}
	ours = h->magic == SEG_MAGIC && h->name_len == strlen(name) &&
	       h->name_len < sizeof(h->name) &&
	       memcmp(h->name, name, h->name_len) == 0;
	(void)shmdt(h);
	if (ours) {
		(void)shmctl(id, IPC_RMID, NULL);
	}
	return ours;
}

static int
make_segment(struct svs_chan *s, const char *name, int mode)
{
	s->seg_len = seg_len_for(s->ring_size);
	for (int tries = 0;; tries++) {
		s->shmid = shmget(s->ids.key, s->seg_len,
		                  IPC_CREAT | IPC_EXCL | mode);
		if (s->shmid >= 0) {
			break;
		}
		if (errno == EEXIST && tries == 0 &&
		    stale_segment(s->ids.key, name)) {
			continue;
		}
		if (errno == EEXIST) {
			return -EEXIST; /* foreign: the caller tries on */
		}
		if (errno == EINVAL || errno == ENOSPC || errno == ENOMEM) {
			return ipc__err(-errno, s->uri,
			                "shmget of %zu bytes refused (see "
			                "/proc/sys/kernel/shmmax, shmall, "
			                "shmmni): %s",
			                s->seg_len, strerror(errno));
		}
		return ipc__errno(-errno, s->uri, "shmget");
	}
	s->seg = shmat(s->shmid, NULL, 0);
	if (s->seg == (void *)-1) {
		s->seg = NULL;
		return ipc__errno(-errno, s->uri, "shmat");
	}
	struct seg_hdr *h = (struct seg_hdr *)s->seg;
	h->magic = SEG_MAGIC;
	h->version = SEG_VERSION;
	h->ring_size = s->ring_size;
	h->name_len = (uint32_t)strlen(name);
	memcpy(h->name, name, h->name_len);
	unsigned char *r0 = s->seg + SEG_HDR;
	if (ipc_ring_format(r0, s->ring_size) < 0 ||
	    ipc_ring_format(r0 + ipc_ring_region_size(s->ring_size),
	                    s->ring_size) < 0) {
		return ipc__err(-EINVAL, s->uri, "cannot format the rings");
	}
	return 0;
}

static int
open_creator(struct svs_chan *s, const struct ipc_uri *u)
{
	int mode = (int)ipc__opt_num(u, "mode", 0600);
	int retries = 0;
	int tr = ipc__trust_parse(&s->trust, u, 0);

	if (tr < 0) {
		return tr;
	}
	sv_tag(KIND, u->name, s->ids.tag);
	for (unsigned i = 0; i < SV_PROBES; i++) {
		key_t key = sv_key(KIND, u->name, i);
		sv_tag_key(s->ids.tag, KIND, key);
		int id = semget(key, SV_NSEMS, IPC_CREAT | IPC_EXCL | mode);
		if (id < 0 && errno != EEXIST) {
			return ipc__errno(-errno, s->uri,
			                  errno == ENOSPC
			                          ? "semget (system "
			                            "limit of semaphore "
			                            "sets, ipcs -l)"
			                          : "semget");
		}
		if (id < 0) {
			id = semget(key, 0, 0);
			enum sv_found f =
			        id < 0 ? (errno == ENOENT ? SV_GONE
			                                  : SV_FOREIGN)
			               : sv_inspect(id, s->ids.tag);
			if (f == SV_INUSE) {
				return ipc__err(
				        -EEXIST, s->uri,
				        "channel exists and is in use");
			}
			if (f == SV_STALE) {
				int q = shmget(key, 0, 0);
				if (q >= 0) {
					(void)shmctl(q, IPC_RMID, NULL);
				}
				(void)semctl(id, 0, IPC_RMID);
			}
			if ((f == SV_STALE || f == SV_GONE) && retries++ < 4) {
				i--;
			}
			continue;
		}
		s->ids.key = key;
		s->ids.semid = id;
		int r = make_segment(s, u->name, mode);
		if (r == -EEXIST) {
			(void)semctl(id, 0, IPC_RMID);
			s->ids.semid = -1;
			continue;
		}
		if (r == 0) {
			r = bind_rings(s);
		}
		if (r == 0) {
			r = sv_setall(&s->ids, 0, 0, 0);
			if (r < 0) {
				r = ipc__errno(r, s->uri, "semctl SETALL");
			}
		}
		if (r == 0) {
			r = sv_claim(id, SV_CREATOR, 1, 1);
			if (r < 0) {
				r = ipc__errno(r, s->uri, "semop (claim)");
			}
		}
		if (r < 0) {
			remove_objects(s);
		}
		return r;
	}
	return ipc__err(-EEXIST, s->uri,
	                "all %d System V keys of this name are taken by "
	                "other objects",
	                SV_PROBES);
}

static int
open_opener(struct svs_chan *s, const struct ipc_uri *u)
{
	unsigned short v[SV_NSEMS];
	struct shmid_ds ds;
	int r = ipc__trust_parse(&s->trust, u, 1);

	if (r < 0) {
		return r;
	}
	r = sv_find(&s->ids, KIND, u->name, &s->trust, s->uri, &s->cred);
	if (r < 0) {
		return r;
	}
	r = sv_check_open(s->ids.semid, v, s->uri);
	if (r < 0) {
		return r;
	}
	s->shmid = shmget(s->ids.key, 0, 0);
	if (s->shmid < 0) {
		if (errno == EACCES) {
			return ipc__err(-EACCES, s->uri, "permission denied");
		}
		return ipc__err(-ENOENT, s->uri,
		                "channel is still being created");
	}
	if (shmctl(s->shmid, IPC_STAT, &ds) < 0) {
		return ipc__errno(-errno, s->uri, "shmctl IPC_STAT");
	}
	/* The segment on the key is foreign until its owner is trusted. */
	struct ipc_cred sc;
	r = sv_trust(&ds.shm_perm, &s->trust, s->uri, &sc);
	if (r < 0) {
		return r;
	}
	s->seg = shmat(s->shmid, NULL, 0);
	if (s->seg == (void *)-1) {
		s->seg = NULL;
		return ipc__errno(-errno, s->uri, "shmat");
	}
	/* Read the header once; the segment is the peer's to scribble on. */
	struct seg_hdr h;
	memcpy(&h, s->seg, sizeof(h));
	s->ring_size = (size_t)h.ring_size;
	if (ds.shm_segsz < SEG_HDR || h.magic != SEG_MAGIC ||
	    h.version != SEG_VERSION || !ipc_ring_size_ok(h.ring_size) ||
	    seg_len_for(s->ring_size) != ds.shm_segsz ||
	    h.name_len != strlen(u->name) ||
	    memcmp(h.name, u->name, h.name_len) != 0) {
		return ipc__err(-EPROTO, s->uri,
		                "the segment is not a libipc sysvshm channel "
		                "of this name");
	}
	s->seg_len = ds.shm_segsz;
	r = bind_rings(s);
	if (r < 0) {
		return r;
	}
	r = sv_claim(s->ids.semid, SV_OPENER, 1, 1);
	if (r == -EAGAIN) {
		if (sv_getall(s->ids.semid, v) == 0 &&
		    sv_pid(v, SV_OPENER) != 0) {
			return ipc__err(-ECONNREFUSED, s->uri,
			                "channel already has its peer");
		}
		return ipc__err(-ECONNREFUSED, s->uri,
		                "the creator of this channel is gone");
	}
	if (r == -EIDRM || r == -EINVAL) {
		return ipc__err(-ENOENT, s->uri, "channel was just removed");
	}
	if (r < 0) {
		return ipc__errno(r, s->uri, "semop (claim)");
	}
	/* Both are attached: the kernel frees the segment after the last
	 * detach, even after kill -9 of both. */
	(void)shmctl(s->shmid, IPC_RMID, NULL);
	(void)peer_check(s);
	return 0;
}

static int
svs_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct svs_chan *s = ipc__priv(ch);
	int r;

	chan_init(s, ch);
	s->side = (flags & IPC_CREATE) ? SV_CREATOR : SV_OPENER;
	s->spin_ns = ipc__opt_num(u, "spin", DEFAULT_SPIN) * 1000u;
	if (s->side == SV_CREATOR) {
		s->ring_size = (size_t)ipc__opt_num(u, "size", DEFAULT_SIZE);
		if (!ipc_ring_size_ok(s->ring_size)) {
			chan_free(s);
			return ipc__err(-EINVAL, ch->uri,
			                "size=%zu: a power of two between %u "
			                "and 1G is needed",
			                s->ring_size, IPC_RING_MIN);
		}
		r = open_creator(s, u);
	} else {
		r = open_opener(s, u);
	}
	if (r < 0) {
		chan_free(s);
		return r;
	}
	ch->max_msg = ipc_ring_max_msg(s->ring_size);
	return 0;
}

static int
svs_close(ipc_channel *ch)
{
	struct svs_chan *s = ipc__priv(ch);

	if (s->owner != getpid()) {
		chan_free(s); /* a forked child's copy: not its channel */
		return 0;
	}
	/* rx first: a peer that sees our tx closed (its recv says
	 * -EPIPE) then finds its own sends refused too. */
	ipc_ring_close(&s->rx);
	ipc_ring_close(&s->tx);
	sv_release(s->ids.semid, s->side, 1, 1);
	if (sv_peer_free(s->ids.semid, s->side)) {
		remove_objects(s);
	}
	chan_free(s);
	return 0;
}

static int
svs_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct svs_chan *s = ipc__cpriv(ch);

	return sv_peer_cred(atomic_load(&s->peer) != PEER_NONE,
	                    atomic_load(&s->refused), &s->cred, ch->uri, pid,
	                    uid, gid);
}

const struct ipc_driver ipc_driver_sysvshm = {
        .scheme = "sysvshm",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_ZEROCOPY |
                IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_NAME,
        .opts = svs_opts,
        .priv_size = sizeof(struct svs_chan),
        .open = svs_open,
        .send = svs_send,
        .recv = svs_recv,
        .close = svs_close,
        .peer_cred = svs_peer_cred,
        .pollfds = svs_pollfds,
        .ready = svs_ready,
        .wait = svs_wait,
        .reserve = svs_reserve,
        .commit = svs_commit,
        .acquire = svs_acquire,
        .release = svs_release,
};
