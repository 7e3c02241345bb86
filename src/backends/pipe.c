/*
 * pipe: anonymous pipes, one per direction, made by ipc_pair("pipe:") for
 * use across fork().  Framed like every stream (framing=, maxmsg=).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/stream.h"

struct pipe_chan {
	struct ipc_stream s; /* first: the stream slots rely on it */
};

static const struct ipc_optspec pipe_opts[] = {
        IPC_STREAM_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

static int
pipe_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	(void)flags;
	return ipc__err(-EOPNOTSUPP, u->text,
	                "pipe: has no address: make the two ends with "
	                "ipc_pair(\"pipe:\") or adopt descriptors with "
	                "fd://R,W");
}

static int
pipe_pair(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u)
{
	struct pipe_chan *pa = ipc__priv(a), *pb = ipc__priv(b);
	enum ipc_framing framing;
	size_t max_msg;
	int ab[2], ba[2];

	ipc__stream_opts(u, &framing, &max_msg);
	if (pipe2(ab, O_CLOEXEC | O_NONBLOCK) < 0) {
		return ipc__errno(-errno, u->text, "pipe2");
	}
	if (pipe2(ba, O_CLOEXEC | O_NONBLOCK) < 0) {
		int e = -errno;
		close(ab[0]);
		close(ab[1]);
		return ipc__errno(e, u->text, "pipe2");
	}
	ipc__stream_init(&pa->s, ba[0], ab[1], 0, framing, max_msg, a->uri);
	ipc__stream_init(&pb->s, ab[0], ba[1], 0, framing, max_msg, b->uri);
	pa->s.block_ok = pb->s.block_ok = 1; /* read ends are read-only */
	a->max_msg = b->max_msg = max_msg;
	return 0;
}

const struct ipc_driver ipc_driver_pipe = {
        .scheme = "pipe",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_NONE,
        .opts = pipe_opts,
        .priv_size = sizeof(struct pipe_chan),
        .open = pipe_open,
        .pair = pipe_pair,
        .close = ipc__stream_close,
        IPC_STREAM_SLOTS,
};
