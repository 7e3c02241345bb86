/*
 * Message framing over byte streams (Unix stream sockets, TCP, pipes,
 * FIFOs), shared by every stream driver.
 *
 * framing=length (default): each message is a 4-byte big-endian length
 *   followed by that many bytes.  A length above the channel's maxmsg is a
 *   protocol error (-EPROTO, channel failed).
 * framing=line: each message is the bytes up to '\n', which is not part of
 *   the message; a message that contains '\n' cannot be sent (-EINVAL).  A
 *   last line without '\n' before EOF is delivered.  '\r' is kept.
 * framing=raw: no framing: a send writes the bytes; a recv returns what one
 *   read(2) returns (up to cap bytes).  For peers that are not libipc;
 *   message boundaries are not kept.
 *
 * A driver embeds struct ipc_stream in its private state, fills rfd, wfd
 * and the settings with ipc__stream_init(), and forwards send, recv,
 * pollfds and ready to the functions below.  The stream never blocks; it
 * buffers the unsent tail of a message that the kernel took only part of,
 * and finishes it before the next message (IPC_POLLOUT waits for that).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_STREAM_H
#define IPC_CORE_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>

#include "driver.h"

enum ipc_framing { IPC_FRAMING_LENGTH, IPC_FRAMING_LINE, IPC_FRAMING_RAW };

/* A byte layer between the framing and the descriptor (TLS).  Without
 * one the stream reads and writes rfd and wfd itself.  All calls are
 * non-blocking; ctx is the stream's io_ctx.
 *   read    like read(2): bytes, 0 at the end of the stream, or -errno
 *           (-EAGAIN: wait for rfd to be readable)
 *   writev  bytes the layer took (it may keep some in its own buffer
 *           and push them on later calls or in flush), or -errno
 *   pending bytes the layer holds for read, readable without rfd
 *   wpending the layer holds bytes it has yet to write to wfd
 *   flush   push what it holds (0, -EAGAIN, or -errno) */
struct ipc_stream_io {
	ssize_t (*read)(void *ctx, void *buf, size_t cap);
	ssize_t (*writev)(void *ctx, const struct iovec *v, int n);
	int (*pending)(void *ctx);
	int (*wpending)(void *ctx);
	int (*flush)(void *ctx);
};

#define IPC_STREAM_DEFAULT_MAXMSG (16u << 20) /* 16 MiB */
#define IPC_STREAM_HDR            4

struct ipc_stream {
	int rfd, wfd;  /* the same descriptor for sockets */
	int is_socket; /* send with MSG_NOSIGNAL instead of masking */
	enum ipc_framing framing;
	size_t max_msg;
	const char *uri; /* for messages */

	/* Receive side: bytes read ahead are [rpos, rend) of rbuf, which
	 * grows to hold one large message and shrinks back after it. */
	unsigned char *rbuf;
	size_t rcap, rpos, rend;
	size_t lscan; /* line framing: bytes already searched */
	int reof;     /* read(2) returned 0 or the peer reset */
	int rerr;     /* sticky receive error (-EPROTO) */

	/* Send side, under txlock: a message in progress.  While send is
	 * continuing (-EINPROGRESS) its bytes are the caller's (tx_src);
	 * after detach they are a copy in tail. */
	pthread_mutex_t txlock;
	unsigned char hdr[IPC_STREAM_HDR + 1];
	struct iovec txv[3];
	int txn; /* iovecs of the message in progress; 0: none */
	const void *tx_src;
	size_t tx_len;
	unsigned char *tail;
	size_t tail_cap;
	_Atomic int tx_detached; /* read by the receive side without lock */
	int werr;                /* sticky send error (-EPIPE) */
	int nowait; /* this send cannot wait: whole frame or -EAGAIN when it
	             * fits the kernel buffer */
	/* Blocking receives.  A driver sets block_ok when rfd may be put in
	 * blocking mode (a socket, which the stream always drives with
	 * MSG_DONTWAIT otherwise, or a read-only descriptor): a receive
	 * that may wait forever then blocks in read(2) itself, one system
	 * call where read, poll, read would be three. */
	int block_ok;
	int rblock;       /* this receive may wait forever */
	int rfd_blocking; /* O_NONBLOCK was cleared on rfd */
	/* A byte layer (NULL: the descriptors themselves); set after
	 * ipc__stream_init, with block_ok left 0. */
	const struct ipc_stream_io *io;
	void *io_ctx;
};

/* Initialise (no allocation).  rfd/wfd must be non-blocking. */
void ipc__stream_init(struct ipc_stream *s, int rfd, int wfd, int is_socket,
                      enum ipc_framing framing, size_t max_msg,
                      const char *uri);
/* Free buffers; does not close the descriptors. */
void ipc__stream_fini(struct ipc_stream *s);

/* Returns len, -EAGAIN (nothing written), -EINPROGRESS (part written:
 * call again with the same buf and len, or ipc__stream_detach), -EPIPE,
 * -EINVAL (framing=line and buf holds '\n'). */
ssize_t ipc__stream_send(struct ipc_stream *s, const void *buf, size_t len);
int ipc__stream_detach(struct ipc_stream *s);
ssize_t ipc__stream_recv(struct ipc_stream *s, void *buf, size_t cap);
int ipc__stream_pollfds(struct ipc_stream *s, short events, struct pollfd *pfd,
                        int *retry_ms);
short ipc__stream_ready(struct ipc_stream *s, short events,
                        const struct pollfd *pfd, int npfd);
/* Push the detached rest of a partly sent message, if any, without
 * blocking (recv and ready do this themselves; a driver whose receive
 * path does not reach them calls it). */
void ipc__stream_kick(struct ipc_stream *s);
/* Try to push out a pending tail, waiting up to timeout_ms (for close).
 * Returns 0 when nothing is pending. */
int ipc__stream_flush(struct ipc_stream *s, int timeout_ms);

/* Options every stream driver accepts: framing=length|line|raw and
 * maxmsg=SIZE.  Drivers put IPC_STREAM_OPTS in their option table, and read
 * them back with ipc__stream_opts(). */
#define IPC_STREAM_OPTS                                                       \
	{"framing", IPC_OPT_ENUM,         0,                                  \
	 0,         ipc__framing_choices, "length (default), line or raw"},   \
	{                                                                     \
		"maxmsg", IPC_OPT_SIZE, 1, (1ull << 30), NULL,                \
		        "largest message, default 16M"                        \
	}
void ipc__stream_opts(const struct ipc_uri *u, enum ipc_framing *framing,
                      size_t *max_msg);

/*
 * Ready-made driver slots for drivers whose private state BEGINS with
 * struct ipc_stream: put these in the driver table for send, recv,
 * detach, pollfds, ready and fd.  ipc__stream_close() flushes a detached
 * tail (up to the channel's timeout), closes rfd and wfd and frees the
 * buffers; a driver's own close calls it and then removes its objects.
 */
ssize_t ipc__sdrv_send(ipc_channel *ch, const void *buf, size_t len);
ssize_t ipc__sdrv_recv(ipc_channel *ch, void *buf, size_t cap);
int ipc__sdrv_detach(ipc_channel *ch);
int ipc__sdrv_pollfds(ipc_channel *ch, short events, struct pollfd *pfd,
                      int *retry_ms);
short ipc__sdrv_ready(ipc_channel *ch, short events, const struct pollfd *pfd,
                      int npfd);
int ipc__sdrv_fd(const ipc_channel *ch);
int ipc__stream_close(ipc_channel *ch);

#define IPC_STREAM_SLOTS                                                      \
	.send = ipc__sdrv_send, .recv = ipc__sdrv_recv,                       \
	.detach = ipc__sdrv_detach, .pollfds = ipc__sdrv_pollfds,             \
	.ready = ipc__sdrv_ready, .fd = ipc__sdrv_fd

#endif /* IPC_CORE_STREAM_H */
