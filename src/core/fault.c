/*
 * The wrappers of the fault-injection indirection (core/fault.h): each
 * calls the real function unless the armed fault is due at its call site.
 * This file is compiled only into libipc-fault, and without
 * fault_redirect.h: the names here are the real calls.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/random.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "fault.h"
#define IPC_FAULT_WRAPPERS
#include "fault_redirect.h"

#define RA __builtin_return_address(0)

enum {
	F_EINTR = IPC_FAULT_EINTR,
	F_EAGAIN = IPC_FAULT_EAGAIN,
	F_ENOMEM = IPC_FAULT_ENOMEM,
	F_EMFILE = IPC_FAULT_EMFILE,
	F_ENFILE = IPC_FAULT_ENFILE,
	F_ENOSPC = IPC_FAULT_ENOSPC,
	F_EPERM = IPC_FAULT_EPERM,
	F_ENOBUFS = IPC_FAULT_ENOBUFS,
	F_EIO = IPC_FAULT_EIO,
	F_SHORT = IPC_FAULT_SHORT,
	F_NEWFD = F_EMFILE | F_ENFILE | F_ENOMEM,
};

static const struct {
	const char *name;
	int err;
} kinds[IPC_FAULT_NKINDS] = {
        {"EINTR", EINTR},   {"EAGAIN", EAGAIN},   {"ENOMEM", ENOMEM},
        {"EMFILE", EMFILE}, {"ENFILE", ENFILE},   {"ENOSPC", ENOSPC},
        {"EPERM", EPERM},   {"ENOBUFS", ENOBUFS}, {"EIO", EIO},
        {"short", 0},
};

static int
kind_index(unsigned fault)
{
	for (int i = 0; i < IPC_FAULT_NKINDS; i++) {
		if (fault == 1u << i) {
			return i;
		}
	}
	return -1;
}

const char *
ipc__fault_name(unsigned fault)
{
	int i = kind_index(fault);
	return i < 0 ? "?" : kinds[i].name;
}

int
ipc__fault_errno(unsigned fault)
{
	int i = kind_index(fault);
	return i < 0 ? 0 : kinds[i].err;
}

/* The state: counting, or one armed site; a plain flag keeps the
 * wrappers cheap when neither is on. */
#define MAX_SITES 2048
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ipc_fault_site g_sites[MAX_SITES];
static size_t g_nsites;
static atomic_int g_on;
static int g_counting;
static void *g_site;
static unsigned g_fault;
static atomic_int g_fired;

void
ipc__fault_count(int on)
{
	pthread_mutex_lock(&g_lock);
	g_counting = on;
	if (on) {
		g_nsites = 0;
	}
	atomic_store(&g_on, g_counting || g_site != NULL);
	pthread_mutex_unlock(&g_lock);
}

size_t
ipc__fault_sites(struct ipc_fault_site *out, size_t max)
{
	pthread_mutex_lock(&g_lock);
	size_t n = g_nsites;
	memcpy(out, g_sites, (n < max ? n : max) * sizeof *out);
	pthread_mutex_unlock(&g_lock);
	return n;
}

void
ipc__fault_arm(void *site, unsigned fault)
{
	pthread_mutex_lock(&g_lock);
	g_site = site;
	g_fault = fault;
	atomic_store(&g_fired, 0);
	atomic_store(&g_on, g_counting || g_site != NULL);
	pthread_mutex_unlock(&g_lock);
}

int
ipc__fault_fired(void)
{
	return atomic_load(&g_fired);
}

/* Whether this call is watched at all (cheap). */
static inline int
watched(void *ra)
{
	if (!atomic_load_explicit(&g_on, memory_order_relaxed)) {
		return 0;
	}
	pthread_mutex_lock(&g_lock);
	int w = g_counting || ra == g_site;
	pthread_mutex_unlock(&g_lock);
	return w;
}

/* One call at site ra, with the faults plausible for it: counts it, and
 * returns the fault to inject now (0: none). */
static unsigned
hit(void *ra, const char *fn, unsigned plausible)
{
	unsigned inject = 0;

	pthread_mutex_lock(&g_lock);
	if (g_counting) {
		size_t i = 0;
		while (i < g_nsites && g_sites[i].site != ra) {
			i++;
		}
		if (i == g_nsites && i < MAX_SITES) {
			g_sites[i] = (struct ipc_fault_site){ra, fn, 0, 0};
			g_nsites++;
		}
		if (i < g_nsites) {
			g_sites[i].faults |= plausible;
			g_sites[i].hits++;
		}
	}
	if (ra == g_site && (plausible & g_fault) != 0 &&
	    !atomic_load(&g_fired)) {
		atomic_store(&g_fired, 1);
		inject = g_fault;
	}
	pthread_mutex_unlock(&g_lock);
	return inject;
}

/* ---------------------------------------------------- plausible faults -- */

static int
nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

/* Faults of a transfer on fd: EINTR where it may block, EAGAIN where it
 * may not, a short transfer on byte streams (and writes to files), ENOSPC
 * and EIO on files, ENOBUFS/ENOMEM on sockets. */
static unsigned
io_faults(int fd, int dontwait, int writing, size_t len)
{
	struct stat st;
	unsigned f;

	if (fstat(fd, &st) != 0) {
		return 0;
	}
	if (S_ISREG(st.st_mode)) {
		f = writing ? F_ENOSPC | F_EIO : F_EIO;
		return f | (writing && len >= 2 ? F_SHORT : 0);
	}
	f = dontwait || nonblocking(fd) ? F_EAGAIN : F_EINTR;
	int stream = S_ISFIFO(st.st_mode);
	if (S_ISSOCK(st.st_mode)) {
		int type = 0;
		socklen_t n = sizeof type;
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n);
		stream = type == SOCK_STREAM;
		f |= writing ? F_ENOBUFS : F_ENOMEM;
	}
	return f | (stream && len >= 2 ? F_SHORT : 0);
}

static size_t
iov_total(const struct iovec *v, size_t n)
{
	size_t t = 0;
	for (size_t i = 0; i < n; i++) {
		t += v[i].iov_len;
	}
	return t;
}

/* The first half of an iovec array, in out (at most 64 entries). */
static size_t
iov_half(const struct iovec *v, size_t n, struct iovec *out)
{
	size_t want = iov_total(v, n) / 2, k = 0;

	for (size_t i = 0; i < n && k < 64 && want > 0; i++) {
		out[k] = v[i];
		if (out[k].iov_len > want) {
			out[k].iov_len = want;
		}
		want -= out[k].iov_len;
		k++;
	}
	return k;
}

#define FAIL_WITH(f, rv)                                                      \
	do {                                                                  \
		errno = ipc__fault_errno(f);                                  \
		return rv;                                                    \
	} while (0)

/* A call that can only fail: f the faults plausible here. */
#define SIMPLE(rv, expr, faults)                                              \
	do {                                                                  \
		void *ra_ = RA;                                               \
		if (watched(ra_)) {                                           \
			unsigned f_ = hit(ra_, __func__ + 8, (faults));       \
			if (f_ != 0) {                                        \
				FAIL_WITH(f_, rv);                            \
			}                                                     \
		}                                                             \
		return expr;                                                  \
	} while (0)

/* ------------------------------------------------------------ wrappers -- */

/* open and openat: a new descriptor, ENOSPC where a file is made, EINTR
 * where a FIFO's open waits for the other end. */
static int
open_fault(void *ra, const char *fn, int d, const char *p, int fl)
{
	struct stat st;
	unsigned f = F_NEWFD | (fl & O_CREAT ? F_ENOSPC : 0);

	if (!(fl & (O_NONBLOCK | O_PATH)) && fstatat(d, p, &st, 0) == 0 &&
	    S_ISFIFO(st.st_mode)) {
		f |= F_EINTR;
	}
	return (int)ipc__fault_errno(hit(ra, fn, f));
}

#define OPEN_MODE(fl, m)                                                      \
	do {                                                                  \
		if (((fl)&O_CREAT) || ((fl)&O_TMPFILE) == O_TMPFILE) {        \
			va_list ap;                                           \
			va_start(ap, fl);                                     \
			m = (mode_t)va_arg(ap, int);                          \
			va_end(ap);                                           \
		}                                                             \
	} while (0)

int
ipc__fi_open(const char *p, int fl, ...)
{
	mode_t m = 0;
	OPEN_MODE(fl, m);
	void *ra = RA;
	int e = watched(ra) ? open_fault(ra, "open", AT_FDCWD, p, fl) : 0;
	if (e != 0) {
		errno = e;
		return -1;
	}
	return open(p, fl, m);
}

int
ipc__fi_openat(int d, const char *p, int fl, ...)
{
	mode_t m = 0;
	OPEN_MODE(fl, m);
	void *ra = RA;
	int e = watched(ra) ? open_fault(ra, "openat", d, p, fl) : 0;
	if (e != 0) {
		errno = e;
		return -1;
	}
	return openat(d, p, fl, m);
}

int
ipc__fi_shm_open(const char *p, int fl, mode_t m)
{
	SIMPLE(-1, shm_open(p, fl, m),
	       F_NEWFD | (fl & O_CREAT ? F_ENOSPC : 0));
}

int
ipc__fi_memfd_create(const char *n, unsigned fl)
{
	SIMPLE(-1, memfd_create(n, fl), F_NEWFD);
}

void *
ipc__fi_mmap(void *a, size_t n, int pr, int fl, int fd, off_t o)
{
	SIMPLE(MAP_FAILED, mmap(a, n, pr, fl, fd, o), F_ENOMEM);
}

int
ipc__fi_ftruncate(int fd, off_t n)
{
	SIMPLE(-1, ftruncate(fd, n), F_ENOSPC); /* EINTR: not on tmpfs */
}

int
ipc__fi_fallocate(int fd, int m, off_t o, off_t n)
{
	SIMPLE(-1, fallocate(fd, m, o, n), F_EINTR | F_ENOSPC);
}

int
ipc__fi_posix_fallocate(int fd, off_t o, off_t n)
{
	void *ra = RA;
	if (watched(ra)) {
		unsigned f = hit(ra, "posix_fallocate", F_EINTR | F_ENOSPC);
		if (f != 0) {
			return ipc__fault_errno(f);
		}
	}
	return posix_fallocate(fd, o, n);
}

int
ipc__fi_fsync(int fd)
{
	SIMPLE(-1, fsync(fd), F_EIO | F_ENOSPC);
}

int
ipc__fi_fdatasync(int fd)
{
	SIMPLE(-1, fdatasync(fd), F_EIO | F_ENOSPC);
}

int
ipc__fi_msync(void *a, size_t n, int fl)
{
	SIMPLE(-1, msync(a, n, fl), fl & MS_SYNC ? F_EIO : 0);
}

int
ipc__fi_socket(int d, int t, int p)
{
	SIMPLE(-1, socket(d, t, p), F_NEWFD | F_ENOBUFS);
}

int
ipc__fi_socketpair(int d, int t, int p, int sv[2])
{
	SIMPLE(-1, socketpair(d, t, p, sv), F_NEWFD);
}

int
ipc__fi_bind(int fd, const struct sockaddr *a, socklen_t n)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)a;
	int path = a->sa_family == AF_UNIX &&
	           n > offsetof(struct sockaddr_un, sun_path) &&
	           un->sun_path[0] != '\0';
	SIMPLE(-1, bind(fd, a, n), F_ENOMEM | (path ? F_ENOSPC : 0));
}

int
ipc__fi_connect(int fd, const struct sockaddr *a, socklen_t n)
{
	void *ra = RA;
	if (watched(ra)) {
		/* EAGAIN: a full backlog of a Unix stream or seqpacket
		 * listener (a datagram connect only records the address). */
		int type = 0;
		socklen_t tl = sizeof type;
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
		unsigned f = nonblocking(fd)
		                     ? (a->sa_family == AF_UNIX &&
		                                        type != SOCK_DGRAM
		                                ? F_EAGAIN
		                                : 0)
		                     : F_EINTR;
		f = hit(ra, "connect", f);
		if (f != 0) {
			FAIL_WITH(f, -1);
		}
	}
	return connect(fd, a, n);
}

int
ipc__fi_accept(int fd, struct sockaddr *a, socklen_t *n)
{
	SIMPLE(-1, accept(fd, a, n),
	       F_NEWFD | F_ENOBUFS | (nonblocking(fd) ? F_EAGAIN : F_EINTR));
}

int
ipc__fi_accept4(int fd, struct sockaddr *a, socklen_t *n, int fl)
{
	SIMPLE(-1, accept4(fd, a, n, fl),
	       F_NEWFD | F_ENOBUFS | (nonblocking(fd) ? F_EAGAIN : F_EINTR));
}

/* sendmsg and recvmsg: the fault due now; for a short one, h becomes the
 * same message with half its bytes (over v). */
static unsigned
msg_fault(void *ra, const char *fn, int fd, const struct msghdr *m, int fl,
          int writing, struct msghdr *h, struct iovec *v)
{
	if (!watched(ra)) {
		return 0;
	}
	size_t len = iov_total(m->msg_iov, m->msg_iovlen);
	unsigned f =
	        hit(ra, fn, io_faults(fd, fl & MSG_DONTWAIT, writing, len));
	if (f == F_SHORT) {
		*h = *m;
		h->msg_iov = v;
		h->msg_iovlen = iov_half(m->msg_iov, m->msg_iovlen, v);
	}
	return f;
}

ssize_t
ipc__fi_sendmsg(int fd, const struct msghdr *m, int fl)
{
	struct iovec v[64];
	struct msghdr h;
	unsigned f = msg_fault(RA, "sendmsg", fd, m, fl, 1, &h, v);

	if (f == F_SHORT) {
		return sendmsg(fd, &h, fl);
	}
	if (f != 0) {
		FAIL_WITH(f, -1);
	}
	return sendmsg(fd, m, fl);
}

ssize_t
ipc__fi_recvmsg(int fd, struct msghdr *m, int fl)
{
	struct iovec v[64];
	struct msghdr h;
	unsigned f = msg_fault(RA, "recvmsg", fd, m, fl, 0, &h, v);

	if (f == F_SHORT) {
		ssize_t r = recvmsg(fd, &h, fl);
		m->msg_namelen = h.msg_namelen;
		m->msg_controllen = h.msg_controllen;
		m->msg_flags = h.msg_flags;
		return r;
	}
	if (f != 0) {
		FAIL_WITH(f, -1);
	}
	return recvmsg(fd, m, fl);
}

/* send, recv, read, write and their kin: n halved for a short one. */
#define TRANSFER(name, call, fd, n, dontwait, writing)                        \
	do {                                                                  \
		void *ra_ = RA;                                               \
		if (watched(ra_)) {                                           \
			unsigned f_ =                                         \
			        hit(ra_, name,                                \
			            io_faults(fd, dontwait, writing, n));     \
			if (f_ == F_SHORT) {                                  \
				n /= 2;                                       \
			} else if (f_ != 0) {                                 \
				FAIL_WITH(f_, -1);                            \
			}                                                     \
		}                                                             \
		return call;                                                  \
	} while (0)

ssize_t
ipc__fi_send(int fd, const void *b, size_t n, int fl)
{
	TRANSFER("send", send(fd, b, n, fl), fd, n, fl & MSG_DONTWAIT, 1);
}

ssize_t
ipc__fi_recv(int fd, void *b, size_t n, int fl)
{
	TRANSFER("recv", recv(fd, b, n, fl), fd, n, fl & MSG_DONTWAIT, 0);
}

ssize_t
ipc__fi_sendto(int fd, const void *b, size_t n, int fl,
               const struct sockaddr *a, socklen_t an)
{
	TRANSFER("sendto", sendto(fd, b, n, fl, a, an), fd, n,
	         fl & MSG_DONTWAIT, 1);
}

ssize_t
ipc__fi_read(int fd, void *b, size_t n)
{
	TRANSFER("read", read(fd, b, n), fd, n, 0, 0);
}

ssize_t
ipc__fi_write(int fd, const void *b, size_t n)
{
	TRANSFER("write", write(fd, b, n), fd, n, 0, 1);
}

ssize_t
ipc__fi_pread(int fd, void *b, size_t n, off_t o)
{
	TRANSFER("pread", pread(fd, b, n, o), fd, n, 0, 0);
}

ssize_t
ipc__fi_pwrite(int fd, const void *b, size_t n, off_t o)
{
	TRANSFER("pwrite", pwrite(fd, b, n, o), fd, n, 0, 1);
}

static ssize_t
vector(int fd, const struct iovec *v, int n, int writing, void *ra)
{
	if (watched(ra)) {
		size_t len = iov_total(v, (size_t)n);
		unsigned f = hit(ra, writing ? "writev" : "readv",
		                 io_faults(fd, 0, writing, len));
		if (f == F_SHORT) {
			struct iovec h[64];
			int k = (int)iov_half(v, (size_t)n, h);
			return writing ? writev(fd, h, k) : readv(fd, h, k);
		}
		if (f != 0) {
			FAIL_WITH(f, -1);
		}
	}
	return writing ? writev(fd, v, n) : readv(fd, v, n);
}

ssize_t
ipc__fi_readv(int fd, const struct iovec *v, int n)
{
	return vector(fd, v, n, 0, RA);
}

ssize_t
ipc__fi_writev(int fd, const struct iovec *v, int n)
{
	return vector(fd, v, n, 1, RA);
}

/* close(2) releases the descriptor even when it reports EINTR or EIO, so
 * the fault comes after the real call: a caller that retries would close
 * somebody else's descriptor. */
int
ipc__fi_close(int fd)
{
	void *ra = RA;
	unsigned f = watched(ra) ? hit(ra, "close", F_EINTR | F_EIO) : 0;
	int r = close(fd);
	if (f != 0 && r == 0) {
		FAIL_WITH(f, -1);
	}
	return r;
}

long
ipc__fi_syscall(long nr, ...)
{
	va_list ap;
	long a[6];

	va_start(ap, nr);
	for (int i = 0; i < 6; i++) {
		a[i] = va_arg(ap, long);
	}
	va_end(ap);
	void *ra = RA;
	if (watched(ra)) {
		unsigned f = 0;
		const char *name = "syscall";
		if (nr == SYS_futex) {
			int op = (int)a[1] & FUTEX_CMD_MASK;
			name = "futex";
			if (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET) {
				f = F_EINTR | F_EAGAIN;
			}
		} else if (nr == SYS_pidfd_open) {
			name = "pidfd_open";
			f = F_NEWFD;
		} else if (nr == SYS_pidfd_send_signal) {
			name = "pidfd_send_signal";
			f = F_EAGAIN | F_EPERM;
		}
		f = hit(ra, name, f);
		if (f != 0) {
			FAIL_WITH(f, -1);
		}
	}
	return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* The sets this process has an undo structure for: the kernel allocates
 * one at the first SEM_UNDO operation on a set, and only then can that
 * fail for lack of memory. */
static int g_undo[64];
static size_t g_nundo;

static int
has_undo(int id)
{
	for (size_t i = 0; i < g_nundo; i++) {
		if (g_undo[i] == id) {
			return 1;
		}
	}
	return 0;
}

/* What a semaphore operation may meet: EINTR where it may block, ENOMEM
 * where it makes the undo structure. */
static unsigned
sem_faults(int id, const struct sembuf *s, size_t n)
{
	unsigned f = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(s[i].sem_flg & IPC_NOWAIT) && s[i].sem_op <= 0) {
			f |= F_EINTR;
		}
		if ((s[i].sem_flg & SEM_UNDO) && !has_undo(id)) {
			f |= F_ENOMEM;
		}
	}
	return f;
}

static int
sem_done(int id, const struct sembuf *s, size_t n, int r)
{
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (s[i].sem_flg & SEM_UNDO) {
			pthread_mutex_lock(&g_lock);
			if (!has_undo(id) && g_nundo < 64) {
				g_undo[g_nundo++] = id;
			}
			pthread_mutex_unlock(&g_lock);
			break;
		}
	}
	return r;
}

int
ipc__fi_semop(int id, struct sembuf *s, size_t n)
{
	SIMPLE(-1, sem_done(id, s, n, semop(id, s, n)), sem_faults(id, s, n));
}

int
ipc__fi_semtimedop(int id, struct sembuf *s, size_t n,
                   const struct timespec *t)
{
	SIMPLE(-1, sem_done(id, s, n, semtimedop(id, s, n, t)),
	       sem_faults(id, s, n));
}

int
ipc__fi_semget(key_t k, int n, int fl)
{
	SIMPLE(-1, semget(k, n, fl), fl & IPC_CREAT ? F_ENOSPC | F_ENOMEM : 0);
}

int
ipc__fi_msgsnd(int id, const void *m, size_t n, int fl)
{
	SIMPLE(-1, msgsnd(id, m, n, fl),
	       F_ENOMEM | (fl & IPC_NOWAIT ? 0 : F_EINTR));
}

ssize_t
ipc__fi_msgrcv(int id, void *m, size_t n, long t, int fl)
{
	SIMPLE(-1, msgrcv(id, m, n, t, fl), fl & IPC_NOWAIT ? 0 : F_EINTR);
}

int
ipc__fi_msgget(key_t k, int fl)
{
	SIMPLE(-1, msgget(k, fl), fl & IPC_CREAT ? F_ENOSPC | F_ENOMEM : 0);
}

int
ipc__fi_shmget(key_t k, size_t n, int fl)
{
	SIMPLE(-1, shmget(k, n, fl), fl & IPC_CREAT ? F_ENOSPC | F_ENOMEM : 0);
}

void *
ipc__fi_shmat(int id, const void *a, int fl)
{
	SIMPLE((void *)-1, shmat(id, a, fl), F_ENOMEM);
}

mqd_t
ipc__fi_mq_open(const char *n, int fl, ...)
{
	mode_t m = 0;
	struct mq_attr *at = NULL;
	if (fl & O_CREAT) {
		va_list ap;
		va_start(ap, fl);
		m = (mode_t)va_arg(ap, int);
		at = va_arg(ap, struct mq_attr *);
		va_end(ap);
	}
	SIMPLE((mqd_t)-1,
	       fl & O_CREAT ? mq_open(n, fl, m, at) : mq_open(n, fl),
	       F_NEWFD | (fl & O_CREAT ? F_ENOSPC : 0));
}

static unsigned
mq_faults(mqd_t q)
{
	struct mq_attr at;
	if (mq_getattr(q, &at) != 0) {
		return 0;
	}
	return at.mq_flags & O_NONBLOCK ? F_EAGAIN : F_EINTR;
}

int
ipc__fi_mq_send(mqd_t q, const char *b, size_t n, unsigned p)
{
	SIMPLE(-1, mq_send(q, b, n, p), mq_faults(q));
}

int
ipc__fi_mq_timedsend(mqd_t q, const char *b, size_t n, unsigned p,
                     const struct timespec *t)
{
	SIMPLE(-1, mq_timedsend(q, b, n, p, t), mq_faults(q));
}

ssize_t
ipc__fi_mq_receive(mqd_t q, char *b, size_t n, unsigned *p)
{
	SIMPLE(-1, mq_receive(q, b, n, p), mq_faults(q));
}

ssize_t
ipc__fi_mq_timedreceive(mqd_t q, char *b, size_t n, unsigned *p,
                        const struct timespec *t)
{
	SIMPLE(-1, mq_timedreceive(q, b, n, p, t), mq_faults(q));
}

int
ipc__fi_epoll_create1(int fl)
{
	SIMPLE(-1, epoll_create1(fl), F_NEWFD);
}

int
ipc__fi_epoll_ctl(int e, int op, int fd, struct epoll_event *ev)
{
	SIMPLE(-1, epoll_ctl(e, op, fd, ev),
	       op == EPOLL_CTL_DEL
	               ? 0
	               : F_ENOMEM | (op == EPOLL_CTL_ADD ? F_ENOSPC : 0));
}

int
ipc__fi_epoll_wait(int e, struct epoll_event *ev, int n, int t)
{
	SIMPLE(-1, epoll_wait(e, ev, n, t), t != 0 ? F_EINTR : 0);
}

int
ipc__fi_eventfd(unsigned v, int fl)
{
	SIMPLE(-1, eventfd(v, fl), F_NEWFD);
}

int
ipc__fi_signalfd(int fd, const sigset_t *m, int fl)
{
	SIMPLE(-1, signalfd(fd, m, fl), fd < 0 ? F_NEWFD : 0);
}

int
ipc__fi_poll(struct pollfd *p, nfds_t n, int t)
{
	SIMPLE(-1, poll(p, n, t), F_ENOMEM | (t != 0 ? F_EINTR : 0));
}

int
ipc__fi_pipe2(int fds[2], int fl)
{
	SIMPLE(-1, pipe2(fds, fl), F_NEWFD);
}

int
ipc__fi_mkfifo(const char *p, mode_t m)
{
	SIMPLE(-1, mkfifo(p, m), F_ENOSPC);
}

int
ipc__fi_mkdir(const char *p, mode_t m)
{
	SIMPLE(-1, mkdir(p, m), F_ENOSPC);
}

int
ipc__fi_fstat(int fd, struct stat *st)
{
	SIMPLE(-1, fstat(fd, st), F_ENOMEM);
}

int
ipc__fi_lstat(const char *p, struct stat *st)
{
	SIMPLE(-1, lstat(p, st), F_ENOMEM);
}

int
ipc__fi_stat(const char *p, struct stat *st)
{
	SIMPLE(-1, stat(p, st), F_ENOMEM);
}

int
ipc__fi_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	unsigned f = 0;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		f = F_EMFILE;
	} else if (cmd == F_SETLKW || cmd == F_OFD_SETLKW) {
		f = F_EINTR;
	}
	SIMPLE(-1, fcntl(fd, cmd, arg), f);
}

int
ipc__fi_fchmod(int fd, mode_t m)
{
	SIMPLE(-1, fchmod(fd, m), F_EPERM);
}

int
ipc__fi_getsockopt(int fd, int l, int o, void *v, socklen_t *n)
{
	SIMPLE(-1, getsockopt(fd, l, o, v, n), F_ENOBUFS);
}

int
ipc__fi_setsockopt(int fd, int l, int o, const void *v, socklen_t n)
{
	SIMPLE(-1, setsockopt(fd, l, o, v, n), F_ENOBUFS);
}

int
ipc__fi_getsockname(int fd, struct sockaddr *a, socklen_t *n)
{
	SIMPLE(-1, getsockname(fd, a, n), F_ENOBUFS);
}

int
ipc__fi_getpeername(int fd, struct sockaddr *a, socklen_t *n)
{
	SIMPLE(-1, getpeername(fd, a, n), F_ENOBUFS);
}

/* kill(pid, 0) asks whether a process lives: a fault there would change
 * the answer, not fail the call. */
int
ipc__fi_kill(pid_t p, int s)
{
	SIMPLE(-1, kill(p, s), s != 0 ? F_EPERM : 0);
}

int
ipc__fi_sigqueue(pid_t p, int s, const union sigval v)
{
	SIMPLE(-1, sigqueue(p, s, v), F_EAGAIN | F_EPERM);
}

ssize_t
ipc__fi_getrandom(void *b, size_t n, unsigned fl)
{
	SIMPLE(-1, getrandom(b, n, fl),
	       fl & GRND_NONBLOCK ? F_EAGAIN : F_EINTR);
}

int
ipc__fi_pthread_create(pthread_t *t, const pthread_attr_t *a,
                       void *(*f)(void *), void *arg)
{
	void *ra = RA;
	if (watched(ra) && hit(ra, "pthread_create", F_EAGAIN) != 0) {
		return EAGAIN;
	}
	return pthread_create(t, a, f, arg);
}

void *
ipc__fi_malloc(size_t n)
{
	SIMPLE(NULL, malloc(n), F_ENOMEM);
}

void *
ipc__fi_calloc(size_t k, size_t n)
{
	SIMPLE(NULL, calloc(k, n), F_ENOMEM);
}

void *
ipc__fi_realloc(void *p, size_t n)
{
	SIMPLE(NULL, realloc(p, n), n != 0 ? F_ENOMEM : 0);
}

char *
ipc__fi_strdup(const char *s)
{
	SIMPLE(NULL, strdup(s), F_ENOMEM);
}

char *
ipc__fi_strndup(const char *s, size_t n)
{
	SIMPLE(NULL, strndup(s, n), F_ENOMEM);
}

/* flock(2) blocks unless LOCK_NB: EINTR there. */
int
ipc__fi_flock(int fd, int op)
{
	SIMPLE(-1, flock(fd, op),
	       (op & LOCK_NB) || (op & ~LOCK_NB) == LOCK_UN ? 0 : F_EINTR);
}
