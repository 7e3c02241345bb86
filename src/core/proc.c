/*
 * Facts about processes: pidfds and signal masks from /proc.  See proc.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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
			unsigned long long v = strtoull(line + kl + 1, &end, 16);
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
