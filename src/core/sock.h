/*
 * Helpers shared by the socket drivers (unix, unix+seqpacket, unix+dgram,
 * tcp, udp): address parsing, non-blocking close-on-exec sockets, binding
 * with the stale-socket-file check and permission bits, connecting, and
 * the message layer of the datagram and seqpacket drivers (datagrams,
 * with messages too large for one datagram passed as a memfd with
 * SCM_RIGHTS).
 *
 * Every function that fails records the reason with ipc__err() and
 * returns a negative errno value, except -EAGAIN, which is not a failure.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_SOCK_H
#define IPC_CORE_SOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "driver.h"
#include "trust.h"

/* A socket address of any family, with its length. */
struct ipc_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* A Unix socket file this process bound.  ipc__sockfile_remove() unlinks
 * it if the path still names the socket bound here, and only in the
 * process that bound it (a forked child closing its copy leaves it). */
struct ipc_sockfile {
	char *path; /* NULL: nothing to remove (abstract name, opener) */
	dev_t dev;
	ino_t ino;
	pid_t owner;
};

/* A socket listener's state, shared by the stream and seqpacket drivers
 * (lpriv_size = sizeof(struct ipc_sock_listener)); file.path is NULL where
 * there is no file (TCP, abstract names). */
struct ipc_sock_listener {
	int fd;
	struct ipc_sockfile file;
	struct ipc_trust trust; /* Unix sockets: allow_uid=, allow_gid= */
};

/* ipc_listen for a Unix socket of `type` (path or abstract name) into the
 * listener's ipc_sock_listener. */
int ipc__sock_unix_listener_open(ipc_listener *l, const struct ipc_uri *u,
                                 int type);

/* Listener slots for drivers whose listener state is ipc_sock_listener. */
int ipc__sock_listener_fd(const ipc_listener *l);
int ipc__sock_listener_close(ipc_listener *l);
/* Accept one peer: its descriptor, -EAGAIN, or an error (-EACCES for a
 * peer the listener's allow_uid=/allow_gid= refuse: it is dropped). */
int ipc__sock_listener_accept(ipc_listener *l);

/* -------------------------------------------------------- addresses -- */

/* u (IPC_ADDR_UNIXPATH) as a sockaddr_un: a path, or an abstract name
 * for "@NAME".  -EINVAL when there is no address or it is too long. */
int ipc__sock_unix_addr(const struct ipc_uri *u, struct ipc_sockaddr *a);

/* u (IPC_ADDR_HOSTPORT) resolved for socktype.  Numeric hosts are parsed
 * without any lookup; other names go through getaddrinfo(), which may
 * block on DNS.  The result is an array of *n addresses that the caller
 * frees with free(). */
int ipc__sock_inet_addrs(const struct ipc_uri *u, int socktype, int passive,
                         struct ipc_sockaddr **out, size_t *n);

/* Two socket addresses are the same (family, length and bytes that
 * matter: path or abstract name, IP address and port). */
int ipc__sockaddr_equal(const struct ipc_sockaddr *a,
                        const struct ipc_sockaddr *b);

/* ---------------------------------------------------------- sockets -- */

/* socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.  Returns the fd. */
int ipc__sock_new(int family, int type, const char *uri);

/* socketpair(AF_UNIX, type) with SOCK_NONBLOCK | SOCK_CLOEXEC. */
int ipc__sock_pair(int type, int sv[2], const char *uri);

/* Bind fd (AF_UNIX, of the given type) to a, for IPC_CREATE.  Files are
 * created with the permission bits of the URI's "mode" option (default
 * 0600), never wider than that while they exist.  A socket file left by
 * a dead process (connecting to it is refused) is replaced; a live one is
 * -EEXIST, as is an abstract name in use.  f records what to remove. */
int ipc__sock_unix_bind(int fd, int type, const struct ipc_sockaddr *a,
                        const struct ipc_uri *u, struct ipc_sockfile *f);

/* mode= sets the permissions of a socket file this end creates: with
 * IPC_CREATE (and ipc_listen) only; elsewhere it is -EINVAL. */
int ipc__sock_mode_check(const struct ipc_uri *u, int flags);

/* Unlink the socket file of f if it is still the one bound here; free
 * f->path.  Safe on a zeroed or already removed f. */
void ipc__sockfile_remove(struct ipc_sockfile *f);

/* Make a listening AF_UNIX socket of the given type on u's address. */
int ipc__sock_unix_listen(const struct ipc_uri *u, int type, int backlog,
                          struct ipc_sockfile *f);

/* Is a socket of this type served at a?  1 yes, 0 no (refused, no such
 * file), or -errno.  Connects from a probe socket that libipc creators
 * never take for a peer. */
int ipc__sock_unix_probe(const struct ipc_sockaddr *a, int type);

/* Connect fd (AF_UNIX) to a, for an opener.  No socket there: -ENOENT;
 * a socket nobody listens on, or a busy one: -ECONNREFUSED. */
int ipc__sock_unix_connect(int fd, const struct ipc_sockaddr *a,
                           const char *uri);
/* A new Unix socket of `type` connected to u's address: its descriptor,
 * or a negative errno (recorded) with nothing left open.  The listener's
 * credentials pass the trust check of u (trust.h) first: an abstract name
 * or a path in a world-writable directory is shared. */
int ipc__sock_unix_dial(const struct ipc_uri *u, int type);

/* "SCHEME://HOST:PORT?query-of-uri" for fd's own address (peer 0) or its
 * peer's (peer 1), malloc'ed; NULL with the error recorded (sockname.c).
 * ipc__sock_listener_uri: the listener_uri slot of inet drivers whose
 * listener state is ipc_sock_listener. */
char *ipc__sock_inet_uri(int fd, int peer, const char *scheme,
                         const char *uri);
char *ipc__sock_listener_uri(const ipc_listener *l);
/* The local_uri slot of drivers whose state begins with ipc_tcpconn. */
char *ipc__tcp_local_uri(const ipc_channel *ch);

/* ipc_peer_cred of a Unix socket connection fd (SO_PEERCRED); fd < 0:
 * -ENOTCONN, no peer yet. */
int ipc__sock_peer_cred(int fd, const char *uri, pid_t *pid, uid_t *uid,
                        gid_t *gid);

/* Make a listening TCP socket on u's address with SO_REUSEADDR. */
int ipc__sock_inet_listen(const struct ipc_uri *u, int type, int backlog);

/* Does a UDP socket on this host take datagrams sent to a?  0 when a is
 * an address of this host and no UDP socket is bound to it (or to the
 * wildcard) on its port; 1 when one is, or when a is not local and
 * nobody can tell.  Reads /proc/net/udp and /proc/net/udp6. */
int ipc__sock_udp_bound(const struct ipc_sockaddr *a);

/* accept4() with SOCK_NONBLOCK | SOCK_CLOEXEC.  -EAGAIN when nobody
 * waits (an aborted connection counts as nobody). */
int ipc__sock_accept(int lfd, const char *uri);

/* Set an int socket option; returns 0 or -errno (recorded). */
int ipc__sock_setint(int fd, int level, int opt, int val, const char *uri);

/* Is fd readable now?  poll(2) with timeout 0 (POLLIN, or POLLHUP /
 * POLLERR).  For the lifeline sockets of the datagram drivers. */
int ipc__fd_hungup(int fd);

/* ------------------------------------------------- one-peer creators -- */

/* A channel opened with IPC_CREATE on a connection-oriented socket
 * listens and takes exactly one peer: the first connection.  Until it
 * comes, send and recv return -EAGAIN and the core waits on the
 * listening socket.  Taking it shuts the listening socket down (later
 * connects are refused, queued ones are dropped), removes the socket
 * file, and moves ipc_fd()'s epoll set from the listening socket to the
 * connection, so the descriptor the user holds stays the same.  Both the
 * sending and the receiving thread may take it: a mutex orders them. */
struct ipc_sockwait {
	pthread_mutex_t mu;
	int lfd; /* listening socket; -1 when this is no creator */
	int ep;  /* epoll set for ipc_fd() */
	atomic_int done;
	struct ipc_sockfile file;
	struct ipc_trust trust;  /* peers refused are dropped: -EACCES */
	struct ipc_cred refused; /* the last one, until reported */
	atomic_int refusal;      /* a refusal the next take() reports */
};

/* Start waiting on lfd, taking ownership of it and of *file (both are
 * released even when this fails). */
int ipc__sockwait_init(struct ipc_sockwait *w, int lfd,
                       struct ipc_sockfile *file, const char *uri);

/* The creator's side of a one-peer Unix socket channel: bind, listen for
 * one peer, and start waiting for it in *w. */
int ipc__sock_unix_serve_one(struct ipc_sockwait *w, const struct ipc_uri *u,
                             int type);

/* Take the peer if it came.  setup(arg, fd) makes the channel use the
 * connection fd (it owns fd when it returns 0).  Returns 0 once the peer
 * is there, -EAGAIN while none came, or the error of accept or setup.  A
 * peer that allow_uid=/allow_gid= refuse is dropped, and the next call
 * returns -EACCES naming it (ipc__sockwait_refusal() says one waits, so
 * that pollfds/ready, whose errors nobody sees, let send/recv report it). */
int ipc__sockwait_take(struct ipc_sockwait *w, int (*setup)(void *, int),
                       void *arg, const char *uri);

static inline int
ipc__sockwait_done(const struct ipc_sockwait *w)
{
	return atomic_load_explicit(&w->done, memory_order_acquire);
}

static inline int
ipc__sockwait_refusal(const struct ipc_sockwait *w)
{
	return atomic_load_explicit(&w->refusal, memory_order_acquire);
}

/* Release what init took (not the connection: the driver closes it). */
void ipc__sockwait_fini(struct ipc_sockwait *w);

/* ---------------------------------------------- the message layer -- */

/* Datagrams and seqpacket records.  A message no larger than inline_max
 * is one plain datagram, which keeps non-libipc peers (socat) working.  A
 * larger one (Unix sockets only) is written to a memfd and sent as a
 * datagram holding only a carrier header, with the memfd attached by
 * SCM_RIGHTS; the receiver checks the header and the file's size against
 * its max_msg, reads it and closes it.
 *
 * One extra descriptor, a Unix socket, may ride along with a message (the
 * lifeline of unix+dgram): the receiver hands it back in
 * struct ipc_msgin.lifeline when it asked for one. */
struct ipc_msgsock {
	int fd;
	int is_unix;  /* descriptors may be passed */
	int passcred; /* SO_PASSCRED is on: tells EOF from empty records */
	size_t inline_max; /* largest message sent as one plain datagram */
	size_t max_msg;    /* largest message accepted */
	const char *uri;
};

#define IPC_MSG_CARRIER_HDR 16

struct ipc_msgin {
	/* in: also fill from/fromlen with the sender's address */
	int want_from;
	struct ipc_sockaddr from;
	/* in: keep a passed socket (else it is closed); out: it, or -1 */
	int want_lifeline;
	int lifeline;
	/* out: end of stream (seqpacket peer shut down), nothing received */
	int eof;
};

/* Fill m for fd; inline_max follows SO_SNDBUF for Unix sockets. */
int ipc__msg_init(struct ipc_msgsock *m, int fd, int is_unix, int passcred,
                  size_t max_msg, const char *uri);

/* Send one message, attaching extra_fd (>= 0) to it.  Returns len,
 * -EAGAIN, a recorded error, or an unrecorded one for which
 * ipc__sock_gone() holds: the caller reports the peer's end. */
ssize_t ipc__msg_send(const struct ipc_msgsock *m, const void *buf, size_t len,
                      int extra_fd);

/* Receive one message into buf[cap].  Returns its length; -EMSGSIZE when
 * cap is too small (it stays queued); -EAGAIN; -EPROTO for a malformed
 * carrier or a message above max_msg (consumed); a recorded error; or an
 * unrecorded one for which ipc__sock_gone() holds.  With in->eof set, 0
 * means the peer's end of stream. */
ssize_t ipc__msg_recv(const struct ipc_msgsock *m, void *buf, size_t cap,
                      struct ipc_msgin *in);

/* Errors that mean the peer is gone (EPIPE, ECONNRESET, ECONNREFUSED,
 * ENOTCONN, ESHUTDOWN). */
int ipc__sock_gone(int err);

/* Look at the next datagram without taking it: its sender's address and
 * a passed socket (when asked).  Returns 0, -EAGAIN or -errno. */
int ipc__msg_peek_from(const struct ipc_msgsock *m, struct ipc_msgin *in);

#endif /* IPC_CORE_SOCK_H */
