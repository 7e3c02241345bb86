/*
 * The message layer of the socket drivers (see sock.h): one message per
 * send and receive over stream, seqpacket and datagram sockets, with
 * descriptors and credentials alongside, and messages above the socket's
 * limit carried in a sealed memfd (the "carrier").  Everything a peer
 * sends is read as hostile: control messages, lengths, carrier headers.
 *
 * SPDX-License-Identifier: MIT
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sock.h"

static const unsigned char carrier_magic[8] = {'l', 'i', 'b', 'i',
                                               'p', 'c', 'M', '1'};

#define MAXFDS 4

union ctlbuf {
	struct cmsghdr h;
	char b[CMSG_SPACE(sizeof(int) * MAXFDS) +
	       CMSG_SPACE(sizeof(struct ucred))];
};

/* What came along with a datagram. */
struct rxctl {
	int fds[MAXFDS];
	int nfds;
	int creds;  /* an SCM_CREDENTIALS message: a real record */
	int ctrunc; /* descriptors were dropped */
	int trunc;  /* the datagram was longer than the buffer */
};

static void
rx_closefds(struct rxctl *c)
{
	for (int i = 0; i < c->nfds; i++) {
		close(c->fds[i]);
	}
	c->nfds = 0;
}

static void
rx_parse(struct msghdr *mh, struct rxctl *c)
{
	struct cmsghdr *cm;

	c->nfds = 0;
	c->creds = 0;
	c->ctrunc = (mh->msg_flags & MSG_CTRUNC) != 0;
	c->trunc = (mh->msg_flags & MSG_TRUNC) != 0;
	if (mh->msg_control == NULL) {
		return;
	}
	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET) {
			continue;
		}
		if (cm->cmsg_type == SCM_RIGHTS) {
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			const unsigned char *p = CMSG_DATA(cm);
			for (size_t i = 0; i < n; i++) {
				int fd;
				memcpy(&fd, p + i * sizeof(int), sizeof(fd));
				if (c->nfds < MAXFDS) {
					c->fds[c->nfds++] = fd;
				} else {
					close(fd);
				}
			}
		} else if (cm->cmsg_type == SCM_CREDENTIALS) {
			c->creds = 1;
		}
	}
}

/* Take the first descriptor of c whose file type is `type` out of c. */
static int
rx_take(struct rxctl *c, mode_t type)
{
	for (int i = 0; i < c->nfds; i++) {
		struct stat st;
		if (fstat(c->fds[i], &st) == 0 &&
		    (st.st_mode & S_IFMT) == type) {
			int fd = c->fds[i];
			c->fds[i] = c->fds[--c->nfds];
			return fd;
		}
	}
	return -1;
}

int
ipc__sock_gone(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ECONNREFUSED ||
	       err == -ENOTCONN || err == -ESHUTDOWN;
}

/* A failed socket call: -EAGAIN and the peer's end go back unrecorded. */
static ssize_t
sock_fail(const struct ipc_msgsock *m, int err, const char *what)
{
	if (err == -EWOULDBLOCK) {
		err = -EAGAIN;
	}
	if (err == -EAGAIN || ipc__sock_gone(err)) {
		return err;
	}
	return ipc__errno(err, m->uri, "%s", what);
}

static ssize_t
rx(const struct ipc_msgsock *m, void *buf, size_t len, int flags,
   struct ipc_msgin *in, struct rxctl *c)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	union ctlbuf ctl;
	struct msghdr mh;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (in != NULL && in->want_from) {
		mh.msg_name = &in->from.ss;
		mh.msg_namelen = sizeof(in->from.ss);
	}
	if (m->is_unix) {
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
	}
	do {
		n = recvmsg(m->fd, &mh,
		            flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		memset(c, 0, sizeof(*c));
		return sock_fail(m, -errno, "recvmsg");
	}
	if (in != NULL && in->want_from) {
		in->from.len = mh.msg_namelen;
	}
	rx_parse(&mh, c);
	return n;
}

static int
carrier_len(const unsigned char *hdr, size_t n, unsigned long long *len)
{
	unsigned long long v = 0;
	if (n != IPC_MSG_CARRIER_HDR ||
	    memcmp(hdr, carrier_magic, sizeof(carrier_magic)) != 0) {
		return 0;
	}
	for (int i = 8; i < 16; i++) {
		v = (v << 8) | hdr[i];
	}
	*len = v;
	return 1;
}

/* Read a carrier's memfd into buf.  fd is hostile: any type, any size. */
static ssize_t
carrier_read(const struct ipc_msgsock *m, int fd, unsigned long long len,
             void *buf, size_t cap)
{
	struct stat st;
	size_t got = 0;

	if (len > m->max_msg) {
		return ipc__err(-EPROTO, m->uri,
		                "peer sent a message of %llu bytes, above "
		                "maxmsg %zu",
		                len, m->max_msg);
	}
	if (len > cap) {
		return -EMSGSIZE; /* the caller checked; defensive */
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (unsigned long long)st.st_size < len) {
		return ipc__err(
		        -EPROTO, m->uri,
		        "peer passed a message file that does not hold "
		        "the %llu bytes announced",
		        len);
	}
	while (got < len) {
		ssize_t r = pread(fd, (unsigned char *)buf + got, len - got,
		                  (off_t)got);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			return ipc__err(-EPROTO, m->uri,
			                "reading the peer's message file "
			                "failed after %zu of %llu bytes",
			                got, len);
		}
		got += (size_t)r;
	}
	return (ssize_t)len;
}

/* A datagram of n bytes is at p (buf itself, or a header buffer when a
 * carrier was expected); c holds what came with it.  Turn it into the
 * message in buf[cap]. */
static ssize_t
rx_finish(const struct ipc_msgsock *m, void *buf, size_t cap,
          const unsigned char *p, size_t n, struct ipc_msgin *in,
          struct rxctl *c)
{
	unsigned long long len;
	ssize_t r;
	int memfd;

	if (in != NULL && in->want_lifeline && in->lifeline < 0) {
		in->lifeline = rx_take(c, S_IFSOCK);
	}
	if (c->trunc) {
		rx_closefds(c);
		return ipc__err(-EPROTO, m->uri,
		                "peer sent a datagram above maxmsg %zu",
		                m->max_msg);
	}
	if (n == 0 && m->passcred && !c->creds) {
		rx_closefds(c);
		if (in != NULL) {
			in->eof = 1;
		}
		return 0;
	}
	if (!carrier_len(p, n, &len)) {
		rx_closefds(c);
		if (p != buf) {
			/* peeked as a carrier, read as something else:
			 * only another reader could do that */
			return ipc__err(
			        -EPROTO, m->uri,
			        "datagram changed between peek and read");
		}
		return (ssize_t)n;
	}
	memfd = rx_take(c, S_IFREG);
	rx_closefds(c);
	if (memfd < 0) {
		if (c->ctrunc) {
			return ipc__err(
			        -EMFILE, m->uri,
			        "the descriptor of a large message was "
			        "dropped (descriptor limit reached?)");
		}
		if (p != buf) {
			return ipc__err(
			        -EPROTO, m->uri,
			        "datagram changed between peek and read");
		}
		return (ssize_t)n; /* the 16 bytes are a plain message */
	}
	r = carrier_read(m, memfd, len, buf, cap);
	close(memfd);
	return r;
}

ssize_t
ipc__msg_recv(const struct ipc_msgsock *m, void *buf, size_t cap,
              struct ipc_msgin *in)
{
	unsigned char hdr[IPC_MSG_CARRIER_HDR];
	unsigned long long len = 0;
	struct rxctl c;
	ssize_t n;
	int carrier;

	if (in != NULL) {
		in->lifeline = -1;
		in->eof = 0;
	}
	if (cap >= m->max_msg && cap >= sizeof(hdr)) {
		/* No valid message can be truncated: one call, reading no
		 * more than maxmsg (or a carrier), so that a larger datagram
		 * is truncated by the kernel and refused, whatever cap. */
		size_t want =
		        m->max_msg > sizeof(hdr) ? m->max_msg : sizeof(hdr);
		n = rx(m, buf, want, 0, in, &c);
		if (n < 0) {
			return n;
		}
		if ((size_t)n > m->max_msg &&
		    !carrier_len(buf, (size_t)n, &len)) {
			rx_closefds(&c);
			return ipc__err(
			        -EPROTO, m->uri,
			        "peer sent a datagram above maxmsg %zu",
			        m->max_msg);
		}
		return rx_finish(m, buf, cap, buf, (size_t)n, in, &c);
	}
	/* Learn the length first; the message stays queued if it does not
	 * fit.  Descriptors are installed by a peek too: close them. */
	n = rx(m, hdr, sizeof(hdr), MSG_PEEK | MSG_TRUNC, NULL, &c);
	if (n < 0) {
		return n;
	}
	carrier = (size_t)n == sizeof(hdr) &&
	          carrier_len(hdr, sizeof(hdr), &len);
	if (carrier) {
		int fd = rx_take(&c, S_IFREG);
		carrier = fd >= 0 || c.ctrunc;
		if (fd >= 0) {
			close(fd);
		}
	}
	if (n == 0 && m->passcred && !c.creds) {
		rx_closefds(&c);
		if (in != NULL) {
			in->eof = 1;
		}
		return 0;
	}
	rx_closefds(&c);
	if (carrier) {
		if (len <= cap || len > m->max_msg) {
			/* take it: deliver, or consume and report */
			n = rx(m, hdr, sizeof(hdr), 0, in, &c);
			if (n < 0) {
				return n;
			}
			return rx_finish(m, buf, cap, hdr, (size_t)n, in, &c);
		}
		return ipc__err_msgsize(m->uri, (size_t)len, cap);
	}
	if ((size_t)n > cap) {
		if ((size_t)n > m->max_msg) {
			n = rx(m, hdr, sizeof(hdr), 0, in, &c);
			if (n >= 0) {
				rx_closefds(&c);
			}
			return ipc__err(
			        -EPROTO, m->uri,
			        "peer sent a datagram above maxmsg %zu",
			        m->max_msg);
		}
		return ipc__err_msgsize(m->uri, (size_t)n, cap);
	}
	n = rx(m, buf, cap, 0, in, &c);
	if (n < 0) {
		return n;
	}
	return rx_finish(m, buf, cap, buf, (size_t)n, in, &c);
}

int
ipc__msg_peek_from(const struct ipc_msgsock *m, struct ipc_msgin *in)
{
	unsigned char b;
	struct rxctl c;
	ssize_t n;

	in->lifeline = -1;
	in->eof = 0;
	n = rx(m, &b, 1, MSG_PEEK, in, &c);
	if (n < 0) {
		return (int)n;
	}
	if (in->want_lifeline) {
		in->lifeline = rx_take(&c, S_IFSOCK);
	}
	rx_closefds(&c);
	return 0;
}

static ssize_t
tx(const struct ipc_msgsock *m, const void *buf, size_t len, const int *fds,
   int nfds)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union ctlbuf ctl;
	struct msghdr mh;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *cm;
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do {
		n = sendmsg(m->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		return sock_fail(m, -errno, "sendmsg");
	}
	return n;
}

static int
carrier_make(const struct ipc_msgsock *m, const void *buf, size_t len)
{
	size_t off = 0;
	int fd = memfd_create("libipc-msg", MFD_CLOEXEC);

	if (fd < 0) {
		return ipc__errno(-errno, m->uri,
		                  "memfd_create for a %zu-byte message", len);
	}
	while (off < len) {
		ssize_t r =
		        write(fd, (const unsigned char *)buf + off, len - off);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			int e = -errno;
			close(fd);
			return ipc__errno(e, m->uri,
			                  "writing a %zu-byte message to a "
			                  "memfd",
			                  len);
		}
		off += (size_t)r;
	}
	return fd;
}

static int
writable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int r;
	do {
		r = poll(&p, 1, 0);
	} while (r < 0 && errno == EINTR);
	return r != 0;
}

ssize_t
ipc__msg_send(const struct ipc_msgsock *m, const void *buf, size_t len,
              int extra_fd)
{
	unsigned char hdr[IPC_MSG_CARRIER_HDR];
	int fds[2], nfds = 0, memfd;
	ssize_t n;

	if (len <= m->inline_max) {
		if (extra_fd >= 0) {
			fds[nfds++] = extra_fd;
		}
		n = tx(m, buf, len, fds, nfds);
		if (n >= 0 && (size_t)n != len) {
			return ipc__err(-EIO, m->uri,
			                "datagram of %zu bytes sent as %zd",
			                len, n);
		}
		return n;
	}
	if (!m->is_unix) {
		return ipc__err(-EMSGSIZE, m->uri,
		                "message of %zu bytes is above %zu", len,
		                m->inline_max);
	}
	/* Do not build a memfd that cannot be sent now. */
	if (!writable(m->fd)) {
		return -EAGAIN;
	}
	memfd = carrier_make(m, buf, len);
	if (memfd < 0) {
		return memfd;
	}
	memcpy(hdr, carrier_magic, sizeof(carrier_magic));
	for (int i = 0; i < 8; i++) {
		hdr[8 + i] = (unsigned char)((unsigned long long)len >>
		                             (56 - 8 * i));
	}
	fds[nfds++] = memfd;
	if (extra_fd >= 0) {
		fds[nfds++] = extra_fd;
	}
	n = tx(m, hdr, sizeof(hdr), fds, nfds);
	close(memfd);
	if (n < 0) {
		return n;
	}
	return (ssize_t)len;
}

int
ipc__msg_init(struct ipc_msgsock *m, int fd, int is_unix, int passcred,
              size_t max_msg, const char *uri)
{
	memset(m, 0, sizeof(*m));
	m->fd = fd;
	m->is_unix = is_unix;
	m->passcred = passcred;
	m->max_msg = max_msg;
	m->uri = uri;
	m->inline_max = max_msg;
	if (is_unix) {
		int sb = 0;
		socklen_t sl = sizeof(sb);
		if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, &sl) < 0) {
			return ipc__errno(-errno, uri, "getsockopt SO_SNDBUF");
		}
		/* The kernel refuses datagrams above SO_SNDBUF - 32; half
		 * of it leaves room for another message in flight. */
		if (sb < 2 * IPC_MSG_CARRIER_HDR) {
			sb = 2 * IPC_MSG_CARRIER_HDR;
		}
		if ((size_t)sb / 2 < m->inline_max) {
			m->inline_max = (size_t)sb / 2;
		}
		if (passcred) {
			int r = ipc__sock_setint(fd, SOL_SOCKET, SO_PASSCRED,
			                         1, uri);
			if (r < 0) {
				return r;
			}
		}
	}
	return 0;
}
