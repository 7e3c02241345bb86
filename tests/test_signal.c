/*
 * signal:// driver tests: a flood of 10^5 messages beside a second channel
 * of the same user, with the user's queued signals (SigQ) bounded by the
 * windows; kill -9 of either peer; a second connector turned away;
 * hostile signals from a stranger and forged ones; the process-wide rules
 * (one channel per signal number, handlers and unblocking threads
 * refused, the mask restored on close); a process without a channel is
 * refused and never signalled.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

#define LIMIT_S    120
#define FLOOD_N    100000
#define W_FLOOD    256 /* the driver's default window */
#define W_OTHER    32
#define SIGQ_SLACK 16 /* credit and close signals, a stray SIGCHLD */
#define DEATH_S    (SANITIZED ? 2.5 : 1.0)
#define DEFSIG     (SIGRTMAX - 4)

/* ------------------------------------------------------------ helpers -- */

static void
put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* A flood message: seq, then bytes that depend on seq; 8..64 bytes. */
static size_t
flood_msg(unsigned char *b, uint32_t seq)
{
	size_t len = 8 + (seq * 7u) % 57u;

	put32(b, seq);
	put32(b + 4, (uint32_t)len);
	for (size_t i = 8; i < len; i++) {
		b[i] = (unsigned char)(seq * 31u + i);
	}
	return len;
}

static int
flood_ok(const unsigned char *b, ssize_t n, uint32_t seq)
{
	if (n < 8 || get32(b) != seq || get32(b + 4) != (uint32_t)n) {
		return 0;
	}
	for (ssize_t i = 8; i < n; i++) {
		if (b[i] != (unsigned char)(seq * 31u + (size_t)i)) {
			return 0;
		}
	}
	return 1;
}

/* The user's queued signals, from /proc/self/status SigQ. */
static long
sigq(void)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "SigQ:", 5) == 0) {
			v = strtol(line + 5, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (f == NULL) {
		return -errno;
	}
	int ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

/* A user namespace of our own, so that SigQ counts only this test's
 * processes (the count is kept per user namespace).  0, or -errno. */
static int
own_user_ns(void)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();

	if (unshare(CLONE_NEWUSER) != 0) {
		return -errno;
	}
	snprintf(map, sizeof map, "%d %d 1\n", (int)uid, (int)uid);
	(void)write_file("/proc/self/setgroups", "deny");
	int r = write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof map, "%d %d 1\n", (int)gid, (int)gid);
	if (r == 0) {
		r = write_file("/proc/self/gid_map", map);
	}
	return r;
}

static void
pipe_put(int fd, int v)
{
	TU_CHECK(write(fd, &v, sizeof v) == (ssize_t)sizeof v);
}

static int
pipe_get(int fd)
{
	int v = 0;
	ssize_t r;

	do {
		r = read(fd, &v, sizeof v);
	} while (r < 0 && errno == EINTR);
	TU_CHECK_MSG(r == (ssize_t)sizeof v, "pipe: %s",
	             r < 0 ? strerror(errno) : "closed");
	return v;
}

static char *
peer_uri(char *buf, size_t n, pid_t pid, const char *query)
{
	snprintf(buf, n, "signal://%d%s", (int)pid, query);
	return buf;
}

static void
run(tu_child_fn fn, const char *name)
{
	char why[1024], token[64];

	tu_unique(token, sizeof token, "ipcsig");
	enum tu_result r = tu_run_isolated(fn, NULL, LIMIT_S, token, NULL, why,
	                                   sizeof why);
	if (r == TU_SKIP) {
		printf("SKIP %s: %s\n", name, why);
		skip();
	}
	if (r == TU_FAIL) {
		fail_msg("%s: %s", name, why);
	}
}

/* ------------------------------------------------------------- flood -- */

struct shared {
	_Atomic long other_trips; /* round trips of the second channel */
	_Atomic int stop;
	_Atomic int flood_done;
};

static struct shared *sh;
static int ready_w, ready_r;
static pid_t other_creator;

/* The second channel's creator: echo until the peer is gone. */
static int
other_echo(void *arg)
{
	ipc_channel *ch;
	unsigned char b[256];

	(void)arg;
	TU_OK(ipc_open(&ch, "signal://?window=32", IPC_CREATE));
	pipe_put(ready_w, 1);
	for (;;) {
		ssize_t n = ipc_recv(ch, b, sizeof b, 0);
		if (n == -EPIPE) {
			break;
		}
		TU_OK(n);
		TU_CHECK_EQ(ipc_send(ch, b, (size_t)n, 0), n);
	}
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

/* The second channel's connector: 64-byte round trips until told. */
static int
other_ping(void *arg)
{
	ipc_channel *ch;
	unsigned char b[64], in[64];
	char u[64];

	(void)arg;
	TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, other_creator, "?window=32"),
	               0));
	TU_OK(ipc_set_timeout(ch, 20000));
	pipe_put(ready_w, 2);
	for (long i = 0; !atomic_load(&sh->stop); i++) {
		memset(b, (int)(i & 0xff), sizeof b);
		put32(b, (uint32_t)i);
		TU_CHECK_EQ(ipc_send(ch, b, sizeof b, 0), (long long)sizeof b);
		TU_CHECK_EQ(ipc_recv(ch, in, sizeof in, 0),
		            (long long)sizeof in);
		TU_CHECK(memcmp(b, in, sizeof b) == 0);
		atomic_fetch_add(&sh->other_trips, 1);
	}
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

static pid_t flood_target;

static int
flood_send(void *arg)
{
	ipc_channel *ch;
	unsigned char b[64];
	char u[64];

	(void)arg;
	TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, flood_target, ""), 0));
	TU_OK(ipc_set_timeout(ch, 30000));
	for (uint32_t i = 0; i < FLOOD_N; i++) {
		size_t len = flood_msg(b, i);
		ssize_t r = ipc_send(ch, b, len, 0);
		TU_CHECK_MSG(r == (ssize_t)len, "flood send %u: %s", i,
		             tu_errname((int)r));
	}
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

static _Atomic long sigq_max;
static _Atomic int sampling;

static void *
sampler(void *arg)
{
	(void)arg;
	while (atomic_load(&sampling)) {
		long q = sigq();
		if (q > atomic_load(&sigq_max)) {
			atomic_store(&sigq_max, q);
		}
		usleep(200);
	}
	return NULL;
}

static int
case_flood(void *arg)
{
	ipc_channel *ch;
	unsigned char b[128];
	int p[2];
	pthread_t th;
	char why[64] = "";

	(void)arg;
	int ns = own_user_ns();
	if (ns < 0) {
		snprintf(why, sizeof why, " (no user namespace: %s)",
		         strerror(-ns));
	}
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
	          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TU_CHECK(sh != MAP_FAILED);
	TU_CHECK(pipe(p) == 0);
	ready_r = p[0];
	ready_w = p[1];
	long base = sigq();

	/* The second channel, running the whole time. */
	other_creator = tu_fork(other_echo, NULL, LIMIT_S);
	TU_CHECK(other_creator > 0);
	TU_CHECK_EQ(pipe_get(ready_r), 1);
	pid_t pinger = tu_fork(other_ping, NULL, LIMIT_S);
	TU_CHECK(pinger > 0);
	TU_CHECK_EQ(pipe_get(ready_r), 2);

	TU_OK(ipc_open(&ch, "signal://", IPC_CREATE));
	TU_OK(ipc_set_timeout(ch, 30000));
	atomic_store(&sampling, 1);
	TU_CHECK(pthread_create(&th, NULL, sampler, NULL) == 0);
	flood_target = getpid();
	pid_t sender = tu_fork(flood_send, NULL, LIMIT_S);
	TU_CHECK(sender > 0);

	double t0 = tu_now();
	long trips0 = atomic_load(&sh->other_trips), trips_half = 0;
	for (uint32_t i = 0; i < FLOOD_N; i++) {
		ssize_t n = ipc_recv(ch, b, sizeof b, 0);
		TU_CHECK_MSG(flood_ok(b, n, i),
		             "flood message %u: %s (%zd bytes)", i,
		             tu_errname((int)n), n);
		if (i == FLOOD_N / 2) {
			trips_half = atomic_load(&sh->other_trips);
		}
	}
	double t1 = tu_now();
	long trips1 = atomic_load(&sh->other_trips);
	char x[8];
	TU_ERR(ipc_recv(ch, x, sizeof x, 0), -EPIPE);
	TU_CHECK_EQ(tu_wait_ok(sender, 30000), 0);
	atomic_store(&sh->stop, 1);
	TU_CHECK_EQ(tu_wait_ok(pinger, 30000), 0);
	TU_CHECK_EQ(tu_wait_ok(other_creator, 30000), 0);
	atomic_store(&sampling, 0);
	pthread_join(th, NULL);
	TU_CHECK_EQ(ipc_close(ch), 0);
	close(ready_r);
	close(ready_w);

	long mx = atomic_load(&sigq_max);
	long bound = W_FLOOD + 2 * W_OTHER + SIGQ_SLACK + (ns < 0 ? base : 0);
	printf("flood: %d messages in %.2f s (%.0f msg/s); the other "
	       "channel made %ld round trips meanwhile (%ld in the first "
	       "half); SigQ at most %ld (bound %ld: windows %d + 2 x %d + "
	       "%d%s)\n",
	       FLOOD_N, t1 - t0, FLOOD_N / (t1 - t0), trips1 - trips0,
	       trips_half - trips0, mx, bound, W_FLOOD, W_OTHER, SIGQ_SLACK,
	       why);
	TU_CHECK_MSG(trips_half > trips0 && trips1 > trips_half,
	             "the second channel stalled during the flood (%ld, %ld, "
	             "%ld round trips)",
	             trips0, trips_half, trips1);
	TU_CHECK_MSG(mx >= 0 && mx <= bound,
	             "SigQ reached %ld, above the bound %ld", mx, bound);
	munmap(sh, sizeof *sh);
	return 0;
}

static void
t_flood(void **state)
{
	(void)state;
	run(case_flood, "flood");
}

/* -------------------------------------------------------- peer death -- */

static pid_t dying_target;

static int
hold_create(void *arg)
{
	ipc_channel *ch;
	char b[16];

	(void)arg;
	TU_OK(ipc_open(&ch, "signal://", IPC_CREATE));
	pipe_put(ready_w, 1);
	TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 2);
	pause(); /* until killed */
	return 0;
}

static int
hold_connect(void *arg)
{
	ipc_channel *ch;
	char u[64];

	(void)arg;
	TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, dying_target, ""), 0));
	TU_CHECK_EQ(ipc_send(ch, "hi", 2, 0), 2);
	pipe_put(ready_w, 1);
	pause();
	return 0;
}

/* kill -9 of the creator (we connected) and of the connector (we
 * created): -EPIPE within one second, for recv and for send. */
static int
case_kill(void *arg)
{
	int p[2];
	char u[64], b[16];

	(void)arg;
	TU_CHECK(pipe(p) == 0);
	ready_r = p[0];
	ready_w = p[1];
	for (int round = 0; round < 4; round++) {
		ipc_channel *ch;
		pid_t pid;
		long long rc;
		int op = round % 2 ? 's' : 'r';
		if (round < 2) {
			pid = tu_fork(hold_create, NULL, LIMIT_S);
			TU_CHECK(pid > 0);
			TU_CHECK_EQ(pipe_get(ready_r), 1);
			TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, pid, ""),
			               0));
			TU_CHECK_EQ(ipc_send(ch, "hi", 2, 0), 2);
		} else {
			TU_OK(ipc_open(&ch, "signal://", IPC_CREATE));
			dying_target = getpid();
			pid = tu_fork(hold_connect, NULL, LIMIT_S);
			TU_CHECK(pid > 0);
			TU_CHECK_EQ(pipe_get(ready_r), 1);
			TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 2);
		}
		double t = tu_time_to_epipe(ch, pid, 100, op, &rc);
		int st;
		TU_CHECK(tu_wait(pid, 10000, &st) == 0);
		printf("%s killed while we %s: %s after %.3f s\n",
		       round < 2 ? "creator" : "connector",
		       op == 'r' ? "receive" : "send", tu_errname((int)rc), t);
		TU_CHECK_EQ(rc, -EPIPE);
		TU_CHECK_MSG(t <= DEATH_S, "-EPIPE after %.3f s", t);
		TU_ERR(ipc_send(ch, "x", 1, IPC_NONBLOCK), -EPIPE);
		TU_CHECK_EQ(ipc_close(ch), 0);
	}
	close(p[0]);
	close(p[1]);
	return 0;
}

static void
t_kill(void **state)
{
	(void)state;
	run(case_kill, "kill");
}

/* ------------------------------------------------ a second connector -- */

static pid_t creator_pid;

static int
second_connector(void *arg)
{
	ipc_channel *ch;
	char u[64], b[16];

	(void)arg;
	TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, creator_pid, ""), 0));
	TU_OK(ipc_set_timeout(ch, 5000));
	ssize_t r = ipc_recv(ch, b, sizeof b, 0);
	TU_CHECK_MSG(r == -ECONNREFUSED, "second connector: recv %s",
	             tu_errname((int)r));
	TU_ERR(ipc_send(ch, "x", 1, 0), -ECONNREFUSED);
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

static int
first_connector(void *arg)
{
	ipc_channel *ch;
	char u[64], b[16];

	(void)arg;
	TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, creator_pid, ""), 0));
	TU_OK(ipc_set_timeout(ch, 10000));
	TU_CHECK_EQ(ipc_send(ch, "one", 3, 0), 3);
	pid_t pp = 0;
	uid_t uu = (uid_t)-1;
	TU_OK(ipc_peer_cred(ch, &pp, &uu, NULL));
	TU_CHECK(pp == creator_pid && uu == geteuid());
	TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 3);
	TU_CHECK(memcmp(b, "two", 3) == 0);
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

static int
case_second(void *arg)
{
	ipc_channel *ch;
	char b[16];

	(void)arg;
	TU_OK(ipc_open(&ch, "signal://", IPC_CREATE));
	TU_OK(ipc_set_timeout(ch, 10000));
	creator_pid = getpid();
	TU_ERR(ipc_peer_cred(ch, NULL, NULL, NULL), -ENOTCONN);
	pid_t a = tu_fork(first_connector, NULL, LIMIT_S);
	TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 3);
	pid_t pp = 0;
	gid_t gg = (gid_t)-1;
	TU_OK(ipc_peer_cred(ch, &pp, NULL, &gg));
	TU_CHECK_MSG(pp == a && gg == getegid(),
	             "ipc_peer_cred: pid %d gid %d, want %d and %d", (int)pp,
	             (int)gg, (int)a, (int)getegid());
	pid_t c = tu_fork(second_connector, NULL, LIMIT_S);
	TU_CHECK(a > 0 && c > 0);
	/* Our receives see the stranger's hello and turn it away. */
	int st = 0;
	for (;;) {
		TU_ERR(ipc_recv(ch, b, sizeof b, IPC_NONBLOCK), -EAGAIN);
		int w = tu_wait(c, 10, &st);
		if (w == 0) {
			break;
		}
		TU_CHECK(w == -ETIMEDOUT);
	}
	TU_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	             "the second connector failed");
	TU_CHECK_EQ(ipc_send(ch, "two", 3, 0), 3);
	TU_CHECK_EQ(tu_wait_ok(a, 10000), 0);
	TU_ERR(ipc_recv(ch, b, sizeof b, 0), -EPIPE);
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

static void
t_second(void **state)
{
	(void)state;
	run(case_second, "second");
}

/* ------------------------------------------------------------ hostile -- */

static int
queue_word(pid_t to, int signo, pid_t claimed, uint64_t w)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	si.si_signo = signo;
	si.si_code = SI_QUEUE;
	si.si_pid = claimed;
	si.si_uid = getuid();
	si.si_value.sival_ptr = (void *)(uintptr_t)w;
	return (int)syscall(SYS_rt_sigqueueinfo, to, signo, &si);
}

static pid_t hostile_peer;

/* A connector that sends "a", then, on the word from the pipe, "b". */
static int
honest_peer(void *arg)
{
	ipc_channel *ch;
	char u[64];

	(void)arg;
	TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, creator_pid, ""), 0));
	TU_OK(ipc_set_timeout(ch, 10000));
	TU_CHECK_EQ(ipc_send(ch, "a", 1, 0), 1);
	TU_CHECK_EQ(pipe_get(ready_r), 1);
	TU_CHECK_EQ(ipc_send(ch, "b", 1, 0), 1);
	TU_CHECK_EQ(pipe_get(ready_r), 2);
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

/* Strangers' signals (any value, kill() without a value) are dropped;
 * forged ones in the peer's name fail the channel with -EPROTO, never
 * worse (ASan checks the "never worse"). */
static int
case_hostile(void *arg)
{
	ipc_channel *ch;
	char b[64];
	int p[2];

	(void)arg;
	TU_CHECK(pipe(p) == 0);
	ready_r = p[0];
	ready_w = p[1];
	TU_OK(ipc_open(&ch, "signal://", IPC_CREATE));
	TU_OK(ipc_set_timeout(ch, 10000));
	creator_pid = getpid();
	/* Before any peer: garbage from "pid 1" and from us. */
	for (uint64_t w = 0; w < 200; w++) {
		TU_CHECK(queue_word(getpid(), DEFSIG, 1,
		                    w * 0x9e3779b97f4a7c15ull) == 0);
	}
	TU_ERR(ipc_recv(ch, b, sizeof b, IPC_NONBLOCK), -EAGAIN);
	hostile_peer = tu_fork(honest_peer, NULL, LIMIT_S);
	TU_CHECK(hostile_peer > 0);
	TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 1);
	/* A stranger (pid 1 claimed, and a plain kill()) in between. */
	for (uint64_t w = 0; w < 200; w++) {
		TU_CHECK(queue_word(getpid(), DEFSIG, 1, ~w) == 0);
	}
	TU_CHECK(kill(getpid(), DEFSIG) == 0);
	pipe_put(ready_w, 1);
	TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 1);
	TU_CHECK(b[0] == 'b');
	/* Forged in the peer's name: a header claiming 2^31 bytes, then
	 * words of nonsense. */
	TU_CHECK(queue_word(getpid(), DEFSIG, hostile_peer,
	                    0xA7u | 1u << 8 | 3u << 12 | 0xfffu << 20 |
	                            (uint64_t)0x80000000u << 32) == 0);
	ssize_t r = ipc_recv(ch, b, sizeof b, 0);
	TU_CHECK_MSG(r == -EPROTO, "forged header: %s", tu_errname((int)r));
	printf("forged signal: %s\n", ipc_last_error());
	pipe_put(ready_w, 2);
	TU_CHECK_EQ(tu_wait_ok(hostile_peer, 10000), 0);
	TU_CHECK_EQ(ipc_close(ch), 0);
	close(p[0]);
	close(p[1]);
	return 0;
}

static void
t_hostile(void **state)
{
	(void)state;
	run(case_hostile, "hostile");
}

/* ------------------------------------------------- detached messages -- */

#define DETACH_ROUNDS 200
#define DETACH_LEN    4000 /* more signals than one window */

static int
echo_peer(void *arg)
{
	ipc_channel *ch;
	char u[64];
	unsigned char *b = malloc(DETACH_LEN);

	(void)arg;
	TU_CHECK(b != NULL);
	TU_OK(ipc_open(&ch, peer_uri(u, sizeof u, creator_pid, ""), 0));
	TU_OK(ipc_set_timeout(ch, 10000));
	TU_CHECK_EQ(ipc_send(ch, "go", 2, 0), 2);
	for (int i = 0; i < DETACH_ROUNDS; i++) {
		ssize_t n = ipc_recv(ch, b, DETACH_LEN, 0);
		TU_CHECK_EQ(n, DETACH_LEN);
		TU_CHECK_EQ(ipc_send(ch, b, (size_t)n, 0), n);
	}
	TU_CHECK_EQ(ipc_close(ch), 0);
	free(b);
	return 0;
}

/* A message longer than the window sent with IPC_NONBLOCK goes out in
 * part; the rest must be pushed by the receive that follows, also when
 * the credit for it arrives while that receive reads (it once waited for
 * a wake-up that had already been used). */
static int
case_detached(void *arg)
{
	ipc_channel *ch;
	unsigned char *out = malloc(DETACH_LEN), *in = malloc(DETACH_LEN);
	char b[8];

	(void)arg;
	TU_CHECK(out != NULL && in != NULL);
	TU_OK(ipc_open(&ch, "signal://", IPC_CREATE));
	TU_OK(ipc_set_timeout(ch, 5000));
	creator_pid = getpid();
	pid_t peer = tu_fork(echo_peer, NULL, LIMIT_S);
	TU_CHECK(peer > 0);
	TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 2);
	for (int i = 0; i < DETACH_ROUNDS; i++) {
		memset(out, i, DETACH_LEN);
		ssize_t r = ipc_send(ch, out, DETACH_LEN, IPC_NONBLOCK);
		TU_CHECK_MSG(r == DETACH_LEN || r == -EAGAIN,
		             "round %d: send %s", i, tu_errname((int)r));
		if (r == -EAGAIN) {
			TU_CHECK_EQ(ipc_send(ch, out, DETACH_LEN, 0),
			            DETACH_LEN);
		}
		r = ipc_recv(ch, in, DETACH_LEN, 0);
		TU_CHECK_MSG(r == DETACH_LEN, "round %d: recv %s", i,
		             tu_errname((int)r));
		TU_CHECK(memcmp(out, in, DETACH_LEN) == 0);
	}
	TU_CHECK_EQ(tu_wait_ok(peer, 10000), 0);
	TU_CHECK_EQ(ipc_close(ch), 0);
	free(out);
	free(in);
	return 0;
}

static void
t_detached(void **state)
{
	(void)state;
	run(case_detached, "detached");
}

/* ---------------------------------------------------------- local URI -- */

static char local_uri[128];

/* Open what the creator's ipc_local_uri() said, and say hello. */
static int
local_peer(void *arg)
{
	ipc_channel *ch;

	(void)arg;
	TU_OK(ipc_open(&ch, local_uri, 0));
	const char *mine = ipc_local_uri(ch);
	TU_CHECK_MSG(mine != NULL && strcmp(mine, local_uri) == 0,
	             "connector's ipc_local_uri: %s",
	             mine != NULL ? mine : ipc_last_error());
	TU_CHECK_EQ(ipc_send(ch, "hi", 2, 0), 2);
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

/* A creator's ipc_local_uri() is the pid form with its options, and a
 * process that opens exactly that reaches it. */
static int
case_local_uri(void *arg)
{
	ipc_channel *ch;
	char want[128], b[8];

	(void)arg;
	TU_OK(ipc_open(&ch, "signal://?window=32", IPC_CREATE));
	TU_OK(ipc_set_timeout(ch, 10000));
	const char *lu = ipc_local_uri(ch);
	TU_CHECK_MSG(lu != NULL, "ipc_local_uri: %s", ipc_last_error());
	peer_uri(want, sizeof want, getpid(), "?window=32");
	TU_CHECK_MSG(strcmp(lu, want) == 0,
	             "ipc_local_uri \"%s\", want \"%s\"", lu, want);
	snprintf(local_uri, sizeof local_uri, "%s", lu);
	pid_t peer = tu_fork(local_peer, NULL, LIMIT_S);
	TU_CHECK(peer > 0);
	TU_CHECK_EQ(ipc_recv(ch, b, sizeof b, 0), 2);
	TU_CHECK_EQ(tu_wait_ok(peer, 10000), 0);
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

static void
t_local_uri(void **state)
{
	(void)state;
	run(case_local_uri, "local_uri");
}

/* ----------------------------------------------- process-wide state -- */

static int
blocked_here(int signo)
{
	sigset_t cur;

	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	return sigismember(&cur, signo);
}

static void
handler(int sig)
{
	(void)sig;
}

static _Atomic int thread_go, thread_up;

/* A thread that runs until thread_go (glibc starts a thread with every
 * signal blocked and sets its mask once it runs: wait for thread_up). */
static void *
idle_thread(void *arg)
{
	(void)arg;
	atomic_store(&thread_up, 1);
	while (!atomic_load(&thread_go)) {
		usleep(1000);
	}
	return NULL;
}

/* A process that has no channel (it does not block the signal): a
 * connector is refused and the process is never signalled. */
static int
bystander(void *arg)
{
	(void)arg;
	pipe_put(ready_w, 1);
	TU_CHECK_EQ(pipe_get(ready_r), 7);
	return 0;
}

static int
case_process(void *arg)
{
	ipc_channel *a, *b;
	char u[96];
	int p[2], q[2];

	(void)arg;
	TU_CHECK(!blocked_here(DEFSIG));
	TU_OK(ipc_open(&a, "signal://", IPC_CREATE));
	TU_CHECK_MSG(blocked_here(DEFSIG), "open did not block signal %d",
	             DEFSIG);
	/* One channel per signal number per process. */
	TU_ERR(ipc_open(&b, "signal://", IPC_CREATE), -EBUSY);
	printf("second channel: %s\n", ipc_last_error());
	snprintf(u, sizeof u, "signal://?signo=%d", DEFSIG - 1);
	TU_OK(ipc_open(&b, u, IPC_CREATE));
	TU_CHECK_EQ(ipc_close(b), 0);
	TU_CHECK_EQ(ipc_close(a), 0);
	TU_CHECK_MSG(!blocked_here(DEFSIG), "close left signal %d blocked",
	             DEFSIG);

	/* Bad numbers and addresses. */
	snprintf(u, sizeof u, "signal://?signo=%d", SIGRTMIN - 1);
	TU_ERR(ipc_open(&a, u, IPC_CREATE), -EINVAL);
	TU_ERR(ipc_open(&a, "signal://?signo=65", IPC_CREATE), -EINVAL);
	TU_ERR(ipc_open(&a, "signal://", 0), -EINVAL);
	TU_ERR(ipc_open(&a, "signal://12x", 0), -EINVAL);
	TU_ERR(ipc_open(&a, "signal://1/path", 0), -EINVAL);
	TU_ERR(ipc_open(&a, "signal://1", IPC_CREATE), -EINVAL);

	/* A handler installed: refused, and the handler is left alone. */
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	TU_CHECK(sigaction(DEFSIG, &sa, &old) == 0);
	TU_ERR(ipc_open(&a, "signal://", IPC_CREATE), -EBUSY);
	printf("with a handler: %s\n", ipc_last_error());
	TU_CHECK(!blocked_here(DEFSIG));
	TU_CHECK(sigaction(DEFSIG, &old, NULL) == 0);

	/* Another thread that does not block the signal: refused. */
	pthread_t th;
	atomic_store(&thread_go, 0);
	atomic_store(&thread_up, 0);
	TU_CHECK(pthread_create(&th, NULL, idle_thread, NULL) == 0);
	while (!atomic_load(&thread_up)) {
		usleep(1000);
	}
	TU_ERR(ipc_open(&a, "signal://", IPC_CREATE), -EBUSY);
	printf("with an unblocking thread: %s\n", ipc_last_error());
	atomic_store(&thread_go, 1);
	pthread_join(th, NULL);

	/* Blocked before starting the thread: accepted, and still blocked
	 * after close (it was the program's). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, DEFSIG);
	TU_CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	atomic_store(&thread_go, 0);
	atomic_store(&thread_up, 0);
	TU_CHECK(pthread_create(&th, NULL, idle_thread, NULL) == 0);
	while (!atomic_load(&thread_up)) {
		usleep(1000);
	}
	TU_OK(ipc_open(&a, "signal://", IPC_CREATE));
	TU_CHECK_EQ(ipc_close(a), 0);
	TU_CHECK(blocked_here(DEFSIG));
	atomic_store(&thread_go, 1);
	pthread_join(th, NULL);
	TU_CHECK(pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0);

	/* A process without a channel: refused, never signalled. */
	TU_CHECK(pipe(p) == 0 && pipe(q) == 0);
	ready_w = p[1];
	ready_r = q[0];
	pid_t by = tu_fork(bystander, NULL, LIMIT_S);
	TU_CHECK(by > 0);
	TU_CHECK_EQ(pipe_get(p[0]), 1);
	TU_ERR(ipc_open(&a, peer_uri(u, sizeof u, by, ""), 0), -ECONNREFUSED);
	printf("no channel there: %s\n", ipc_last_error());
	pipe_put(q[1], 7);
	TU_CHECK_EQ(tu_wait_ok(by, 10000), 0);
	/* A process that is gone. */
	TU_ERR(ipc_open(&a, peer_uri(u, sizeof u, by, ""), 0), -ECONNREFUSED);
	/* Ourselves. */
	TU_ERR(ipc_open(&a, peer_uri(u, sizeof u, getpid(), ""), 0),
	       -ECONNREFUSED);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	return 0;
}

static void
t_process(void **state)
{
	(void)state;
	run(case_process, "process");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_process),   cmocka_unit_test(t_second),
	        cmocka_unit_test(t_hostile),   cmocka_unit_test(t_kill),
	        cmocka_unit_test(t_detached),  cmocka_unit_test(t_flood),
	        cmocka_unit_test(t_local_uri),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests_name("signal", tests, NULL, NULL);
}
