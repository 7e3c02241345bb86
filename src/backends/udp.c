/*
 * udp://HOST:PORT: UDP datagrams over IPv4 or IPv6.  Unreliable and
 * unordered, and the caps say so: a datagram may be lost, duplicated or
 * reordered, and the peer's close is never seen.  One message is one
 * datagram, at most 65507 bytes over IPv4 and 65527 over IPv6.
 *
 * The creator (IPC_CREATE) binds HOST:PORT and takes the sender of the
 * first datagram as its peer (connecting to it, so the kernel drops
 * datagrams from anyone else); until then its send waits as for a full
 * queue.  The opener connects to HOST:PORT; ipc_open sends nothing.  When
 * HOST is an address of this machine, ipc_open looks up the kernel's UDP
 * sockets and fails with -ECONNREFUSED if none is bound there; for other
 * hosts nobody can tell.  See docs/udp.md.
 *
 * Publish/subscribe is multicast (docs/pubsub.md): HOST is a group
 * (224.0.0.0/4 or ff00::/8).  IPC_PUBLISH sends to the group (looped back
 * to subscribers on this machine), IPC_SUBSCRIBE binds the port and joins
 * the group; iface= names the interface of both, ttl= the publisher's hop
 * limit.  Loss stays allowed; the group's members are not known, so
 * ipc_subscribers() says -EOPNOTSUPP.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"

#define UDP_MAX4 65507 /* 65535 - 20 (IPv4 header) - 8 (UDP header) */
#define UDP_MAX6 65527 /* 65535 - 8: the IPv6 header is not counted */

/* How often a creator's send that waits for its first datagram looks
 * again (another thread may receive that datagram). */
#define FIRST_MS 50

struct udp_ch {
	struct ipc_msgsock m;
	int creator;
	pthread_mutex_t mu; /* creator: learning the peer */
	atomic_int have_peer;
	struct ipc_sockaddr peer;
};

static const struct ipc_optspec udp_opts[] = {
        {"iface", IPC_OPT_STR, 0, 0, NULL,
         "multicast: the interface to send on and join on (default: by "
         "route)"},
        {"ttl", IPC_OPT_UINT, 0, 255, NULL,
         "multicast: how many hops a datagram may go, default 1"},
        {NULL, 0, 0, 0, NULL, NULL},
};

static size_t
max_for(const struct ipc_sockaddr *a)
{
	return a->ss.ss_family == AF_INET6 ? UDP_MAX6 : UDP_MAX4;
}

static int
open_creator(ipc_channel *ch, const struct ipc_uri *u)
{
	struct udp_ch *p = ipc__priv(ch);
	struct ipc_sockaddr a = {.len = sizeof(a.ss)};
	int fd, r;

	fd = ipc__sock_inet_listen(u, SOCK_DGRAM, -1);
	if (fd < 0) {
		return fd;
	}
	if (getsockname(fd, (struct sockaddr *)&a.ss, &a.len) < 0) {
		r = ipc__errno(-errno, u->text, "getsockname");
		close(fd);
		return r;
	}
	r = pthread_mutex_init(&p->mu, NULL);
	if (r != 0) {
		close(fd);
		return ipc__errno(-r, u->text, "pthread_mutex_init");
	}
	p->creator = 1;
	ch->max_msg = max_for(&a);
	return ipc__msg_init(&p->m, fd, 0, 0, ch->max_msg, ch->uri);
}

static int
open_opener(ipc_channel *ch, const struct ipc_uri *u)
{
	struct udp_ch *p = ipc__priv(ch);
	struct ipc_sockaddr *v;
	size_t n;
	int fd = -1, r;

	if (u->port == 0) {
		return ipc__err(-EINVAL, u->text, "port 0: send to which?");
	}
	r = ipc__sock_inet_addrs(u, SOCK_DGRAM, 0, &v, &n);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		fd = ipc__sock_new(v[i].ss.ss_family, SOCK_DGRAM, u->text);
		if (fd < 0) {
			r = fd;
			break;
		}
		if (!ipc__sock_udp_bound(&v[i])) {
			r = ipc__err(-ECONNREFUSED, u->text,
			             "no UDP socket is bound there");
			close(fd);
			fd = -1;
			continue;
		}
		if (connect(fd, (struct sockaddr *)&v[i].ss, v[i].len) == 0) {
			ch->max_msg = max_for(&v[i]);
			r = 0;
			break;
		}
		r = ipc__errno(-errno, u->text, "connect");
		close(fd);
		fd = -1;
	}
	free(v);
	if (r < 0) {
		return r;
	}
	return ipc__msg_init(&p->m, fd, 0, 0, ch->max_msg, ch->uri);
}

static int
is_group(const struct ipc_sockaddr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&a->ss;
		return IN_MULTICAST(ntohl(in->sin_addr.s_addr));
	}
	const struct sockaddr_in6 *in6 = (const void *)&a->ss;
	return IN6_IS_ADDR_MULTICAST(&in6->sin6_addr);
}

/* The publisher: hops, loopback to this machine's members, interface;
 * then connected to the group. */
static int
group_publish(int fd, const struct ipc_uri *u, const struct ipc_sockaddr *g,
              unsigned ifindex)
{
	int v6 = g->ss.ss_family == AF_INET6;
	int ttl = (int)ipc__opt_num(u, "ttl", 1);
	int r = ipc__sock_setint(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
	                         v6 ? IPV6_MULTICAST_HOPS : IP_MULTICAST_TTL,
	                         ttl, u->text);
	if (r == 0) {
		r = ipc__sock_setint(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
		                     v6 ? IPV6_MULTICAST_LOOP
		                        : IP_MULTICAST_LOOP,
		                     1, u->text);
	}
	if (r == 0 && ifindex != 0) {
		struct ip_mreqn mr = {.imr_ifindex = (int)ifindex};
		int x = v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF,
		                        &ifindex, sizeof(ifindex))
		           : setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr,
		                        sizeof(mr));
		if (x < 0) {
			r = ipc__errno(-errno, u->text,
			               "open: multicast interface");
		}
	}
	if (r == 0 &&
	    connect(fd, (const struct sockaddr *)&g->ss, g->len) < 0) {
		r = ipc__errno(-errno, u->text, "open: connect to the group");
	}
	return r;
}

/* A subscriber: the group's port, shared with other members here, and
 * membership on the interface. */
static int
group_join(int fd, const struct ipc_uri *u, const struct ipc_sockaddr *g,
           unsigned ifindex)
{
	struct ipc_sockaddr b = *g;
	int r = ipc__sock_setint(fd, SOL_SOCKET, SO_REUSEADDR, 1, u->text);
	int x;

	if (r < 0) {
		return r;
	}
	if (g->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (void *)&b.ss;
		struct ipv6_mreq mr = {.ipv6mr_interface = ifindex};
		mr.ipv6mr_multiaddr = in6->sin6_addr;
		in6->sin6_addr = in6addr_any;
		x = bind(fd, (struct sockaddr *)&b.ss, b.len);
		if (x == 0) {
			x = setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr,
			               sizeof(mr));
		}
	} else {
		const struct sockaddr_in *in = (const void *)&g->ss;
		struct ip_mreqn mr = {.imr_multiaddr = in->sin_addr,
		                      .imr_ifindex = (int)ifindex};
		x = bind(fd, (struct sockaddr *)&b.ss, b.len);
		if (x == 0) {
			x = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
			               sizeof(mr));
		}
	}
	return x < 0 ? ipc__errno(-errno, u->text, "open: join the group") : 0;
}

static int
open_group(ipc_channel *ch, const struct ipc_uri *u)
{
	struct udp_ch *p = ipc__priv(ch);
	const char *iface = ipc__opt_str(u, "iface", NULL);
	unsigned ifindex = 0;
	struct ipc_sockaddr *v;
	size_t n;
	int r;

	if (u->port == 0) {
		return ipc__err(
		        -EINVAL, u->text,
		        "open: publish/subscribe needs the group's port");
	}
	if (iface != NULL && (ifindex = if_nametoindex(iface)) == 0) {
		return ipc__err(-ENODEV, u->text,
		                "open: iface=%s: no such interface", iface);
	}
	r = ipc__sock_inet_addrs(u, SOCK_DGRAM, 0, &v, &n);
	if (r < 0) {
		return r;
	}
	if (!is_group(&v[0])) {
		free(v);
		return ipc__err(-EINVAL, u->text,
		                "open: publish/subscribe over udp needs a "
		                "multicast group (224.0.0.0/4 or ff00::/8)");
	}
	if (ifindex == 0 && v[0].ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&v[0].ss;
		if (in6->sin6_scope_id == 0 &&
		    (IN6_IS_ADDR_MC_LINKLOCAL(&in6->sin6_addr) ||
		     IN6_IS_ADDR_MC_NODELOCAL(&in6->sin6_addr))) {
			free(v);
			return ipc__err(
			        -EINVAL, u->text,
			        "open: an interface-local or link-local "
			        "group (ff01::/16, ff02::/16) needs "
			        "iface=");
		}
	}
	r = ipc__sock_new(v[0].ss.ss_family, SOCK_DGRAM, u->text);
	if (r >= 0) {
		p->m.fd = r;
		r = ch->role == IPC_PUBLISH
		            ? group_publish(r, u, &v[0], ifindex)
		            : group_join(r, u, &v[0], ifindex);
		ch->max_msg = max_for(&v[0]);
	}
	free(v);
	return r < 0 ? r
	             : ipc__msg_init(&p->m, p->m.fd, 0, 0, ch->max_msg,
	                             ch->uri);
}

static int
udp_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct udp_ch *p = ipc__priv(ch);
	int r;

	p->m.fd = -1;
	if (ch->role != 0) {
		r = open_group(ch, u);
		if (r < 0 && p->m.fd >= 0) {
			close(p->m.fd);
		}
		return r;
	}
	if (ipc__opt_isset(u, "iface") || ipc__opt_isset(u, "ttl")) {
		return ipc__err(-EINVAL, u->text,
		                "open: iface= and ttl= apply to multicast "
		                "(IPC_PUBLISH, IPC_SUBSCRIBE) only");
	}
	r = (flags & IPC_CREATE) ? open_creator(ch, u) : open_opener(ch, u);
	if (r < 0 && p->m.fd >= 0) {
		close(p->m.fd);
	}
	if (r < 0 && p->creator) {
		pthread_mutex_destroy(&p->mu);
	}
	return r;
}

static int
has_peer(struct udp_ch *p)
{
	return !p->creator ||
	       atomic_load_explicit(&p->have_peer, memory_order_acquire);
}

/* Take the sender of a datagram as the peer (under mu). */
static void
learn_locked(struct udp_ch *p, const struct ipc_sockaddr *from)
{
	if (!atomic_load_explicit(&p->have_peer, memory_order_relaxed) &&
	    connect(p->m.fd, (const struct sockaddr *)&from->ss, from->len) ==
	            0) {
		p->peer = *from;
		atomic_store_explicit(&p->have_peer, 1, memory_order_release);
	}
}

/* Creator without a peer: learn it from the queued datagram.  0 when the
 * peer is known, -EAGAIN otherwise.  Under mu, like the receive that
 * takes the first datagram, so that one of the two always sees it. */
static int
find_peer(ipc_channel *ch)
{
	struct udp_ch *p = ipc__priv(ch);
	struct ipc_msgin in = {.want_from = 1};

	if (has_peer(p)) {
		return 0;
	}
	pthread_mutex_lock(&p->mu);
	if (ipc__msg_peek_from(&p->m, &in) == 0) {
		learn_locked(p, &in.from);
	}
	pthread_mutex_unlock(&p->mu);
	return has_peer(p) ? 0 : -EAGAIN;
}

static ssize_t
udp_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct udp_ch *p = ipc__priv(ch);
	ssize_t r = find_peer(ch);

	if (r < 0) {
		return r;
	}
	/* An ICMP error left by an earlier datagram (nobody listened) is
	 * reported on this call instead of sending: datagrams are not
	 * acknowledged, so send this one anyway. */
	for (int tries = 0; tries < 2; tries++) {
		r = ipc__msg_send(&p->m, buf, len, -1);
		if (!ipc__sock_gone((int)r)) {
			break;
		}
	}
	if (ipc__sock_gone((int)r)) {
		return (ssize_t)len; /* lost, as datagrams may be */
	}
	return r;
}

static ssize_t
udp_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct udp_ch *p = ipc__priv(ch);
	ssize_t r;

	for (;;) {
		struct ipc_msgin in = {.want_from = p->creator};
		if (!has_peer(p)) {
			/* the first datagram's sender becomes the peer */
			pthread_mutex_lock(&p->mu);
			r = ipc__msg_recv(&p->m, buf, cap, &in);
			if (r >= 0) {
				learn_locked(p, &in.from);
			}
			pthread_mutex_unlock(&p->mu);
			if (!ipc__sock_gone((int)r)) {
				return r;
			}
			continue; /* an ICMP error of an earlier send */
		} else {
			r = ipc__msg_recv(&p->m, buf, cap, &in);
		}
		if (ipc__sock_gone((int)r)) {
			continue; /* an ICMP error of an earlier send */
		}
		if (r < 0 || !p->creator ||
		    ipc__sockaddr_equal(&in.from, &p->peer)) {
			return r;
		}
		/* queued from someone else before the peer was known */
	}
}

static int
udp_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct udp_ch *p = ipc__priv(ch);
	short ev = (short)(((events & IPC_POLLIN) ? POLLIN : 0) |
	                   ((events & IPC_POLLOUT) ? POLLOUT : 0));

	if ((events & IPC_POLLOUT) && find_peer(ch) < 0) {
		/* The creator's send waits for the first datagram. */
		ev = (short)((ev & ~POLLOUT) | POLLIN);
		/* A receiving thread may take the first datagram before
		 * this wait starts: look again soon. */
		*retry_ms = FIRST_MS;
	}
	pfd[0] = (struct pollfd){.fd = p->m.fd, .events = ev};
	return 1;
}

static short
udp_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct udp_ch *p = ipc__priv(ch);
	short r = 0, re;

	if (pfd == NULL || npfd < 1) {
		return 0;
	}
	re = pfd[0].revents;
	if (re & (POLLIN | POLLERR)) {
		r |= IPC_POLLIN;
	}
	if ((re & POLLOUT) && has_peer(p)) {
		r |= IPC_POLLOUT;
	}
	if ((re & POLLIN) && (events & IPC_POLLOUT) && find_peer(ch) == 0) {
		r |= IPC_POLLOUT;
	}
	return r;
}

static int
udp_close(ipc_channel *ch)
{
	struct udp_ch *p = ipc__priv(ch);

	close(p->m.fd);
	if (p->creator) {
		pthread_mutex_destroy(&p->mu);
	}
	return 0;
}

static int
udp_fd(const ipc_channel *ch)
{
	const struct udp_ch *p = ipc__cpriv(ch);

	return p->m.fd;
}

/* Multicast: who listens to a group is not known here. */
static int
udp_subscribers(const ipc_channel *ch)
{
	return ipc__err(-EOPNOTSUPP, ch->uri,
	                "ipc_subscribers: the members of a multicast group "
	                "are not known");
}

/* The creator's bound address; the opener's peer. */
static char *
udp_local_uri(const ipc_channel *ch)
{
	const struct udp_ch *p = ipc__cpriv(ch);

	if (ch->role != 0) { /* the group */
		char *d = strdup(ch->uri);
		if (d == NULL) {
			ipc__err(-ENOMEM, ch->uri, "local URI: out of memory");
		}
		return d;
	}
	return ipc__sock_inet_uri(p->m.fd, !p->creator, "udp", ch->uri);
}

const struct ipc_driver ipc_driver_udp = {
        .scheme = "udp",
        .caps = IPC_CAP_CROSSHOST | IPC_CAP_PUBSUB,
        .addr = IPC_ADDR_HOSTPORT,
        .opts = udp_opts,
        .priv_size = sizeof(struct udp_ch),
        .open = udp_open,
        .send = udp_send,
        .recv = udp_recv,
        .close = udp_close,
        .pollfds = udp_pollfds,
        .ready = udp_ready,
        .fd = udp_fd,
        .local_uri = udp_local_uri,
        .subscribers = udp_subscribers,
};
