/*
 * Helpers shared by libipc's tests: unique names and ports, descriptor and
 * OS object accounting, child processes with time limits, peer-death
 * timing, and an isolated runner that executes one test in its own process
 * group and checks that it left nothing behind.
 *
 * Checks in child processes and threads.  cmocka's assertions longjmp back
 * into cmocka's runner, which is wrong in a forked child (it would go on to
 * run the next tests there) and in any thread but the main one.  The TU_*
 * check macros below print "FAIL file:line: ..." with this thread's
 * ipc_last_error() and end the whole process with exit status 1 instead, so
 * a parent that waits for the process sees the failure.  Use them in code
 * that runs under tu_fork() or tu_run_isolated(); use cmocka's assertions
 * in the cmocka process itself.
 *
 * OS objects.  tu_objs_snapshot() lists what a test could leave behind:
 * entries under its own temporary directory (socket files, FIFOs, files),
 * /dev/shm entries and POSIX message queues whose name contains the test's
 * token, abstract Unix socket names containing it, and every System V
 * shared memory segment, message queue and semaphore set of this uid.
 * POSIX message queues are listed through a mounted mqueue file system:
 * /dev/mqueue or any other mount of type mqueue, or the private one that
 * tu_isolate_ipc() mounts.  Without one they cannot be enumerated, and
 * tu_mq_dir() returns NULL (the tests then say so once and rely on the
 * descriptor count).  System V ids carry no name; tu_isolate_ipc() moves
 * the test program into a private IPC namespace when it may (root), so the
 * ids it sees are exactly its own.  Otherwise a new id counts as a leak
 * only when the processes a test started are the ones that used it
 * (creator pid, last sender or receiver pid, last semaphore operation);
 * see tu_objs_diff().
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_TESTS_TESTUTIL_H
#define IPC_TESTS_TESTUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "ipc/ipc.h"

/* ------------------------------------------------------------- checks -- */

#define TU_EXIT_FAIL 1
#define TU_EXIT_SKIP 77 /* the automake/meson convention for "skipped" */

/* Print "FAIL file:line: message (last error: ...)" and _exit(1). */
void tu_fail(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4), noreturn));
/* Print "SKIP: reason" and _exit(77).  For isolated tests and children. */
void tu_skip(const char *fmt, ...)
        __attribute__((format(printf, 1, 2), noreturn));

#define TU_CHECK(cond)                                                        \
	do {                                                                  \
		if (!(cond)) {                                                \
			tu_fail(__FILE__, __LINE__, "%s", #cond);             \
		}                                                             \
	} while (0)

#define TU_CHECK_MSG(cond, ...)                                               \
	do {                                                                  \
		if (!(cond)) {                                                \
			tu_fail(__FILE__, __LINE__, __VA_ARGS__);             \
		}                                                             \
	} while (0)

/* a == b as integers; prints both values. */
#define TU_CHECK_EQ(a, b)                                                     \
	do {                                                                  \
		long long tu_a_ = (long long)(a), tu_b_ = (long long)(b);     \
		if (tu_a_ != tu_b_) {                                         \
			tu_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", \
			        #a, #b, tu_a_, tu_b_);                        \
		}                                                             \
	} while (0)

/* expr returns a count or a negative errno; it must not fail.  Evaluates
 * to the value. */
#define TU_OK(expr)                                                           \
	({                                                                    \
		long long tu_r_ = (long long)(expr);                          \
		if (tu_r_ < 0) {                                              \
			tu_fail(__FILE__, __LINE__, "%s: %s (%lld)", #expr,   \
			        tu_errname((int)tu_r_), tu_r_);               \
		}                                                             \
		tu_r_;                                                        \
	})

/* expr must return exactly the negative errno want. */
#define TU_ERR(expr, want)                                                    \
	do {                                                                  \
		long long tu_r_ = (long long)(expr);                          \
		if (tu_r_ != (long long)(want)) {                             \
			tu_fail(__FILE__, __LINE__,                           \
			        "%s: got %s (%lld), want %s", #expr,          \
			        tu_errname((int)tu_r_), tu_r_,                \
			        tu_errname((int)(want)));                     \
		}                                                             \
	} while (0)

/* "EAGAIN" for -EAGAIN, "ok" for values >= 0, "E?" + number otherwise. */
const char *tu_errname(int err);

/* ------------------------------------------------------ names, places -- */

/* "<prefix>-<pid>-<counter>", valid as a libipc NAME.  Returns buf. */
char *tu_unique(char *buf, size_t n, const char *prefix);
/* Make a fresh private directory /tmp/<prefix>-<pid>-XXXXXX (short, so
 * that Unix socket paths fit).  Returns 0 or -errno. */
int tu_tmpdir(char *buf, size_t n, const char *prefix);
/* Remove dir and everything below it.  Returns how many entries there
 * were below it (0: it was empty), or -errno. */
int tu_rmtree(const char *dir);
/* A URI template filled in: every %s becomes name, every %d dir (either
 * may be NULL when the template has none).  Returns out. */
char *tu_expand(char *out, size_t n, const char *tmpl, const char *name,
                const char *dir);
/* A port on host ("127.0.0.1", "::1") that is free for both TCP and UDP.
 * Chosen below the kernel's ephemeral range (ip_local_port_range), from
 * the pid and a counter, so that connect()s of concurrent tests never take
 * it.  Returns 0 or -errno (-EAFNOSUPPORT: no such loopback). */
int tu_free_port(const char *host, int *port);

/* ----------------------------------------------------------- counting -- */

/* Open descriptors of this process (entries of /proc/self/fd). */
int tu_fd_count(void);
/* "fd -> target" for every open descriptor, for failure messages. */
void tu_fd_describe(char *buf, size_t n);

/* Where POSIX message queues can be listed, or NULL. */
const char *tu_mq_dir(void);
/* Try to give this process (and its future children) a private IPC
 * namespace with its own mqueue mount, so that System V ids and queues are
 * counted exactly.  Call once, early, before any thread exists.  Returns
 * 1 when isolated, 0 otherwise (why: in *why). */
int tu_isolate_ipc(const char **why);
/* Whether tu_isolate_ipc() succeeded. */
int tu_ipc_isolated(void);

struct tu_objs {
	char **names; /* "shm:NAME", "mq:NAME", "file:PATH", "abstract:@X",
	                 "sysvshm:ID", "sysvmsg:ID", "sysvsem:ID" */
	size_t n, cap;
};

/* List the objects: see the top of this file.  token selects /dev/shm,
 * mqueue and abstract socket entries (NULL: none of them); dir is listed
 * recursively (NULL: none). */
int tu_objs_snapshot(struct tu_objs *o, const char *token, const char *dir);
/* Entries of after that are not in before, as a ", "-separated list in
 * report (may be NULL).  System V ids count only when isolated or when
 * one of pids[0..npids) used them.  Returns how many. */
int tu_objs_diff(const struct tu_objs *before, const struct tu_objs *after,
                 const pid_t *pids, size_t npids, char *report, size_t n);
/* Names in after and not in before, each an index into after->names, as
 * tu_objs_diff() counts them.  Returns how many (at most max). */
size_t tu_objs_new(const struct tu_objs *before, const struct tu_objs *after,
                   const pid_t *pids, size_t npids, size_t *idx, size_t max);
/* Permission bits (0..0777) of one object named as in struct tu_objs, -1
 * for directories and abstract sockets (no mode), or -errno. */
int tu_obj_mode(const char *name);
/* Remove what tu_objs_diff() would report (unlink, mq_unlink, IPC_RMID). */
void tu_objs_remove_new(const struct tu_objs *before,
                        const struct tu_objs *after, const pid_t *pids,
                        size_t npids);
void tu_objs_free(struct tu_objs *o);

/* ---------------------------------------------------------- processes -- */

/* SANITIZED: 1 in an AddressSanitizer or ThreadSanitizer build (gcc or
 * clang), for tests that scale their load down there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

typedef int (*tu_child_fn)(void *arg);

/* fork(); the child sets alarm(limit_s) (0: none), runs fn(arg) and
 * _exit()s with its return value.  stdio is flushed before the fork.
 * Returns the pid or -errno.  Inside tu_run_isolated(), the pid is
 * recorded for the System V attribution of tu_objs_diff(). */
pid_t tu_fork(tu_child_fn fn, void *arg, unsigned limit_s);
/* fork() for a test that goes on in the child itself: the child is
 * killed when this process dies (a failed test must not leave a child
 * blocked on a peer it can no longer see).  The pid, 0 in the child, or
 * -errno. */
pid_t tu_fork_plain(void);
/* Wait up to timeout_ms (-1: forever) for pid.  Returns 0 with *status
 * set, or -ETIMEDOUT (the child is left running), or -errno. */
int tu_wait(pid_t pid, int timeout_ms, int *status);
/* "exit 0", "exit 3", "killed by signal 9 (Killed)". */
const char *tu_status_str(int status, char *buf, size_t n);
/* Wait up to timeout_ms; return 0 if pid exited with status 0.  Otherwise
 * print why (and SIGKILL it if it is still running) and return -1. */
int tu_wait_ok(pid_t pid, int timeout_ms);

/* ipc_open(uri, flags), retried while nobody serves the name yet
 * (-ECONNREFUSED, -ENOENT), for up to timeout_ms (scaled).  NULL (the
 * error printed) on any other failure or at the limit. */
ipc_channel *tu_open_retry(const char *uri, int flags, int timeout_ms);
/* Death against close on a channel of uri (opened with IPC_CREATE here,
 * without it by a forked peer): a peer killed by SIGKILL must end recv
 * with -EPIPE and a text that says "died"; a peer that calls ipc_close
 * (and lives on, or exits at once, or closes with its queue towards us
 * full) with -EPIPE and a text that says "closed", never "died". */
void tu_check_peer_end(const char *uri);
/* Entries of a directory (with . and ..), 0 when it cannot be read. */
int tu_count_dir(const char *path);

/* ------------------------------------------------------------- timing -- */

/* CLOCK_MONOTONIC in seconds. */
double tu_now(void);
void tu_sleep_ms(int ms);

/* Upper bounds on time are checked only for deadlines of the contract (a
 * dead peer reported within one second, an open that does not wait), and
 * multiplied by this factor: IPC_TEST_TIME_FACTOR in the environment
 * (default 1; make asan and make tsan set it, sanitizers are slow). */
double tu_time_factor(void);
/* "Within one second", with room for a loaded machine, scaled. */
#define TU_DEATH_S (2.5 * tu_time_factor())

/* Wait until thread tid of this process sleeps in the kernel (state S or
 * D in /proc/self/task/TID/stat): 1 once seen, 0 if not within timeout_ms
 * (scaled by tu_time_factor()). */
int tu_wait_asleep(pid_t tid, int timeout_ms);

/* A thread that kills pid with SIGKILL after delay_ms and notes when.
 * The calling thread is the victim's counterpart, about to block: the
 * killer waits until it is seen asleep in the kernel before killing
 * (asleep = 1), or kills anyway after a few seconds (asleep = 0: it
 * busy-waits, or never blocked). */
struct tu_killer {
	pthread_t th;
	pid_t pid;
	pid_t tid; /* the thread that blocks */
	int delay_ms;
	int asleep;
	double killed_at; /* tu_now() right before kill() */
};
int tu_killer_start(struct tu_killer *k, pid_t pid, int delay_ms);
/* Join; returns the seconds from the kill to now. */
double tu_killer_join(struct tu_killer *k);

/* Kill pid (the peer of ch) with SIGKILL after delay_ms while this thread
 * blocks in ipc_recv (op 'r') or in ipc_send of 16-byte messages (op 's',
 * repeated while they succeed: fill the channel first) on ch.  *rc gets what
 * the call returned; the result is the seconds from the kill to the return.
 * The caller reaps pid. */
double tu_time_to_epipe(ipc_channel *ch, pid_t pid, int delay_ms, int op,
                        long long *rc);

/* --------------------------------------------------- isolated testing -- */

enum tu_result { TU_PASS, TU_FAIL, TU_SKIP };

/* State shared between tu_run_isolated() and the test process (and its
 * children: it is a MAP_SHARED page). */
struct tu_shared {
	/* Objects may remain (a creator was killed): 1 any, 2 only those
	 * tu_allow_present() listed in allowed. */
	int allow_leftovers;
	char allowed[4096]; /* names, each followed by '\n' */
	char token[64];     /* tu_run_isolated's token and dir */
	char dir[256];
	int npids;
	pid_t pids[240];
	char skip_reason[512];
};
/* Inside tu_run_isolated(): the shared page; NULL elsewhere. */
struct tu_shared *tu_shared(void);
/* Inside tu_run_isolated(): the objects that exist now (those of a peer
 * that created the channel and is about to be killed) may remain after
 * the test; anything else left behind still fails it.  Falls back to
 * allowing any leftover when the list does not fit. */
void tu_allow_present(void);

/*
 * Run fn(arg) in a forked process that leads its own process group, with
 * alarm(limit_s) and an outer limit a little longer.  token and dir name
 * the test's objects (see tu_objs_snapshot).  The test fails when fn
 * returns non-zero or the process dies, when the process's descriptor
 * count after fn differs from the one before it, and when objects remain
 * once the whole process group is gone.  It is skipped when the process
 * exits with TU_EXIT_SKIP (tu_skip()).  Every process of the group is
 * killed and reaped before returning (this process becomes a child
 * subreaper for that), and leftover objects are removed.  why receives a
 * one-line reason for FAIL and SKIP.
 */
enum tu_result tu_run_isolated(tu_child_fn fn, void *arg, unsigned limit_s,
                               const char *token, const char *dir, char *why,
                               size_t whyn);

#endif /* IPC_TESTS_TESTUTIL_H */
