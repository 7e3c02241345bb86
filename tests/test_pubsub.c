/*
 * Publish/subscribe API rules that hold whatever the driver (DESIGN.md 2b):
 * flags, refusals with their texts, ipc_subscribers/ipc_dropped on the
 * wrong channels, and the registry's promise that a driver declaring
 * IPC_CAP_PUBSUB can carry it (natively, or through listeners).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_refused_without_cap),
	        cmocka_unit_test(t_bad_flags),
	        cmocka_unit_test(t_queries_on_plain_channels),
	        cmocka_unit_test(t_registry_promise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
