/*
 * fd://R,W adopts two inherited descriptors (fd://0,1: stdin and stdout
 * of a child started with pipes), fd://N one descriptor used both ways (a
 * socket).  The channel owns them: ipc_close closes them.
 *
 * The descriptors may be shared with other processes (a shell's pipes, a
 * terminal), so their file status flags are left alone: pipes, FIFOs and
 * terminals are reopened through /proc/self/fd with O_NONBLOCK, which gives
 * this channel its own non-blocking open file description; sockets are
 * read and written with MSG_DONTWAIT; regular files never block.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/stream.h"

struct fd_chan {
	struct ipc_stream s; /* first: the stream slots rely on it */
	int orig[2];         /* the adopted descriptors, closed at close */
};

static const struct ipc_optspec fd_opts[] = {
        IPC_STREAM_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

static int
parse_fd(const char *s, const char **end, int *fd)
{
	long v = 0;

	if (*s < '0' || *s > '9') {
		return -1;
	}
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s - '0');
		if (v > 1000000000L) {
			return -1;
		}
		s++;
	}
	*fd = (int)v;
	*end = s;
	return 0;
}

/* A non-blocking descriptor for fd, or -errno.  *is_sock set for sockets.
 * Returns fd itself when no separate descriptor is needed. */
static int
nonblocking_view(int fd, int accmode, int *is_sock, const char *uri)
{
	struct stat st;
	char path[64];

	if (fstat(fd, &st) < 0) {
		return ipc__errno(-errno, uri, "descriptor %d", fd);
	}
	*is_sock = S_ISSOCK(st.st_mode);
	if (*is_sock || S_ISREG(st.st_mode)) {
		return fd;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = open(path, accmode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (nfd < 0) {
		return ipc__errno(-errno, uri,
		                  "cannot reopen descriptor %d non-blocking "
		                  "through %s",
		                  fd, path);
	}
	return nfd;
}

static int
fd_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct fd_chan *c = ipc__priv(ch);
	enum ipc_framing framing;
	size_t max_msg;
	const char *a = u->authority ? u->authority : "";
	const char *e;
	int r = -1, w = -1, rs = 0, ws = 0;

	(void)flags;
	ch->has_addr = 0; /* adopted descriptors: no URI reaches this end */
	if (parse_fd(a, &e, &r) < 0 || (*e != ',' && *e != '\0') ||
	    (*e == ',' && (parse_fd(e + 1, &e, &w) < 0 || *e != '\0')) ||
	    (u->path != NULL && *u->path != '\0')) {
		return ipc__err(-EINVAL, u->text,
		                "expected fd://R,W or fd://N with descriptor "
		                "numbers");
	}
	if (strchr(a, ',') == NULL) {
		w = r;
	}
	if (fcntl(r, F_GETFD) < 0 || fcntl(w, F_GETFD) < 0) {
		return ipc__errno(-EBADF, u->text, "descriptor %d is not open",
		                  fcntl(r, F_GETFD) < 0 ? r : w);
	}
	ipc__stream_opts(u, &framing, &max_msg);
	int rv = nonblocking_view(r, r == w ? O_RDWR : O_RDONLY, &rs, u->text);
	if (rv < 0) {
		return rv;
	}
	int wv = rv;
	if (w != r) {
		wv = nonblocking_view(w, O_WRONLY, &ws, u->text);
		if (wv < 0) {
			if (rv != r) {
				close(rv);
			}
			return wv;
		}
	}
	if (rs != ws && w != r) {
		if (rv != r) {
			close(rv);
		}
		if (wv != w) {
			close(wv);
		}
		return ipc__err(-EINVAL, u->text,
		                "mixing a socket and a non-socket descriptor "
		                "is not supported");
	}
	c->orig[0] = rv != r ? r : -1;
	c->orig[1] = (w != r && wv != w) ? w : -1;
	ipc__stream_init(&c->s, rv, wv, rs, framing, max_msg, ch->uri);
	/* Our own read-only view, or a socket (always MSG_DONTWAIT): safe
	 * to switch to blocking for receives that wait forever.  Adopted
	 * descriptors used as they are stay untouched. */
	c->s.block_ok = rs || (rv != r);
	ch->max_msg = max_msg;
	return 0;
}

static int
fd_close(ipc_channel *ch)
{
	struct fd_chan *c = ipc__priv(ch);
	int r = ipc__stream_close(ch);

	for (int i = 0; i < 2; i++) {
		if (c->orig[i] >= 0) {
			close(c->orig[i]);
		}
	}
	return r;
}

const struct ipc_driver ipc_driver_fd = {
        .scheme = "fd",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_CUSTOM,
        .opts = fd_opts,
        .priv_size = sizeof(struct fd_chan),
        .open = fd_open,
        .close = fd_close,
        IPC_STREAM_SLOTS,
};
