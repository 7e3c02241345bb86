/*
 * Facts about processes: pidfds and signal masks from /proc; this
 * process's signals claimed by a channel.  See proc.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "driver.h"
#include "proc.h"

int
ipc__pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0) {
			(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
		}
	}
	return fd;
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

int
ipc__pidfd_dead(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	return pidfd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Read the hexadecimal mask after "key:\t" in a /proc status file. */
static int
status_mask(const char *path, const char *key, uint64_t *out)
{
	char line[256];
	size_t kl = strlen(key);
	int found = 0;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		return -errno;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *end;
			errno = 0;
			unsigned long long v =
			        strtoull(line + kl + 1, &end, 16);
			if (errno == 0 && end != line + kl + 1) {
				*out = v;
				found = 1;
			}
			break;
		}
	}
	fclose(f);
	return found ? 0 : -EIO;
}

int
ipc__proc_sig_blocked(pid_t pid, int signo, pid_t skip_tid, pid_t *tid)
{
	char path[96];
	uint64_t bit = (uint64_t)1 << (signo - 1), m;
	struct dirent *de;
	int r, ok = 1;

	*tid = 0;
	if (signo < 1 || signo > 64) {
		return -EINVAL;
	}
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	r = status_mask(path, "SigCgt", &m);
	if (r < 0) {
		return r == -ENOENT ? -ESRCH : r;
	}
	if (m & bit) {
		return 0;
	}
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL) {
		return errno == ENOENT ? -ESRCH : -errno;
	}
	while (ok && (de = readdir(d)) != NULL) {
		char *end;
		long t = strtol(de->d_name, &end, 10);
		if (*end != '\0' || t <= 0 || (pid_t)t == skip_tid) {
			continue;
		}
		snprintf(path, sizeof path, "/proc/%d/task/%ld/status",
		         (int)pid, t);
		r = status_mask(path, "SigBlk", &m);
		if (r == -ENOENT) {
			continue; /* the thread exited meanwhile */
		}
		if (r < 0) {
			closedir(d);
			return r;
		}
		if (!(m & bit)) {
			*tid = (pid_t)t;
			ok = 0;
		}
	}
	closedir(d);
	return ok;
}

/* ------------------------------------------ signals claimed by a channel --
 */

/* One slot per signal number: who holds it and what to restore. */
static struct {
	pid_t pid; /* process holding it (a forked child does not) */
	int was_blocked;
} g_slot[65];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

int
ipc__sig_claim(const char *uri, int signo)
{
	struct sigaction sa;
	sigset_t set, old;
	pid_t tid = 0, me = getpid();
	int r;

	pthread_mutex_lock(&g_mu);
	if (g_slot[signo].pid == me) {
		pthread_mutex_unlock(&g_mu);
		return ipc__err(-EBUSY, uri,
		                "signal %d carries another signal:// channel "
		                "of this process already: choose another with "
		                "signo=",
		                signo);
	}
	if (sigaction(signo, NULL, &sa) != 0) {
		r = ipc__errno(-errno, uri, "sigaction(%d)", signo);
		goto out;
	}
	if (!(sa.sa_flags & SA_SIGINFO) &&
	    (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)) {
		r = 0;
	} else {
		r = ipc__err(-EBUSY, uri,
		             "signal %d has a handler installed in this "
		             "process: choose another with signo=",
		             signo);
		goto out;
	}
	r = ipc__proc_sig_blocked(me, signo, (pid_t)syscall(SYS_gettid), &tid);
	if (r == 0) {
		r = ipc__err(-EBUSY, uri,
		             "thread %d of this process does not block signal "
		             "%d: block it in every thread, before starting "
		             "threads (docs/signal.md)",
		             (int)tid, signo);
		goto out;
	}
	/* /proc unreadable (r < 0): nothing more can be seen; go on. */
	sigemptyset(&set);
	sigaddset(&set, signo);
	r = pthread_sigmask(SIG_BLOCK, &set, &old);
	if (r != 0) {
		r = ipc__errno(-r, uri, "pthread_sigmask");
		goto out;
	}
	g_slot[signo].pid = me;
	g_slot[signo].was_blocked = sigismember(&old, signo);
	r = 0;
out:
	pthread_mutex_unlock(&g_mu);
	return r;
}

/* Drop what is pending on signo (the channel's descriptor is closed). */
static void
drain_pending(int signo)
{
	static const struct timespec zero = {0, 0};
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, signo);
	for (int i = 0; i < 1 << 20; i++) {
		if (sigpending(&pend) != 0 || !sigismember(&pend, signo)) {
			break;
		}
		if (sigtimedwait(&set, NULL, &zero) < 0 && errno != EINTR) {
			break;
		}
	}
}

/* The channel on signo closes.  quiet: the peer can send nothing more
 * (it closed, died, or never came). */
void
ipc__sig_release(int signo, int quiet)
{
	pthread_mutex_lock(&g_mu);
	if (g_slot[signo].pid == getpid()) {
		drain_pending(signo);
		if (!g_slot[signo].was_blocked) {
			sigset_t set;
			if (!quiet) {
				/* A late signal from a live peer must not
				 * terminate the process once it is
				 * unblocked. */
				struct sigaction sa, old;
				memset(&sa, 0, sizeof sa);
				sa.sa_handler = SIG_IGN;
				sigemptyset(&sa.sa_mask);
				if (sigaction(signo, NULL, &old) == 0 &&
				    !(old.sa_flags & SA_SIGINFO) &&
				    old.sa_handler == SIG_DFL) {
					(void)sigaction(signo, &sa, NULL);
				}
			}
			sigemptyset(&set);
			sigaddset(&set, signo);
			(void)pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		}
		g_slot[signo].pid = 0;
	}
	pthread_mutex_unlock(&g_mu);
}
