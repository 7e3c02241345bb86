/*
 * ipc-bench libipc rows: one per URI scheme, through the public API only.
 *
 * libipc has no call that lists its drivers, so the schemes are listed
 * here; a scheme this build of the library lacks makes ipc_open return
 * -EPROTONOSUPPORT, and its row says "skipped".  A opens with IPC_CREATE,
 * B without, retrying while the endpoint does not exist yet.  pipe: is an
 * ipc_pair made before the fork; inproc:// runs A and B as two threads of
 * one process.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <unistd.h>

#include "ipc/ipc.h"

#include "bench.h"
#include "dbusd.h"

/* How long B retries while A's endpoint does not exist yet. */
#define OPEN_TRIES 5000 /* x 1 ms */

/* The shm driver's busy-poll mode: the option that makes both sides spin
 * instead of sleeping on a futex. */
#define SHM_BUSY_OPTION "spin=busy"

struct lrow {
	/* URI with {dir}, {token} and {port} replaced; NULL: ipc_pair of
	 * pair_uri. */
	const char *tmpl;
	const char *pair_uri;
};

struct pair_state {
	ipc_channel *a, *b;
};

/* Expand the row's template into buf. */
static int
expand(const struct bench_env *e, const char *tmpl, char *buf, size_t n)
{
	size_t o = 0;
	for (const char *p = tmpl; *p;) {
		char val[80];
		const char *v = NULL;
		size_t skip = 0;
		if (strncmp(p, "{dir}", 5) == 0) {
			v = e->dir;
			skip = 5;
		} else if (strncmp(p, "{token}", 7) == 0) {
			v = e->token;
			skip = 7;
		} else if (strncmp(p, "{apid}", 6) == 0) {
			/* A's pid: set in B's copy; A is the 0 case. */
			snprintf(val, sizeof(val), "%d",
			         e->pid[0] > 0 ? (int)e->pid[0]
			                       : (int)getpid());
			v = val;
			skip = 6;
		} else if (strncmp(p, "{port}", 6) == 0) {
			snprintf(val, sizeof(val), "%u", e->port);
			v = val;
			skip = 6;
		}
		if (v != NULL) {
			size_t k = strlen(v);
			if (o + k >= n) {
				return -1;
			}
			memcpy(buf + o, v, k);
			o += k;
			p += skip;
		} else {
			if (o + 1 >= n) {
				return -1;
			}
			buf[o++] = *p++;
		}
	}
	buf[o] = '\0';
	return 0;
}

static int
l_prepare(struct bench_env *e, const void *arg, char *why)
{
	const struct lrow *r = arg;
	if (r->tmpl != NULL) {
		if (strstr(r->tmpl, "{port}") != NULL && e->port == 0) {
			return bench_why(why, BENCH_FAIL,
			                 "no free loopback port");
		}
		return BENCH_OK;
	}
	struct pair_state *ps = calloc(1, sizeof(*ps));
	if (ps == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	int rc = ipc_pair(&ps->a, &ps->b, r->pair_uri);
	if (rc < 0) {
		free(ps);
		if (rc == -EPROTONOSUPPORT || rc == -EOPNOTSUPP) {
			return bench_why(why, BENCH_SKIP,
			                 "%s is not in this build of libipc",
			                 r->pair_uri);
		}
		return bench_why(why, BENCH_FAIL, "ipc_pair(%s): %s: %s",
		                 r->pair_uri, ipc_strerror(rc),
		                 ipc_last_error());
	}
	e->state = ps;
	return BENCH_OK;
}

static int
l_open(struct bench_env *e, const void *arg, int server, void **ep, char *why)
{
	const struct lrow *r = arg;
	char uri[256];
	if (r->tmpl == NULL) {
		struct pair_state *ps = e->state;
		*ep = server ? ps->a : ps->b;
		/* This process's copy of the other end; the other process
		 * keeps using it.  Threads would share it: not for pairs. */
		ipc_close(server ? ps->b : ps->a);
		return BENCH_OK;
	}
	if (expand(e, r->tmpl, uri, sizeof(uri)) < 0) {
		return bench_why(why, BENCH_FAIL, "URI too long");
	}
	ipc_channel *ch = NULL;
	int rc = -ENOENT;
	for (int i = 0; i < OPEN_TRIES; i++) {
		rc = ipc_open(&ch, uri, server ? IPC_CREATE : 0);
		if (server || (rc != -ENOENT && rc != -ECONNREFUSED)) {
			break;
		}
		bench_sleep_ms(1);
	}
	if (rc == -EPROTONOSUPPORT) {
		return bench_why(why, BENCH_SKIP,
		                 "%.*s:// is not in this build of libipc",
		                 (int)strcspn(uri, ":"), uri);
	}
	if (rc < 0) {
		return bench_why(why, BENCH_FAIL, "%c: ipc_open(%s): %s: %s",
		                 server ? 'A' : 'B', uri, ipc_strerror(rc),
		                 ipc_last_error());
	}
	*ep = ch;
	return BENCH_OK;
}

static ssize_t
l_send(void *ep, const void *buf, size_t len)
{
	return ipc_send(ep, buf, len, 0);
}

static ssize_t
l_recv(void *ep, void *buf, size_t cap)
{
	return ipc_recv(ep, buf, cap, 0);
}

static int
l_reserve(void *ep, size_t len, void **buf)
{
	return ipc_reserve(ep, len, buf, 0);
}

static int
l_commit(void *ep, size_t len)
{
	return ipc_commit(ep, len);
}

static int
l_acquire(void *ep, const void **buf, size_t *len)
{
	return ipc_acquire(ep, buf, len, 0);
}

static int
l_release(void *ep)
{
	return ipc_release(ep);
}

static int
l_set_timeout(void *ep, int ms)
{
	return ipc_set_timeout(ep, ms);
}

static size_t
l_max_msg(void *ep)
{
	return ipc_max_msg(ep);
}

static const char *
l_errstr(void *ep)
{
	(void)ep;
	return ipc_last_error();
}

static void
l_close(void *ep, int server)
{
	(void)server;
	ipc_close(ep);
}

/* Remove entries of dir whose name contains token. */
static void
sweep_dir(const char *dir, const char *token)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, token) != NULL) {
			char path[512];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

/* System V objects that a killed A or B left: segments it created, queues
 * it last used.  (Semaphore sets name no process; a killed row may leave
 * one, which `ipcs -s` shows.) */
static void
sweep_sysv(const struct bench_env *e)
{
	static const char *const files[] = {"/proc/sysvipc/shm",
	                                    "/proc/sysvipc/msg"};
	for (int f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "r");
		char line[512];
		if (fp == NULL) {
			continue;
		}
		if (fgets(line, sizeof(line), fp) == NULL) {
			fclose(fp);
			continue;
		}
		while (fgets(line, sizeof(line), fp) != NULL) {
			long key, id, perms, size, p1, p2;
			/* shm: key shmid perms size cpid lpid ...
			 * msg: key msqid perms cbytes qnum lspid lrpid ... */
			if (f == 0 &&
			    sscanf(line, "%ld %ld %lo %ld %ld %ld", &key, &id,
			           &perms, &size, &p1, &p2) == 6) {
				if (p1 == e->pid[0] || p1 == e->pid[1]) {
					shmctl((int)id, IPC_RMID, NULL);
				}
			}
			long qnum;
			if (f == 1 &&
			    sscanf(line, "%ld %ld %lo %ld %ld %ld %ld", &key,
			           &id, &perms, &size, &qnum, &p1, &p2) == 7) {
				if ((p1 != 0 &&
				     (p1 == e->pid[0] || p1 == e->pid[1])) ||
				    (p2 != 0 &&
				     (p2 == e->pid[0] || p2 == e->pid[1]))) {
					msgctl((int)id, IPC_RMID, NULL);
				}
			}
		}
		fclose(fp);
	}
}

static void
l_cleanup(struct bench_env *e, const void *arg)
{
	const struct lrow *r = arg;
	if (r->tmpl == NULL && e->state != NULL) {
		struct pair_state *ps = e->state;
		ipc_close(ps->a);
		ipc_close(ps->b);
		free(ps);
		e->state = NULL;
	}
	sweep_dir(e->dir, e->token);
	sweep_dir("/dev/shm", e->token);
	sweep_dir("/dev/mqueue", e->token);
	if (e->pid[0] > 0) {
		sweep_sysv(e);
	}
}

/* The rows differ only in what they start before the fork and stop
 * after it. */
#define LIBIPC_OPS(prep, clean)                                               \
	{                                                                     \
		.prepare = prep, .open = l_open, .send = l_send,              \
		.recv = l_recv, .reserve = l_reserve, .commit = l_commit,     \
		.acquire = l_acquire, .release = l_release,                   \
		.set_timeout = l_set_timeout, .max_msg = l_max_msg,           \
		.errstr = l_errstr, .close = l_close, .cleanup = clean,       \
	}

static const struct bench_ops libipc_ops = LIBIPC_OPS(l_prepare, l_cleanup);

static const struct lrow r_unix = {"unix://{dir}/{token}.sock", NULL};
static const struct lrow r_seqpacket = {"unix+seqpacket://{dir}/{token}.sp",
                                        NULL};
static const struct lrow r_dgram = {"unix+dgram://{dir}/{token}.dg", NULL};
static const struct lrow r_tcp = {"tcp://127.0.0.1:{port}", NULL};
static const struct lrow r_udp = {"udp://127.0.0.1:{port}", NULL};
static const struct lrow r_pipe = {NULL, "pipe:"};
static const struct lrow r_fifo = {"fifo://{dir}/{token}.fifo", NULL};
static const struct lrow r_shm = {"shm://{token}", NULL};
static const struct lrow r_shm_busy = {"shm://{token}?" SHM_BUSY_OPTION, NULL};
static const struct lrow r_mq = {"mq://{token}", NULL};
static const struct lrow r_mmap = {"mmap://{dir}/{token}.ring", NULL};
static const struct lrow r_mmap_interval = {
        "mmap://{dir}/{token}.ring?sync=interval", NULL};
static const struct lrow r_mmap_commit = {
        "mmap://{dir}/{token}.ring?sync=commit", NULL};
static const struct lrow r_file = {"file://{dir}/{token}.log", NULL};
static const struct lrow r_file_commit = {
        "file://{dir}/{token}.log?sync=commit", NULL};

static const struct lrow r_sysvmq = {"sysvmq://{token}", NULL};
static const struct lrow r_sysvshm = {"sysvshm://{token}", NULL};
static const struct lrow r_inproc = {"inproc://{token}", NULL};
static const struct lrow r_dbus = {
        "dbus:///org.libipc.{token}?address=unix:path={dir}/{token}.bus",
        NULL};

/* dbus:// talks through a private dbus-daemon that the row starts on
 * {dir}/{token}.bus and stops afterwards. */
static int
d_prepare(struct bench_env *e, const void *arg, char *why)
{
	ipc_channel *ch = NULL;
	char sock[160];

	(void)arg;
	if (ipc_open(&ch, "dbus:///a.b?address=unix:path=/", 0) ==
	    -EPROTONOSUPPORT) {
		return bench_why(why, BENCH_SKIP,
		                 "dbus:// is not in this build of libipc "
		                 "(needs libsystemd-dev)");
	}
	struct dbusd *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	snprintf(sock, sizeof(sock), "%s/%s.bus", e->dir, e->token);
	int rc = dbusd_start(d, sock, why, BENCH_WHY);
	if (rc < 0) {
		free(d);
		return rc == -ENOENT ? BENCH_SKIP : BENCH_FAIL;
	}
	e->state = d;
	return BENCH_OK;
}

static void
d_cleanup(struct bench_env *e, const void *arg)
{
	struct dbusd *d = e->state;

	if (d != NULL) {
		dbusd_stop(d);
		free(d);
		e->state = NULL;
	}
	l_cleanup(e, arg);
}

static const struct bench_ops dbus_ops = LIBIPC_OPS(d_prepare, d_cleanup);

/* ------------------------------------------- nats:// and tls+tcp:// -- */

/* Is scheme in this build?  ipc_open of a throwaway URI says
 * -EPROTONOSUPPORT when not. */
static int
have_scheme(const char *uri)
{
	ipc_channel *ch = NULL;
	int r = ipc_open(&ch, uri, 0);
	if (r == 0) {
		ipc_close(ch);
	}
	return r != -EPROTONOSUPPORT;
}

static int
on_path(const char *prog)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static int
port_up(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

/* nats:// rows talk through a private nats-server (JetStream, its store
 * in the row's directory) that the row starts on {port} and stops. */
static int
n_prepare(struct bench_env *e, const void *arg, char *why)
{
	char conf[160], log[160];
	FILE *f;
	pid_t pid;

	(void)arg;
	if (!have_scheme("nats://127.0.0.1:1/x?optimeout=10")) {
		return bench_why(why, BENCH_SKIP,
		                 "nats:// is not in this build of libipc "
		                 "(needs libnats-dev)");
	}
	if (!on_path("nats-server")) {
		return bench_why(why, BENCH_SKIP,
		                 "nats-server is not installed");
	}
	snprintf(conf, sizeof(conf), "%s/nats.conf", e->dir);
	snprintf(log, sizeof(log), "%s/nats.log", e->dir);
	f = fopen(conf, "w");
	if (f == NULL) {
		return bench_why(why, BENCH_FAIL, "%s: %s", conf,
		                 strerror(errno));
	}
	fprintf(f,
	        "listen: 127.0.0.1:%u\nmax_payload: 4MB\njetstream { "
	        "store_dir: \"%s/js\" }\n",
	        e->port, e->dir);
	fclose(f);
	pid = fork();
	if (pid < 0) {
		return bench_why(why, BENCH_FAIL, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		execlp("nats-server", "nats-server", "-c", conf, "-l", log,
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !port_up(e->port); i++) {
		nanosleep(&(struct timespec){0, 10000000L}, NULL);
	}
	if (!port_up(e->port)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return bench_why(why, BENCH_FAIL,
		                 "nats-server did not start (see %s)", log);
	}
	pid_t *ps = malloc(sizeof(*ps));
	if (ps == NULL) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	*ps = pid;
	e->state = ps;
	return BENCH_OK;
}

static void
n_cleanup(struct bench_env *e, const void *arg)
{
	pid_t *ps = e->state;
	char cmd[300];

	if (ps != NULL) {
		kill(*ps, SIGTERM);
		waitpid(*ps, NULL, 0);
		free(ps);
		e->state = NULL;
	}
	snprintf(cmd, sizeof(cmd),
	         "rm -rf '%s/js' '%s/nats.conf' '%s/nats.log'", e->dir, e->dir,
	         e->dir);
	if (system(cmd) != 0) {
		/* left for the harness's sweep */
	}
	l_cleanup(e, arg);
}

static const struct bench_ops nats_ops = LIBIPC_OPS(n_prepare, n_cleanup);
static const struct lrow r_nats = {"nats://127.0.0.1:{port}/{token}", NULL};
static const struct lrow r_nats_core = {"nats://127.0.0.1:{port}/{token}?js=0",
                                        NULL};

/* tls+tcp:// rows use a self-signed certificate for 127.0.0.1 that the
 * row makes with the openssl command in its directory. */
static int
t_prepare(struct bench_env *e, const void *arg, char *why)
{
	char cmd[600];

	if (!have_scheme("tls+tcp://127.0.0.1:1?verify=none")) {
		return bench_why(why, BENCH_SKIP,
		                 "tls+tcp:// is not in this build of libipc "
		                 "(needs libssl-dev)");
	}
	if (!on_path("openssl")) {
		return bench_why(why, BENCH_SKIP,
		                 "the openssl command is not installed");
	}
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey ec -pkeyopt "
	         "ec_paramgen_curve:P-256 -nodes -keyout '%s/tls.key' -out "
	         "'%s/tls.pem' -days 1 -subj /CN=ipc-bench -addext "
	         "subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
	         e->dir, e->dir);
	if (system(cmd) != 0) {
		return bench_why(why, BENCH_FAIL,
		                 "openssl could not make a certificate");
	}
	return l_prepare(e, arg, why);
}

static void
t_cleanup(struct bench_env *e, const void *arg)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/tls.key", e->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/tls.pem", e->dir);
	unlink(p);
	l_cleanup(e, arg);
}

static const struct bench_ops tls_ops = LIBIPC_OPS(t_prepare, t_cleanup);
static const struct lrow r_tls = {
        "tls+tcp://127.0.0.1:{port}?cert={dir}/tls.pem&key={dir}/"
        "tls.key&ca={dir}/tls.pem",
        NULL};

static const struct lrow r_signal = {"signal://{apid}", NULL};

#define ROW(name, notes, arg, flags)                                          \
	{                                                                     \
		name, "libipc", notes, &libipc_ops, arg, flags, NULL          \
	}

const struct bench_row bench_libipc_rows[] = {
        ROW("unix", "unix:///PATH stream socket, framed", &r_unix, 0),
        ROW("unix+seqpacket", "unix+seqpacket:///PATH", &r_seqpacket, 0),
        ROW("unix+dgram", "unix+dgram:///PATH", &r_dgram, 0),
        ROW("tcp", "tcp://127.0.0.1:PORT, framed", &r_tcp, 0),
        {"tls+tcp", "libipc", "tls+tcp://127.0.0.1:PORT, TLS 1.3, framed",
         &tls_ops, &r_tls, 0, NULL},
        {"nats", "libipc",
         "nats://127.0.0.1:PORT/SUBJECT, JetStream, through a private "
         "nats-server",
         &nats_ops, &r_nats, 0, NULL},
        {"nats-core", "libipc",
         "nats://...?js=0, core NATS (at most once): throughput as "
         "received",
         &nats_ops, &r_nats_core, BENCH_LOSSY, NULL},
        ROW("udp", "udp://127.0.0.1:PORT, unreliable: throughput as received",
            &r_udp, BENCH_LOSSY),
        ROW("pipe", "pipe: (ipc_pair, then fork)", &r_pipe, 0),
        ROW("fifo", "fifo:///PATH, one FIFO per direction", &r_fifo, 0),
        ROW("shm", "shm://NAME, ipc_send/ipc_recv (copies)", &r_shm, 0),
        ROW("shm-busy", "shm://NAME?" SHM_BUSY_OPTION ", busy-polling",
            &r_shm_busy, 0),
        ROW("shm-zc",
            "shm://NAME, ipc_reserve/commit + acquire/release; "
            "payload untouched unless --touch",
            &r_shm, BENCH_ZEROCOPY),
        ROW("mmap", "mmap:///PATH, rings in a mapped file, sync=none", &r_mmap,
            0),
        ROW("mmap-zc", "mmap:///PATH, ipc_reserve/commit + acquire/release",
            &r_mmap, BENCH_ZEROCOPY),
        ROW("mmap-interval", "mmap:///PATH?sync=interval, msync every 100 ms",
            &r_mmap_interval, 0),
        ROW("mmap-commit",
            "mmap:///PATH?sync=commit, msync after every commit; "
            "1/50 of the pings",
            &r_mmap_commit, BENCH_SLOW),
        ROW("file", "file:///PATH, record logs, sync=none", &r_file, 0),
        ROW("file-commit",
            "file:///PATH?sync=commit, fdatasync after every record; "
            "1/50 of the pings",
            &r_file_commit, BENCH_SLOW),
        ROW("mq", "mq://NAME, POSIX message queues", &r_mq, 0),
        ROW("sysvmq", "sysvmq://NAME, System V message queues", &r_sysvmq, 0),
        ROW("sysvshm", "sysvshm://NAME, shmget + SysV semaphores", &r_sysvshm,
            0),
        ROW("inproc", "inproc://NAME, two threads of one process", &r_inproc,
            BENCH_THREADS),
        {"dbus", "libipc",
         "dbus:///NAME?address=, Send(ay) calls through a private "
         "dbus-daemon",
         &dbus_ops, &r_dbus, 0, NULL},
        ROW("signal", "signal://PID, realtime signals, 8 B per signal",
            &r_signal, 0),
        {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};
