/*
 * Error texts read alike (issue 14): every ipc_last_error() is
 * "URI: what failed: why", lower case after the URI, no doubled colons,
 * no closing full stop; -EAGAIN names the URI; -EMSGSIZE on receive names
 * the URI and the size needed ("needs N bytes").  A table of the error
 * paths a test can provoke in one process, walked over every driver this
 * build registers that can be opened here; a driver without an entry
 * below is listed as not covered (with the reason).
 *
 * SPDX-License-Identifier: MIT
 */
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "core/registry.h"
#include "testutil.h"
#include "ipc/ipc.h"

/* How to make a channel of each driver in one process: a URI template
 * (%s a unique name, %d a fresh directory), "pair:" for ipc_pair, or NULL
 * with the reason it is not covered. */
static const struct {
	const char *scheme, *tmpl, *why;
} tmpls[] = {
        {"pipe", "pair:pipe:", NULL},
        {"fd", NULL, "adopted descriptors: fd:// is covered by pipe:"},
        {"fifo", "fifo://%d/f", NULL},
        {"inproc", "inproc://%s", NULL},
        {"mq", "mq://%s", NULL},
        {"sysvmq", "sysvmq://%s", NULL},
        {"sysvshm", "sysvshm://%s", NULL},
        {"shm", "shm://%s", NULL},
        {"unix", "unix://%d/sock", NULL},
        {"unix+seqpacket", "unix+seqpacket://%d/sock", NULL},
        {"unix+dgram", "unix+dgram://%d/sock", NULL},
        {"tcp", "tcp://127.0.0.1:0", NULL},
        {"udp", "udp://127.0.0.1:0", NULL},
        {"mmap", "mmap://%d/ring", NULL},
        {"file", "file://%d/log", NULL},
        {"signal", "fork:signal://", NULL},
        {"dbus", NULL,
         "needs a bus: run as errors-dbus (test_errors "
         "TEMPLATE under tests/dbus_run)"},
        {"nats", NULL, "needs a server: run as errors-nats"},
        {"tls+tcp", NULL, "needs certificates: run as errors-tls"},
};

static char dir[64];

static int g_bad; /* texts out of form: all are listed, then it fails */

static void
form_fail(const char *what, const char *uri, const char *text, const char *why)
{
	printf("BAD %s on %s: \"%s\": %s\n", what, uri, text, why);
	g_bad++;
}

/* The form every text keeps; uri NULL: a call without a channel. */
static void
check_form(const char *what, const char *uri, int parts)
{
	const char *t = ipc_last_error();
	const char *rest = t;

	if (uri != NULL) {
		/* "URI: ", or "pipe: " after a URI that ends in a colon. */
		size_t n = strlen(uri);
		const char *sp = n > 0 && uri[n - 1] == ':' ? " " : ": ";
		if (strncmp(t, uri, n) != 0 ||
		    strncmp(t + n, sp, strlen(sp)) != 0) {
			form_fail(what, uri, t, "does not start with the URI");
		}
		rest = t + n + strlen(sp);
	}
	if (!islower((unsigned char)rest[0])) {
		form_fail(what, uri, t, "not lower case after the URI");
	}
	if (strstr(rest, "::") != NULL || strstr(rest, ": :") != NULL ||
	    strstr(rest, ":  ") != NULL) {
		form_fail(what, uri, t, "doubled colon");
	}
	size_t len = strlen(rest);
	if (len == 0 || rest[len - 1] == '.' || rest[len - 1] == ':' ||
	    rest[len - 1] == ' ') {
		form_fail(what, uri, t, "ends in punctuation");
	}
	int k = 1;
	for (const char *p = rest; (p = strstr(p, ": ")) != NULL; p += 2) {
		k++;
	}
	if (k < parts) {
		form_fail(what, uri, t, "want \"what failed: why\"");
	}
	printf("  %-10s %s\n", what, t);
}

/* The form, and that the text names the call that failed: "URI: OP: ". */
static void
check_op(const char *what, const char *uri, const char *op, int parts)
{
	char want[320];

	check_form(what, uri, parts);
	size_t n = strlen(uri);
	snprintf(want, sizeof want, "%s%s%s: ", uri,
	         n > 0 && uri[n - 1] == ':' ? " " : ": ", op);
	if (strncmp(ipc_last_error(), want, strlen(want)) != 0) {
		form_fail(what, uri, ipc_last_error(),
		          "does not name the call that failed");
	}
}

static void
expand(char *out, size_t n, const char *tmpl)
{
	static int seq;
	char name[64];

	snprintf(name, sizeof name, "ipcerr-%d-%d", (int)getpid(), seq++);
	tu_expand(out, n, tmpl, name, dir);
}

struct opener {
	const char *uri;
	ipc_channel *ch;
	int rc;
};

/* The connecting end, in a thread: some opens wait for the creator (a
 * TLS handshake), which answers in its recv below. */
static void *
open_peer(void *arg)
{
	struct opener *o = arg;
	o->rc = ipc_open(&o->ch, o->uri, 0);
	if (o->rc == 0) {
		ipc_set_timeout(o->ch, 20000);
		o->rc = (int)ipc_send(o->ch, "h", 1, 0);
	}
	return NULL;
}

/* Two connected ends a, b of the template. */
static void
make(const char *tmpl, ipc_channel **a, ipc_channel **b, char *uri, size_t n)
{
	if (strncmp(tmpl, "pair:", 5) == 0) {
		snprintf(uri, n, "%s", tmpl + 5);
		assert_int_equal(ipc_pair(a, b, tmpl + 5), 0);
		return;
	}
	expand(uri, n, tmpl);
	int r = ipc_open(a, uri, IPC_CREATE);
	if (r < 0) {
		fail_msg("ipc_open %s: %s", uri, ipc_last_error());
	}
	struct opener o = {.uri = ipc_local_uri(*a)};
	pthread_t th;
	assert_non_null(o.uri);
	assert_int_equal(pthread_create(&th, NULL, open_peer, &o), 0);
	/* The connector speaks first: the creator learns its peer. */
	assert_int_equal(ipc_set_timeout(*a, 20000), 0);
	char c;
	assert_int_equal(ipc_recv(*a, &c, 1, 0), 1);
	pthread_join(th, NULL);
	if (o.rc < 0) {
		fail_msg("ipc_open %s: %d", o.uri, o.rc);
	}
	*b = o.ch;
}

static void
walk(const char *scheme, const char *tmpl)
{
	ipc_channel *a, *b, *x = NULL;
	char uri[300], au[256], buf[64];

	printf("%s (%s)\n", scheme, tmpl);
	/* An unknown option. */
	if (strncmp(tmpl, "pair:", 5) != 0) {
		char base[256];
		expand(base, sizeof base, tmpl);
		snprintf(uri, sizeof uri, "%s%cbogus=1", base,
		         strchr(base, '?') != NULL ? '&' : '?');
		assert_int_equal(ipc_open(&x, uri, IPC_CREATE), -EINVAL);
		check_form("option", uri, 2);
		if (strstr(ipc_last_error(), "'bogus'") == NULL) {
			fail_msg("%s: the option is not named", uri);
		}
	}
	make(tmpl, &a, &b, au, sizeof au);

	/* -EAGAIN names the URI. */
	assert_int_equal(ipc_recv(a, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	check_op("eagain", au, "recv", 2);

	/* -ETIMEDOUT names the call and the time. */
	assert_int_equal(ipc_set_timeout(a, 20), 0);
	assert_int_equal(ipc_recv(a, buf, sizeof buf, 0), -ETIMEDOUT);
	check_op("timeout", au, "recv", 2);
	if (strstr(ipc_last_error(), "20 ms") == NULL) {
		fail_msg("-ETIMEDOUT on %s: \"%s\" does not say \"20 ms\"",
		         tmpl, ipc_last_error());
	}
	assert_int_equal(ipc_set_timeout(a, -1), 0);

	/* -EMSGSIZE on receive: the URI and the size needed. */
	assert_int_equal(ipc_send(b, "0123456789", 10, 0), 10);
	assert_int_equal(ipc_recv(a, buf, 4, 0), -EMSGSIZE);
	const char *t = ipc_last_error();
	if (strstr(t, "needs 10 bytes") == NULL || t[0] == ':') {
		fail_msg("-EMSGSIZE on %s: \"%s\" does not say \"needs 10 "
		         "bytes\"",
		         tmpl, t);
	}
	check_op("emsgsize", au, "recv", 3);
	assert_int_equal(ipc_recv(a, buf, sizeof buf, 0), 10);

	/* -EMSGSIZE on send. */
	size_t big = ipc_max_msg(b) + 1;
	void *p = calloc(1, big);
	assert_non_null(p);
	assert_int_equal(ipc_send(b, p, big, 0), -EMSGSIZE);
	free(p);
	/* b was opened by the URI a peer uses to reach a. */
	const char *bu =
	        strncmp(tmpl, "pair:", 5) == 0 ? au : ipc_local_uri(a);
	check_op("send-size", bu, "send", 3);

	/* -EINVAL of a misuse. */
	assert_int_equal(ipc_commit(a, 0), -EINVAL);
	check_form("commit", au, 2);

	/* -EPIPE once the peer closed: "URI: recv: the peer closed the
	 * channel" (or "... or exited" where the driver cannot tell a
	 * close from an exit), never that it died. */
	assert_int_equal(ipc_close(b), 0);
	if (!(ipc_caps(a) & IPC_CAP_PEERCLOSE)) {
		printf("  closed     (no IPC_CAP_PEERCLOSE: not reported)\n");
		assert_int_equal(ipc_close(a), 0);
		return;
	}
	assert_int_equal(ipc_set_timeout(a, 20000), 0);
	assert_int_equal(ipc_recv(a, buf, sizeof buf, 0), -EPIPE);
	check_op("closed", au, "recv", 2);
	t = ipc_last_error();
	if (strstr(t, "recv: the peer closed the channel") == NULL) {
		fail_msg("-EPIPE after the peer's close on %s: \"%s\" does "
		         "not say \"recv: the peer closed the channel\"",
		         tmpl, t);
	}
	/* -EPIPE on send to the closed peer, where the driver reports it. */
	ssize_t sr = ipc_send(a, "x", 1, IPC_NONBLOCK);
	if (sr == -EPIPE) {
		check_op("send-closed", au, "send", 2);
		if (strstr(ipc_last_error(), "died") != NULL) {
			fail_msg("send after the peer's close on %s: \"%s\" "
			         "says it died",
			         tmpl, ipc_last_error());
		}
	} else {
		printf("  send-closed (%s: not -EPIPE)\n",
		       tu_errname((int)sr));
	}
	assert_int_equal(ipc_close(a), 0);
}

/* A name nobody created: -ENOENT or -ECONNREFUSED, in the form. */
static void
walk_missing(const char *tmpl)
{
	char uri[300];
	ipc_channel *x = NULL;

	if (strncmp(tmpl, "pair:", 5) == 0 || strstr(tmpl, ":0") != NULL) {
		return; /* no name to miss; a port 0 cannot be connected */
	}
	expand(uri, sizeof uri, tmpl);
	int r = ipc_open(&x, uri, 0);
	if (r != -ENOENT && r != -ECONNREFUSED) {
		fail_msg("open of %s nobody created: %s, not -ENOENT or "
		         "-ECONNREFUSED",
		         uri, tu_errname(r));
	}
	check_form("missing", uri, 2);
}

/* The peer of walk_fork, in another process: it connects and says hello,
 * sends a message of 10 bytes, then waits for a command: 'c' to close
 * (and live on until killed), 'k' to wait to be killed. */
static int
fork_peer(void *arg)
{
	char c = 0;
	ipc_channel *ch = tu_open_retry(arg, 0, 10000);

	if (ch == NULL || ipc_send(ch, "h", 1, 0) != 1 ||
	    ipc_send(ch, "0123456789", 10, 0) != 10 ||
	    ipc_recv(ch, &c, 1, 0) != 1) {
		return 3;
	}
	if (c == 'c' && ipc_close(ch) != 0) {
		return 4;
	}
	for (;;) {
		pause();
	}
}

/* Drivers whose peer must be another process (signal://: one channel
 * per signal in a process): the peer is forked. */
static void
walk_fork(const char *scheme, const char *tmpl)
{
	char uri[300], au[256], buf[64], peer[256];
	ipc_channel *a, *x = NULL;

	printf("%s (%s, peer forked)\n", scheme, tmpl);
	snprintf(uri, sizeof uri, "%s%cbogus=1", tmpl,
	         strchr(tmpl, '?') != NULL ? '&' : '?');
	assert_int_equal(ipc_open(&x, uri, IPC_CREATE), -EINVAL);
	check_form("option", uri, 2);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ipc_open(&a, tmpl, IPC_CREATE), 0);
		snprintf(au, sizeof au, "%s", tmpl);
		/* signal://PID: this process (ipc_local_uri() where known). */
		const char *lu = ipc_local_uri(a);
		if (lu != NULL) {
			snprintf(peer, sizeof peer, "%s", lu);
		} else {
			snprintf(peer, sizeof peer, "%s%d", tmpl,
			         (int)getpid());
		}
		pid_t pid = tu_fork(fork_peer, peer, 60);
		assert_true(pid > 0);
		assert_int_equal(ipc_set_timeout(a, 20000), 0);
		assert_int_equal(ipc_recv(a, buf, sizeof buf, 0), 1);
		if (round == 0) {
			assert_int_equal(ipc_recv(a, buf, 4, 0), -EMSGSIZE);
			check_op("emsgsize", au, "recv", 3);
			if (strstr(ipc_last_error(), "needs 10 bytes") ==
			    NULL) {
				fail_msg("-EMSGSIZE on %s: \"%s\"", au,
				         ipc_last_error());
			}
			assert_int_equal(ipc_recv(a, buf, sizeof buf, 0), 10);
			assert_int_equal(
			        ipc_recv(a, buf, sizeof buf, IPC_NONBLOCK),
			        -EAGAIN);
			check_op("eagain", au, "recv", 2);
			assert_int_equal(ipc_set_timeout(a, 20), 0);
			assert_int_equal(ipc_recv(a, buf, sizeof buf, 0),
			                 -ETIMEDOUT);
			check_op("timeout", au, "recv", 2);
			assert_int_equal(ipc_set_timeout(a, 20000), 0);
			size_t big = ipc_max_msg(a) + 1;
			void *p = calloc(1, big);
			assert_non_null(p);
			assert_int_equal(ipc_send(a, p, big, 0), -EMSGSIZE);
			free(p);
			check_op("send-size", au, "send", 3);
			assert_int_equal(ipc_commit(a, 0), -EINVAL);
			check_form("commit", au, 2);
			assert_int_equal(ipc_send(a, "c", 1, 0), 1);
			assert_int_equal(ipc_recv(a, buf, sizeof buf, 0),
			                 -EPIPE);
			check_op("closed", au, "recv", 2);
			if (strstr(ipc_last_error(), "closed") == NULL ||
			    strstr(ipc_last_error(), "died") != NULL) {
				fail_msg("-EPIPE after the peer's close on "
				         "%s: \"%s\"",
				         au, ipc_last_error());
			}
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, NULL, 0), pid);
		} else {
			assert_int_equal(ipc_recv(a, buf, sizeof buf, 0), 10);
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, NULL, 0), pid);
			assert_int_equal(ipc_recv(a, buf, sizeof buf, 0),
			                 -EPIPE);
			check_op("died", au, "recv", 2);
			if (strstr(ipc_last_error(), "died") == NULL) {
				fail_msg("-EPIPE after SIGKILL of the peer on "
				         "%s: \"%s\" does not say died",
				         au, ipc_last_error());
			}
		}
		assert_int_equal(ipc_close(a), 0);
	}
}

static void
test_every_driver(void **state)
{
	(void)state;
	const struct ipc_driver *const *all = ipc__drivers();
	int covered = 0;

	for (size_t i = 0; all[i] != NULL; i++) {
		const char *sc = all[i]->scheme;
		size_t k = 0;
		while (k < sizeof tmpls / sizeof tmpls[0] &&
		       strcmp(tmpls[k].scheme, sc) != 0) {
			k++;
		}
		if (k == sizeof tmpls / sizeof tmpls[0]) {
			printf("%s: not covered: no one-process template "
			       "here (it needs a peer outside)\n",
			       sc);
			continue;
		}
		if (tmpls[k].tmpl == NULL) {
			printf("%s: not covered: %s\n", sc, tmpls[k].why);
			continue;
		}
		if (strncmp(tmpls[k].tmpl, "fork:", 5) == 0) {
			walk_fork(sc, tmpls[k].tmpl + 5);
		} else {
			walk_missing(tmpls[k].tmpl);
			walk(sc, tmpls[k].tmpl);
		}
		covered++;
	}
	assert_true(covered >= 10);
	assert_int_equal(g_bad, 0);
}

/* Calls without a channel name themselves. */
static void
test_no_channel(void **state)
{
	(void)state;
	ipc_pollitem it = {.channel = (ipc_channel *)&it,
	                   .listener = (ipc_listener *)&it};
	assert_int_equal(ipc_poll(&it, 1, 0), -EINVAL);
	check_form("poll", "ipc_poll", 2);
	assert_int_equal(ipc_recv(NULL, NULL, 0, 0), -EINVAL);
	check_form("recv", "ipc_recv", 1);
}

/* test_errors TEMPLATE: that template alone (the drivers that need a
 * daemon or certificates, set up by a wrapper). */
static const char *g_only;

static void
test_template(void **state)
{
	(void)state;
	char sc[32];
	snprintf(sc, sizeof sc, "%.*s", (int)strcspn(g_only, ":"), g_only);
	walk(sc, g_only);
}

int
main(int argc, char **argv)
{
	snprintf(dir, sizeof dir, "/tmp/ipcerr-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	int r;
	if (argc > 1) {
		g_only = argv[1];
		const struct CMUnitTest one[] = {
		        cmocka_unit_test(test_template),
		};
		r = cmocka_run_group_tests(one, NULL, NULL);
	} else {
		const struct CMUnitTest tests[] = {
		        cmocka_unit_test(test_every_driver),
		        cmocka_unit_test(test_no_channel),
		};
		r = cmocka_run_group_tests(tests, NULL, NULL);
	}
	tu_rmtree(dir);
	return r;
}
