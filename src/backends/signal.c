/*
 * signal://: realtime signals between two processes.
 *
 * signal:// with IPC_CREATE makes an end that receives in this process;
 * signal://PID talks to the process PID that made one.  Both ends block the
 * channel's signal (signo=) and read it through a signalfd; every word of
 * a message travels as the value of one queued signal, sent with
 * pidfd_send_signal(2) (sigqueue(3) where the kernel has no pidfds).
 *
 * Wire format (src/core/sigwire.h).  A sender's signals form chunks: a
 * header value (kind, length, sequence number), then up to 32 payload
 * values of 8 bytes.  A chunk is sent whole under the send lock, so the
 * receiver never sees two chunks of one sender interleaved.
 *
 * Flow control.  A receiver lets its peer have at most `window` signals
 * queued: a sender starts with INIT_CREDIT (the creator tops it up to its
 * window when the HELLO arrives), spends one credit per DATA, MORE, HELLO
 * header and payload word, and gets credit back from CREDIT chunks the
 * receiver sends once it consumed a quarter window.  Signals of whole
 * messages waiting in the receiver are returned only when the caller takes
 * the message, so a receiver that stops receiving stops its sender.  CREDIT,
 * CLOSE and REFUSE are not counted: each side sends at most a few of them
 * per window of the other's data.
 *
 * Everything read from the signalfd is hostile: a process of the same user
 * can queue any value with any si_pid (the kernel checks only si_code).
 * Signals that are not SI_QUEUE, not from the peer, out of sequence or
 * malformed are dropped or fail the channel with -EPROTO; they never make
 * it read or write out of bounds.
 *
 * Process-wide state (docs/signal.md): one channel per signal number per
 * process, the signal blocked in the thread that opens, refused when a
 * handler is installed or another thread leaves it unblocked; restored when
 * the channel closes.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/frag.h"
#include "core/proc.h"
#include "core/sigwire.h"
#include "core/trust.h"

#define SIG_DEFAULT_FROM_MAX 4 /* default signo: SIGRTMAX - 4 */
#define WINDOW_DEFAULT       256
#define WINDOW_MIN           16
#define WINDOW_MAX           4096
#define INIT_CREDIT          16 /* a connector's credit until topped up */
#define CHUNK_MAX            ((int)IPC_SW_CHUNK_MAX)
#define MAXMSG_DEFAULT       ((size_t)1 << 20)
#define MAXMSG_MAX           ((size_t)16 << 20)
#define WORD                 IPC_SW_WORD
#define BATCH                32    /* signalfd records per read */
#define LIVE_RETRY           200   /* ms: liveness polling without pidfd */
#define CLOSE_WAIT_MS        1000  /* a close's flush without a timeout */
#define SPIN_NS              50000 /* reading on while a chunk arrives */

enum { PEER_NONE, PEER_UP, PEER_GONE };

struct sg_chan {
	const char *uri;
	int creator;
	int signo;
	pid_t self, owner;
	uid_t uid;
	unsigned window; /* what we let the peer have queued */
	size_t max_msg;
	int sfd, epfd;  /* signalfd; ipc_fd(): sfd, rxev, pidfd */
	int rxev, txev; /* eventfds: whole message queued; credit came */

	_Atomic int peer_state;
	_Atomic pid_t peer;
	int pidfd;             /* set before PEER_UP */
	struct ipc_cred cred;  /* the peer's ids; set before PEER_UP */
	_Atomic int credit;    /* signals we may still send */
	_Atomic unsigned owed; /* counted signals to return to the peer */
	_Atomic unsigned long long returned_total; /* ... and returned */
	_Atomic int refused;
	_Atomic int tx_waiting;

	/* receive side, under rx_mu */
	pthread_mutex_t rx_mu;
	struct ipc_sw_rx rx;
	int rx_on; /* rxev is readable */
	int reof;
	enum ipc_peer_end rdied; /* gone without a close record */
	int rerr;
	unsigned long foreign; /* signals dropped: not from the peer */

	/* send side, under tx_mu */
	pthread_mutex_t tx_mu;
	unsigned tseq;
	uint64_t pend[IPC_SW_CHUNK_MAX +
	              1]; /* a chunk the kernel took only part of */
	unsigned pend_n, pend_i;
	_Atomic int tx_stuck; /* pend_n > 0, for readers without tx_mu */
	struct ipc_frag_tx ft;
	_Atomic int tx_detached;
	int werr;
};

static const struct ipc_optspec sg_opts[] = {
        {"signo", IPC_OPT_UINT, 1, 64, NULL,
         "realtime signal number, SIGRTMIN..SIGRTMAX (default SIGRTMAX-4)"},
        {"window", IPC_OPT_UINT, WINDOW_MIN, WINDOW_MAX, NULL,
         "signals the peer may have queued here (default 256)"},
        {"maxmsg", IPC_OPT_SIZE, 64 * 1024, MAXMSG_MAX, NULL,
         "largest message (default 1M)"},
        {NULL, 0, 0, 0, NULL, NULL},
};

/* ------------------------------------------------------------ helpers -- */

static void
ev_set(int fd)
{
	uint64_t one = 1;
	ssize_t r;

	do {
		r = write(fd, &one, sizeof one);
	} while (r < 0 && errno == EINTR);
}

static void
ev_clear(int fd)
{
	uint64_t v;
	ssize_t r;

	do {
		r = read(fd, &v, sizeof v);
	} while (r < 0 && errno == EINTR);
}

/* Queue one signal carrying word to process pid (through pidfd when it is
 * >= 0).  0 or -errno. */
static int
queue_word(const struct sg_chan *s, int pidfd, pid_t pid, uint64_t word)
{
	union sigval v;

	v.sival_ptr = (void *)(uintptr_t)word;
#ifdef SYS_pidfd_send_signal
	if (pidfd >= 0) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = s->signo;
		si.si_code = SI_QUEUE;
		si.si_pid = s->self;
		si.si_uid = s->uid;
		si.si_value = v;
		if (syscall(SYS_pidfd_send_signal, pidfd, s->signo, &si, 0) ==
		    0) {
			return 0;
		}
		if (errno != ENOSYS) {
			return -errno;
		}
	}
#endif
	if (sigqueue(pid, s->signo, v) == 0) {
		return 0;
	}
	return -errno;
}

static int
sig_send(struct sg_chan *s, uint64_t word)
{
	return queue_word(s, s->pidfd, atomic_load(&s->peer), word);
}

static int
peer_gone(struct sg_chan *s)
{
	int st = atomic_load(&s->peer_state);

	if (st == PEER_GONE) {
		return 1;
	}
	if (st != PEER_UP) {
		return 0;
	}
	int dead = s->pidfd >= 0 ? ipc__pidfd_dead(s->pidfd)
	                         : (kill(atomic_load(&s->peer), 0) != 0 &&
	                            errno == ESRCH);
	if (dead) {
		atomic_store(&s->peer_state, PEER_GONE);
	}
	return dead;
}

static void
peer_up(struct sg_chan *s, pid_t pid, int pidfd)
{
	s->pidfd = pidfd;
	atomic_store(&s->peer, pid);
	/* Read while the pidfd pins the process: if it is still alive
	 * after, these are its ids (ipc_peer_cred). */
	if (ipc__cred_pid(pid, &s->cred) != 0 ||
	    (pidfd >= 0 && ipc__pidfd_dead(pidfd))) {
		s->cred.known = 0;
	}
	if (pidfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};
		(void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, pidfd, &ev);
	}
	atomic_store(&s->peer_state, PEER_UP);
}

/* ---------------------------------------------------------------- send -- */

/* Send pend[pend_i..pend_n).  tx_mu held.  0, -EAGAIN or -errno. */
static int
flush_pend(struct sg_chan *s)
{
	while (s->pend_i < s->pend_n) {
		int r = sig_send(s, s->pend[s->pend_i]);
		if (r == -EAGAIN) {
			return -EAGAIN; /* RLIMIT_SIGPENDING of the user */
		}
		if (r < 0) {
			return r;
		}
		s->pend_i++;
	}
	s->pend_n = s->pend_i = 0;
	atomic_store(&s->tx_stuck, 0);
	return 0;
}

/* Send a control chunk (CREDIT, CLOSE to the peer).  tx_mu held.  A chunk
 * of one word goes out whole or not at all: on -EAGAIN nothing was sent. */
static int
send_ctl(struct sg_chan *s, unsigned kind, uint32_t arg)
{
	int r = flush_pend(s);

	if (r < 0) {
		return r;
	}
	r = sig_send(s, ipc__sw_hdr(kind, 0, s->tseq, arg));
	if (r == 0) {
		s->tseq++;
	}
	return r;
}

/* Return owed credit to the peer once a quarter window has gathered. */
static void
give_credit(struct sg_chan *s)
{
	unsigned o = atomic_load(&s->owed);

	if (o == 0 || o < s->window / 4 ||
	    atomic_load(&s->peer_state) != PEER_UP) {
		return;
	}
	pthread_mutex_lock(&s->tx_mu);
	o = atomic_exchange(&s->owed, 0);
	if (o > 0) {
		/* Counted as returned before it goes, so that a receiving
		 * thread never sees the peer use credit it has not got. */
		atomic_fetch_add(&s->returned_total, o);
		if (send_ctl(s, IPC_SW_CREDIT, o) != 0) {
			/* Not now (full, or gone): keep it owed. */
			atomic_fetch_sub(&s->returned_total, o);
			atomic_fetch_add(&s->owed, o);
		}
	}
	pthread_mutex_unlock(&s->tx_mu);
}

/* Push chunks of the message in progress.  tx_mu held.  0 when it is
 * out, -EAGAIN without credit (or room), or -errno. */
static int
push(struct sg_chan *s)
{
	int r = flush_pend(s);

	if (r < 0) {
		return r;
	}
	while (s->ft.active) {
		struct ipc_frag_tx *t = &s->ft;
		size_t left = t->len - t->off;
		int c = atomic_load(&s->credit);
		size_t n = ipc__sw_words(left);
		if (n > IPC_SW_CHUNK_MAX) {
			n = IPC_SW_CHUNK_MAX;
		}
		if (c < 1 || (left > 0 && c < 2)) {
			return -EAGAIN;
		}
		if (n + 1 > (size_t)c) {
			n = (size_t)c - 1;
		}
		const unsigned char *from =
		        t->detached ? t->copy + (t->off - t->coff)
		                    : t->src + t->off;
		size_t bytes = n * WORD < left ? n * WORD : left;
		s->pend[0] =
		        ipc__sw_hdr(t->off == 0 ? IPC_SW_DATA : IPC_SW_MORE,
		                    (unsigned)n, s->tseq++, (uint32_t)t->len);
		for (size_t i = 0; i < n; i++) {
			uint64_t w = 0;
			size_t k = bytes - i * WORD < WORD ? bytes - i * WORD
			                                   : WORD;
			memcpy(&w, from + i * WORD, k);
			s->pend[1 + i] = w;
		}
		s->pend_n = (unsigned)n + 1;
		s->pend_i = 0;
		atomic_store(&s->tx_stuck, 1);
		atomic_fetch_sub(&s->credit, (int)n + 1);
		t->off += bytes;
		if (t->off >= t->len) {
			ipc__frag_tx_done(t);
			atomic_store(&s->tx_detached, 0);
		}
		r = flush_pend(s);
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

static int
tx_fail(struct sg_chan *s, int r)
{
	ipc__frag_tx_done(&s->ft);
	atomic_store(&s->tx_detached, 0);
	s->pend_n = s->pend_i = 0;
	atomic_store(&s->tx_stuck, 0);
	if (r == -ESRCH || r == -EPIPE) {
		atomic_store(&s->peer_state, PEER_GONE);
		s->werr = -EPIPE;
		return ipc__err_peer(s->uri, "send", IPC_PEER_EITHER);
	}
	s->werr = r;
	return ipc__errno(r, s->uri, "sending a signal to %d",
	                  (int)atomic_load(&s->peer));
}

/* ------------------------------------------------------------ receive -- */

static int
proto(struct sg_chan *s, const char *what)
{
	s->rerr = ipc__err(-EPROTO, s->uri,
	                   "peer %d broke the signal protocol: %s",
	                   (int)atomic_load(&s->peer), what);
	return s->rerr;
}

/* A stranger's HELLO while we have a peer: turn it away, if it is a
 * process that blocks our signal (anything else could die of it). */
static void
refuse(struct sg_chan *s, pid_t pid)
{
	pid_t tid;
	int fd = ipc__pidfd_open(pid);

	if (fd < 0) {
		return;
	}
	if (ipc__proc_sig_blocked(pid, s->signo, 0, &tid) == 1 &&
	    !ipc__pidfd_dead(fd)) {
		(void)queue_word(s, fd, pid,
		                 ipc__sw_hdr(IPC_SW_REFUSE, 0, 0, 0));
	}
	close(fd);
}

/* The first signal seen by a creator without a peer.  rx_mu held.
 * Returns 1 if it adopted the sender. */
static int
adopt(struct sg_chan *s, pid_t pid, uint64_t w)
{
	struct ipc_sw_hdr h;

	if (!ipc__sw_parse(w, &h) || h.kind != IPC_SW_HELLO || h.seq != 0 ||
	    h.nwords != 0 || h.arg < WINDOW_MIN || h.arg > WINDOW_MAX ||
	    pid <= 0 || pid == s->self) {
		return 0;
	}
	int fd = ipc__pidfd_open(pid);
	if (fd < 0 && errno != ENOSYS) {
		return 0; /* gone already, or no such process */
	}
	s->rx.seq = 1;
	s->rx.consumed = 1;
	atomic_store(&s->credit, (int)h.arg);
	/* The connector started with INIT_CREDIT: top it up to our window;
	 * its HELLO is consumed. */
	atomic_fetch_add(&s->owed, s->window - INIT_CREDIT + 1);
	atomic_store(&s->returned_total, 0);
	peer_up(s, pid, fd);
	if (atomic_load(&s->tx_waiting)) {
		ev_set(s->txev);
	}
	return 1;
}

static int
on_signal(struct sg_chan *s, const struct signalfd_siginfo *si)
{
	pid_t pid = (pid_t)si->ssi_pid;
	uint64_t w = si->ssi_ptr;
	struct ipc_sw_hdr h;
	int is_hdr = ipc__sw_parse(w, &h);

	if (si->ssi_code != SI_QUEUE || (int)si->ssi_signo != s->signo) {
		s->foreign++;
		return 0;
	}
	int st = atomic_load(&s->peer_state);
	if (st == PEER_NONE) {
		if (!s->creator || !adopt(s, pid, w)) {
			s->foreign++;
		}
		return 0;
	}
	if (pid != atomic_load(&s->peer)) {
		s->foreign++;
		if (s->creator && is_hdr && h.kind == IPC_SW_HELLO) {
			refuse(s, pid);
		}
		return 0;
	}
	if (s->reof) {
		return 0; /* nothing counts after the peer's CLOSE */
	}
	if (!s->creator && s->rx.seq == 0 && is_hdr &&
	    h.kind == IPC_SW_REFUSE) {
		atomic_store(&s->refused, 1);
		atomic_store(&s->peer_state, PEER_GONE);
		s->reof = 1;
		if (atomic_load(&s->tx_waiting)) {
			ev_set(s->txev);
		}
		return 0;
	}
	struct ipc_sw_out o;
	int r = ipc__sw_rx_feed(&s->rx, w, &o, s->uri);
	if (r < 0) {
		s->rerr = r;
		return r;
	}
	if (o.owed > 0) {
		atomic_fetch_add(&s->owed, o.owed);
	}
	if (o.credit > 0) {
		if (o.credit > WINDOW_MAX ||
		    atomic_load(&s->credit) + (long)o.credit >
		            2L * WINDOW_MAX) {
			return proto(s, "credit beyond any window");
		}
		atomic_fetch_add(&s->credit, (int)o.credit);
	}
	if (o.close) {
		s->reof = 1;
		atomic_store(&s->peer_state, PEER_GONE);
	}
	if ((o.credit > 0 || o.close) && atomic_load(&s->tx_waiting)) {
		ev_set(s->txev);
	}
	if (s->rx.consumed >
	    atomic_load(&s->returned_total) + s->window + INIT_CREDIT) {
		/* More queued at once than the window allows. */
		return proto(s, "more signals than the window allows");
	}
	return 0;
}

/* ipc_fd() is level-triggered: rxev is readable exactly while a receive
 * would not block for what the driver holds (a whole message, the peer's
 * close, an error).  rx_mu held. */
static void
rx_level(struct sg_chan *s)
{
	ipc__efd_level(s->rxev, &s->rx_on,
	               s->rx.head != NULL || s->reof || s->rerr != 0);
}

/* Read what the signalfd has.  rx_mu held.  0, or the sticky error. */
static int
pump(struct sg_chan *s)
{
	struct signalfd_siginfo si[BATCH];

	while (s->rerr == 0) {
		ssize_t n = read(s->sfd, si, sizeof si);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				break;
			}
			s->rerr = ipc__errno(-errno, s->uri, "read(signalfd)");
			break;
		}
		size_t k = (size_t)n / sizeof si[0];
		for (size_t i = 0; i < k && s->rerr == 0; i++) {
			(void)on_signal(s, &si[i]);
		}
		if (k < BATCH) {
			break;
		}
	}
	rx_level(s);
	return s->rerr;
}

/* Read what has come and return credit that has gathered. */
static void
collect(struct sg_chan *s)
{
	pthread_mutex_lock(&s->rx_mu);
	(void)pump(s);
	pthread_mutex_unlock(&s->rx_mu);
	give_credit(s);
}

static ssize_t
take(struct sg_chan *s, void *buf, size_t cap)
{
	unsigned sigs;
	ssize_t r = ipc__sw_rx_take(&s->rx, buf, cap, &sigs, s->uri);

	if (r >= 0) {
		atomic_fetch_add(&s->owed, sigs);
		rx_level(s);
	}
	return r;
}

/* ------------------------------------------------------------ driver -- */

static int
sg_parse_pid(const struct ipc_uri *u, pid_t *pid)
{
	const char *a = u->authority ? u->authority : "";
	char *end;

	*pid = 0;
	if (u->path != NULL && u->path[0] != '\0') {
		return ipc__err(-EINVAL, u->text,
		                "unexpected path '%s': write signal:// or "
		                "signal://PID",
		                u->path);
	}
	if (*a == '\0') {
		return 0;
	}
	errno = 0;
	long v = strtol(a, &end, 10);
	if (*end != '\0' || errno != 0 || v <= 0 || v > INT_MAX ||
	    a[0] < '0' || a[0] > '9') {
		return ipc__err(-EINVAL, u->text,
		                "'%s' is not a process id: write signal:// or "
		                "signal://PID",
		                a);
	}
	*pid = (pid_t)v;
	return 0;
}

static void
chan_release(struct sg_chan *s)
{
	ipc__sw_rx_fini(&s->rx);
	ipc__frag_tx_fini(&s->ft);
	if (s->pidfd >= 0) {
		close(s->pidfd);
	}
	if (s->sfd >= 0) {
		close(s->sfd);
	}
	if (s->epfd >= 0) {
		close(s->epfd);
	}
	if (s->rxev >= 0) {
		close(s->rxev);
	}
	if (s->txev >= 0) {
		close(s->txev);
	}
	s->pidfd = s->sfd = s->epfd = s->rxev = s->txev = -1;
	pthread_mutex_destroy(&s->rx_mu);
	pthread_mutex_destroy(&s->tx_mu);
}

static int
sg_connect(struct sg_chan *s, pid_t pid)
{
	pid_t tid;
	int fd = ipc__pidfd_open(pid);

	if (fd < 0 && errno != ENOSYS) {
		int e = errno;
		return ipc__err(e == ESRCH ? -ECONNREFUSED : -e, s->uri,
		                "no process %d: %s", (int)pid, strerror(e));
	}
	int r = ipc__proc_sig_blocked(pid, s->signo, 0, &tid);
	if (r != 1 || (fd >= 0 && ipc__pidfd_dead(fd))) {
		if (fd >= 0) {
			close(fd);
		}
		if (r < 0 && r != -ESRCH) {
			return ipc__errno(r, s->uri,
			                  "cannot read the signal mask of "
			                  "process %d",
			                  (int)pid);
		}
		return ipc__err(-ECONNREFUSED, s->uri,
		                "process %d has no signal:// channel on "
		                "signal %d (%s)",
		                (int)pid, s->signo,
		                r == 0 && tid == 0 ? "it has a handler for it"
		                : r == 0 ? "a thread does not block it"
		                         : "it is gone");
	}
	atomic_store(&s->credit, INIT_CREDIT);
	peer_up(s, pid, fd);
	/* HELLO: counted, carries our window.  If the user's signal queue
	 * is full now, it waits in pend for the first send. */
	s->pend[0] = ipc__sw_hdr(IPC_SW_HELLO, 0, s->tseq++, s->window);
	s->pend_n = 1;
	s->pend_i = 0;
	atomic_store(&s->tx_stuck, 1);
	atomic_fetch_sub(&s->credit, 1);
	r = flush_pend(s);
	if (r < 0 && r != -EAGAIN) {
		return ipc__errno(r == -ESRCH ? -ECONNREFUSED : r, s->uri,
		                  "sending the first signal to %d", (int)pid);
	}
	return 0;
}

static int
sg_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct sg_chan *s = ipc__priv(ch);
	pid_t pid;
	int r;

#if UINTPTR_MAX < UINT64_MAX
	return ipc__err(-EOPNOTSUPP, u->text,
	                "signal:// needs 8-byte signal values (a 64-bit "
	                "system)");
#endif
	r = sg_parse_pid(u, &pid);
	if (r < 0) {
		return r;
	}
	s->self = s->owner = getpid();
	if (flags & IPC_CREATE) {
		if (pid != 0 && pid != s->self) {
			return ipc__err(
			        -EINVAL, u->text,
			        "IPC_CREATE makes an end in this process: "
			        "write signal:// (or signal://%d)",
			        (int)s->self);
		}
		s->creator = 1;
		ch->has_addr = 1; /* reached at its pid: ipc_local_uri() */
	} else if (pid == 0) {
		return ipc__err(
		        -EINVAL, u->text,
		        "signal:// without IPC_CREATE needs the PID of "
		        "the process to talk to: signal://PID");
	} else if (pid == s->self) {
		return ipc__err(-ECONNREFUSED, u->text,
		                "signal://%d is this process: a channel joins "
		                "two processes",
		                (int)pid);
	}
	s->uri = ch->uri;
	s->signo = (int)ipc__opt_num(
	        u, "signo",
	        (unsigned long long)(SIGRTMAX - SIG_DEFAULT_FROM_MAX));
	if (s->signo < SIGRTMIN || s->signo > SIGRTMAX) {
		return ipc__err(-EINVAL, u->text,
		                "signo=%d is not a realtime signal here "
		                "(SIGRTMIN..SIGRTMAX is %d..%d)",
		                s->signo, SIGRTMIN, SIGRTMAX);
	}
	s->window = (unsigned)ipc__opt_num(u, "window", WINDOW_DEFAULT);
	s->max_msg = (size_t)ipc__opt_num(u, "maxmsg", MAXMSG_DEFAULT);
	s->rx.max_msg = s->max_msg;
	s->uid = getuid();
	s->pidfd = s->sfd = s->epfd = s->rxev = s->txev = -1;
	pthread_mutex_init(&s->rx_mu, NULL);
	pthread_mutex_init(&s->tx_mu, NULL);
	atomic_init(&s->peer_state, PEER_NONE);

	r = ipc__sig_claim(u->text, s->signo);
	if (r < 0) {
		chan_release(s);
		return r;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, s->signo);
	s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	s->rxev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->txev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->sfd < 0 || s->rxev < 0 || s->txev < 0 || s->epfd < 0) {
		r = ipc__errno(-errno, u->text, "signalfd/eventfd/epoll");
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sfd, &ev) != 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->rxev, &ev) != 0) {
		r = ipc__errno(-errno, u->text, "epoll_ctl");
		goto fail;
	}
	if (!s->creator) {
		r = sg_connect(s, pid);
		if (r < 0) {
			goto fail;
		}
	}
	ch->max_msg = s->max_msg;
	return 0;
fail:
	chan_release(s);
	ipc__sig_release(s->signo, 1);
	return r;
}

static ssize_t
sg_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct sg_chan *s = ipc__priv(ch);
	ssize_t r;
	/* With credit to spare, the peer's death is left to be seen when it
	 * runs low (the pidfd wakes a waiting sender): no system call per
	 * message for it. */
	int low = atomic_load(&s->credit) < CHUNK_MAX + 1;

	if (low || atomic_load(&s->peer_state) == PEER_NONE) {
		collect(s);
	}
	pthread_mutex_lock(&s->tx_mu);
	if (atomic_exchange(&s->tx_waiting, 0)) {
		ev_clear(s->txev);
	}
	if (s->werr != 0) {
		r = s->werr == -EPIPE
		            ? ipc__err_peer(s->uri, "send", IPC_PEER_EITHER)
		            : ipc__err(s->werr, s->uri,
		                       "send: channel failed earlier");
		goto out;
	}
	if (atomic_load(&s->refused)) {
		r = ipc__err(-ECONNREFUSED, s->uri,
		             "process %d has a peer already",
		             (int)atomic_load(&s->peer));
		goto out;
	}
	if (atomic_load(&s->peer_state) == PEER_NONE) {
		r = -EAGAIN; /* no peer yet: wait as for room */
		goto out;
	}
	if (atomic_load(&s->peer_state) == PEER_GONE ||
	    (low && peer_gone(s))) {
		r = tx_fail(s, -EPIPE);
		goto out;
	}
	if (s->ft.active) {
		int same = ipc__frag_tx_same(&s->ft, buf, len);
		r = push(s);
		if (r == -EAGAIN) {
			r = same ? -EINPROGRESS : -EAGAIN;
			goto out;
		}
		if (r < 0) {
			r = tx_fail(s, (int)r);
			goto out;
		}
		if (same) {
			r = (ssize_t)len;
			goto out;
		}
	}
	size_t need =
	        1 + ipc__sw_words(len) + ipc__sw_words(len) / IPC_SW_CHUNK_MAX;
	if (ch->send_nowait && need <= s->window / 2 &&
	    (size_t)atomic_load(&s->credit) < need) {
		r = -EAGAIN; /* it would go out in part only */
		goto out;
	}
	ipc__frag_tx_start(&s->ft, buf, len);
	r = push(s);
	if (r == -EAGAIN) {
		if (s->ft.active && s->ft.off == 0 && s->pend_n == 0) {
			ipc__frag_tx_done(&s->ft);
			r = -EAGAIN;
		} else {
			r = s->ft.active ? -EINPROGRESS : (ssize_t)len;
		}
		goto out;
	}
	r = r < 0 ? tx_fail(s, (int)r) : (ssize_t)len;
out:
	pthread_mutex_unlock(&s->tx_mu);
	return r;
}

static int
sg_detach(ipc_channel *ch)
{
	struct sg_chan *s = ipc__priv(ch);
	int r;

	pthread_mutex_lock(&s->tx_mu);
	r = ipc__frag_tx_detach(&s->ft);
	if (r == 0 && s->ft.active) {
		atomic_store(&s->tx_detached, 1);
	}
	pthread_mutex_unlock(&s->tx_mu);
	return r;
}

/* Finish a detached message (or a refused chunk) for a caller who is
 * receiving. */
static void
kick(struct sg_chan *s)
{
	if (atomic_load(&s->tx_detached)) {
		pthread_mutex_lock(&s->tx_mu);
		if (s->ft.active && s->ft.detached && s->werr == 0) {
			int r = push(s);
			if (r < 0 && r != -EAGAIN) {
				(void)tx_fail(s, r);
			}
		}
		pthread_mutex_unlock(&s->tx_mu);
	}
}

static ssize_t
sg_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct sg_chan *s = ipc__priv(ch);
	ssize_t r;

	kick(s);
	pthread_mutex_lock(&s->rx_mu);
	int fresh = s->rerr == 0; /* an error now keeps its own text */
	if (s->rx.head == NULL && s->rerr == 0) {
		(void)pump(s);
		if (s->rx.head == NULL && !s->reof && peer_gone(s)) {
			/* Dead: what it sent before is queued already. */
			(void)pump(s);
			if (s->rx.head == NULL) {
				s->reof = 1;
				s->rdied = IPC_PEER_DIED;
				rx_level(s);
			}
		}
	}
	if (s->rx.head != NULL) {
		r = take(s, buf, cap);
	} else if (s->rerr != 0) {
		r = fresh ? s->rerr
		          : ipc__err(s->rerr, s->uri,
		                     "channel failed earlier");
	} else if (atomic_load(&s->refused)) {
		r = ipc__err(-ECONNREFUSED, s->uri,
		             "process %d has a peer already",
		             (int)atomic_load(&s->peer));
	} else if (s->reof) {
		r = ipc__err_peer(s->uri, "recv", s->rdied);
	} else {
		r = -EAGAIN;
	}
	pthread_mutex_unlock(&s->rx_mu);
	give_credit(s);
	kick(s); /* with the credit the reads above brought */
	return r;
}

static int
sg_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct sg_chan *s = ipc__priv(ch);
	int n = 0;

	if (events & IPC_POLLIN) {
		pfd[n++] = (struct pollfd){.fd = s->epfd, .events = POLLIN};
	}
	/* pidfd is written before peer_state leaves PEER_NONE. */
	int pidfd = atomic_load(&s->peer_state) != PEER_NONE ? s->pidfd : -1;
	if ((events & IPC_POLLOUT) || atomic_load(&s->tx_detached)) {
		atomic_store(&s->tx_waiting, 1);
		/* Credit another thread read before tx_waiting was set woke
		 * nobody: look again now that it is. */
		if (atomic_load(&s->peer_state) == PEER_UP &&
		    atomic_load(&s->credit) >= 2) {
			*retry_ms = 0;
		}
		pfd[n++] = (struct pollfd){.fd = s->txev, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
		if (pidfd >= 0) {
			pfd[n++] =
			        (struct pollfd){.fd = pidfd, .events = POLLIN};
		}
	}
	if (*retry_ms < 0 && atomic_load(&s->peer_state) == PEER_UP &&
	    (pidfd < 0 || atomic_load(&s->tx_stuck))) {
		*retry_ms = pidfd < 0 ? LIVE_RETRY : 10;
	}
	return n;
}

static short
sg_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct sg_chan *s = ipc__priv(ch);
	short r = 0;

	(void)pfd;
	(void)npfd;
	collect(s);
	kick(s);
	if (pfd != NULL && (events & IPC_POLLOUT)) {
		ev_clear(s->txev);
	}
	pthread_mutex_lock(&s->rx_mu);
	int gone = peer_gone(s);
	if (s->rx.head != NULL || s->rerr != 0 || s->reof || gone ||
	    atomic_load(&s->refused)) {
		r |= IPC_POLLIN;
	}
	pthread_mutex_unlock(&s->rx_mu);
	if (gone) {
		r |= IPC_POLLHUP;
	}
	if (events & IPC_POLLOUT) {
		int st = atomic_load(&s->peer_state);
		if (st == PEER_GONE || gone || atomic_load(&s->refused) ||
		    (st == PEER_UP && !atomic_load(&s->tx_detached) &&
		     atomic_load(&s->credit) >= 2 &&
		     !atomic_load(&s->tx_stuck))) {
			r |= IPC_POLLOUT;
		}
	}
	return r;
}

/* A receiver that wakes on the first signal of a chunk would otherwise
 * sleep and wake again for each of the rest, which the sender queues
 * back to back: while a chunk is in flight, read on for up to SPIN_NS
 * before sleeping in poll(2). */
static int
sg_wait(ipc_channel *ch, short events, const struct timespec *dl)
{
	struct sg_chan *s = ipc__priv(ch);
	struct pollfd pfd[IPC_MAXPFD];
	struct timespec t0, t;
	int retry = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (events & IPC_POLLIN) {
		pthread_mutex_lock(&s->rx_mu);
		int mid = s->rx.cur != NULL && s->rx.words > 0 && s->rerr == 0;
		if (mid) {
			(void)pump(s);
		}
		int ready = s->rx.head != NULL || s->rerr != 0 || s->reof;
		pthread_mutex_unlock(&s->rx_mu);
		clock_gettime(CLOCK_MONOTONIC, &t);
		long long ns =
		        (long long)(t.tv_sec - t0.tv_sec) * 1000000000LL +
		        (t.tv_nsec - t0.tv_nsec);
		if (ready) {
			return 0;
		}
		if (!mid || ns >= SPIN_NS) {
			break;
		}
	}
	/* What the reads above consumed goes back before we sleep, or the
	 * sender waits for it as we wait for the sender. */
	give_credit(s);
	int n = sg_pollfds(ch, events, pfd, &retry);
	int rem = ipc__remaining_ms(dl);
	if (dl != NULL && rem == 0) {
		return -ETIMEDOUT;
	}
	int ms = rem < 0 ? retry : retry < 0 || rem < retry ? rem : retry;
	if (ms == 0) {
		return 0;
	}
	if (poll(pfd, (nfds_t)n, ms) < 0 && errno != EINTR) {
		return ipc__errno(-errno, s->uri, "poll");
	}
	return 0;
}

static int
sg_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct sg_chan *s = ipc__cpriv(ch);
	struct ipc_cred none = {0};

	if (atomic_load(&s->peer_state) == PEER_NONE) {
		return ipc__cred_out(&none, s->uri, pid, uid, gid);
	}
	if (!s->cred.known) {
		return ipc__err(
		        -EOPNOTSUPP, s->uri,
		        "ipc_peer_cred: process %d was gone before its "
		        "ids could be read",
		        (int)atomic_load(&s->peer));
	}
	return ipc__cred_out(&s->cred, s->uri, pid, uid, gid);
}

static int
sg_fd(const ipc_channel *ch)
{
	const struct sg_chan *s = ipc__cpriv(ch);

	return s->epfd;
}

/* The creator's end is reached at its pid ("signal://PID", the options
 * kept); a connecting end names the process it reached, its own URI. */
static char *
sg_local_uri(const ipc_channel *ch)
{
	const struct sg_chan *s = ipc__cpriv(ch);
	const char *q = strchr(ch->uri, '?');
	char *out = NULL;

	if (!s->creator) {
		out = strdup(ch->uri);
	} else if (asprintf(&out, "signal://%d%s", (int)s->self,
	                    q != NULL ? q : "") < 0) {
		out = NULL;
	}
	if (out == NULL) {
		ipc__err(-ENOMEM, ch->uri, "local URI: out of memory");
		return NULL;
	}
	return out;
}

/* Push a detached message out before closing, as long as the peer lives,
 * up to the channel's timeout (CLOSE_WAIT_MS without one). */
static int
flush_on_close(ipc_channel *ch, struct sg_chan *s)
{
	struct timespec dl;
	int r = 0;

	ipc__deadline(&dl,
	              ch->timeout_ms >= 0 ? ch->timeout_ms : CLOSE_WAIT_MS);
	for (;;) {
		pthread_mutex_lock(&s->tx_mu);
		if ((!s->ft.active && s->pend_n == 0) || s->werr != 0) {
			pthread_mutex_unlock(&s->tx_mu);
			break;
		}
		r = push(s);
		pthread_mutex_unlock(&s->tx_mu);
		if (r != -EAGAIN) {
			break;
		}
		if (peer_gone(s)) {
			r = 0;
			break;
		}
		int rem = ipc__remaining_ms(&dl);
		if (rem == 0) {
			r = ipc__err(-EIO, s->uri,
			             "closed before a message could be sent "
			             "whole");
			break;
		}
		struct pollfd p[2] = {{.fd = s->sfd, .events = POLLIN},
		                      {.fd = s->pidfd, .events = POLLIN}};
		(void)poll(p, s->pidfd >= 0 ? 2 : 1, rem > 50 ? 50 : rem);
		collect(s);
	}
	return r < 0 && r != -EAGAIN ? r : 0;
}

static int
sg_close(ipc_channel *ch)
{
	struct sg_chan *s = ipc__priv(ch);
	int r = 0;

	if (s->owner != getpid()) {
		/* A forked child drops its copy: the channel is not its. */
		chan_release(s);
		return 0;
	}
	if (atomic_load(&s->peer_state) == PEER_UP && s->werr == 0) {
		r = flush_on_close(ch, s);
	}
	int quiet = 1;
	if (atomic_load(&s->peer_state) == PEER_UP && !peer_gone(s)) {
		pthread_mutex_lock(&s->tx_mu);
		if (s->pend_n > 0) {
			/* A chunk the kernel took only part of: what the
			 * peer has of it is dropped with its CLOSE. */
			(void)flush_pend(s);
			s->pend_n = s->pend_i = 0;
		}
		(void)send_ctl(s, IPC_SW_CLOSE, 0);
		pthread_mutex_unlock(&s->tx_mu);
		quiet = 0;
	} else if (s->creator && atomic_load(&s->peer_state) == PEER_NONE) {
		quiet = 0; /* a connector may be on its way */
	}
	int signo = s->signo;
	chan_release(s);
	ipc__sig_release(signo, quiet);
	return r;
}

const struct ipc_driver ipc_driver_signal = {
        .scheme = "signal",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_CUSTOM,
        .opts = sg_opts,
        .priv_size = sizeof(struct sg_chan),
        .open = sg_open,
        .send = sg_send,
        .detach = sg_detach,
        .recv = sg_recv,
        .close = sg_close,
        .pollfds = sg_pollfds,
        .ready = sg_ready,
        .wait = sg_wait,
        .fd = sg_fd,
        .local_uri = sg_local_uri,
        .peer_cred = sg_peer_cred,
};
