/*
 * Every driver in the registry has a conformance entry: tests/meson.build
 * passes the schemes of its conformance_uris entries as arguments, and a
 * compiled-in driver whose scheme is not among them fails here.  Entries
 * for drivers this build left out (optional dependencies) are fine.
 *
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/registry.h"

static int nentries;
static char **entries;

static int
has_entry(const char *scheme)
{
	for (int i = 0; i < nentries; i++) {
		if (strcmp(entries[i], scheme) == 0) {
			return 1;
		}
	}
	return 0;
}

static void
t_every_driver_has_an_entry(void **state)
{
	int missing = 0, n = 0;

	(void)state;
	for (const struct ipc_driver *const *d = ipc__drivers(); *d != NULL;
	     d++) {
		n++;
		if (!has_entry((*d)->scheme)) {
			printf("driver %s:// has no conformance entry: add "
			       "one "
			       "to conformance_uris in tests/meson.build\n",
			       (*d)->scheme);
			missing++;
		}
	}
	printf("%d drivers registered, %d conformance entries\n", n, nentries);
	assert_int_equal(missing, 0);
	assert_true(n > 0);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_every_driver_has_an_entry),
	};
	entries = argv + 1;
	nentries = argc - 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
