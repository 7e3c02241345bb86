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

#include "driver.h"

enum ipc_framing { IPC_FRAMING_LENGTH, IPC_FRAMING_LINE, IPC_FRAMING_RAW };

#define IPC_STREAM_DEFAULT_MAXMSG (16u << 20) /* 16 MiB */
#define IPC_STREAM_HDR 4

struct ipc_stream {
	int rfd, wfd;      /* the same descriptor for sockets */
	int is_socket;     /* send with MSG_NOSIGNAL instead of masking */
	enum ipc_framing framing;
	size_t max_msg;
	const char *uri;   /* for messages */

	/* receive side: bytes read ahead, [rpos, rend) of rbuf */
	unsigned char *rbuf;
	size_t rcap, rpos, rend;
	int reof;          /* read(2) returned 0 or a hang-up error */
	int rerr;          /* sticky receive error (-EPROTO, -ECONNRESET) */
	/* a large message being read straight from the descriptor */
	unsigned char *big;
	size_t big_len, big_have;
	int big_active;

	/* send side: the unsent tail of a started message */
	unsigned char *tail;
	size_t tail_len, tail_off, tail_cap;
	int werr;          /* sticky send error (-EPIPE) */
};

/* Initialise (no allocation).  rfd/wfd must be non-blocking. */
void ipc__stream_init(struct ipc_stream *s, int rfd, int wfd, int is_socket,
                      enum ipc_framing framing, size_t max_msg,
                      const char *uri);
/* Free buffers; does not close the descriptors. */
void ipc__stream_fini(struct ipc_stream *s);

ssize_t ipc__stream_send(struct ipc_stream *s, const void *buf, size_t len);
ssize_t ipc__stream_recv(struct ipc_stream *s, void *buf, size_t cap);
int ipc__stream_pollfds(struct ipc_stream *s, short events,
                        struct pollfd *pfd, int *retry_ms);
short ipc__stream_ready(struct ipc_stream *s, short events,
                        const struct pollfd *pfd, int npfd);
/* Try to push out a pending tail, waiting up to timeout_ms (for close).
 * Returns 0 when nothing is pending. */
int ipc__stream_flush(struct ipc_stream *s, int timeout_ms);

/* Options every stream driver accepts: framing=length|line|raw and
 * maxmsg=SIZE.  Drivers put IPC_STREAM_OPTS in their option table, and read
 * them back with ipc__stream_opts(). */
#define IPC_STREAM_OPTS                                                      \
	{"framing", IPC_OPT_ENUM, 0, 0, ipc__framing_choices,                \
	 "length (default), line or raw"},                                   \
	{                                                                    \
		"maxmsg", IPC_OPT_SIZE, 1, (1ull << 30), NULL,               \
		"largest message, default 16M"                              \
	}
void ipc__stream_opts(const struct ipc_uri *u, enum ipc_framing *framing,
                      size_t *max_msg);

#endif /* IPC_CORE_STREAM_H */
