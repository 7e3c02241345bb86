/*
 * TCP channels, shared by tcp:// and tls+tcp:// (see tcpconn.h): the
 * opener connects without waiting (a refusal the kernel knows at once,
 * as on loopback, is reported by ipc_open), and send/recv return -EAGAIN
 * until the connection (and a layer's handshake) completes, or its error
 * after.  IPC_CREATE listens and takes the first peer; ipc_listen takes
 * many.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpconn.h"

enum { CONNECTING = 0, UP = 1, HANDSHAKE = 2 }; /* or a negative errno */

static int
setup(void *arg, int fd)
{
	ipc_channel *ch = arg;
	struct ipc_tcpconn *p = ipc__priv(ch);
	int r = ipc__sock_setint(fd, IPPROTO_TCP, TCP_NODELAY, 1, ch->uri);

	if (r < 0) {
		return r;
	}
	p->fd = fd;
	ipc__stream_init(&p->st, fd, fd, 1, p->framing, p->max_msg, ch->uri);
	p->stream_on = 1;
	if (p->layer != NULL) {
		r = p->layer->start(ch, fd, p->is_server);
		if (r < 0) {
			p->stream_on = 0;
			ipc__stream_fini(&p->st);
			p->fd = -1;
			return r;
		}
		p->layer_on = 1;
		atomic_store(&p->state, HANDSHAKE);
		return 0;
	}
	p->st.block_ok = 1; /* a connected socket: see stream.h */
	atomic_store(&p->state, UP);
	return 0;
}

/* Run the layer's handshake on: 0 when done, -EAGAIN, or its error
 * (which ends the channel). */
static int
handshake(ipc_channel *ch)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int r;

	pthread_mutex_lock(&p->mu);
	r = atomic_load(&p->state);
	if (r == HANDSHAKE) {
		r = p->layer->step(ch, &p->hs_events);
		if (r == 0) {
			p->st.io = p->layer->io;
			p->st.io_ctx = p->layer->io_ctx(ch);
			atomic_store(&p->state, UP);
		} else if (r != -EAGAIN) {
			atomic_store(&p->state, r);
		}
	} else if (r == UP) {
		r = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return r;
}

void
ipc__tcp_prepare(ipc_channel *ch, const struct ipc_uri *u,
                 const struct ipc_tcp_layer *layer)
{
	struct ipc_tcpconn *p = ipc__priv(ch);

	p->layer = layer;
	p->fd = -1;
	p->wait.lfd = -1;
	p->wait.ep = -1;
	ipc__stream_opts(u, &p->framing, &p->max_msg);
	ch->max_msg = p->max_msg;
}

static int
connect_error(int e, const struct ipc_uri *u)
{
	if (e == ECONNREFUSED) {
		return ipc__err(-ECONNREFUSED, u->text,
		                "connection refused: nobody listens there");
	}
	return ipc__errno(-e, u->text, "connect");
}

/* Start connecting to a: 1 in progress, 0 connected, -errno (unrecorded)
 * when the kernel knows already that it fails. */
static int
try_connect(int fd, const struct ipc_sockaddr *a)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	socklen_t len = sizeof(int);
	int e = 0;

	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
		return 0;
	}
	if (errno != EINPROGRESS) {
		return -errno;
	}
	if (poll(&pfd, 1, 0) <= 0) {
		return 1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) {
		return -errno;
	}
	return e != 0 ? -e : 0;
}

static int
open_connect(ipc_channel *ch, const struct ipc_uri *u)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	struct ipc_sockaddr *v;
	size_t n;
	int r, fd = -1, last = ECONNREFUSED;

	r = ipc__sock_inet_addrs(u, SOCK_STREAM, 0, &v, &n);
	if (r < 0) {
		return r;
	}
	/* Addresses that fail at once (::1 when the server has only
	 * 127.0.0.1) give way to the next one. */
	for (size_t i = 0; i < n; i++) {
		fd = ipc__sock_new(v[i].ss.ss_family, SOCK_STREAM, u->text);
		if (fd < 0) {
			free(v);
			return fd;
		}
		r = try_connect(fd, &v[i]);
		if (r >= 0) {
			break;
		}
		last = -r;
		close(fd);
		fd = -1;
	}
	free(v);
	if (fd < 0) {
		return connect_error(last, u);
	}
	if (r == 0) {
		r = setup(ch, fd);
		if (r < 0) {
			close(fd);
		}
		return r;
	}
	r = setup(ch, fd); /* the stream is ready; state says when to use it */
	atomic_store(&p->state, CONNECTING);
	if (r < 0) {
		close(fd);
	}
	return r;
}

/* The connect (and handshake) mutex; 0 or a recorded error. */
static int
init_mu(ipc_channel *ch)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int r = pthread_mutex_init(&p->mu, NULL);

	if (r != 0) {
		return ipc__errno(-r, ch->uri, "pthread_mutex_init");
	}
	p->have_mu = 1;
	return 0;
}

int
ipc__tcp_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	struct ipc_sockfile nofile = {0};
	int fd, r;

	if (p->max_msg == 0) {
		ipc__tcp_prepare(ch, u, NULL);
	}
	r = init_mu(ch);
	if (r < 0) {
		return r;
	}
	if (u->port == 0 && !(flags & IPC_CREATE)) {
		return ipc__err(-EINVAL, u->text, "port 0: connect to which?");
	}
	if (!(flags & IPC_CREATE)) {
		r = open_connect(ch, u);
	} else {
		p->is_server = 1;
		fd = ipc__sock_inet_listen(u, SOCK_STREAM, 1);
		r = fd < 0 ? fd
		           : ipc__sockwait_init(&p->wait, fd, &nofile,
		                                u->text);
	}
	if (r < 0) {
		pthread_mutex_destroy(&p->mu);
		p->have_mu = 0;
	}
	return r;
}

/* 0 when the connection is up, -EAGAIN while it is being made, or the
 * error that ended it. */
static int
peer(ipc_channel *ch)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int s = atomic_load_explicit(&p->state, memory_order_acquire);
	socklen_t len = sizeof(int);
	int e = 0;

	if (p->wait.lfd >= 0) {
		int r = ipc__sockwait_take(&p->wait, setup, ch, ch->uri);
		if (r < 0) {
			return r;
		}
		s = atomic_load_explicit(&p->state, memory_order_acquire);
	}
	if (s == UP) {
		return 0;
	}
	if (s == HANDSHAKE) {
		return handshake(ch);
	}
	if (s == CONNECTING) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLOUT};
		pthread_mutex_lock(&p->mu);
		s = atomic_load(&p->state);
		if (s == CONNECTING && poll(&pfd, 1, 0) > 0) {
			if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &len) <
			    0) {
				e = errno;
			}
			s = e != 0 ? -e : p->layer != NULL ? HANDSHAKE : UP;
			atomic_store(&p->state, s);
		}
		pthread_mutex_unlock(&p->mu);
	}
	if (s == UP) {
		return 0;
	}
	if (s == HANDSHAKE) {
		return handshake(ch);
	}
	if (s == CONNECTING) {
		return -EAGAIN;
	}
	if (s == -ECONNREFUSED) {
		return ipc__err(s, ch->uri,
		                "connection refused: nobody listens there");
	}
	return ipc__errno(s, ch->uri, "connect");
}

ssize_t
ipc__tcp_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int r = peer(ch);

	if (r < 0) {
		return r;
	}
	/* The first write after the peer's FIN still succeeds in TCP.  A
	 * libipc peer (framing=length) that sent FIN has closed for good,
	 * so once recv saw it, report it; with line or raw framing the
	 * peer may only have shut down its sending side. */
	if (p->framing == IPC_FRAMING_LENGTH &&
	    atomic_load_explicit(&p->peer_eof, memory_order_relaxed)) {
		return ipc__err_peer(ch->uri, "send", IPC_PEER_CLOSED);
	}
	p->st.nowait = ch->send_nowait;
	return ipc__stream_send(&p->st, buf, len);
}

ssize_t
ipc__tcp_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int r = peer(ch);

	if (r < 0) {
		return r;
	}
	p->st.rblock = ch->recv_block;
	ssize_t n = ipc__stream_recv(&p->st, buf, cap);
	if (n == -EPIPE) {
		atomic_store_explicit(&p->peer_eof, 1, memory_order_relaxed);
	}
	return n;
}

int
ipc__tcp_pollfds(ipc_channel *ch, short events, struct pollfd *pfd,
                 int *retry_ms)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int r = peer(ch);

	/* A creator's handshake runs on the connection it took, not on the
	 * listening socket. */
	if (r == -EAGAIN && atomic_load(&p->state) == HANDSHAKE) {
		pfd[0] = (struct pollfd){.fd = p->fd, .events = p->hs_events};
		return 1;
	}
	if (r == -EAGAIN && p->wait.lfd >= 0) {
		pfd[0] = (struct pollfd){.fd = p->wait.lfd, .events = POLLIN};
		return 1;
	}
	if (r == -EAGAIN) {
		pfd[0] = (struct pollfd){.fd = p->fd, .events = POLLOUT};
		return 1;
	}
	if (r < 0) {
		/* failed: the call returns at once */
		pfd[0] = (struct pollfd){.fd = p->fd, .events = POLLOUT};
		*retry_ms = 0;
		return 1;
	}
	return ipc__stream_pollfds(&p->st, events, pfd, retry_ms);
}

short
ipc__tcp_ready(ipc_channel *ch, short events, const struct pollfd *pfd,
               int npfd)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int s = atomic_load_explicit(&p->state, memory_order_acquire);

	if (s == UP && (p->wait.lfd < 0 || ipc__sockwait_done(&p->wait))) {
		return ipc__stream_ready(&p->st, events, pfd, npfd);
	}
	if (pfd == NULL && s >= 0) {
		return 0;
	}
	/* The listening socket or the connect woke us: take the peer or
	 * finish connecting; what comes next is seen on the next round. */
	int r = peer(ch);
	if (r == 0) {
		return ipc__stream_ready(&p->st, events, NULL, 0);
	}
	if (r == -EAGAIN) {
		return 0;
	}
	return (short)(IPC_POLLERR | (events & (IPC_POLLIN | IPC_POLLOUT)));
}

/* Unread input at close makes the kernel reset the connection, which can
 * discard what this end sent last: read it first. */
static void
drain(int fd)
{
	char junk[4096];
	for (int i = 0; i < 256; i++) {
		if (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) <= 0) {
			break;
		}
	}
}

int
ipc__tcp_close(ipc_channel *ch)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int r = 0;

	if (p->layer_on) {
		if (atomic_load(&p->state) == UP) {
			(void)ipc__stream_flush(&p->st, 1000);
		}
		p->st.io = NULL;
		p->layer->fini(ch);
	}
	if (p->stream_on) {
		drain(p->fd);
		r = ipc__stream_close(ch); /* flushes, closes p->fd */
	}
	ipc__sockwait_fini(&p->wait);
	if (p->have_mu) {
		pthread_mutex_destroy(&p->mu);
	}
	return r;
}

int
ipc__tcp_fd(const ipc_channel *ch)
{
	const struct ipc_tcpconn *p = ipc__cpriv(ch);

	return p->wait.ep >= 0 ? p->wait.ep : p->fd;
}

int
ipc__tcp_listen(ipc_listener *l, const struct ipc_uri *u, int flags)
{
	struct ipc_sock_listener *p = ipc__lpriv(l);
	int fd = ipc__sock_inet_listen(u, SOCK_STREAM, SOMAXCONN);

	if (fd < 0) {
		return fd;
	}
	p->fd = fd;
	return 0;
}

int
ipc__tcp_accept_layer(ipc_listener *l, ipc_channel *ch,
                      const struct ipc_tcp_layer *layer)
{
	struct ipc_tcpconn *p = ipc__priv(ch);
	int fd = ipc__sock_listener_accept(l);
	int r;

	if (fd < 0) {
		return fd;
	}
	ipc__tcp_prepare(ch, l->parsed, layer);
	p->is_server = 1;
	r = init_mu(ch);
	if (r == 0) {
		r = setup(ch, fd);
		if (r < 0) {
			pthread_mutex_destroy(&p->mu);
			p->have_mu = 0;
		}
	}
	if (r < 0) {
		close(fd);
	}
	return r;
}
