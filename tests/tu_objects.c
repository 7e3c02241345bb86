/*
 * Test helpers that count what a test leaves behind: descriptors, and the
 * kernel objects libipc makes (POSIX queues and shared memory, System V
 * objects, socket files, FIFOs, abstract sockets), with a private IPC
 * namespace for the suites that want one; see testutil.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* ----------------------------------------------------------- counting -- */

int
tu_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL) {
		return -errno;
	}
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == self) {
			continue;
		}
		n++;
	}
	closedir(d);
	return n;
}

void
tu_fd_describe(char *buf, size_t n)
{
	DIR *d = opendir("/proc/self/fd");
	size_t off = 0;

	buf[0] = '\0';
	if (d == NULL) {
		return;
	}
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL && off + 1 < n) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == self) {
			continue;
		}
		char path[300], target[256];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		target[len < 0 ? 0 : len] = '\0';
		int w = snprintf(buf + off, n - off, "%s%s->%s",
		                 off ? ", " : "", e->d_name, target);
		if (w < 0) {
			break;
		}
		off += (size_t)w;
	}
	closedir(d);
}

static char g_mqdir[PATH_MAX];
static int g_mqdir_known;
static int g_isolated;
static pid_t g_isolator;

const char *
tu_mq_dir(void)
{
	if (!g_mqdir_known) {
		FILE *f = fopen("/proc/self/mounts", "r");
		char dev[256], dir[PATH_MAX], type[64];

		g_mqdir_known = 1;
		while (f != NULL && fscanf(f, "%255s %4095s %63s %*[^\n]", dev,
		                           dir, type) == 3) {
			if (strcmp(type, "mqueue") == 0) {
				snprintf(g_mqdir, sizeof g_mqdir, "%s", dir);
				break;
			}
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	return g_mqdir[0] != '\0' ? g_mqdir : NULL;
}

static void
unmount_private_mq(void)
{
	if (getpid() == g_isolator && g_mqdir[0] != '\0') {
		umount2(g_mqdir, MNT_DETACH);
		rmdir(g_mqdir);
	}
}

int
tu_isolate_ipc(const char **why)
{
	static char dir[64];

	*why = "";
	if (geteuid() != 0) {
		*why = "not root: System V ids are attributed by pid";
		return 0;
	}
	if (unshare(CLONE_NEWIPC | CLONE_NEWNS) != 0) {
		*why = "unshare(CLONE_NEWIPC|CLONE_NEWNS) refused: System V "
		       "ids are attributed by pid";
		return 0;
	}
	g_isolated = 1;
	g_isolator = getpid();
	/* Our mounts must not propagate back to the parent namespace. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
		g_mqdir_known = 1;
		g_mqdir[0] = '\0';
		*why = "private IPC namespace, but no private mount for "
		       "mqueue";
		return 1;
	}
	snprintf(dir, sizeof dir, "/tmp/ipctest-mq-%d-XXXXXX", (int)getpid());
	if (mkdtemp(dir) == NULL) {
		g_mqdir_known = 1;
		g_mqdir[0] = '\0';
		*why = "private IPC namespace; mkdtemp for mqueue failed";
		return 1;
	}
	if (mount("mqueue", dir, "mqueue", 0, NULL) != 0) {
		rmdir(dir);
		g_mqdir_known = 1;
		g_mqdir[0] = '\0';
		*why = "private IPC namespace; mounting mqueue failed";
		return 1;
	}
	snprintf(g_mqdir, sizeof g_mqdir, "%s", dir);
	g_mqdir_known = 1;
	atexit(unmount_private_mq);
	return 1;
}

int
tu_ipc_isolated(void)
{
	return g_isolated;
}

static void
objs_add(struct tu_objs *o, const char *fmt, ...)
{
	char buf[PATH_MAX + 32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		char **nn = realloc(o->names, cap * sizeof *nn);
		if (nn == NULL) {
			return;
		}
		o->names = nn;
		o->cap = cap;
	}
	char *s = strdup(buf);
	if (s != NULL) {
		o->names[o->n++] = s;
	}
}

static void
list_dir_token(struct tu_objs *o, const char *dir, const char *token,
               const char *tag)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL) {
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' && strstr(e->d_name, token) != NULL) {
			objs_add(o, "%s:%s", tag, e->d_name);
		}
	}
	closedir(d);
}

static struct tu_objs *g_walk;

static int
walk_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	if (ftw->level > 0) {
		objs_add(g_walk, "file:%s", path);
	}
	return 0;
}

static void
list_abstract(struct tu_objs *o, const char *token)
{
	FILE *f = fopen("/proc/net/unix", "r");
	char line[1024];

	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *at = strchr(line, '@');
		if (at != NULL && strstr(at, token) != NULL) {
			at[strcspn(at, " \n")] = '\0';
			objs_add(o, "abstract:%s", at);
		}
	}
	fclose(f);
}

/* Columns of /proc/sysvipc/{shm,msg,sem}: the id is the second and the
 * uid is at uidcol (0-based). */
static void
list_sysv(struct tu_objs *o, const char *file, const char *tag, int uidcol)
{
	FILE *f = fopen(file, "r");
	char line[1024];
	uid_t me = geteuid();

	if (f == NULL) {
		return;
	}
	if (fgets(line, sizeof line, f) == NULL) { /* header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		long long col[16];
		int n = 0;
		char *p = line, *end;
		while (n < 16) {
			col[n] = strtoll(p, &end, 10);
			if (end == p) {
				break;
			}
			p = end;
			n++;
		}
		if (n > uidcol && (uid_t)col[uidcol] == me) {
			objs_add(o, "%s:%lld", tag, col[1]);
		}
	}
	fclose(f);
}

int
tu_objs_snapshot(struct tu_objs *o, const char *token, const char *dir)
{
	memset(o, 0, sizeof *o);
	if (token != NULL) {
		list_dir_token(o, "/dev/shm", token, "shm");
		if (tu_mq_dir() != NULL) {
			list_dir_token(o, tu_mq_dir(), token, "mq");
		}
		list_abstract(o, token);
	}
	if (dir != NULL) {
		g_walk = o;
		nftw(dir, walk_entry, 16, FTW_PHYS);
		g_walk = NULL;
	}
	/* uid columns: shm 7, msg 7, sem 4 */
	list_sysv(o, "/proc/sysvipc/shm", "sysvshm", 7);
	list_sysv(o, "/proc/sysvipc/msg", "sysvmsg", 7);
	list_sysv(o, "/proc/sysvipc/sem", "sysvsem", 4);
	return 0;
}

static int
objs_has(const struct tu_objs *o, const char *name)
{
	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->names[i], name) == 0) {
			return 1;
		}
	}
	return 0;
}

static int
pid_in(pid_t p, const pid_t *pids, size_t npids)
{
	for (size_t i = 0; p > 0 && i < npids; i++) {
		if (pids[i] == p) {
			return 1;
		}
	}
	return 0;
}

/* The pid columns of a System V object, from /proc/sysvipc/<file>. */
static int
sysv_pids(const char *file, long long id, int c1, int c2, pid_t *out)
{
	FILE *f = fopen(file, "r");
	char line[1024];
	int found = 0;

	if (f == NULL) {
		return 0;
	}
	while (!found && fgets(line, sizeof line, f) != NULL) {
		long long col[16];
		int n = 0;
		char *p = line, *end;
		while (n < 16) {
			col[n] = strtoll(p, &end, 10);
			if (end == p) {
				break;
			}
			p = end;
			n++;
		}
		if (n > c2 && col[1] == id) {
			out[0] = (pid_t)col[c1];
			out[1] = (pid_t)col[c2];
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* Whether a System V object new since the snapshot belongs to the test. */
static int
sysv_is_ours(const char *name, const pid_t *pids, size_t npids)
{
	long long id = atoll(strchr(name, ':') + 1);
	pid_t p[2] = {0, 0};

	if (g_isolated) {
		return 1;
	}
	if (strncmp(name, "sysvshm:", 8) == 0) {
		sysv_pids("/proc/sysvipc/shm", id, 4, 5, p); /* cpid lpid */
	} else if (strncmp(name, "sysvmsg:", 8) == 0) {
		sysv_pids("/proc/sysvipc/msg", id, 5, 6, p); /* lspid lrpid */
	} else {
		struct semid_ds ds;
		union {
			int val;
			struct semid_ds *buf;
		} arg = {.buf = &ds};
		if (semctl((int)id, 0, IPC_STAT, arg) == 0) {
			for (unsigned long i = 0; i < ds.sem_nsems; i++) {
				int sp = semctl((int)id, (int)i, GETPID);
				if (pid_in(sp, pids, npids)) {
					return 1;
				}
				if (sp > 0) {
					p[0] = sp;
				}
			}
		}
	}
	if (pid_in(p[0], pids, npids) || pid_in(p[1], pids, npids)) {
		return 1;
	}
	/* Never used by anyone: count it (nobody else should be making
	 * unused objects under this uid while tests run). */
	return p[0] <= 0 && p[1] <= 0;
}

static int
is_new(const struct tu_objs *before, const char *name, const pid_t *pids,
       size_t npids)
{
	if (objs_has(before, name)) {
		return 0;
	}
	if (strncmp(name, "sysv", 4) == 0) {
		return sysv_is_ours(name, pids, npids);
	}
	return 1;
}

int
tu_objs_diff(const struct tu_objs *before, const struct tu_objs *after,
             const pid_t *pids, size_t npids, char *report, size_t n)
{
	int count = 0;
	size_t off = 0;

	if (report != NULL && n > 0) {
		report[0] = '\0';
	}
	for (size_t i = 0; i < after->n; i++) {
		if (!is_new(before, after->names[i], pids, npids)) {
			continue;
		}
		count++;
		if (report != NULL && off + 1 < n) {
			int w = snprintf(report + off, n - off, "%s%s",
			                 off ? ", " : "", after->names[i]);
			if (w > 0) {
				off += (size_t)w;
			}
		}
	}
	return count;
}

size_t
tu_objs_new(const struct tu_objs *before, const struct tu_objs *after,
            const pid_t *pids, size_t npids, size_t *idx, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < after->n && n < max; i++) {
		if (is_new(before, after->names[i], pids, npids)) {
			idx[n++] = i;
		}
	}
	return n;
}

int
tu_obj_mode(const char *name)
{
	const char *v = strchr(name, ':') + 1;
	char path[PATH_MAX + 16];
	struct stat st;

	if (strncmp(name, "sysvshm:", 8) == 0) {
		struct shmid_ds ds;
		if (shmctl(atoi(v), IPC_STAT, &ds) != 0) {
			return -errno;
		}
		return (int)(ds.shm_perm.mode & 0777);
	}
	if (strncmp(name, "sysvmsg:", 8) == 0) {
		struct msqid_ds ds;
		if (msgctl(atoi(v), IPC_STAT, &ds) != 0) {
			return -errno;
		}
		return (int)(ds.msg_perm.mode & 0777);
	}
	if (strncmp(name, "sysvsem:", 8) == 0) {
		struct semid_ds ds;
		union {
			int val;
			struct semid_ds *buf;
		} arg = {.buf = &ds};
		if (semctl(atoi(v), 0, IPC_STAT, arg) != 0) {
			return -errno;
		}
		return (int)(ds.sem_perm.mode & 0777);
	}
	if (strncmp(name, "file:", 5) == 0) {
		snprintf(path, sizeof path, "%s", v);
	} else if (strncmp(name, "shm:", 4) == 0) {
		snprintf(path, sizeof path, "/dev/shm/%s", v);
	} else if (strncmp(name, "mq:", 3) == 0 && tu_mq_dir() != NULL) {
		snprintf(path, sizeof path, "%s/%s", tu_mq_dir(), v);
	} else {
		return -1;
	}
	if (lstat(path, &st) != 0) {
		return -errno;
	}
	return S_ISDIR(st.st_mode) ? -1 : (int)(st.st_mode & 0777);
}

static void
remove_obj(const char *name)
{
	const char *v = strchr(name, ':') + 1;

	if (strncmp(name, "file:", 5) == 0) {
		if (unlink(v) != 0) {
			rmdir(v);
		}
	} else if (strncmp(name, "shm:", 4) == 0) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "/dev/shm/%s", v);
		unlink(path);
	} else if (strncmp(name, "mq:", 3) == 0) {
		char mq[PATH_MAX];
		snprintf(mq, sizeof mq, "/%s", v);
		mq_unlink(mq);
	} else if (strncmp(name, "sysvshm:", 8) == 0) {
		shmctl(atoi(v), IPC_RMID, NULL);
	} else if (strncmp(name, "sysvmsg:", 8) == 0) {
		msgctl(atoi(v), IPC_RMID, NULL);
	} else if (strncmp(name, "sysvsem:", 8) == 0) {
		semctl(atoi(v), 0, IPC_RMID);
	}
	/* abstract sockets vanish with their last descriptor */
}

void
tu_objs_remove_new(const struct tu_objs *before, const struct tu_objs *after,
                   const pid_t *pids, size_t npids)
{
	/* Deepest paths first so that directories are empty when removed. */
	for (size_t i = after->n; i-- > 0;) {
		if (is_new(before, after->names[i], pids, npids)) {
			remove_obj(after->names[i]);
		}
	}
}

void
tu_objs_free(struct tu_objs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->names[i]);
	}
	free(o->names);
	memset(o, 0, sizeof *o);
}
