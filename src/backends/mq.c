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
 * the queues, wakes a waiter when the peer dies; a CLOSE unit, sent before
 * the flock is let go, wakes it when the peer closes, so a flock gone
 * without a CLOSE is a death (core/queue.c).  Closing also drains the
 * queue we read, so a peer blocked on a full queue wakes and sees the
 * close.
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
#include "core/queue.h"
#include "core/trust.h"

#define MQ_MAXMSG    ((size_t)16 << 20) /* largest libipc message */
#define MQ_MINUNIT   32u                /* smallest msgsize accepted */
#define MQ_PROC      "/proc/sys/fs/mqueue/"
#define MQ_NAMELEN   (sizeof(IPC_MQ_PREFIX) + 200 + 2)
#define NOPEER_RETRY 100 /* ms: creator polling for the opener's HELLO */
#define LIVE_RETRY   200 /* ms: liveness polling without pidfd */

struct mq_chan {
	struct ipc_queue q; /* first: the ops get &m->q */
	int creator;
	mqd_t rx, tx;
	int epfd; /* ipc_fd: rx queue and pidfd */
	char rx_name[MQ_NAMELEN], tx_name[MQ_NAMELEN];
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

/* Has an opener already greeted us?  It removes the names once it has
 * (after its hello), so a name gone with a message waiting in our receive
 * queue is our opener's doing, not a racing creator's: only a process
 * holding our queue can have put it there. */
static int
greeted(struct mq_chan *m)
{
	struct mq_attr at;

	return mq_getattr(m->rx, &at) == 0 && at.mq_curmsgs > 0;
}

/* 0 when both names still name our queues (or our opener, already here,
 * removed them), or a recorded error. */
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
		ok = ipc__errno(-e, m->q.uri,
		                "cannot check that the queues just created "
		                "are still ours");
	} else if ((a != (mqd_t)-1 ? same_queue(a, m->rx) : greeted(m)) &&
	           (b != (mqd_t)-1 ? same_queue(b, m->tx) : greeted(m))) {
		ok = 0;
	} else {
		ok = ipc__err(-EEXIST, m->q.uri,
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

static struct mq_chan *
mq_of(struct ipc_queue *q)
{
	return (struct mq_chan *)q; /* q is the first member */
}

/* Has the peer closed or died?  Sticky once true.  The flock answers for
 * both, unless a child the peer forked still holds its descriptor; so
 * where it matters (an empty or full queue) the pidfd is asked too. */
static int
q_gone(struct ipc_queue *q, int thorough)
{
	int p = atomic_load(&q->peer);

	if (p == IPC_Q_GONE) {
		return 1;
	}
	if (p == IPC_Q_UP && (lock_gone(mq_of(q)->tx) ||
	                      (thorough && ipc__pidfd_dead(q->pidfd)))) {
		atomic_store(&q->peer, IPC_Q_GONE);
		return 1;
	}
	return 0;
}

static int send_ctl(struct mq_chan *m, enum ipc_frag_kind kind, uint32_t arg);

/* The creator: the opener's hello names its pid.  A queue does not say
 * who sent: the pid is the opener's word, checked to be a live process
 * whose owner passes allow_uid=/allow_gid=. */
static int
q_hello(struct ipc_queue *q, uint32_t arg)
{
	struct mq_chan *m = mq_of(q);
	struct ipc_cred c = {0};

	if (!m->creator || atomic_load(&q->peer) != IPC_Q_NONE || arg == 0 ||
	    arg > INT_MAX) {
		return ipc__err(-EPROTO, q->uri,
		                "recv: unexpected hello from the peer");
	}
	if (ipc__cred_pid((pid_t)arg, &c) < 0) {
		c = (struct ipc_cred){0};
	}
	int r = ipc__trust_check(&q->trust, q->uri, "the peer", &c);
	if (r < 0) {
		/* Refused: it hears our end. */
		(void)send_ctl(m, IPC_FRAG_CLOSE, 0);
		atomic_store(&q->peer, IPC_Q_GONE);
		return r;
	}
	q->cred = c;
	ipc__queue_peer_up(q, (pid_t)arg, m->epfd);
	return 0;
}

static ssize_t
q_recv_unit(struct ipc_queue *q)
{
	for (;;) {
		ssize_t n = mq_receive(mq_of(q)->rx, (char *)q->rbuf,
		                       q->rx_unit, NULL);
		if (n >= 0 || errno == EAGAIN) {
			return n >= 0 ? n : -EAGAIN;
		}
		if (errno != EINTR) {
			return ipc__errno(-errno, q->uri, "recv: mq_receive");
		}
	}
}

static int
q_send_unit(struct ipc_queue *q, size_t n)
{
	for (;;) {
		if (mq_send(mq_of(q)->tx, (const char *)q->tbuf, n, 0) == 0) {
			return 0;
		}
		if (errno == EAGAIN) {
			return -EAGAIN;
		}
		if (errno != EINTR) {
			return ipc__errno(-errno, q->uri, "send: mq_send");
		}
	}
}

static int
q_wait_room(struct ipc_queue *q, const struct timespec *dl)
{
	struct pollfd p[2] = {{.fd = mq_of(q)->tx, .events = POLLOUT},
	                      {.fd = q->pidfd, .events = POLLIN}};
	int rem = dl != NULL ? ipc__remaining_ms(dl) : -1;
	int t = rem < 0 || rem > LIVE_RETRY ? LIVE_RETRY : rem;

	(void)poll(p, q->pidfd >= 0 ? 2 : 1, t);
	return 0;
}

static const struct ipc_queue_ops mq_qops = {
        .recv_unit = q_recv_unit,
        .send_unit = q_send_unit,
        .gone = q_gone,
        .hello = q_hello,
        .wait_room = q_wait_room,
};

/* The creator: has the opener's HELLO arrived? */
static void
discover(struct mq_chan *m)
{
	struct ipc_queue *q = &m->q;

	pthread_mutex_lock(&q->rx_mu);
	if (atomic_load(&q->peer) == IPC_Q_NONE && !q->fr.ready &&
	    q->rerr == 0 && !q->reof) {
		(void)ipc__queue_pump(q);
	}
	pthread_mutex_unlock(&q->rx_mu);
}

/* ---------------------------------------------------------------- open -- */

static void
chan_init(struct mq_chan *m, ipc_channel *ch)
{
	ipc__queue_init(&m->q, &mq_qops, ch->uri, MQ_MAXMSG);
	m->rx = m->tx = (mqd_t)-1;
	m->epfd = -1;
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
	ipc__queue_fini(&m->q);
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
		r = ipc__err(-EEXIST, m->q.uri,
		             "the queues exist and a live process uses them");
	} else if ((ea != 0 && ea != ENOENT) || (eb != 0 && eb != ENOENT)) {
		r = ipc__err(-EEXIST, m->q.uri,
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
			return create_error(err, m->q.uri, ap);
		}
		if (flock(m->rx, LOCK_EX | LOCK_NB) != 0) {
			return ipc__err(-EEXIST, m->q.uri,
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
			int r = create_error(err, m->q.uri, ap);
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
		return ipc__errno(-errno, m->q.uri, "mq_getattr");
	}
	if (ra.mq_msgsize < (long)MQ_MINUNIT ||
	    ta.mq_msgsize < (long)MQ_MINUNIT) {
		return ipc__err(-EPROTO, m->q.uri,
		                "queue msgsize below %u bytes: not a libipc "
		                "queue",
		                MQ_MINUNIT);
	}
	return ipc__queue_bufs(&m->q, (size_t)ra.mq_msgsize,
	                       (size_t)ta.mq_msgsize, 0);
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
			return ipc__err(-ENOENT, m->q.uri,
			                "no such channel: nobody created it "
			                "(or its peer already connected)");
		}
		return ipc__errno(-errno, m->q.uri, "mq_open %s", m->rx_name);
	}
	if (flock(m->rx, LOCK_EX | LOCK_NB) != 0) {
		return ipc__err(-EBUSY, m->q.uri,
		                "another process is connecting to this "
		                "channel");
	}
	m->tx = mq_open(m->tx_name, O_WRONLY | O_NONBLOCK);
	if (m->tx == (mqd_t)-1) {
		if (errno == ENOENT) {
			return ipc__err(-ENOENT, m->q.uri,
			                "channel is still being created");
		}
		return ipc__errno(-errno, m->q.uri, "mq_open %s", m->tx_name);
	}
	/* Queue names are anybody's: before anything is read from them,
	 * their owner must be trusted (the creator's uid). */
	struct ipc_cred ct;
	int r = ipc__cred_fd_owner(m->rx, &m->q.cred, m->q.uri);
	if (r == 0) {
		r = ipc__cred_fd_owner(m->tx, &ct, m->q.uri);
	}
	if (r == 0) {
		r = ipc__trust_check(&m->q.trust, m->q.uri,
		                     "the channel's creator", &m->q.cred);
	}
	if (r == 0) {
		r = ipc__trust_check(&m->q.trust, m->q.uri,
		                     "the channel's creator", &ct);
	}
	if (r < 0) {
		return r;
	}
	if (lock_gone(m->tx)) {
		return ipc__err(-ECONNREFUSED, m->q.uri,
		                "the creator of this channel is gone (stale "
		                "queues: the next IPC_CREATE reclaims them)");
	}
	r = read_units(m);
	if (r < 0) {
		return r;
	}
	do {
		n = mq_receive(m->rx, (char *)m->q.rbuf, m->q.rx_unit, NULL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN) {
			return ipc__err(-ENOENT, m->q.uri,
			                "channel is still being created");
		}
		return ipc__errno(-errno, m->q.uri, "mq_receive");
	}
	r = ipc__frag_rx_feed(&m->q.fr, m->q.rbuf, (size_t)n, MQ_MAXMSG, &pid,
	                      m->q.uri);
	if (r != IPC_FRAG_HELLO || pid == 0 || pid > INT_MAX) {
		return ipc__err(-EPROTO, m->q.uri,
		                "the queue did not start with the creator's "
		                "hello");
	}
	r = send_ctl(m, IPC_FRAG_HELLO, (uint32_t)getpid());
	if (r < 0) {
		return ipc__errno(r == -EAGAIN ? -ECONNREFUSED : r, m->q.uri,
		                  "cannot greet the creator");
	}
	m->q.cred.pid = (pid_t)pid;
	ipc__queue_peer_up(&m->q, (pid_t)pid, m->epfd);
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
	r = ipc__trust_parse(&m->q.trust, u, !m->creator);
	if (r < 0) {
		goto fail;
	}
	snprintf(m->rx_name, sizeof(m->rx_name), IPC_MQ_PREFIX "%s.%d",
	         u->name, m->creator ? 1 : 0);
	snprintf(m->tx_name, sizeof(m->tx_name), IPC_MQ_PREFIX "%s.%d",
	         u->name, m->creator ? 0 : 1);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0) {
		r = ipc__errno(-errno, m->q.uri, "epoll_create1");
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
				r = ipc__errno(r, m->q.uri, "mq_send hello");
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
		r = ipc__errno(-errno, m->q.uri, "epoll_ctl");
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

	if (atomic_load(&m->q.peer) == IPC_Q_NONE) {
		discover(m);
		if (atomic_load(&m->q.peer) == IPC_Q_NONE) {
			return -EAGAIN; /* the opener has not arrived */
		}
	}
	pthread_mutex_lock(&m->q.tx_mu);
	r = ipc__queue_tx_locked(&m->q, buf, len);
	pthread_mutex_unlock(&m->q.tx_mu);
	return r;
}

static int
mq_drv_detach(ipc_channel *ch)
{
	return ipc__queue_detach(&((struct mq_chan *)ipc__priv(ch))->q);
}

static ssize_t
mq_drv_recv(ipc_channel *ch, void *buf, size_t cap)
{
	return ipc__queue_recv(&((struct mq_chan *)ipc__priv(ch))->q, buf,
	                       cap);
}

static int
mq_drv_pollfds(ipc_channel *ch, short events, struct pollfd *pfd,
               int *retry_ms)
{
	struct mq_chan *m = ipc__priv(ch);
	int peer = atomic_load(&m->q.peer);
	int n = 0;

	if ((events & IPC_POLLIN) || peer == IPC_Q_NONE) {
		pfd[n++] = (struct pollfd){.fd = m->rx, .events = POLLIN};
	}
	if (peer == IPC_Q_NONE && (events & IPC_POLLOUT)) {
		/* The opener's hello wakes us, unless another thread of
		 * ours reads it first: look again now and then. */
		*retry_ms = NOPEER_RETRY;
	}
	if (peer != IPC_Q_NONE &&
	    ((events & IPC_POLLOUT) || atomic_load(&m->q.tx_detached))) {
		pfd[n++] = (struct pollfd){.fd = m->tx, .events = POLLOUT};
	}
	if (peer == IPC_Q_UP) {
		if (m->q.pidfd >= 0) {
			pfd[n++] = (struct pollfd){.fd = m->q.pidfd,
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
	struct ipc_queue *q = &m->q;
	short out = 0;
	int died = 0;

	if (pfd != NULL) {
		int pidfd =
		        atomic_load(&q->peer) == IPC_Q_NONE ? -1 : q->pidfd;
		for (int i = 0; i < npfd; i++) {
			if (pidfd >= 0 && pfd[i].fd == pidfd &&
			    (pfd[i].revents & POLLIN)) {
				died = 1;
			}
		}
		ipc__queue_kick(q);
	}
	if (atomic_load(&q->peer) == IPC_Q_NONE && pfd != NULL) {
		discover(m);
	}
	if (events & IPC_POLLIN) {
		pthread_mutex_lock(&q->rx_mu);
		if (!q->fr.ready && !q->reof && q->rerr == 0 && pfd != NULL) {
			(void)ipc__queue_rx_step(q, died);
		}
		if (q->fr.ready || q->reof) {
			out |= IPC_POLLIN;
		}
		if (q->rerr != 0) {
			out |= IPC_POLLIN | IPC_POLLERR;
		}
		pthread_mutex_unlock(&q->rx_mu);
	}
	if (events & IPC_POLLOUT) {
		int p = atomic_load(&q->peer);
		if (p == IPC_Q_GONE || q->werr != 0) {
			out |= IPC_POLLOUT;
		} else if (p == IPC_Q_UP && pfd != NULL &&
		           !atomic_load(&q->tx_detached)) {
			for (int i = 0; i < npfd; i++) {
				if (pfd[i].fd == m->tx &&
				    (pfd[i].revents & POLLOUT)) {
					out |= IPC_POLLOUT;
				}
			}
		}
	}
	if (died || atomic_load(&q->peer) == IPC_Q_GONE) {
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

static int
mq_drv_close(ipc_channel *ch)
{
	struct mq_chan *m = ipc__priv(ch);
	int r;

	if (m->q.owner != getpid()) {
		/* A forked child drops its copy: the channel is not its. */
		chan_release(m);
		return 0;
	}
	/* The rest of a detached message, then the close record: a peer
	 * that finds our flock gone without it knows that we died. */
	r = ipc__queue_flush(&m->q, ch->timeout_ms);
	ipc__queue_close_record(&m->q);
	(void)flock(m->rx, LOCK_UN);
	/* A peer waiting for room in our queue wakes too. */
	while (mq_receive(m->rx, (char *)m->q.rbuf, m->q.rx_unit, NULL) >= 0) {
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

	if (atomic_load(&m->q.peer) != IPC_Q_NONE) {
		c = m->q.cred;
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
