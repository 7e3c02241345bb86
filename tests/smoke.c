/*
 * A smoke test that needs nothing but libc and libipc (no cmocka), so that
 * builds without cmocka (the musl build of `make musl`) run something real:
 * for each URI on the command line (default: a list of local transports),
 * the parent opens the creator end and echoes; a forked child opens the
 * peer end, sends messages of 0 bytes to 256 KiB (within ipc_max_msg),
 * checks each echo byte for byte, and closes; both report failures with
 * ipc_last_error().  Prints one line per URI and exits non-zero if any failed.
 *
 * URI forms: "pair:URI" for ipc_pair drivers; "%d" in a URI is replaced by
 * a fresh directory, "%s" by a unique name.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/ipc.h"

static const char *const defaults[] = {
        "pair:pipe:",
        "pair:unix:",
        "fifo://%d/f",
        "unix://%d/s",
        "unix+seqpacket://%d/s",
        "unix+dgram://%d/s",
        "mq://%s",
        "sysvmq://%s",
        "sysvshm://%s",
        "shm://%s",
        NULL,
};

static const size_t sizes[] = {0, 1, 100, 4096, 65536, 262144};

static int
fail(const char *uri, const char *what, long long r)
{
	fprintf(stderr, "FAIL %s: %s: %lld (%s)\n", uri, what, r,
	        ipc_last_error());
	return 1;
}

static int
echo(ipc_channel *ch, const char *uri, unsigned char *buf, size_t cap)
{
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		ssize_t n = ipc_recv(ch, buf, cap, 0);
		if (n < 0) {
			return fail(uri, "echo recv", n);
		}
		ssize_t w = ipc_send(ch, buf, (size_t)n, 0);
		if (w != n) {
			return fail(uri, "echo send", w);
		}
	}
	return 0;
}

/* Send each size, expect it back byte for byte. */
static int
check(ipc_channel *ch, const char *uri, unsigned char *out, unsigned char *in,
      size_t cap)
{
	size_t max = ipc_max_msg(ch);

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t len = sizes[i] <= max ? sizes[i] : max;
		for (size_t j = 0; j < len; j++) {
			out[j] = (unsigned char)(j * 31 + i);
		}
		ssize_t r = ipc_send(ch, out, len, 0);
		if (r != (ssize_t)len) {
			return fail(uri, "send", r);
		}
		r = ipc_recv(ch, in, cap, 0);
		if (r != (ssize_t)len || memcmp(in, out, len) != 0) {
			return fail(uri, "echo", r);
		}
	}
	return 0;
}

static int
run(const char *tmpl, int k)
{
	char dir[64], name[64], uri[256];
	int pair = strncmp(tmpl, "pair:", 5) == 0;
	const char *t = pair ? tmpl + 5 : tmpl;
	size_t cap = 262144;
	unsigned char *out = malloc(cap), *in = malloc(cap);
	ipc_channel *a = NULL, *b = NULL;
	int bad = 0;

	snprintf(dir, sizeof dir, "/tmp/ipc-smoke-%d-XXXXXX", (int)getpid());
	if (mkdtemp(dir) == NULL || out == NULL || in == NULL) {
		perror("smoke");
		return 1;
	}
	snprintf(name, sizeof name, "smoke-%d-%d", (int)getpid(), k);
	const char *p = strstr(t, "%d") ? dir : name;
	const char *pct = strchr(t, '%');
	if (pct != NULL) {
		snprintf(uri, sizeof uri, "%.*s%s%s", (int)(pct - t), t, p,
		         pct + 2);
	} else {
		snprintf(uri, sizeof uri, "%s", t);
	}
	if (pair) {
		int r = ipc_pair(&a, &b, uri);
		if (r < 0) {
			bad = fail(uri, "ipc_pair", r);
			goto out;
		}
	} else {
		int r = ipc_open(&a, uri, IPC_CREATE);
		if (r < 0) {
			bad = fail(uri, "ipc_open creator", r);
			goto out;
		}
	}
	ipc_set_timeout(a, 20000);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(60);
		if (pair) {
			ipc_close(a);
		} else {
			int r = -ENOENT;
			for (int i = 0; i < 1000; i++) {
				r = ipc_open(&b, uri, 0);
				if (r == 0) {
					break;
				}
				usleep(10000);
			}
			if (r < 0) {
				_exit(fail(uri, "ipc_open peer", r));
			}
		}
		ipc_set_timeout(b, 20000);
		/* the opener speaks first (a datagram creator learns its
		 * peer from the first datagram) */
		int rc = check(b, uri, out, in, cap);
		ipc_close(b);
		_exit(rc);
	}
	if (pair) {
		ipc_close(b);
	}
	bad = echo(a, uri, in, cap);
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		bad = 1;
		fprintf(stderr, "FAIL %s: the peer process failed\n", uri);
	}
	ipc_close(a);
out:
	printf("%s %s\n", bad ? "FAIL" : "ok  ", tmpl);
	rmdir(dir);
	free(out);
	free(in);
	return bad;
}

int
main(int argc, char **argv)
{
	int bad = 0, k = 0;

	signal(SIGPIPE, SIG_DFL); /* the library must never raise it */
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			bad |= run(argv[i], k++);
		}
	} else {
		for (const char *const *u = defaults; *u; u++) {
			bad |= run(*u, k++);
		}
	}
	return bad;
}
