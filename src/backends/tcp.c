/*
 * tcp://HOST:PORT: TCP over IPv4 or IPv6 (tcp://[::1]:7000), framed by
 * the core's stream framing (framing=length|line|raw, maxmsg=), with
 * TCP_NODELAY.  Numeric hosts are never looked up; names go through
 * getaddrinfo(), which may block on DNS.  The connection machinery is
 * src/core/tcpconn.c, shared with tls+tcp://.  See docs/tcp.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include "core/tcpconn.h"

static const struct ipc_optspec tcp_opts[] = {
        IPC_STREAM_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

static int
tcp_accept(ipc_listener *l, ipc_channel *ch)
{
	return ipc__tcp_accept_layer(l, ch, NULL);
}

const struct ipc_driver ipc_driver_tcp = {
        .scheme = "tcp",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_LISTEN |
                IPC_CAP_PEERCLOSE | IPC_CAP_CROSSHOST | IPC_CAP_PUBSUB,
        .addr = IPC_ADDR_HOSTPORT,
        .opts = tcp_opts,
        .priv_size = sizeof(struct ipc_tcpconn),
        .lpriv_size = sizeof(struct ipc_sock_listener),
        .open = ipc__tcp_open,
        .send = ipc__tcp_send,
        .detach = ipc__sdrv_detach,
        .recv = ipc__tcp_recv,
        .close = ipc__tcp_close,
        .pollfds = ipc__tcp_pollfds,
        .ready = ipc__tcp_ready,
        .fd = ipc__tcp_fd,
        .listen = ipc__tcp_listen,
        .accept = tcp_accept,
        .listener_fd = ipc__sock_listener_fd,
        .listener_close = ipc__sock_listener_close,
        .local_uri = ipc__tcp_local_uri,
        .listener_uri = ipc__sock_listener_uri,
};
