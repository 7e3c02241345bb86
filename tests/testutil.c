/*
 * Helpers shared by libipc's tests; see testutil.h.
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

static struct tu_shared *g_shared;

/* ------------------------------------------------------------- checks -- */

static void
vreport(const char *tag, const char *file, int line, const char *fmt,
        va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (file != NULL) {
		fprintf(stderr, "%s %s:%d [pid %d]: %s", tag, file, line,
		        (int)getpid(), msg);
	} else {
		fprintf(stderr, "%s [pid %d]: %s", tag, (int)getpid(), msg);
	}
	const char *le = ipc_last_error();
	if (le != NULL && le[0] != '\0') {
		fprintf(stderr, " (last error: %s)", le);
	}
	fputc('\n', stderr);
}

void
tu_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	va_start(ap, fmt);
	vreport("FAIL", file, line, fmt, ap);
	va_end(ap);
	fflush(stderr);
	_exit(TU_EXIT_FAIL);
}

void
tu_skip(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("SKIP: %s\n", msg);
	if (g_shared != NULL) {
		snprintf(g_shared->skip_reason, sizeof g_shared->skip_reason,
		         "%s", msg);
	}
	fflush(NULL);
	_exit(TU_EXIT_SKIP);
}

const char *
tu_errname(int err)
{
	static const struct {
		int e;
		const char *s;
	} names[] = {
	        {EAGAIN, "EAGAIN"},
	        {ETIMEDOUT, "ETIMEDOUT"},
	        {EPIPE, "EPIPE"},
	        {EMSGSIZE, "EMSGSIZE"},
	        {EINVAL, "EINVAL"},
	        {ENOENT, "ENOENT"},
	        {ECONNREFUSED, "ECONNREFUSED"},
	        {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
	        {EOPNOTSUPP, "EOPNOTSUPP"},
	        {EBUSY, "EBUSY"},
	        {EPROTO, "EPROTO"},
	        {EEXIST, "EEXIST"},
	        {EACCES, "EACCES"},
	        {ENOMEM, "ENOMEM"},
	        {EINTR, "EINTR"},
	        {ECONNRESET, "ECONNRESET"},
	        {EBADF, "EBADF"},
	        {EMFILE, "EMFILE"},
	        {ENFILE, "ENFILE"},
	        {EIO, "EIO"},
	        {EADDRINUSE, "EADDRINUSE"},
	        {ENXIO, "ENXIO"},
	        {ENOSPC, "ENOSPC"},
	        {ENOTCONN, "ENOTCONN"},
	        {EAFNOSUPPORT, "EAFNOSUPPORT"},
	        {EPERM, "EPERM"},
	};
	static __thread char other[32];

	if (err >= 0) {
		return "ok";
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (names[i].e == -err) {
			return names[i].s;
		}
	}
	snprintf(other, sizeof other, "E?%d", -err);
	return other;
}

/* ------------------------------------------------------ names, places -- */

static atomic_uint g_counter;

char *
tu_unique(char *buf, size_t n, const char *prefix)
{
	snprintf(buf, n, "%s-%d-%u", prefix, (int)getpid(),
	         atomic_fetch_add(&g_counter, 1));
	return buf;
}

char *
tu_expand(char *out, size_t n, const char *tmpl, const char *name,
          const char *dir)
{
	size_t o = 0;

	for (const char *p = tmpl; *p != '\0' && o + 1 < n; p++) {
		const char *v = NULL;
		if (p[0] == '%' && (p[1] == 's' || p[1] == 'd')) {
			v = p[1] == 's' ? name : dir;
		}
		if (v == NULL) {
			out[o++] = *p;
			continue;
		}
		int k = snprintf(out + o, n - o, "%s", v);
		o += (size_t)k < n - o ? (size_t)k : n - o - 1;
		p++;
	}
	out[o] = '\0';
	return out;
}

int
tu_tmpdir(char *buf, size_t n, const char *prefix)
{
	int len = snprintf(buf, n, "/tmp/%s-%d-XXXXXX", prefix, (int)getpid());

	if (len < 0 || (size_t)len >= n) {
		return -ENAMETOOLONG;
	}
	if (mkdtemp(buf) == NULL) {
		return -errno;
	}
	return 0;
}

static int g_rm_count;

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0) {
		return 0;
	}
	g_rm_count++;
	if (type == FTW_DP) {
		rmdir(path);
	} else {
		unlink(path);
	}
	return 0;
}

int
tu_rmtree(const char *dir)
{
	g_rm_count = 0;
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		return -errno;
	}
	if (rmdir(dir) != 0) {
		return -errno;
	}
	return g_rm_count;
}

static int
ephemeral_low(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	int lo = 32768, hi = 60999;

	if (f != NULL) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2) {
			lo = 32768;
		}
		fclose(f);
	}
	return lo;
}

static int
loopback_addr(const char *host, int port, struct sockaddr_storage *ss,
              socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(host, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
			return -EINVAL;
		}
		*len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
			return -EINVAL;
		}
		*len = sizeof *s4;
	}
	return 0;
}

/* 0 if host:port can be bound with this socket type, else -errno. */
static int
try_bind(const char *host, int port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = loopback_addr(host, port, &ss, &len);

	if (rc != 0) {
		return rc;
	}
	int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	rc = bind(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int
tu_free_port(const char *host, int *port)
{
	int lo = 10000, hi = ephemeral_low();
	unsigned seed = (unsigned)getpid() * 7919u +
	                atomic_fetch_add(&g_counter, 1) * 104729u;

	if (hi <= lo + 100) {
		hi = 65535; /* unusual range: take the top instead */
		lo = 61000;
	}
	for (int i = 0; i < 500; i++) {
		int p = lo + (int)((seed + (unsigned)i * 31u) %
		                   (unsigned)(hi - lo));
		int rc = try_bind(host, p, SOCK_STREAM);
		if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT ||
		    rc == -EINVAL) {
			return rc == -EINVAL ? rc : -EAFNOSUPPORT;
		}
		if (rc == 0 && try_bind(host, p, SOCK_DGRAM) == 0) {
			*port = p;
			return 0;
		}
	}
	return -EADDRINUSE;
}

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

/* ---------------------------------------------------------- processes -- */

pid_t
tu_fork(tu_child_fn fn, void *arg, unsigned limit_s)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		return -errno;
	}
	if (pid == 0) {
		if (limit_s > 0) {
			alarm(limit_s);
		}
		int rc = fn(arg);
		fflush(NULL);
		_exit(rc & 0xff);
	}
	if (g_shared != NULL) {
		int i = __atomic_fetch_add(&g_shared->npids, 1,
		                           __ATOMIC_RELAXED);
		if (i < (int)(sizeof g_shared->pids / sizeof(pid_t))) {
			g_shared->pids[i] = pid;
		}
	}
	return pid;
}

int
tu_wait(pid_t pid, int timeout_ms, int *status)
{
	double end = tu_now() + timeout_ms / 1000.0;
	int delay = 1;

	for (;;) {
		pid_t r = waitpid(pid, status, timeout_ms < 0 ? 0 : WNOHANG);
		if (r == pid) {
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			return -errno;
		}
		if (r == 0) {
			if (tu_now() >= end) {
				return -ETIMEDOUT;
			}
			tu_sleep_ms(delay);
			delay = delay < 20 ? delay * 2 : 20;
		}
	}
}

const char *
tu_status_str(int status, char *buf, size_t n)
{
	if (WIFEXITED(status)) {
		snprintf(buf, n, "exit %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	} else {
		snprintf(buf, n, "status 0x%x", status);
	}
	return buf;
}

int
tu_wait_ok(pid_t pid, int timeout_ms)
{
	int status = 0;
	char b[96];
	int rc = tu_wait(pid, timeout_ms, &status);

	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "child %d still running after %d ms: killed\n",
		        (int)pid, timeout_ms);
		kill(pid, SIGKILL);
		tu_wait(pid, -1, &status);
		return -1;
	}
	if (rc != 0) {
		fprintf(stderr, "waitpid(%d): %s\n", (int)pid, strerror(-rc));
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child %d: %s\n", (int)pid,
		        tu_status_str(status, b, sizeof b));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- timing -- */

double
tu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
tu_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

double
tu_time_factor(void)
{
	const char *e = getenv("IPC_TEST_TIME_FACTOR");
	double f = e != NULL ? strtod(e, NULL) : 1.0;
	return f >= 1.0 ? f : 1.0;
}

int
tu_wait_asleep(pid_t tid, int timeout_ms)
{
	char path[64], buf[512];
	double end = tu_now() + timeout_ms / 1000.0 * tu_time_factor();

	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	for (;;) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			return 0;
		}
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			/* "tid (comm) S ...": the state follows the last ')'
			 */
			const char *p = strrchr(buf, ')');
			if (p != NULL && p[1] == ' ' &&
			    (p[2] == 'S' || p[2] == 'D')) {
				return 1;
			}
		}
		if (tu_now() > end) {
			return 0;
		}
		tu_sleep_ms(1);
	}
}

static void *
killer_main(void *arg)
{
	struct tu_killer *k = arg;

	tu_sleep_ms(k->delay_ms);
	k->asleep = tu_wait_asleep(k->tid, 3000);
	/* Noted first: the victim's peer may return before kill() does. */
	k->killed_at = tu_now();
	kill(k->pid, SIGKILL);
	return NULL;
}

int
tu_killer_start(struct tu_killer *k, pid_t pid, int delay_ms)
{
	k->pid = pid;
	k->tid = (pid_t)syscall(SYS_gettid);
	k->delay_ms = delay_ms;
	k->asleep = 0;
	k->killed_at = 0;
	return -pthread_create(&k->th, NULL, killer_main, k);
}

double
tu_killer_join(struct tu_killer *k)
{
	double now = tu_now();

	pthread_join(k->th, NULL);
	return now - k->killed_at;
}

double
tu_time_to_epipe(ipc_channel *ch, pid_t pid, int delay_ms, int op,
                 long long *rc)
{
	struct tu_killer k;
	unsigned char buf[256] = {0};

	if (tu_killer_start(&k, pid, delay_ms) != 0) {
		*rc = -EAGAIN;
		return -1;
	}
	if (op == 'r') {
		*rc = ipc_recv(ch, buf, sizeof buf, 0);
	} else {
		/* A full channel may still take a message now and then
		 * (TCP keeps moving data to the receiver): send until a
		 * call fails, which must be the one that blocks. */
		do {
			*rc = ipc_send(ch, buf, 16, 0);
		} while (*rc == 16);
	}
	double t = tu_killer_join(&k);
	if (!k.asleep) {
		printf("note: the %s was never seen asleep in the kernel "
		       "before the kill (busy waiting?)\n",
		       op == 'r' ? "recv" : "send");
	}
	return t;
}

/* --------------------------------------------------- isolated testing -- */

struct tu_shared *
tu_shared(void)
{
	return g_shared;
}

static void
set_why(char *why, size_t whyn, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whyn == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, whyn, fmt, ap);
	va_end(ap);
}

static int
isolated_child(tu_child_fn fn, void *arg, unsigned limit_s)
{
	setpgid(0, 0);
	alarm(limit_s);
	int base = tu_fd_count();
	int rc = fn(arg);
	if (rc == 0) {
		int now = tu_fd_count();
		if (now != base) {
			char list[4096];
			tu_fd_describe(list, sizeof list);
			fprintf(stderr,
			        "FAIL: %d descriptors open before the test, "
			        "%d "
			        "after: %s\n",
			        base, now, list);
			rc = TU_EXIT_FAIL;
		}
	}
	fflush(NULL);
	return rc;
}

static void
reap_group(pid_t pgid)
{
	int st;

	kill(-pgid, SIGKILL);
	for (;;) {
		pid_t r = waitpid(-pgid, &st, 0);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			break;
		}
	}
}

void
tu_allow_present(void)
{
	struct tu_shared *sh = tu_shared();
	struct tu_objs now;
	size_t off = 0;

	if (sh == NULL) {
		return;
	}
	sh->allow_leftovers = 1;
	if (tu_objs_snapshot(&now, sh->token[0] ? sh->token : NULL,
	                     sh->dir[0] ? sh->dir : NULL) != 0) {
		return;
	}
	for (size_t i = 0; i < now.n; i++) {
		size_t len = strlen(now.names[i]);
		if (off + len + 2 > sizeof sh->allowed) {
			tu_objs_free(&now);
			return; /* does not fit: any leftover goes */
		}
		memcpy(sh->allowed + off, now.names[i], len);
		sh->allowed[off + len] = '\n';
		off += len + 1;
	}
	sh->allowed[off] = '\0';
	sh->allow_leftovers = 2;
	tu_objs_free(&now);
}

/* The first leftover that tu_allow_present() did not list, or NULL. */
static const char *
not_allowed(const struct tu_shared *sh, const struct tu_objs *before,
            const struct tu_objs *after, size_t npids)
{
	size_t idx[64];
	size_t n = tu_objs_new(before, after, sh->pids, npids, idx, 64);

	for (size_t i = 0; i < n; i++) {
		const char *name = after->names[idx[i]];
		size_t len = strlen(name);
		const char *p = sh->allowed;
		int found = 0;
		while (*p && !found) {
			const char *nl = strchr(p, '\n');
			if (nl == NULL) {
				break;
			}
			found = (size_t)(nl - p) == len &&
			        memcmp(p, name, len) == 0;
			p = nl + 1;
		}
		if (!found) {
			return name;
		}
	}
	return NULL;
}

enum tu_result
tu_run_isolated(tu_child_fn fn, void *arg, unsigned limit_s, const char *token,
                const char *dir, char *why, size_t whyn)
{
	struct tu_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
	                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct tu_objs before, after;
	enum tu_result res = TU_PASS;
	int status = 0;
	char b[96];

	set_why(why, whyn, "%s", "");
	if (sh == MAP_FAILED) {
		set_why(why, whyn, "mmap: %s", strerror(errno));
		return TU_FAIL;
	}
	memset(sh, 0, sizeof *sh);
	snprintf(sh->token, sizeof sh->token, "%s", token ? token : "");
	snprintf(sh->dir, sizeof sh->dir, "%s", dir ? dir : "");
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	tu_objs_snapshot(&before, token, dir);

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		set_why(why, whyn, "fork: %s", strerror(errno));
		munmap(sh, sizeof *sh);
		tu_objs_free(&before);
		return TU_FAIL;
	}
	if (pid == 0) {
		g_shared = sh;
		_exit(isolated_child(fn, arg, limit_s) & 0xff);
	}
	setpgid(pid, pid);

	int rc = tu_wait(pid, (int)(limit_s + 10) * 1000, &status);
	if (rc == -ETIMEDOUT) {
		res = TU_FAIL;
		set_why(why, whyn, "no result after %u s: killed",
		        limit_s + 10);
		kill(-pid, SIGKILL);
		tu_wait(pid, -1, &status);
	} else if (rc != 0) {
		res = TU_FAIL;
		set_why(why, whyn, "waitpid: %s", strerror(-rc));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		res = TU_PASS;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == TU_EXIT_SKIP) {
		res = TU_SKIP;
		set_why(why, whyn, "%s", sh->skip_reason);
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		res = TU_FAIL;
		set_why(why, whyn, "time limit of %u s reached", limit_s);
	} else {
		res = TU_FAIL;
		set_why(why, whyn, "test process: %s",
		        tu_status_str(status, b, sizeof b));
	}
	reap_group(pid);

	size_t npids = (size_t)sh->npids;
	if (npids > sizeof sh->pids / sizeof(pid_t) - 1) {
		npids = sizeof sh->pids / sizeof(pid_t) - 1;
	}
	sh->pids[npids++] = pid;
	tu_objs_snapshot(&after, token, dir);
	char left[2048];
	int nleft = tu_objs_diff(&before, &after, sh->pids, npids, left,
	                         sizeof left);
	if (nleft > 0) {
		const char *foreign = NULL;
		if (sh->allow_leftovers == 2) {
			foreign = not_allowed(sh, &before, &after, npids);
		}
		if (res == TU_PASS && (!sh->allow_leftovers || foreign)) {
			res = TU_FAIL;
			set_why(why, whyn, "left behind: %s%s%s", left,
			        foreign ? "; made after the killed creator "
			                  "opened: "
			                : "",
			        foreign ? foreign : "");
		} else {
			printf("note: removed what the test left: %s\n", left);
		}
		tu_objs_remove_new(&before, &after, sh->pids, npids);
	}
	tu_objs_free(&before);
	tu_objs_free(&after);
	munmap(sh, sizeof *sh);
	return res;
}

ipc_channel *
tu_open_retry(const char *uri, int flags, int timeout_ms)
{
	ipc_channel *ch = NULL;
	double end = tu_now() + timeout_ms * tu_time_factor() / 1000.0;
	for (;;) {
		int r = ipc_open(&ch, uri, flags);
		if (r == 0) {
			return ch;
		}
		if ((r != -ECONNREFUSED && r != -ENOENT) || tu_now() > end) {
			fprintf(stderr, "open %s: %s\n", uri,
			        ipc_last_error());
			return NULL;
		}
		usleep(1000);
	}
}

int
tu_count_dir(const char *path)
{
	int n = 0;
	DIR *d = opendir(path);
	if (d == NULL) {
		return 0;
	}
	while (readdir(d) != NULL) {
		n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------- death and close -- */

enum { END_KILL, END_CLOSE_LIVE, END_CLOSE_EXIT, END_FULL_CLOSE_LIVE };

struct end_arg {
	const char *uri;
	int how;
	int note; /* pipe: a byte once the peer closed */
};

static int
end_peer(void *p)
{
	struct end_arg *a = p;
	ipc_channel *ch = tu_open_retry(a->uri, 0, 5000);

	if (ch == NULL || ipc_send(ch, "hi", 2, 0) != 2) {
		return 3;
	}
	if (a->how == END_FULL_CLOSE_LIVE) {
		/* Fill the direction towards the creator. */
		while (ipc_send(ch, "fill", 4, IPC_NONBLOCK) == 4) {
		}
	}
	if (a->how != END_KILL && ipc_close(ch) != 0) {
		return 4;
	}
	if (a->how == END_CLOSE_EXIT) {
		return 0;
	}
	if (write(a->note, "c", 1) != 1) {
		return 5;
	}
	for (;;) {
		pause(); /* until the test kills us */
	}
}

void
tu_check_peer_end(const char *uri)
{
	static const char *const what[] = {
	        "killed", "closed and alive", "closed and exited",
	        "closed with a full queue and alive"};

	for (int how = END_KILL; how <= END_FULL_CLOSE_LIVE; how++) {
		ipc_channel *ch;
		int note[2];
		char buf[16];
		ssize_t r;

		TU_OK(ipc_open(&ch, uri, IPC_CREATE));
		TU_OK(ipc_set_timeout(ch, (int)(5000 * tu_time_factor())));
		TU_CHECK(pipe(note) == 0);
		struct end_arg a = {uri, how, note[1]};
		pid_t pid = tu_fork(end_peer, &a, 30);
		TU_CHECK(pid > 0);
		close(note[1]);
		TU_CHECK_EQ(ipc_recv(ch, buf, sizeof buf, 0), 2);
		if (how == END_KILL) {
			kill(pid, SIGKILL);
		} else if (how != END_CLOSE_EXIT) {
			TU_CHECK_EQ(read(note[0], buf, 1), 1);
		}
		if (how == END_KILL || how == END_CLOSE_EXIT) {
			int st;
			TU_OK(tu_wait(pid, 10000, &st));
		}
		while ((r = ipc_recv(ch, buf, sizeof buf, 0)) >= 0) {
		}
		const char *t = ipc_last_error();
		printf("%s: peer %s: %s: %s\n", uri, what[how],
		       tu_errname((int)r), t);
		TU_ERR(r, -EPIPE);
		if (how == END_KILL) {
			TU_CHECK_MSG(strstr(t, "died") != NULL,
			             "peer killed: \"%s\" does not say died",
			             t);
		} else {
			TU_CHECK_MSG(strstr(t, "closed") != NULL &&
			                     strstr(t, "died") == NULL,
			             "peer %s: \"%s\" does not say closed",
			             what[how], t);
		}
		if (how != END_KILL && how != END_CLOSE_EXIT) {
			kill(pid, SIGKILL);
			int st;
			TU_OK(tu_wait(pid, 10000, &st));
		}
		close(note[0]);
		TU_OK(ipc_close(ch));
	}
}
