/*
 * shm:// driver tests beyond the conformance suite: rendezvous and options,
 * listener with several clients, fork after ipc_pair, peer death (kill -9,
 * also mid-message) seen by blocked send, recv and poll, ipc_fd with
 * poll(2), zero-copy in place, leftovers (fds, /dev/shm, the name).  A
 * peer scribbling over the live segment and the long stress runs are in
 * test_shm_stress.c.
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

static char *
uniq(char *buf, size_t n, const char *tag)
{
	static int seq;
	snprintf(buf, n, "shm://t-%s-%d-%d", tag, (int)getpid(), seq++);
	return buf;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d) != NULL) {
		n++;
	}
	closedir(d);
	return n;
}

static int
count_dev_shm(void)
{
	return tu_count_dir("/dev/shm");
}

/* Open without IPC_CREATE, retrying while nobody serves yet. */
static ipc_channel *
open_retry(const char *uri)
{
	return tu_open_retry(uri, 0, 5000);
}

static void
wait_child(pid_t pid, int want_code)
{
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), want_code);
}

/* ------------------------------------------------------------- basics -- */

static void
test_pair_basics(void **state)
{
	(void)state;
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:"), 0);
	assert_string_equal(ipc_scheme(a), "shm");
	assert_true(ipc_caps(a) & IPC_CAP_ZEROCOPY);
	assert_true(ipc_caps(a) & IPC_CAP_PEERCLOSE);
	assert_true(ipc_caps(a) & IPC_CAP_LISTEN);
	/* The default ring carries 1 MiB messages. */
	assert_true(ipc_max_msg(a) >= (1u << 20));
	size_t big = 1u << 20;
	unsigned char *in = malloc(big), *out = malloc(big);
	assert_non_null(in);
	assert_non_null(out);
	for (size_t i = 0; i < big; i++) {
		in[i] = (unsigned char)(i * 7 + 3);
	}
	assert_int_equal(ipc_send(a, in, big, 0), (ssize_t)big);
	assert_int_equal(ipc_send(a, "", 0, 0), 0);
	assert_int_equal(ipc_send(b, "pong", 4, 0), 4);
	/* Too small a buffer: -EMSGSIZE and the message stays. */
	assert_int_equal(ipc_recv(b, out, 100, 0), -EMSGSIZE);
	assert_int_equal(ipc_recv(b, out, big, 0), (ssize_t)big);
	assert_memory_equal(in, out, big);
	assert_int_equal(ipc_recv(b, out, big, 0), 0);
	assert_int_equal(ipc_recv(b, out, big, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_recv(a, out, big, 0), 4);
	/* Above the maximum: -EMSGSIZE, nothing sent. */
	size_t max = ipc_max_msg(a);
	unsigned char *huge = calloc(1, max + 1);
	assert_non_null(huge);
	assert_int_equal(ipc_send(a, huge, max + 1, 0), -EMSGSIZE);
	/* The largest message needs the whole ring: the receiver must skip
	 * the wrap the sender left at the end first (same thread here). */
	ssize_t n = ipc_send(a, huge, max, IPC_NONBLOCK);
	if (n == -EAGAIN) {
		assert_int_equal(ipc_recv(b, huge, max, IPC_NONBLOCK),
		                 -EAGAIN);
		n = ipc_send(a, huge, max, IPC_NONBLOCK);
	}
	assert_int_equal(n, (ssize_t)max);
	assert_int_equal(ipc_recv(b, huge, max, 0), (ssize_t)max);
	free(huge);
	free(in);
	free(out);
	ipc_close(a);
	ipc_close(b);
}

static void
test_zero_copy(void **state)
{
	(void)state;
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:?size=64k"), 0);
	void *w;
	const void *r1, *r2;
	size_t len;
	assert_int_equal(ipc_reserve(a, 1000, &w, 0), 0);
	assert_int_equal((uintptr_t)w % 16, 0);
	memset(w, 'x', 1000);
	assert_int_equal(ipc_commit(a, 600), 0);
	assert_int_equal(ipc_acquire(b, &r1, &len, 0), 0);
	assert_int_equal(len, 600);
	assert_int_equal(((const unsigned char *)r1)[599], 'x');
	assert_int_equal(ipc_release(b), 0);
	/* In place: the second record lies right after the first in the
	 * same shared buffer (600 bytes + 16-byte header, 16-aligned). */
	assert_int_equal(ipc_reserve(a, 8, &w, 0), 0);
	memcpy(w, "12345678", 8);
	assert_int_equal(ipc_commit(a, 8), 0);
	assert_int_equal(ipc_acquire(b, &r2, &len, 0), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(r2, "12345678", 8);
	assert_int_equal((const char *)r2 - (const char *)r1, 608 + 16);
	assert_int_equal(ipc_release(b), 0);
	assert_int_equal(ipc_release(b), -EINVAL);
	assert_int_equal(ipc_acquire(b, &r1, &len, IPC_NONBLOCK), -EAGAIN);
	ipc_close(a);
	ipc_close(b);
}

static void
test_options(void **state)
{
	(void)state;
	ipc_channel *a = NULL, *b = NULL;
	char uri[300];
	assert_int_equal(ipc_pair(&a, &b, "shm:?size=5000"), -EINVAL);
	assert_non_null(strstr(ipc_last_error(), "power of two"));
	assert_int_equal(ipc_pair(&a, &b, "shm:?size=1k"), -EINVAL);
	assert_int_equal(ipc_pair(&a, &b, "shm:?spin=fast"), -EINVAL);
	assert_non_null(strstr(ipc_last_error(), "spin"));
	assert_int_equal(ipc_pair(&a, &b, "shm:?spin=2000000"), -EINVAL);
	assert_int_equal(ipc_pair(&a, &b, "shm:?color=red"), -EINVAL);
	assert_int_equal(ipc_pair(&a, &b, "shm:?spin=busy&size=4k&mode=0600"),
	                 0);
	assert_int_equal(ipc_max_msg(a), 4096 - 16);
	ipc_close(a);
	ipc_close(b);
	assert_int_equal(ipc_pair(&a, &b, "shm:?spin=0"), 0);
	ipc_close(a);
	ipc_close(b);
	assert_int_equal(ipc_open(&a, "shm://bad/name", IPC_CREATE), -EINVAL);
	assert_int_equal(ipc_open(&a, "shm://bad name", IPC_CREATE), -EINVAL);
	/* Nobody serves: refused at once. */
	assert_int_equal(ipc_open(&a, uniq(uri, sizeof(uri), "none"), 0),
	                 -ECONNREFUSED);
	assert_null(a);
}

static void
test_create_and_open(void **state)
{
	(void)state;
	char uri[300], uri2[320];
	ipc_channel *srv, *cli, *other;
	uniq(uri, sizeof(uri), "co");
	assert_int_equal(ipc_open(&srv, uri, IPC_CREATE), 0);
	/* The name is taken while served. */
	assert_int_equal(ipc_open(&other, uri, IPC_CREATE), -EEXIST);
	/* Before a peer: the creator's send waits for it. */
	assert_int_equal(ipc_send(srv, "a", 1, IPC_NONBLOCK), -EAGAIN);
	ipc_set_timeout(srv, 50);
	assert_int_equal(ipc_send(srv, "a", 1, 0), -ETIMEDOUT);
	ipc_set_timeout(srv, -1);
	assert_int_equal(ipc_open(&cli, uri, 0), 0);
	/* The opener may send before being served. */
	assert_int_equal(ipc_send(cli, "hello", 5, 0), 5);
	char buf[16];
	assert_int_equal(ipc_recv(srv, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(ipc_send(srv, "world", 5, 0), 5);
	assert_int_equal(ipc_recv(cli, buf, sizeof(buf), 0), 5);
	/* One peer per IPC_CREATE channel: later openers are refused. */
	assert_int_equal(ipc_open(&other, uri, 0), -ECONNREFUSED);
	ipc_close(cli);
	assert_int_equal(ipc_recv(srv, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_send(srv, "x", 1, 0), -EPIPE);
	ipc_close(srv);

	/* A server without size= takes the client's ring size; one with
	 * size= refuses a client whose size differs, and the client learns
	 * why on its next blocking call. */
	assert_int_equal(ipc_open(&srv, uri, IPC_CREATE), 0);
	snprintf(uri2, sizeof(uri2), "%s?size=64k", uri);
	assert_int_equal(ipc_open(&cli, uri2, 0), 0);
	assert_int_equal(ipc_max_msg(cli), 65536 - 16);
	assert_int_equal(ipc_send(srv, "a", 1, 0), 1);
	assert_int_equal(ipc_max_msg(srv), 65536 - 16);
	assert_int_equal(ipc_recv(cli, buf, sizeof(buf), 0), 1);
	ipc_close(cli);
	ipc_close(srv);
	snprintf(uri2, sizeof(uri2), "%s?size=1M", uri);
	assert_int_equal(ipc_open(&srv, uri2, IPC_CREATE), 0);
	snprintf(uri2, sizeof(uri2), "%s?size=64k", uri);
	assert_int_equal(ipc_open(&cli, uri2, 0), 0);
	assert_int_equal(ipc_send(srv, "a", 1, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_recv(cli, buf, sizeof(buf), 0), -EINVAL);
	assert_non_null(strstr(ipc_last_error(), "refused"));
	ipc_close(cli);
	ipc_close(srv);

	/* The longest name (hashed into the abstract address). */
	char name[256];
	memset(name, 'n', sizeof(name));
	memcpy(name, "shm://", 6);
	snprintf(name + 6, 20, "%d-", (int)getpid());
	name[strlen(name)] = 'n';
	name[206] = '\0';
	assert_int_equal(ipc_open(&srv, name, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&cli, name, 0), 0);
	assert_int_equal(ipc_send(cli, "L", 1, 0), 1);
	assert_int_equal(ipc_recv(srv, buf, sizeof(buf), 0), 1);
	ipc_close(cli);
	ipc_close(srv);
}

static void
test_listener(void **state)
{
	(void)state;
	char uri[300];
	enum { NCLI = 4 };
	ipc_listener *l;
	uniq(uri, sizeof(uri), "ls");
	assert_int_equal(ipc_listen(&l, uri, 0), 0);
	pid_t pids[NCLI];
	for (int i = 0; i < NCLI; i++) {
		pids[i] = tu_fork_plain();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			ipc_listener_close(l);
			ipc_channel *c = open_retry(uri);
			int id = i, back = -1;
			if (c == NULL ||
			    ipc_send(c, &id, sizeof(id), 0) != sizeof(id) ||
			    ipc_recv(c, &back, sizeof(back), 0) !=
			            sizeof(back) ||
			    back != id * 10) {
				_exit(1);
			}
			ipc_close(c);
			_exit(0);
		}
	}
	/* Accept everyone through ipc_poll on the listener and channels. */
	ipc_channel *ch[NCLI] = {0};
	int done[NCLI] = {0};
	int nch = 0, answered = 0;
	while (answered < NCLI) {
		ipc_pollitem it[NCLI + 1];
		int polled = nch;
		it[0] = (ipc_pollitem){
		        .listener = l, .fd = -1, .events = IPC_POLLIN};
		for (int i = 0; i < polled; i++) {
			it[1 + i] = (ipc_pollitem){.channel = ch[i],
			                           .fd = -1,
			                           .events = IPC_POLLIN};
		}
		int n = ipc_poll(it, (size_t)(1 + polled), 10000);
		assert_true(n > 0);
		if (it[0].revents & IPC_POLLIN) {
			assert_true(nch < NCLI);
			int r = ipc_accept(l, &ch[nch], IPC_NONBLOCK);
			assert_true(r == 0 || r == -EAGAIN);
			nch += r == 0;
		}
		for (int i = 0; i < polled; i++) {
			if (done[i] || !(it[1 + i].revents & IPC_POLLIN)) {
				continue;
			}
			int id;
			ssize_t k =
			        ipc_recv(ch[i], &id, sizeof(id), IPC_NONBLOCK);
			if (k == -EAGAIN) {
				continue;
			}
			assert_int_equal(k, sizeof(id));
			id *= 10;
			assert_int_equal(ipc_send(ch[i], &id, sizeof(id), 0),
			                 sizeof(id));
			done[i] = 1;
			answered++;
		}
	}
	ipc_channel *none;
	assert_int_equal(ipc_accept(l, &none, IPC_NONBLOCK), -EAGAIN);
	for (int i = 0; i < NCLI; i++) {
		wait_child(pids[i], 0);
	}
	for (int i = 0; i < nch; i++) {
		ipc_close(ch[i]);
	}
	ipc_listener_close(l);
	/* The name is free again. */
	ipc_channel *c;
	assert_int_equal(ipc_open(&c, uri, 0), -ECONNREFUSED);
}

/* A raw connection to NAME's rendezvous socket, as a hostile client. */
static int
raw_connect(const char *uri)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
	                 "libipc/shm/%s", uri + strlen("shm://"));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(
	        connect(fd, (struct sockaddr *)&sa,
	                (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                            1 + (size_t)n)),
	        0);
	return fd;
}

static void
test_hostile_clients(void **state)
{
	(void)state;
	char uri[300];
	ipc_listener *l;
	ipc_channel *s, *c;
	uniq(uri, sizeof(uri), "hc");
	assert_int_equal(ipc_listen(&l, uri, 0), 0);
	/* Connected, no hello yet: kept pending, accept does not block. */
	int quiet = raw_connect(uri);
	assert_int_equal(ipc_accept(l, &s, IPC_NONBLOCK), -EAGAIN);
	/* Garbage instead of a hello, and a short one with a descriptor
	 * that is not a memfd: refused, the server is unharmed. */
	int junk = raw_connect(uri);
	assert_int_equal(send(junk, "garbage", 7, 0), 7);
	assert_int_equal(ipc_accept(l, &s, IPC_NONBLOCK), -EAGAIN);
	char buf[512];
	assert_true(recv(junk, buf, sizeof(buf), 0) > 0); /* the refusal */
	assert_int_equal(recv(junk, buf, sizeof(buf), 0), 0);
	close(junk);
	/* A real client is served although others are pending. */
	assert_int_equal(ipc_open(&c, uri, 0), 0);
	assert_int_equal(ipc_send(c, "ok", 2, 0), 2);
	assert_int_equal(ipc_accept(l, &s, 0), 0);
	assert_int_equal(ipc_recv(s, buf, sizeof(buf), 0), 2);
	/* The pending one finally sends junk: refused at the next accept. */
	assert_int_equal(send(quiet, "late", 4, 0), 4);
	ipc_channel *t;
	assert_int_equal(ipc_accept(l, &t, IPC_NONBLOCK), -EAGAIN);
	assert_true(recv(quiet, buf, sizeof(buf), 0) > 0);
	close(quiet);
	ipc_close(c);
	ipc_close(s);
	ipc_listener_close(l);
}

static void
test_fd_before_peer(void **state)
{
	(void)state;
	char uri[300];
	ipc_channel *s, *c;
	uniq(uri, sizeof(uri), "fb");
	assert_int_equal(ipc_open(&s, uri, IPC_CREATE), 0);
	int fd = ipc_fd(s);
	assert_true(fd >= 0);
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 0), 0);
	assert_int_equal(ipc_open(&c, uri, 0), 0);
	assert_int_equal(ipc_send(c, "early", 5, 0), 5);
	/* The descriptor follows the channel from listening to connected. */
	char buf[8];
	ssize_t n = -EAGAIN;
	for (int i = 0; i < 10 && n == -EAGAIN; i++) {
		assert_int_equal(poll(&pf, 1, 5000), 1);
		n = ipc_recv(s, buf, sizeof(buf), IPC_NONBLOCK);
	}
	assert_int_equal(n, 5);
	assert_int_equal(ipc_recv(s, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(poll(&pf, 1, 0), 0);
	assert_int_equal(ipc_send(c, "late", 4, 0), 4);
	assert_int_equal(poll(&pf, 1, 5000), 1);
	assert_int_equal(ipc_recv(s, buf, sizeof(buf), IPC_NONBLOCK), 4);
	ipc_close(c);
	assert_int_equal(poll(&pf, 1, 5000), 1);
	assert_int_equal(ipc_recv(s, buf, sizeof(buf), IPC_NONBLOCK), -EPIPE);
	ipc_close(s);
}

/* ---------------------------------------------------------------- fork -- */

static void
test_fork_pair(void **state)
{
	(void)state;
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:"), 0);
	pid_t pid = tu_fork_plain();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_close(a);
		char buf[8];
		/* The parent's close of b must not have disturbed us. */
		if (ipc_recv(b, buf, sizeof(buf), 0) != 4 ||
		    memcmp(buf, "ping", 4) != 0 ||
		    ipc_send(b, "pong", 4, 0) != 4) {
			_exit(1);
		}
		ipc_close(b);
		_exit(0);
	}
	ipc_close(b);
	usleep(20000);
	char buf[8];
	assert_int_equal(ipc_send(a, "ping", 4, 0), 4);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "pong", 4);
	/* The child closed its end: drained, then -EPIPE. */
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_send(a, "x", 1, 0), -EPIPE);
	wait_child(pid, 0);
	ipc_close(a);
}

/* ---------------------------------------------------------- peer death -- */

enum death_case { DIE_IDLE, DIE_MID_MESSAGE, DIE_FULL };

static void
death(enum death_case how, int use_poll)
{
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:?size=64k"), 0);
	int sync[2];
	assert_int_equal(pipe(sync), 0);
	pid_t pid = tu_fork_plain();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_close(a);
		close(sync[0]);
		if (how == DIE_MID_MESSAGE) {
			/* Half-written, never committed. */
			void *w;
			if (ipc_reserve(b, 30000, &w, 0) != 0) {
				_exit(1);
			}
			memset(w, 1, 15000);
		}
		ssize_t n = write(sync[1], "r", 1);
		(void)n;
		for (;;) {
			pause();
		}
	}
	ipc_close(b);
	close(sync[1]);
	char c;
	assert_int_equal(read(sync[0], &c, 1), 1);
	close(sync[0]);
	unsigned char buf[1000] = {0};
	if (how == DIE_FULL) {
		/* Fill the ring so that the next send blocks. */
		while (ipc_send(a, buf, sizeof(buf), IPC_NONBLOCK) > 0) {
		}
	}
	/* Kill the child while we are blocked. */
	pid_t killer = tu_fork_plain();
	assert_true(killer >= 0);
	if (killer == 0) {
		usleep(100000);
		kill(pid, SIGKILL);
		_exit(0);
	}
	double t0 = now_s();
	if (use_poll) {
		ipc_pollitem it = {.channel = a,
		                   .fd = -1,
		                   .events = how == DIE_FULL ? IPC_POLLOUT
		                                             : IPC_POLLIN};
		assert_int_equal(ipc_poll(&it, 1, 10000), 1);
		assert_true(it.revents & IPC_POLLHUP);
	}
	if (how == DIE_FULL) {
		assert_int_equal(ipc_send(a, buf, sizeof(buf), 0), -EPIPE);
	} else {
		assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), -EPIPE);
	}
	double dt = now_s() - t0;
	/* Within one second of the death, with slack for a loaded box. */
	assert_true(dt < 3.0);
	wait_child(killer, 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	ipc_close(a);
}

static void
test_death_recv(void **state)
{
	(void)state;
	death(DIE_IDLE, 0);
}

static void
test_death_mid_message(void **state)
{
	(void)state;
	death(DIE_MID_MESSAGE, 0);
}

static void
test_death_send(void **state)
{
	(void)state;
	death(DIE_FULL, 0);
}

static void
test_death_poll(void **state)
{
	(void)state;
	death(DIE_IDLE, 1);
	death(DIE_FULL, 1);
}

static void
test_death_busy_spin(void **state)
{
	(void)state;
	/* Busy-poll mode never sleeps, but still sees the death. */
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:?spin=busy"), 0);
	pid_t pid = tu_fork_plain();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_close(a);
		usleep(100000);
		_exit(0); /* no close: like a crash for the ring */
	}
	ipc_close(b);
	char buf[8];
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), -EPIPE);
	wait_child(pid, 0);
	ipc_close(a);
}

/* -------------------------------------------------------- event loops -- */

static void
test_fd_and_poll(void **state)
{
	(void)state;
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:"), 0);
	int fd = ipc_fd(b);
	assert_true(fd >= 0);
	assert_int_equal(ipc_fd(b), fd);
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct pollfd pf[2] = {{.fd = fd, .events = POLLIN},
	                       {.fd = p[0], .events = POLLIN}};
	assert_int_equal(poll(pf, 2, 0), 0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(ipc_send(a, "m1", 2, 0), 2);
		assert_int_equal(ipc_send(a, "m2", 2, 0), 2);
		assert_int_equal(poll(pf, 2, 5000), 1);
		assert_true(pf[0].revents & POLLIN);
		char buf[4];
		int got = 0;
		while (ipc_recv(b, buf, sizeof(buf), IPC_NONBLOCK) == 2) {
			got++;
		}
		assert_int_equal(got, 2);
		/* Drained to -EAGAIN: the descriptor is quiet again. */
		assert_int_equal(poll(pf, 2, 0), 0);
	}
	/* Mixed with a pipe in ipc_poll. */
	ipc_pollitem it[2] = {
	        {.channel = b, .fd = -1, .events = IPC_POLLIN},
	        {.fd = p[0], .events = IPC_POLLIN},
	};
	assert_int_equal(ipc_poll(it, 2, 0), 0);
	assert_int_equal(write(p[1], "z", 1), 1);
	assert_int_equal(ipc_poll(it, 2, 1000), 1);
	assert_int_equal(it[1].revents, IPC_POLLIN);
	assert_int_equal(ipc_send(a, "m3", 2, 0), 2);
	assert_int_equal(ipc_poll(it, 2, 1000), 2);
	assert_int_equal(it[0].revents, IPC_POLLIN);
	/* POLLOUT on a ring with room. */
	ipc_pollitem o = {.channel = a, .fd = -1, .events = IPC_POLLOUT};
	assert_int_equal(ipc_poll(&o, 1, 0), 1);
	/* The peer's close: readable, hang-up. */
	char buf[4];
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), 0), 2);
	ipc_close(a);
	pf[0].revents = 0;
	assert_int_equal(poll(pf, 1, 5000), 1);
	assert_int_equal(ipc_poll(it, 1, 1000), 1);
	assert_true(it[0].revents & IPC_POLLHUP);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), 0), -EPIPE);
	ipc_close(b);
	close(p[0]);
	close(p[1]);
}

static void
test_poll_wakes_across_fork(void **state)
{
	(void)state;
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:?spin=0"), 0);
	pid_t pid = tu_fork_plain();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_close(a);
		for (int i = 0; i < 200; i++) {
			usleep(i % 10 == 0 ? 2000 : 0);
			if (ipc_send(b, &i, sizeof(i), 0) != sizeof(i)) {
				_exit(1);
			}
		}
		ipc_close(b);
		_exit(0);
	}
	ipc_close(b);
	int fd = ipc_fd(a), expect = 0;
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&pf, 1, 10000), 1);
		int v;
		ssize_t n;
		while ((n = ipc_recv(a, &v, sizeof(v), IPC_NONBLOCK)) ==
		       sizeof(v)) {
			assert_int_equal(v, expect);
			expect++;
		}
		if (n == -EPIPE) {
			break;
		}
		assert_int_equal(n, -EAGAIN);
	}
	assert_int_equal(expect, 200);
	wait_child(pid, 0);
	ipc_close(a);
}

/* ---------------------------------------------------------- leftovers -- */

static void
test_no_leftovers(void **state)
{
	(void)state;
	int fds0 = count_fds(), shm0 = count_dev_shm();
	char uri[300];
	uniq(uri, sizeof(uri), "lo");
	for (int round = 0; round < 3; round++) {
		ipc_channel *s, *c, *a, *b;
		ipc_listener *l;
		assert_int_equal(ipc_open(&s, uri, IPC_CREATE), 0);
		assert_int_equal(ipc_open(&c, uri, 0), 0);
		assert_int_equal(ipc_send(c, "x", 1, 0), 1);
		char buf[4];
		assert_int_equal(ipc_recv(s, buf, sizeof(buf), 0), 1);
		assert_true(ipc_fd(s) >= 0);
		assert_true(count_dev_shm() == shm0);
		ipc_close(c);
		ipc_close(s);
		assert_int_equal(ipc_pair(&a, &b, "shm:"), 0);
		assert_true(ipc_fd(a) >= 0);
		ipc_close(a);
		ipc_close(b);
		assert_int_equal(ipc_listen(&l, uri, 0), 0);
		assert_int_equal(ipc_open(&c, uri, 0), 0);
		assert_int_equal(ipc_accept(l, &s, 0), 0);
		ipc_close(c);
		ipc_close(s);
		ipc_listener_close(l);
		/* A creator nobody ever joined. */
		assert_int_equal(ipc_open(&s, uri, IPC_CREATE), 0);
		ipc_close(s);
	}
	assert_int_equal(count_fds(), fds0);
	assert_int_equal(count_dev_shm(), shm0);
	ipc_channel *c;
	assert_int_equal(ipc_open(&c, uri, 0), -ECONNREFUSED);

	/* Nothing survives kill -9 of both sides either: the segment is
	 * an unnamed memfd. */
	pid_t pid = tu_fork_plain();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_channel *x, *y;
		if (ipc_pair(&x, &y, "shm:") != 0 ||
		    ipc_send(x, "q", 1, 0) != 1) {
			_exit(1);
		}
		raise(SIGKILL);
		_exit(2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(count_dev_shm(), shm0);
}

static void
test_mode(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		printf("test_mode: skipped: needs root to become another "
		       "user\n");
		skip();
	}
	for (int open_mode = 0; open_mode < 2; open_mode++) {
		char uri[300], suri[320];
		uniq(uri, sizeof(uri), "md");
		snprintf(suri, sizeof(suri), "%s?mode=%s", uri,
		         open_mode ? "0666" : "0600");
		ipc_channel *s;
		assert_int_equal(ipc_open(&s, suri, IPC_CREATE), 0);
		pid_t pid = tu_fork_plain();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setresgid(65534, 65534, 65534) != 0 ||
			    setresuid(65534, 65534, 65534) != 0) {
				_exit(3);
			}
			/* A refusal is -EACCES, at open when the server's
			 * refusal came first, else at the first receive. */
			ipc_channel *c = NULL;
			int r;
			for (int i = 0; i < 5000; i++) {
				r = ipc_open(&c, uri, 0);
				if (r != -ECONNREFUSED && r != -ENOENT) {
					break;
				}
				usleep(1000);
			}
			if (r == -EACCES) {
				_exit(1);
			}
			if (r != 0) {
				fprintf(stderr, "open %s: %s\n", uri,
				        ipc_last_error());
				_exit(4);
			}
			char buf[4];
			ssize_t n = ipc_recv(c, buf, sizeof(buf), 0);
			if (n != 1 && n != -EACCES) {
				fprintf(stderr, "refused client: %s\n",
				        ipc_last_error());
			}
			ipc_close(c);
			_exit(n == 1 ? 0 : n == -EACCES ? 1 : 2);
		}
		/* Serve until the child is through: it is either served
		 * (mode 0666) or refused (0600). */
		int st, done = 0;
		ssize_t n = -EAGAIN;
		while (!done && n != 1) {
			n = ipc_send(s, "k", 1, IPC_NONBLOCK);
			assert_true(n == 1 || n == -EAGAIN);
			pid_t w = waitpid(pid, &st, WNOHANG);
			assert_true(w >= 0);
			done = w == pid;
			usleep(1000);
		}
		assert_int_equal(n, open_mode ? 1 : -EAGAIN);
		if (!done) {
			assert_int_equal(waitpid(pid, &st, 0), pid);
		}
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), open_mode ? 0 : 1);
		ipc_close(s);
	}
}

int
main(void)
{
	signal(SIGPIPE, SIG_DFL);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pair_basics),
	        cmocka_unit_test(test_zero_copy),
	        cmocka_unit_test(test_options),
	        cmocka_unit_test(test_create_and_open),
	        cmocka_unit_test(test_listener),
	        cmocka_unit_test(test_hostile_clients),
	        cmocka_unit_test(test_fd_before_peer),
	        cmocka_unit_test(test_fork_pair),
	        cmocka_unit_test(test_death_recv),
	        cmocka_unit_test(test_death_mid_message),
	        cmocka_unit_test(test_death_send),
	        cmocka_unit_test(test_death_poll),
	        cmocka_unit_test(test_death_busy_spin),
	        cmocka_unit_test(test_fd_and_poll),
	        cmocka_unit_test(test_poll_wakes_across_fork),
	        cmocka_unit_test(test_no_leftovers),
	        cmocka_unit_test(test_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
