/* ipc-bench peers: other messaging libraries, each built only when its
 * development package was found (meson features bench_zmq, bench_nng,
 * bench_iceoryx).  SPDX-License-Identifier: MIT */
#ifndef IPC_BENCH_PEERS_H
#define IPC_BENCH_PEERS_H

#include "bench.h"

extern const struct bench_ops bench_zmq_ops;
extern const struct bench_ops bench_nng_ops;
extern const struct bench_ops bench_iceoryx_ops;

#endif
