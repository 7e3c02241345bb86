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
        {"signal", NULL,
         "a process has one signal:// channel per "
         "signal: the peer must be another process"},
        {"dbus", NULL,
         "needs a bus: run as errors-dbus (test_errors "
         "TEMPLATE under tests/dbus_run)"},
        {"nats", NULL, "needs a server: run as errors-nats"},
        {"tls+tcp", NULL, "needs certificates: run as errors-tls"},
};

static char dir[64];

static void
form_fail(const char *what, const char *uri, const char *text, const char *why)
{
	fail_msg("%s on %s: \"%s\": %s", what, uri, text, why);
}

/* The form every text keeps; uri NULL: a call without a channel. */
static void
check_form(const char *what, const char *uri, int parts)
{
	const char *t = ipc_last_error();
	const char *rest = t;

	if (uri != NULL) {
		size_t n = strlen(uri);
		if (strncmp(t, uri, n) != 0 || strncmp(t + n, ": ", 2) != 0) {
			form_fail(what, uri, t, "does not start with the URI");
		}
		rest = t + n + 2;
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
	check_form("eagain", au, 2);

	/* -EMSGSIZE on receive: the URI and the size needed. */
	assert_int_equal(ipc_send(b, "0123456789", 10, 0), 10);
	assert_int_equal(ipc_recv(a, buf, 4, 0), -EMSGSIZE);
	const char *t = ipc_last_error();
	if (strstr(t, "needs 10 bytes") == NULL || t[0] == ':') {
		fail_msg("-EMSGSIZE on %s: \"%s\" does not say \"needs 10 "
		         "bytes\"",
		         tmpl, t);
	}
	check_form("emsgsize", au, 3);
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
	check_form("send-size", bu, 3);

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
	check_form("closed", au, 2);
	t = ipc_last_error();
	if (strstr(t, "recv: the peer closed the channel") == NULL) {
		fail_msg("-EPIPE after the peer's close on %s: \"%s\" does "
		         "not say \"recv: the peer closed the channel\"",
		         tmpl, t);
	}
	assert_int_equal(ipc_close(a), 0);
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
		walk(sc, tmpls[k].tmpl);
		covered++;
	}
	assert_true(covered >= 10);
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
