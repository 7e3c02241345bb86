/*
 * ipc-bench harness: runs one row between two pinned processes.
 *
 * The orchestrator (the ipc-bench process) forks A and B.  A opens the
 * server end, B the client end.  A drives: it sends commands to B over a
 * plain pipe, measures, and reports one struct bench_result to the
 * orchestrator over another pipe.  B says "hello" first through the
 * transport (connectionless transports learn their peer that way), then
 * follows A's commands: echo N messages, or count a stream until its end
 * marker (a 1-byte message) and answer with the count and the time the
 * stream ended.  The orchestrator kills both at the row's deadline or as
 * soon as one of them fails, and always runs the row's cleanup.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "bench.h"

size_t bench_sizes[BENCH_MAXSIZES] = {64, 64 * 1024, 1024 * 1024};
int bench_nsizes = 3;
volatile sig_atomic_t bench_interrupted;

size_t
bench_max_size(void)
{
	size_t m = 1024;
	for (int k = 0; k < bench_nsizes; k++) {
		m = bench_sizes[k] > m ? bench_sizes[k] : m;
	}
	return m;
}
#define MAXSIZE      bench_max_size()
#define END_MARK_LEN 1
/* B's receive timeout on lossy rows: while echoing (a loss there is a
 * failure) and at the end of a stream (the end marker may be lost). */
#define LOSSY_PING_MS   2000
#define LOSSY_STREAM_MS 300

enum { CMD_READY = 1, CMD_PING, CMD_STREAM, CMD_QUIT };

struct cmd {
	uint32_t op;
	uint32_t n;
	uint64_t size;
};

struct ack {
	uint64_t count;
	uint64_t t_end;
};

struct report {
	int role; /* 0: A, 1: B */
	struct bench_result res;
};

/* What A and B share in their process (or thread). */
struct side {
	const struct bench_row *row;
	const struct bench_plan *plan;
	struct bench_env *env;
	int role;
	int ctl_fd; /* A writes commands, B reads them */
	int ack_fd; /* B writes acks, A reads them */
	int rep_fd; /* both write reports to the orchestrator */
	void *ep;
	unsigned char *tx, *rx;
};

/* ------------------------------------------------ messages of a side -- */

static const char *
side_err(struct side *s, int err)
{
	static __thread char buf[BENCH_WHY];
	const char *detail = NULL;
	if (s->ep != NULL && s->row->ops->errstr != NULL) {
		detail = s->row->ops->errstr(s->ep);
	}
	if (detail != NULL && detail[0] != '\0') {
		snprintf(buf, sizeof(buf), "%s (%s)", strerror(-err), detail);
	} else {
		snprintf(buf, sizeof(buf), "%s", strerror(-err));
	}
	return buf;
}

/* Write the message: its sequence number first, and with --touch every
 * other 8-byte word too (seq + i), as a producer that makes its data. */
static void
put_seq(const struct side *s, unsigned char *p, size_t len, uint64_t seq)
{
	if (len < sizeof(seq)) {
		return;
	}
	memcpy(p, &seq, sizeof(seq));
	if (s->plan->touch) {
		for (size_t i = 1; i < len / 8; i++) {
			uint64_t w = seq + i;
			memcpy(p + i * 8, &w, sizeof(w));
		}
	}
}

/* Read the sequence number, and with --touch read every word and check
 * the last one.  Returns 0, or -EBADMSG for a wrong last word. */
static int
get_seq(const struct side *s, const unsigned char *p, size_t len,
        uint64_t *seq)
{
	*seq = 0;
	if (len < sizeof(*seq)) {
		return 0;
	}
	memcpy(seq, p, sizeof(*seq));
	if (s->plan->touch && len >= 16) {
		uint64_t sum = 0, w = 0;
		for (size_t i = 1; i < len / 8; i++) {
			memcpy(&w, p + i * 8, sizeof(w));
			sum += w;
		}
		/* Keep the reads: the sum goes nowhere else. */
		__asm__ __volatile__("" : : "r"(sum));
		if (w != *seq + len / 8 - 1) {
			return -EBADMSG;
		}
	}
	return 0;
}

/* Send one message of len bytes carrying seq. */
static int
msg_send(struct side *s, size_t len, uint64_t seq)
{
	const struct bench_ops *o = s->row->ops;
	if (s->row->flags & BENCH_ZEROCOPY) {
		void *p;
		int rc = o->reserve(s->ep, len, &p);
		if (rc < 0) {
			return rc;
		}
		put_seq(s, p, len, seq);
		return o->commit(s->ep, len);
	}
	put_seq(s, s->tx, len, seq);
	ssize_t n = o->send(s->ep, s->tx, len);
	if (n < 0) {
		return (int)n;
	}
	return n == (ssize_t)len ? 0 : -EIO;
}

/* Receive one message: its length in *len, its sequence number in *seq. */
static int
msg_recv(struct side *s, size_t *len, uint64_t *seq)
{
	const struct bench_ops *o = s->row->ops;
	if (s->row->flags & BENCH_ZEROCOPY) {
		const void *p;
		int rc = o->acquire(s->ep, &p, len);
		if (rc < 0) {
			return rc;
		}
		int bad = get_seq(s, p, *len, seq);
		rc = o->release(s->ep);
		return bad < 0 ? bad : rc;
	}
	ssize_t n = o->recv(s->ep, s->rx, MAXSIZE);
	if (n < 0) {
		return (int)n;
	}
	*len = (size_t)n;
	return get_seq(s, s->rx, *len, seq);
}

/* B: send back what came, same length and sequence number. */
static int
msg_echo(struct side *s, size_t *len)
{
	uint64_t seq;
	int rc = msg_recv(s, len, &seq);
	if (rc < 0) {
		return rc;
	}
	return msg_send(s, *len, seq);
}

static void
report(struct side *s, const struct bench_result *res)
{
	struct report r;
	memset(&r, 0, sizeof(r));
	r.role = s->role;
	r.res = *res;
	(void)bench_write_full(s->rep_fd, &r, sizeof(r));
}

static void report_status(struct side *s, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
report_status(struct side *s, int status, const char *fmt, ...)
{
	struct bench_result res;
	memset(&res, 0, sizeof(res));
	res.status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res.why, sizeof(res.why), fmt, ap);
	va_end(ap);
	report(s, &res);
}

static int
alloc_buffers(struct side *s)
{
	s->tx = malloc(MAXSIZE);
	s->rx = malloc(MAXSIZE);
	if (s->tx == NULL || s->rx == NULL) {
		return -ENOMEM;
	}
	size_t n = MAXSIZE;
	for (size_t i = 0; i < n; i++) {
		s->tx[i] = (unsigned char)(i * 31u + 7u);
	}
	memset(s->rx, 0, n);
	return 0;
}

static void
free_buffers(struct side *s)
{
	free(s->tx);
	free(s->rx);
	s->tx = s->rx = NULL;
}

/* ---------------------------------------------------------------- B -- */

static int
b_stream(struct side *s, const struct cmd *c, struct ack *a, char *why)
{
	const struct bench_ops *o = s->row->ops;
	int lossy =
	        (s->row->flags & BENCH_LOSSY) != 0 && o->set_timeout != NULL;
	uint64_t expect = 0;
	a->count = 0;
	a->t_end = 0;
	if (lossy) {
		o->set_timeout(s->ep, LOSSY_STREAM_MS);
	}
	for (;;) {
		size_t len;
		uint64_t seq;
		int rc = msg_recv(s, &len, &seq);
		if (rc == -ETIMEDOUT && lossy) {
			break;
		}
		if (rc < 0) {
			return bench_why(why, BENCH_FAIL,
			                 "B: receiving a %llu B stream: %s",
			                 (unsigned long long)c->size,
			                 side_err(s, rc));
		}
		/* The clock is read when the end marker arrives (right after
		 * the last message), not per message: a clock read per
		 * message would cost the fastest rows a large share of their
		 * time.  Lossy rows may lose the marker, so they read it per
		 * message and keep the last message's time. */
		if (lossy || len == END_MARK_LEN) {
			a->t_end = bench_now_ns();
		}
		if (len == END_MARK_LEN) {
			break;
		}
		if (len != c->size) {
			return bench_why(why, BENCH_FAIL,
			                 "B: got %zu bytes in a %llu B stream",
			                 len, (unsigned long long)c->size);
		}
		if (lossy ? seq < expect : seq != expect) {
			return bench_why(
			        why, BENCH_FAIL,
			        "B: message %llu arrived when %llu was "
			        "due",
			        (unsigned long long)seq,
			        (unsigned long long)expect);
		}
		expect = seq + 1;
		a->count++;
	}
	if (lossy) {
		o->set_timeout(s->ep, LOSSY_PING_MS);
	}
	if (a->t_end == 0) {
		a->t_end = bench_now_ns();
	}
	return BENCH_OK;
}

static int
b_loop(struct side *s, char *why)
{
	for (;;) {
		struct cmd c;
		struct ack a = {0, 0};
		int rc = bench_read_full(s->ctl_fd, &c, sizeof(c));
		if (rc < 0) {
			return bench_why(why, BENCH_FAIL,
			                 "B: A went away without a command");
		}
		switch (c.op) {
		case CMD_PING:
			for (uint32_t i = 0; i < c.n; i++) {
				size_t len;
				rc = msg_echo(s, &len);
				if (rc < 0) {
					return bench_why(why, BENCH_FAIL,
					                 "B: echo %u: %s", i,
					                 side_err(s, rc));
				}
			}
			break;
		case CMD_STREAM:
			rc = b_stream(s, &c, &a, why);
			if (rc != BENCH_OK) {
				return rc;
			}
			break;
		case CMD_QUIT:
			return BENCH_OK;
		default:
			return bench_why(why, BENCH_FAIL, "B: bad command");
		}
		if (bench_write_full(s->ack_fd, &a, sizeof(a)) < 0) {
			return bench_why(why, BENCH_FAIL, "B: A went away");
		}
	}
}

static int
b_run(struct side *s)
{
	char why[BENCH_WHY] = "";
	const struct bench_ops *o = s->row->ops;
	if (s->env->cpu[1] >= 0) {
		bench_pin(s->env->cpu[1]);
	}
	if (alloc_buffers(s) < 0) {
		report_status(s, BENCH_FAIL, "B: out of memory");
		return 1;
	}
	/* Open only once A's endpoint exists: a datagram sent to a port
	 * nobody has bound yet is gone.  If A could not open, it says why
	 * and the pipe ends here. */
	struct cmd ready;
	if (bench_read_full(s->ctl_fd, &ready, sizeof(ready)) < 0 ||
	    ready.op != CMD_READY) {
		free_buffers(s);
		return 1;
	}
	int rc = o->open(s->env, s->row->arg, 0, &s->ep, why);
	if (rc != BENCH_OK) {
		s->ep = NULL;
		report_status(s, rc, "%s", why);
		free_buffers(s);
		return 1;
	}
	if ((s->row->flags & BENCH_LOSSY) && o->set_timeout != NULL) {
		o->set_timeout(s->ep, LOSSY_PING_MS);
	}
	/* Hello: B speaks first, then waits for A's answer. */
	size_t len;
	uint64_t seq;
	rc = msg_send(s, END_MARK_LEN, 0);
	if (rc == 0) {
		rc = msg_recv(s, &len, &seq);
	}
	if (rc < 0) {
		report_status(s, BENCH_FAIL, "B: hello: %s", side_err(s, rc));
	} else {
		rc = b_loop(s, why);
		if (rc != BENCH_OK) {
			report_status(s, rc, "%s", why);
		}
	}
	o->close(s->ep, 0);
	s->ep = NULL;
	free_buffers(s);
	/* Tell A that B has closed, so A closes last. */
	struct ack bye = {0, 0};
	(void)bench_write_full(s->ack_fd, &bye, sizeof(bye));
	return rc == BENCH_OK ? 0 : 1;
}

/* ---------------------------------------------------------------- A -- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int
send_cmd(struct side *s, uint32_t op, uint32_t n, size_t size)
{
	struct cmd c = {op, n, size};
	return bench_write_full(s->ctl_fd, &c, sizeof(c));
}

static int
a_ping(struct side *s, struct bench_result *res, char *why)
{
	unsigned warm = s->plan->ping_warmup, n = s->plan->pings;
	if (s->row->flags & BENCH_SLOW) {
		warm = warm / 50 + 1;
		n = n / 50 < 10 ? 10 : n / 50;
	}
	uint64_t *rtt = malloc(sizeof(*rtt) * n);
	if (rtt == NULL) {
		return bench_why(why, BENCH_FAIL, "A: out of memory");
	}
	if (send_cmd(s, CMD_PING, warm + n, BENCH_PING_SIZE) < 0) {
		free(rtt);
		return bench_why(why, BENCH_FAIL, "A: B went away");
	}
	for (unsigned i = 0; i < warm + n; i++) {
		size_t len;
		uint64_t seq;
		uint64_t t0 = bench_now_ns();
		int rc = msg_send(s, BENCH_PING_SIZE, i);
		if (rc == 0) {
			rc = msg_recv(s, &len, &seq);
		}
		uint64_t t1 = bench_now_ns();
		if (rc < 0) {
			free(rtt);
			return bench_why(why, BENCH_FAIL, "A: ping %u: %s", i,
			                 side_err(s, rc));
		}
		if (len != BENCH_PING_SIZE || seq != i) {
			free(rtt);
			return bench_why(why, BENCH_FAIL,
			                 "A: ping %u came back as %zu bytes, "
			                 "number %llu",
			                 i, len, (unsigned long long)seq);
		}
		if (i >= warm) {
			rtt[i - warm] = t1 - t0;
		}
	}
	struct ack a;
	if (bench_read_full(s->ack_fd, &a, sizeof(a)) < 0) {
		free(rtt);
		return bench_why(why, BENCH_FAIL, "A: B went away");
	}
	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	res->p50_ns = (double)rtt[n / 2] / 2.0;
	res->p99_ns = (double)rtt[(size_t)((double)n * 0.99)] / 2.0;
	free(rtt);
	return BENCH_OK;
}

/* One stream of size-byte messages for about secs; *rate in messages/s
 * as B counted them. */
static int
a_stream(struct side *s, size_t size, double secs, double *rate, double *got,
         char *why)
{
	uint64_t budget = (uint64_t)(secs * 1e9);
	/* Look at the clock about every 64 KiB, not every message. */
	uint64_t mask = size >= 65536 ? 0 : 65536 / size - 1;
	uint64_t i = 0;
	if (send_cmd(s, CMD_STREAM, 0, size) < 0) {
		return bench_why(why, BENCH_FAIL, "A: B went away");
	}
	uint64_t t0 = bench_now_ns();
	for (;;) {
		int rc = msg_send(s, size, i);
		if (rc < 0) {
			return bench_why(why, BENCH_FAIL,
			                 "A: sending %zu B message %llu: %s",
			                 size, (unsigned long long)i,
			                 side_err(s, rc));
		}
		i++;
		if ((i & mask) == 0 && bench_now_ns() - t0 >= budget) {
			break;
		}
	}
	int rc = msg_send(s, END_MARK_LEN, i);
	if (rc < 0) {
		return bench_why(why, BENCH_FAIL, "A: end of stream: %s",
		                 side_err(s, rc));
	}
	struct ack a;
	if (bench_read_full(s->ack_fd, &a, sizeof(a)) < 0) {
		return bench_why(why, BENCH_FAIL, "A: B went away");
	}
	double dt = (double)(a.t_end - t0) / 1e9;
	*rate = dt > 0 ? (double)a.count / dt : 0;
	*got = (double)a.count / (double)i;
	return BENCH_OK;
}

static int
a_measure(struct side *s, struct bench_result *res, char *why)
{
	int rc = a_ping(s, res, why);
	if (rc != BENCH_OK) {
		return rc;
	}
	for (int k = 0; k < bench_nsizes; k++) {
		size_t size = bench_sizes[k];
		double rates[16], got[16], dummy_r, dummy_g;
		unsigned reps = s->plan->reps > 16 ? 16 : s->plan->reps;
		if (size > res->max_msg) {
			res->cell[k] = BENCH_CELL_NA;
			continue;
		}
		rc = a_stream(s, size, s->plan->warm_s, &dummy_r, &dummy_g,
		              why);
		for (unsigned r = 0; rc == BENCH_OK && r < reps; r++) {
			rc = a_stream(s, size, s->plan->stream_s, &rates[r],
			              &got[r], why);
		}
		if (rc != BENCH_OK) {
			return rc;
		}
		qsort(rates, reps, sizeof(double), cmp_double);
		qsort(got, reps, sizeof(double), cmp_double);
		res->msgs_s[k] = rates[reps / 2];
		res->received[k] = got[reps / 2];
		res->cell[k] = BENCH_CELL_OK;
	}
	return BENCH_OK;
}

static int
a_run(struct side *s)
{
	char why[BENCH_WHY] = "";
	struct bench_result res;
	const struct bench_ops *o = s->row->ops;
	memset(&res, 0, sizeof(res));
	if (s->env->cpu[0] >= 0) {
		bench_pin(s->env->cpu[0]);
	}
	if (alloc_buffers(s) < 0) {
		report_status(s, BENCH_FAIL, "A: out of memory");
		return 1;
	}
	res.status = o->open(s->env, s->row->arg, 1, &s->ep, why);
	if (res.status != BENCH_OK) {
		s->ep = NULL;
		snprintf(res.why, sizeof(res.why), "%s", why);
		report(s, &res);
		free_buffers(s);
		return 1;
	}
	res.max_msg = o->max_msg(s->ep);
	size_t len;
	uint64_t seq;
	int rc = send_cmd(s, CMD_READY, 0, 0) < 0 ? -EPIPE : 0;
	if (rc == 0) {
		rc = msg_recv(s, &len, &seq);
	}
	if (rc == 0) {
		rc = msg_send(s, END_MARK_LEN, 0);
	}
	if (rc < 0) {
		res.status = bench_why(res.why, BENCH_FAIL, "A: hello: %s",
		                       side_err(s, rc));
	} else {
		res.status = a_measure(s, &res, why);
		if (res.status != BENCH_OK) {
			snprintf(res.why, sizeof(res.why), "%s", why);
		} else {
			/* Let B close first, then close. */
			struct ack bye;
			send_cmd(s, CMD_QUIT, 0, 0);
			(void)bench_read_full(s->ack_fd, &bye, sizeof(bye));
		}
	}
	o->close(s->ep, 1);
	s->ep = NULL;
	free_buffers(s);
	report(s, &res);
	return res.status == BENCH_OK ? 0 : 1;
}

/* --------------------------------------------------- the orchestrator -- */

static void *
b_thread(void *arg)
{
	b_run(arg);
	return NULL;
}

/* The process that runs A, and B too when the row wants threads.  Children
 * end with exit(), not _exit(): some peers (iceoryx) deregister from their
 * daemon in destructors.  The orchestrator registers no atexit handler and
 * flushes stdio before forking, so exit() does nothing else. */
static void
child_a(struct side *a, struct side *b)
{
	if (a->row->flags & BENCH_THREADS) {
		pthread_t t;
		if (pthread_create(&t, NULL, b_thread, b) != 0) {
			report_status(a, BENCH_FAIL, "cannot start thread B");
			exit(1);
		}
		int rc = a_run(a);
		pthread_join(t, NULL);
		exit(rc);
	}
	exit(a_run(a));
}

static pid_t
spawn(void (*fn)(struct side *, struct side *), struct side *x, struct side *y,
      const int *keep, int nkeep, const int *all, int nall, unsigned alarm_s)
{
	pid_t pid = fork();
	if (pid != 0) {
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	alarm(alarm_s);
	for (int i = 0; i < nall; i++) {
		int used = 0;
		for (int j = 0; j < nkeep; j++) {
			used |= all[i] == keep[j];
		}
		if (!used) {
			close(all[i]);
		}
	}
	fn(x, y);
	exit(1);
}

static void
child_b(struct side *b, struct side *unused)
{
	(void)unused;
	exit(b_run(b));
}

static const char *
exit_text(int status)
{
	static char buf[64];
	if (WIFSIGNALED(status)) {
		snprintf(buf, sizeof(buf), "killed by signal %d (%s)",
		         WTERMSIG(status), strsignal(WTERMSIG(status)));
	} else {
		snprintf(buf, sizeof(buf), "exited with status %d",
		         WEXITSTATUS(status));
	}
	return buf;
}

/* Wait for pid until deadline (ns); SIGKILL it then.  Returns its wait
 * status, or -1 when it had to be killed or was reaped already. */
static int
reap(pid_t pid, uint64_t deadline)
{
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			return st;
		}
		if (r < 0) {
			return -1;
		}
		if (bench_now_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		bench_sleep_ms(5);
	}
}

/* Collect the reports until A's arrives, a child fails or dies, or the
 * deadline passes.  Returns with *res filled. */
static void
collect(int rep_fd, pid_t pa, pid_t pb, uint64_t deadline,
        struct bench_result *res)
{
	int have_b_fail = 0, a_done = 0, b_done = pb <= 0;
	struct bench_result bres;
	while (!a_done) {
		struct pollfd p = {rep_fd, POLLIN, 0};
		int n = poll(&p, 1, 50);
		if (n > 0) {
			struct report r;
			if (bench_read_full(rep_fd, &r, sizeof(r)) < 0) {
				break;
			}
			if (r.role == 0) {
				*res = r.res;
				a_done = 1;
			} else if (!have_b_fail) {
				bres = r.res;
				have_b_fail = 1;
				break;
			}
			continue;
		}
		int st;
		if (!b_done && waitpid(pb, &st, WNOHANG) == pb) {
			b_done = 1;
			if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
				/* Its report, if any, is in the pipe. */
				if (poll(&p, 1, 100) > 0) {
					continue;
				}
				res->status = bench_why(res->why, BENCH_FAIL,
				                        "B %s", exit_text(st));
				return;
			}
		}
		if (waitpid(pa, &st, WNOHANG) == pa) {
			if (poll(&p, 1, 100) > 0) {
				struct report r;
				if (bench_read_full(rep_fd, &r, sizeof(r)) ==
				            0 &&
				    r.role == 0) {
					*res = r.res;
					return;
				}
			}
			res->status = bench_why(res->why, BENCH_FAIL, "A %s",
			                        exit_text(st));
			return;
		}
		if (bench_now_ns() >= deadline) {
			res->status = bench_why(res->why, BENCH_FAIL,
			                        "timed out; killed");
			return;
		}
		if (bench_interrupted) {
			res->status =
			        bench_why(res->why, BENCH_FAIL, "interrupted");
			return;
		}
	}
	if (have_b_fail) {
		/* B's reason is the real one; A only saw the consequence. */
		*res = bres;
		if (res->status == BENCH_OK) {
			res->status = BENCH_FAIL;
		}
	} else if (!a_done) {
		/* Every writer closed the pipe: A (and B) ended silently. */
		int st = reap(pa, bench_now_ns() + 1000000000u);
		res->status = bench_why(res->why, BENCH_FAIL, "A %s",
		                        st == -1 ? "vanished" : exit_text(st));
	}
}

void
bench_run_row(const struct bench_row *row, int index,
              const struct bench_plan *plan, const char *tmpdir,
              struct bench_result *res)
{
	struct bench_env env;
	char why[BENCH_WHY] = "";
	memset(res, 0, sizeof(*res));
	memset(&env, 0, sizeof(env));
	if (row->ops == NULL) {
		res->status = BENCH_SKIP;
		snprintf(res->why, sizeof(res->why), "%s", row->skip);
		return;
	}
	snprintf(env.dir, sizeof(env.dir), "%s", tmpdir);
	snprintf(env.token, sizeof(env.token), "ipcbench-%d-%d", (int)getpid(),
	         index);
	env.port = bench_free_port();
	bench_pick_cpus(env.cpu);

	if (row->ops->prepare != NULL) {
		int rc = row->ops->prepare(&env, row->arg, why);
		if (rc != BENCH_OK) {
			res->status = rc;
			snprintf(res->why, sizeof(res->why), "%s", why);
			if (row->ops->cleanup != NULL) {
				row->ops->cleanup(&env, row->arg);
			}
			return;
		}
	}

	int ctl[2] = {-1, -1}, ack[2] = {-1, -1}, rep[2] = {-1, -1};
	if (pipe(ctl) < 0 || pipe(ack) < 0 || pipe(rep) < 0) {
		res->status = bench_why(res->why, BENCH_FAIL, "pipe: %s",
		                        strerror(errno));
		goto out;
	}
	int all[6] = {ctl[0], ctl[1], ack[0], ack[1], rep[0], rep[1]};
	struct side a = {row,    plan,   &env, 0,    ctl[1],
	                 ack[0], rep[1], NULL, NULL, NULL};
	struct side b = {row,    plan,   &env, 1,    ctl[0],
	                 ack[1], rep[1], NULL, NULL, NULL};
	unsigned alarm_s = plan->row_timeout + 10;
	pid_t pa, pb = -1;
	fflush(NULL);
	if (row->flags & BENCH_THREADS) {
		int keep[5] = {ctl[0], ctl[1], ack[0], ack[1], rep[1]};
		pa = spawn(child_a, &a, &b, keep, 5, all, 6, alarm_s);
	} else {
		int ka[3] = {ctl[1], ack[0], rep[1]};
		int kb[3] = {ctl[0], ack[1], rep[1]};
		pa = spawn(child_a, &a, &b, ka, 3, all, 6, alarm_s);
		env.pid[0] = pa > 0 ? pa : 0; /* B may need A's pid */
		if (pa > 0) {
			pb = spawn(child_b, &b, NULL, kb, 3, all, 6, alarm_s);
		}
	}
	env.pid[0] = pa > 0 ? pa : 0;
	env.pid[1] = pb > 0 ? pb : 0;
	for (int i = 0; i < 6; i++) {
		if (all[i] != rep[0]) {
			close(all[i]);
		}
	}
	if (pa < 0 || ((row->flags & BENCH_THREADS) == 0 && pb < 0)) {
		res->status = bench_why(res->why, BENCH_FAIL, "fork: %s",
		                        strerror(errno));
		if (pa > 0) {
			kill(pa, SIGKILL);
			waitpid(pa, NULL, 0);
		}
		close(rep[0]);
		goto out;
	}
	uint64_t deadline =
	        bench_now_ns() + (uint64_t)plan->row_timeout * 1000000000u;
	collect(rep[0], pa, pb, deadline, res);
	close(rep[0]);
	/* A normal end: both are exiting.  Otherwise: give them a moment,
	 * then kill. */
	uint64_t grace = bench_now_ns() +
	                 (res->status == BENCH_OK ? 5000000000u : 200000000u);
	reap(pa, grace);
	int bst = pb > 0 ? reap(pb, grace) : -1;
	if (res->status == BENCH_FAIL && bst != -1 && WIFSIGNALED(bst)) {
		/* A's complaint is a consequence; say what happened first. */
		char first[BENCH_WHY];
		snprintf(first, sizeof(first), "%s", res->why);
		snprintf(res->why, sizeof(res->why), "B %s; then %.180s",
		         exit_text(bst), first);
	}
out:
	if (row->ops->cleanup != NULL) {
		row->ops->cleanup(&env, row->arg);
	}
}
