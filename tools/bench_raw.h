/*
 * ipc-bench raw rows, shared between the files that write them
 * (bench_raw.c: streams and signals and the table; bench_raw_ring.c:
 * shared-memory rings; bench_raw_msg.c: message queues and datagrams).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_BENCH_RAW_H
#define IPC_BENCH_RAW_H

#include "bench.h"

/* How the ring rows wait: never (busy), on a futex, on a System V
 * semaphore (in a System V segment). */
enum raw_ring_kind { RAW_RING_BUSY, RAW_RING_FUTEX, RAW_RING_SYSV };
extern const struct bench_ops bench_raw_ring_ops; /* arg: raw_ring_kind */

enum raw_msg_kind {
	RAW_MQ,
	RAW_SYSVMQ,
	RAW_DGRAM,
	RAW_SEQPACKET,
	RAW_UDP,
};
extern const struct bench_ops bench_raw_msg_ops; /* arg: raw_msg_kind */

#endif /* IPC_BENCH_RAW_H */
