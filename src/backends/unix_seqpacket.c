/*
 * unix+seqpacket:///PATH and unix+seqpacket://@NAME: Unix SOCK_SEQPACKET
 * sockets, which keep message boundaries themselves.  A message larger
 * than one record can be (about half of SO_SNDBUF) travels as a memfd
 * passed with SCM_RIGHTS (see sock.h).  SO_PASSCRED tells an empty record
 * from the end of the stream: a record always carries credentials.
 * IPC_CREATE takes the first peer that connects; ipc_listen takes many;
 * ipc_pair("unix+seqpacket:") is a socketpair.  See docs/unix.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"
#include "core/stream.h"

static const struct ipc_optspec seq_opts[] = {
        {"maxmsg", IPC_OPT_SIZE, 1, (1ull << 30), NULL,
         "largest message, default 16M"},
        {"mode", IPC_OPT_MODE, 0, 0, NULL,
         "permission bits of the socket file, default 0600"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

struct seq_ch {
	struct ipc_msgsock m;     /* m.fd: the connection; -1 before it */
	struct ipc_sockwait wait; /* IPC_CREATE: the one peer; lfd -1 else */
	size_t max_msg;
	int eof;    /* receive side: the peer's end was seen */
	int failed; /* receive side: sticky -EPROTO */
};

static int
setup(void *arg, int fd)
{
	ipc_channel *ch = arg;
	struct seq_ch *p = ipc__priv(ch);

	return ipc__msg_init(&p->m, fd, 1, 1, p->max_msg, ch->uri);
}

static void
prepare(ipc_channel *ch, const struct ipc_uri *u)
{
	struct seq_ch *p = ipc__priv(ch);

	p->m.fd = -1;
	p->wait.lfd = -1;
	p->wait.ep = -1;
	p->max_msg =
	        (size_t)ipc__opt_num(u, "maxmsg", IPC_STREAM_DEFAULT_MAXMSG);
	ch->max_msg = p->max_msg;
}

static int
seq_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct seq_ch *p = ipc__priv(ch);
	int fd, r;

	prepare(ch, u);
	r = ipc__sock_mode_check(u, flags);
	if (r < 0) {
		return r;
	}
	if (flags & IPC_CREATE) {
		return ipc__sock_unix_serve_one(&p->wait, u, SOCK_SEQPACKET);
	}
	fd = ipc__sock_unix_dial(u, SOCK_SEQPACKET);
	if (fd < 0) {
		return fd;
	}
	r = setup(ch, fd);
	if (r < 0) {
		close(fd);
		p->m.fd = -1;
	}
	return r;
}

static int
seq_pair(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u)
{
	struct seq_ch *pa = ipc__priv(a), *pb = ipc__priv(b);
	int sv[2], r;

	prepare(a, u);
	prepare(b, u);
	r = ipc__sock_mode_check(u, 0);
	if (r < 0) {
		return r;
	}
	r = ipc__sock_pair(SOCK_SEQPACKET, sv, u->text);
	if (r < 0) {
		return r;
	}
	r = setup(a, sv[0]);
	if (r == 0) {
		r = setup(b, sv[1]);
	}
	if (r < 0) {
		close(sv[0]);
		close(sv[1]);
		pa->m.fd = pb->m.fd = -1;
	}
	return r;
}

/* 0 when the connection is there, -EAGAIN while a creator waits. */
static int
peer(ipc_channel *ch)
{
	struct seq_ch *p = ipc__priv(ch);

	if (p->wait.lfd < 0) {
		return 0;
	}
	return ipc__sockwait_take(&p->wait, setup, ch, ch->uri);
}

static ssize_t
seq_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct seq_ch *p = ipc__priv(ch);
	ssize_t r = peer(ch);

	if (r < 0) {
		return r;
	}
	r = ipc__msg_send(&p->m, buf, len, -1);
	if (ipc__sock_gone((int)r)) {
		return ipc__err_peer(ch->uri, "send", IPC_PEER_EITHER);
	}
	return r;
}

static ssize_t
seq_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct seq_ch *p = ipc__priv(ch);
	struct ipc_msgin in = {0};
	ssize_t r = peer(ch);

	if (r < 0) {
		return r;
	}
	if (p->failed) {
		return ipc__err(-EPROTO, ch->uri,
		                "channel failed earlier: the peer broke the "
		                "protocol");
	}
	if (p->eof) {
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_EITHER);
	}
	/* A peer that closed with records unread leaves ECONNRESET, which
	 * Linux reports before the records still queued here: go on
	 * reading them; the end of stream follows. */
	for (int tries = 0; tries < 2; tries++) {
		r = ipc__msg_recv(&p->m, buf, cap, &in);
		if (r != -ECONNRESET) {
			break;
		}
	}
	if (r == 0 && in.eof) {
		p->eof = 1;
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_EITHER);
	}
	if (ipc__sock_gone((int)r)) {
		p->eof = 1;
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_EITHER);
	}
	if (r == -EPROTO) {
		p->failed = 1;
	}
	return r;
}

static int
seq_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct seq_ch *p = ipc__priv(ch);

	/* A refusal waiting is for send/recv to report: do not take it. */
	if (ipc__sockwait_refusal(&p->wait) || peer(ch) < 0) {
		pfd[0].fd = p->wait.lfd;
		pfd[0].events = POLLIN;
		if (ipc__sockwait_refusal(&p->wait)) {
			*retry_ms = 0; /* send/recv report it */
		}
		return 1;
	}
	pfd[0].fd = p->m.fd;
	pfd[0].events = (short)(((events & IPC_POLLIN) ? POLLIN : 0) |
	                        ((events & IPC_POLLOUT) ? POLLOUT : 0));
	return 1;
}

static short
seq_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct seq_ch *p = ipc__priv(ch);
	short r = 0, re;

	if (pfd == NULL || npfd < 1) {
		return 0; /* nothing is buffered in the driver */
	}
	if (p->wait.lfd >= 0 && pfd[0].fd == p->wait.lfd) {
		if (ipc__sockwait_refusal(&p->wait)) {
			return events;
		}
		(void)peer(ch); /* what the peer sent is seen next round */
		/* A refused peer: send/recv report it. */
		return ipc__sockwait_refusal(&p->wait) ? events : 0;
	}
	re = pfd[0].revents;
	if (re & (POLLIN | POLLHUP | POLLERR)) {
		r |= IPC_POLLIN;
	}
	if (re & POLLOUT) {
		r |= IPC_POLLOUT;
	}
	if (re & POLLHUP) {
		r |= IPC_POLLHUP;
	}
	return r;
}

static int
seq_close(ipc_channel *ch)
{
	struct seq_ch *p = ipc__priv(ch);

	if (p->wait.lfd < 0 || ipc__sockwait_done(&p->wait)) {
		close(p->m.fd);
	}
	ipc__sockwait_fini(&p->wait);
	return 0;
}

static int
seq_fd(const ipc_channel *ch)
{
	const struct seq_ch *p = ipc__cpriv(ch);

	return p->wait.ep >= 0 ? p->wait.ep : p->m.fd;
}

static int
seq_listen(ipc_listener *l, const struct ipc_uri *u, int flags)
{
	(void)flags;
	return ipc__sock_unix_listener_open(l, u, SOCK_SEQPACKET);
}

static int
seq_accept(ipc_listener *l, ipc_channel *ch)
{
	int fd = ipc__sock_listener_accept(l);
	int r;

	if (fd < 0) {
		return fd;
	}
	prepare(ch, l->parsed);
	r = setup(ch, fd);
	if (r < 0) {
		close(fd);
	}
	return r;
}

static int
seq_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct seq_ch *p = ipc__cpriv(ch);
	int waiting = p->wait.lfd >= 0 && !ipc__sockwait_done(&p->wait);

	return ipc__sock_peer_cred(waiting ? -1 : p->m.fd, ch->uri, pid, uid,
	                           gid);
}

const struct ipc_driver ipc_driver_unix_seqpacket = {
        .scheme = "unix+seqpacket",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_LISTEN |
                IPC_CAP_PEERCLOSE | IPC_CAP_PUBSUB,
        .addr = IPC_ADDR_UNIXPATH,
        .opts = seq_opts,
        .priv_size = sizeof(struct seq_ch),
        .lpriv_size = sizeof(struct ipc_sock_listener),
        .open = seq_open,
        .pair = seq_pair,
        .send = seq_send,
        .recv = seq_recv,
        .close = seq_close,
        .pollfds = seq_pollfds,
        .ready = seq_ready,
        .fd = seq_fd,
        .listen = seq_listen,
        .accept = seq_accept,
        .listener_fd = ipc__sock_listener_fd,
        .listener_close = ipc__sock_listener_close,
        .peer_cred = seq_peer_cred,
};
