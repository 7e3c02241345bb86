/*
 * mmap:///PATH: the two rings of src/core/ring.h in a regular file that
 * both processes map (MAP_SHARED); messages outlive the processes.  The
 * ring glue (send, recv, zero-copy, futex waits, poll, ipc_fd) is
 * src/core/ringchan.c, shared with shm://.
 *
 * File.  One header page, then ring 0 (side a -> side b) and ring 1 (b ->
 * a), each page-aligned.  The side that opens with IPC_CREATE is side a,
 * the other side b; each side may be open in one process at a time.  The
 * header names the format (magic "libipcMM", version), the ring size and
 * the file size, a random file id, and per side an open count and the pid
 * and start time of its last opener.  Everything in it is read as hostile:
 * the header through pread() and checked before anything is mapped, the
 * rings by ring.c's checks.
 *
 * Locks.  Each side holds an OFD write lock on one byte (1 + side) for as
 * long as it is open; the kernel drops it when the process dies, so the
 * peer's death is seen without its cooperation (F_OFD_GETLK).  Opening
 * (format, repair, header update) happens under a third byte's lock.  An
 * opener that finds the other side's lock free is alone: it repairs both
 * rings (a record the file does not wholly hold, after a truncation, is
 * cut off with everything after it) and clears the flags the last users
 * left.
 *
 * Peers.  A send waits until the other side has opened the file once (its
 * open count is not zero): until then nobody could ever read it.  From
 * then on messages may be committed while the other side is away; they
 * wait in the file.  A peer that was there during this channel's life and
 * is gone (its lock is free) is reported: -EPIPE after the drain.
 *
 * Waiting and poll.  Blocking calls sleep on futexes in the mapping.  For
 * poll and ipc_fd each side binds two abstract datagram sockets, named
 * from the file id ("data" and "room"); the peer sends one byte to them
 * only while this side has armed IPC_RING_NOTIFY.  The peer's liveness
 * descriptor is a pidfd of its recorded pid (checked against its start
 * time); without one, poll looks at the lock every IPC_RCHAN_SLICE_MS.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/ring.h"
#include "core/ringchan.h"

#define MM_DEFAULT_SIZE    (4u << 20)
#define MM_DEFAULT_SPIN_US 50u
#define MM_HDR             4096u
#define MM_VERSION         1u
#define MM_LOCK_INIT       0
#define MM_LOCK_SIDE(s)    (1 + (s))
#define MM_INIT_TRIES      2000 /* x 1 ms: the init lock is held briefly */

static const char mm_magic[8] = {'l', 'i', 'b', 'i', 'p', 'c', 'M', 'M'};

struct mm_side {
	_Atomic uint32_t opens; /* opens of this side so far */
	uint32_t pid;           /* its last opener */
	uint64_t start;         /* that process's start time (clock ticks) */
};

/* The header page.  Layout is the file format (docs/mmap.md). */
struct mm_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t ring_size;
	uint64_t file_size;
	uint64_t file_id;
	struct mm_side side[2];
};

enum { SYNC_NONE, SYNC_COMMIT, SYNC_INTERVAL };

struct mm_chan {
	struct ipc_rchan rc; /* first: the ring callbacks cast back */
	int fd;
	int side; /* 0: a (IPC_CREATE), 1: b */
	unsigned char *map;
	size_t map_len;
	struct mm_hdr *hdr;
	int sync;
	uint64_t sync_ns, last_sync;
	int arrived;              /* the peer has opened the file once */
	int peer_seen;            /* ...and was there during our life */
	uint32_t peer_opens0;     /* its open count when we opened */
	uint32_t peer_opens_live; /* its open count when its pid was taken */
	struct sockaddr_un addr[2][2]; /* [side][0 data, 1 room] */
	socklen_t alen;
};

static const char *const mm_sync_choices[] = {"none", "commit", "interval",
                                              NULL};

static const struct ipc_optspec mm_opts[] = {
        {"size", IPC_OPT_SIZE, IPC_RING_MIN, IPC_RING_MAX, NULL,
         "ring bytes per direction, a power of two (default 4M)"},
        {"spin", IPC_OPT_STR, 0, 0, NULL,
         "microseconds to spin before sleeping (default 50), or busy"},
        {"mode", IPC_OPT_MODE, 0, 0777, NULL,
         "permission bits of the file (default 0600)"},
        {"sync", IPC_OPT_ENUM, 0, 0, mm_sync_choices,
         "msync after none, every commit, or every sync_ms"},
        {"sync_ms", IPC_OPT_UINT, 1, 3600000, NULL,
         "interval of sync=interval in ms (default 100)"},
        {NULL, 0, 0, 0, NULL, NULL},
};

static size_t
page_round(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

static size_t
stride_for(size_t ring_size)
{
	return page_round(ipc_ring_region_size(ring_size));
}

static size_t
file_len_for(size_t ring_size)
{
	return MM_HDR + 2 * stride_for(ring_size);
}

static unsigned char *
ring_mem(unsigned char *map, size_t ring_size, int i)
{
	return map + MM_HDR + (size_t)i * stride_for(ring_size);
}

/* ----------------------------------------------------------- locking -- */

static int
lock_byte(int fd, int byte, int type)
{
	struct flock fl = {.l_type = (short)type,
	                   .l_whence = SEEK_SET,
	                   .l_start = byte,
	                   .l_len = 1};
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Is byte locked by another open file description?  1, 0 or -errno. */
static int
byte_held(int fd, int byte)
{
	struct flock fl = {.l_type = F_WRLCK,
	                   .l_whence = SEEK_SET,
	                   .l_start = byte,
	                   .l_len = 1};
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
		return -errno;
	}
	return fl.l_type != F_UNLCK;
}

static int
init_lock(int fd, const char *uri)
{
	for (int i = 0; i < MM_INIT_TRIES; i++) {
		int r = lock_byte(fd, MM_LOCK_INIT, F_WRLCK);
		if (r == 0) {
			return 0;
		}
		if (r != -EAGAIN && r != -EACCES) {
			return ipc__errno(r, uri, "locking the file");
		}
		usleep(1000);
	}
	return ipc__err(-EBUSY, uri,
	                "another process holds the file's open lock for "
	                "more than %d ms",
	                MM_INIT_TRIES);
}

/* --------------------------------------------------- processes, pids -- */

/* Start time of pid in clock ticks since boot (field 22 of
 * /proc/PID/stat), or 0. */
static uint64_t
proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return 0;
	}
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL) {
		return 0;
	}
	/* Fields from 3 on follow ") "; the start time is field 22. */
	p++;
	for (int f = 2; f < 22 && p != NULL; f++) {
		p = strchr(p + 1, ' ');
	}
	return p != NULL ? strtoull(p + 1, NULL, 10) : 0;
}

/* A pidfd of the peer's recorded pid, if that process is still the one
 * that opened (its start time matches); else -1. */
static int
peer_pidfd(struct mm_chan *s)
{
	const struct mm_side *ps = &s->hdr->side[1 - s->side];
	pid_t pid = (pid_t)ps->pid;
	uint64_t start = ps->start;
	if (pid <= 0 || start == 0) {
		return -1;
	}
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		return -1;
	}
	if (proc_start(pid) != start) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
#else
	return -1;
#endif
}

/* Take (or refresh) the peer's pidfd as the liveness descriptor. */
static void
take_pidfd(struct mm_chan *s)
{
	pthread_mutex_lock(&s->rc.lock);
	int fd = peer_pidfd(s);
	if (s->rc.live_fd >= 0) {
		ipc__rchan_epoll_del(&s->rc, s->rc.live_fd);
		close(s->rc.live_fd);
	}
	s->rc.live_fd = fd;
	ipc__rchan_epoll_update(&s->rc);
	pthread_mutex_unlock(&s->rc.lock);
}

/* -------------------------------------------------------- ring glue -- */

static int
mm_check_alive(struct ipc_rchan *c)
{
	struct mm_chan *s = (struct mm_chan *)c;
	if (atomic_load(&c->dead)) {
		return 0;
	}
	int peer = 1 - s->side;
	/* The count before the lock: an opener takes its lock before it
	 * counts itself, so a free lock seen after this load with a count
	 * that moved means the peer came and went.  Read the other way
	 * round, a peer opening between the two reads looked dead. */
	uint32_t before = atomic_load(&s->hdr->side[peer].opens);
	int held = byte_held(s->fd, MM_LOCK_SIDE(peer));
	if (held > 0) {
		uint32_t opens = atomic_load(&s->hdr->side[peer].opens);
		if (!s->peer_seen || opens != s->peer_opens_live) {
			s->peer_seen = 1;
			s->peer_opens_live = opens;
			take_pidfd(s);
		}
		return 1;
	}
	if (held == 0 && (s->peer_seen || before != s->peer_opens0)) {
		atomic_store(&c->dead, 1);
		return 0;
	}
	return 1;
}

static int
mm_gone_err(struct ipc_rchan *c, const char *uri)
{
	(void)c;
	return ipc__err(-EPIPE, uri,
	                "the peer died without closing the channel (its "
	                "lock on the file is free)");
}

static void
mm_kick(struct ipc_rchan *c, int peer, enum ipc_ring_role role)
{
	struct mm_chan *s = (struct mm_chan *)c;
	int who = peer ? 1 - s->side : s->side;
	int k = role == IPC_RING_CONSUMER ? 0 : 1;
	char one = 1;
	ssize_t n = sendto(c->efd_data, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
	                   (const struct sockaddr *)&s->addr[who][k], s->alen);
	(void)n; /* full: readable already; refused: nobody there */
}

static void
sync_range(struct mm_chan *s, unsigned char *from, size_t len)
{
	uintptr_t a = (uintptr_t)from & ~(uintptr_t)4095;
	uintptr_t b = page_round((uintptr_t)from + len);
	msync((void *)a, b - a, MS_SYNC);
}

static void
mm_published(struct ipc_rchan *c, int tx, uint64_t from, uint64_t to)
{
	struct mm_chan *s = (struct mm_chan *)c;
	if (s->sync == SYNC_COMMIT) {
		struct ipc_ring *r = tx ? &c->tx : &c->rx;
		if (to > from) {
			uint64_t p = from & r->mask;
			size_t n = (size_t)(to - from);
			if (p + n > r->size) {
				n = (size_t)(r->size - p);
			}
			sync_range(s, r->data + p, n);
		}
		sync_range(s, (unsigned char *)r->hdr, IPC_RING_HDR);
	} else if (s->sync == SYNC_INTERVAL) {
		uint64_t t = ipc__rchan_now_ns();
		if (t - s->last_sync >= s->sync_ns) {
			s->last_sync = t;
			msync(s->map, s->map_len, MS_SYNC);
		}
	}
}

static const struct ipc_rchan_ops mm_rc_ops = {
        .check_alive = mm_check_alive,
        .gone_err = mm_gone_err,
        .kick = mm_kick,
        .published = mm_published,
};

/* ------------------------------------------------------------- slots -- */

/* May we send: has the peer ever opened the file? */
static inline int
can_send(struct mm_chan *s)
{
	if (__builtin_expect(s->arrived, 1)) {
		return 1;
	}
	if (atomic_load(&s->hdr->side[1 - s->side].opens) != 0) {
		s->arrived = 1;
		return 1;
	}
	return 0;
}

static ssize_t
mm_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct mm_chan *s = ipc__priv(ch);
	if (!can_send(s)) {
		return -EAGAIN;
	}
	return ipc__rchan_send(ch, &s->rc, buf, len);
}

static ssize_t
mm_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct mm_chan *s = ipc__priv(ch);
	return ipc__rchan_recv(ch, &s->rc, buf, cap);
}

static int
mm_reserve(ipc_channel *ch, size_t len, void **buf)
{
	struct mm_chan *s = ipc__priv(ch);
	if (!can_send(s)) {
		return -EAGAIN;
	}
	return ipc__rchan_reserve(ch, &s->rc, len, buf);
}

static int
mm_commit(ipc_channel *ch, size_t len)
{
	struct mm_chan *s = ipc__priv(ch);
	return ipc__rchan_commit(ch, &s->rc, len);
}

static int
mm_acquire(ipc_channel *ch, const void **buf, size_t *len)
{
	struct mm_chan *s = ipc__priv(ch);
	return ipc__rchan_acquire(ch, &s->rc, buf, len);
}

static int
mm_release(ipc_channel *ch)
{
	struct mm_chan *s = ipc__priv(ch);
	return ipc__rchan_release(ch, &s->rc);
}

static int
mm_wait(ipc_channel *ch, short events, const struct timespec *deadline)
{
	struct mm_chan *s = ipc__priv(ch);
	if ((events & IPC_POLLOUT) && !can_send(s)) {
		/* Sleep until the peer's first open bumps its count. */
		_Atomic uint32_t *w = &s->hdr->side[1 - s->side].opens;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		if (deadline != NULL && (deadline->tv_sec < ts.tv_sec ||
		                         (deadline->tv_sec == ts.tv_sec &&
		                          deadline->tv_nsec < ts.tv_nsec))) {
			ts = *deadline;
		}
		long rc = syscall(SYS_futex, w, FUTEX_WAIT_BITSET, 0, &ts,
		                  NULL, FUTEX_BITSET_MATCH_ANY);
		if (rc < 0 && errno == ETIMEDOUT && deadline != NULL &&
		    ipc__remaining_ms(deadline) == 0) {
			return -ETIMEDOUT;
		}
		return 0;
	}
	return ipc__rchan_wait(&s->rc, events, deadline);
}

static int
mm_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct mm_chan *s = ipc__priv(ch);
	int n = ipc__rchan_pollfds(&s->rc, events, pfd, retry_ms);
	if ((events & IPC_POLLOUT) && !can_send(s)) {
		/* The peer's open kicks our "room" socket. */
		if (*retry_ms < 0 || *retry_ms > IPC_RCHAN_SLICE_MS) {
			*retry_ms = IPC_RCHAN_SLICE_MS;
		}
		if (*retry_ms == 0 && !atomic_load(&s->rc.dead)) {
			*retry_ms = IPC_RCHAN_SLICE_MS;
		}
	}
	return n;
}

static short
mm_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct mm_chan *s = ipc__priv(ch);
	short r = ipc__rchan_ready(&s->rc, events, pfd, npfd);
	if ((events & IPC_POLLOUT) && !can_send(s) && !(r & IPC_POLLHUP)) {
		r &= (short)~IPC_POLLOUT;
	}
	return r;
}

static int
mm_fd(const ipc_channel *ch)
{
	struct mm_chan *s = (struct mm_chan *)ipc__cpriv(ch);
	pthread_mutex_lock(&s->rc.lock);
	int fd = ipc__rchan_fd_locked(&s->rc, 1);
	pthread_mutex_unlock(&s->rc.lock);
	return fd;
}

static void
mm_free(struct mm_chan *s)
{
	if (s->map != NULL) {
		munmap(s->map, s->map_len);
		s->map = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd); /* drops our locks */
		s->fd = -1;
	}
	ipc__rchan_free(&s->rc);
}

static int
mm_close(ipc_channel *ch)
{
	struct mm_chan *s = ipc__priv(ch);
	ipc__rchan_close(&s->rc);
	if (s->sync != SYNC_NONE) {
		msync(s->map, s->map_len, MS_SYNC);
	}
	mm_free(s);
	return 0;
}

/* -------------------------------------------------------------- open -- */

static int
bind_dgram(struct mm_chan *s, int k, const char *uri)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return ipc__errno(-errno, uri, "socket");
	}
	if (bind(fd, (const struct sockaddr *)&s->addr[s->side][k], s->alen) <
	    0) {
		int e = errno;
		close(fd);
		return ipc__errno(-e, uri,
		                  "binding the abstract socket @%s (another "
		                  "process squats on this file's name?)",
		                  s->addr[s->side][k].sun_path + 1);
	}
	if (k == 0) {
		s->rc.efd_data = fd;
	} else {
		s->rc.efd_room = fd;
	}
	return 0;
}

static void
make_addrs(struct mm_chan *s, uint64_t id)
{
	for (int side = 0; side < 2; side++) {
		for (int k = 0; k < 2; k++) {
			struct sockaddr_un *a = &s->addr[side][k];
			memset(a, 0, sizeof(*a));
			a->sun_family = AF_UNIX;
			int n = snprintf(a->sun_path + 1,
			                 sizeof(a->sun_path) - 1,
			                 "libipc/mmap/%016" PRIx64 "/%c%c", id,
			                 side ? 'b' : 'a', k ? 'r' : 'd');
			s->alen = (socklen_t)(offsetof(struct sockaddr_un,
			                               sun_path) +
			                      1 + (size_t)n);
		}
	}
}

/* Check what fstat says about the file before anything else. */
static int
check_file(int fd, unsigned mode, const char *uri, struct stat *st)
{
	if (fstat(fd, st) < 0) {
		return ipc__errno(-errno, uri, "fstat");
	}
	if (!S_ISREG(st->st_mode)) {
		return ipc__err(-EPROTO, uri, "not a regular file");
	}
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		return ipc__err(-EACCES, uri,
		                "the file belongs to uid %u, not to us (uid "
		                "%u) or root",
		                (unsigned)st->st_uid, (unsigned)geteuid());
	}
	if ((st->st_mode & 0077 & ~mode) != 0) {
		return ipc__err(-EACCES, uri,
		                "the file's mode %04o lets others in beyond "
		                "mode=%04o",
		                (unsigned)(st->st_mode & 0777), mode);
	}
	return 0;
}

/* Write a fresh file: header and two empty rings. */
static int
format_file(int fd, size_t ring_size, const char *uri)
{
	size_t len = file_len_for(ring_size);
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)len) < 0) {
		return ipc__errno(-errno, uri, "ftruncate to %zu bytes", len);
	}
	struct mm_hdr h;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, mm_magic, sizeof(h.magic));
	h.version = MM_VERSION;
	h.hdr_size = MM_HDR;
	h.ring_size = ring_size;
	h.file_size = len;
	if (getrandom(&h.file_id, sizeof(h.file_id), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(h.file_id)) {
		h.file_id = ((uint64_t)getpid() << 32) ^ ipc__rchan_now_ns();
	}
	unsigned char *m =
	        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		return ipc__errno(-errno, uri, "mmap of %zu bytes", len);
	}
	ipc_ring_format(ring_mem(m, ring_size, 0), ring_size);
	ipc_ring_format(ring_mem(m, ring_size, 1), ring_size);
	memcpy(m, &h, sizeof(h));
	msync(m, len, MS_SYNC);
	munmap(m, len);
	return 0;
}

/* Read and check the header; *ring_size gets the file's ring size.
 * A file shorter than the header that starts like one (a truncation) is
 * reported as -ENODATA: the caller may format it. */
static int
read_header(int fd, off_t fsize, size_t *ring_size, const char *uri)
{
	struct mm_hdr h;
	memset(&h, 0, sizeof(h));
	ssize_t n = pread(fd, &h, sizeof(h), 0);
	if (n < 0) {
		return ipc__errno(-errno, uri, "reading the header");
	}
	size_t cmp =
	        (size_t)n < sizeof(mm_magic) ? (size_t)n : sizeof(mm_magic);
	if (memcmp(h.magic, mm_magic, cmp) != 0) {
		return ipc__err(-EPROTO, uri,
		                "not a libipc mmap ring (no \"libipcMM\" "
		                "magic): refusing to touch it");
	}
	if (fsize < (off_t)MM_HDR) {
		return -ENODATA;
	}
	if (h.version != MM_VERSION) {
		return ipc__err(-EPROTO, uri,
		                "ring file version %u, this libipc reads "
		                "version %u",
		                h.version, MM_VERSION);
	}
	if (h.hdr_size != MM_HDR || !ipc_ring_size_ok(h.ring_size) ||
	    h.file_size != file_len_for((size_t)h.ring_size)) {
		return ipc__err(
		        -EPROTO, uri,
		        "corrupt header (header %u bytes, ring %" PRIu64
		        ", file %" PRIu64 ")",
		        h.hdr_size, h.ring_size, h.file_size);
	}
	*ring_size = (size_t)h.ring_size;
	return 0;
}

/* Alone with the file: make both rings sound.  orig: the file's size
 * before it was extended back to full length (a truncation). */
static void
repair(unsigned char *m, size_t ring_size, off_t orig)
{
	for (int i = 0; i < 2; i++) {
		unsigned char *rm = ring_mem(m, ring_size, i);
		off_t off = rm - m;
		if (orig < off + (off_t)IPC_RING_HDR) {
			ipc_ring_format(rm, ring_size);
		} else {
			off_t d = orig - off - (off_t)IPC_RING_HDR;
			if (ipc_ring_repair(rm, ring_size, (uint64_t)d) < 0) {
				ipc_ring_format(rm, ring_size);
			}
			ipc_ring_reset_role(rm, IPC_RING_PRODUCER);
			ipc_ring_reset_role(rm, IPC_RING_CONSUMER);
		}
	}
}

/* Under the init lock: make the file ready and map it. */
static int
prepare(struct mm_chan *s, const struct ipc_uri *u, int flags,
        size_t want_size, int size_set, int alone)
{
	struct stat st;
	if (fstat(s->fd, &st) < 0) {
		return ipc__errno(-errno, u->text, "fstat");
	}
	size_t ring_size = want_size;
	int r = -ENODATA;
	if (st.st_size > 0) {
		r = read_header(s->fd, st.st_size, &ring_size, u->text);
		if (r < 0 && r != -ENODATA) {
			return r;
		}
	}
	if (r == -ENODATA) {
		if (!(flags & IPC_CREATE) && st.st_size == 0) {
			return ipc__err(
			        -ENOENT, u->text,
			        "the file is empty: nobody created the "
			        "channel yet");
		}
		if (!alone) {
			return ipc__err(-EPROTO, u->text,
			                "the file is shorter than its header "
			                "while the other side has it open");
		}
		ring_size = want_size;
		r = format_file(s->fd, ring_size, u->text);
		if (r < 0) {
			return r;
		}
		st.st_size = (off_t)file_len_for(ring_size);
	}
	if (size_set && ring_size != want_size) {
		return ipc__err(-EINVAL, u->text,
		                "size=%zu, but the file holds rings of %zu "
		                "bytes",
		                want_size, ring_size);
	}
	size_t len = file_len_for(ring_size);
	off_t orig = st.st_size;
	if ((uint64_t)orig > len) {
		return ipc__err(-EPROTO, u->text,
		                "the file is %lld bytes, its header says %zu",
		                (long long)orig, len);
	}
	if ((uint64_t)orig < len) {
		if (!alone) {
			return ipc__err(-EPROTO, u->text,
			                "the file was cut short (%lld of %zu "
			                "bytes) while in use",
			                (long long)orig, len);
		}
		if (ftruncate(s->fd, (off_t)len) < 0) {
			return ipc__errno(-errno, u->text,
			                  "extending the cut file to %zu",
			                  len);
		}
	}
	unsigned char *m =
	        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (m == MAP_FAILED) {
		return ipc__errno(-errno, u->text, "mmap of %zu bytes", len);
	}
	s->map = m;
	s->map_len = len;
	s->hdr = (struct mm_hdr *)m;
	s->rc.ring_size = ring_size;
	if (alone) {
		repair(m, ring_size, orig);
	}
	return 0;
}

static int
attach(struct mm_chan *s, const char *uri)
{
	size_t rs = s->rc.ring_size;
	unsigned char *mine = ring_mem(s->map, rs, s->side);
	unsigned char *theirs = ring_mem(s->map, rs, 1 - s->side);
	ipc_ring_reset_role(mine, IPC_RING_PRODUCER);
	ipc_ring_reset_role(theirs, IPC_RING_CONSUMER);
	int r = ipc_ring_attach(&s->rc.tx, mine, rs, IPC_RING_PRODUCER,
	                        &ipc__rchan_ring_ops, &s->rc);
	if (r == 0) {
		r = ipc_ring_attach(&s->rc.rx, theirs, rs, IPC_RING_CONSUMER,
		                    &ipc__rchan_ring_ops, &s->rc);
	}
	if (r < 0) {
		return ipc__err(-EPROTO, uri,
		                "the rings in the file are corrupt (the other "
		                "side is open, so they cannot be repaired)");
	}
	return 0;
}

static int
open_file(const char *path, int flags, unsigned mode, int mode_set,
          const char *uri, int *out)
{
	int base = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
	int fd = -1;
	if (flags & IPC_CREATE) {
		fd = open(path, base | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			if (fchmod(fd, mode) < 0) {
				int e = -errno;
				close(fd);
				return ipc__errno(e, uri, "fchmod");
			}
			*out = fd;
			return 1;
		}
		if (errno != EEXIST) {
			return ipc__errno(-errno, uri, "creating %s", path);
		}
	}
	fd = open(path, base);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP) {
			return ipc__err(-ELOOP, uri,
			                "%s is a symbolic link: not followed",
			                path);
		}
		return ipc__errno(-e, uri, "opening %s", path);
	}
	if ((flags & IPC_CREATE) && mode_set) {
		struct stat st;
		if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
		    S_ISREG(st.st_mode) && (st.st_mode & 0777) != mode) {
			fchmod(fd, mode); /* mode= says what it should be */
		}
	}
	*out = fd;
	return 0;
}

static int
mm_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct mm_chan *s = ipc__priv(ch);
	ipc__rchan_init(&s->rc, &mm_rc_ops, ch->uri);
	s->fd = -1;
	s->rc.drain_all = 1;
	s->rc.live_events = POLLIN;
	s->side = (flags & IPC_CREATE) ? 0 : 1;
	int size_set = ipc__opt_isset(u, "size");
	unsigned long long sz = ipc__opt_num(u, "size", MM_DEFAULT_SIZE);
	unsigned mode = (unsigned)ipc__opt_num(u, "mode", 0600);
	s->sync = (int)ipc__opt_num(u, "sync", SYNC_NONE);
	s->sync_ns = ipc__opt_num(u, "sync_ms", 100) * 1000000ull;
	int r;
	if (!ipc_ring_size_ok(sz)) {
		r = ipc__err(-EINVAL, u->text,
		             "size=%llu is not a power of two from %u to %llu",
		             sz, IPC_RING_MIN, IPC_RING_MAX);
		goto fail;
	}
	r = ipc__rchan_parse_spin(ipc__opt_str(u, "spin", NULL),
	                          MM_DEFAULT_SPIN_US, &s->rc.spin_ns, u->text);
	if (r < 0) {
		goto fail;
	}
	r = open_file(u->fspath, flags, mode, ipc__opt_isset(u, "mode"),
	              u->text, &s->fd);
	if (r < 0) {
		if (r == -ENOENT) {
			ipc__err(-ENOENT, u->text,
			         "%s does not exist (open it with IPC_CREATE "
			         "first)",
			         u->fspath);
		}
		goto fail;
	}
	struct stat st;
	r = check_file(s->fd, mode, u->text, &st);
	if (r < 0) {
		goto fail;
	}
	r = init_lock(s->fd, u->text);
	if (r < 0) {
		goto fail;
	}
	r = lock_byte(s->fd, MM_LOCK_SIDE(s->side), F_WRLCK);
	if (r < 0) {
		r = ipc__err(r == -EAGAIN || r == -EACCES ? -EBUSY : r,
		             u->text,
		             "side %c of this file is open in another process "
		             "(one process per side)",
		             s->side ? 'b' : 'a');
		goto fail_unlock;
	}
	int peer = 1 - s->side;
	int held = byte_held(s->fd, MM_LOCK_SIDE(peer));
	if (held < 0) {
		r = ipc__errno(held, u->text, "F_OFD_GETLK");
		goto fail_unlock;
	}
	r = prepare(s, u, flags, (size_t)sz, size_set, !held);
	if (r < 0) {
		goto fail_unlock;
	}
	r = attach(s, u->text);
	if (r < 0) {
		goto fail_unlock;
	}
	struct mm_side *me = &s->hdr->side[s->side];
	me->pid = (uint32_t)getpid();
	me->start = proc_start(getpid());
	s->peer_opens0 = atomic_load(&s->hdr->side[peer].opens);
	atomic_fetch_add(&me->opens, 1);
	syscall(SYS_futex, &me->opens, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
	if (s->sync != SYNC_NONE) {
		msync(s->map, MM_HDR, MS_SYNC);
	}
	lock_byte(s->fd, MM_LOCK_INIT, F_UNLCK);
	make_addrs(s, s->hdr->file_id);
	r = bind_dgram(s, 0, u->text);
	if (r == 0) {
		r = bind_dgram(s, 1, u->text);
	}
	if (r < 0) {
		goto fail;
	}
	if (held) {
		s->peer_seen = 1;
		s->peer_opens_live = s->peer_opens0;
		s->rc.live_fd = peer_pidfd(s);
	}
	s->last_sync = ipc__rchan_now_ns();
	ch->max_msg = ipc_ring_max_msg(s->rc.ring_size);
	/* Tell a polling peer we are here (a sender waiting for us). */
	mm_kick(&s->rc, 1, IPC_RING_CONSUMER);
	mm_kick(&s->rc, 1, IPC_RING_PRODUCER);
	return 0;
fail_unlock:
	if (s->fd >= 0) {
		lock_byte(s->fd, MM_LOCK_INIT, F_UNLCK);
	}
fail:
	mm_free(s);
	return r;
}

const struct ipc_driver ipc_driver_mmap = {
        .scheme = "mmap",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_ZEROCOPY |
                IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_PATH,
        .opts = mm_opts,
        .priv_size = sizeof(struct mm_chan),
        .open = mm_open,
        .send = mm_send,
        .recv = mm_recv,
        .close = mm_close,
        .pollfds = mm_pollfds,
        .ready = mm_ready,
        .wait = mm_wait,
        .reserve = mm_reserve,
        .commit = mm_commit,
        .acquire = mm_acquire,
        .release = mm_release,
        .fd = mm_fd,
};
