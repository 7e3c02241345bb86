/*
 * mq:// edge cases beyond the conformance suite: queue limits and their
 * error messages, stale queues left by kill -9 and their reclaim, a channel
 * killed on both sides mid-stream and reopened fresh, the in-use and
 * second-opener refusals, mode=, tiny units (heavy fragmentation), and
 * that a timeout never hands out part of a message.
 *
 * Queues are looked up by name (mq_open without O_CREAT) rather than in
 * /dev/mqueue, which is not mounted everywhere: the driver's names are
 * /libipc.NAME.0 and /libipc.NAME.1.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

#define BIG (1u << 20)

static char g_name[128];
static char g_uri[256];

/* Small units by default: every queue counts against the user's
 * RLIMIT_MSGQUEUE (800 KiB), shared with tests running in parallel. */
static void
fresh(const char *tag, const char *opts)
{
	tu_unique(g_name, sizeof g_name, tag);
	snprintf(g_uri, sizeof g_uri, "mq://%s%s", g_name,
	         opts ? opts : "?msgsize=2048");
}

/* Does the driver's queue of this name (0: creator -> opener) exist? */
static int
queue_exists(const char *name, int dir)
{
	char q[512];
	mqd_t m;

	snprintf(q, sizeof q, "/libipc.%s.%d", name, dir);
	m = mq_open(q, O_RDONLY | O_NONBLOCK);
	if (m == (mqd_t)-1) {
		return 0;
	}
	mq_close(m);
	return 1;
}

static void
fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (unsigned char)(i * 31u + seed);
	}
}

static int
check_fill(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != (unsigned char)(i * 31u + seed)) {
			return 0;
		}
	}
	return 1;
}

/* Open the non-creating end, retrying while the creator is not there. */
static ipc_channel *
open_peer(const char *uri)
{
	ipc_channel *ch = NULL;

	for (int i = 0; i < 2000; i++) {
		int r = ipc_open(&ch, uri, 0);
		if (r == 0) {
			return ch;
		}
		TU_CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED, "open: %s",
		             tu_errname(r));
		tu_sleep_ms(2);
	}
	tu_fail(__FILE__, __LINE__, "the creator never appeared");
}

/* Drop CAP_SYS_RESOURCE, which lets root exceed the mqueue limits. */
static void
drop_sys_resource(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) == 0) {
		d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
		d[0].permitted &= ~(1u << CAP_SYS_RESOURCE);
		d[0].inheritable &= ~(1u << CAP_SYS_RESOURCE);
		TU_CHECK(syscall(SYS_capset, &h, d) == 0);
	}
}

static long
proc_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1) {
			v = -1;
		}
		fclose(f);
	}
	return v;
}

/* ------------------------------------------------------------- limits -- */

static int
child_limits(void *arg)
{
	char uri[300];
	ipc_channel *ch;
	long msgsize_max = proc_long("/proc/sys/fs/mqueue/msgsize_max");
	long msg_max = proc_long("/proc/sys/fs/mqueue/msg_max");

	(void)arg;
	drop_sys_resource();
	TU_CHECK(msgsize_max > 0 && msg_max > 0);
	snprintf(uri, sizeof uri, "mq://%s-a?msgsize=%ld", g_name,
	         msgsize_max + 1);
	TU_ERR(ipc_open(&ch, uri, IPC_CREATE), -EINVAL);
	TU_CHECK_MSG(strstr(ipc_last_error(), "msgsize_max") != NULL, "%s",
	             ipc_last_error());
	if (msg_max < 65536) {
		snprintf(uri, sizeof uri, "mq://%s-b?maxmsg=%ld", g_name,
		         msg_max + 1);
		TU_ERR(ipc_open(&ch, uri, IPC_CREATE), -EINVAL);
		TU_CHECK_MSG(strstr(ipc_last_error(), "msg_max") != NULL, "%s",
		             ipc_last_error());
	}
	/* Nothing was left behind by the refusals. */
	snprintf(uri, sizeof uri, "%s-a", g_name);
	TU_CHECK(!queue_exists(uri, 0) && !queue_exists(uri, 1));
	/* Within the limits it works. */
	snprintf(uri, sizeof uri, "mq://%s-c?maxmsg=2&msgsize=64", g_name);
	TU_OK(ipc_open(&ch, uri, IPC_CREATE));
	TU_OK(ipc_close(ch));
	return 0;
}

static void
test_limits(void **state)
{
	ipc_channel *ch;

	(void)state;
	fresh("mqlim", NULL);
	pid_t pid = tu_fork(child_limits, NULL, 30);
	assert_true(pid > 0);
	assert_int_equal(tu_wait_ok(pid, 30000), 0);
	/* Option ranges are checked before the kernel is asked. */
	snprintf(g_uri, sizeof g_uri, "mq://%s?msgsize=1", g_name);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), -EINVAL);
	snprintf(g_uri, sizeof g_uri, "mq://%s?maxmsg=0", g_name);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), -EINVAL);
}

/* -------------------------------------------------- stale and in use -- */

static int
child_create_and_hang(void *arg)
{
	ipc_channel *ch;
	int *pipefd = arg;

	TU_OK(ipc_open(&ch, g_uri, IPC_CREATE));
	TU_CHECK(write(pipefd[1], "r", 1) == 1);
	pause();
	return 0;
}

static pid_t
start_hanging_creator(void)
{
	int p[2];
	char c;

	assert_int_equal(pipe(p), 0);
	pid_t pid = tu_fork(child_create_and_hang, p, 60);
	assert_true(pid > 0);
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static void
kill_and_reap(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

static int
child_echo_once(void *arg)
{
	ipc_channel *ch = open_peer(g_uri);
	char b[64];

	(void)arg;
	TU_OK(ipc_set_timeout(ch, 10000));
	ssize_t n = TU_OK(ipc_recv(ch, b, sizeof b, 0));
	TU_CHECK_EQ(ipc_send(ch, b, (size_t)n, 0), n);
	TU_OK(ipc_close(ch));
	return 0;
}

/* Send "fresh" through a new channel and get it echoed: the first
 * message the peer sees is ours. */
static void
roundtrip_fresh(ipc_channel *ch)
{
	char b[64];

	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	pid_t pid = tu_fork(child_echo_once, NULL, 30);
	assert_true(pid > 0);
	assert_int_equal(ipc_send(ch, "fresh", 5, 0), 5);
	assert_int_equal(ipc_recv(ch, b, sizeof b, 0), 5);
	assert_memory_equal(b, "fresh", 5);
	assert_int_equal(tu_wait_ok(pid, 30000), 0);
	assert_int_equal(ipc_recv(ch, b, sizeof b, 0), -EPIPE);
}

static void
test_stale_creator(void **state)
{
	ipc_channel *ch, *ch2;

	(void)state;
	fresh("mqstale", NULL);
	pid_t pid = start_hanging_creator();
	/* A live creator: a second IPC_CREATE is refused. */
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), -EEXIST);
	kill_and_reap(pid);
	assert_true(queue_exists(g_name, 0) && queue_exists(g_name, 1));
	/* An opener is told the creator is gone. */
	assert_int_equal(ipc_open(&ch, g_uri, 0), -ECONNREFUSED);
	/* The next creator reclaims the stale queues. */
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	roundtrip_fresh(ch);
	/* Connected: the names are gone, a new channel may use them. */
	assert_false(queue_exists(g_name, 0) || queue_exists(g_name, 1));
	assert_int_equal(ipc_open(&ch2, g_uri, 0), -ENOENT);
	assert_int_equal(ipc_close(ch), 0);
	assert_false(queue_exists(g_name, 0) || queue_exists(g_name, 1));
}

/* --------------------------------------------- kill both mid-stream -- */

static int
child_stream_creator(void *arg)
{
	ipc_channel *ch;
	unsigned char buf[3000];
	int *ready = arg;

	TU_OK(ipc_open(&ch, g_uri, IPC_CREATE));
	TU_CHECK(write(ready[1], "c", 1) == 1);
	for (unsigned i = 0;; i++) {
		size_t len = 100 + i % 2900;
		fill(buf, len, i);
		TU_OK(ipc_send(ch, buf, len, 0));
	}
}

static int
child_stream_reader(void *arg)
{
	ipc_channel *ch = open_peer(g_uri);
	unsigned char buf[3000];
	int *ready = arg;

	for (unsigned i = 0;; i++) {
		TU_OK(ipc_recv(ch, buf, sizeof buf, 0));
		if (i == 100) {
			TU_CHECK(write(ready[1], "r", 1) == 1);
		}
	}
}

static void
kill_both_and_reopen(const char *scheme_uri_fmt)
{
	int p[2];
	char c;
	ipc_channel *ch;

	(void)scheme_uri_fmt;
	assert_int_equal(pipe(p), 0);
	pid_t a = tu_fork(child_stream_creator, p, 60);
	assert_int_equal(read(p[0], &c, 1), 1);
	pid_t b = tu_fork(child_stream_reader, p, 60);
	assert_int_equal(read(p[0], &c, 1), 1); /* mid-stream */
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	assert_int_equal(waitpid(a, NULL, 0), a);
	assert_int_equal(waitpid(b, NULL, 0), b);
	close(p[0]);
	close(p[1]);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	roundtrip_fresh(ch);
	assert_int_equal(ipc_close(ch), 0);
	assert_false(queue_exists(g_name, 0) || queue_exists(g_name, 1));
}

static void
test_kill_both_midstream(void **state)
{
	(void)state;
	fresh("mqkill2", NULL);
	kill_both_and_reopen(NULL);
}

/* -------------------------------------------------------------- mode= -- */

static void
test_mode(void **state)
{
	ipc_channel *ch;
	char q[512];
	struct stat st;

	(void)state;
	fresh("mqmode", NULL);
	umask(077);
	snprintf(g_uri, sizeof g_uri, "mq://%s?mode=0640", g_name);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	snprintf(q, sizeof q, "/libipc.%s.0", g_name);
	mqd_t m = mq_open(q, O_RDONLY | O_NONBLOCK);
	assert_true(m != (mqd_t)-1);
	assert_int_equal(fstat(m, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	mq_close(m);
	assert_int_equal(ipc_close(ch), 0);
	fresh("mqmode", NULL);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	snprintf(q, sizeof q, "/libipc.%s.1", g_name);
	m = mq_open(q, O_RDONLY | O_NONBLOCK);
	assert_true(m != (mqd_t)-1);
	assert_int_equal(fstat(m, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	mq_close(m);
	assert_int_equal(ipc_close(ch), 0);
	umask(022);
	/* The creator closed without a peer: its names are gone. */
	assert_false(queue_exists(g_name, 0) || queue_exists(g_name, 1));
}

/* ------------------------------------------ fragmentation, timeouts -- */

static int
child_big_sender(void *arg)
{
	ipc_channel *ch = open_peer(g_uri);
	unsigned char *buf = malloc(BIG);

	(void)arg;
	TU_CHECK(buf != NULL);
	for (unsigned i = 0; i < 3; i++) {
		fill(buf, BIG - i, i);
		TU_CHECK_EQ(ipc_send(ch, buf, BIG - i, 0), BIG - i);
	}
	TU_CHECK_EQ(ipc_send(ch, "end", 3, 0), 3);
	free(buf);
	TU_OK(ipc_close(ch));
	return 0;
}

/* Units of 64 bytes: a 1 MiB message is ~20000 fragments.  The receiver
 * polls with short timeouts and small buffers: every call returns a whole
 * message, -ETIMEDOUT / -EAGAIN, or -EMSGSIZE with the message kept. */
static void
test_fragments(void **state)
{
	ipc_channel *ch;
	unsigned char *buf = malloc(BIG);
	unsigned got = 0;
	int small = 0, timeouts = 0;

	(void)state;
	assert_non_null(buf);
	fresh("mqfrag", "?msgsize=64&maxmsg=4");
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	pid_t pid = tu_fork(child_big_sender, NULL, 60);
	assert_int_equal(ipc_set_timeout(ch, 1), 0);
	while (got < 3) {
		ssize_t n = ipc_recv(ch, buf, small ? 100 : BIG, 0);
		if (n == -ETIMEDOUT || n == -EAGAIN) {
			timeouts++;
			small = timeouts % 3 == 0;
			continue;
		}
		if (n == -EMSGSIZE) {
			small = 0;
			continue;
		}
		assert_int_equal(n, BIG - got);
		assert_true(check_fill(buf, (size_t)n, got));
		got++;
	}
	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	assert_int_equal(ipc_recv(ch, buf, BIG, 0), 3);
	assert_int_equal(ipc_recv(ch, buf, BIG, 0), -EPIPE);
	assert_int_equal(tu_wait_ok(pid, 30000), 0);
	assert_int_equal(ipc_close(ch), 0);
	free(buf);
	printf("3 messages of ~1 MiB in 64-byte units, %d timeouts "
	       "meanwhile\n",
	       timeouts);
}

/* A sender whose peer does not read: a timeout returns -ETIMEDOUT with
 * nothing sent, or the whole message accepted (the rest kept inside);
 * the reader later gets whole messages only, in order. */
static int
child_slow_reader(void *arg)
{
	int *go = arg;
	char c;
	ipc_channel *ch = open_peer(g_uri);
	unsigned char *buf = malloc(BIG);

	TU_CHECK(buf != NULL);
	TU_CHECK(read(go[0], &c, 1) == 1);
	TU_OK(ipc_set_timeout(ch, 10000));
	for (unsigned i = 0;; i++) {
		ssize_t n = ipc_recv(ch, buf, BIG, 0);
		if (n == -EPIPE) {
			break;
		}
		TU_CHECK_MSG(n >= 0, "recv %u: %s", i, tu_errname((int)n));
		TU_CHECK_EQ(n, 200000 + i);
		TU_CHECK(check_fill(buf, (size_t)n, i));
	}
	free(buf);
	TU_OK(ipc_close(ch));
	return 0;
}

static void
test_send_timeout_whole(void **state)
{
	ipc_channel *ch;
	unsigned char *buf = malloc(BIG);
	int go[2];
	unsigned sent = 0, timedout = 0;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(pipe(go), 0);
	fresh("mqstall", NULL);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	pid_t pid = tu_fork(child_slow_reader, go, 60);
	assert_int_equal(ipc_set_timeout(ch, 50), 0);
	while (sent < 4) {
		fill(buf, 200000 + sent, sent);
		ssize_t n = ipc_send(ch, buf, 200000 + sent, 0);
		if (n == -ETIMEDOUT) {
			timedout++;
			if (timedout == 3) {
				assert_int_equal(write(go[1], "g", 1), 1);
			}
			continue;
		}
		assert_int_equal(n, 200000 + sent);
		sent++;
	}
	assert_true(timedout >= 3);
	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	assert_int_equal(ipc_close(ch), 0); /* flushes the kept rest */
	assert_int_equal(tu_wait_ok(pid, 30000), 0);
	close(go[0]);
	close(go[1]);
	free(buf);
}

/* A SIGKILLed peer is reported as death, an ipc_close as a close (also
 * when the queue towards us was too full for the close record). */
static void
test_death_vs_close(void **state)
{
	(void)state;
	fresh("mqend", "?msgsize=64&maxmsg=4");
	tu_check_peer_end(g_uri);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_stale_creator),
	        cmocka_unit_test(test_kill_both_midstream),
	        cmocka_unit_test(test_mode),
	        cmocka_unit_test(test_fragments),
	        cmocka_unit_test(test_send_timeout_whole),
	        cmocka_unit_test(test_death_vs_close),
	};

	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
