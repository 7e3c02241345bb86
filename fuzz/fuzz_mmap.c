/*
 * Fuzz target: the mmap:// file as a hostile or damaged disk leaves it.
 * A real pair of sides makes a channel file once (a 4 KiB ring each way,
 * two messages left in it); each input patches a copy of that file, may
 * cut it short, and opens one side or both on it: a bad header must be
 * refused with an error, a damaged ring must never hand out a length
 * beyond the buffer, and nothing may crash.
 *
 * Input: byte 0: bit 0-1 which sides open (a, b, both), bit 2 cut the
 * file, bit 3 confine patches to the header and ring headers; bytes 1-2:
 * where to cut (scaled over the file); then 3-byte patches {offset hi,
 * offset lo, value}.
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

static char dir[64];
static char path[128];
static unsigned char *tmpl;
static size_t tmpl_len;

static void
expect(ssize_t n, size_t cap)
{
	if (n > (ssize_t)cap || n < -4095) {
		FAIL();
	}
}

static void
remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

/* The template: a channel both sides opened, with "one" received and
 * "two" still queued a -> b, and "back" queued b -> a. */
static void
make_template(void)
{
	char uri[192];
	ipc_channel *a, *b;
	char buf[16];
	struct stat st;

	snprintf(dir, sizeof(dir), "/tmp/fuzz-mmap-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		FAIL();
	}
	snprintf(path, sizeof(path), "%s/ring", dir);
	atexit(remove_dir);
	snprintf(uri, sizeof(uri), "mmap://%s?size=4096", path);
	if (ipc_open(&a, uri, IPC_CREATE) != 0 || ipc_open(&b, uri, 0) != 0) {
		FAIL();
	}
	if (ipc_send(a, "one", 3, 0) != 3 || ipc_send(a, "two", 3, 0) != 3 ||
	    ipc_send(b, "back", 4, 0) != 4 || ipc_recv(b, buf, 16, 0) != 3) {
		FAIL();
	}
	ipc_close(b);
	ipc_close(a);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
		FAIL();
	}
	tmpl_len = (size_t)st.st_size;
	tmpl = malloc(tmpl_len);
	if (tmpl == NULL ||
	    pread(fd, tmpl, tmpl_len, 0) != (ssize_t)tmpl_len) {
		FAIL();
	}
	close(fd);
}

/* The header page holds the file header; each ring starts with its
 * indexes.  Confined patches hit the first 256 bytes of either. */
static size_t
where(size_t v, int headers)
{
	if (!headers) {
		return v * 37 % tmpl_len;
	}
	size_t stride = (tmpl_len - 4096) / 2;
	switch (v >> 14) {
	case 0:
	case 1:
		return v % 4096;
	case 2:
		return 4096 + v % 256;
	default:
		return 4096 + stride + v % 256;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char buf[8192];
	char uri[192];
	ipc_channel *side[2] = {NULL, NULL};

	if (size < 3 || size > 3000) {
		return 0;
	}
	if (tmpl == NULL) {
		make_template();
	}
	unsigned char *m = malloc(tmpl_len);
	if (m == NULL) {
		FAIL();
	}
	memcpy(m, tmpl, tmpl_len);
	int headers = (data[0] & 8) != 0;
	for (size_t i = 3; i + 3 <= size; i += 3) {
		m[where((size_t)data[i] << 8 | data[i + 1], headers)] =
		        data[i + 2];
	}
	size_t len = tmpl_len;
	if (data[0] & 4) {
		len = ((size_t)data[1] << 8 | data[2]) * tmpl_len / 65536;
	}
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, m, len) != (ssize_t)len) {
		FAIL();
	}
	close(fd);
	free(m);

	int which = data[0] & 3;
	snprintf(uri, sizeof(uri), "mmap://%s", path);
	if (which != 1) {
		if (ipc_open(&side[1], uri, IPC_NONBLOCK) != 0) {
			side[1] = NULL;
		}
	}
	if (which != 0) {
		if (ipc_open(&side[0], uri, IPC_CREATE | IPC_NONBLOCK) != 0) {
			side[0] = NULL;
		}
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
		for (int i = 0; i < 4; i++) {
			expect(ipc_recv(side[k], buf, sizeof(buf),
			                IPC_NONBLOCK),
			       sizeof(buf));
		}
		const void *p;
		size_t n;
		if (ipc_acquire(side[k], &p, &n, IPC_NONBLOCK) == 0) {
			if (n > 4096) {
				FAIL();
			}
			memcpy(buf, p, n); /* ASan: the whole of it is ours */
			ipc_release(side[k]);
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
