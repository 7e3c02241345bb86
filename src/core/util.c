/*
 * Small helpers shared by the core and drivers: deadlines, descriptor
 * setup, SIGPIPE-free writes, level-kept eventfds, name validation.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

static void
deadline_on(clockid_t clk, struct timespec *dl, int timeout_ms)
{
	clock_gettime(clk, dl);
	dl->tv_sec += timeout_ms / 1000;
	dl->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl->tv_nsec >= 1000000000L) {
		dl->tv_sec++;
		dl->tv_nsec -= 1000000000L;
	}
}

void
ipc__deadline(struct timespec *dl, int timeout_ms)
{
	deadline_on(CLOCK_MONOTONIC, dl, timeout_ms);
}

void
ipc__deadline_coarse(struct timespec *dl, int timeout_ms)
{
	deadline_on(CLOCK_MONOTONIC_COARSE, dl, timeout_ms);
}

int
ipc__remaining_ms(const struct timespec *dl)
{
	struct timespec now;

	if (dl == NULL) {
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ns = (long long)(dl->tv_sec - now.tv_sec) * 1000000000LL +
	               (dl->tv_nsec - now.tv_nsec);
	if (ns <= 0) {
		return 0;
	}
	long long ms = (ns + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int
ipc__fd_setup(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		return -errno;
	}
	int fdfl = fcntl(fd, F_GETFD);
	if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) {
		return -errno;
	}
	return 0;
}

/*
 * Block SIGPIPE in this thread around the write.  If the write raised one
 * (EPIPE), consume it so that it is never delivered -- unless the caller
 * had SIGPIPE blocked already and one was pending before the write, which
 * stays theirs.  Two system calls besides the write in the common case.
 */
ssize_t
ipc__writev_nosigpipe(int fd, const struct iovec *iov, int iovcnt)
{
	sigset_t pipe_set, old, pending;
	int was_pending = 0;
	ssize_t n;
	int err = 0;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	if (sigismember(&old, SIGPIPE)) {
		sigpending(&pending);
		was_pending = sigismember(&pending, SIGPIPE);
	}
	do {
		n = writev(fd, iov, iovcnt);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		err = errno;
		if (err == EPIPE && !was_pending) {
			static const struct timespec zero = {0, 0};
			while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
			       errno == EINTR) {
			}
		}
	}
	if (!sigismember(&old, SIGPIPE)) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return n < 0 ? -err : n;
}

void
ipc__efd_level(int fd, int *on, int want)
{
	uint64_t v = 1;

	want = want != 0;
	if (want == *on) {
		return;
	}
	if (want) {
		(void)!write(fd, &v, sizeof(v));
	} else {
		(void)!read(fd, &v, sizeof(v));
	}
	*on = want;
}

int
ipc__valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > 200) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-')) {
			return 0;
		}
	}
	return 1;
}

/* ------------------------------------------------- creation with mode -- */

struct umask0_job {
	int (*fn)(void *arg);
	void *arg;
	int r;   /* fn's result */
	int ran; /* fn ran in the helper thread */
};

static void *
umask0_thread(void *p)
{
	struct umask0_job *j = p;

	/* A private fs_struct: cwd, root and umask of this thread only. */
	if (unshare(CLONE_FS) == 0) {
		umask(0);
		j->r = j->fn(j->arg);
		j->ran = 1;
	}
	return NULL;
}

static pthread_mutex_t umask0_mu = PTHREAD_MUTEX_INITIALIZER;

int
ipc__umask0(int (*fn)(void *arg), void *arg)
{
	struct umask0_job j = {.fn = fn, .arg = arg};
	pthread_t th;
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&th, NULL, umask0_thread, &j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e == 0) {
		pthread_join(th, NULL);
		if (j.ran) {
			return j.r;
		}
	}
	/* No thread or no unshare: a process-wide section.  Files other
	 * threads create meanwhile would get umask 0; libipc's own
	 * creators are serialised here. */
	pthread_mutex_lock(&umask0_mu);
	mode_t m = umask(0);
	int r = fn(arg);
	umask(m);
	pthread_mutex_unlock(&umask0_mu);
	return r;
}
