/*
 * sysvmq://NAME: a System V message queue (msgget/msgsnd/msgrcv) and a
 * System V semaphore set (see sysv_sem.h for keys, slots and cleanup).
 *
 * One queue carries both directions: message type 1 is creator -> opener,
 * type 2 opener -> creator.  Each queue message is one unit of
 * src/core/frag.h, so messages of any size up to 16 MiB travel as ordered
 * fragments of at most msgsize bytes.
 *
 * Flow control.  Both directions share the queue's msg_qbytes, so each
 * gets half of it as credit, counted in 64-byte units in its sender's TXW
 * semaphore: a side can never fill the queue and block the other
 * direction.  Sending a unit of u credits is one semop {TXW[me] -= u,
 * SLOT[peer] == 0, RXW[peer] += u} (credit, the peer is alive, and a
 * doorbell) and one msgsnd; receiving is one msgrcv and one semop
 * {RXW[me] -= u, TXW[peer] += u}.  RXW is thus the number of units in
 * flight towards a side.
 *
 * Waiting.  System V queues are not pollable.  A blocking send or recv
 * sleeps in semtimedop on its semaphore (RXW >= 1 to receive, TXW >= u to
 * send, the opener's SLOT == 0 for a creator waiting for its peer), which
 * the peer's operations and its death (SEM_UNDO) wake at once: no cost
 * while idle.  ipc_poll cannot wait on a semaphore: it polls the peer's
 * pidfd and re-checks after 0, 1, 2, 4 ... 50 ms (the backoff restarts
 * whenever a unit moved), so a poll loop sees a message up to 50 ms late after
 * a quiet spell and costs at most ~20 wake-ups a second while idle.  ipc_fd()
 * comes from the core's helper thread (core/readyfd.c), which sleeps in
 * this driver's wait slot.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#include "backends/sysv_sem.h"
#include "core/driver.h"
#include "core/frag.h"
#include "core/queue.h"

#define KIND         "sysvmq"
#define SMQ_MAXMSG   ((size_t)16 << 20)
#define CU           64u    /* bytes per credit unit */
#define CRED_MAX     16383u /* credit units per direction */
#define DEATH_TX     16384  /* added to TXW by a dying peer */
#define UNIT_MIN     64u
#define UNIT_MAX     524272u /* stored /16 in a 15-bit semaphore */
#define POLL_MAX_MS  50
#define POLL_BUSY_MS 2 /* while a message is in flight */
#define WAIT_CAP_MS  500
#define MSGMAX_PATH  "/proc/sys/kernel/msgmax"
#define MSGMNB_PATH  "/proc/sys/kernel/msgmnb"

struct smq_buf {
	long mtype;
	unsigned char text[];
};

struct smq_chan {
	struct ipc_queue q; /* first: the ops get &m->q */
	int side;           /* SV_CREATOR or SV_OPENER */
	struct sv_ids ids;
	int msqid;
	size_t unit; /* bytes per queue message, fragment header included */

	_Atomic int refused; /* creator: the peer failed allow_uid= */
	pthread_mutex_t peer_mu;
	_Atomic int backoff; /* ms, for ipc_poll */
	_Atomic int idle;    /* wake-ups that found nothing */
	_Atomic int tx_need; /* credit units the blocked send waits for */
};

static const struct ipc_optspec smq_opts[] = {
        {"msgsize", IPC_OPT_SIZE, UNIT_MIN, UNIT_MAX, NULL,
         "bytes per queue message (default: a quarter of qbytes, at most "
         "kernel.msgmax)"},
        {"qbytes", IPC_OPT_SIZE, 1024, (1u << 30), NULL,
         "queue capacity, both directions (default: kernel.msgmnb)"},
        {"mode", IPC_OPT_MODE, 0, 0777, NULL,
         "permissions of created objects, default 0600"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

static long
read_long(const char *path, long def)
{
	long v = def;
	FILE *f = fopen(path, "re");

	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1) {
			v = def;
		}
		fclose(f);
	}
	return v;
}

static unsigned
units(size_t n)
{
	return (unsigned)((n + CU - 1) / CU);
}

/* ---------------------------------------------------------------- peer -- */

static void
set_peer_up(struct smq_chan *m, pid_t pid)
{
	pthread_mutex_lock(&m->peer_mu);
	if (atomic_load(&m->q.peer) == IPC_Q_NONE) {
		if (m->side == SV_CREATOR) {
			/* The opener: who the kernel says claimed its slot. */
			(void)sv_opener_cred(m->ids.semid, &m->q.cred);
			if (ipc__trust_check(&m->q.trust, m->q.uri, "the peer",
			                     &m->q.cred) < 0) {
				atomic_store(&m->refused, 1);
				atomic_store(&m->q.peer, IPC_Q_GONE);
				pthread_mutex_unlock(&m->peer_mu);
				return;
			}
		}
		ipc__queue_peer_up(&m->q, pid, -1);
	}
	pthread_mutex_unlock(&m->peer_mu);
}

/* Look at the set: learn of the peer's arrival, or of its leaving. */
static int
peer_check(struct smq_chan *m)
{
	unsigned short v[SV_NSEMS];
	int peer = 1 - m->side;
	int p = atomic_load(&m->q.peer);

	if (p == IPC_Q_GONE) {
		return p;
	}
	if (p == IPC_Q_UP) {
		if (sv_peer_held(m->ids.semid, m->side)) {
			return IPC_Q_UP;
		}
		atomic_store(&m->q.peer, IPC_Q_GONE);
		return IPC_Q_GONE;
	}
	if (sv_getall(m->ids.semid, v) < 0) {
		atomic_store(&m->q.peer, IPC_Q_GONE); /* removed */
		return IPC_Q_GONE;
	}
	pid_t pid = sv_pid(v, peer);
	if (pid == 0) {
		return IPC_Q_NONE;
	}
	if (p == IPC_Q_NONE) {
		set_peer_up(m, pid);
	}
	if (v[SV_SLOT + peer] != 0) {
		atomic_store(&m->q.peer, IPC_Q_GONE);
		return IPC_Q_GONE;
	}
	return IPC_Q_UP;
}

/* ------------------------------------------------------------- receive -- */

static void
give_credit(struct smq_chan *m, unsigned u)
{
	int peer = 1 - m->side;
	struct sembuf ops[2] = {
	        {(unsigned short)(SV_RXW + m->side), (short)-u, IPC_NOWAIT},
	        {(unsigned short)(SV_TXW + peer), (short)u, IPC_NOWAIT},
	};

	if (sv_semop(m->ids.semid, ops, 2) < 0) {
		/* Only after the peer's death inflated its credit. */
		(void)sv_semop(m->ids.semid, &ops[0], 1);
		(void)sv_semop(m->ids.semid, &ops[1], 1);
	}
}

static struct smq_chan *
smq_of(struct ipc_queue *q)
{
	return (struct smq_chan *)q; /* q is the first member */
}

static ssize_t
q_recv_unit(struct ipc_queue *q)
{
	struct smq_chan *m = smq_of(q);
	long type = 2 - m->side;

	for (;;) {
		ssize_t n =
		        msgrcv(m->msqid, q->rbase, m->unit, type, IPC_NOWAIT);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == ENOMSG || errno == EAGAIN) {
				return -EAGAIN;
			}
			if (errno == EIDRM || errno == EINVAL) {
				return -EPIPE; /* removed by the peer's close
				                */
			}
			return ipc__errno(errno == E2BIG ? -EPROTO : -errno,
			                  q->uri, "recv: msgrcv");
		}
		give_credit(m, units((size_t)n));
		atomic_store(&m->idle, 0);
		atomic_store(&m->backoff, 0); /* progress: look again soon */
		return n;
	}
}

static int
q_gone(struct ipc_queue *q, int thorough)
{
	if (!thorough) {
		return atomic_load(&q->peer) == IPC_Q_GONE;
	}
	return peer_check(smq_of(q)) == IPC_Q_GONE;
}

/* ---------------------------------------------------------------- send -- */

/* Send the unit of n bytes in tbuf.  tx_mu held.  0, -EAGAIN, -EPIPE. */
static int
q_send_unit(struct ipc_queue *q, size_t n)
{
	struct smq_chan *m = smq_of(q);
	struct smq_buf *tbuf = (struct smq_buf *)q->tbase;
	int peer = 1 - m->side;
	unsigned u = units(n);
	struct sembuf ops[3] = {
	        {(unsigned short)(SV_TXW + m->side), (short)-u, IPC_NOWAIT},
	        {(unsigned short)(SV_SLOT + peer), 0, IPC_NOWAIT},
	        {(unsigned short)(SV_RXW + peer), (short)u, IPC_NOWAIT},
	};
	int r = sv_semop(m->ids.semid, ops, 3);

	if (r == -EAGAIN || r == -ERANGE) {
		int p = peer_check(m);
		if (p == IPC_Q_GONE) {
			return -EPIPE;
		}
		atomic_store(&m->tx_need, p == IPC_Q_NONE ? 0 : (int)u);
		return -EAGAIN;
	}
	if (r < 0) {
		atomic_store(&m->q.peer, IPC_Q_GONE);
		return -EPIPE; /* the set was removed */
	}
	if (atomic_load(&m->q.peer) == IPC_Q_NONE) {
		(void)peer_check(m);
	}
	tbuf->mtype = 1 + m->side;
	while (msgsnd(m->msqid, tbuf, n, IPC_NOWAIT) < 0) {
		if (errno == EINTR) {
			continue;
		}
		int e = errno;
		ops[0].sem_op = (short)u;
		ops[2].sem_op = (short)-u;
		ops[1] = ops[2];
		(void)sv_semop(m->ids.semid, ops, 2);
		if (e == EAGAIN) {
			/* Somebody else fills the queue: poll for room. */
			atomic_store(&m->tx_need, 0);
			return -EAGAIN;
		}
		atomic_store(&m->q.peer, IPC_Q_GONE);
		return -EPIPE;
	}
	return 0;
}

/* ---------------------------------------------------------------- open -- */

static const struct ipc_queue_ops smq_qops;

static void
chan_init(struct smq_chan *m, ipc_channel *ch)
{
	ipc__queue_init(&m->q, &smq_qops, ch->uri, SMQ_MAXMSG);
	m->ids.semid = -1;
	m->msqid = -1;
	atomic_init(&m->backoff, 1);
	atomic_init(&m->idle, 0);
	atomic_init(&m->tx_need, 0);
	pthread_mutex_init(&m->peer_mu, NULL);
}

static void
chan_free(struct smq_chan *m)
{
	ipc__queue_fini(&m->q);
	pthread_mutex_destroy(&m->peer_mu);
}

static void
remove_objects(struct smq_chan *m)
{
	if (m->msqid >= 0) {
		(void)msgctl(m->msqid, IPC_RMID, NULL);
	}
	if (m->ids.semid >= 0) {
		(void)semctl(m->ids.semid, 0, IPC_RMID);
	}
}

static int
alloc_bufs(struct smq_chan *m)
{
	return ipc__queue_bufs(&m->q, m->unit, m->unit,
	                       offsetof(struct smq_buf, text));
}

/* Size the queue and the units; fill and claim the new set. */
static int
configure(struct smq_chan *m, const struct ipc_uri *u)
{
	struct msqid_ds ds;
	long msgmax = read_long(MSGMAX_PATH, 8192);

	if (msgctl(m->msqid, IPC_STAT, &ds) < 0) {
		return ipc__errno(-errno, m->q.uri, "msgctl IPC_STAT");
	}
	if (ipc__opt_isset(u, "qbytes")) {
		ds.msg_qbytes = (msglen_t)ipc__opt_num(u, "qbytes", 0);
		if (msgctl(m->msqid, IPC_SET, &ds) < 0) {
			if (errno == EPERM) {
				return ipc__err(
				        -EINVAL, m->q.uri,
				        "qbytes %lu exceeds " MSGMNB_PATH
				        " (%ld) and this process may "
				        "not raise it "
				        "(CAP_SYS_RESOURCE)",
				        (unsigned long)ds.msg_qbytes,
				        read_long(MSGMNB_PATH, 16384));
			}
			return ipc__errno(-errno, m->q.uri, "msgctl IPC_SET");
		}
	}
	size_t cred = ds.msg_qbytes / 2 / CU;
	if (cred > CRED_MAX) {
		cred = CRED_MAX;
	}
	size_t unit = ds.msg_qbytes / 4;
	if (unit > (size_t)msgmax) {
		unit = (size_t)msgmax;
	}
	if (ipc__opt_isset(u, "msgsize")) {
		unit = (size_t)ipc__opt_num(u, "msgsize", 0);
		if (unit > (size_t)msgmax) {
			return ipc__err(-EINVAL, m->q.uri,
			                "msgsize %zu exceeds " MSGMAX_PATH
			                " (%ld)",
			                unit, msgmax);
		}
	}
	if (unit > UNIT_MAX) {
		unit = UNIT_MAX;
	}
	unit &= ~(size_t)15;
	if (unit < UNIT_MIN || units(unit) > cred) {
		return ipc__err(-EINVAL, m->q.uri,
		                "msgsize %zu does not fit half of the queue's "
		                "%lu bytes (qbytes=) or is below %u",
		                unit, (unsigned long)ds.msg_qbytes, UNIT_MIN);
	}
	m->unit = unit;
	int r = sv_setall(&m->ids, (unsigned short)(unit / 16), 0,
	                  (unsigned short)cred);
	if (r < 0) {
		return ipc__errno(r, m->q.uri, "semctl SETALL");
	}
	r = sv_claim(m->ids.semid, SV_CREATOR, 1, DEATH_TX);
	if (r < 0) {
		return ipc__errno(r, m->q.uri, "semop (claim)");
	}
	return alloc_bufs(m);
}

static int
sysv_create_error(int e, const char *uri, const char *what)
{
	if (e == ENOSPC) {
		return ipc__err(-ENOSPC, uri,
		                "%s: the system's limit of System V %s is "
		                "reached (see ipcs -l)",
		                what,
		                strcmp(what, "semget") == 0
		                        ? "semaphore sets"
		                        : "message queues");
	}
	return ipc__errno(-e, uri, "%s", what);
}

static int
open_creator(struct smq_chan *m, const struct ipc_uri *u)
{
	int mode = (int)ipc__opt_num(u, "mode", 0600);
	int retries = 0;
	int tr = ipc__trust_parse(&m->q.trust, u, 0);

	if (tr < 0) {
		return tr;
	}
	sv_tag(KIND, u->name, m->ids.tag);
	for (unsigned i = 0; i < SV_PROBES; i++) {
		key_t key = sv_key(KIND, u->name, i);
		sv_tag_key(m->ids.tag, KIND, key);
		int id = semget(key, SV_NSEMS, IPC_CREAT | IPC_EXCL | mode);
		if (id < 0 && errno != EEXIST) {
			return sysv_create_error(errno, m->q.uri, "semget");
		}
		if (id < 0) {
			id = semget(key, 0, 0);
			enum sv_found f =
			        id < 0 ? (errno == ENOENT ? SV_GONE
			                                  : SV_FOREIGN)
			               : sv_inspect(id, m->ids.tag);
			if (f == SV_INUSE) {
				return ipc__err(
				        -EEXIST, m->q.uri,
				        "channel exists and is in use");
			}
			if (f == SV_STALE) {
				int q = msgget(key, 0);
				if (q >= 0) {
					(void)msgctl(q, IPC_RMID, NULL);
				}
				(void)semctl(id, 0, IPC_RMID);
			}
			if ((f == SV_STALE || f == SV_GONE) && retries++ < 4) {
				i--; /* this probe again */
			}
			continue;
		}
		m->ids.key = key;
		m->ids.semid = id;
		m->msqid = msgget(key, IPC_CREAT | IPC_EXCL | mode);
		if (m->msqid < 0) {
			int e = errno;
			(void)semctl(id, 0, IPC_RMID);
			m->ids.semid = -1;
			if (e == EEXIST) {
				continue; /* a foreign queue holds the key */
			}
			return sysv_create_error(e, m->q.uri, "msgget");
		}
		int r = configure(m, u);
		if (r < 0) {
			remove_objects(m);
			m->msqid = m->ids.semid = -1;
		}
		return r;
	}
	return ipc__err(-EEXIST, m->q.uri,
	                "all %d System V keys of this name are taken by "
	                "other objects",
	                SV_PROBES);
}

static int
open_opener(struct smq_chan *m, const struct ipc_uri *u)
{
	unsigned short v[SV_NSEMS];
	int r = ipc__trust_parse(&m->q.trust, u, 1);

	if (r < 0) {
		return r;
	}
	r = sv_find(&m->ids, KIND, u->name, &m->q.trust, m->q.uri, &m->q.cred);
	if (r < 0) {
		return r;
	}
	r = sv_check_open(m->ids.semid, v, m->q.uri);
	if (r < 0) {
		return r;
	}
	m->msqid = msgget(m->ids.key, 0);
	if (m->msqid < 0) {
		if (errno == EACCES) {
			return ipc__err(-EACCES, m->q.uri,
			                "permission denied");
		}
		return ipc__err(-ENOENT, m->q.uri,
		                "channel is still being created");
	}
	/* The queue on the key is foreign until its owner is trusted. */
	struct msqid_ds qd;
	struct ipc_cred qc;
	if (msgctl(m->msqid, IPC_STAT, &qd) < 0) {
		return ipc__errno(-errno, m->q.uri, "msgctl IPC_STAT");
	}
	r = sv_trust(&qd.msg_perm, &m->q.trust, m->q.uri, &qc);
	if (r < 0) {
		return r;
	}
	m->unit = (size_t)v[SV_CONF] * 16;
	if (m->unit < UNIT_MIN || m->unit > UNIT_MAX) {
		return ipc__err(-EPROTO, m->q.uri,
		                "the semaphore set holds no valid unit size");
	}
	r = sv_claim(m->ids.semid, SV_OPENER, 1, DEATH_TX);
	if (r == -EAGAIN) {
		if (sv_getall(m->ids.semid, v) == 0 &&
		    sv_pid(v, SV_OPENER) != 0) {
			return ipc__err(-ECONNREFUSED, m->q.uri,
			                "channel already has its peer");
		}
		return ipc__err(-ECONNREFUSED, m->q.uri,
		                "the creator of this channel is gone");
	}
	if (r == -EIDRM || r == -EINVAL) {
		return ipc__err(-ENOENT, m->q.uri, "channel was just removed");
	}
	if (r < 0) {
		return ipc__errno(r, m->q.uri, "semop (claim)");
	}
	set_peer_up(m, sv_pid(v, SV_CREATOR));
	r = alloc_bufs(m);
	if (r < 0) {
		sv_release(m->ids.semid, SV_OPENER, 1, DEATH_TX);
	}
	return r;
}

static int
smq_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct smq_chan *m = ipc__priv(ch);
	int r;

	chan_init(m, ch);
	m->side = (flags & IPC_CREATE) ? SV_CREATOR : SV_OPENER;
	r = m->side == SV_CREATOR ? open_creator(m, u) : open_opener(m, u);
	if (r < 0) {
		chan_free(m);
		return r;
	}
	ch->max_msg = SMQ_MAXMSG;
	return 0;
}

/* --------------------------------------------------------------- slots -- */

/* -EPIPE from a peer that was refused (allow_uid=/allow_gid=) is the
 * refusal.  A creator looks at its peer before it delivers anything. */
static ssize_t
refusal(struct smq_chan *m, ssize_t r)
{
	if (r == 0 && m->side == SV_CREATOR &&
	    atomic_load(&m->q.peer) == IPC_Q_NONE) {
		(void)peer_check(m);
	}
	if ((r == 0 || r == -EPIPE) && atomic_load(&m->refused)) {
		return ipc__trust_check(&m->q.trust, m->q.uri, "the peer",
		                        &m->q.cred);
	}
	return r;
}

static ssize_t
smq_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct smq_chan *m = ipc__priv(ch);
	ssize_t r;

	pthread_mutex_lock(&m->q.tx_mu);
	r = refusal(m, 0);
	if (r == 0) {
		r = refusal(m, ipc__queue_tx_locked(&m->q, buf, len));
	}
	pthread_mutex_unlock(&m->q.tx_mu);
	if (r >= 0 || r == -EINPROGRESS) {
		atomic_store(&m->backoff, 0);
	}
	return r;
}

static int
smq_detach(ipc_channel *ch)
{
	return ipc__queue_detach(&((struct smq_chan *)ipc__priv(ch))->q);
}

static ssize_t
smq_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct smq_chan *m = ipc__priv(ch);
	struct ipc_queue *q = &m->q;
	ssize_t r;

	pthread_mutex_lock(&q->rx_mu);
	r = refusal(m, 0);
	if (r == 0) {
		r = ipc__queue_rx_step(q, 0);
	}
	if (r == IPC_FRAG_WHOLE) {
		r = ipc__frag_rx_take(&q->fr, buf, cap, q->uri);
	} else if (r == -EPIPE) {
		r = refusal(m, ipc__err_peer(q->uri, "recv", q->rdied));
	}
	pthread_mutex_unlock(&q->rx_mu);
	if (r == -EAGAIN) {
		atomic_fetch_add(&m->idle, 1);
		ipc__queue_kick(q);
	} else {
		atomic_store(&m->idle, 0);
		atomic_store(&m->backoff, 0);
	}
	return r;
}

static int
smq_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct smq_chan *m = ipc__priv(ch);
	int n = 0;
	int bo = atomic_load(&m->backoff);

	(void)events;
	if (atomic_load(&m->q.peer) == IPC_Q_UP && m->q.pidfd >= 0) {
		pfd[n++] = (struct pollfd){.fd = m->q.pidfd, .events = POLLIN};
	}
	/* While a message is half way across (fragments waiting for credit
	 * or for the rest to arrive), the next step comes within the peer's
	 * next system calls: look again often.  Idle, back off to 50 ms. */
	pthread_mutex_lock(&m->q.tx_mu);
	int busy = m->q.ft.active;
	pthread_mutex_unlock(&m->q.tx_mu);
	pthread_mutex_lock(&m->q.rx_mu);
	busy |= m->q.fr.partial;
	pthread_mutex_unlock(&m->q.rx_mu);
	int cap = busy ? POLL_BUSY_MS : POLL_MAX_MS;
	*retry_ms = bo > cap ? cap : bo;
	bo = bo == 0 ? 1 : bo * 2;
	atomic_store(&m->backoff, bo > POLL_MAX_MS ? POLL_MAX_MS : bo);
	return n;
}

static short
smq_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct smq_chan *m = ipc__priv(ch);
	struct ipc_queue *q = &m->q;
	short out = 0;

	(void)npfd;
	if (pfd != NULL) {
		ipc__queue_kick(q);
	}
	if (events & IPC_POLLIN) {
		pthread_mutex_lock(&q->rx_mu);
		int r = q->rerr != 0 ? q->rerr : ipc__queue_rx_step(q, 0);
		if (r != -EAGAIN) {
			out |= IPC_POLLIN;
		}
		if (r == -EPIPE) {
			out |= IPC_POLLHUP;
		} else if (r < 0 && r != -EAGAIN) {
			out |= IPC_POLLERR;
		}
		pthread_mutex_unlock(&q->rx_mu);
	}
	if (events & IPC_POLLOUT) {
		int p = peer_check(m);
		int v = semctl(m->ids.semid, SV_TXW + m->side, GETVAL);
		if (p == IPC_Q_GONE || q->werr != 0) {
			out |= IPC_POLLOUT | IPC_POLLHUP;
		} else if (p == IPC_Q_UP && !atomic_load(&q->tx_detached) &&
		           v >= (int)units(IPC_FRAG_HDR + 64)) {
			out |= IPC_POLLOUT;
		}
	}
	if (out != 0) {
		atomic_store(&m->backoff, 0);
	}
	return out;
}

static int
wait_m(struct smq_chan *m, short events, const struct timespec *dl)
{
	unsigned short me = (unsigned short)m->side;
	unsigned short peer = (unsigned short)(1 - m->side);
	struct sembuf ops[2];
	size_t n;
	int idle = atomic_load(&m->idle);

	if (idle > 2) {
		/* RXW said "in flight" but the queue was empty: a sender
		 * between its semop and msgsnd.  Do not spin on it. */
		int us = idle > 20 ? 1000 : idle * 50;
		struct timespec ts = {0, (long)us * 1000};
		nanosleep(&ts, NULL);
	}
	if ((events & IPC_POLLIN) && (events & IPC_POLLOUT)) {
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
		return 0;
	}
	if (events & IPC_POLLIN) {
		ops[0] = (struct sembuf){SV_RXW + me, -1, 0};
		ops[1] = (struct sembuf){SV_RXW + me, 1, 0};
		n = 2;
	} else if (atomic_load(&m->q.peer) == IPC_Q_NONE) {
		ops[0] = (struct sembuf){SV_SLOT + peer, 0, 0};
		n = 1;
	} else {
		short need = (short)atomic_load(&m->tx_need);
		if (need <= 0) {
			struct timespec ts = {0, 2000000};
			nanosleep(&ts, NULL);
			return 0;
		}
		ops[0] = (struct sembuf){SV_TXW + me, (short)-need, 0};
		ops[1] = (struct sembuf){SV_TXW + me, need, 0};
		n = 2;
	}
	/* A detached rest of our own last message waits for credit that
	 * only this side's next calls can use: wake up often to push it
	 * (the core calls recv again, which pushes) rather than sleep on
	 * the receive semaphore while the peer waits for that message. */
	int cap = atomic_load(&m->q.tx_detached) ? POLL_BUSY_MS : WAIT_CAP_MS;
	int r = sv_timedwait(m->ids.semid, ops, n, dl, cap);
	return r == -ETIMEDOUT ? r : 0;
}

static int
smq_wait(ipc_channel *ch, short events, const struct timespec *dl)
{
	return wait_m(ipc__priv(ch), events, dl);
}

static int
q_wait_room(struct ipc_queue *q, const struct timespec *dl)
{
	return wait_m(smq_of(q), IPC_POLLOUT, dl);
}

static const struct ipc_queue_ops smq_qops = {
        .recv_unit = q_recv_unit,
        .send_unit = q_send_unit,
        .gone = q_gone,
        .wait_room = q_wait_room,
};

static int
smq_close(ipc_channel *ch)
{
	struct smq_chan *m = ipc__priv(ch);
	int r;

	if (m->q.owner != getpid()) {
		/* A forked child drops its copy: the channel is not its,
		 * and its semaphore undo values are not either. */
		chan_free(m);
		return 0;
	}
	/* The rest of a detached message, then the close record. */
	r = ipc__queue_flush(&m->q, ch->timeout_ms);
	ipc__queue_close_record(&m->q);
	sv_release(m->ids.semid, m->side, 1, DEATH_TX);
	if (sv_peer_free(m->ids.semid, m->side)) {
		remove_objects(m);
	}
	chan_free(m);
	return r;
}

static int
smq_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct smq_chan *m = ipc__cpriv(ch);

	return sv_peer_cred(atomic_load(&m->q.peer) != IPC_Q_NONE,
	                    atomic_load(&m->refused), &m->q.cred, ch->uri, pid,
	                    uid, gid);
}

const struct ipc_driver ipc_driver_sysvmq = {
        .scheme = "sysvmq",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_NAME,
        .opts = smq_opts,
        .priv_size = sizeof(struct smq_chan),
        .open = smq_open,
        .send = smq_send,
        .detach = smq_detach,
        .recv = smq_recv,
        .close = smq_close,
        .peer_cred = smq_peer_cred,
        .pollfds = smq_pollfds,
        .ready = smq_ready,
        .wait = smq_wait,
};
