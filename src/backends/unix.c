/*
 * unix:///PATH and unix://@NAME: Unix stream sockets, framed by the core's
 * stream framing (framing=length|line|raw, maxmsg=).  IPC_CREATE binds and
 * listens and takes the first peer that connects; ipc_listen takes many.
 * ipc_pair("unix:") is a socketpair.  See docs/unix.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"
#include "core/stream.h"

static const struct ipc_optspec unix_opts[] = {
        IPC_STREAM_OPTS,
        {"mode", IPC_OPT_MODE, 0, 0, NULL,
         "permission bits of the socket file, default 0600"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

struct unix_ch {
	struct ipc_stream st;     /* first: ipc__sdrv_detach relies on it */
	int fd;                   /* the connection; -1 before the peer */
	struct ipc_sockwait wait; /* IPC_CREATE: the one peer; lfd -1 else */
	enum ipc_framing framing;
	size_t max_msg;
	int stream_on;
};

static int
setup(void *arg, int fd)
{
	ipc_channel *ch = arg;
	struct unix_ch *p = ipc__priv(ch);

	p->fd = fd;
	ipc__stream_init(&p->st, fd, fd, 1, p->framing, p->max_msg, ch->uri);
	p->st.block_ok = 1; /* a connected socket: see stream.h */
	p->stream_on = 1;
	return 0;
}

static void
prepare(ipc_channel *ch, const struct ipc_uri *u)
{
	struct unix_ch *p = ipc__priv(ch);

	p->fd = -1;
	p->wait.lfd = -1;
	p->wait.ep = -1;
	ipc__stream_opts(u, &p->framing, &p->max_msg);
	ch->max_msg = p->max_msg;
}

static int
unix_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct unix_ch *p = ipc__priv(ch);
	int fd, r;

	prepare(ch, u);
	r = ipc__sock_mode_check(u, flags);
	if (r < 0) {
		return r;
	}
	if (flags & IPC_CREATE) {
		return ipc__sock_unix_serve_one(&p->wait, u, SOCK_STREAM);
	}
	fd = ipc__sock_unix_dial(u, SOCK_STREAM);
	if (fd < 0) {
		return fd;
	}
	return setup(ch, fd);
}

static int
unix_pair(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u)
{
	int sv[2], r;

	prepare(a, u);
	prepare(b, u);
	r = ipc__sock_mode_check(u, 0);
	if (r < 0) {
		return r;
	}
	r = ipc__sock_pair(SOCK_STREAM, sv, u->text);
	if (r < 0) {
		return r;
	}
	setup(a, sv[0]);
	setup(b, sv[1]);
	return 0;
}

/* 0 when the connection is there, -EAGAIN while a creator waits. */
static int
peer(ipc_channel *ch)
{
	struct unix_ch *p = ipc__priv(ch);

	if (p->wait.lfd < 0) {
		return 0;
	}
	return ipc__sockwait_take(&p->wait, setup, ch, ch->uri);
}

static ssize_t
unix_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct unix_ch *p = ipc__priv(ch);
	int r = peer(ch);

	if (r < 0) {
		return r;
	}
	p->st.nowait = ch->send_nowait;
	return ipc__stream_send(&p->st, buf, len);
}

static ssize_t
unix_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct unix_ch *p = ipc__priv(ch);
	int r = peer(ch);

	if (r < 0) {
		return r;
	}
	p->st.rblock = ch->recv_block;
	return ipc__stream_recv(&p->st, buf, cap);
}

static int
unix_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct unix_ch *p = ipc__priv(ch);

	/* A refusal waiting is for send/recv to report: do not take it. */
	if (ipc__sockwait_refusal(&p->wait) || peer(ch) < 0) {
		pfd[0].fd = p->wait.lfd;
		pfd[0].events = POLLIN;
		if (ipc__sockwait_refusal(&p->wait)) {
			*retry_ms = 0; /* send/recv report it */
		}
		return 1;
	}
	return ipc__stream_pollfds(&p->st, events, pfd, retry_ms);
}

static short
unix_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct unix_ch *p = ipc__priv(ch);

	if (p->wait.lfd >= 0 && !ipc__sockwait_done(&p->wait)) {
		/* The listening socket woke us: take the peer; what it
		 * sent is seen on the next round. */
		if (ipc__sockwait_refusal(&p->wait)) {
			return events;
		}
		if (pfd == NULL || peer(ch) < 0) {
			/* A refused peer: send/recv report it. */
			return ipc__sockwait_refusal(&p->wait) ? events : 0;
		}
		return ipc__stream_ready(&p->st, events, NULL, 0);
	}
	return ipc__stream_ready(&p->st, events, pfd, npfd);
}

static int
unix_close(ipc_channel *ch)
{
	struct unix_ch *p = ipc__priv(ch);
	int r = 0;

	if (p->stream_on) {
		r = ipc__stream_close(ch); /* flushes, closes p->fd */
	}
	ipc__sockwait_fini(&p->wait);
	return r;
}

static int
unix_fd(const ipc_channel *ch)
{
	const struct unix_ch *p = ipc__cpriv(ch);

	return p->wait.ep >= 0 ? p->wait.ep : p->fd;
}

static int
unix_listen(ipc_listener *l, const struct ipc_uri *u, int flags)
{
	(void)flags;
	return ipc__sock_unix_listener_open(l, u, SOCK_STREAM);
}

static int
unix_accept(ipc_listener *l, ipc_channel *ch)
{
	int fd = ipc__sock_listener_accept(l);

	if (fd < 0) {
		return fd;
	}
	prepare(ch, l->parsed);
	return setup(ch, fd);
}

static int
unix_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct unix_ch *p = ipc__cpriv(ch);
	int waiting = p->wait.lfd >= 0 && !ipc__sockwait_done(&p->wait);

	return ipc__sock_peer_cred(waiting ? -1 : p->fd, ch->uri, pid, uid,
	                           gid);
}

const struct ipc_driver ipc_driver_unix = {
        .scheme = "unix",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_LISTEN |
                IPC_CAP_PEERCLOSE | IPC_CAP_PUBSUB,
        .addr = IPC_ADDR_UNIXPATH,
        .opts = unix_opts,
        .priv_size = sizeof(struct unix_ch),
        .lpriv_size = sizeof(struct ipc_sock_listener),
        .open = unix_open,
        .pair = unix_pair,
        .send = unix_send,
        .detach = ipc__sdrv_detach,
        .recv = unix_recv,
        .close = unix_close,
        .pollfds = unix_pollfds,
        .ready = unix_ready,
        .fd = unix_fd,
        .listen = unix_listen,
        .accept = unix_accept,
        .listener_fd = ipc__sock_listener_fd,
        .listener_close = ipc__sock_listener_close,
        .peer_cred = unix_peer_cred,
};
