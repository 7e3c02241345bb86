/*
 * file:///PATH: durable append-only record logs, one per direction
 * (PATH.a2b.N and PATH.b2a.N, N = 0, 1, ... the segments), each read by
 * the other side, which keeps its position in PATH.a2b.pos / PATH.b2a.pos.
 * The format is in docs/file.md.
 *
 * Sides.  IPC_CREATE opens side a: it writes a2b and reads b2a; the other
 * side writes b2a and reads a2b.  A reader's position file exists from its
 * first open on; a writer sends nothing until it exists (before that
 * nobody could ever read it), and from then on appends whether the reader
 * runs or not.
 *
 * Writer.  At open it walks its last segment and cuts it after the last
 * valid record (a torn record of a killed writer or a cut file is never
 * left for the reader, and the next record overwrites it); it numbers on
 * from the larger of the last record's sequence and the reader's.  Each
 * record is one pwritev.  max_bytes= starts a new segment when the next
 * record would make the current one larger, and removes the segments the
 * reader has left.
 *
 * Reader.  Reads the record at its position; delivers it when its magic,
 * length and CRC32C hold and its sequence number is the next one (lower
 * ones are skipped: never twice), then writes its position.  An
 * incomplete record is waited for; a bad one makes it walk the segment
 * again from its start (skipping by sequence), so a cut or damaged file
 * never delivers anything corrupt.  The end of a segment with a later one
 * present moves it on.  ipc_fd() and poll follow the writer through
 * inotify on the directory.
 *
 * No peer close or death is reported: the log is a mailbox (no
 * IPC_CAP_PEERCLOSE).  No zero-copy: records are copied.
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/driver.h"

#define REC_MAGIC   0x4c435049u /* "IPCL" in the file */
#define REC_HDR     20u         /* magic, len, seq, crc */
#define REC_TRAILER 1u          /* '\n' */
#define FL_MAXMSG   (16u << 20)
#define POS_SLOT    32u

enum { SYNC_NONE, SYNC_COMMIT, SYNC_INTERVAL };

struct fl_dir {
	char name[8]; /* "a2b" / "b2a" */
	int fd;       /* current segment, -1 */
	uint64_t seg, off, next_seq;
	/* reader */
	int posfd;
	uint32_t pos_gen;
	/* writer */
	int arrived;
	uint64_t first_seg; /* lowest segment that may still exist */
};

struct fl_chan {
	int dirfd;
	char base[256];
	const char *uri;
	struct fl_dir tx, rx;
	unsigned mode;
	uint64_t max_bytes;
	size_t max_msg;
	int sync;
	uint64_t sync_ns, last_sync;
	int ino;            /* inotify on the directory, made on demand */
	int efd;            /* ipc_fd(): kept readable while records wait */
	int epfd;           /* ipc_fd() */
	unsigned char *buf; /* one record */
	size_t buf_cap;
};

static const char *const fl_sync_choices[] = {"none", "commit", "interval",
                                              NULL};

static const struct ipc_optspec fl_opts[] = {
        {"mode", IPC_OPT_MODE, 0, 0777, NULL,
         "permission bits of the files (default 0600)"},
        {"max_bytes", IPC_OPT_SIZE, 0, 1ull << 50, NULL,
         "segment size before a new one starts (default 0: one)"},
        {"maxmsg", IPC_OPT_SIZE, 1, 1u << 30, NULL,
         "largest message (default 16M)"},
        {"sync", IPC_OPT_ENUM, 0, 0, fl_sync_choices,
         "fdatasync after none, every record, or every sync_ms"},
        {"sync_ms", IPC_OPT_UINT, 1, 3600000, NULL,
         "interval of sync=interval in ms (default 100)"},
        {NULL, 0, 0, 0, NULL, NULL},
};

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
seg_name(const struct fl_chan *s, const struct fl_dir *d, uint64_t seg,
         char *out, size_t n)
{
	snprintf(out, n, "%s.%s.%" PRIu64, s->base, d->name, seg);
}

/* A file we may trust: regular, ours (or root's), no wider than mode=. */
static int
check_fd(const struct fl_chan *s, int fd, const char *name)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		return ipc__errno(-errno, s->uri, "fstat of %s", name);
	}
	if (!S_ISREG(st.st_mode)) {
		return ipc__err(-EPROTO, s->uri, "%s is not a regular file",
		                name);
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		return ipc__err(-EACCES, s->uri,
		                "%s belongs to uid %u, not to us or root",
		                name, (unsigned)st.st_uid);
	}
	if ((st.st_mode & 0077 & ~s->mode) != 0) {
		return ipc__err(-EACCES, s->uri,
		                "%s has mode %04o, wider than mode=%04o", name,
		                (unsigned)(st.st_mode & 0777), s->mode);
	}
	return 0;
}

/* Open (or create) a file of the channel, never following a link. */
static int
open_in(struct fl_chan *s, const char *name, int create, int wr, int *out)
{
	int base = (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW;
	int fd;
	if (create) {
		fd = openat(s->dirfd, name, base | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			if (fchmod(fd, s->mode) < 0) {
				int e = -errno;
				close(fd);
				return ipc__errno(e, s->uri, "fchmod of %s",
				                  name);
			}
			*out = fd;
			return 0;
		}
		if (errno != EEXIST) {
			return ipc__errno(-errno, s->uri, "creating %s", name);
		}
	}
	fd = openat(s->dirfd, name, base);
	if (fd < 0) {
		if (errno == ENOENT) {
			return -ENOENT;
		}
		return ipc__errno(-errno, s->uri, "opening %s", name);
	}
	int r = check_fd(s, fd, name);
	if (r < 0) {
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

static int
exists(const struct fl_chan *s, const char *name)
{
	return faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Lowest and highest segment numbers of d present; 0 if none. */
static int
seg_range(struct fl_chan *s, const struct fl_dir *d, uint64_t *lo,
          uint64_t *hi)
{
	char prefix[300];
	int n = snprintf(prefix, sizeof(prefix), "%s.%s.", s->base, d->name);
	int dfd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		return 0;
	}
	DIR *dir = fdopendir(dfd);
	if (dir == NULL) {
		close(dfd);
		return 0;
	}
	int found = 0;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (strncmp(e->d_name, prefix, (size_t)n) != 0) {
			continue;
		}
		const char *num = e->d_name + n;
		char *end;
		if (*num < '0' || *num > '9') {
			continue;
		}
		errno = 0;
		unsigned long long v = strtoull(num, &end, 10);
		if (*end != '\0' || errno != 0) {
			continue;
		}
		if (!found || v < *lo) {
			*lo = v;
		}
		if (!found || v > *hi) {
			*hi = v;
		}
		found = 1;
	}
	closedir(dir);
	return found;
}

/* ----------------------------------------------------------- records -- */

struct rec_hdr {
	uint32_t magic;
	uint32_t len;
	uint64_t seq;
	uint32_t crc;
} __attribute__((packed));

_Static_assert(sizeof(struct rec_hdr) == REC_HDR, "record header");

static uint32_t
rec_crc(const struct rec_hdr *h, const void *payload)
{
	uint32_t c = ipc__crc32c(0, h, 16);
	return ipc__crc32c(c, payload, h->len);
}

enum { REC_OK, REC_SHORT, REC_BAD };

/* Read the record at off into s->buf: REC_OK (h filled), REC_SHORT (not all
 * there yet), REC_BAD (not a valid record), or a negative errno (the read
 * failed, or no memory for the record: not the end of the records). */
static int
read_rec(struct fl_chan *s, int fd, uint64_t off, struct rec_hdr *h)
{
	ssize_t n = pread(fd, h, sizeof(*h), (off_t)off);
	if (n < (ssize_t)sizeof(*h)) {
		return n < 0 ? -errno : REC_SHORT;
	}
	if (h->magic != REC_MAGIC || h->len > s->max_msg) {
		return REC_BAD;
	}
	size_t need = (size_t)h->len + REC_TRAILER;
	if (need > s->buf_cap) {
		unsigned char *nb = realloc(s->buf, need);
		if (nb == NULL) {
			return -ENOMEM;
		}
		s->buf = nb;
		s->buf_cap = need;
	}
	n = pread(fd, s->buf, need, (off_t)(off + REC_HDR));
	if (n < (ssize_t)need) {
		return n < 0 ? -errno : REC_SHORT;
	}
	if (s->buf[h->len] != '\n' || rec_crc(h, s->buf) != h->crc) {
		return REC_BAD;
	}
	return REC_OK;
}

/* Walk a segment from its start: *end gets the end of the valid records,
 * *last the last sequence number seen (unchanged when none).  0, or the
 * negative errno of a failed read. */
static int
walk(struct fl_chan *s, int fd, uint64_t *end, uint64_t *last)
{
	struct rec_hdr h;
	uint64_t off = 0;
	int st;
	while ((st = read_rec(s, fd, off, &h)) == REC_OK) {
		*last = h.seq;
		off += REC_HDR + h.len + REC_TRAILER;
	}
	*end = off;
	return st < 0 ? st : 0;
}

/* ------------------------------------------------------ reader position -- */

struct pos_slot {
	uint64_t seg, off, seq;
	uint32_t gen, crc;
};

_Static_assert(sizeof(struct pos_slot) == POS_SLOT, "position slot");

static void
pos_read(struct fl_chan *s, struct fl_dir *d, int fd)
{
	struct pos_slot sl[2];
	memset(sl, 0, sizeof(sl));
	ssize_t n = pread(fd, sl, sizeof(sl), 0);
	(void)n;
	int best = -1;
	for (int i = 0; i < 2; i++) {
		if (sl[i].crc == ipc__crc32c(0, &sl[i], 28) &&
		    sl[i].seq != 0 && (best < 0 || sl[i].gen > sl[best].gen)) {
			best = i;
		}
	}
	(void)s;
	if (best >= 0) {
		d->seg = sl[best].seg;
		d->off = sl[best].off;
		d->next_seq = sl[best].seq;
		d->pos_gen = sl[best].gen;
	}
}

/* Two slots, written in turn: a torn write spoils one, the other holds. */
static void
pos_write(struct fl_chan *s, struct fl_dir *d)
{
	struct pos_slot sl = {.seg = d->seg,
	                      .off = d->off,
	                      .seq = d->next_seq,
	                      .gen = ++d->pos_gen};
	sl.crc = ipc__crc32c(0, &sl, 28);
	ssize_t n = pwrite(d->posfd, &sl, sizeof(sl),
	                   (off_t)((sl.gen & 1) * POS_SLOT));
	(void)n;
	if (s->sync == SYNC_COMMIT) {
		fdatasync(d->posfd);
	}
}

/* The reader's saved position of direction d (for the writer). */
static int
peer_pos(struct fl_chan *s, struct fl_dir *d, struct fl_dir *out)
{
	char name[300];
	snprintf(name, sizeof(name), "%s.%s.pos", s->base, d->name);
	int fd;
	if (open_in(s, name, 0, 0, &fd) != 0) {
		return -1;
	}
	memset(out, 0, sizeof(*out));
	pos_read(s, out, fd);
	close(fd);
	return 0;
}

/* ------------------------------------------------------------ writer -- */

static int
writer_open(struct fl_chan *s)
{
	struct fl_dir *d = &s->tx;
	uint64_t lo = 0, hi = 0, last = 0, end = 0;
	char name[300];
	int have = seg_range(s, d, &lo, &hi);
	d->seg = have ? hi : 0;
	d->first_seg = have ? lo : 0;
	seg_name(s, d, d->seg, name, sizeof(name));
	int r = open_in(s, name, 1, 1, &d->fd);
	if (r < 0) {
		return r;
	}
	r = walk(s, d->fd, &end, &last);
	if (r < 0) {
		return ipc__errno(r, s->uri, "reading %s", name);
	}
	struct stat st;
	if (fstat(d->fd, &st) == 0 && (uint64_t)st.st_size > end) {
		/* A torn or damaged tail: the next record goes there. */
		if (ftruncate(d->fd, (off_t)end) < 0) {
			return ipc__errno(-errno, s->uri,
			                  "cutting the torn tail of %s", name);
		}
	}
	d->off = end;
	if (last == 0 && d->seg > lo) {
		int pfd;
		seg_name(s, d, d->seg - 1, name, sizeof(name));
		if (open_in(s, name, 0, 0, &pfd) == 0) {
			uint64_t e2;
			r = walk(s, pfd, &e2, &last);
			close(pfd);
			if (r < 0) {
				return ipc__errno(r, s->uri, "reading %s",
				                  name);
			}
		}
	}
	struct fl_dir rp;
	uint64_t next = last + 1;
	if (peer_pos(s, d, &rp) == 0 && rp.next_seq > next) {
		next = rp.next_seq;
	}
	d->next_seq = next;
	return 0;
}

/* Start segment seg + 1; drop the segments the reader has left. */
static int
rotate(struct fl_chan *s, struct fl_dir *d)
{
	char name[300];
	int fd;
	seg_name(s, d, d->seg + 1, name, sizeof(name));
	int r = open_in(s, name, 1, 1, &fd);
	if (r < 0) {
		return r;
	}
	close(d->fd);
	d->fd = fd;
	d->seg++;
	d->off = 0;
	struct fl_dir rp;
	if (peer_pos(s, d, &rp) == 0) {
		for (; d->first_seg < rp.seg && d->first_seg < d->seg;
		     d->first_seg++) {
			seg_name(s, d, d->first_seg, name, sizeof(name));
			unlinkat(s->dirfd, name, 0);
		}
	}
	return 0;
}

static ssize_t
fl_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct fl_chan *s = ipc__priv(ch);
	struct fl_dir *d = &s->tx;
	if (!d->arrived) {
		char name[300];
		snprintf(name, sizeof(name), "%s.%s.pos", s->base, d->name);
		if (!exists(s, name)) {
			return -EAGAIN; /* no reader has ever opened */
		}
		d->arrived = 1;
	}
	uint64_t size = REC_HDR + len + REC_TRAILER;
	if (s->max_bytes != 0 && d->off > 0 && d->off + size > s->max_bytes) {
		int r = rotate(s, d);
		if (r < 0) {
			return r;
		}
	}
	struct rec_hdr h = {
	        .magic = REC_MAGIC, .len = (uint32_t)len, .seq = d->next_seq};
	h.crc = rec_crc(&h, buf);
	char nl = '\n';
	struct iovec iov[3] = {
	        {&h, REC_HDR}, {(void *)buf, len}, {&nl, REC_TRAILER}};
	ssize_t n = pwritev(d->fd, iov, 3, (off_t)d->off);
	if (n != (ssize_t)size) {
		int e = n < 0 ? errno : ENOSPC;
		if (ftruncate(d->fd, (off_t)d->off) < 0) {
			/* the reader skips a bad tail; the next open cuts it
			 */
		}
		return ipc__errno(-e, ch->uri, "appending a record");
	}
	d->off += size;
	d->next_seq++;
	if (s->sync == SYNC_COMMIT) {
		fdatasync(d->fd);
	} else if (s->sync == SYNC_INTERVAL) {
		uint64_t t = now_ns();
		if (t - s->last_sync >= s->sync_ns) {
			s->last_sync = t;
			fdatasync(d->fd);
		}
	}
	return (ssize_t)len;
}

/* ------------------------------------------------------------ reader -- */

static int
read_failed(struct fl_chan *s, struct fl_dir *d, int err)
{
	char name[300];
	seg_name(s, d, d->seg, name, sizeof(name));
	return ipc__errno(err, s->uri, "reading %s", name);
}

/* Walk the current segment again from 0 to the first record not yet
 * delivered (or the end of what is valid); a failed read leaves d->off. */
static int
rescan(struct fl_chan *s, struct fl_dir *d)
{
	struct rec_hdr h;
	uint64_t off = 0;
	int st;
	while ((st = read_rec(s, d->fd, off, &h)) == REC_OK &&
	       h.seq < d->next_seq) {
		off += REC_HDR + h.len + REC_TRAILER;
	}
	if (st < 0) {
		return st;
	}
	d->off = off;
	return 0;
}

static int
next_seg_exists(struct fl_chan *s, struct fl_dir *d)
{
	char name[300];
	seg_name(s, d, d->seg + 1, name, sizeof(name));
	return exists(s, name);
}

/* Find the next record to deliver: 1 (in s->buf, header in *h), 0 none
 * yet, or a negative error. */
static int
reader_next(struct fl_chan *s, struct fl_dir *d, struct rec_hdr *h)
{
	for (int guard = 0; guard < 64; guard++) {
		if (d->fd < 0) {
			char name[300];
			seg_name(s, d, d->seg, name, sizeof(name));
			int r = open_in(s, name, 0, 0, &d->fd);
			if (r == -ENOENT) {
				uint64_t lo = 0, hi = 0;
				if (seg_range(s, d, &lo, &hi) && lo > d->seg) {
					/* Removed under us: go on at lo. */
					d->seg = lo;
					d->off = 0;
					continue;
				}
				return 0;
			}
			if (r < 0) {
				return r;
			}
		}
		int st = read_rec(s, d->fd, d->off, h);
		if (st == REC_OK) {
			if (h->seq < d->next_seq) {
				d->off += REC_HDR + h->len + REC_TRAILER;
				continue;
			}
			return 1;
		}
		/* A failed read is no end of the records: the caller hears
		 * of it and the next call reads the same place again. */
		if (st < 0) {
			return read_failed(s, d, st);
		}
		struct stat sb;
		if (fstat(d->fd, &sb) == 0 && (uint64_t)sb.st_size < d->off) {
			/* the file was cut below us */
			st = rescan(s, d);
			if (st < 0) {
				return read_failed(s, d, st);
			}
			continue;
		}
		if (st == REC_BAD) {
			uint64_t before = d->off;
			st = rescan(s, d);
			if (st < 0) {
				return read_failed(s, d, st);
			}
			if (d->off != before) {
				continue;
			}
		}
		/* Short, or bad where the valid records end. */
		if (next_seg_exists(s, d)) {
			/* The writer left this segment before making the
			 * next: a last look, then move on. */
			st = read_rec(s, d->fd, d->off, h);
			if (st < 0) {
				return read_failed(s, d, st);
			}
			if (st == REC_OK) {
				continue;
			}
			close_fd(&d->fd);
			d->seg++;
			d->off = 0;
			continue;
		}
		return 0;
	}
	return 0;
}

static void
poke(struct fl_chan *s)
{
	if (s->efd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(s->efd, &one, sizeof(one));
		(void)n;
	}
}

static void
drain_events(struct fl_chan *s)
{
	unsigned char b[4096];
	if (s->ino >= 0) {
		while (read(s->ino, b, sizeof(b)) > 0) {
		}
	}
	if (s->efd >= 0) {
		uint64_t v;
		ssize_t n = read(s->efd, &v, sizeof(v));
		(void)n;
	}
}

static ssize_t
fl_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct fl_chan *s = ipc__priv(ch);
	struct fl_dir *d = &s->rx;
	struct rec_hdr h;
	int r = reader_next(s, d, &h);
	if (r == 0 && (s->ino >= 0 || s->efd >= 0)) {
		/* Level-triggered descriptors: clear them, then look again
		 * so that a record that came meanwhile is not missed. */
		drain_events(s);
		r = reader_next(s, d, &h);
	}
	if (r < 0) {
		return r;
	}
	if (r == 0) {
		return -EAGAIN;
	}
	if (h.len > cap) {
		return ipc__err_msgsize(ch->uri, h.len, cap);
	}
	memcpy(buf, s->buf, h.len);
	d->off += REC_HDR + h.len + REC_TRAILER;
	d->next_seq = h.seq + 1;
	pos_write(s, d);
	poke(s); /* maybe more: the next recv tells */
	return (ssize_t)h.len;
}

/* ---------------------------------------------------- poll and ipc_fd -- */

static int
ensure_ino(struct fl_chan *s)
{
	if (s->ino >= 0) {
		return 0;
	}
	s->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino < 0) {
		return ipc__errno(-errno, s->uri, "inotify_init1");
	}
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", s->dirfd);
	if (inotify_add_watch(s->ino, self,
	                      IN_MODIFY | IN_CREATE | IN_MOVED_TO |
	                              IN_CLOSE_WRITE) < 0) {
		int e = -errno;
		close_fd(&s->ino);
		return ipc__errno(e, s->uri, "inotify_add_watch");
	}
	return 0;
}

static int
fl_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct fl_chan *s = ipc__priv(ch);
	int n = 0;
	if (ensure_ino(s) < 0) {
		*retry_ms = 50;
		return 0;
	}
	pfd[n].fd = s->ino;
	pfd[n++].events = POLLIN;
	if (events & IPC_POLLIN) {
		struct rec_hdr h;
		drain_events(s);
		if (reader_next(s, &s->rx, &h) != 0) {
			*retry_ms = 0;
		}
	}
	if ((events & IPC_POLLOUT) && !s->tx.arrived) {
		*retry_ms = *retry_ms == 0 ? 0 : 100;
	}
	return n;
}

static short
fl_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct fl_chan *s = ipc__priv(ch);
	(void)pfd;
	(void)npfd;
	short r = 0;
	struct rec_hdr h;
	if ((events & IPC_POLLIN) && reader_next(s, &s->rx, &h) != 0) {
		r |= IPC_POLLIN;
	}
	if (events & IPC_POLLOUT) {
		char name[300];
		snprintf(name, sizeof(name), "%s.%s.pos", s->base, s->tx.name);
		if (s->tx.arrived || exists(s, name)) {
			r |= IPC_POLLOUT;
		}
	}
	return r;
}

static int
fl_fd(const ipc_channel *ch)
{
	struct fl_chan *s = (struct fl_chan *)ipc__cpriv(ch);
	if (s->epfd >= 0) {
		return s->epfd;
	}
	int r = ensure_ino(s);
	if (r < 0) {
		return r;
	}
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->efd < 0 || s->epfd < 0) {
		r = ipc__errno(-errno, s->uri, "eventfd/epoll_create1");
		close_fd(&s->efd);
		close_fd(&s->epfd);
		return r;
	}
	struct epoll_event ev = {.events = EPOLLIN};
	ev.data.fd = s->ino;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->ino, &ev);
	ev.data.fd = s->efd;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->efd, &ev);
	struct rec_hdr h;
	if (reader_next(s, &s->rx, &h) != 0) {
		poke(s);
	}
	return s->epfd;
}

/* -------------------------------------------------------------- open -- */

static void
fl_free(struct fl_chan *s)
{
	close_fd(&s->tx.fd);
	close_fd(&s->rx.fd);
	close_fd(&s->rx.posfd);
	close_fd(&s->ino);
	close_fd(&s->efd);
	close_fd(&s->epfd);
	close_fd(&s->dirfd);
	free(s->buf);
	s->buf = NULL;
}

static int
fl_close(ipc_channel *ch)
{
	struct fl_chan *s = ipc__priv(ch);
	if (s->sync != SYNC_NONE) {
		if (s->tx.fd >= 0) {
			fdatasync(s->tx.fd);
		}
		if (s->rx.posfd >= 0) {
			fdatasync(s->rx.posfd);
		}
	}
	fl_free(s);
	return 0;
}

/* IPC_CREATE with mode=: every file of the channel gets that mode. */
static void
chmod_all(struct fl_chan *s)
{
	int dfd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (dir == NULL) {
		if (dfd >= 0) {
			close(dfd);
		}
		return;
	}
	size_t bl = strlen(s->base);
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (strncmp(e->d_name, s->base, bl) != 0 ||
		    e->d_name[bl] != '.') {
			continue;
		}
		int fd = openat(s->dirfd, e->d_name,
		                O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			continue;
		}
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid()) {
			fchmod(fd, s->mode);
		}
		close(fd);
	}
	closedir(dir);
}

static int
fl_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct fl_chan *s = ipc__priv(ch);
	memset(s, 0, sizeof(*s));
	s->dirfd = s->ino = s->efd = s->epfd = -1;
	s->tx.fd = s->rx.fd = s->rx.posfd = s->tx.posfd = -1;
	s->uri = ch->uri;
	s->mode = (unsigned)ipc__opt_num(u, "mode", 0600);
	s->max_bytes = ipc__opt_num(u, "max_bytes", 0);
	s->max_msg = (size_t)ipc__opt_num(u, "maxmsg", FL_MAXMSG);
	s->sync = (int)ipc__opt_num(u, "sync", SYNC_NONE);
	s->sync_ns = ipc__opt_num(u, "sync_ms", 100) * 1000000ull;
	s->last_sync = now_ns();
	int side = (flags & IPC_CREATE) ? 0 : 1;
	snprintf(s->tx.name, sizeof(s->tx.name), "%s", side ? "b2a" : "a2b");
	snprintf(s->rx.name, sizeof(s->rx.name), "%s", side ? "a2b" : "b2a");
	s->rx.next_seq = 1;
	int r;

	const char *slash = strrchr(u->fspath, '/');
	const char *base = slash + 1;
	if (*base == '\0' || strlen(base) >= sizeof(s->base) - 16) {
		return ipc__err(-EINVAL, u->text,
		                "expected file:///dir/name (a file name after "
		                "the last '/', up to %zu bytes)",
		                sizeof(s->base) - 17);
	}
	snprintf(s->base, sizeof(s->base), "%s", base);
	char dir[PATH_MAX];
	size_t dl = (size_t)(slash - u->fspath);
	if (dl >= sizeof(dir)) {
		return ipc__err(-ENAMETOOLONG, u->text, "path too long");
	}
	memcpy(dir, u->fspath, dl);
	dir[dl] = '\0';
	s->dirfd = open(dl ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		r = ipc__errno(-errno, u->text, "opening the directory %s",
		               dl ? dir : "/");
		goto fail;
	}
	char name[300];
	if (!(flags & IPC_CREATE)) {
		/* Side b needs side a to have made the channel. */
		snprintf(name, sizeof(name), "%s.b2a.pos", s->base);
		if (!exists(s, name)) {
			r = ipc__err(
			        -ENOENT, u->text,
			        "no channel at %s (open it with IPC_CREATE "
			        "first)",
			        u->fspath);
			goto fail;
		}
	}
	/* Reader first: its position file says "a reader exists". */
	snprintf(name, sizeof(name), "%s.%s.pos", s->base, s->rx.name);
	r = open_in(s, name, 1, 1, &s->rx.posfd);
	if (r < 0) {
		goto fail;
	}
	uint64_t lo = 0, hi = 0;
	if (seg_range(s, &s->rx, &lo, &hi)) {
		s->rx.seg = lo;
	}
	pos_read(s, &s->rx, s->rx.posfd);
	r = writer_open(s);
	if (r < 0) {
		goto fail;
	}
	if ((flags & IPC_CREATE) && ipc__opt_isset(u, "mode")) {
		chmod_all(s);
	}
	ch->max_msg = s->max_msg;
	return 0;
fail:
	fl_free(s);
	return r;
}

const struct ipc_driver ipc_driver_file = {
        .scheme = "file",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED,
        .addr = IPC_ADDR_PATH,
        .opts = fl_opts,
        .priv_size = sizeof(struct fl_chan),
        .open = fl_open,
        .send = fl_send,
        .recv = fl_recv,
        .close = fl_close,
        .pollfds = fl_pollfds,
        .ready = fl_ready,
        .fd = fl_fd,
};
