/*
 * fifo:///PATH: named pipes, one per direction, framed by the core's
 * stream code.
 *
 * The creator (IPC_CREATE) makes PATH.in (it reads, the peer writes) and
 * PATH.out (it writes, the peer reads), opens PATH.in for reading at once
 * and holds an flock on it while it lives.  The peer ("opener") opens
 * PATH.in for writing first, then PATH.out for reading, then unlinks both:
 * the open descriptors keep working, no third process can join, and
 * nothing is left on disk whatever happens to the two processes later.
 *
 * The creator cannot open PATH.out for writing until the opener reads it
 * (O_WRONLY|O_NONBLOCK gives ENXIO while there is no reader), and by then
 * the opener may have unlinked it, so the creator keeps an O_PATH
 * descriptor and reopens the FIFO through /proc/self/fd.  Until that open
 * succeeds, send waits as for a full queue, retrying every few
 * milliseconds.
 *
 * A FIFO reader sees read() == 0 both before any writer came and after the
 * last one left; poll(2) tells them apart: POLLHUP is reported only once a
 * writer that opened after the reader has gone.  Until a reader has seen
 * POLLIN or POLLHUP, recv says -EAGAIN rather than handing a 0 read to the
 * stream code, which would take it for the peer's close.
 *
 * See docs/fifo.md for the protocol, its limits and its errors.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/objnames.h"
#include "core/stream.h"
#include "core/trust.h"

#define FIFO_RETRY_MS 10 /* creator: how often to try the write open */
#define FIFO_DEF_MODE 0600
#define FIFO_IN       IPC_FIFO_IN
#define FIFO_OUT      IPC_FIFO_OUT

struct fifo_priv {
	struct ipc_stream st; /* first: the stream slots rely on it */
	int creator;
	int rfd;          /* creator: PATH.in; opener: PATH.out */
	int wfd;          /* opener: PATH.in; creator: -1 (st.wfd once the
	                     peer reads PATH.out) */
	int opath;        /* creator: O_PATH descriptor of PATH.out, or -1 */
	int peer_seen;    /* recv side: a writer has been seen on rfd */
	_Atomic int gone; /* either FIFO said the peer closed or died */
	char *in_path;    /* creator: removed at close if still ours */
	char *out_path;
	dev_t in_dev, out_dev;
	ino_t in_ino, out_ino;
	struct ipc_trust trust; /* opener: who may have made the FIFOs */
	struct ipc_cred cred;   /* opener: their owner */
};

static const struct ipc_optspec fifo_opts[] = {
        IPC_STREAM_OPTS,
        {"mode", IPC_OPT_MODE, 0, 0777, NULL,
         "permissions of the FIFOs, default 0600"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

/* ------------------------------------------------------------ helpers -- */

static int
make_paths(const struct ipc_uri *u, char **in, char **out)
{
	size_t n = strlen(u->fspath);

	if (n + sizeof(FIFO_OUT) > PATH_MAX) {
		return ipc__err(-ENAMETOOLONG, u->text,
		                "path too long for its %s/%s suffixes",
		                FIFO_IN, FIFO_OUT);
	}
	if (n == 0 || u->fspath[n - 1] == '/') {
		return ipc__err(-EINVAL, u->text,
		                "the path must name a file, not a directory");
	}
	*in = malloc(n + sizeof(FIFO_IN));
	*out = malloc(n + sizeof(FIFO_OUT));
	if (*in == NULL || *out == NULL) {
		free(*in);
		free(*out);
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	memcpy(*in, u->fspath, n);
	memcpy(*in + n, FIFO_IN, sizeof(FIFO_IN));
	memcpy(*out, u->fspath, n);
	memcpy(*out + n, FIFO_OUT, sizeof(FIFO_OUT));
	return 0;
}

/* Does path still name the object open on fd? */
static int
same_file(const char *path, int fd)
{
	struct stat a, b;

	if (stat(path, &a) < 0 || fstat(fd, &b) < 0) {
		return 0;
	}
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int
is_fifo(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* Open the FIFO that the O_PATH descriptor opath names, with flags, even
 * if its path was unlinked since: through /proc/self/fd, or without
 * /proc by path while the path still names it.  -1 with errno set. */
static int
reopen_fifo(int opath, const char *path, int flags)
{
	char proc[64];
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", opath);
	fd = open(proc, flags | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, flags | O_CLOEXEC);
		if (fd >= 0 && !same_file(path, opath)) {
			close(fd);
			fd = -1;
			errno = ENOENT;
		}
	}
	return fd;
}

static int
check_fifo(int fd, const char *uri, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		return ipc__errno(-errno, uri, "fstat %s", path);
	}
	if (!S_ISFIFO(st.st_mode)) {
		return ipc__err(-EEXIST, uri, "%s exists and is not a FIFO",
		                path);
	}
	return 0;
}

static int
poll_now(struct pollfd *pfd, int n)
{
	int r;

	do {
		r = poll(pfd, (nfds_t)n, 0);
	} while (r < 0 && errno == EINTR);
	return r;
}

static short
revents_of(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events, .revents = 0};

	if (poll_now(&p, 1) < 0) {
		return 0;
	}
	return p.revents;
}

/* ------------------------------------------------------------ creator -- */

/* mkfifo with exactly `mode`, whatever the umask: the mode is set at
 * creation (umask 0), never by chmod() on the path afterwards. */
struct mkfifo_job {
	const char *path;
	mode_t mode;
};

static int
mkfifo_job(void *arg)
{
	const struct mkfifo_job *j = arg;

	return mkfifo(j->path, j->mode) < 0 ? -errno : 0;
}

static int
mkfifo_mode(const char *path, mode_t mode)
{
	struct mkfifo_job j = {path, mode};

	return ipc__umask0(mkfifo_job, &j);
}

/* path exists and we may not use or replace it: -EACCES naming its
 * owner (or the error as it is when the owner cannot be told). */
static int
not_ours(const struct ipc_uri *u, const char *path, int err, const char *what)
{
	struct stat st;

	if (lstat(path, &st) == 0 && st.st_uid != geteuid()) {
		return ipc__err(-EACCES, u->text,
		                "%s belongs to uid %u, not to us (uid %u): "
		                "cannot %s it",
		                path, (unsigned)st.st_uid, (unsigned)geteuid(),
		                what);
	}
	return ipc__errno(err, u->text, "cannot %s %s", what, path);
}

/*
 * PATH.in exists.  Open it and try its lock: held, a live creator owns the
 * pair (-EEXIST); free, its creator died, and the pair is removed so that
 * the caller can make a fresh one (-EAGAIN).
 */
static int
reclaim(const struct ipc_uri *u, const char *in, const char *out)
{
	struct stat st;
	int fd = open(in, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int err;

	if (fd < 0) {
		if (errno == ENOENT) {
			return -EAGAIN; /* gone meanwhile: try again */
		}
		if (errno == EACCES || errno == EPERM) {
			return not_ours(u, in, -errno, "open");
		}
		return ipc__errno(-errno, u->text, "cannot open %s", in);
	}
	err = check_fifo(fd, u->text, in);
	if (err < 0) {
		close(fd);
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		close(fd);
		if (err == -EWOULDBLOCK) {
			return ipc__err(
			        -EEXIST, u->text,
			        "a live process created this FIFO pair "
			        "and still uses it");
		}
		return ipc__errno(err, u->text, "flock %s", in);
	}
	/* Unlocked: stale.  Remove it only if the path still names it. */
	if (same_file(in, fd)) {
		if (unlink(in) < 0 && (errno == EACCES || errno == EPERM)) {
			/* another user's, in a sticky or foreign directory:
			 * trying again would only find it again */
			err = not_ours(u, in, -errno, "replace");
			close(fd);
			return err;
		}
		if (lstat(out, &st) == 0 && S_ISFIFO(st.st_mode)) {
			unlink(out);
		}
	}
	close(fd);
	return -EAGAIN;
}

static void
undo_create(struct fifo_priv *p)
{
	if (p->rfd >= 0 && same_file(p->in_path, p->rfd)) {
		unlink(p->in_path);
	}
	if (p->opath >= 0 && same_file(p->out_path, p->opath)) {
		unlink(p->out_path);
	}
	if (p->rfd >= 0) {
		close(p->rfd);
	}
	if (p->opath >= 0) {
		close(p->opath);
	}
	p->rfd = p->opath = -1;
}

/*
 * One attempt: 0 done, -EAGAIN try again, or a recorded error.  PATH.in
 * is opened for reading (which lets openers in) only once PATH.out exists,
 * so an opener never finds half a pair.
 */
static int
create_once(struct fifo_priv *p, const struct ipc_uri *u, mode_t mode)
{
	struct stat st;
	int err = mkfifo_mode(p->in_path, mode);

	if (err == -EEXIST) {
		return reclaim(u, p->in_path, p->out_path);
	}
	if (err < 0) {
		return ipc__errno(err, u->text, "mkfifo %s", p->in_path);
	}
	if (lstat(p->out_path, &st) == 0) {
		if (!S_ISFIFO(st.st_mode)) {
			unlink(p->in_path);
			return ipc__err(-EEXIST, u->text,
			                "%s exists and is not a FIFO",
			                p->out_path);
		}
		unlink(p->out_path); /* left over from a dead pair */
	}
	err = mkfifo_mode(p->out_path, mode);
	if (err < 0) {
		unlink(p->in_path);
		if (err == -EEXIST) {
			return -EAGAIN;
		}
		return ipc__errno(err, u->text, "mkfifo %s", p->out_path);
	}
	p->opath = open(p->out_path, O_PATH | O_CLOEXEC);
	if (p->opath < 0) {
		err = -errno;
		unlink(p->in_path);
		if (err == -ENOENT) {
			return -EAGAIN; /* removed by a racing creator */
		}
		unlink(p->out_path);
		return ipc__errno(err, u->text, "cannot open %s", p->out_path);
	}
	/* Check that both paths are still the FIFOs we made while no opener
	 * can connect (an opener's write-open fails with ENXIO until PATH.in
	 * has a reader).  Checked after the read-open, an opener that had
	 * connected and unlinked both already looked like a racing creator,
	 * and its pair was dropped under it. */
	p->rfd = open(p->in_path, O_PATH | O_CLOEXEC);
	if (p->rfd < 0) {
		err = -errno;
		undo_create(p);
		return err == -ENOENT
		               ? -EAGAIN
		               : ipc__errno(err, u->text, "cannot open %s",
		                            p->in_path);
	}
	if (!is_fifo(p->rfd) || !is_fifo(p->opath) ||
	    !same_file(p->in_path, p->rfd) ||
	    !same_file(p->out_path, p->opath)) {
		/* a racing creator removed or replaced part of it */
		undo_create(p);
		return -EAGAIN;
	}
	int ipath = p->rfd;
	p->rfd = reopen_fifo(ipath, p->in_path, O_RDONLY | O_NONBLOCK);
	close(ipath);
	if (p->rfd < 0) {
		err = -errno;
		p->rfd = -1;
		undo_create(p);
		return err == -ENOENT
		               ? -EAGAIN
		               : ipc__errno(err, u->text, "cannot open %s",
		                            p->in_path);
	}
	if (flock(p->rfd, LOCK_EX | LOCK_NB) < 0) {
		/* another creator took the lock first: the pair is its own */
		close(p->rfd);
		close(p->opath);
		p->rfd = p->opath = -1;
		return -EAGAIN;
	}
	if (fstat(p->rfd, &st) == 0) {
		p->in_dev = st.st_dev;
		p->in_ino = st.st_ino;
	}
	if (fstat(p->opath, &st) == 0) {
		p->out_dev = st.st_dev;
		p->out_ino = st.st_ino;
	}
	return 0;
}

static int
create_pair(struct fifo_priv *p, const struct ipc_uri *u)
{
	mode_t mode = (mode_t)ipc__opt_num(u, "mode", FIFO_DEF_MODE);

	for (int attempt = 0; attempt < 8; attempt++) {
		int err = create_once(p, u, mode);
		if (err != -EAGAIN) {
			return err;
		}
	}
	return ipc__err(-EBUSY, u->text,
	                "%s keeps changing under us (other processes are "
	                "creating and removing it)",
	                p->in_path);
}

/* Creator: the peer reads PATH.out once this succeeds.  0, -EAGAIN (no
 * reader yet) or a recorded error. */
static int
try_connect(ipc_channel *ch)
{
	struct fifo_priv *p = ipc__priv(ch);
	int fd;

	if (p->st.wfd >= 0) {
		return 0;
	}
	fd = reopen_fifo(p->opath, p->out_path, O_WRONLY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENXIO || errno == ENOENT) {
			return -EAGAIN; /* no reader yet */
		}
		/* Out of descriptors (EMFILE, ENFILE) or worse: not "no
		 * reader yet", which would wait for ever. */
		return ipc__errno(-errno, ch->uri,
		                  "cannot open %s for writing", p->out_path);
	}
	pthread_mutex_lock(&p->st.txlock);
	p->st.wfd = fd;
	pthread_mutex_unlock(&p->st.txlock);
	close(p->opath);
	p->opath = -1;
	return 0;
}

/* Creator, not connected yet: -EPIPE if a peer came and went. */
static int
creator_peer_gone(struct fifo_priv *p)
{
	return (revents_of(p->rfd, POLLIN) & POLLHUP) != 0;
}

/* ------------------------------------------------------------- opener -- */

/* Remove path if it still names the FIFO open on fd.  -ENOENT if another
 * process removed it first, 0 otherwise (also when we may not). */
static int
claim(const char *path, int fd)
{
	if (!same_file(path, fd)) {
		return -ENOENT;
	}
	if (unlink(path) < 0 && errno == ENOENT) {
		return -ENOENT;
	}
	return 0;
}

/* A FIFO in a directory others can write may be anybody's: its owner
 * must pass allow_uid= (our uid or root by default) before we write to it
 * or read from it. */
static int
check_owner(struct fifo_priv *p, int fd, const char *uri)
{
	int err = ipc__cred_fd_owner(fd, &p->cred, uri);

	if (err < 0) {
		return err;
	}
	return ipc__trust_check(&p->trust, uri, "the channel's creator",
	                        &p->cred);
}

static int
open_peer(struct fifo_priv *p, const struct ipc_uri *u)
{
	int wfd, rfd, err;

	wfd = open(p->in_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (wfd < 0) {
		err = -errno;
		if (err == -ENOENT) {
			return ipc__err(
			        err, u->text,
			        "no FIFO pair at this path (the creator "
			        "makes it with IPC_CREATE)");
		}
		if (err == -ENXIO) {
			return ipc__err(
			        -ECONNREFUSED, u->text,
			        "%s has no reader: its creator is gone",
			        p->in_path);
		}
		return ipc__errno(err, u->text, "cannot open %s", p->in_path);
	}
	err = check_fifo(wfd, u->text, p->in_path);
	if (err == 0) {
		err = check_owner(p, wfd, u->text);
	}
	if (err < 0) {
		close(wfd);
		return err;
	}
	rfd = open(p->out_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rfd < 0) {
		err = -errno;
		close(wfd);
		if (err == -ENOENT) {
			return ipc__err(
			        -ECONNREFUSED, u->text,
			        "%s is gone: another peer connected first",
			        p->out_path);
		}
		return ipc__errno(err, u->text, "cannot open %s", p->out_path);
	}
	err = check_fifo(rfd, u->text, p->out_path);
	if (err == 0) {
		err = check_owner(p, rfd, u->text);
	}
	if (err < 0) {
		goto fail;
	}
	/* Whoever removes PATH.in is the one peer; the rest back off. */
	if (claim(p->in_path, wfd) < 0) {
		err = ipc__err(-ECONNREFUSED, u->text,
		               "another peer connected first");
		goto fail;
	}
	(void)claim(p->out_path, rfd);
	p->rfd = rfd;
	p->wfd = wfd;
	return 0;
fail:
	close(rfd);
	close(wfd);
	return err;
}

/* ------------------------------------------------------------- driver -- */

static int
fifo_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct fifo_priv *p = ipc__priv(ch);
	enum ipc_framing framing;
	size_t max_msg;
	int err;

	p->rfd = p->wfd = p->opath = -1;
	if (u->fspath == NULL) {
		return ipc__err(
		        -EINVAL, u->text,
		        "fifo:// needs an absolute path: fifo:///PATH");
	}
	if (ipc__opt_isset(u, "mode") && !(flags & IPC_CREATE)) {
		return ipc__err(-EINVAL, u->text,
		                "mode= applies only with IPC_CREATE");
	}
	err = ipc__trust_parse(&p->trust, u,
	                       ipc__trust_path_shared(u->fspath));
	if (err < 0) {
		return err;
	}
	if ((flags & IPC_CREATE) && p->trust.given) {
		return ipc__err(-EOPNOTSUPP, u->text,
		                "allow_uid=/allow_gid=: a FIFO does not tell "
		                "who opened it; mode= decides who can");
	}
	ipc__stream_opts(u, &framing, &max_msg);
	err = make_paths(u, &p->in_path, &p->out_path);
	if (err < 0) {
		return err;
	}
	if (flags & IPC_CREATE) {
		p->creator = 1;
		err = create_pair(p, u);
	} else {
		err = open_peer(p, u);
	}
	if (err < 0) {
		free(p->in_path);
		free(p->out_path);
		p->in_path = p->out_path = NULL;
		return err;
	}
	ipc__stream_init(&p->st, p->rfd, p->wfd, 0, framing, max_msg, ch->uri);
	ch->max_msg = max_msg;
	return 0;
}

static ssize_t
fifo_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct fifo_priv *p = ipc__priv(ch);

	if (p->st.framing == IPC_FRAMING_LINE && len > 0 &&
	    memchr(buf, '\n', len) != NULL) {
		/* a bad message is refused before any question of peers */
		return ipc__err(
		        -EINVAL, ch->uri,
		        "framing=line: the message contains a newline");
	}
	if (atomic_load(&p->gone)) {
		return ipc__err_peer(ch->uri, "send", IPC_PEER_EITHER);
	}
	int c = p->creator ? try_connect(ch) : 0;
	if (c < 0 && c != -EAGAIN) {
		return c;
	}
	if (c < 0) {
		if (creator_peer_gone(p)) {
			atomic_store(&p->gone, 1);
			return ipc__err(-EPIPE, ch->uri,
			                "send: the peer closed the channel or "
			                "exited before reading");
		}
		return -EAGAIN;
	}
	ssize_t r = ipc__sdrv_send(ch, buf, len);
	if (r == -EPIPE) {
		atomic_store(&p->gone, 1);
	}
	return r;
}

/* Push the kept rest of a partly sent message, as the stream's recv would
 * have, so that a caller who only receives meanwhile does not leave its
 * peer waiting for the end of that message. */
static void
kick_tail(struct fifo_priv *p)
{
	ipc__stream_kick(&p->st);
}

/* Recv side, before any writer was seen: would a read tell anything?
 * 0 yes, -EAGAIN no, -EPIPE the peer is gone (opener only). */
static int
recv_gate(ipc_channel *ch)
{
	struct fifo_priv *p = ipc__priv(ch);
	struct pollfd pfd[2];
	int n = 1;

	if (p->peer_seen) {
		return 0;
	}
	pfd[0] = (struct pollfd){.fd = p->rfd, .events = POLLIN};
	if (!p->creator) {
		/* the creator's reader going away is its death */
		pfd[n++] = (struct pollfd){.fd = p->wfd, .events = 0};
	}
	if (poll_now(pfd, n) < 0) {
		return -EAGAIN;
	}
	if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		p->peer_seen = 1;
		return 0;
	}
	if (n > 1 && (pfd[1].revents & (POLLERR | POLLHUP))) {
		return ipc__err(-EPIPE, ch->uri,
		                "recv: the peer closed the channel or exited "
		                "before it ever wrote");
	}
	return -EAGAIN;
}

static ssize_t
fifo_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct fifo_priv *p = ipc__priv(ch);
	ssize_t r = recv_gate(ch);

	if (r == -EAGAIN) {
		kick_tail(p);
	} else if (r == 0) {
		r = ipc__stream_recv(&p->st, buf, cap);
	}
	/* A libipc peer holds both FIFOs until it closes or dies, and the
	 * kernel lets go of a dead process's two ends in no set order: once
	 * either end has said so, the peer is gone, and with nothing left
	 * to read, recv says so too. */
	if (r == -EAGAIN && atomic_load(&p->gone)) {
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_EITHER);
	}
	if (r == -EPIPE) {
		atomic_store(&p->gone, 1);
	}
	return r;
}

/* Where each part of a wait sits in the pollfd array. */
struct fifo_layout {
	int gate_r; /* rfd before a writer was seen, or -1 */
	int gate_w; /* opener: wfd for the creator's death, or -1 */
	int hup;    /* creator not connected: rfd for a peer gone */
	int s_off;  /* the stream's descriptors */
	int s_n;
	short s_events;
};

static int
layout(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms,
       struct fifo_layout *lo)
{
	struct fifo_priv *p = ipc__priv(ch);
	int n = 0;

	lo->gate_r = lo->gate_w = lo->hup = -1;
	lo->s_events = events & (IPC_POLLIN | IPC_POLLOUT);
	if ((events & IPC_POLLIN) && !p->peer_seen) {
		lo->s_events &= ~IPC_POLLIN;
		lo->gate_r = n;
		pfd[n++] = (struct pollfd){.fd = p->rfd, .events = POLLIN};
		if (!p->creator) {
			lo->gate_w = n;
			pfd[n++] = (struct pollfd){.fd = p->wfd, .events = 0};
		}
	}
	int c = (events & IPC_POLLOUT) && p->creator ? try_connect(ch) : 0;
	if (c < 0 && c != -EAGAIN) {
		/* a real error: let the send run now and report it */
		*retry_ms = 0;
	}
	if (c < 0) {
		lo->s_events &= ~IPC_POLLOUT;
		if (lo->gate_r < 0) {
			lo->hup = n;
			pfd[n++] = (struct pollfd){.fd = p->rfd, .events = 0};
		} else {
			lo->hup = lo->gate_r;
		}
		if (*retry_ms < 0 || *retry_ms > FIFO_RETRY_MS) {
			*retry_ms = FIFO_RETRY_MS;
		}
	}
	/* the stream also names its write end while a kept tail waits */
	lo->s_off = n;
	lo->s_n = ipc__stream_pollfds(&p->st, lo->s_events, pfd + n, retry_ms);
	return n + lo->s_n;
}

static int
fifo_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct fifo_layout lo;

	return layout(ch, events, pfd, retry_ms, &lo);
}

/* The layout can change between pollfds() and ready() (a writer seen, the
 * write end opened), so look again instead of trusting pfd. */
static short
fifo_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct fifo_priv *p = ipc__priv(ch);
	struct pollfd my[IPC_MAXPFD];
	struct fifo_layout lo;
	int retry = -1, n;
	short r = 0;

	(void)pfd;
	(void)npfd;
	n = layout(ch, events, my, &retry, &lo);
	if (n > 0 && poll_now(my, n) < 0) {
		return 0;
	}
	if (lo.gate_r >= 0 &&
	    (my[lo.gate_r].revents & (POLLIN | POLLHUP | POLLERR))) {
		r |= IPC_POLLIN;
		if (my[lo.gate_r].revents & POLLHUP) {
			r |= IPC_POLLHUP;
		}
	}
	if (lo.gate_w >= 0 && (my[lo.gate_w].revents & (POLLERR | POLLHUP))) {
		r |= IPC_POLLIN | IPC_POLLHUP;
	}
	if (lo.hup >= 0 && (my[lo.hup].revents & POLLHUP)) {
		r |= IPC_POLLHUP;
		if (events & IPC_POLLOUT) {
			r |= IPC_POLLOUT; /* send fails at once */
		}
	}
	if (lo.s_events != 0 || lo.s_n > 0) {
		r |= ipc__stream_ready(&p->st, lo.s_events, my + lo.s_off,
		                       lo.s_n);
	}
	if (atomic_load(&p->gone)) {
		/* recv and send would both return at once */
		r |= IPC_POLLHUP | (events & (IPC_POLLIN | IPC_POLLOUT));
	}
	return r;
}

static int
fifo_fd(const ipc_channel *ch)
{
	const struct fifo_priv *p = ipc__cpriv(ch);
	return p->rfd;
}

static void
unlink_if_ours(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (path != NULL && lstat(path, &st) == 0 && st.st_dev == dev &&
	    st.st_ino == ino) {
		unlink(path);
	}
}

static int
fifo_close(ipc_channel *ch)
{
	struct fifo_priv *p = ipc__priv(ch);
	int err = ipc__stream_close(ch); /* flushes, closes rfd and wfd */

	if (p->creator) {
		unlink_if_ours(p->in_path, p->in_dev, p->in_ino);
		unlink_if_ours(p->out_path, p->out_dev, p->out_ino);
	}
	if (p->opath >= 0) {
		close(p->opath);
	}
	free(p->in_path);
	free(p->out_path);
	return err;
}

static int
fifo_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct fifo_priv *p = ipc__cpriv(ch);

	if (p->creator) {
		return ipc__err(-EOPNOTSUPP, ch->uri,
		                "ipc_peer_cred: a FIFO does not tell its "
		                "creator who opened it");
	}
	return ipc__cred_out(&p->cred, ch->uri, pid, uid, gid);
}

const struct ipc_driver ipc_driver_fifo = {
        .scheme = "fifo",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_PATH,
        .opts = fifo_opts,
        .priv_size = sizeof(struct fifo_priv),
        .open = fifo_open,
        .send = fifo_send,
        .recv = fifo_recv,
        .detach = ipc__sdrv_detach,
        .close = fifo_close,
        .pollfds = fifo_pollfds,
        .ready = fifo_ready,
        .fd = fifo_fd,
        .peer_cred = fifo_peer_cred,
};
