/*
 * Fuzz target: the sysvshm:// segment as a hostile creator leaves it.  A
 * real creator makes the channel (a small ring); the harness attaches the
 * segment (found on the key derived from the name, backends/sysv_sem.h)
 * and patches bytes of its header page and rings with the input; then an
 * opener attaches and must refuse a bad header with an error.  Patches
 * after the open (separated by a patch whose offset hi byte is 0xff)
 * scribble on the live segment between receives and sends on both sides.
 *
 * Input: byte 0: ring size (4096 << (bits 0-1)); then 3-byte patches
 * {offset hi, offset lo, value} (the offset scaled over the segment:
 * bit 2 of byte 0 confines them to the header page and ring headers).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <unistd.h>

#include "backends/sysv_sem.h"
#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names its line (and the library's last error). */
#define FAIL()                                                                \
	do {                                                                  \
		fprintf(stderr, "%s:%d: check failed (last error: %s)\n",     \
		        __FILE__, __LINE__, ipc_last_error());                \
		abort();                                                      \
	} while (0)

static unsigned counter;

static void
expect(ssize_t n, size_t cap)
{
	if (n > (ssize_t)cap || n < -4095) {
		FAIL();
	}
}

/* Apply patches until a separator; the header page and the two ring
 * headers (at 4096 and after the first ring) are the likely targets. */
static const uint8_t *
patch(unsigned char *m, size_t len, size_t ring, int headers, const uint8_t *p,
      const uint8_t *end)
{
	while (end - p >= 3 && p[0] != 0xff) {
		size_t v = (size_t)p[0] << 8 | p[1];
		size_t off;
		if (headers) {
			/* header page, or the first 512 bytes of a ring */
			size_t which = v >> 14;
			size_t at = v & 0x3fff;
			off = which == 0   ? at % 4096
			      : which == 1 ? 4096 + at % 512
			                   : 4096 +
			                             ((4096 + ring + 4095) &
			                              ~(size_t)4095) +
			                             at % 512;
		} else {
			off = v * 31;
		}
		if (off < len) {
			m[off] = p[2];
		}
		p += 3;
	}
	return end - p >= 3 ? p + 3 : end;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char buf[1 << 16];
	char name[64], uri[128];
	ipc_channel *c, *o;
	struct shmid_ds ds;
	int id = -1;

	if (size < 1 || size > 3000) {
		return 0;
	}
	size_t ring = (size_t)4096 << (data[0] & 3);
	int headers = (data[0] & 4) != 0;
	snprintf(name, sizeof(name), "fuzz-%d-%u", (int)getpid(), counter++);
	snprintf(uri, sizeof(uri), "sysvshm://%s?size=%zu", name, ring);
	if (ipc_open(&c, uri, IPC_CREATE | IPC_NONBLOCK) != 0) {
		return 0;
	}
	for (unsigned i = 0; i < SV_PROBES && id < 0; i++) {
		id = shmget(sv_key("sysvshm", name, i), 0, 0);
	}
	if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0) {
		FAIL();
	}
	unsigned char *m = shmat(id, NULL, 0);
	if (m == (void *)-1) {
		FAIL();
	}
	const uint8_t *p = data + 1, *end = data + size;
	int honest = end - p < 3 || p[0] == 0xff;
	p = patch(m, ds.shm_segsz, ring, headers, p, end);
	snprintf(uri, sizeof(uri), "sysvshm://%s", name);
	int r = ipc_open(&o, uri, IPC_NONBLOCK);
	expect(r, 0);
	if (honest && r != 0) {
		FAIL(); /* an untouched segment must be taken */
	}
	if (r != 0) {
		o = NULL;
	}
	while (p < end) {
		p = patch(m, ds.shm_segsz, ring, headers, p, end);
		expect(ipc_send(c, buf, (size_t)(p - data) * 3, IPC_NONBLOCK),
		       (size_t)(p - data) * 3);
		expect(ipc_recv(c, buf, sizeof(buf), IPC_NONBLOCK),
		       sizeof(buf));
		if (o != NULL) {
			expect(ipc_recv(o, buf, sizeof(buf), IPC_NONBLOCK),
			       sizeof(buf));
			expect(ipc_send(o, buf, 100, IPC_NONBLOCK), 100);
		}
	}
	shmdt(m);
	if (o != NULL) {
		ipc_close(o);
	}
	ipc_close(c);
	return 0;
}
