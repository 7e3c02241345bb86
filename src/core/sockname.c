/*
 * The URI of a socket's own or peer address, for ipc_local_uri() and
 * ipc_listener_uri() of the inet drivers: what the kernel chose (a port
 * asked as 0) filled in.
 *
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sock.h"
#include "tcpconn.h"

char *
ipc__sock_inet_uri(int fd, int peer, const char *scheme, const char *uri)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN], *out;
	const char *q = strchr(uri, '?');
	unsigned port;
	int r;

	r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
	         : getsockname(fd, (struct sockaddr *)&ss, &len);
	if (r < 0) {
		ipc__errno(-errno, uri, "ipc_local_uri: %s",
		           peer ? "getpeername" : "getsockname");
		return NULL;
	}
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a =
		        (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	} else {
		ipc__err(-EAFNOSUPPORT, uri,
		         "ipc_local_uri: not an IPv4 or IPv6 socket");
		return NULL;
	}
	int v6 = ss.ss_family == AF_INET6;
	if (asprintf(&out, "%s://%s%s%s:%u%s", scheme, v6 ? "[" : "", host,
	             v6 ? "]" : "", port, q != NULL ? q : "") < 0) {
		ipc__err(-ENOMEM, uri, "ipc_local_uri: out of memory");
		return NULL;
	}
	return out;
}

char *
ipc__sock_listener_uri(const ipc_listener *l)
{
	const struct ipc_sock_listener *p = ipc__clpriv(l);

	return ipc__sock_inet_uri(p->fd, 0, l->drv->scheme, l->uri);
}

char *
ipc__tcp_local_uri(const ipc_channel *ch)
{
	const struct ipc_tcpconn *p = ipc__cpriv(ch);
	const char *sc = ch->drv->scheme;

	/* A creator's or accepted channel's bound address; an opener's
	 * peer (the URI as given while the connection is being made). */
	if (p->wait.lfd >= 0) {
		return ipc__sock_inet_uri(p->wait.lfd, 0, sc, ch->uri);
	}
	if (p->is_server) {
		return ipc__sock_inet_uri(p->fd, 0, sc, ch->uri);
	}
	char *u = ipc__sock_inet_uri(p->fd, 1, sc, ch->uri);
	return u != NULL ? u : strdup(ch->uri);
}
