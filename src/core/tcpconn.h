/*
 * TCP channels, shared by tcp:// and tls+tcp://: connecting without
 * waiting, a creator's one peer, listeners, and the stream framing over
 * the connection.  A driver's private state BEGINS with struct
 * ipc_tcpconn; tcp:// uses these functions as its slots directly, and
 * tls+tcp:// adds a layer: a handshake run once the connection is up and
 * a byte layer (struct ipc_stream_io) between the framing and the socket.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_TCPCONN_H
#define IPC_CORE_TCPCONN_H

#include <pthread.h>
#include <stdatomic.h>

#include "sock.h"
#include "stream.h"

/* What a secure layer supplies (all on the channel's thread(s); the core
 * serialises start and step with the channel's connect mutex). */
struct ipc_tcp_layer {
	/* The connection fd is up (is_server: accepted by a creator or a
	 * listener).  Set up the layer; 0 or a recorded error. */
	int (*start)(ipc_channel *ch, int fd, int is_server);
	/* Continue the handshake: 0 when done (the stream may be used),
	 * -EAGAIN with *events set (POLLIN/POLLOUT) while it goes on, or a
	 * recorded error, which ends the channel. */
	int (*step)(ipc_channel *ch, short *events);
	/* The byte layer for the stream, and its context. */
	const struct ipc_stream_io *io;
	void *(*io_ctx)(ipc_channel *ch);
	/* Before the descriptor closes: say goodbye, free the layer. */
	void (*fini)(ipc_channel *ch);
};

struct ipc_tcpconn {
	struct ipc_stream st;     /* first: ipc__sdrv_detach relies on it */
	int fd;                   /* the connection; -1 before the peer */
	struct ipc_sockwait wait; /* IPC_CREATE: the one peer; lfd -1 else */
	pthread_mutex_t mu;       /* opener: completing the connect */
	int have_mu;
	atomic_int state;    /* CONNECTING, HANDSHAKE, UP, or -errno */
	atomic_int peer_eof; /* recv saw the peer's end */
	enum ipc_framing framing;
	size_t max_msg;
	int stream_on;
	const struct ipc_tcp_layer *layer; /* NULL: plain TCP */
	int is_server;
	int layer_on;
	short hs_events; /* what the handshake waits for */
};

/* Driver slots (priv begins with struct ipc_tcpconn).  A layered driver
 * sets ipc__tcp_conn(ch)->layer in its open and accept before calling
 * these. */
void ipc__tcp_prepare(ipc_channel *ch, const struct ipc_uri *u,
                      const struct ipc_tcp_layer *layer);
int ipc__tcp_open(ipc_channel *ch, const struct ipc_uri *u, int flags);
ssize_t ipc__tcp_send(ipc_channel *ch, const void *buf, size_t len);
ssize_t ipc__tcp_recv(ipc_channel *ch, void *buf, size_t cap);
int ipc__tcp_pollfds(ipc_channel *ch, short events, struct pollfd *pfd,
                     int *retry_ms);
short ipc__tcp_ready(ipc_channel *ch, short events, const struct pollfd *pfd,
                     int npfd);
int ipc__tcp_close(ipc_channel *ch);
int ipc__tcp_fd(const ipc_channel *ch);
int ipc__tcp_listen(ipc_listener *l, const struct ipc_uri *u, int flags);
/* Accept one peer into ch, prepared with layer (NULL: plain). */
int ipc__tcp_accept_layer(ipc_listener *l, ipc_channel *ch,
                          const struct ipc_tcp_layer *layer);

#endif /* IPC_CORE_TCPCONN_H */
