/*
 * ipc-bench internals: the transport interface every row implements, and
 * the harness that runs a row between two pinned processes.
 *
 * A row is one transport measured one way (libipc over a URI, the same
 * mechanism written by hand, or another messaging library).  The harness
 * forks two processes for it: A (the server, which creates the endpoint,
 * drives the measurements and reports) and B (the client, which echoes and
 * counts).  A and B talk through the transport under test for the
 * measurements, and through two plain pipes for commands and results, so
 * the transport never carries anything the measurement does not count.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_BENCH_H
#define IPC_BENCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Message sizes of the throughput columns. */
/* The message sizes of the throughput columns: 64 B, 64 KiB and 1 MiB
 * unless --sizes chose others (at most BENCH_MAXSIZES, each at most
 * BENCH_MAXSIZE bytes). */
#define BENCH_MAXSIZES 8
#define BENCH_MAXSIZE  (64u * 1024 * 1024)
extern size_t bench_sizes[BENCH_MAXSIZES];
extern int bench_nsizes;
/* The largest message a row sends: the largest of bench_sizes, at least
 * 1 KiB. */
size_t bench_max_size(void);
/* Size of the ping-pong messages. */
#define BENCH_PING_SIZE 64

/* Room for a reason or an error. */
#define BENCH_WHY 256

/* What the harness knows of the row being run.  The orchestrator fills it
 * before forking, prepare() may add to it, and both children inherit it. */
struct bench_env {
	char dir[64];   /* private directory for sockets and FIFOs */
	char token[32]; /* unique name: "ipcbench-PID-ROW" */
	unsigned port;  /* a free loopback TCP/UDP port */
	int cpu[2];     /* CPUs for A and B; -1: not pinned */
	void *state;    /* whatever prepare() made (shared mappings, pairs) */
	pid_t pid[2];   /* A and B, for cleanup() (0: not started) */
};

/* Return values of prepare() and open(). */
#define BENCH_OK   0
#define BENCH_SKIP 1 /* not available here: why says so */
#define BENCH_FAIL 2 /* a real failure: why says what */

/*
 * One transport.  All blocking: send and recv wait until done.  Errors are
 * negative errno values; errstr() (optional) adds the detail.
 */
struct bench_ops {
	/* Orchestrator, before fork (optional).  BENCH_OK, _SKIP or _FAIL
	 * with a reason in why. */
	int (*prepare)(struct bench_env *e, const void *arg, char *why);
	/* In A (server = 1) or B (server = 0), pinned, after fork.  B
	 * retries itself until A's endpoint exists (a few seconds). */
	int (*open)(struct bench_env *e, const void *arg, int server,
	            void **ep, char *why);
	ssize_t (*send)(void *ep, const void *buf, size_t len);
	ssize_t (*recv)(void *ep, void *buf, size_t cap);
	/* Zero-copy (rows flagged BENCH_ZEROCOPY use these instead). */
	int (*reserve)(void *ep, size_t len, void **buf);
	int (*commit)(void *ep, size_t len);
	int (*acquire)(void *ep, const void **buf, size_t *len);
	int (*release)(void *ep);
	/* Receive timeout for lossy rows; -1 forever (optional). */
	int (*set_timeout)(void *ep, int ms);
	/* Largest message the endpoint carries. */
	size_t (*max_msg)(void *ep);
	/* Detail on the last error of this process (optional). */
	const char *(*errstr)(void *ep);
	void (*close)(void *ep, int server);
	/* Orchestrator, after both children ended, even after a failure:
	 * remove whatever prepare() or the children may have left. */
	void (*cleanup)(struct bench_env *e, const void *arg);
};

/* Row flags. */
#define BENCH_LOSSY    0x1 /* may drop: throughput counts what arrived */
#define BENCH_ZEROCOPY 0x2 /* measure with reserve/commit/acquire/release */
#define BENCH_THREADS  0x4 /* A and B are threads of one process */
#define BENCH_ROUDI    0x8 /* needs the iceoryx daemon running */
#define BENCH_SLOW                                                            \
	0x10 /* a message costs milliseconds (a disk sync):                   \
	      * 1/50 of the plan's pings */

struct bench_row {
	const char *name;  /* "unix", "raw-unix", "zmq-ipc" */
	const char *group; /* "libipc", "raw", "peer" */
	const char *notes; /* what the row is, for the notes column */
	const struct bench_ops *ops; /* NULL: not built, see skip */
	const void *arg;
	unsigned flags;
	const char *skip; /* why the row is not built, when ops is NULL */
};

/* Tables each part contributes (bench_libipc.c, bench_raw.c, peers). */
extern const struct bench_row bench_libipc_rows[];
extern const struct bench_row bench_raw_rows[];
extern const struct bench_row bench_peer_rows[];

/* Run lengths. */
struct bench_plan {
	unsigned pings;       /* measured round trips */
	unsigned ping_warmup; /* round trips before measuring */
	double stream_s;      /* seconds per measured stream */
	double warm_s;        /* seconds of the warm-up stream */
	unsigned reps;        /* measured streams per size (median) */
	unsigned row_timeout; /* seconds before a row is killed */
	unsigned rounds;      /* passes over all rows (median of them) */
	int touch;            /* write and read every payload byte */
};

/* What one row measured. */
enum bench_cell { BENCH_CELL_NONE, BENCH_CELL_OK, BENCH_CELL_NA };

struct bench_result {
	int status;            /* BENCH_OK, BENCH_SKIP, BENCH_FAIL */
	char why[BENCH_WHY];   /* reason for SKIP or FAIL */
	double p50_ns, p99_ns; /* one-way latency (round trip / 2) */
	enum bench_cell cell[BENCH_MAXSIZES];
	double msgs_s[BENCH_MAXSIZES];   /* median of reps */
	double received[BENCH_MAXSIZES]; /* lossy rows: fraction received */
	size_t max_msg;
};

/* Set by the orchestrator's SIGINT/SIGTERM handler: the running row is
 * stopped and cleaned up, and no other row starts. */
extern volatile sig_atomic_t bench_interrupted;

/* Run one row between two pinned processes (or threads).  Never exits,
 * always cleans up; the outcome is in *res. */
void bench_run_row(const struct bench_row *row, int index,
                   const struct bench_plan *plan, const char *tmpdir,
                   struct bench_result *res);

/* A loopback port free for both TCP and UDP right now (0 if none). */
unsigned bench_free_port(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);
/* Pin the calling thread to cpu (>= 0).  Returns 0 or -errno. */
int bench_pin(int cpu);
/* The CPUs A and B are pinned to: the first two this process may use
 * (-1 when unknown; the same one twice on one CPU). */
void bench_pick_cpus(int cpu[2]);
/* Sleep for ms milliseconds. */
void bench_sleep_ms(unsigned ms);
/* Spin-wait hint for busy loops. */
static inline void
bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Write all of buf to a blocking descriptor; read exactly len bytes.
 * Return 0 or -errno (-EPIPE at end of file for bench_read_full). */
int bench_write_full(int fd, const void *buf, size_t len);
int bench_read_full(int fd, void *buf, size_t len);

/* snprintf into why, then return code: `return bench_why(why, BENCH_FAIL,
 * "...")`. */
int bench_why(char *why, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif /* IPC_BENCH_H */
