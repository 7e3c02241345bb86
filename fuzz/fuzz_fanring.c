/*
 * libFuzzer target: the fan-out ring (src/core/fanring.c) over shared
 * memory that hostile subscribers (or a hostile publisher) scribble on.
 * The input is a script interleaving writes of arbitrary bytes anywhere in
 * the region with publisher and subscriber operations.  The region is one
 * exact heap block, so ASan reports any access outside it; every payload a
 * subscriber is handed is read in full, every reserved slot written in
 * full.  A publisher that finds a subscriber's entry out of range evicts
 * it, as the driver does.
 *
 * Script bytes: op = byte % 8
 *   0 poke: off16, n = 1..8, n bytes        (a peer writes anywhere)
 *   1 subscriber k (next byte & 3): acquire, read, release
 *   2 publish len16 (reserve, fill, commit)
 *   3 readable / writable
 *   4 admit a subscriber into view k, or evict entry k
 *   5 waits with an expired deadline
 *   6 arm notify (publisher and subscriber k); disarm
 *   7 close the publisher
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fanring.h"
#include "script.h"

#define NSLOTS 8u
#define SLOT   512u
#define SUBS   4u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
nop_notify(void *ctx, long who)
{
	(void)ctx;
	(void)who;
}

static const struct ipc_fan_ops ops = {.notify = nop_notify};

static volatile unsigned sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script s = {data, size};
	struct ipc_fan_geom g;
	if (ipc_fan_geometry(NSLOTS, SLOT, SUBS, &g) != 0) {
		abort();
	}
	unsigned char *mem = aligned_alloc(IPC_FAN_LINE, g.region);
	if (mem == NULL) {
		return 0;
	}
	memset(mem, 0, g.region);
	ipc_fan_format(mem, &g);
	uint8_t mode = 0;
	take(&s, &mode, 1);
	struct ipc_fan_pub p;
	if (ipc_fan_pub_init(&p, mem, &g, (mode >> 1) % NSLOTS, &ops, NULL) !=
	    0) {
		abort();
	}
	struct ipc_fan_sub sub[SUBS];
	int have[SUBS] = {0};
	struct timespec past = {0, 0};
	uint8_t op;
	while (take(&s, &op, 1)) {
		uint16_t a = 0;
		uint8_t k = 0;
		long bad = -1;
		switch (op % 8) {
		case 0:
			/* Mostly the header and entries, sometimes slots. */
			poke(&s, mem, (op & 0x80) ? g.region : g.slots_off,
			     g.region);
			break;
		case 1:
			if (take(&s, &k, 1) && have[k % SUBS]) {
				const void *buf;
				size_t len;
				struct ipc_fan_sub *v = &sub[k % SUBS];
				if (ipc_fan_acquire(v, &buf, &len) == 0) {
					const unsigned char *q = buf;
					unsigned sum = 0;
					for (size_t i = 0; i < len; i++) {
						sum += q[i];
					}
					sink = sum;
					if (k & 0x80) {
						ipc_fan_unacquire(v);
					} else {
						ipc_fan_release(v);
					}
				}
			}
			break;
		case 2:
			if (take(&s, &a, 2)) {
				void *buf;
				int r = ipc_fan_reserve(&p, a % (SLOT + 8),
				                        &buf, &bad);
				if (r == -EPROTO) {
					ipc_fan_evict(&p, bad);
				} else if (r == 0) {
					memset(buf, 0x5a, a % (SLOT + 8));
					ipc_fan_commit(&p, a % (SLOT + 8));
				}
			}
			break;
		case 3:
			sink = (unsigned)ipc_fan_writable(&p, &bad);
			for (unsigned i = 0; i < SUBS; i++) {
				if (have[i]) {
					sink += (unsigned)ipc_fan_readable(
					        &sub[i]);
				}
			}
			break;
		case 4:
			if (!take(&s, &k, 1)) {
				break;
			}
			if (k & 0x80) {
				ipc_fan_evict(&p, k % SUBS);
			} else {
				long i = ipc_fan_admit(&p, (k >> 6) & 1,
				                       (uint64_t)(k & 15));
				if (i >= 0) {
					have[k % SUBS] =
					        ipc_fan_sub_init(
					                &sub[k % SUBS], mem,
					                &g, (uint64_t)i,
					                (k >> 6) & 1, &ops,
					                NULL) == 0;
				}
			}
			break;
		case 5:
			ipc_fan_pub_wait(&p, 0, &past);
			if (take(&s, &k, 1) && have[k % SUBS]) {
				ipc_fan_sub_wait(&sub[k % SUBS], 0, &past);
			}
			break;
		case 6:
			if (!ipc_fan_pub_arm(&p, &bad)) {
				ipc_fan_pub_disarm(&p);
			}
			if (take(&s, &k, 1) && have[k % SUBS]) {
				sink = (unsigned)ipc_fan_sub_arm(
				        &sub[k % SUBS]);
			}
			break;
		case 7:
			ipc_fan_pub_close(&p);
			break;
		}
	}
	ipc_fan_pub_free(&p);
	free(mem);
	return 0;
}
