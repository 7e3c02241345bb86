/*
 * Fuzz target: the file:// logs and position files as a hostile or
 * damaged disk leaves them.  A real pair of sides makes a channel once
 * (two records each way, one of them read); each input patches copies of
 * those files, may cut the a -> b log short and append raw bytes to it,
 * then opens a side or both: nothing may crash, no length may pass the
 * buffer, and the channel must still take a send.
 *
 * Input: byte 0: bit 0-1 which sides open (a, b, both), bit 2 cut the
 * log, bit 3 patches go to the reader's position file instead of the
 * log; byte 1: where to cut (scaled over the log); byte 2: how many
 * patches (the rest of the input after them is appended to the log);
 * then 3-byte patches {offset hi, offset lo, value}.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL()                                                                \
	do {                                                                  \
		fprintf(stderr, "%s:%d: check failed (last error: %s)\n",     \
		        __FILE__, __LINE__, ipc_last_error());                \
		abort();                                                      \
	} while (0)

#define MAXMSG 4096

/* The channel's files, in the order they are kept. */
static const char *const files[] = {"log.a2b.0", "log.b2a.0", "log.a2b.pos",
                                    "log.b2a.pos"};
enum { NFILES = 4 };
static char dir[64];
static unsigned char *tmpl[NFILES];
static size_t tmpl_len[NFILES];

static void
expect(ssize_t n, size_t cap)
{
	if (n > (ssize_t)cap || n < -4095) {
		FAIL();
	}
}

static void
file_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void
remove_dir(void)
{
	char p[128];

	for (int i = 0; i < NFILES; i++) {
		file_path(p, sizeof(p), files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static unsigned char *
slurp(const char *name, size_t *len)
{
	char p[128];
	struct stat st;

	file_path(p, sizeof(p), name);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		FAIL();
	}
	*len = (size_t)st.st_size;
	unsigned char *m = malloc(*len + 1);
	if (m == NULL || pread(fd, m, *len, 0) != (ssize_t)*len) {
		FAIL();
	}
	close(fd);
	return m;
}

static void
make_template(void)
{
	char uri[192];
	ipc_channel *a, *b;
	char buf[16];

	snprintf(dir, sizeof(dir), "/tmp/fuzz-file-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		FAIL();
	}
	atexit(remove_dir);
	snprintf(uri, sizeof(uri), "file://%s/log?maxmsg=%d", dir, MAXMSG);
	if (ipc_open(&a, uri, IPC_CREATE) != 0 || ipc_open(&b, uri, 0) != 0) {
		FAIL();
	}
	if (ipc_send(a, "one", 3, 0) != 3 || ipc_send(a, "two", 3, 0) != 3 ||
	    ipc_send(b, "back", 4, 0) != 4 || ipc_send(b, "more", 4, 0) != 4 ||
	    ipc_recv(b, buf, 16, 0) != 3 || ipc_recv(a, buf, 16, 0) != 4) {
		FAIL();
	}
	ipc_close(b);
	ipc_close(a);
	for (int i = 0; i < NFILES; i++) {
		tmpl[i] = slurp(files[i], &tmpl_len[i]);
	}
}

static void
put(const char *name, const unsigned char *m, size_t len, const uint8_t *tail,
    size_t tail_len)
{
	char p[128];

	file_path(p, sizeof(p), name);
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, m, len) != (ssize_t)len ||
	    (tail_len > 0 && write(fd, tail, tail_len) != (ssize_t)tail_len)) {
		FAIL();
	}
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char buf[MAXMSG + 64];
	char uri[192];
	ipc_channel *side[2] = {NULL, NULL};

	if (size < 3 || size > 3000) {
		return 0;
	}
	if (tmpl[0] == NULL) {
		make_template();
	}
	int t = data[0] & 8 ? 2 : 0; /* the a2b log, or b's position in it */
	unsigned char *m = malloc(tmpl_len[t] + 1);
	if (m == NULL) {
		FAIL();
	}
	memcpy(m, tmpl[t], tmpl_len[t]);
	size_t npatch = data[2], i = 3;
	for (; npatch > 0 && i + 3 <= size; npatch--, i += 3) {
		size_t off = (size_t)data[i] << 8 | data[i + 1];
		if (tmpl_len[t] > 0) {
			m[off % tmpl_len[t]] = data[i + 2];
		}
	}
	size_t len = tmpl_len[t];
	if (data[0] & 4) {
		len = (size_t)data[1] * len / 256;
	}
	for (int k = 0; k < NFILES; k++) {
		if (k == t) {
			put(files[k], m, len, t == 0 ? data + i : NULL,
			    t == 0 ? size - i : 0);
		} else {
			put(files[k], tmpl[k], tmpl_len[k], NULL, 0);
		}
	}
	free(m);

	int which = data[0] & 3;
	snprintf(uri, sizeof(uri), "file://%s/log?maxmsg=%d", dir, MAXMSG);
	if (which != 1 && ipc_open(&side[1], uri, IPC_NONBLOCK) != 0) {
		side[1] = NULL;
	}
	if (which != 0 &&
	    ipc_open(&side[0], uri, IPC_CREATE | IPC_NONBLOCK) != 0) {
		side[0] = NULL;
	}
	/* An untouched file must be taken, and b gets what a left it. */
	if (size == 3 && (data[0] & 7) == 0) {
		if (side[1] == NULL ||
		    ipc_recv(side[1], buf, sizeof(buf), IPC_NONBLOCK) != 3 ||
		    memcmp(buf, "two", 3) != 0) {
			FAIL();
		}
	}
	for (int k = 0; k < 2; k++) {
		if (side[k] == NULL) {
			continue;
		}
		for (int n = 0; n < 6; n++) {
			ssize_t r = ipc_recv(side[k], buf, sizeof(buf),
			                     IPC_NONBLOCK);
			expect(r, MAXMSG);
		}
		expect(ipc_send(side[k], "x", 1, IPC_NONBLOCK), 1);
	}
	for (int k = 0; k < 2; k++) {
		if (side[k] != NULL) {
			ipc_close(side[k]);
		}
	}
	return 0;
}
