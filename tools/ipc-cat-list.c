/*
 * ipc-cat --list [DIR...] and ipc-cat --gc [DIR...]: the libipc channels
 * on this machine (src/core/objects.h says which and how), and removal of
 * those whose processes are all dead.  DIR: where to look for FIFO pairs
 * and socket files (default /tmp).  --gc leaves another user's socket
 * file alone (saying so), which is not a failure.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/objects.h"
#include "ipc-cat-list.h"

struct listing {
	int gc;
	int n, stale, removed, failed, left;
};

static void
note(void *arg, const char *text)
{
	(void)arg;
	fprintf(stderr, "ipc-cat: %s\n", text);
}

static void
print_pid(pid_t p)
{
	if (p > 0) {
		printf(" %7ld", (long)p);
	} else {
		printf(" %7s", "-");
	}
}

static int
one(void *arg, const struct ipc_obj *o)
{
	struct listing *l = arg;
	char why[256] = "";

	l->n++;
	l->stale += o->stale;
	if (!l->gc) {
		printf("%-8s %-6s %6u", o->scheme,
		       o->stale ? "stale" : "alive", (unsigned)o->uid);
		print_pid(o->pid[0]);
		print_pid(o->pid[1]);
		printf("  %s\n", o->name);
		return 0;
	}
	if (!o->stale) {
		return 0;
	}
	int r = ipc__objects_remove(o, why, sizeof(why));
	if (r == 0) {
		l->removed++;
		printf("removed %s\n", o->name);
	} else if (r == -EPERM && o->sock) {
		l->left++;
		fprintf(stderr, "ipc-cat: %s: %s\n", o->name, why);
	} else {
		l->failed++;
		fprintf(stderr, "ipc-cat: %s: not removed: %s\n", o->name,
		        why);
	}
	return 0;
}

int
ipc_cat_objects(int argc, char **argv)
{
	static const char *const def[] = {"/tmp"};
	struct listing l = {0};

	l.gc = strcmp(argv[1], "--gc") == 0;
	const char *const *dirs =
	        argc > 2 ? (const char *const *)argv + 2 : def;
	int ndirs = argc > 2 ? argc - 2 : 1;
	for (int i = 0; i < ndirs; i++) {
		if (dirs[i][0] != '/') {
			fprintf(stderr,
			        "ipc-cat: %s: not an absolute "
			        "directory\n",
			        dirs[i]);
			return 2;
		}
	}
	if (!l.gc) {
		printf("%-8s %-6s %6s %7s %7s  %s\n", "SCHEME", "STATE", "UID",
		       "CREATOR", "OPENER", "NAME");
	}
	ipc__objects_scan(dirs, ndirs, one, note, &l);
	ipc__objects_done();
	if (l.gc) {
		printf("%d removed, %d not", l.removed, l.failed);
		if (l.left > 0) {
			printf(", %d of other users left alone", l.left);
		}
		printf("\n");
	}
	return l.failed ? 1 : 0;
}
