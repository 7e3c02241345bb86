/*
 * unix+dgram:///PATH and unix+dgram://@NAME: Unix datagram sockets.
 *
 * The creator (IPC_CREATE) binds the address and learns its one peer from
 * the first datagram's source address, then connects to it (so the kernel
 * takes datagrams from that peer only) and removes the socket file.  The
 * opener binds an autobind address, so that the creator can answer, and
 * connects to the creator.  Until the first datagram came, the creator's
 * send waits as for a full queue.
 *
 * A Unix datagram socket hears nothing when its peer closes or dies.
 * Each end therefore holds one end of a stream socketpair, the lifeline:
 * the opener passes the other end with SCM_RIGHTS on its first message
 * (ipc_pair hands one to each channel), and the lifeline's hang-up is the
 * peer's end.  Messages the peer sent before it closed are delivered
 * first: the lifeline is checked before the socket is read.  Before its
 * first message the opener learns of the creator's end by probing the
 * address (every RETRY_MS while it waits).  Peers that are not libipc
 * (socat) send no lifeline; their end is not seen.  See docs/unix.md.
 *
 * Messages larger than about half of SO_SNDBUF travel as a memfd (sock.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sock.h"
#include "core/stream.h"

/* How often an opener that has not sent yet checks that the creator is
 * still there, while it waits to receive. */
#define RETRY_MS 250

/* How often a creator's send that waits for its first datagram looks
 * again (another thread may receive that datagram). */
#define FIRST_MS 50

static const struct ipc_optspec dg_opts[] = {
        {"maxmsg", IPC_OPT_SIZE, 1, (1ull << 30), NULL,
         "largest message, default 16M"},
        {"mode", IPC_OPT_MODE, 0, 0, NULL,
         "permission bits of the socket file, default 0600"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

struct dg_ch {
	struct ipc_msgsock m;
	size_t max_msg;
	int ep; /* ipc_fd(): the socket and the lifeline */

	/* The creator's peer, set once under mu. */
	int creator;
	pthread_mutex_t mu;
	atomic_int have_peer;
	int peer_gone; /* connecting to it was refused */
	struct ipc_sockaddr peer;
	struct ipc_sockfile file;

	atomic_int lifeline;      /* its hang-up is the peer's end; -1 */
	int lifeline_out;         /* opener, send side: goes with message 1 */
	atomic_int lifeline_sent; /* opener: it went (pairs: from the start) */
	struct ipc_sockaddr dest; /* opener: the creator's address */
	dev_t dest_dev;
	ino_t dest_ino;

	int eof, failed; /* receive side */

	struct ipc_trust trust; /* creator: who may be the peer */
	struct ipc_cred cred;   /* the peer's, once known */
};

static void
prepare(ipc_channel *ch, const struct ipc_uri *u)
{
	struct dg_ch *p = ipc__priv(ch);

	p->m.fd = -1;
	p->ep = -1;
	atomic_store(&p->lifeline, -1);
	p->lifeline_out = -1;
	p->max_msg =
	        (size_t)ipc__opt_num(u, "maxmsg", IPC_STREAM_DEFAULT_MAXMSG);
	ch->max_msg = p->max_msg;
}

static void
release(struct dg_ch *p)
{
	int l = atomic_load(&p->lifeline);

	if (p->m.fd >= 0) {
		close(p->m.fd);
	}
	if (p->ep >= 0) {
		close(p->ep);
	}
	if (l >= 0) {
		close(l);
	}
	if (p->lifeline_out >= 0) {
		close(p->lifeline_out);
	}
	ipc__sockfile_remove(&p->file);
	if (p->creator) {
		pthread_mutex_destroy(&p->mu);
	}
	p->m.fd = p->ep = p->lifeline_out = -1;
	atomic_store(&p->lifeline, -1);
	p->creator = 0;
}

static int
ep_add(struct dg_ch *p, int fd, const char *uri)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		return ipc__errno(-errno, uri, "epoll_ctl");
	}
	return 0;
}

/* The socket fd, its message layer and epoll set. */
static int
setup(ipc_channel *ch, int fd)
{
	struct dg_ch *p = ipc__priv(ch);
	int r;

	r = ipc__msg_init(&p->m, fd, 1, 0, p->max_msg, ch->uri);
	if (r < 0) {
		return r;
	}
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	if (p->ep < 0) {
		return ipc__errno(-errno, ch->uri, "epoll_create1");
	}
	return ep_add(p, fd, ch->uri);
}

/* A new lifeline pair: keep one end, *out is the other. */
static int
lifeline_new(ipc_channel *ch, int *out)
{
	struct dg_ch *p = ipc__priv(ch);
	int sv[2], r;

	r = ipc__sock_pair(SOCK_STREAM, sv, ch->uri);
	if (r < 0) {
		return r;
	}
	atomic_store(&p->lifeline, sv[0]);
	*out = sv[1];
	return ep_add(p, sv[0], ch->uri);
}

static int
open_creator(ipc_channel *ch, const struct ipc_uri *u,
             const struct ipc_sockaddr *a)
{
	struct dg_ch *p = ipc__priv(ch);
	int fd, r;

	fd = ipc__sock_new(AF_UNIX, SOCK_DGRAM, u->text);
	if (fd < 0) {
		return fd;
	}
	p->m.fd = fd;
	r = pthread_mutex_init(&p->mu, NULL);
	if (r != 0) {
		return ipc__errno(-r, u->text, "pthread_mutex_init");
	}
	p->creator = 1;
	r = ipc__trust_parse(&p->trust, u, 0);
	if (r < 0) {
		return r;
	}
	r = ipc__sock_unix_bind(fd, SOCK_DGRAM, a, u, &p->file);
	if (r < 0) {
		return r;
	}
	return setup(ch, fd);
}

/* May the opener talk to the creator it found?  An abstract name has no
 * owner to look at: only allow_uid=any can be said of it. */
static int
opener_trust(const struct ipc_uri *u, const struct ipc_cred *c)
{
	struct ipc_trust t;
	int r = ipc__trust_parse(&t, u, ipc__trust_path_shared(u->fspath));

	if (r < 0) {
		return r;
	}
	if (u->abstract) {
		if (t.check && t.given) {
			return ipc__err(
			        -EOPNOTSUPP, u->text,
			        "allow_uid=/allow_gid=: the creator of "
			        "an abstract datagram socket cannot be "
			        "identified (use a path in a private "
			        "directory)");
		}
		return 0;
	}
	return ipc__trust_check(&t, u->text, "the channel's creator", c);
}

static int
open_opener(ipc_channel *ch, const struct ipc_uri *u,
            const struct ipc_sockaddr *a)
{
	struct dg_ch *p = ipc__priv(ch);
	sa_family_t fam = AF_UNIX;
	const struct sockaddr_un *sun = (const void *)&a->ss;
	struct stat st;
	int fd, r;

	fd = ipc__sock_new(AF_UNIX, SOCK_DGRAM, u->text);
	if (fd < 0) {
		return fd;
	}
	p->m.fd = fd;
	/* autobind: an address the creator can answer to */
	if (bind(fd, (const struct sockaddr *)&fam, sizeof(fam)) < 0) {
		return ipc__errno(-errno, u->text, "autobind");
	}
	r = ipc__sock_unix_connect(fd, a, u->text);
	if (r < 0) {
		return r;
	}
	p->dest = *a;
	if (sun->sun_path[0] != '\0' && stat(sun->sun_path, &st) == 0) {
		p->dest_dev = st.st_dev;
		p->dest_ino = st.st_ino;
		/* The kernel names no datagram peer: the socket file's
		 * owner is the creator. */
		if (S_ISSOCK(st.st_mode)) {
			p->cred =
			        (struct ipc_cred){1, 0, st.st_uid, st.st_gid};
		}
	}
	r = opener_trust(u, &p->cred);
	if (r < 0) {
		return r;
	}
	r = setup(ch, fd);
	if (r < 0) {
		return r;
	}
	return lifeline_new(ch, &p->lifeline_out);
}

static int
dg_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct dg_ch *p = ipc__priv(ch);
	struct ipc_sockaddr a;
	int r;

	prepare(ch, u);
	r = ipc__sock_mode_check(u, flags);
	if (r < 0) {
		return r;
	}
	r = ipc__sock_unix_addr(u, &a);
	if (r < 0) {
		return r;
	}
	r = (flags & IPC_CREATE) ? open_creator(ch, u, &a)
	                         : open_opener(ch, u, &a);
	if (r < 0) {
		release(p);
	}
	return r;
}

static int
dg_pair(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u)
{
	struct dg_ch *pa = ipc__priv(a), *pb = ipc__priv(b);
	int sv[2], other, r;

	prepare(a, u);
	prepare(b, u);
	r = ipc__sock_mode_check(u, 0);
	if (r < 0) {
		return r;
	}
	r = ipc__sock_pair(SOCK_DGRAM, sv, u->text);
	if (r < 0) {
		return r;
	}
	pa->m.fd = sv[0];
	pb->m.fd = sv[1];
	r = setup(a, sv[0]);
	if (r == 0) {
		r = setup(b, sv[1]);
	}
	if (r == 0) {
		r = lifeline_new(a, &other);
	}
	if (r == 0) {
		atomic_store(&pb->lifeline, other);
		r = ep_add(pb, other, b->uri);
	}
	ipc__cred_self(&pa->cred);
	ipc__cred_self(&pb->cred);
	/* each end holds its lifeline already */
	atomic_store(&pa->lifeline_sent, 1);
	atomic_store(&pb->lifeline_sent, 1);
	if (r < 0) {
		release(pa);
		release(pb);
	}
	return r;
}

/* ------------------------------------------------------ the creator's peer */

/* Take the sender of a datagram as the peer (under mu).  An unnamed
 * sender cannot be answered: the creator stays without a peer. */
static int
learn_locked(ipc_channel *ch, const struct ipc_sockaddr *from, int lifeline)
{
	struct dg_ch *p = ipc__priv(ch);
	struct ipc_cred c = {0};

	if (atomic_load_explicit(&p->have_peer, memory_order_relaxed) ||
	    from->len <= sizeof(sa_family_t)) {
		if (lifeline >= 0) {
			close(lifeline);
		}
		return 0;
	}
	/* The lifeline is a socketpair the opener made: the kernel knows
	 * who made it.  A peer without one (socat) cannot be identified. */
	int r = lifeline >= 0 ? ipc__cred_socket(lifeline, &c, ch->uri) : 0;
	if (r == 0) {
		r = ipc__trust_check(&p->trust, ch->uri, "the peer", &c);
	}
	if (r < 0) {
		if (lifeline >= 0) {
			close(lifeline);
		}
		return r;
	}
	p->cred = c;
	p->peer = *from;
	if (connect(p->m.fd, (const struct sockaddr *)&from->ss, from->len) <
	    0) {
		p->peer_gone = 1; /* it sent and left */
	}
	if (lifeline >= 0) {
		atomic_store(&p->lifeline, lifeline);
		(void)ep_add(p, lifeline, ch->uri);
	}
	/* One peer per channel: nobody else needs the name. */
	ipc__sockfile_remove(&p->file);
	atomic_store_explicit(&p->have_peer, 1, memory_order_release);
	return 0;
}

static int
has_peer(struct dg_ch *p)
{
	return !p->creator ||
	       atomic_load_explicit(&p->have_peer, memory_order_acquire);
}

/* Creator without a peer: learn it from the queued datagram, if any.
 * 0 when the peer is known, -EAGAIN otherwise (*unnamed: the datagram
 * waiting came from an address nobody can answer).  Under mu, like the
 * receive that takes the first datagram, so that one of the two always
 * sees it. */
static int
find_peer(ipc_channel *ch, int *unnamed)
{
	struct dg_ch *p = ipc__priv(ch);
	struct ipc_msgin in = {.want_from = 1, .want_lifeline = 1};
	int r = 0;

	*unnamed = 0;
	if (has_peer(p)) {
		return 0;
	}
	pthread_mutex_lock(&p->mu);
	if (!atomic_load_explicit(&p->have_peer, memory_order_relaxed)) {
		r = ipc__msg_peek_from(&p->m, &in);
		if (r == 0) {
			r = learn_locked(ch, &in.from, in.lifeline);
		}
		if (r == -EACCES) {
			/* Refused: its datagram goes (the kernel closes
			 * what it carried). */
			(void)recv(p->m.fd, NULL, 0, MSG_DONTWAIT);
		} else if (r == 0) {
			if (!atomic_load_explicit(&p->have_peer,
			                          memory_order_relaxed)) {
				*unnamed = 1;
				r = -EAGAIN;
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
	/* other errors show in recv */
	return r == -EAGAIN || r == -EACCES ? r : 0;
}

/* ------------------------------------------------------------- send/recv */

static ssize_t
dg_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct dg_ch *p = ipc__priv(ch);
	int unnamed;
	ssize_t r = find_peer(ch, &unnamed);

	if (r < 0) {
		return r;
	}
	if (p->creator && p->peer_gone) {
		return ipc__err_peer(ch->uri, "send", IPC_PEER_EITHER);
	}
	r = ipc__msg_send(&p->m, buf, len, p->lifeline_out);
	if (r >= 0 && p->lifeline_out >= 0) {
		close(p->lifeline_out);
		p->lifeline_out = -1;
		atomic_store(&p->lifeline_sent, 1);
	}
	if (ipc__sock_gone((int)r)) {
		return ipc__err_peer(ch->uri, "send", IPC_PEER_EITHER);
	}
	if (r == -EPERM) {
		/* the creator took another peer before our first message */
		return ipc__err(-EPIPE, ch->uri,
		                "send: the endpoint took another peer");
	}
	return r;
}

/* The creator's receive before it knows its peer: the sender of what it
 * takes becomes the peer (under mu, see find_peer).  -EALREADY when the
 * peer was learnt meanwhile. */
static ssize_t
recv_first(ipc_channel *ch, void *buf, size_t cap)
{
	struct dg_ch *p = ipc__priv(ch);
	struct ipc_msgin in = {.want_from = 1, .want_lifeline = 1};
	ssize_t r;

	pthread_mutex_lock(&p->mu);
	if (atomic_load_explicit(&p->have_peer, memory_order_relaxed)) {
		pthread_mutex_unlock(&p->mu);
		return -EALREADY; /* learnt meanwhile: the usual path */
	}
	r = ipc__msg_recv(&p->m, buf, cap, &in);
	if (r >= 0) {
		int t = learn_locked(ch, &in.from, in.lifeline);
		if (t < 0) {
			r = t; /* the refused peer's datagram is dropped */
		}
	}
	pthread_mutex_unlock(&p->mu);
	return r;
}

/* Has the peer ended?  Checked before reading, so that what it sent
 * before it went is still delivered. */
static int
peer_ended(ipc_channel *ch)
{
	struct dg_ch *p = ipc__priv(ch);
	int l = atomic_load(&p->lifeline);
	struct stat st;

	if (p->creator) {
		return has_peer(p) &&
		       (p->peer_gone || (l >= 0 && ipc__fd_hungup(l)));
	}
	if (atomic_load(&p->lifeline_sent)) {
		return ipc__fd_hungup(l);
	}
	/* Not sent yet: the creator cannot have sent either; is it there? */
	if (p->dest_ino != 0 &&
	    (stat(((const struct sockaddr_un *)&p->dest.ss)->sun_path, &st) <
	             0 ||
	     st.st_dev != p->dest_dev || st.st_ino != p->dest_ino)) {
		return 1;
	}
	return ipc__sock_unix_probe(&p->dest, SOCK_DGRAM) == 0;
}

static ssize_t
dg_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct dg_ch *p = ipc__priv(ch);
	ssize_t r;
	int ended;

	if (p->failed) {
		return ipc__err(-EPROTO, ch->uri,
		                "channel failed earlier: the peer broke the "
		                "protocol");
	}
	if (p->eof) {
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_EITHER);
	}
	ended = peer_ended(ch);
	for (;;) {
		struct ipc_msgin in = {.want_from = p->creator};
		if (!has_peer(p)) {
			r = recv_first(ch, buf, cap);
			if (r == -EALREADY) {
				continue;
			}
			break;
		}
		r = ipc__msg_recv(&p->m, buf, cap, &in);
		if (r < 0 || !p->creator ||
		    ipc__sockaddr_equal(&in.from, &p->peer)) {
			break;
		}
		/* queued from someone else before the peer was known */
	}
	if (r == -EAGAIN && ended) {
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

/* --------------------------------------------------------------- waiting */

static int
dg_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct dg_ch *p = ipc__priv(ch);
	int l = atomic_load(&p->lifeline), n = 0, unnamed = 0;
	short ev = (short)(((events & IPC_POLLIN) ? POLLIN : 0) |
	                   ((events & IPC_POLLOUT) ? POLLOUT : 0));

	if ((events & IPC_POLLOUT) && find_peer(ch, &unnamed) < 0) {
		/* The creator's send waits for the first datagram. */
		ev = (short)((ev & ~POLLOUT) | POLLIN);
		/* A receiving thread may take the first datagram before
		 * this wait starts: look again soon. */
		*retry_ms = FIRST_MS;
		if (unnamed && !(events & IPC_POLLIN)) {
			/* it is there already: wait for recv to take it */
			ev &= ~POLLIN;
			*retry_ms = RETRY_MS;
		}
	}
	if (ev != 0) {
		pfd[n++] = (struct pollfd){.fd = p->m.fd, .events = ev};
	}
	if (!p->creator && !atomic_load(&p->lifeline_sent)) {
		*retry_ms = RETRY_MS;
	} else if (l >= 0) {
		pfd[n++] = (struct pollfd){.fd = l, .events = POLLRDHUP};
	}
	return n;
}

static short
dg_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct dg_ch *p = ipc__priv(ch);
	short r = 0;
	int unnamed;

	if (pfd == NULL) {
		return 0;
	}
	for (int i = 0; i < npfd; i++) {
		short re = pfd[i].revents;
		if (pfd[i].fd == p->m.fd) {
			if (re & (POLLIN | POLLERR)) {
				r |= IPC_POLLIN;
			}
			if ((re & POLLOUT) && has_peer(p)) {
				r |= IPC_POLLOUT;
			}
			/* the creator's first datagram makes send possible */
			if ((re & POLLIN) && (events & IPC_POLLOUT) &&
			    !has_peer(p) && find_peer(ch, &unnamed) == 0) {
				r |= IPC_POLLOUT;
			}
		} else if (re != 0) {
			r |= IPC_POLLIN | IPC_POLLHUP; /* the lifeline */
		}
	}
	if (!(r & IPC_POLLIN) && (events & IPC_POLLIN) && !p->creator &&
	    !atomic_load(&p->lifeline_sent) && peer_ended(ch)) {
		r |= IPC_POLLIN | IPC_POLLHUP;
	}
	return r;
}

static int
dg_close(ipc_channel *ch)
{
	release(ipc__priv(ch));
	return 0;
}

static int
dg_fd(const ipc_channel *ch)
{
	const struct dg_ch *p = ipc__cpriv(ch);

	return p->ep;
}

static int
dg_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct dg_ch *p = ipc__cpriv(ch);
	struct ipc_cred c = {0};

	if (has_peer((struct dg_ch *)p)) {
		c = p->cred;
		if (!c.known) {
			return ipc__err(
			        -EOPNOTSUPP, ch->uri,
			        "ipc_peer_cred: this peer cannot be "
			        "identified (an abstract address, or a "
			        "peer that is not libipc)");
		}
	}
	return ipc__cred_out(&c, ch->uri, pid, uid, gid);
}

const struct ipc_driver ipc_driver_unix_dgram = {
        .scheme = "unix+dgram",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_UNIXPATH,
        .opts = dg_opts,
        .priv_size = sizeof(struct dg_ch),
        .open = dg_open,
        .pair = dg_pair,
        .send = dg_send,
        .recv = dg_recv,
        .close = dg_close,
        .pollfds = dg_pollfds,
        .ready = dg_ready,
        .fd = dg_fd,
        .peer_cred = dg_peer_cred,
};
