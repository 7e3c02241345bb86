/*
 * Message framing over byte streams.  See stream.h for the wire formats.
 *
 * Receiving reads ahead into one buffer, so a stream of small messages
 * costs one read(2) for many of them; a message larger than the buffer
 * grows it.  Every length from the peer is checked against max_msg before
 * anything is allocated.
 *
 * Sending writes header and payload with one writev/sendmsg.  When the
 * kernel takes only part of a message, the rest is pushed from the
 * caller's buffer by later calls (-EINPROGRESS) or, if the call must
 * return first, from a private copy (detach) before the next message.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "wait.h"

#define RBUF_DEFAULT ((size_t)128 << 10)
#define RBUF_KEEP    ((size_t)4 << 20) /* shrink back above this when idle */
/* One receive call reads at most this much before it returns -EAGAIN to
 * the core, which checks the deadline and polls again: a peer that keeps
 * a long message (or a line without its newline) coming can never hold a
 * receiver past its timeout. */
#define RX_BUDGET ((size_t)4 << 20)

static const unsigned char newline = '\n';

void
ipc__stream_init(struct ipc_stream *s, int rfd, int wfd, int is_socket,
                 enum ipc_framing framing, size_t max_msg, const char *uri)
{
	memset(s, 0, sizeof(*s));
	s->rfd = rfd;
	s->wfd = wfd;
	s->is_socket = is_socket;
	s->framing = framing;
	s->max_msg = max_msg;
	s->uri = uri;
	pthread_mutex_init(&s->txlock, NULL);
}

void
ipc__stream_fini(struct ipc_stream *s)
{
	free(s->rbuf);
	free(s->tail);
	s->rbuf = NULL;
	s->tail = NULL;
	pthread_mutex_destroy(&s->txlock);
}

void
ipc__stream_opts(const struct ipc_uri *u, enum ipc_framing *framing,
                 size_t *max_msg)
{
	*framing = (enum ipc_framing)ipc__opt_num(u, "framing",
	                                          IPC_FRAMING_LENGTH);
	*max_msg =
	        (size_t)ipc__opt_num(u, "maxmsg", IPC_STREAM_DEFAULT_MAXMSG);
}

/* ---------------------------------------------------------------- send -- */

static ssize_t
do_writev(struct ipc_stream *s, struct iovec *v, int n)
{
	if (s->io != NULL) {
		return s->io->writev(s->io_ctx, v, n);
	}
	if (!s->is_socket) {
		return ipc__writev_nosigpipe(s->wfd, v, n);
	}
	struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)n};
	ssize_t r;
	do {
		r = sendmsg(s->wfd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static size_t
iov_total(const struct iovec *v, int n)
{
	size_t t = 0;
	for (int i = 0; i < n; i++) {
		t += v[i].iov_len;
	}
	return t;
}

/* Drop the first k written bytes from the iovecs of the message. */
static void
iov_advance(struct ipc_stream *s, size_t k)
{
	int i = 0;

	while (i < s->txn && k >= s->txv[i].iov_len) {
		k -= s->txv[i].iov_len;
		i++;
	}
	if (i < s->txn) {
		s->txv[i].iov_base = (unsigned char *)s->txv[i].iov_base + k;
		s->txv[i].iov_len -= k;
	}
	memmove(s->txv, s->txv + i, (size_t)(s->txn - i) * sizeof(s->txv[0]));
	s->txn -= i;
}

static int
send_failed(struct ipc_stream *s, ssize_t r)
{
	s->txn = 0;
	s->tx_src = NULL;
	atomic_store(&s->tx_detached, 0);
	if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN ||
	    r == -ESHUTDOWN) {
		s->werr = -EPIPE;
		return ipc__err_peer(s->uri, "send", IPC_PEER_EITHER);
	}
	s->werr = (int)r;
	return ipc__errno((int)r, s->uri, "write");
}

/* Push the message in progress.  Call with txlock held.  0 when it is all
 * out, -EAGAIN when the kernel takes no more now, or an error. */
static int
push(struct ipc_stream *s)
{
	while (s->txn > 0) {
		ssize_t r = do_writev(s, s->txv, s->txn);
		if (r == -EAGAIN || r == -EWOULDBLOCK) {
			return -EAGAIN;
		}
		if (r < 0) {
			return send_failed(s, r);
		}
		iov_advance(s, (size_t)r);
	}
	s->tx_src = NULL;
	atomic_store(&s->tx_detached, 0);
	return 0;
}

/* Finish a detached tail on behalf of the receive side, if any. */
void
ipc__stream_kick(struct ipc_stream *s)
{
	if (s->io != NULL && s->io->wpending(s->io_ctx)) {
		pthread_mutex_lock(&s->txlock);
		(void)s->io->flush(s->io_ctx);
		pthread_mutex_unlock(&s->txlock);
	}
	if (atomic_load_explicit(&s->tx_detached, memory_order_relaxed)) {
		pthread_mutex_lock(&s->txlock);
		if (atomic_load(&s->tx_detached) && s->txn > 0) {
			(void)push(s);
		}
		pthread_mutex_unlock(&s->txlock);
	}
}

/*
 * A non-blocking send should not leave part of a message in the kernel
 * that only a later call can finish.  Frames up to PIPE_BUF are written
 * whole or not at all by pipes; for larger ones, look at the free space
 * first.  Pipes and FIFOs count capacity in page slots, not bytes (a
 * 4100-byte write can take two slots), so the only exact answer is "an
 * empty pipe takes any frame smaller than its size": larger frames wait
 * for the reader to drain.  Sockets: send buffer minus queued bytes (both
 * in the kernel's accounting, which includes per-packet overhead, hence
 * the margin).  A frame larger than the whole buffer can never fit and is
 * written as far as it goes; the rest follows on later calls.
 */
#define PIPE_BUF_ATOMIC 4096

static int
room_for(struct ipc_stream *s, size_t total)
{
	int queued = 0;
	size_t cap;

	if (s->io != NULL) {
		return 1; /* the layer buffers what the kernel does not take */
	}
	if (s->is_socket) {
		int sndbuf = 0;
		socklen_t sl = sizeof(sndbuf);
		if (getsockopt(s->wfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) <
		            0 ||
		    ioctl(s->wfd, SIOCOUTQ, &queued) < 0) {
			return 1;
		}
		cap = (size_t)sndbuf;
		size_t need = total + total / 8 + 2048;
		return need > cap || (size_t)queued + need <= cap;
	}
	int psz = fcntl(s->wfd, F_GETPIPE_SZ);
	if (psz <= 0 || ioctl(s->wfd, FIONREAD, &queued) < 0) {
		return 1; /* not a pipe: write as far as it goes */
	}
	cap = (size_t)psz;
	return total + PIPE_BUF_ATOMIC > cap || queued == 0;
}

static ssize_t
send_locked(struct ipc_stream *s, const void *buf, size_t len)
{
	struct iovec v[2];
	int n = 0;
	int r;

	if (s->werr == -EPIPE) {
		return ipc__err_peer(s->uri, "send", IPC_PEER_EITHER);
	}
	if (s->werr != 0) {
		return ipc__err(s->werr, s->uri,
		                "send: channel failed earlier");
	}
	if (s->txn > 0) {
		if (!atomic_load(&s->tx_detached) && buf == s->tx_src &&
		    len == s->tx_len) {
			r = push(s);
			return r == 0         ? (ssize_t)len
			       : r == -EAGAIN ? -EINPROGRESS
			                      : r;
		}
		r = push(s); /* an earlier message's detached tail */
		if (r < 0) {
			return r;
		}
	}
	switch (s->framing) {
	case IPC_FRAMING_LENGTH:
		s->hdr[0] = (unsigned char)(len >> 24);
		s->hdr[1] = (unsigned char)(len >> 16);
		s->hdr[2] = (unsigned char)(len >> 8);
		s->hdr[3] = (unsigned char)len;
		v[n++] = (struct iovec){s->hdr, IPC_STREAM_HDR};
		if (len > 0) {
			v[n++] = (struct iovec){(void *)buf, len};
		}
		break;
	case IPC_FRAMING_LINE:
		if (len > 0 && memchr(buf, '\n', len) != NULL) {
			return ipc__err(-EINVAL, s->uri,
			                "framing=line: the message contains a "
			                "newline");
		}
		if (len > 0) {
			v[n++] = (struct iovec){(void *)buf, len};
		}
		v[n++] = (struct iovec){(void *)&newline, 1};
		break;
	case IPC_FRAMING_RAW:
		if (len == 0) {
			return 0;
		}
		v[n++] = (struct iovec){(void *)buf, len};
		break;
	}
	size_t total = iov_total(v, n);
	if (s->nowait && total > PIPE_BUF_ATOMIC && !room_for(s, total)) {
		return -EAGAIN;
	}
	ssize_t w = do_writev(s, v, n);
	if (w == -EAGAIN || w == -EWOULDBLOCK) {
		return -EAGAIN;
	}
	if (w < 0) {
		return send_failed(s, w);
	}
	if ((size_t)w == total) {
		return (ssize_t)len;
	}
	memcpy(s->txv, v, sizeof(v));
	s->txn = n;
	iov_advance(s, (size_t)w);
	s->tx_src = buf;
	s->tx_len = len;
	return -EINPROGRESS;
}

ssize_t
ipc__stream_send(struct ipc_stream *s, const void *buf, size_t len)
{
	pthread_mutex_lock(&s->txlock);
	ssize_t r = send_locked(s, buf, len);
	pthread_mutex_unlock(&s->txlock);
	return r;
}

int
ipc__stream_detach(struct ipc_stream *s)
{
	int r = 0;

	pthread_mutex_lock(&s->txlock);
	if (s->txn > 0 && !atomic_load(&s->tx_detached)) {
		size_t total = iov_total(s->txv, s->txn);
		if (s->tail_cap < total) {
			unsigned char *t = realloc(s->tail, total);
			if (t == NULL) {
				r = -ENOMEM;
				goto out;
			}
			s->tail = t;
			s->tail_cap = total;
		}
		size_t off = 0;
		for (int i = 0; i < s->txn; i++) {
			memcpy(s->tail + off, s->txv[i].iov_base,
			       s->txv[i].iov_len);
			off += s->txv[i].iov_len;
		}
		s->txv[0] = (struct iovec){s->tail, total};
		s->txn = 1;
		s->tx_src = NULL;
		atomic_store(&s->tx_detached, 1);
	}
out:
	pthread_mutex_unlock(&s->txlock);
	return r;
}

int
ipc__stream_flush(struct ipc_stream *s, int timeout_ms)
{
	struct timespec dl;

	if (timeout_ms > 0) {
		ipc__deadline(&dl, timeout_ms);
	}
	for (;;) {
		pthread_mutex_lock(&s->txlock);
		int r = s->txn > 0 ? push(s) : 0;
		if (r == 0 && s->io != NULL && s->io->wpending(s->io_ctx)) {
			r = s->io->flush(s->io_ctx);
		}
		pthread_mutex_unlock(&s->txlock);
		if (r != -EAGAIN) {
			return r;
		}
		if (timeout_ms == 0) {
			return -ETIMEDOUT;
		}
		r = ipc__wait_fd(s->wfd, POLLOUT, timeout_ms > 0 ? &dl : NULL);
		if (r < 0) {
			return r;
		}
	}
}

/* ------------------------------------------------------------- receive -- */

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Sockets may be adopted blocking (fd://): ask for non-blocking per call. */
static void
set_blocking(struct ipc_stream *s)
{
	int fl = fcntl(s->rfd, F_GETFL);

	if (fl >= 0 && fcntl(s->rfd, F_SETFL, fl & ~O_NONBLOCK) == 0) {
		s->rfd_blocking = 1;
	}
}

static ssize_t
rd(struct ipc_stream *s, void *buf, size_t cap)
{
	if (s->io != NULL) {
		ssize_t r = s->io->read(s->io_ctx, buf, cap);
		if (r < 0) {
			errno = (int)-r;
			return -1;
		}
		return r;
	}
	if (s->block_ok && s->rblock &&
	    !atomic_load_explicit(&s->tx_detached, memory_order_relaxed)) {
		if (!s->rfd_blocking) {
			set_blocking(s);
		}
		if (s->rfd_blocking) {
			return s->is_socket ? recv(s->rfd, buf, cap, 0)
			                    : read(s->rfd, buf, cap);
		}
	}
	if (s->is_socket) {
		return recv(s->rfd, buf, cap, MSG_DONTWAIT);
	}
	if (s->rfd_blocking) {
		/* A descriptor left blocking by an earlier receive: read
		 * only what is there (or the end of the stream). */
		struct pollfd p = {.fd = s->rfd, .events = POLLIN};
		int r = poll(&p, 1, 0);
		if (r <= 0) {
			if (r == 0) {
				errno = EAGAIN;
			}
			return -1;
		}
	}
	return read(s->rfd, buf, cap);
}

/* Make room so that rbuf holds at least `need` bytes from rpos and has
 * free space after rend. */
static int
rx_room(struct ipc_stream *s, size_t need)
{
	size_t have = s->rend - s->rpos;

	if (s->rpos > 0 && (s->rcap - s->rpos < need || s->rend == s->rcap)) {
		memmove(s->rbuf, s->rbuf + s->rpos, have);
		s->rpos = 0;
		s->rend = have;
	}
	if (need < RBUF_DEFAULT) {
		need = RBUF_DEFAULT;
	}
	if (s->rcap < need || s->rend == s->rcap) {
		/* Geometric growth (a buffer that grew by what one message
		 * needs would be read one byte at a time once full), never
		 * past what the longest message allowed needs. */
		size_t lim = s->max_msg + IPC_STREAM_HDR + 1;
		size_t cap = s->rcap * 2;
		if (cap > lim) {
			cap = lim;
		}
		if (cap < need) {
			cap = need;
		}
		unsigned char *b = realloc(s->rbuf, cap);
		if (b == NULL) {
			return ipc__err(
			        -ENOMEM, s->uri,
			        "no memory for a %zu-byte receive buffer",
			        cap);
		}
		s->rbuf = b;
		s->rcap = cap;
	}
	return 0;
}

/* Read what the descriptor has.  >0 bytes, 0 at end of stream, -EAGAIN,
 * or another error. */
static ssize_t
fill(struct ipc_stream *s)
{
	ssize_t n;

	do {
		n = rd(s, s->rbuf + s->rend, s->rcap - s->rend);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		s->rend += (size_t)n;
		return n;
	}
	if (n == 0 || errno == ECONNRESET || errno == EPIPE) {
		s->reof = 1;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		return -EAGAIN;
	}
	return ipc__errno(-errno, s->uri, "read");
}

static void
consumed(struct ipc_stream *s, size_t k)
{
	s->rpos += k;
	s->lscan = 0;
	if (s->rpos == s->rend) {
		s->rpos = s->rend = 0;
		if (s->rcap > RBUF_KEEP) {
			free(s->rbuf);
			s->rbuf = NULL;
			s->rcap = 0;
		}
	}
}

static ssize_t
closed(struct ipc_stream *s)
{
	if (s->rend > s->rpos) {
		/* The peer went away in the middle of a message: it is
		 * dropped whole, never delivered in part. */
		s->rpos = s->rend = 0;
		return ipc__err(
		        -EPIPE, s->uri,
		        "recv: the peer closed the channel or exited in "
		        "the middle of a message");
	}
	return ipc__err_peer(s->uri, "recv", IPC_PEER_EITHER);
}

static ssize_t
too_small(struct ipc_stream *s, size_t len, size_t cap)
{
	return ipc__err_msgsize(s->uri, len, cap);
}

static ssize_t
recv_length(struct ipc_stream *s, void *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		size_t avail = s->rend - s->rpos;
		size_t need = IPC_STREAM_HDR;
		if (avail >= IPC_STREAM_HDR) {
			size_t len = be32(s->rbuf + s->rpos);
			if (len > s->max_msg) {
				s->rerr = -EPROTO;
				return ipc__err(-EPROTO, s->uri,
				                "peer announced a %zu-byte "
				                "message; maxmsg is %zu",
				                len, s->max_msg);
			}
			if (len > cap) {
				return too_small(s, len, cap);
			}
			need = IPC_STREAM_HDR + len;
			if (avail >= need) {
				if (len > 0) {
					memcpy(buf,
					       s->rbuf + s->rpos +
					               IPC_STREAM_HDR,
					       len);
				}
				consumed(s, need);
				return (ssize_t)len;
			}
		}
		if (s->reof) {
			return closed(s);
		}
		if (got >= RX_BUDGET && !s->rblock) {
			return -EAGAIN; /* let the core check the deadline */
		}
		int r = rx_room(s, need);
		if (r < 0) {
			return r;
		}
		ssize_t n = fill(s);
		if (n < 0) {
			return n;
		}
		got += (size_t)n;
	}
}

static ssize_t
recv_line(struct ipc_stream *s, void *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		size_t avail = s->rend - s->rpos;
		const unsigned char *base = avail ? s->rbuf + s->rpos : NULL;
		const unsigned char *nl = NULL;
		if (avail > s->lscan) {
			nl = memchr(base + s->lscan, '\n', avail - s->lscan);
		}
		if (nl != NULL || (s->reof && avail > 0)) {
			size_t len = nl ? (size_t)(nl - base) : avail;
			if (len > s->max_msg) {
				goto too_long;
			}
			if (len > cap) {
				return too_small(s, len, cap);
			}
			if (len > 0) {
				memcpy(buf, base, len);
			}
			consumed(s, nl ? len + 1 : len);
			return (ssize_t)len;
		}
		s->lscan = avail;
		if (avail > s->max_msg) {
			goto too_long;
		}
		if (s->reof) {
			return closed(s);
		}
		if (got >= RX_BUDGET && !s->rblock) {
			return -EAGAIN; /* let the core check the deadline */
		}
		int r = rx_room(s, avail + 1);
		if (r < 0) {
			return r;
		}
		ssize_t n = fill(s);
		if (n < 0) {
			return n;
		}
		got += (size_t)n;
	}
too_long:
	s->rerr = -EPROTO;
	return ipc__err(-EPROTO, s->uri,
	                "framing=line: a line longer than maxmsg (%zu)",
	                s->max_msg);
}

static ssize_t
recv_raw(struct ipc_stream *s, void *buf, size_t cap)
{
	ssize_t n;

	if (s->reof) {
		return closed(s);
	}
	if (cap == 0) {
		return ipc__err(
		        -EMSGSIZE, s->uri,
		        "framing=raw: a zero-byte buffer holds no data");
	}
	do {
		n = rd(s, buf, cap);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		return n;
	}
	if (n == 0 || errno == ECONNRESET || errno == EPIPE) {
		s->reof = 1;
		return closed(s);
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		return -EAGAIN;
	}
	return ipc__errno(-errno, s->uri, "read");
}

ssize_t
ipc__stream_recv(struct ipc_stream *s, void *buf, size_t cap)
{
	ipc__stream_kick(s);
	if (s->rerr != 0) {
		return ipc__err(s->rerr, s->uri,
		                "channel failed earlier: the peer broke the "
		                "framing");
	}
	switch (s->framing) {
	case IPC_FRAMING_LENGTH:
		return recv_length(s, buf, cap);
	case IPC_FRAMING_LINE:
		return recv_line(s, buf, cap);
	case IPC_FRAMING_RAW:
		return recv_raw(s, buf, cap);
	}
	return ipc__err(-EINVAL, s->uri, "bad framing");
}

/* ----------------------------------------------------------- readiness -- */

/* Would recv return without reading the descriptor? */
static int
rx_buffered(const struct ipc_stream *s)
{
	size_t avail = s->rend - s->rpos;

	if (s->rerr != 0 || s->reof) {
		return 1;
	}
	if (s->io != NULL && s->io->pending(s->io_ctx)) {
		return 1; /* a recv reads it without the descriptor */
	}
	switch (s->framing) {
	case IPC_FRAMING_LENGTH:
		if (avail < IPC_STREAM_HDR) {
			return 0;
		}
		size_t len = be32(s->rbuf + s->rpos);
		return len > s->max_msg || avail >= IPC_STREAM_HDR + len;
	case IPC_FRAMING_LINE:
		return avail > s->lscan &&
		       memchr(s->rbuf + s->rpos + s->lscan, '\n',
		              avail - s->lscan) != NULL;
	case IPC_FRAMING_RAW:
		return 0;
	}
	return 0;
}

int
ipc__stream_pollfds(struct ipc_stream *s, short events, struct pollfd *pfd,
                    int *retry_ms)
{
	int n = 0;
	int out =
	        (events & IPC_POLLOUT) ||
	        atomic_load_explicit(&s->tx_detached, memory_order_relaxed) ||
	        (s->io != NULL && s->io->wpending(s->io_ctx));

	(void)retry_ms;
	if (events & IPC_POLLIN) {
		pfd[n++] = (struct pollfd){.fd = s->rfd, .events = POLLIN};
	}
	if (out) {
		if (n == 1 && s->wfd == s->rfd) {
			pfd[0].events |= POLLOUT;
		} else {
			pfd[n++] = (struct pollfd){.fd = s->wfd,
			                           .events = POLLOUT};
		}
	}
	return n;
}

short
ipc__stream_ready(struct ipc_stream *s, short events, const struct pollfd *pfd,
                  int npfd)
{
	short r = 0;

	if (pfd == NULL) {
		if ((events & IPC_POLLIN) && rx_buffered(s)) {
			r |= IPC_POLLIN;
		}
		return r;
	}
	ipc__stream_kick(s);
	pthread_mutex_lock(&s->txlock);
	int tx_busy = s->txn > 0;
	int werr = s->werr;
	pthread_mutex_unlock(&s->txlock);
	for (int i = 0; i < npfd; i++) {
		short re = pfd[i].revents;
		if (pfd[i].fd == s->rfd) {
			if (re & (POLLIN | POLLHUP | POLLERR)) {
				r |= IPC_POLLIN;
			}
			if (re & POLLHUP) {
				r |= IPC_POLLHUP;
			}
		}
		if (pfd[i].fd == s->wfd) {
			if ((re & POLLOUT) && !tx_busy) {
				r |= IPC_POLLOUT;
			}
			if (re & (POLLERR | POLLHUP)) {
				r |= IPC_POLLHUP;
			}
		}
	}
	if (werr != 0) {
		r |= IPC_POLLHUP;
	}
	if ((events & IPC_POLLIN) && rx_buffered(s)) {
		r |= IPC_POLLIN;
	}
	return r;
}

/* -------------------------------------------- slots for stream drivers -- */

ssize_t
ipc__sdrv_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct ipc_stream *s = ipc__priv(ch);

	s->nowait = ch->send_nowait;
	return ipc__stream_send(s, buf, len);
}

ssize_t
ipc__sdrv_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct ipc_stream *s = ipc__priv(ch);

	s->rblock = ch->recv_block;
	return ipc__stream_recv(s, buf, cap);
}

int
ipc__sdrv_detach(ipc_channel *ch)
{
	return ipc__stream_detach(ipc__priv(ch));
}

int
ipc__sdrv_pollfds(ipc_channel *ch, short events, struct pollfd *pfd,
                  int *retry_ms)
{
	return ipc__stream_pollfds(ipc__priv(ch), events, pfd, retry_ms);
}

short
ipc__sdrv_ready(ipc_channel *ch, short events, const struct pollfd *pfd,
                int npfd)
{
	return ipc__stream_ready(ipc__priv(ch), events, pfd, npfd);
}

int
ipc__sdrv_fd(const ipc_channel *ch)
{
	const struct ipc_stream *s = ipc__cpriv(ch);
	return s->rfd;
}

int
ipc__stream_close(ipc_channel *ch)
{
	struct ipc_stream *s = ipc__priv(ch);
	int r = 0;

	if (atomic_load(&s->tx_detached)) {
		r = ipc__stream_flush(s, ch->timeout_ms);
		if (r < 0 && r != -EPIPE) {
			r = ipc__err(-EIO, ch->uri,
			             "closed with part of a message unsent");
		} else {
			r = 0;
		}
	}
	if (s->rfd >= 0) {
		close(s->rfd);
	}
	if (s->wfd >= 0 && s->wfd != s->rfd) {
		close(s->wfd);
	}
	s->rfd = s->wfd = -1;
	ipc__stream_fini(s);
	return r;
}
