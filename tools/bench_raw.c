/*
 * ipc-bench raw rows: each mechanism written by hand, without libipc, the
 * way a careful program would: the stream rows (pipes, FIFOs, Unix and TCP
 * sockets) pay the same framing as libipc's streams (a 4-byte length,
 * header and payload in one writev, a buffered reader), on blocking
 * descriptors; realtime signals are here too.  The rings are in
 * bench_raw_ring.c, the message queues and datagram sockets in
 * bench_raw_msg.c; the table of all raw rows is at the end of this file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "bench_raw.h"

/* How long B keeps retrying to reach A's endpoint. */
#define CONNECT_TRIES 5000 /* x 1 ms */

/* ------------------------------------------------- framed byte streams -- */

#define RBUF 65536

struct rstream {
	int rfd, wfd;
	int sock;
	int lfd; /* A's listening socket until the peer is accepted; -1 */
	int tcp; /* set TCP_NODELAY on the accepted socket */
	char path[108]; /* unix: the socket file, removed once accepted */
	size_t rpos, rend;
	unsigned char rbuf[RBUF];
};

enum rkind { RAW_PIPE, RAW_UNIX, RAW_TCP, RAW_FIFO };

static int rs_accept(struct rstream *s);

/* A FIFO's writer open blocks until the peer opens it for reading: A
 * opens it at its first send or receive, as a socket A accepts then. */
static int
rs_fifo_writer(struct rstream *s)
{
	int fd;
	do {
		fd = open(s->path, O_WRONLY | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		return -errno;
	}
	s->wfd = fd;
	return 0;
}

/* A's endpoint on its first send or receive. */
static int
rs_ready(struct rstream *s)
{
	if (s->lfd >= 0) {
		return rs_accept(s);
	}
	if (s->wfd < 0) {
		return rs_fifo_writer(s);
	}
	return 0;
}

static ssize_t
rs_send(void *ep, const void *buf, size_t len)
{
	struct rstream *s = ep;
	if (s->lfd >= 0 || s->wfd < 0) {
		int rc = rs_ready(s);
		if (rc < 0) {
			return rc;
		}
	}
	uint32_t hdr = htonl((uint32_t)len);
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)buf, len}};
	struct iovec *v = iov;
	int nv = 2;
	size_t left = sizeof(hdr) + len;
	while (left > 0) {
		ssize_t n;
		if (s->sock) {
			struct msghdr mh;
			memset(&mh, 0, sizeof(mh));
			mh.msg_iov = v;
			mh.msg_iovlen = (size_t)nv;
			n = sendmsg(s->wfd, &mh, MSG_NOSIGNAL);
		} else {
			n = writev(s->wfd, v, nv);
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		left -= (size_t)n;
		while (nv > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			nv--;
		}
		if (nv > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	return (ssize_t)len;
}

/* Read more into rbuf; at least one byte.  0 or -errno (-EPIPE at EOF). */
static int
rs_fill(struct rstream *s)
{
	if (s->rpos > 0) {
		memmove(s->rbuf, s->rbuf + s->rpos, s->rend - s->rpos);
		s->rend -= s->rpos;
		s->rpos = 0;
	}
	for (;;) {
		ssize_t n = read(s->rfd, s->rbuf + s->rend, RBUF - s->rend);
		if (n > 0) {
			s->rend += (size_t)n;
			return 0;
		}
		if (n == 0) {
			return -EPIPE;
		}
		if (errno != EINTR) {
			return -errno;
		}
	}
}

static ssize_t
rs_recv(void *ep, void *buf, size_t cap)
{
	struct rstream *s = ep;
	if (s->lfd >= 0 || s->wfd < 0) {
		int rc = rs_ready(s);
		if (rc < 0) {
			return rc;
		}
	}
	while (s->rend - s->rpos < 4) {
		int rc = rs_fill(s);
		if (rc < 0) {
			return rc;
		}
	}
	uint32_t hdr;
	memcpy(&hdr, s->rbuf + s->rpos, 4);
	size_t len = ntohl(hdr);
	if (len > cap) {
		return -EMSGSIZE;
	}
	s->rpos += 4;
	unsigned char *out = buf;
	size_t have = 0;
	while (have < len) {
		size_t avail = s->rend - s->rpos;
		if (avail > 0) {
			size_t k = avail < len - have ? avail : len - have;
			memcpy(out + have, s->rbuf + s->rpos, k);
			s->rpos += k;
			have += k;
			continue;
		}
		if (len - have >= RBUF / 2) {
			/* Large rest: read into the caller's buffer. */
			ssize_t n = read(s->rfd, out + have, len - have);
			if (n > 0) {
				have += (size_t)n;
			} else if (n == 0) {
				return -EPIPE;
			} else if (errno != EINTR) {
				return -errno;
			}
			continue;
		}
		int rc = rs_fill(s);
		if (rc < 0) {
			return rc;
		}
	}
	return (ssize_t)len;
}

static size_t
rs_max_msg(void *ep)
{
	(void)ep;
	return 16u << 20;
}

static int
pipe_prepare(struct bench_env *e, char *why)
{
	int *fds = malloc(4 * sizeof(int));
	if (fds == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	/* fds[0..1]: A to B; fds[2..3]: B to A. */
	if (pipe(fds) < 0) {
		free(fds);
		return bench_why(why, BENCH_FAIL, "pipe: %s", strerror(errno));
	}
	if (pipe(fds + 2) < 0) {
		int err = errno;
		close(fds[0]);
		close(fds[1]);
		free(fds);
		return bench_why(why, BENCH_FAIL, "pipe: %s", strerror(err));
	}
	e->state = fds;
	return BENCH_OK;
}

static void
sockpath(const struct bench_env *e, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s.raw", e->dir,
	         e->token);
}

/* raw-fifo: i = 0 carries A to B, 1 B to A. */
static void
fifopath(const struct bench_env *e, int i, char *p, size_t n)
{
	snprintf(p, n, "%s/%s.raw%d", e->dir, e->token, i);
}

/* B opens both FIFOs (A reads 1 already, so its writer open does not
 * block; the reader open of 0 waits for A's writer); A opens 1 to read
 * without waiting, and 0 to write at its first call (rs_ready). */
static int
fifo_open(struct bench_env *e, int server, struct rstream *s, char *why)
{
	char p[2][108];
	fifopath(e, 0, p[0], sizeof(p[0]));
	fifopath(e, 1, p[1], sizeof(p[1]));
	if (server) {
		s->rfd = open(p[1], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		s->wfd = -1;
		memcpy(s->path, p[0], sizeof(s->path));
		if (s->rfd >= 0 &&
		    fcntl(s->rfd, F_SETFL, 0) == 0) { /* blocking again */
			return 0;
		}
	} else {
		s->wfd = open(p[1], O_WRONLY | O_CLOEXEC);
		s->rfd = s->wfd < 0 ? -1 : open(p[0], O_RDONLY | O_CLOEXEC);
		if (s->rfd >= 0) {
			return 0;
		}
	}
	return bench_why(why, -1, "open FIFO: %s", strerror(errno));
}

static void
loopback(const struct bench_env *e, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)e->port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* A: listen.  The peer is accepted at the first send or receive, so that
 * opening never waits for it. */
static int
sock_listen(struct bench_env *e, enum rkind k, char *why)
{
	struct sockaddr_un su;
	struct sockaddr_in si;
	struct sockaddr *sa;
	socklen_t sl;
	int one = 1;
	if (k == RAW_UNIX) {
		sockpath(e, &su);
		sa = (struct sockaddr *)&su;
		sl = sizeof(su);
	} else {
		loopback(e, &si);
		sa = (struct sockaddr *)&si;
		sl = sizeof(si);
	}
	int l = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0) {
		return bench_why(why, -1, "socket: %s", strerror(errno));
	}
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, sa, sl) < 0 || listen(l, 1) < 0) {
		int err = errno;
		close(l);
		return bench_why(why, -1, "bind/listen: %s", strerror(err));
	}
	return l;
}

/* A's first send or receive: accept the peer, stop listening. */
static int
rs_accept(struct rstream *s)
{
	int fd;
	do {
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	int err = errno;
	close(s->lfd);
	s->lfd = -1;
	if (s->path[0] != '\0') {
		unlink(s->path);
	}
	if (fd < 0) {
		return -err;
	}
	if (s->tcp) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	s->rfd = s->wfd = fd;
	return 0;
}

/* B: connect, retrying while A is not listening yet. */
static int
sock_connect(struct bench_env *e, enum rkind k, char *why)
{
	struct sockaddr_un su;
	struct sockaddr_in si;
	struct sockaddr *sa;
	socklen_t sl;
	if (k == RAW_UNIX) {
		sockpath(e, &su);
		sa = (struct sockaddr *)&su;
		sl = sizeof(su);
	} else {
		loopback(e, &si);
		sa = (struct sockaddr *)&si;
		sl = sizeof(si);
	}
	for (int i = 0; i < CONNECT_TRIES; i++) {
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			return bench_why(why, -1, "socket: %s",
			                 strerror(errno));
		}
		if (connect(fd, sa, sl) == 0) {
			return fd;
		}
		int err = errno;
		close(fd);
		if (err != ENOENT && err != ECONNREFUSED && err != EINTR) {
			return bench_why(why, -1, "connect: %s",
			                 strerror(err));
		}
		bench_sleep_ms(1);
	}
	return bench_why(why, -1, "connect: A never listened");
}

static int
rs_open(struct bench_env *e, const void *arg, int server, void **ep, char *why)
{
	enum rkind k = *(const enum rkind *)arg;
	struct rstream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	s->lfd = -1;
	if (k == RAW_PIPE) {
		int *fds = e->state;
		s->rfd = server ? fds[2] : fds[0];
		s->wfd = server ? fds[1] : fds[3];
		close(server ? fds[0] : fds[2]);
		close(server ? fds[3] : fds[1]);
	} else if (k == RAW_FIFO) {
		if (fifo_open(e, server, s, why) < 0) {
			free(s);
			return BENCH_FAIL;
		}
	} else {
		int fd = server ? sock_listen(e, k, why)
		                : sock_connect(e, k, why);
		if (fd < 0) {
			free(s);
			return BENCH_FAIL;
		}
		s->tcp = k == RAW_TCP;
		s->sock = 1;
		if (server) {
			s->lfd = fd;
			s->rfd = s->wfd = -1;
			if (k == RAW_UNIX) {
				struct sockaddr_un su;
				sockpath(e, &su);
				memcpy(s->path, su.sun_path, sizeof(s->path));
			}
		} else {
			if (s->tcp) {
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				           sizeof(one));
			}
			s->rfd = s->wfd = fd;
		}
	}
	*ep = s;
	return BENCH_OK;
}

static void
rs_close(void *ep, int server)
{
	struct rstream *s = ep;
	(void)server;
	if (s->lfd >= 0) {
		close(s->lfd);
	}
	if (s->rfd >= 0) {
		close(s->rfd);
	}
	if (s->wfd != s->rfd && s->wfd >= 0) {
		close(s->wfd);
	}
	free(s);
}

static void
rs_cleanup(struct bench_env *e, const void *arg)
{
	enum rkind k = *(const enum rkind *)arg;
	if (k == RAW_PIPE && e->state != NULL) {
		int *fds = e->state;
		for (int i = 0; i < 4; i++) {
			close(fds[i]);
		}
		free(fds);
		e->state = NULL;
	}
	if (k == RAW_UNIX) {
		struct sockaddr_un su;
		sockpath(e, &su);
		unlink(su.sun_path);
	}
	for (int i = 0; k == RAW_FIFO && i < 2; i++) {
		char p[108];
		fifopath(e, i, p, sizeof(p));
		unlink(p);
	}
}

static int
rs_prepare(struct bench_env *e, const void *arg, char *why)
{
	if (*(const enum rkind *)arg == RAW_PIPE) {
		return pipe_prepare(e, why);
	}
	for (int i = 0; *(const enum rkind *)arg == RAW_FIFO && i < 2; i++) {
		char p[108];
		fifopath(e, i, p, sizeof(p));
		if (mkfifo(p, 0600) < 0) {
			return bench_why(why, BENCH_FAIL, "mkfifo %s: %s", p,
			                 strerror(errno));
		}
	}
	if (*(const enum rkind *)arg == RAW_TCP && e->port == 0) {
		return bench_why(why, BENCH_FAIL, "no free loopback port");
	}
	return BENCH_OK;
}

static const struct bench_ops raw_stream_ops = {
        .prepare = rs_prepare,
        .open = rs_open,
        .send = rs_send,
        .recv = rs_recv,
        .max_msg = rs_max_msg,
        .close = rs_close,
        .cleanup = rs_cleanup,
};

static const enum rkind arg_pipe = RAW_PIPE;
static const enum rkind arg_unix = RAW_UNIX;
static const enum rkind arg_tcp = RAW_TCP;
static const enum rkind arg_fifo = RAW_FIFO;

/* ----------------------------------------------------- realtime signals -- */

/* A message is a header value (its length) and its bytes, 8 per value,
 * each sent with sigqueue(3); the receiver reads them from a blocking
 * signalfd in batches.  The one flow control a careful program needs so as
 * not to exhaust the user's RLIMIT_SIGPENDING: the receiver acknowledges
 * every SIG_ACK_EVERY values, and a sender never has more than SIG_CAP
 * unacknowledged.  Acknowledgements (top bit set) arrive while the other
 * side receives, so never inside one of its messages: each side is one
 * thread that either sends or receives. */

#define SIG_CAP       4096
#define SIG_ACK_EVERY 1024
#define SIG_ACK       (1ull << 63)
#define SIG_HELLO     (1ull << 62)
#define SIG_BATCH     64

struct rsig {
	int sfd, signo;
	pid_t peer;
	uint64_t unacked, consumed;
	size_t pos, end;
	struct signalfd_siginfo b[SIG_BATCH];
};

static int
rsig_next(struct rsig *s, uint64_t *w)
{
	while (s->pos == s->end) {
		ssize_t n = read(s->sfd, s->b, sizeof(s->b));
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		s->pos = 0;
		s->end = (size_t)n / sizeof(s->b[0]);
	}
	struct signalfd_siginfo *si = &s->b[s->pos++];
	if (s->peer == 0) {
		s->peer = (pid_t)si->ssi_pid;
	}
	*w = si->ssi_ptr;
	return 0;
}

static int
rsig_queue(struct rsig *s, uint64_t w)
{
	union sigval v;
	v.sival_ptr = (void *)(uintptr_t)w;
	while (sigqueue(s->peer, s->signo, v) != 0) {
		if (errno != EAGAIN) {
			return -errno;
		}
		usleep(50); /* the user's signal queue is full */
	}
	return 0;
}

/* Read values until a message header, counting acknowledgements. */
static int
rsig_header(struct rsig *s, uint64_t *w)
{
	for (;;) {
		int rc = rsig_next(s, w);
		if (rc < 0) {
			return rc;
		}
		if (*w & SIG_ACK) {
			uint64_t n = *w & ~SIG_ACK;
			s->unacked -= n < s->unacked ? n : s->unacked;
			continue;
		}
		if (*w & SIG_HELLO) {
			continue;
		}
		return 0;
	}
}

static int
rsig_consumed(struct rsig *s, uint64_t n)
{
	s->consumed += n;
	if (s->consumed >= SIG_ACK_EVERY) {
		int rc = rsig_queue(s, SIG_ACK | s->consumed);
		s->consumed = 0;
		return rc;
	}
	return 0;
}

static ssize_t
rsig_send(void *ep, const void *buf, size_t len)
{
	struct rsig *s = ep;
	const unsigned char *p = buf;
	size_t words = (len + 7) / 8;
	uint64_t w;
	if (s->peer == 0) { /* A: B's hello says who it is */
		int rc = rsig_next(s, &w);
		if (rc < 0) {
			return rc;
		}
	}
	for (size_t i = 0; i <= words; i++) {
		while (s->unacked >= SIG_CAP) {
			int rc = rsig_next(s, &w);
			if (rc < 0) {
				return rc;
			}
			if (!(w & SIG_ACK)) {
				return -EPROTO;
			}
			uint64_t n = w & ~SIG_ACK;
			s->unacked -= n < s->unacked ? n : s->unacked;
		}
		w = len;
		if (i > 0) {
			size_t k =
			        len - (i - 1) * 8 < 8 ? len - (i - 1) * 8 : 8;
			w = 0;
			memcpy(&w, p + (i - 1) * 8, k);
		}
		int rc = rsig_queue(s, w);
		if (rc < 0) {
			return rc;
		}
		s->unacked++;
	}
	return (ssize_t)len;
}

static ssize_t
rsig_recv(void *ep, void *buf, size_t cap)
{
	struct rsig *s = ep;
	unsigned char *p = buf;
	uint64_t len, w;
	int rc = rsig_header(s, &len);
	if (rc < 0) {
		return rc;
	}
	if (len > cap) {
		return -EMSGSIZE;
	}
	rc = rsig_consumed(s, 1);
	for (size_t off = 0; rc == 0 && off < len; off += 8) {
		rc = rsig_next(s, &w);
		if (rc < 0) {
			return rc;
		}
		memcpy(p + off, &w, len - off < 8 ? len - off : 8);
		/* A message longer than the sender's window needs
		 * acknowledgements before it ends. */
		rc = rsig_consumed(s, 1);
	}
	return rc < 0 ? rc : (ssize_t)len;
}

/* Does process pid block signo (bit in /proc/PID/status SigBlk)? */
static int
rsig_blocks(pid_t pid, int signo)
{
	char path[64], line[128];
	int yes = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "SigBlk:", 7) == 0) {
			unsigned long long m = strtoull(line + 7, NULL, 16);
			yes = (int)((m >> (signo - 1)) & 1);
			break;
		}
	}
	fclose(f);
	return yes;
}

static int
rsig_open(struct bench_env *e, const void *arg, int server, void **ep,
          char *why)
{
	(void)arg;
	struct rsig *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	s->signo = SIGRTMAX - 4;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, s->signo);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	s->sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (s->sfd < 0) {
		free(s);
		return bench_why(why, BENCH_FAIL, "signalfd: %s",
		                 strerror(errno));
	}
	if (!server) {
		/* Signal A only once it blocks the signal: before, it would
		 * die of it. */
		s->peer = e->pid[0];
		int i = 0;
		while (s->peer > 0 && !rsig_blocks(s->peer, s->signo) &&
		       i++ < CONNECT_TRIES) {
			bench_sleep_ms(1);
		}
		if (s->peer <= 0 || !rsig_blocks(s->peer, s->signo) ||
		    rsig_queue(s, SIG_HELLO) < 0) {
			close(s->sfd);
			free(s);
			return bench_why(why, BENCH_FAIL,
			                 "B: A does not block signal %d",
			                 SIGRTMAX - 4);
		}
	}
	*ep = s;
	return BENCH_OK;
}

static size_t
rsig_max_msg(void *ep)
{
	(void)ep;
	return 1u << 20;
}

static void
rsig_close(void *ep, int server)
{
	struct rsig *s = ep;
	(void)server;
	close(s->sfd);
	free(s);
}

static const struct bench_ops raw_signal_ops = {
        .open = rsig_open,
        .send = rsig_send,
        .recv = rsig_recv,
        .max_msg = rsig_max_msg,
        .close = rsig_close,
};

static const enum raw_ring_kind arg_futex = RAW_RING_FUTEX;
static const enum raw_ring_kind arg_busy = RAW_RING_BUSY;
static const enum raw_ring_kind arg_sysv = RAW_RING_SYSV;
static const enum raw_msg_kind arg_mq = RAW_MQ;
static const enum raw_msg_kind arg_sysvmq = RAW_SYSVMQ;
static const enum raw_msg_kind arg_dgram = RAW_DGRAM;
static const enum raw_msg_kind arg_seqpacket = RAW_SEQPACKET;
static const enum raw_msg_kind arg_udp = RAW_UDP;

const struct bench_row bench_raw_rows[] = {
        {"raw-pipe", "raw", "2 pipe(2)s, blocking, 4 B length, writev",
         &raw_stream_ops, &arg_pipe, 0, NULL},
        {"raw-fifo", "raw", "2 FIFOs (mkfifo), blocking, 4 B length, writev",
         &raw_stream_ops, &arg_fifo, 0, NULL},
        {"raw-unix", "raw", "AF_UNIX stream, blocking, 4 B length, sendmsg",
         &raw_stream_ops, &arg_unix, 0, NULL},
        {"raw-unix+seqpacket", "raw",
         "SOCK_SEQPACKET socketpair, blocking, default buffers, send/recvmsg; "
         "above SO_SNDBUF/2 a memfd per message (SCM_RIGHTS), as libipc",
         &bench_raw_msg_ops, &arg_seqpacket, 0, NULL},
        {"raw-unix+dgram", "raw",
         "SOCK_DGRAM socketpair, blocking, default buffers, send/recvmsg; "
         "above SO_SNDBUF/2 a memfd per message (SCM_RIGHTS), as libipc",
         &bench_raw_msg_ops, &arg_dgram, 0, NULL},
        {"raw-tcp", "raw",
         "127.0.0.1, TCP_NODELAY, blocking, 4 B length, sendmsg",
         &raw_stream_ops, &arg_tcp, 0, NULL},
        {"raw-udp", "raw",
         "2 connected loopback UDP sockets, send/recv: throughput as "
         "received",
         &bench_raw_msg_ops, &arg_udp, BENCH_LOSSY, NULL},
        {"raw-mq", "raw",
         "2 POSIX queues (default attributes), mq_send/mq_receive, "
         "msgsize units",
         &bench_raw_msg_ops, &arg_mq, 0, NULL},
        {"raw-sysvmq", "raw",
         "1 System V queue, a type per direction, msgsnd/msgrcv, msgmax "
         "units",
         &bench_raw_msg_ops, &arg_sysvmq, 0, NULL},
        {"raw-futex-ring", "raw",
         "SPSC ring in shared memory, one pause per look, futex after 50 us "
         "(the floor)",
         &bench_raw_ring_ops, &arg_futex, 0, NULL},
        {"raw-busy-ring", "raw", "the same ring, busy-polling, no futex",
         &bench_raw_ring_ops, &arg_busy, 0, NULL},
        {"raw-sysvshm", "raw",
         "the same ring in a shmget segment, System V semaphore after 50 us",
         &bench_raw_ring_ops, &arg_sysv, 0, NULL},
        {"raw-signal", "raw",
         "sigqueue + blocking signalfd, 8 B per signal, ack every 1024",
         &raw_signal_ops, NULL, 0, NULL},
        {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
