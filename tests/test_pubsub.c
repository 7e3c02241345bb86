/*
 * Publish/subscribe API rules that hold whatever the driver (DESIGN.md 2b):
 * flags, refusals with their texts, ipc_subscribers/ipc_dropped on the
 * wrong channels, and the registry's promise that a driver declaring
 * IPC_CAP_PUBSUB can carry it (natively, or through listeners).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/registry.h"
#include "testutil.h"

static void
expect_error(int r, int want, const char *uri, const char *words)
{
	const char *e = ipc_last_error();

	printf("%s -> %d: %s\n", uri, r, e);
	assert_int_equal(r, want);
	assert_true(strncmp(e, uri, strlen(uri)) == 0);
	assert_non_null(strstr(e, words));
}

/* Drivers without IPC_CAP_PUBSUB refuse both roles, naming the flag. */
static void
t_refused_without_cap(void **state)
{
	ipc_channel *ch = (ipc_channel *)1;
	int n = 0;

	(void)state;
	for (const struct ipc_driver *const *d = ipc__drivers(); *d != NULL;
	     d++) {
		char uri[64];
		if ((*d)->caps & IPC_CAP_PUBSUB) {
			continue;
		}
		snprintf(uri, sizeof uri, "%s://x", (*d)->scheme);
		expect_error(ipc_open(&ch, uri, IPC_PUBLISH), -EOPNOTSUPP, uri,
		             "IPC_PUBLISH");
		assert_null(ch);
		expect_error(ipc_open(&ch, uri, IPC_SUBSCRIBE), -EOPNOTSUPP,
		             uri, "IPC_SUBSCRIBE");
		assert_null(ch);
		n++;
	}
	/* Refused before the options are read: no "unknown option". */
	expect_error(ipc_open(&ch, "pipe:?slow=drop", IPC_PUBLISH),
	             -EOPNOTSUPP, "pipe:", "publish/subscribe");
	printf("%d drivers without IPC_CAP_PUBSUB refuse both roles\n", n);
}

static void
t_bad_flags(void **state)
{
	ipc_channel *ch = (ipc_channel *)1;

	(void)state;
	expect_error(ipc_open(&ch, "unix://@x", IPC_PUBLISH | IPC_SUBSCRIBE),
	             -EINVAL, "unix://@x", "together");
	assert_null(ch);
	expect_error(ipc_open(&ch, "unix://@x", IPC_SUBSCRIBE | IPC_CREATE),
	             -EINVAL, "unix://@x", "IPC_CREATE");
	/* ipc_listen and ipc_accept take no roles. */
	ipc_listener *l = NULL;
	expect_error(ipc_listen(&l, "unix://@x", IPC_PUBLISH), -EINVAL,
	             "unix://@x", "unknown flags");
	assert_null(l);
}

/* A plain channel has neither role: subscribers() refuses, dropped() 0,
 * and both take NULL. */
static void
t_queries_on_plain_channels(void **state)
{
	ipc_channel *a, *b;

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "pipe:"), 0);
	expect_error(ipc_subscribers(a), -EINVAL, "pipe:", "not a publisher");
	assert_int_equal(ipc_dropped(a), 0);
	assert_int_equal(ipc_subscribers(NULL), -EINVAL);
	assert_int_equal(ipc_dropped(NULL), 0);
	assert_int_equal(ipc_close(a), 0);
	assert_int_equal(ipc_close(b), 0);
}

/* Every driver that says IPC_CAP_PUBSUB either carries it natively (the
 * subscribers slot) or through the core (listeners). */
static void
t_registry_promise(void **state)
{
	(void)state;
	for (const struct ipc_driver *const *d = ipc__drivers(); *d != NULL;
	     d++) {
		if (!((*d)->caps & IPC_CAP_PUBSUB)) {
			continue;
		}
		printf("%s: publish/subscribe %s\n", (*d)->scheme,
		       (*d)->subscribers ? "native" : "through listeners");
		assert_true((*d)->subscribers != NULL ||
		            ((*d)->listen != NULL && (*d)->accept != NULL));
	}
}

/* Threads (ipc.h): one thread sends on a publisher while another asks
 * ipc_subscribers/ipc_dropped/ipc_poll of it, and a third receives on the
 * subscriber (the 'tsan' suite runs this under ThreadSanitizer). */
#define THREAD_N 3000

struct threads {
	ipc_channel *pub;
	atomic_int done;
};

static void *
sender(void *arg)
{
	struct threads *t = arg;

	for (int i = 0; i < THREAD_N; i++) {
		if (ipc_send(t->pub, &i, sizeof i, 0) != (ssize_t)sizeof i) {
			printf("send %d: %s\n", i, ipc_last_error());
			break;
		}
	}
	atomic_store(&t->done, 1);
	return NULL;
}

static void *
asker(void *arg)
{
	struct threads *t = arg;

	while (!atomic_load(&t->done)) {
		ipc_pollitem it = {.channel = t->pub, .events = IPC_POLLOUT};
		if (ipc_subscribers(t->pub) != 1 || ipc_dropped(t->pub) != 0 ||
		    ipc_poll(&it, 1, 0) < 0) {
			printf("asker: %s\n", ipc_last_error());
			atomic_store(&t->done, 2);
		}
	}
	return NULL;
}

static void
t_threads(void **state)
{
	char uri[96], name[64];
	struct threads t = {0};
	ipc_channel *sub;
	pthread_t a, b;

	(void)state;
	snprintf(uri, sizeof uri, "unix://@%s",
	         tu_unique(name, sizeof name, "pubsub"));
	assert_int_equal(ipc_open(&t.pub, uri, IPC_PUBLISH), 0);
	assert_int_equal(ipc_open(&sub, uri, IPC_SUBSCRIBE), 0);
	assert_int_equal(ipc_set_timeout(sub, 20000), 0);
	while (ipc_subscribers(t.pub) != 1) {
		ipc_pollitem it = {.channel = t.pub, .events = IPC_POLLOUT};
		assert_true(ipc_poll(&it, 1, 50) >= 0);
	}
	assert_int_equal(pthread_create(&a, NULL, sender, &t), 0);
	assert_int_equal(pthread_create(&b, NULL, asker, &t), 0);
	for (int i = 0; i < THREAD_N; i++) {
		int v = -1;
		ssize_t r = ipc_recv(sub, &v, sizeof v, 0);
		if (r != (ssize_t)sizeof v) {
			printf("message %d: %zd (%s)\n", i, r,
			       ipc_last_error());
		}
		assert_int_equal(r, sizeof v);
		assert_int_equal(v, i);
	}
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert_int_equal(atomic_load(&t.done), 1);
	assert_int_equal(ipc_close(t.pub), 0);
	char c;
	assert_int_equal(ipc_recv(sub, &c, 1, 0), -EPIPE);
	assert_int_equal(ipc_close(sub), 0);
}

#define BIG (1u << 20)

struct big {
	ipc_channel *sub;
	ssize_t got;
	int ok;
};

static void *
big_reader(void *arg)
{
	struct big *b = arg;
	unsigned char *buf = malloc(BIG);

	b->got = buf ? ipc_recv(b->sub, buf, BIG, 0) : -ENOMEM;
	if (b->got < 0) {
		printf("big_reader: %s\n", ipc_last_error());
	}
	b->ok = b->got == (ssize_t)BIG;
	for (size_t i = 0; b->ok && i < BIG; i++) {
		b->ok = buf[i] == (unsigned char)(i * 7);
	}
	free(buf);
	return NULL;
}

/* A message the kernel takes only part of (1 MiB over a socket) reaches
 * the subscriber whole while the publisher makes no further call: the
 * publisher keeps it until it is out, rather than leaving its tail in
 * the subscriber's channel for the next send to push. */
static void
big_then_idle(const char *uri)
{
	struct big b = {0};
	ipc_channel *pub;
	pthread_t th;
	unsigned char *msg = malloc(BIG);

	assert_non_null(msg);
	for (size_t i = 0; i < BIG; i++) {
		msg[i] = (unsigned char)(i * 7);
	}
	printf("%s\n", uri);
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	assert_int_equal(ipc_open(&b.sub, uri, IPC_SUBSCRIBE), 0);
	assert_int_equal(ipc_set_timeout(b.sub, 5000), 0);
	assert_int_equal(ipc_set_timeout(pub, 20000), 0);
	while (ipc_subscribers(pub) != 1) {
		ipc_pollitem it = {.channel = pub, .events = IPC_POLLOUT};
		assert_true(ipc_poll(&it, 1, 50) >= 0);
	}
	assert_int_equal(pthread_create(&th, NULL, big_reader, &b), 0);
	assert_int_equal(ipc_send(pub, msg, BIG, 0), BIG);
	/* No call on pub until the reader is done (or timed out). */
	pthread_join(th, NULL);
	assert_int_equal(b.got, BIG);
	assert_true(b.ok);
	assert_int_equal(ipc_close(pub), 0);
	assert_int_equal(ipc_close(b.sub), 0);
	free(msg);
}

static void
t_big_then_idle(void **state)
{
	char uri[96], name[64];
	int port;

	(void)state;
	snprintf(uri, sizeof uri, "unix://@%s",
	         tu_unique(name, sizeof name, "pubsub-big"));
	big_then_idle(uri);
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
	big_then_idle(uri);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_refused_without_cap),
	        cmocka_unit_test(t_bad_flags),
	        cmocka_unit_test(t_queries_on_plain_channels),
	        cmocka_unit_test(t_registry_promise),
	        cmocka_unit_test(t_threads),
	        cmocka_unit_test(t_big_then_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
