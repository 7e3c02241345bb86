/*
 * ipc-bench raw rows of the message mechanisms, each used the plain way,
 * blocking, without libipc:
 *
 *   raw-mq              two POSIX queues (default attributes), mq_send and
 *                       mq_receive;
 *   raw-sysvmq          one System V queue, message type per direction,
 *                       msgsnd and msgrcv;
 *   raw-unix+dgram      a SOCK_DGRAM socketpair, send and recvmsg;
 *   raw-unix+seqpacket  a SOCK_SEQPACKET socketpair, send and recvmsg;
 *   raw-udp             two loopback UDP sockets connected to each other.
 *
 * The queues carry at most one unit (msgsize, kernel.msgmax) per queue
 * message, so a message is its 4-byte length and payload cut into units,
 * the first unit starting with the length.  A socket row sends a message
 * as one datagram.  The Unix socket rows keep the default socket buffers,
 * as libipc's unix+dgram and unix+seqpacket do, and carry a message
 * larger than half of SO_SNDBUF the way those drivers do: written to a
 * new memfd, which goes with an 8-byte length in one datagram
 * (SCM_RIGHTS); the receiver preads it and closes it.  One send (sendmsg)
 * and one recvmsg per message, blocking.  The objects are made before the
 * fork, as raw-pipe's pipes are.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_raw.h"

#define UDP_MAX  65507
#define UNIX_MAX (16u << 20) /* libipc's default maxmsg */

/* A System V queue message. */
struct sv_unit {
	long mtype;
	unsigned char mtext[];
};

/* What prepare() made, inherited by A and B. */
struct rmsg_state {
	int fd[2];      /* socket rows: A's, B's */
	int msqid;      /* raw-sysvmq */
	char mq[2][80]; /* raw-mq: A to B, B to A */
};

struct rmsg {
	enum raw_msg_kind kind;
	int fd;               /* socket rows */
	mqd_t tx, rx;         /* raw-mq */
	int msqid;            /* raw-sysvmq */
	long ttype, rtype;    /* raw-sysvmq: message types */
	size_t unit;          /* queue rows: bytes per queue message */
	size_t max;           /* largest message */
	size_t inline_max;    /* Unix sockets: larger ones go in a memfd */
	struct sv_unit *sbuf; /* raw-sysvmq: mtype + unit */
	unsigned char *rbuf;  /* queue rows: one unit */
};

static long
proc_long(const char *path, long def)
{
	FILE *f = fopen(path, "r");
	long v = def;
	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1) {
			v = def;
		}
		fclose(f);
	}
	return v;
}

static int
udp_pair(int fd[2], char *why)
{
	struct sockaddr_in a[2];
	for (int i = 0; i < 2; i++) {
		socklen_t l = sizeof(a[i]);
		memset(&a[i], 0, sizeof(a[i]));
		a[i].sin_family = AF_INET;
		a[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd[i] < 0 ||
		    bind(fd[i], (struct sockaddr *)&a[i], sizeof(a[i])) < 0 ||
		    getsockname(fd[i], (struct sockaddr *)&a[i], &l) < 0) {
			return bench_why(why, BENCH_FAIL, "udp socket: %s",
			                 strerror(errno));
		}
	}
	for (int i = 0; i < 2; i++) {
		if (connect(fd[i], (struct sockaddr *)&a[1 - i],
		            sizeof(a[1 - i])) < 0) {
			return bench_why(why, BENCH_FAIL, "udp connect: %s",
			                 strerror(errno));
		}
	}
	return BENCH_OK;
}

static int
rm_prepare(struct bench_env *e, const void *arg, char *why)
{
	enum raw_msg_kind k = *(const enum raw_msg_kind *)arg;
	struct rmsg_state *st = calloc(1, sizeof(*st));
	int rc = BENCH_OK;
	if (st == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	st->fd[0] = st->fd[1] = st->msqid = -1;
	e->state = st;
	switch (k) {
	case RAW_MQ:
		for (int i = 0; i < 2; i++) {
			snprintf(st->mq[i], sizeof(st->mq[i]), "/%s.raw%d",
			         e->token, i);
			mqd_t q = mq_open(st->mq[i], O_RDWR | O_CREAT | O_EXCL,
			                  0600, NULL);
			if (q == (mqd_t)-1) {
				st->mq[i][0] = '\0';
				return bench_why(why, BENCH_FAIL,
				                 "mq_open: %s",
				                 strerror(errno));
			}
			mq_close(q);
		}
		break;
	case RAW_SYSVMQ:
		st->msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
		if (st->msqid < 0) {
			return bench_why(why, BENCH_FAIL, "msgget: %s",
			                 strerror(errno));
		}
		break;
	case RAW_DGRAM:
	case RAW_SEQPACKET:
		if (socketpair(AF_UNIX,
		               (k == RAW_DGRAM ? SOCK_DGRAM : SOCK_SEQPACKET) |
		                       SOCK_CLOEXEC,
		               0, st->fd) < 0) {
			st->fd[0] = st->fd[1] = -1;
			return bench_why(why, BENCH_FAIL, "socketpair: %s",
			                 strerror(errno));
		}
		break;
	case RAW_UDP:
		rc = udp_pair(st->fd, why);
		break;
	}
	return rc;
}

static int
rm_open(struct bench_env *e, const void *arg, int server, void **ep, char *why)
{
	struct rmsg_state *st = e->state;
	struct rmsg *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	m->kind = *(const enum raw_msg_kind *)arg;
	m->fd = -1;
	m->tx = m->rx = (mqd_t)-1;
	switch (m->kind) {
	case RAW_MQ: {
		struct mq_attr at;
		m->tx = mq_open(st->mq[server ? 0 : 1], O_WRONLY);
		m->rx = mq_open(st->mq[server ? 1 : 0], O_RDONLY);
		if (m->tx == (mqd_t)-1 || m->rx == (mqd_t)-1 ||
		    mq_getattr(m->rx, &at) < 0) {
			free(m);
			return bench_why(why, BENCH_FAIL, "mq_open: %s",
			                 strerror(errno));
		}
		m->unit = (size_t)at.mq_msgsize;
		m->max = 16u << 20;
		break;
	}
	case RAW_SYSVMQ:
		m->msqid = st->msqid;
		m->ttype = server ? 1 : 2;
		m->rtype = server ? 2 : 1;
		m->unit = (size_t)proc_long("/proc/sys/kernel/msgmax", 8192);
		m->max = 16u << 20;
		break;
	default: {
		int sb = 0;
		socklen_t l = sizeof(sb);
		m->fd = st->fd[server ? 0 : 1];
		close(st->fd[server ? 1 : 0]);
		(void)getsockopt(m->fd, SOL_SOCKET, SO_SNDBUF, &sb, &l);
		/* As libipc's ipc__msg_init: a datagram up to half of
		 * SO_SNDBUF, so that another fits in flight. */
		m->max = m->kind == RAW_UDP ? UDP_MAX : UNIX_MAX;
		m->inline_max = m->kind == RAW_UDP ? UDP_MAX : (size_t)sb / 2;
		break;
	}
	}
	if (m->unit > 0) {
		m->rbuf = malloc(m->unit);
		m->sbuf = malloc(sizeof(long) + m->unit);
		if (m->rbuf == NULL || m->sbuf == NULL || m->unit < 8) {
			free(m->rbuf);
			free(m->sbuf);
			free(m);
			return bench_why(why, BENCH_FAIL, "out of memory");
		}
	}
	*ep = m;
	return BENCH_OK;
}

/* One queue message of n bytes from p. */
static int
unit_send(struct rmsg *m, const void *p, size_t n)
{
	int r;
	if (m->kind == RAW_MQ) {
		do {
			r = mq_send(m->tx, p, n, 0);
		} while (r < 0 && errno == EINTR);
		return r < 0 ? -errno : 0;
	}
	m->sbuf->mtype = m->ttype;
	memcpy(m->sbuf->mtext, p, n);
	do {
		r = msgsnd(m->msqid, m->sbuf, n, 0);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* One queue message into rbuf: its length, or -errno. */
static ssize_t
unit_recv(struct rmsg *m)
{
	ssize_t n;
	if (m->kind == RAW_MQ) {
		do {
			n = mq_receive(m->rx, (char *)m->rbuf, m->unit, NULL);
		} while (n < 0 && errno == EINTR);
		return n < 0 ? -errno : n;
	}
	do {
		n = msgrcv(m->msqid, m->sbuf, m->unit, m->rtype, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		return -errno;
	}
	memcpy(m->rbuf, m->sbuf->mtext, (size_t)n);
	return n;
}

static ssize_t
q_send(struct rmsg *m, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t first = len < m->unit - 4 ? len : m->unit - 4;
	uint32_t hdr = (uint32_t)len;
	memcpy(m->rbuf, &hdr, 4);
	memcpy(m->rbuf + 4, p, first);
	/* rbuf is this side's scratch: send and receive never overlap. */
	int r = unit_send(m, m->rbuf, 4 + first);
	for (size_t off = first; r == 0 && off < len; off += m->unit) {
		size_t k = len - off < m->unit ? len - off : m->unit;
		r = unit_send(m, p + off, k);
	}
	return r < 0 ? r : (ssize_t)len;
}

static ssize_t
q_recv(struct rmsg *m, void *buf, size_t cap)
{
	unsigned char *out = buf;
	ssize_t n = unit_recv(m);
	uint32_t len;
	if (n < 4) {
		return n < 0 ? n : -EPROTO;
	}
	memcpy(&len, m->rbuf, 4);
	if (len > cap || (size_t)n - 4 > len) {
		return -EMSGSIZE;
	}
	size_t have = (size_t)n - 4;
	memcpy(out, m->rbuf + 4, have);
	while (have < len) {
		n = unit_recv(m);
		if (n <= 0 || (size_t)n > len - have) {
			return n < 0 ? n : -EPROTO;
		}
		memcpy(out + have, m->rbuf, (size_t)n);
		have += (size_t)n;
	}
	return (ssize_t)len;
}

union fdctl {
	struct cmsghdr h;
	char b[CMSG_SPACE(sizeof(int))];
};

/* A message above the socket's limit: a new memfd holding it, sent with
 * its 8-byte length in one datagram, closed here once sent. */
static ssize_t
carrier_send(struct rmsg *m, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int fd = memfd_create("raw-msg", MFD_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			int e = w < 0 ? -errno : -EIO;
			close(fd);
			return e;
		}
		off += (size_t)w;
	}
	uint64_t l = len;
	struct iovec iov = {.iov_base = &l, .iov_len = sizeof(l)};
	union fdctl ctl;
	struct msghdr mh;
	memset(&ctl, 0, sizeof(ctl));
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.b;
	mh.msg_controllen = sizeof(ctl.b);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	ssize_t n;
	do {
		n = sendmsg(m->fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	int e = -errno;
	close(fd);
	return n < 0 ? e : (ssize_t)len;
}

/* One datagram; with a descriptor it is a carrier (the peer is hostile:
 * any descriptor, any length). */
static ssize_t
unix_recv(struct rmsg *m, void *buf, size_t cap)
{
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	union fdctl ctl;
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.b;
	mh.msg_controllen = sizeof(ctl.b);
	ssize_t n;
	do {
		n = recvmsg(m->fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
	int fd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		}
	}
	if ((mh.msg_flags & MSG_TRUNC) != 0) {
		if (fd >= 0) {
			close(fd);
		}
		return -EMSGSIZE;
	}
	if (fd < 0) {
		return (mh.msg_flags & MSG_CTRUNC) != 0 ? -EPROTO : n;
	}
	uint64_t len;
	if (n != sizeof(len)) {
		close(fd);
		return -EPROTO;
	}
	memcpy(&len, buf, sizeof(len));
	if (len > cap || len > m->max) {
		close(fd);
		return -EMSGSIZE;
	}
	unsigned char *out = buf;
	for (size_t got = 0; got < len;) {
		ssize_t r =
		        pread(fd, out + got, (size_t)len - got, (off_t)got);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			close(fd);
			return -EPROTO;
		}
		got += (size_t)r;
	}
	close(fd);
	return (ssize_t)len;
}

static ssize_t
rm_send(void *ep, const void *buf, size_t len)
{
	struct rmsg *m = ep;
	if (m->unit > 0) {
		return q_send(m, buf, len);
	}
	if (len > m->inline_max) {
		return m->kind == RAW_UDP ? -EMSGSIZE
		                          : carrier_send(m, buf, len);
	}
	ssize_t n;
	do {
		n = send(m->fd, buf, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static ssize_t
rm_recv(void *ep, void *buf, size_t cap)
{
	struct rmsg *m = ep;
	if (m->unit > 0) {
		return q_recv(m, buf, cap);
	}
	if (m->kind != RAW_UDP) {
		return unix_recv(m, buf, cap);
	}
	ssize_t n;
	do {
		n = recv(m->fd, buf, cap, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
	return n;
}

static int
rm_set_timeout(void *ep, int ms)
{
	struct rmsg *m = ep;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (m->fd < 0) {
		return -ENOTSUP;
	}
	return setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0
	               ? -errno
	               : 0;
}

static size_t
rm_max_msg(void *ep)
{
	return ((struct rmsg *)ep)->max;
}

static void
rm_close(void *ep, int server)
{
	struct rmsg *m = ep;
	(void)server;
	if (m->fd >= 0) {
		close(m->fd);
	}
	if (m->tx != (mqd_t)-1) {
		mq_close(m->tx);
	}
	if (m->rx != (mqd_t)-1) {
		mq_close(m->rx);
	}
	free(m->rbuf);
	free(m->sbuf);
	free(m);
}

static void
rm_cleanup(struct bench_env *e, const void *arg)
{
	struct rmsg_state *st = e->state;
	(void)arg;
	if (st == NULL) {
		return;
	}
	for (int i = 0; i < 2; i++) {
		if (st->fd[i] >= 0) {
			close(st->fd[i]);
		}
		if (st->mq[i][0] != '\0') {
			mq_unlink(st->mq[i]);
		}
	}
	if (st->msqid >= 0) {
		msgctl(st->msqid, IPC_RMID, NULL);
	}
	free(st);
	e->state = NULL;
}

const struct bench_ops bench_raw_msg_ops = {
        .prepare = rm_prepare,
        .open = rm_open,
        .send = rm_send,
        .recv = rm_recv,
        .set_timeout = rm_set_timeout,
        .max_msg = rm_max_msg,
        .close = rm_close,
        .cleanup = rm_cleanup,
};
