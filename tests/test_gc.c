/*
 * ipc-cat --list and --gc against real leftovers: both sides of a
 * sysvmq:// channel killed with SIGKILL mid-conversation, an mq://, a
 * fifo:// and a unix:// creator killed before their peer came, and a live
 * process holding one channel of each kind.  A dead unix:// creator's
 * socket file handed to another uid is listed but left alone by --gc.  --list
 * must show the dead ones stale (with their creator's uid and pid) and the
 * live ones alive; --gc must remove exactly the stale ones; the live channels
 * must still open.
 *
 * Runs in a private IPC namespace (root), so that other tests' System V
 * objects and queues are neither seen nor removed.  argv[1]: ipc-cat.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

static const char *ipc_cat;
static char dir[128];

/* Run ipc-cat ARGS DIR; its standard output into out. */
static int
run_cat(const char *what, char *out, size_t n)
{
	char cmd[512];
	size_t len = 0;

	snprintf(cmd, sizeof cmd, "%s %s %s", ipc_cat, what, dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (len + 1 < n) {
		size_t k = fread(out + len, 1, n - 1 - len, p);
		if (k == 0) {
			break;
		}
		len += k;
	}
	out[len] = '\0';
	int st = pclose(p);
	printf("$ %s\n%s", cmd, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The line of out that has all of the words, or NULL. */
static const char *
line_with(const char *out, const char *a, const char *b, const char *c)
{
	static char line[1024];
	const char *p = out;

	while (*p != '\0') {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		snprintf(line, sizeof line, "%.*s", (int)n, p);
		if (strstr(line, a) && (!b || strstr(line, b)) &&
		    (!c || strstr(line, c))) {
			return line;
		}
		p += n + (e != NULL);
	}
	return NULL;
}

static void
expect(const char *out, const char *a, const char *b, const char *c,
       int present)
{
	const char *l = line_with(out, a, b, c);
	if ((l != NULL) != present) {
		printf("expected %s a line with '%s' '%s' '%s'\n",
		       present ? "" : "no", a, b ? b : "", c ? c : "");
		fail();
	}
}

/* A child that creates uri and waits (to be killed).  ready: written
 * once the channel exists. */
static pid_t
creator(const char *uri, int *ready_r)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_channel *c;
		close(p[0]);
		if (ipc_open(&c, uri, IPC_CREATE) != 0) {
			fprintf(stderr, "create %s: %s\n", uri,
			        ipc_last_error());
			_exit(1);
		}
		if (write(p[1], "y", 1) != 1) {
			_exit(1);
		}
		/* A peer's message, if one comes; then wait for the end. */
		char buf[16];
		(void)ipc_recv(c, buf, sizeof buf, 0);
		pause();
		_exit(0);
	}
	close(p[1]);
	*ready_r = p[0];
	char b;
	assert_int_equal(read(p[0], &b, 1), 1);
	return pid;
}

/* A child that opens uri, sends one message and waits. */
static pid_t
opener(const char *uri)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_channel *c;
		close(p[0]);
		if (ipc_open(&c, uri, 0) != 0 || ipc_send(c, "x", 1, 0) != 1) {
			fprintf(stderr, "open %s: %s\n", uri,
			        ipc_last_error());
			_exit(1);
		}
		if (write(p[1], "y", 1) != 1) {
			_exit(1);
		}
		pause();
		_exit(0);
	}
	close(p[1]);
	char b;
	assert_int_equal(read(p[0], &b, 1), 1);
	close(p[0]);
	return pid;
}

static void
kill9(pid_t pid)
{
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void
test_list_and_gc(void **state)
{
	char u_smq[128], u_mq[128], u_fifo[256], l_smq[128], l_mq[128],
	        l_fifo[256], u_unix[256], l_unix[256], o_unix[256], out[16384],
	        w[64];
	int r1, r2, r3, r4, r5, r6, r7, r8, r9;
	const char *why;

	(void)state;
	if (geteuid() != 0) {
		printf("test_list_and_gc: skipped: needs root (a private IPC "
		       "namespace, so that --gc cannot touch other tests' "
		       "objects)\n");
		skip();
	}
	if (!tu_isolate_ipc(&why)) {
		printf("test_list_and_gc: skipped: %s\n", why);
		skip();
	}
	assert_int_equal(tu_tmpdir(dir, sizeof dir, "gc"), 0);
	int id = (int)getpid();
	snprintf(u_smq, sizeof u_smq, "sysvmq://gc-%d-dead", id);
	snprintf(u_mq, sizeof u_mq, "mq://gc-%d-dead", id);
	snprintf(u_fifo, sizeof u_fifo, "fifo://%s/dead", dir);
	snprintf(l_smq, sizeof l_smq, "sysvmq://gc-%d-live", id);
	snprintf(l_mq, sizeof l_mq, "mq://gc-%d-live", id);
	snprintf(l_fifo, sizeof l_fifo, "fifo://%s/live", dir);
	snprintf(u_unix, sizeof u_unix, "unix://%s/dead.sock", dir);
	snprintf(l_unix, sizeof l_unix, "unix://%s/live.sock", dir);
	snprintf(o_unix, sizeof o_unix, "unix://%s/other.sock", dir);

	/* Both sides of a sysvmq:// channel die mid-conversation. */
	pid_t sc = creator(u_smq, &r1);
	pid_t so = opener(u_smq);
	kill9(sc);
	kill9(so);
	/* Creators of mq:// and fifo:// die before a peer came. */
	pid_t mc = creator(u_mq, &r2);
	kill9(mc);
	pid_t fc = creator(u_fifo, &r3);
	kill9(fc);
	pid_t uc = creator(u_unix, &r7);
	kill9(uc);
	/* Another user's dead socket file: listed, never removed. */
	pid_t oc = creator(o_unix, &r9);
	kill9(oc);
	assert_int_equal(chown(o_unix + strlen("unix://"), 65534, 65534), 0);
	/* One live channel of each. */
	pid_t ls = creator(l_smq, &r4);
	pid_t lm = creator(l_mq, &r5);
	pid_t lf = creator(l_fifo, &r6);
	pid_t lu = creator(l_unix, &r8);

	assert_int_equal(run_cat("--list", out, sizeof out), 0);
	char cpid[32], opid[32];
	snprintf(cpid, sizeof cpid, " %d ", (int)sc);
	snprintf(opid, sizeof opid, " %d ", (int)so);
	expect(out, "sysvmq   stale", cpid, opid, 1);
	expect(out, "mq       stale", u_mq, NULL, 1);
	expect(out, "fifo     stale", u_fifo, NULL, 1);
	snprintf(w, sizeof w, " %d ", (int)ls);
	expect(out, "sysvmq   alive", w, NULL, 1);
	snprintf(w, sizeof w, " %d ", (int)lm);
	expect(out, "mq       alive", l_mq, w, 1);
	snprintf(w, sizeof w, " %d ", (int)lf);
	expect(out, "fifo     alive", l_fifo, w, 1);
	expect(out, "unix     stale", u_unix, NULL, 1);
	expect(out, "unix     stale", o_unix, " 65534 ", 1);
	expect(out, "unix     alive", l_unix, NULL, 1);

	assert_int_equal(run_cat("--gc", out, sizeof out), 0);
	expect(out, "removed sysvmq", NULL, NULL, 1);
	expect(out, "removed", u_mq, NULL, 1);
	expect(out, "removed", u_fifo, NULL, 1);
	expect(out, "removed", u_unix, NULL, 1);
	expect(out, "removed", o_unix, NULL, 0);
	expect(out, "4 removed, 0 not, 1 of other users left alone", NULL,
	       NULL, 1);
	struct stat st;
	assert_int_equal(lstat(o_unix + strlen("unix://"), &st), 0);
	assert_int_equal(unlink(o_unix + strlen("unix://")), 0);

	assert_int_equal(run_cat("--list", out, sizeof out), 0);
	expect(out, "stale", NULL, NULL, 0);
	expect(out, "sysvmq   alive", NULL, NULL, 1);
	expect(out, "mq       alive", l_mq, NULL, 1);
	expect(out, "fifo     alive", l_fifo, NULL, 1);
	expect(out, "unix     alive", l_unix, NULL, 1);

	/* The live channels are untouched: they still take a peer. */
	const char *live[] = {l_smq, l_mq, l_fifo, l_unix};
	for (int i = 0; i < 4; i++) {
		ipc_channel *c;
		int r = ipc_open(&c, live[i], 0);
		if (r != 0) {
			printf("%s: %s\n", live[i], ipc_last_error());
		}
		assert_int_equal(r, 0);
		assert_int_equal(ipc_send(c, "y", 1, 0), 1);
		ipc_close(c);
	}
	kill9(ls);
	kill9(lm);
	kill9(lf);
	kill9(lu);
	/* What the kills left goes too; then nothing of ours is there. */
	assert_int_equal(run_cat("--gc", out, sizeof out), 0);
	assert_int_equal(run_cat("--list", out, sizeof out), 0);
	expect(out, "gc-", NULL, NULL, 0);
	expect(out, dir, NULL, NULL, 0);
	int fds[] = {r1, r2, r3, r4, r5, r6, r7, r8, r9};
	for (int i = 0; i < 9; i++) {
		close(fds[i]);
	}
	tu_rmtree(dir);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_list_and_gc),
	};
	if (argc < 2) {
		fprintf(stderr, "usage: test_gc PATH-TO-IPC-CAT\n");
		return 2;
	}
	ipc_cat = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
