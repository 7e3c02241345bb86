/*
 * The libipc objects on this machine: see objects.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/sysv_sem.h"
#include "core/objects.h"
#include "core/objnames.h"

#define KIND_MQ  "sysvmq"
#define KIND_SHM "sysvshm"

struct scan {
	int (*fn)(void *arg, const struct ipc_obj *o);
	void (*note)(void *arg, const char *text);
	void *arg;
};

static void say(const struct scan *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
say(const struct scan *s, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (s->note != NULL) {
		s->note(s->arg, buf);
	}
}

/* The pid holding an flock on inode ino (/proc/locks), or 0. */
static pid_t
flock_holder(ino_t ino)
{
	char line[256];
	pid_t pid = 0;
	FILE *f = fopen("/proc/locks", "re");

	if (f == NULL) {
		return 0;
	}
	while (pid == 0 && fgets(line, sizeof(line), f) != NULL) {
		char type[16];
		long p;
		unsigned maj, min;
		unsigned long long i;
		if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", type, &p,
		           &maj, &min, &i) == 5 &&
		    strcmp(type, "FLOCK") == 0 &&
		    i == (unsigned long long)ino) {
			pid = (pid_t)p;
		}
	}
	fclose(f);
	return pid;
}

/* ------------------------------------------------------- System V -- */

/* The kind of a set found on key, from its values: NULL when it is not
 * provably a ready libipc set. */
static const char *
sysv_kind(key_t key, const unsigned short v[SV_NSEMS])
{
	const char *kind = NULL;

	if (v[SV_TAG + 3] == sv_keytag(KIND_MQ, key)) {
		kind = KIND_MQ;
	} else if (v[SV_TAG + 3] == sv_keytag(KIND_SHM, key)) {
		kind = KIND_SHM;
	}
	if (kind == NULL || (v[SV_TAG] & 1) == 0) {
		return NULL;
	}
	for (int side = 0; side < 2; side++) {
		if (v[SV_SLOT + side] > 1) {
			return NULL;
		}
	}
	return kind;
}

/* The set semid on key, examined: 0 with o filled, or -1 (not ours). */
static int
sysv_examine(int semid, key_t key, struct ipc_obj *o)
{
	unsigned short v[SV_NSEMS];
	struct semid_ds ds;
	union sv_semun a = {.buf = &ds};

	if (semctl(semid, 0, IPC_STAT, a) < 0 || ds.sem_nsems != SV_NSEMS ||
	    ds.sem_otime == 0 || sv_getall(semid, v) < 0) {
		return -1;
	}
	const char *kind = sysv_kind(key, v);
	if (kind == NULL) {
		return -1;
	}
	/* The queue or segment on the key, if any, is the same user's. */
	if (strcmp(kind, KIND_MQ) == 0) {
		struct msqid_ds q;
		int id = msgget(key, 0);
		if (id >= 0 && (msgctl(id, IPC_STAT, &q) < 0 ||
		                q.msg_perm.cuid != ds.sem_perm.cuid)) {
			return -1;
		}
	} else {
		struct shmid_ds m;
		int id = shmget(key, 0, 0);
		if (id >= 0 && (shmctl(id, IPC_STAT, &m) < 0 ||
		                m.shm_perm.cuid != ds.sem_perm.cuid)) {
			return -1;
		}
	}
	memset(o, 0, sizeof(*o));
	o->scheme = kind;
	snprintf(o->name, sizeof(o->name), "%s key 0x%08x", kind,
	         (unsigned)key);
	o->uid = ds.sem_perm.cuid;
	o->pid[0] = sv_pid(v, SV_CREATOR);
	o->pid[1] = sv_pid(v, SV_OPENER);
	/* SEM_UNDO gives a dead side's slot back: both free, all gone. */
	o->stale = v[SV_SLOT + SV_CREATOR] == 1 && v[SV_SLOT + SV_OPENER] == 1;
	o->key = key;
	o->semid = semid;
	return 0;
}

static int
scan_sysv(const struct scan *s)
{
	char line[512];
	FILE *f = fopen("/proc/sysvipc/sem", "re");

	if (f == NULL) {
		say(s, "System V: cannot read /proc/sysvipc/sem: %s",
		    strerror(errno));
		return 0;
	}
	if (fgets(line, sizeof(line), f) == NULL) { /* the header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		long long key;
		int semid;
		unsigned long nsems;
		struct ipc_obj o;
		if (sscanf(line, "%lld %d %*o %lu", &key, &semid, &nsems) !=
		            3 ||
		    nsems != SV_NSEMS) {
			continue;
		}
		if (sysv_examine(semid, (key_t)key, &o) == 0 &&
		    s->fn(s->arg, &o) != 0) {
			break;
		}
	}
	fclose(f);
	return 0;
}

static int
remove_sysv(const struct ipc_obj *o, char *why, size_t n)
{
	struct ipc_obj now;

	if (sysv_examine(o->semid, o->key, &now) < 0 ||
	    strcmp(now.scheme, o->scheme) != 0) {
		snprintf(why, n, "gone already");
		return -ENOENT;
	}
	if (!now.stale) {
		snprintf(why, n, "in use again");
		return -EBUSY;
	}
	if (strcmp(o->scheme, KIND_MQ) == 0) {
		int id = msgget(o->key, 0);
		if (id >= 0 && msgctl(id, IPC_RMID, NULL) < 0) {
			snprintf(why, n, "msgctl IPC_RMID: %s",
			         strerror(errno));
			return -errno;
		}
	} else {
		int id = shmget(o->key, 0, 0);
		if (id >= 0 && shmctl(id, IPC_RMID, NULL) < 0) {
			snprintf(why, n, "shmctl IPC_RMID: %s",
			         strerror(errno));
			return -errno;
		}
	}
	if (semctl(o->semid, 0, IPC_RMID) < 0) {
		snprintf(why, n, "semctl IPC_RMID: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* ------------------------------------------------------------- mq -- */

/* NAME = [A-Za-z0-9._-]{1,200}, as the driver takes it. */
static int
valid_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 200) {
		return 0;
	}
	return strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                 "0123456789._-") == len;
}

static char mq_mount[PATH_MAX];

/* A directory showing the queues of our IPC namespace.  A mount found in
 * /proc/self/mountinfo may belong to another IPC namespace, so root
 * mounts a fresh one in a private mount namespace (this process only);
 * others use /dev/mqueue. */
static const char *
mq_dir(const struct scan *s)
{
	char tmp[] = "/tmp/ipc-cat-mq-XXXXXX";

	if (mq_mount[0] != '\0') {
		return mq_mount;
	}
	if (geteuid() != 0) {
		if (access("/dev/mqueue/.", R_OK | X_OK) == 0) {
			snprintf(mq_mount, sizeof(mq_mount), "/dev/mqueue");
			return mq_mount;
		}
		say(s, "mq: /dev/mqueue is not mounted (mount -t mqueue none "
		       "/dev/mqueue): queues not listed");
		return NULL;
	}
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mkdtemp(tmp) == NULL) {
		say(s,
		    "mq: cannot make a private mount of the mqueue file "
		    "system: %s",
		    strerror(errno));
		return NULL;
	}
	if (mount("mqueue", tmp, "mqueue", 0, NULL) < 0) {
		say(s, "mq: cannot mount an mqueue file system: %s",
		    strerror(errno));
		rmdir(tmp);
		return NULL;
	}
	snprintf(mq_mount, sizeof(mq_mount), "%s", tmp);
	return mq_mount;
}

/* Unmount and remove the private mount, if one was made. */
static void
mq_dir_done(void)
{
	if (strncmp(mq_mount, "/tmp/ipc-cat-mq-", 16) == 0) {
		(void)umount2(mq_mount, MNT_DETACH);
		(void)rmdir(mq_mount);
	}
	mq_mount[0] = '\0';
}

/* Examine the pair of NAME: 0 with o filled, -1 not there. */
static int
mq_examine(const char *name, struct ipc_obj *o)
{
	char q0[300], q1[300];
	struct stat st;

	snprintf(q0, sizeof(q0), IPC_MQ_PREFIX "%.200s.0", name);
	snprintf(q1, sizeof(q1), IPC_MQ_PREFIX "%.200s.1", name);
	mqd_t a = mq_open(q0, O_RDONLY | O_NONBLOCK);
	mqd_t b = mq_open(q1, O_RDONLY | O_NONBLOCK);
	int r = -1;
	if (a != (mqd_t)-1 || b != (mqd_t)-1) {
		mqd_t any = b != (mqd_t)-1 ? b : a;
		memset(o, 0, sizeof(*o));
		o->scheme = "mq";
		snprintf(o->name, sizeof(o->name), "mq://%s", name);
		snprintf(o->where, sizeof(o->where), "%s", name);
		if (fstat(any, &st) == 0) {
			o->uid = st.st_uid;
			o->pid[0] =
			        b != (mqd_t)-1 ? flock_holder(st.st_ino) : 0;
		}
		o->stale = (a == (mqd_t)-1 || ipc__flock_free(a)) &&
		           (b == (mqd_t)-1 || ipc__flock_free(b));
		r = 0;
	}
	if (a != (mqd_t)-1) {
		mq_close(a);
	}
	if (b != (mqd_t)-1) {
		mq_close(b);
	}
	return r;
}

static int
scan_mq(const struct scan *s)
{
	const char *dir = mq_dir(s);
	size_t plen = strlen(IPC_MQ_PREFIX) - 1; /* without the '/' */

	if (dir == NULL) {
		return 0;
	}
	DIR *d = opendir(dir);
	if (d == NULL) {
		say(s, "mq: cannot read %s: %s", dir, strerror(errno));
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char name[256];
		size_t n = strlen(e->d_name);
		struct ipc_obj o;
		/* libipc.NAME.1, or a lone libipc.NAME.0 */
		if (n < plen + 3 ||
		    strncmp(e->d_name, &IPC_MQ_PREFIX[1], plen) != 0 ||
		    e->d_name[n - 2] != '.' ||
		    (e->d_name[n - 1] != '0' && e->d_name[n - 1] != '1')) {
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(n - plen - 2),
		         e->d_name + plen);
		if (e->d_name[n - 1] == '0') {
			char other[PATH_MAX + 300];
			struct stat st;
			snprintf(other, sizeof(other), "%s/%.*s1", dir,
			         (int)(n - 1), e->d_name);
			if (stat(other, &st) == 0) {
				continue; /* listed with .1 */
			}
		}
		if (valid_name(name) && mq_examine(name, &o) == 0 &&
		    s->fn(s->arg, &o) != 0) {
			break;
		}
	}
	closedir(d);
	return 0;
}

static int
remove_mq(const struct ipc_obj *o, char *why, size_t n)
{
	char q[2][300];
	mqd_t m[2];
	int r = 0;

	for (int i = 0; i < 2; i++) {
		snprintf(q[i], sizeof(q[i]), IPC_MQ_PREFIX "%.200s.%d",
		         o->where, i);
		m[i] = mq_open(q[i], O_RDONLY | O_NONBLOCK);
	}
	if (m[0] == (mqd_t)-1 && m[1] == (mqd_t)-1) {
		snprintf(why, n, "gone already");
		return -ENOENT;
	}
	/* Hold both locks while removing: nobody can take them meanwhile. */
	for (int i = 0; i < 2 && r == 0; i++) {
		if (m[i] != (mqd_t)-1 && flock(m[i], LOCK_EX | LOCK_NB) < 0) {
			snprintf(why, n, "in use again");
			r = -EBUSY;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (r == 0 && m[i] != (mqd_t)-1) {
			/* only if the name still names what we locked */
			char path[PATH_MAX + 640];
			struct stat a, b;
			snprintf(path, sizeof(path), "%s%s", mq_mount, q[i]);
			if (stat(path, &a) == 0 && fstat(m[i], &b) == 0 &&
			    a.st_ino == b.st_ino && mq_unlink(q[i]) < 0) {
				snprintf(why, n, "mq_unlink %s: %s", q[i],
				         strerror(errno));
				r = -errno;
			}
		}
		if (m[i] != (mqd_t)-1) {
			mq_close(m[i]);
		}
	}
	return r;
}

/* ----------------------------------------------------------- FIFOs -- */

/* PATH.in and PATH.out, both FIFOs: 0 with o filled, -1 otherwise.
 * fd_out: PATH.in opened and, when stale, locked (for removal). */
static int
fifo_examine(const char *path, struct ipc_obj *o, int *fd_out)
{
	char in[PATH_MAX], out[PATH_MAX];
	struct stat si, so, sf;

	if (snprintf(in, sizeof(in), "%s" IPC_FIFO_IN, path) >=
	            (int)sizeof(in) ||
	    snprintf(out, sizeof(out), "%s" IPC_FIFO_OUT, path) >=
	            (int)sizeof(out) ||
	    lstat(in, &si) < 0 || !S_ISFIFO(si.st_mode) ||
	    lstat(out, &so) < 0 || !S_ISFIFO(so.st_mode) ||
	    si.st_uid != so.st_uid) {
		return -1;
	}
	int fd = open(in, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		return -1;
	}
	if (fstat(fd, &sf) < 0 || sf.st_ino != si.st_ino ||
	    sf.st_dev != si.st_dev) {
		close(fd);
		return -1;
	}
	memset(o, 0, sizeof(*o));
	o->scheme = "fifo";
	snprintf(o->name, sizeof(o->name), "fifo://%s", path);
	snprintf(o->where, sizeof(o->where), "%s", path);
	o->uid = si.st_uid;
	o->stale = flock(fd, LOCK_EX | LOCK_NB) == 0;
	if (!o->stale) {
		o->pid[0] = flock_holder(si.st_ino);
	}
	if (fd_out != NULL) {
		*fd_out = fd;
	} else {
		close(fd);
	}
	return 0;
}

static int
scan_fifos(const struct scan *s, const char *dir)
{
	DIR *d = opendir(dir);
	size_t sl = strlen(IPC_FIFO_IN);

	if (d == NULL) {
		say(s, "fifo: cannot read %s: %s", dir, strerror(errno));
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char path[PATH_MAX];
		struct ipc_obj o;
		if (n <= sl || strcmp(e->d_name + n - sl, IPC_FIFO_IN) != 0 ||
		    snprintf(path, sizeof(path), "%s/%.*s",
		             strcmp(dir, "/") == 0 ? "" : dir, (int)(n - sl),
		             e->d_name) >= (int)sizeof(path)) {
			continue;
		}
		if (fifo_examine(path, &o, NULL) == 0 &&
		    s->fn(s->arg, &o) != 0) {
			break;
		}
	}
	closedir(d);
	return 0;
}

static int
remove_fifo(const struct ipc_obj *o, char *why, size_t n)
{
	struct ipc_obj now;
	char in[PATH_MAX + 8], out[PATH_MAX + 8];
	struct stat a, b;
	int fd = -1;

	if (fifo_examine(o->where, &now, &fd) < 0) {
		snprintf(why, n, "gone already");
		return -ENOENT;
	}
	if (!now.stale) {
		close(fd);
		snprintf(why, n, "in use again");
		return -EBUSY;
	}
	/* Locked by us: remove the pair if PATH.in is still the one. */
	snprintf(in, sizeof(in), "%s" IPC_FIFO_IN, o->where);
	snprintf(out, sizeof(out), "%s" IPC_FIFO_OUT, o->where);
	if (lstat(in, &a) == 0 && fstat(fd, &b) == 0 && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev) {
		(void)unlink(in);
		if (lstat(out, &a) == 0 && S_ISFIFO(a.st_mode)) {
			(void)unlink(out);
		}
	}
	close(fd);
	return 0;
}

/* ---------------------------------------------------- socket files -- */

/* A socket file records nothing of who made it, so these are the socket
 * files of the directories given: unix://, unix+seqpacket:// and
 * unix+dgram:// creators and listeners bind there (their file goes once
 * the peer has come, or at close), and kill -9 leaves it.  Alive: a
 * socket is bound to it; stale: connecting is refused.  The probe
 * connects from the abstract name the driver's own stale check uses
 * (core/sock.c), which a libipc creator or listener drops instead of
 * taking it for its peer; nothing is ever sent. */
#define PROBE_PREFIX "libipc-probe-"

static int
probe_one(const struct sockaddr_un *a, socklen_t len, int type)
{
	static unsigned seq;
	struct sockaddr_un me;
	int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		return -errno;
	}
	memset(&me, 0, sizeof(me));
	me.sun_family = AF_UNIX;
	int n = snprintf(me.sun_path + 1, sizeof(me.sun_path) - 1,
	                 PROBE_PREFIX "%ld-gc%u", (long)getpid(), seq++);
	(void)bind(fd, (struct sockaddr *)&me,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	                       (size_t)n));
	int r = connect(fd, (const struct sockaddr *)a, len);
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS || e == EPERM) {
		return 1;
	}
	if (e == ECONNREFUSED || e == ENOENT) {
		return 0;
	}
	return -e;
}

/* The socket at path: 1 alive (*type its socket type), 0 stale, <0. */
static int
sock_live(const char *path, int *type)
{
	static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
	struct sockaddr_un a;
	size_t n = strlen(path);

	if (n + 1 > sizeof(a.sun_path)) {
		return -ENAMETOOLONG;
	}
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, n);
	socklen_t len =
	        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	int r = -EPROTOTYPE;
	for (int i = 0; i < 3 && r == -EPROTOTYPE; i++) {
		r = probe_one(&a, len, types[i]);
		*type = types[i];
	}
	return r == -EPROTOTYPE ? 1 : r;
}

/* name in the directory open as dfd (dir: its path): 0 with o filled
 * when it is a socket file, -1 otherwise. */
static int
sock_examine(int dfd, const char *dir, const char *name, struct ipc_obj *o)
{
	struct stat st;
	char path[PATH_MAX];
	int type = SOCK_STREAM;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISSOCK(st.st_mode) ||
	    snprintf(path, sizeof(path), "%s/%s",
	             strcmp(dir, "/") == 0 ? "" : dir,
	             name) >= (int)sizeof(path)) {
		return -1;
	}
	int live = sock_live(path, &type);
	if (live < 0) {
		return -1; /* not one a unix:// URI can name */
	}
	memset(o, 0, sizeof(*o));
	o->scheme = !live                    ? "unix"
	            : type == SOCK_SEQPACKET ? "unix+seqpacket"
	            : type == SOCK_DGRAM     ? "unix+dgram"
	                                     : "unix";
	snprintf(o->name, sizeof(o->name), "%s://%s", o->scheme, path);
	snprintf(o->where, sizeof(o->where), "%s", path);
	o->uid = st.st_uid;
	o->stale = !live;
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	o->sock = 1;
	return 0;
}

static int
scan_socks(const struct scan *s, const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;

	if (d == NULL) {
		if (dfd >= 0) {
			close(dfd);
		}
		say(s, "unix: cannot read %s: %s", dir, strerror(errno));
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct ipc_obj o;
		if (e->d_type != DT_SOCK && e->d_type != DT_UNKNOWN) {
			continue;
		}
		if (sock_examine(dirfd(d), dir, e->d_name, &o) == 0 &&
		    s->fn(s->arg, &o) != 0) {
			break;
		}
	}
	closedir(d);
	return 0;
}

/* Only the caller's own stale socket files go, and only the file that
 * was listed: checked by owner, type and inode through the directory's
 * descriptor (the directory is opened without following a symlink in
 * its last component), probed again, then unlinked in that directory. */
static int
remove_sock(const struct ipc_obj *o, char *why, size_t n)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(o->where, '/');
	struct stat st;
	int type;

	if (slash == NULL || slash[1] == '\0') {
		snprintf(why, n, "not a path");
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%.*s",
	         slash == o->where ? 1 : (int)(slash - o->where), o->where);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		snprintf(why, n, "opening %s: %s", dir, strerror(e));
		return -e;
	}
	int r = 0;
	if (fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISSOCK(st.st_mode) || st.st_dev != o->dev ||
	    st.st_ino != o->ino) {
		snprintf(why, n, "gone already (or no longer the same file)");
		r = -ENOENT;
	} else if (st.st_uid != geteuid()) {
		snprintf(why, n,
		         "owned by uid %u, not by this user: left alone",
		         (unsigned)st.st_uid);
		r = -EPERM;
	} else if (sock_live(o->where, &type) != 0) {
		snprintf(why, n, "in use again");
		r = -EBUSY;
	} else if (fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	           st.st_ino != o->ino || st.st_dev != o->dev) {
		snprintf(why, n, "replaced while probing");
		r = -EBUSY;
	} else if (unlinkat(dfd, slash + 1, 0) < 0 && errno != ENOENT) {
		r = -errno;
		snprintf(why, n, "unlink: %s", strerror(-r));
	}
	close(dfd);
	return r;
}

/* -------------------------------------------------------------- all -- */

int
ipc__objects_scan(const char *const *dirs, int ndirs,
                  int (*fn)(void *arg, const struct ipc_obj *o),
                  void (*note)(void *arg, const char *text), void *arg)
{
	struct scan s = {fn, note, arg};

	scan_sysv(&s);
	scan_mq(&s);
	for (int i = 0; i < ndirs; i++) {
		scan_fifos(&s, dirs[i]);
		scan_socks(&s, dirs[i]);
	}
	return 0;
}

void
ipc__objects_done(void)
{
	mq_dir_done();
}

int
ipc__objects_remove(const struct ipc_obj *o, char *why, size_t n)
{
	if (strcmp(o->scheme, "mq") == 0) {
		return remove_mq(o, why, n);
	}
	if (strcmp(o->scheme, "fifo") == 0) {
		return remove_fifo(o, why, n);
	}
	if (o->sock) {
		return remove_sock(o, why, n);
	}
	return remove_sysv(o, why, n);
}
