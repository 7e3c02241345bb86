/*
 * README.md's transport table against the registry: every compiled-in
 * driver has a row, the row's capability letters are the driver's and
 * those ipc_caps() reports for an open channel, and the "largest message"
 * column is what ipc_max_msg() of an open channel says (for the drivers
 * this test can open without a server).
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
#include <unistd.h>

#include <cmocka.h>

#include "core/registry.h"
#include "ipc/ipc.h"
#include "testutil.h"

static const char *readme_path;

static const struct {
	unsigned bit;
	char letter;
} letters[] = {
        {IPC_CAP_RELIABLE, 'R'},  {IPC_CAP_ORDERED, 'O'},
        {IPC_CAP_ZEROCOPY, 'Z'},  {IPC_CAP_LISTEN, 'L'},
        {IPC_CAP_PEERCLOSE, 'P'}, {IPC_CAP_CROSSHOST, 'X'},
        {IPC_CAP_PUBSUB, 'S'},
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

/* The fourth cell, "largest message": the size it states, as *min and
 * *max (equal for an exact figure, max 0 for "at least min").  0: no
 * figure this test can read (it depends on a server, say). */
static int
row_largest(const char *line, unsigned long long *min, unsigned long long *max)
{
	const char *p = line;
	for (int cell = 0; cell < 3; cell++) {
		p = strchr(p + 1, '|');
		assert_non_null(p);
	}
	const char *end = strchr(p + 1, '|');
	assert_non_null(end);
	char cell[256];
	size_t n = (size_t)(end - p - 1) < sizeof(cell) - 1
	                   ? (size_t)(end - p - 1)
	                   : sizeof(cell) - 1;
	memcpy(cell, p + 1, n);
	cell[n] = '\0';
	const char *d = NULL;
	int ring = strstr(cell, "ring size") != NULL;
	if (ring) {
		d = strstr(cell, "default ");
		d = d ? d + 8 : NULL;
	} else if (cell[strspn(cell, " ")] >= '0' &&
	           cell[strspn(cell, " ")] <= '9') {
		d = cell + strspn(cell, " ");
	} else if ((d = strchr(cell, '(')) != NULL) {
		d++;
	}
	if (d == NULL || *d < '0' || *d > '9') {
		return 0;
	}
	char *e;
	unsigned long long v = strtoull(d, &e, 10);
	if (strncmp(e, " MiB", 4) == 0) {
		v <<= 20;
		e += 4;
	} else if (strncmp(e, " KiB", 4) == 0) {
		v <<= 10;
		e += 4;
	}
	if (ring) {
		v -= 16; /* "ring size − 16 B" */
	}
	*min = v;
	*max = *e == '+' ? 0 : v;
	return 1;
}

/* A channel of the driver, opened as a user would: 0, or -1 when this
 * test cannot open one alone (a bus or server is needed). */
static int
open_one(const char *scheme, ipc_channel **a, ipc_channel **b, char *dir)
{
	static const char *const pairs[] = {
	        "pipe",       "unix", "unix+seqpacket",
	        "unix+dgram", "shm",  "inproc"};
	char uri[512], name[64];
	*a = *b = NULL;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (strcmp(scheme, pairs[i]) == 0) {
			snprintf(uri, sizeof(uri), "%s:", scheme);
			return ipc_pair(a, b, uri) == 0 ? 0 : -2;
		}
	}
	tu_unique(name, sizeof(name), "readme");
	if (strcmp(scheme, "fd") == 0) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		snprintf(uri, sizeof(uri), "fd://%d,%d", p[0], p[1]);
		return ipc_open(a, uri, 0) == 0 ? 0 : -2;
	}
	if (strcmp(scheme, "fifo") == 0) {
		snprintf(uri, sizeof(uri), "fifo://%s/f", dir);
	} else if (strcmp(scheme, "mq") == 0 ||
	           strcmp(scheme, "sysvmq") == 0 ||
	           strcmp(scheme, "sysvshm") == 0) {
		snprintf(uri, sizeof(uri), "%s://%s", scheme, name);
	} else if (strcmp(scheme, "tcp") == 0 || strcmp(scheme, "udp") == 0) {
		int port;
		assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
		snprintf(uri, sizeof(uri), "%s://127.0.0.1:%d", scheme, port);
	} else if (strcmp(scheme, "signal") == 0) {
		snprintf(uri, sizeof(uri), "signal://");
	} else {
		return -1;
	}
	int r = ipc_open(a, uri, IPC_CREATE | IPC_NONBLOCK);
	if (r != 0) {
		printf("%s: %s\n", uri, ipc_last_error());
	}
	return r == 0 ? 0 : -2;
}

/* ipc_caps() and ipc_max_msg() of an open channel against the row. */
static void
check_open(const char *scheme, const char *line, unsigned caps)
{
	char dir[256];
	ipc_channel *a, *b;
	assert_int_equal(tu_tmpdir(dir, sizeof(dir), "readme"), 0);
	int r = open_one(scheme, &a, &b, dir);
	if (r == -1) {
		printf("README row for '%s': caps and size as declared (an "
		       "open channel needs a server or bus)\n",
		       scheme);
		tu_rmtree(dir);
		return;
	}
	if (r != 0) {
		fail_msg("cannot open a %s:// channel to check its README row",
		         scheme);
	}
	unsigned got = (unsigned)ipc_caps(a);
	size_t mm = ipc_max_msg(a);
	unsigned long long lo = 0, hi = 0;
	int stated = row_largest(line, &lo, &hi);
	printf("%s: ipc_caps 0x%x, ipc_max_msg %zu; README 0x%x, largest "
	       "%llu..%llu%s\n",
	       scheme, got, mm, caps, lo, hi, stated ? "" : " (not stated)");
	ipc_close(a);
	if (b != NULL) {
		ipc_close(b);
	}
	tu_rmtree(dir);
	if (got != caps) {
		fail_msg("README says caps 0x%x for %s, an open channel has "
		         "0x%x",
		         caps, scheme, got);
	}
	if (!stated) {
		fail_msg("README's largest message for %s states no size "
		         "(ipc_max_msg says %zu)",
		         scheme, mm);
	}
	if (mm < lo || (hi != 0 && mm != hi)) {
		fail_msg("README's largest message for %s is %llu%s, "
		         "ipc_max_msg() of an open channel is %zu",
		         scheme, lo, hi ? "" : "+", mm);
	}
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
		check_open(scheme, line, caps);
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
