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

pid_t
tu_fork_plain(void)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		return -errno;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			_exit(99);
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
