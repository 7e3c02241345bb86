/*
 * libFuzzer target: the ring reader (and writer) over shared memory that a
 * hostile peer scribbles on.  The input is a script: it may first fill the
 * data area, then interleaves writes of arbitrary bytes anywhere in the
 * region with consumer and producer operations.  The region is one exact
 * heap block, so ASan reports any access outside it; every payload the
 * ring hands out is read (consumer) or written (producer) in full.
 *
 * Script bytes: op = byte % 8
 *   0 poke: off16, n = 1..8, n bytes          (peer writes anywhere)
 *   1 acquire, read the payload, release
 *   2 reserve len16, fill it, commit len16 (<= reserved)
 *   3 readable / writable(len16)
 *   4 re-attach both sides from the current state
 *   5 wait (already expired deadline) on consumer or producer
 *   6 arm / disarm notify
 *   7 close one side
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ring.h"
#include "script.h"

#define RING_SIZE 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
nop_wait(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word,
         uint32_t val, const struct timespec *until)
{
	(void)ctx;
	(void)role;
	(void)word;
	(void)val;
	(void)until;
	return -ETIMEDOUT;
}

static void
nop_wake(void *ctx, enum ipc_ring_role role, _Atomic uint32_t *word)
{
	(void)ctx;
	(void)role;
	(void)word;
}

static void
nop_notify(void *ctx, enum ipc_ring_role role)
{
	(void)ctx;
	(void)role;
}

static const struct ipc_ring_ops ops = {
        .wait = nop_wait,
        .wake = nop_wake,
        .notify = nop_notify,
};

static volatile unsigned sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script s = {data, size};
	size_t bytes = ipc_ring_region_size(RING_SIZE);
	unsigned char *mem = aligned_alloc(IPC_RING_ALIGN, bytes);
	if (mem == NULL) {
		return 0;
	}
	memset(mem, 0, bytes);
	if (ipc_ring_format(mem, RING_SIZE) != 0) {
		abort();
	}
	struct ipc_ring p, c;
	int have_p = ipc_ring_attach(&p, mem, RING_SIZE, IPC_RING_PRODUCER,
	                             &ops, NULL) == 0;
	int have_c = ipc_ring_attach(&c, mem, RING_SIZE, IPC_RING_CONSUMER,
	                             &ops, NULL) == 0;
	/* Optionally start from a data area full of input bytes. */
	uint8_t first = 0;
	if (take(&s, &first, 1) && (first & 1)) {
		size_t n = s.n < RING_SIZE ? s.n : RING_SIZE;
		memcpy(mem + IPC_RING_HDR, s.p, n);
		s.p += n;
		s.n -= n;
	}
	struct timespec past = {0, 0};
	uint8_t op;
	while (take(&s, &op, 1)) {
		uint16_t a = 0, b = 0;
		switch (op % 8) {
		case 0:
			poke(&s, mem, bytes, bytes);
			break;
		case 1:
			if (have_c) {
				const void *buf;
				size_t len;
				if (ipc_ring_acquire(&c, &buf, &len) == 0) {
					const unsigned char *q = buf;
					unsigned sum = 0;
					for (size_t i = 0; i < len; i++) {
						sum += q[i];
					}
					sink = sum;
					ipc_ring_release(&c);
				}
			}
			break;
		case 2:
			if (have_p && take(&s, &a, 2) && take(&s, &b, 2)) {
				void *buf;
				if (ipc_ring_reserve(&p, a, &buf) == 0) {
					memset(buf, 0x5a, a);
					ipc_ring_commit(&p, b <= a ? b : a);
				}
			}
			break;
		case 3:
			if (take(&s, &a, 2)) {
				if (have_c) {
					sink = (unsigned)ipc_ring_readable(&c);
				}
				if (have_p) {
					sink = (unsigned)ipc_ring_writable(&p,
					                                   a);
				}
			}
			break;
		case 4:
			have_p = ipc_ring_attach(&p, mem, RING_SIZE,
			                         IPC_RING_PRODUCER, &ops,
			                         NULL) == 0;
			have_c = ipc_ring_attach(&c, mem, RING_SIZE,
			                         IPC_RING_CONSUMER, &ops,
			                         NULL) == 0;
			break;
		case 5:
			if (have_c) {
				ipc_ring_wait(&c, 0, 0, &past);
			}
			if (have_p && take(&s, &a, 2)) {
				ipc_ring_wait(&p, a, 0, &past);
			}
			break;
		case 6:
			if (have_c) {
				if (ipc_ring_arm_notify(&c, 0)) {
					ipc_ring_disarm_notify(&c);
				}
			}
			if (have_p && take(&s, &a, 2)) {
				if (!ipc_ring_arm_notify(&p, a)) {
					ipc_ring_disarm_notify(&p);
				}
			}
			break;
		case 7:
			if (take(&s, &a, 1)) {
				if ((a & 1) && have_p) {
					ipc_ring_close(&p);
				} else if (have_c) {
					ipc_ring_close(&c);
				}
			}
			break;
		}
	}
	free(mem);
	return 0;
}
