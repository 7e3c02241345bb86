/*
 * mq://NAME: POSIX message queues, one per direction.
 *
 * Objects: /libipc.NAME.0 carries creator -> opener, /libipc.NAME.1 opener
 * -> creator.  Every queue message is one unit of src/core/frag.h: a
 * libipc message larger than the queue's msgsize travels as several units
 * and is reassembled in order.
 *
 * Rendezvous.  The creator makes both queues (O_EXCL), takes an exclusive
 * flock(2) on the one it reads, and leaves a HELLO unit with its pid in
 * the other.  The opener takes an exclusive flock on the queue it reads,
 * reads that HELLO, answers with its own, and unlinks both names: from then
 * on the channel lives only in the two processes' descriptors, so a crash
 * of both leaves nothing behind.  The creator learns the opener's pid from
 * the answer.
 *
 * Peer close and death.  A side's flock on the queue it reads says that it
 * is alive and open; the other side probes it with a non-blocking shared
 * flock on its own descriptor of that queue (before each new message, and
 * whenever a queue is empty or full).  A pidfd of the peer, polled beside
 * the queues, wakes a waiter when the peer dies; a CLOSE unit wakes it when
 * the peer closes.  Closing also drains the queue we read, so a peer
 * blocked on a full queue wakes and sees the close.
 *
 * Reclaim.  An IPC_CREATE that finds the names taken probes both flocks:
 * if nobody holds either, the queues are left from processes that died
 * before the opener arrived and are removed; otherwise -EEXIST.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/frag.h"
#include "core/objnames.h"
#include "core/proc.h"
#include "core/trust.h"

#define MQ_MAXMSG    ((size_t)16 << 20) /* largest libipc message */
#define MQ_MINUNIT   32u                /* smallest msgsize accepted */
#define MQ_PROC      "/proc/sys/fs/mqueue/"
#define MQ_NAMELEN   (sizeof(IPC_MQ_PREFIX) + 200 + 2)
#define NOPEER_RETRY 100 /* ms: creator polling for the opener's HELLO */
#define LIVE_RETRY   200 /* ms: liveness polling without pidfd */

enum { PEER_NONE, PEER_UP, PEER_GONE };

struct mq_chan {
	const char *uri;
	int creator;
	pid_t owner; /* the process that opened the channel */
	mqd_t rx, tx;
	int epfd; /* ipc_fd: rx queue and pidfd */
	size_t rx_unit, tx_unit;
	char rx_name[MQ_NAMELEN], tx_name[MQ_NAMELEN];

	_Atomic int peer; /* PEER_*; pidfd is set before PEER_UP */
	int pidfd;
	struct ipc_trust trust;
	struct ipc_cred cred; /* the peer's: set before PEER_UP */

	/* receive side, under rx_mu */
	pthread_mutex_t rx_mu;
	unsigned char *rbuf; /* one unit */
	struct ipc_frag_rx fr;
	int reof; /* the peer closed and everything was delivered */
	enum ipc_peer_end rdied; /* ... without a close record */
	int rerr;                /* sticky error */

	/* send side, under tx_mu */
	pthread_mutex_t tx_mu;
	unsigned char *tbuf; /* one unit */
	struct ipc_frag_tx ft;
	_Atomic int tx_detached;
	int werr;
};

static const struct ipc_optspec mq_opts[] = {
        {"maxmsg", IPC_OPT_UINT, 1, 65536, NULL,
         "queue depth in units (default: fs/mqueue/msg_default)"},
        {"msgsize", IPC_OPT_SIZE, MQ_MINUNIT, (16u << 20), NULL,
         "bytes per queue unit (default: fs/mqueue/msgsize_default)"},
        {"mode", IPC_OPT_MODE, 0, 0777, NULL,
         "permissions of created queues, default 0600"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

/* ------------------------------------------------------------ helpers -- */

static long
read_proc(const char *file, long def)
{
	char path[128];
	long v = def;
	FILE *f;

	snprintf(path, sizeof(path), MQ_PROC "%s", file);
	f = fopen(path, "re");
	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1) {
			v = def;
		}
		fclose(f);
	}
	return v;
}

/* Is the exclusive flock that a live, open end holds on q gone? */
static int
lock_gone(mqd_t q)
{
	return ipc__flock_free(q);
}

static int
same_queue(mqd_t a, mqd_t b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* Remove name only if it still names the queue q (not a newer one).
 * held: we hold the creator's flock on our queue, so no libipc process
 * can have replaced the name: when the check itself cannot be made (out
 * of descriptors), remove the name rather than leave it behind. */
static void
unlink_if_same(const char *name, mqd_t q, int held)
{
	mqd_t o = mq_open(name, O_RDONLY | O_NONBLOCK);

	if (o == (mqd_t)-1) {
		if (held && errno != ENOENT) {
			(void)mq_unlink(name);
		}
		return;
	}
	if (same_queue(o, q)) {
		(void)mq_unlink(name);
	}
	mq_close(o);
}

/* 0 when both names still name our queues, or a recorded error. */
static int
names_still_ours(struct mq_chan *m)
{
	mqd_t a = mq_open(m->rx_name, O_RDONLY | O_NONBLOCK);
	int ea = a == (mqd_t)-1 ? errno : 0;
	mqd_t b = mq_open(m->tx_name, O_RDONLY | O_NONBLOCK);
	int eb = b == (mqd_t)-1 ? errno : 0;
	int e = ea != 0 && ea != ENOENT ? ea : eb != ENOENT ? eb : 0;
	int ok;

	if (e != 0) {
		ok = ipc__errno(-e, m->uri,
		                "cannot check that the queues just created "
		                "are still ours");
	} else if (a != (mqd_t)-1 && b != (mqd_t)-1 && same_queue(a, m->rx) &&
	           same_queue(b, m->tx)) {
		ok = 0;
	} else {
		ok = ipc__err(-EEXIST, m->uri,
		              "another process created this channel at the "
		              "same time");
	}

	if (a != (mqd_t)-1) {
		mq_close(a);
	}
	if (b != (mqd_t)-1) {
		mq_close(b);
	}
	return ok;
}

static void
peer_up(struct mq_chan *m, pid_t pid)
{
	m->pidfd = ipc__pidfd_open(pid);
	if (m->pidfd >= 0 && m->epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};
		(void)epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->pidfd, &ev);
	}
	atomic_store(&m->peer, PEER_UP);
}

/* Has the peer closed or died?  Sticky once true.  The flock answers for
 * both, unless a child the peer forked still holds its descriptor; so
 * where it matters (an empty or full queue) the pidfd is asked too. */
static int
peer_gone_(struct mq_chan *m, int thorough)
{
	int p = atomic_load(&m->peer);

	if (p == PEER_GONE) {
		return 1;
	}
	if (p == PEER_UP &&
	    (lock_gone(m->tx) || (thorough && ipc__pidfd_dead(m->pidfd)))) {
		atomic_store(&m->peer, PEER_GONE);
		return 1;
	}
	return 0;
}

#define peer_gone(m) peer_gone_((m), 1)

/* ------------------------------------------------------------ receive -- */

static int send_ctl(struct mq_chan *m, enum ipc_frag_kind kind, uint32_t arg);

/* The creator: may the opener whose hello names pid be our peer?  A queue
 * does not say who sent: the pid is the opener's word, checked to be a
 * live process whose owner passes allow_uid=/allow_gid=. */
static int
creator_trust(struct mq_chan *m, pid_t pid)
{
	struct ipc_cred c = {0};

	if (ipc__cred_pid(pid, &c) < 0) {
		c = (struct ipc_cred){0};
	}
	int r = ipc__trust_check(&m->trust, m->uri, "the peer", &c);
	if (r == 0) {
		m->cred = c;
	}
	return r;
}

/* Read units until a message is whole.  rx_mu held.  Returns
 * IPC_FRAG_WHOLE, -EAGAIN, -EPIPE (CLOSE seen) or an error. */
static int
pump(struct mq_chan *m)
{
	for (;;) {
		uint32_t arg = 0;
		ssize_t n =
		        mq_receive(m->rx, (char *)m->rbuf, m->rx_unit, NULL);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				return -EAGAIN;
			}
			m->rerr = ipc__errno(-errno, m->uri, "mq_receive");
			return m->rerr;
		}
		int k = ipc__frag_rx_feed(&m->fr, m->rbuf, (size_t)n,
		                          MQ_MAXMSG, &arg, m->uri);
		switch (k) {
		case IPC_FRAG_NEED:
			continue;
		case IPC_FRAG_WHOLE:
			return k;
		case IPC_FRAG_HELLO:
			if (!m->creator ||
			    atomic_load(&m->peer) != PEER_NONE || arg == 0 ||
			    arg > INT_MAX) {
				m->rerr = ipc__err(-EPROTO, m->uri,
				                   "unexpected hello from the "
				                   "peer");
				return m->rerr;
			}
			m->rerr = creator_trust(m, (pid_t)arg);
			if (m->rerr < 0) {
				/* Refused: it hears our end. */
				(void)send_ctl(m, IPC_FRAG_CLOSE, 0);
				atomic_store(&m->peer, PEER_GONE);
				return m->rerr;
			}
			peer_up(m, (pid_t)arg);
			continue;
		case IPC_FRAG_CLOSE:
			m->reof = 1;
			atomic_store(&m->peer, PEER_GONE);
			return -EPIPE;
		default:
			m->rerr = k;
			return k;
		}
	}
}

/* The creator: has the opener's HELLO arrived? */
static void
discover(struct mq_chan *m)
{
	pthread_mutex_lock(&m->rx_mu);
	if (atomic_load(&m->peer) == PEER_NONE && !m->fr.ready &&
	    m->rerr == 0 && !m->reof) {
		(void)pump(m);
	}
	pthread_mutex_unlock(&m->rx_mu);
}

static ssize_t
rx_locked(struct mq_chan *m, void *buf, size_t cap)
{
	int r;

	if (m->fr.ready) {
		return ipc__frag_rx_take(&m->fr, buf, cap, m->uri);
	}
	if (m->rerr != 0) {
		return ipc__err(m->rerr, m->uri, "channel failed earlier");
	}
	if (m->reof) {
		return ipc__err_peer(m->uri, "recv", m->rdied);
	}
	r = pump(m);
	if (r == -EAGAIN && peer_gone(m)) {
		/* Gone: what it sent before is queued already, and a peer
		 * that closed sent its close record last. */
		r = pump(m);
		if (r == -EAGAIN) {
			ipc__frag_rx_drop(&m->fr);
			m->reof = 1;
			r = -EPIPE;
		}
	}
	if (r == IPC_FRAG_WHOLE) {
		return ipc__frag_rx_take(&m->fr, buf, cap, m->uri);
	}
	if (r == -EPIPE) {
		return ipc__err_peer(m->uri, "recv", m->rdied);
	}
	return r;
}

/* ---------------------------------------------------------------- send -- */

/* Push units of the message in progress.  tx_mu held.  0 when it is out,
 * -EAGAIN when the queue is full, or an error. */
static int
push(struct mq_chan *m)
{
	while (m->ft.active) {
		size_t n = ipc__frag_tx_next(&m->ft, m->tbuf, m->tx_unit);
		if (mq_send(m->tx, (const char *)m->tbuf, n, 0) < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				return -EAGAIN;
			}
			int e = -errno;
			ipc__frag_tx_done(&m->ft);
			atomic_store(&m->tx_detached, 0);
			m->werr = ipc__errno(e, m->uri, "mq_send");
			return m->werr;
		}
		if (ipc__frag_tx_sent(&m->ft, n)) {
			ipc__frag_tx_done(&m->ft);
			atomic_store(&m->tx_detached, 0);
		}
	}
	return 0;
}

static int
tx_epipe(struct mq_chan *m)
{
	ipc__frag_tx_done(&m->ft);
	atomic_store(&m->tx_detached, 0);
	m->werr = -EPIPE;
	return ipc__err(-EPIPE, m->uri, "peer closed the channel");
}

static ssize_t
tx_locked(struct mq_chan *m, const void *buf, size_t len)
{
	int r;

	if (m->werr != 0) {
		return ipc__err(m->werr, m->uri, "%s",
		                m->werr == -EPIPE ? "peer closed the channel"
		                                  : "channel failed earlier");
	}
	if (m->ft.active) {
		int same = ipc__frag_tx_same(&m->ft, buf, len);
		r = push(m);
		if (r == -EAGAIN) {
			if (peer_gone(m)) {
				return tx_epipe(m);
			}
			return same ? -EINPROGRESS : -EAGAIN;
		}
		if (r < 0) {
			return r;
		}
		if (same) {
			return (ssize_t)len;
		}
	}
	if (peer_gone_(m, 0)) {
		return tx_epipe(m);
	}
	ipc__frag_tx_start(&m->ft, buf, len);
	r = push(m);
	if (r == -EAGAIN) {
		if (m->ft.off == 0) {
			ipc__frag_tx_done(&m->ft);
			return peer_gone(m) ? tx_epipe(m) : -EAGAIN;
		}
		return peer_gone(m) ? tx_epipe(m) : -EINPROGRESS;
	}
	return r < 0 ? r : (ssize_t)len;
}

/* Finish a detached message for a caller who is receiving. */
static void
kick(struct mq_chan *m)
{
	if (atomic_load_explicit(&m->tx_detached, memory_order_relaxed)) {
		pthread_mutex_lock(&m->tx_mu);
		if (m->ft.active && m->ft.detached) {
			if (push(m) == -EAGAIN && peer_gone(m)) {
				(void)tx_epipe(m);
			}
		}
		pthread_mutex_unlock(&m->tx_mu);
	}
}

/* ---------------------------------------------------------------- open -- */

static void
chan_init(struct mq_chan *m, ipc_channel *ch)
{
	m->uri = ch->uri;
	m->owner = getpid();
	m->rx = m->tx = (mqd_t)-1;
	m->epfd = -1;
	m->pidfd = -1;
	atomic_init(&m->peer, PEER_NONE);
	atomic_init(&m->tx_detached, 0);
	pthread_mutex_init(&m->rx_mu, NULL);
	pthread_mutex_init(&m->tx_mu, NULL);
}

static void
chan_release(struct mq_chan *m)
{
	if (m->rx != (mqd_t)-1) {
		mq_close(m->rx);
	}
	if (m->tx != (mqd_t)-1) {
		mq_close(m->tx);
	}
	if (m->epfd >= 0) {
		close(m->epfd);
	}
	if (m->pidfd >= 0) {
		close(m->pidfd);
	}
	free(m->rbuf);
	free(m->tbuf);
	ipc__frag_rx_fini(&m->fr);
	ipc__frag_tx_fini(&m->ft);
	pthread_mutex_destroy(&m->rx_mu);
	pthread_mutex_destroy(&m->tx_mu);
}

/* A precise reason for a failed mq_open with O_CREAT. */
static int
create_error(int e, const char *uri, const struct mq_attr *a)
{
	if (e == EINVAL && a != NULL) {
		long mm = read_proc("msg_max", 10);
		long ms = read_proc("msgsize_max", 8192);
		if (a->mq_msgsize > ms) {
			return ipc__err(-EINVAL, uri,
			                "msgsize %ld exceeds " MQ_PROC
			                "msgsize_max (%ld)",
			                (long)a->mq_msgsize, ms);
		}
		if (a->mq_maxmsg > mm) {
			return ipc__err(-EINVAL, uri,
			                "maxmsg %ld exceeds " MQ_PROC
			                "msg_max (%ld)",
			                (long)a->mq_maxmsg, mm);
		}
		return ipc__err(-EINVAL, uri,
		                "maxmsg %ld / msgsize %ld refused by the "
		                "kernel (hard limits: 65536 units, 16 MiB)",
		                (long)a->mq_maxmsg, (long)a->mq_msgsize);
	}
	if (e == EMFILE) {
		struct rlimit rl;
		getrlimit(RLIMIT_MSGQUEUE, &rl);
		return ipc__err(
		        -EMFILE, uri,
		        "out of descriptors, or the queues would exceed "
		        "this user's RLIMIT_MSGQUEUE of %llu bytes "
		        "(ulimit -q; lower maxmsg= or msgsize=)",
		        (unsigned long long)rl.rlim_cur);
	}
	if (e == ENFILE || e == ENOSPC) {
		return ipc__err(-e, uri,
		                "no more queues: " MQ_PROC "queues_max (%ld) "
		                "reached",
		                read_proc("queues_max", 256));
	}
	if (e == ENOSYS) {
		return ipc__err(-ENOSYS, uri,
		                "POSIX message queues are not supported by "
		                "this kernel");
	}
	return ipc__errno(-e, uri, "mq_open");
}

/* IPC_CREATE found the names taken: remove them if nobody uses them.
 * Returns 0 to try creating again, or -EEXIST. */
static int
reclaim(struct mq_chan *m)
{
	mqd_t a = mq_open(m->rx_name, O_RDONLY | O_NONBLOCK);
	int ea = a == (mqd_t)-1 ? errno : 0;
	mqd_t b = mq_open(m->tx_name, O_RDONLY | O_NONBLOCK);
	int eb = b == (mqd_t)-1 ? errno : 0;
	int busy = (a != (mqd_t)-1 && flock(a, LOCK_EX | LOCK_NB) != 0) ||
	           (b != (mqd_t)-1 && flock(b, LOCK_EX | LOCK_NB) != 0);
	int r = 0;

	if (busy) {
		r = ipc__err(-EEXIST, m->uri,
		             "the queues exist and a live process uses them");
	} else if ((ea != 0 && ea != ENOENT) || (eb != 0 && eb != ENOENT)) {
		r = ipc__err(-EEXIST, m->uri,
		             "queues of this name exist and cannot be "
		             "inspected: %s",
		             strerror(ea != 0 && ea != ENOENT ? ea : eb));
	} else {
		if (a != (mqd_t)-1) {
			unlink_if_same(m->rx_name, a, 0);
		}
		if (b != (mqd_t)-1) {
			unlink_if_same(m->tx_name, b, 0);
		}
	}
	if (a != (mqd_t)-1) {
		mq_close(a);
	}
	if (b != (mqd_t)-1) {
		mq_close(b);
	}
	return r;
}

static mqd_t
create_one(struct mq_chan *m, const char *name, int oflag, mode_t mode,
           struct mq_attr *attr, int *err)
{
	mqd_t q = mq_open(name, oflag | O_CREAT | O_EXCL | O_NONBLOCK, mode,
	                  attr);

	if (q == (mqd_t)-1) {
		*err = errno;
		return q;
	}
	/* The umask must not change the mode the URI asked for. */
	(void)fchmod(q, mode);
	return q;
}

static int
open_creator(struct mq_chan *m, const struct ipc_uri *u)
{
	mode_t mode = (mode_t)ipc__opt_num(u, "mode", 0600);
	struct mq_attr attr = {0}, *ap = NULL;
	int err = 0;

	if (ipc__opt_isset(u, "maxmsg") || ipc__opt_isset(u, "msgsize")) {
		attr.mq_maxmsg = (long)ipc__opt_num(
		        u, "maxmsg",
		        (unsigned long long)read_proc("msg_default", 10));
		attr.mq_msgsize =
		        (long)ipc__opt_num(u, "msgsize",
		                           (unsigned long long)read_proc(
		                                   "msgsize_default", 8192));
		ap = &attr;
	}
	for (int attempt = 0;; attempt++) {
		m->rx = create_one(m, m->rx_name, O_RDONLY, mode, ap, &err);
		if (m->rx == (mqd_t)-1 && err == EEXIST && attempt < 2) {
			int r = reclaim(m);
			if (r < 0) {
				return r;
			}
			continue;
		}
		if (m->rx == (mqd_t)-1) {
			return create_error(err, m->uri, ap);
		}
		if (flock(m->rx, LOCK_EX | LOCK_NB) != 0) {
			return ipc__err(-EEXIST, m->uri,
			                "another process is creating this "
			                "channel");
		}
		m->tx = create_one(m, m->tx_name, O_WRONLY, mode, ap, &err);
		if (m->tx == (mqd_t)-1 && err == EEXIST && attempt < 2) {
			/* Left over alone: drop ours and reclaim both. */
			unlink_if_same(m->rx_name, m->rx, 1);
			mq_close(m->rx);
			m->rx = (mqd_t)-1;
			int r = reclaim(m);
			if (r < 0) {
				return r;
			}
			continue;
		}
		if (m->tx == (mqd_t)-1) {
			int r = create_error(err, m->uri, ap);
			unlink_if_same(m->rx_name, m->rx, 1);
			return r;
		}
		return 0;
	}
}

static int
read_units(struct mq_chan *m)
{
	struct mq_attr ra, ta;

	if (mq_getattr(m->rx, &ra) < 0 || mq_getattr(m->tx, &ta) < 0) {
		return ipc__errno(-errno, m->uri, "mq_getattr");
	}
	if (ra.mq_msgsize < (long)MQ_MINUNIT ||
	    ta.mq_msgsize < (long)MQ_MINUNIT) {
		return ipc__err(-EPROTO, m->uri,
		                "queue msgsize below %u bytes: not a libipc "
		                "queue",
		                MQ_MINUNIT);
	}
	m->rx_unit = (size_t)ra.mq_msgsize;
	m->tx_unit = (size_t)ta.mq_msgsize;
	m->rbuf = malloc(m->rx_unit);
	m->tbuf = malloc(m->tx_unit);
	if (m->rbuf == NULL || m->tbuf == NULL) {
		return ipc__err(-ENOMEM, m->uri, "out of memory");
	}
	return 0;
}

static int
send_ctl(struct mq_chan *m, enum ipc_frag_kind kind, uint32_t arg)
{
	unsigned char u[IPC_FRAG_HDR];
	size_t n = ipc__frag_ctl(u, kind, arg);
	int r;

	do {
		r = mq_send(m->tx, (const char *)u, n, 0);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int
open_opener(struct mq_chan *m)
{
	uint32_t pid = 0;
	ssize_t n;

	m->rx = mq_open(m->rx_name, O_RDONLY | O_NONBLOCK);
	if (m->rx == (mqd_t)-1) {
		if (errno == ENOENT) {
			return ipc__err(-ENOENT, m->uri,
			                "no such channel: nobody created it "
			                "(or its peer already connected)");
		}
		return ipc__errno(-errno, m->uri, "mq_open %s", m->rx_name);
	}
	if (flock(m->rx, LOCK_EX | LOCK_NB) != 0) {
		return ipc__err(-EBUSY, m->uri,
		                "another process is connecting to this "
		                "channel");
	}
	m->tx = mq_open(m->tx_name, O_WRONLY | O_NONBLOCK);
	if (m->tx == (mqd_t)-1) {
		if (errno == ENOENT) {
			return ipc__err(-ENOENT, m->uri,
			                "channel is still being created");
		}
		return ipc__errno(-errno, m->uri, "mq_open %s", m->tx_name);
	}
	/* Queue names are anybody's: before anything is read from them,
	 * their owner must be trusted (the creator's uid). */
	struct ipc_cred ct;
	int r = ipc__cred_fd_owner(m->rx, &m->cred, m->uri);
	if (r == 0) {
		r = ipc__cred_fd_owner(m->tx, &ct, m->uri);
	}
	if (r == 0) {
		r = ipc__trust_check(&m->trust, m->uri,
		                     "the channel's creator", &m->cred);
	}
	if (r == 0) {
		r = ipc__trust_check(&m->trust, m->uri,
		                     "the channel's creator", &ct);
	}
	if (r < 0) {
		return r;
	}
	if (lock_gone(m->tx)) {
		return ipc__err(-ECONNREFUSED, m->uri,
		                "the creator of this channel is gone (stale "
		                "queues: the next IPC_CREATE reclaims them)");
	}
	r = read_units(m);
	if (r < 0) {
		return r;
	}
	do {
		n = mq_receive(m->rx, (char *)m->rbuf, m->rx_unit, NULL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN) {
			return ipc__err(-ENOENT, m->uri,
			                "channel is still being created");
		}
		return ipc__errno(-errno, m->uri, "mq_receive");
	}
	r = ipc__frag_rx_feed(&m->fr, m->rbuf, (size_t)n, MQ_MAXMSG, &pid,
	                      m->uri);
	if (r != IPC_FRAG_HELLO || pid == 0 || pid > INT_MAX) {
		return ipc__err(-EPROTO, m->uri,
		                "the queue did not start with the creator's "
		                "hello");
	}
	r = send_ctl(m, IPC_FRAG_HELLO, (uint32_t)getpid());
	if (r < 0) {
		return ipc__errno(r == -EAGAIN ? -ECONNREFUSED : r, m->uri,
		                  "cannot greet the creator");
	}
	m->cred.pid = (pid_t)pid;
	peer_up(m, (pid_t)pid);
	unlink_if_same(m->rx_name, m->rx, 0);
	unlink_if_same(m->tx_name, m->tx, 0);
	return 0;
}

static int
mq_drv_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct mq_chan *m = ipc__priv(ch);
	int r;

	chan_init(m, ch);
	m->creator = (flags & IPC_CREATE) != 0;
	r = ipc__trust_parse(&m->trust, u, !m->creator);
	if (r < 0) {
		goto fail;
	}
	snprintf(m->rx_name, sizeof(m->rx_name), IPC_MQ_PREFIX "%s.%d",
	         u->name, m->creator ? 1 : 0);
	snprintf(m->tx_name, sizeof(m->tx_name), IPC_MQ_PREFIX "%s.%d",
	         u->name, m->creator ? 0 : 1);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0) {
		r = ipc__errno(-errno, m->uri, "epoll_create1");
		goto fail;
	}
	if (m->creator) {
		r = open_creator(m, u);
		if (r == 0) {
			r = read_units(m);
		}
		if (r == 0) {
			r = send_ctl(m, IPC_FRAG_HELLO, (uint32_t)getpid());
			if (r < 0) {
				r = ipc__errno(r, m->uri, "mq_send hello");
			}
		}
		if (r == 0) {
			r = names_still_ours(m);
		}
		if (r < 0 && m->rx != (mqd_t)-1 && m->tx != (mqd_t)-1) {
			unlink_if_same(m->rx_name, m->rx, 1);
			unlink_if_same(m->tx_name, m->tx, 1);
		}
	} else {
		r = open_opener(m);
	}
	if (r < 0) {
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN};
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->rx, &ev) < 0) {
		r = ipc__errno(-errno, m->uri, "epoll_ctl");
		if (m->creator) {
			unlink_if_same(m->rx_name, m->rx, 1);
			unlink_if_same(m->tx_name, m->tx, 1);
		}
		goto fail;
	}
	ch->max_msg = MQ_MAXMSG;
	return 0;
fail:
	chan_release(m);
	return r;
}

/* --------------------------------------------------------------- slots -- */

static ssize_t
mq_drv_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct mq_chan *m = ipc__priv(ch);
	ssize_t r;

	if (atomic_load(&m->peer) == PEER_NONE) {
		discover(m);
		if (atomic_load(&m->peer) == PEER_NONE) {
			return -EAGAIN; /* the opener has not arrived */
		}
	}
	pthread_mutex_lock(&m->tx_mu);
	r = tx_locked(m, buf, len);
	pthread_mutex_unlock(&m->tx_mu);
	return r;
}

static int
mq_drv_detach(ipc_channel *ch)
{
	struct mq_chan *m = ipc__priv(ch);
	int r;

	pthread_mutex_lock(&m->tx_mu);
	r = ipc__frag_tx_detach(&m->ft);
	if (r == 0 && m->ft.active) {
		atomic_store(&m->tx_detached, 1);
	}
	pthread_mutex_unlock(&m->tx_mu);
	return r;
}

static ssize_t
mq_drv_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct mq_chan *m = ipc__priv(ch);
	ssize_t r;

	pthread_mutex_lock(&m->rx_mu);
	r = rx_locked(m, buf, cap);
	pthread_mutex_unlock(&m->rx_mu);
	if (r == -EAGAIN) {
		kick(m);
	}
	return r;
}

static int
mq_drv_pollfds(ipc_channel *ch, short events, struct pollfd *pfd,
               int *retry_ms)
{
	struct mq_chan *m = ipc__priv(ch);
	int peer = atomic_load(&m->peer);
	int n = 0;

	if ((events & IPC_POLLIN) || peer == PEER_NONE) {
		pfd[n++] = (struct pollfd){.fd = m->rx, .events = POLLIN};
	}
	if (peer == PEER_NONE && (events & IPC_POLLOUT)) {
		/* The opener's hello wakes us, unless another thread of
		 * ours reads it first: look again now and then. */
		*retry_ms = NOPEER_RETRY;
	}
	if (peer != PEER_NONE &&
	    ((events & IPC_POLLOUT) || atomic_load(&m->tx_detached))) {
		pfd[n++] = (struct pollfd){.fd = m->tx, .events = POLLOUT};
	}
	if (peer == PEER_UP) {
		if (m->pidfd >= 0) {
			pfd[n++] = (struct pollfd){.fd = m->pidfd,
			                           .events = POLLIN};
		} else {
			*retry_ms = LIVE_RETRY;
		}
	}
	return n;
}

static short
mq_drv_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct mq_chan *m = ipc__priv(ch);
	short out = 0;
	int died = 0;

	if (pfd != NULL) {
		int pidfd = atomic_load(&m->peer) == PEER_NONE ? -1 : m->pidfd;
		for (int i = 0; i < npfd; i++) {
			if (pidfd >= 0 && pfd[i].fd == pidfd &&
			    (pfd[i].revents & POLLIN)) {
				died = 1;
			}
		}
		kick(m);
	}
	if (atomic_load(&m->peer) == PEER_NONE && pfd != NULL) {
		discover(m);
	}
	if (events & IPC_POLLIN) {
		pthread_mutex_lock(&m->rx_mu);
		if (!m->fr.ready && !m->reof && m->rerr == 0 && pfd != NULL) {
			int r = pump(m);
			if (r == -EAGAIN && (died || peer_gone(m))) {
				r = pump(m);
				if (r == -EAGAIN) {
					ipc__frag_rx_drop(&m->fr);
					m->reof = 1;
				}
			}
		}
		if (m->fr.ready || m->reof) {
			out |= IPC_POLLIN;
		}
		if (m->rerr != 0) {
			out |= IPC_POLLIN | IPC_POLLERR;
		}
		pthread_mutex_unlock(&m->rx_mu);
	}
	if (events & IPC_POLLOUT) {
		int p = atomic_load(&m->peer);
		if (p == PEER_GONE || m->werr != 0) {
			out |= IPC_POLLOUT;
		} else if (p == PEER_UP && pfd != NULL &&
		           !atomic_load(&m->tx_detached)) {
			for (int i = 0; i < npfd; i++) {
				if (pfd[i].fd == m->tx &&
				    (pfd[i].revents & POLLOUT)) {
					out |= IPC_POLLOUT;
				}
			}
		}
	}
	if (died || atomic_load(&m->peer) == PEER_GONE) {
		out |= IPC_POLLHUP;
	}
	return out;
}

static int
mq_drv_fd(const ipc_channel *ch)
{
	const struct mq_chan *m = ipc__cpriv(ch);

	return m->epfd;
}

/* Push a detached message out before closing, as long as the peer lives,
 * up to the channel's timeout (forever by default). */
static int
flush_on_close(ipc_channel *ch, struct mq_chan *m)
{
	struct timespec dl;
	int r = 0;

	if (ch->timeout_ms >= 0) {
		ipc__deadline(&dl, ch->timeout_ms);
	}
	pthread_mutex_lock(&m->tx_mu);
	while (m->ft.active && m->werr == 0) {
		r = push(m);
		if (r != -EAGAIN) {
			break;
		}
		if (peer_gone(m)) {
			r = tx_epipe(m);
			break;
		}
		int rem = ch->timeout_ms >= 0 ? ipc__remaining_ms(&dl) : -1;
		if (rem == 0) {
			r = ipc__err(-EIO, m->uri,
			             "closed before a message could be sent "
			             "whole");
			break;
		}
		struct pollfd p[2] = {{.fd = m->tx, .events = POLLOUT},
		                      {.fd = m->pidfd, .events = POLLIN}};
		int t = rem < 0 || rem > LIVE_RETRY ? LIVE_RETRY : rem;
		pthread_mutex_unlock(&m->tx_mu);
		(void)poll(p, m->pidfd >= 0 ? 2 : 1, t);
		pthread_mutex_lock(&m->tx_mu);
	}
	pthread_mutex_unlock(&m->tx_mu);
	return r == -EPIPE ? 0 : r;
}

static int
mq_drv_close(ipc_channel *ch)
{
	struct mq_chan *m = ipc__priv(ch);
	int r = 0;

	if (m->owner != getpid()) {
		/* A forked child drops its copy: the channel is not its. */
		chan_release(m);
		return 0;
	}
	if (atomic_load(&m->peer) == PEER_UP) {
		r = flush_on_close(ch, m);
	}
	/* From here the peer sees us gone ... */
	(void)flock(m->rx, LOCK_UN);
	/* ... and a peer waiting for a message wakes on CLOSE. */
	if (atomic_load(&m->peer) == PEER_UP && !peer_gone(m)) {
		(void)send_ctl(m, IPC_FRAG_CLOSE, 0);
	}
	/* A peer waiting for room in our queue wakes too. */
	while (mq_receive(m->rx, (char *)m->rbuf, m->rx_unit, NULL) >= 0) {
	}
	/* No peer ever came: the names are still ours. */
	unlink_if_same(m->rx_name, m->rx, 0);
	unlink_if_same(m->tx_name, m->tx, 0);
	chan_release(m);
	return r;
}

static int
mq_drv_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct mq_chan *m = ipc__cpriv(ch);
	struct ipc_cred c = {0};

	if (atomic_load(&m->peer) != PEER_NONE) {
		c = m->cred;
		if (!c.known) {
			return ipc__err(
			        -ESRCH, ch->uri,
			        "ipc_peer_cred: the peer (pid %ld) was "
			        "gone before it could be identified",
			        (long)c.pid);
		}
	}
	return ipc__cred_out(&c, ch->uri, pid, uid, gid);
}

const struct ipc_driver ipc_driver_mq = {
        .scheme = "mq",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_NAME,
        .opts = mq_opts,
        .priv_size = sizeof(struct mq_chan),
        .open = mq_drv_open,
        .send = mq_drv_send,
        .detach = mq_drv_detach,
        .recv = mq_drv_recv,
        .close = mq_drv_close,
        .pollfds = mq_drv_pollfds,
        .ready = mq_drv_ready,
        .fd = mq_drv_fd,
        .peer_cred = mq_drv_peer_cred,
};
