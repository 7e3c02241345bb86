/*
 * ipc-bench peer rows.  A peer whose library was not found at configure
 * time still has a row, which says why it was skipped.
 *
 * SPDX-License-Identifier: MIT
 */
#include "bench.h"
#include "bench_config.h"
#include "bench_peers.h"
#include "bench_pubsub.h"

/* The installed ipc-bench links no peer library. */
#ifdef BENCH_NO_PEERS
#undef BENCH_HAVE_ICEORYX
#undef BENCH_HAVE_ZMQ
#undef BENCH_HAVE_NNG
#define BENCH_NO_PEERS_WHY                                                    \
	"not in the installed ipc-bench, which links no peer library: "       \
	"run `make bench` in libipc's source tree"
#undef BENCH_ICEORYX_WHY
#undef BENCH_ZMQ_WHY
#undef BENCH_NNG_WHY
#define BENCH_ICEORYX_WHY BENCH_NO_PEERS_WHY
#define BENCH_ZMQ_WHY     BENCH_NO_PEERS_WHY
#define BENCH_NNG_WHY     BENCH_NO_PEERS_WHY
#endif

#define ZMQ_NOTES "ZeroMQ ipc:// ZMQ_PAIR, zmq_send/zmq_recv"
#define NNG_NOTES "nng ipc:// pair1, nng_send/nng_recv"
#define IOX_NOTES                                                             \
	"iceoryx C binding, loan/publish + take/release (zero-copy), "        \
	"waitset, queue 64, the publisher waits for a full queue, payload "   \
	"untouched unless --touch; RouDi started by "                         \
	"ipc-bench"

const struct bench_row bench_peer_rows[] = {
#if BENCH_HAVE_ICEORYX
        {"iceoryx", "peer", IOX_NOTES, &bench_iceoryx_ops, NULL,
         BENCH_ZEROCOPY, NULL},
#else
        {"iceoryx", "peer", IOX_NOTES, NULL, NULL, 0, BENCH_ICEORYX_WHY},
#endif
#if BENCH_HAVE_ZMQ
        {"zmq-ipc", "peer", ZMQ_NOTES, &bench_zmq_ops, NULL, 0, NULL},
#else
        {"zmq-ipc", "peer", ZMQ_NOTES, NULL, NULL, 0, BENCH_ZMQ_WHY},
#endif
#if BENCH_HAVE_NNG
        {"nng-ipc", "peer", NNG_NOTES, &bench_nng_ops, NULL, 0, NULL},
#else
        {"nng-ipc", "peer", NNG_NOTES, NULL, NULL, 0, BENCH_NNG_WHY},
#endif
        {NULL, NULL, NULL, NULL, NULL, 0, NULL},
};

#define ZMQ_PS_NOTES                                                          \
	"ZeroMQ ipc:// PUB/SUB, zmq_send/zmq_msg_recv, ZMQ_XPUB_NODROP (the " \
	"publisher waits for a full pipe: lossless), HWM 16 MiB of messages"
#define NNG_PS_NOTES                                                          \
	"nng ipc:// pub0/sub0, nng_send/nng_recvmsg, SENDBUF/RECVBUF 16 MiB " \
	"of messages (<= 8192); pub0 drops for a full subscriber: delivered " \
	"counts"
#define IOX_PS_NOTES                                                          \
	"iceoryx C binding, loan/publish + take/release, subscriber queue "   \
	"16, "                                                                \
	"the publisher waits for a full queue; RouDi started by ipc-bench"

const struct bench_ps_row bench_ps_peer_rows[] = {
#if BENCH_HAVE_ZMQ
        {"zmq-ipc", ZMQ_PS_NOTES, &bench_zmq_ps_ops, NULL},
#else
        {"zmq-ipc", ZMQ_PS_NOTES, NULL, BENCH_ZMQ_WHY},
#endif
#if BENCH_HAVE_NNG
        {"nng-ipc", NNG_PS_NOTES, &bench_nng_ps_ops, NULL},
#else
        {"nng-ipc", NNG_PS_NOTES, NULL, BENCH_NNG_WHY},
#endif
#if BENCH_HAVE_ICEORYX
        {"iceoryx", IOX_PS_NOTES, &bench_iceoryx_ps_ops, NULL},
#else
        {"iceoryx", IOX_PS_NOTES, NULL, BENCH_ICEORYX_WHY},
#endif
        {NULL, NULL, NULL, NULL},
};
