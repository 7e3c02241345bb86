/*
 * README.md's transport table against the registry: every compiled-in
 * driver has a row, and the row's capability letters are the driver's.
 *
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/registry.h"

static const char *readme_path;

static const struct {
	unsigned bit;
	char letter;
} letters[] = {
        {IPC_CAP_RELIABLE, 'R'},  {IPC_CAP_ORDERED, 'O'},
        {IPC_CAP_ZEROCOPY, 'Z'},  {IPC_CAP_LISTEN, 'L'},
        {IPC_CAP_PEERCLOSE, 'P'}, {IPC_CAP_CROSSHOST, 'X'},
};

/* The scheme named by a row's first cell: "| `unix:///PATH`, ..." */
static int
row_scheme(const char *line, char *out, size_t cap)
{
	const char *b = strchr(line, '`');
	if (b == NULL) {
		return -1;
	}
	const char *c = strchr(b + 1, ':');
	if (c == NULL || (size_t)(c - b - 1) >= cap) {
		return -1;
	}
	memcpy(out, b + 1, (size_t)(c - b - 1));
	out[c - b - 1] = '\0';
	return 0;
}

/* Capability bits spelled in the third cell. */
static unsigned
row_caps(const char *line)
{
	const char *p = line;
	for (int cell = 0; cell < 2; cell++) {
		p = strchr(p + 1, '|');
		assert_non_null(p);
	}
	const char *end = strchr(p + 1, '|');
	assert_non_null(end);
	unsigned caps = 0;
	for (const char *q = p + 1; q < end; q++) {
		if (*q == ' ') {
			continue;
		}
		size_t i;
		for (i = 0; i < sizeof(letters) / sizeof(letters[0]); i++) {
			if (letters[i].letter == *q) {
				caps |= letters[i].bit;
				break;
			}
		}
		if (i == sizeof(letters) / sizeof(letters[0])) {
			fail_msg("unknown capability letter '%c' in: %s", *q,
			         line);
		}
	}
	return caps;
}

static void
test_table_matches_registry(void **state)
{
	(void)state;
	FILE *f = fopen(readme_path, "r");
	assert_non_null(f);
	char line[2048];
	int in = 0;
	size_t seen = 0;
	const struct ipc_driver *const *all = ipc__drivers();
	size_t n = 0;
	while (all[n] != NULL) {
		n++;
	}
	int *found = calloc(n, sizeof(int));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "<!-- transports:begin -->")) {
			in = 1;
			continue;
		}
		if (strstr(line, "<!-- transports:end -->")) {
			break;
		}
		if (!in || strncmp(line, "| `", 3) != 0) {
			continue;
		}
		char scheme[64];
		assert_int_equal(row_scheme(line, scheme, sizeof(scheme)), 0);
		size_t i;
		for (i = 0; i < n; i++) {
			if (strcmp(all[i]->scheme, scheme) == 0) {
				break;
			}
		}
		if (i == n) {
			/* A row for a driver this build leaves out. */
			printf("README row for '%s': not in this build\n",
			       scheme);
			continue;
		}
		unsigned caps = row_caps(line);
		if (caps != all[i]->caps) {
			fail_msg("README says caps 0x%x for %s, the driver "
			         "declares 0x%x",
			         caps, scheme, all[i]->caps);
		}
		found[i] = 1;
		seen++;
	}
	fclose(f);
	for (size_t i = 0; i < n; i++) {
		if (!found[i]) {
			fail_msg("README.md has no row for driver '%s'",
			         all[i]->scheme);
		}
	}
	free(found);
	assert_int_equal(seen, n);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_readme README.md\n");
		return 2;
	}
	readme_path = argv[1];
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table_matches_registry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
