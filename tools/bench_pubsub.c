/*
 * ipc-bench --pubsub: publish/subscribe side by side (bench_pubsub.h).
 *
 * Each cell (transport, message size, subscriber count) forks one
 * publisher process and N subscriber processes (not pinned: 16
 * subscribers share the machine's CPUs).  A shared control page carries
 * the phases and what the subscribers saw; the transport carries only the
 * measured messages, each starting with a 24-byte header (sequence
 * number, send time, phase).  Payload bytes past the header are neither
 * written nor read, as in ipc-bench's zero-copy rows.
 *
 *  1. warm-up: the publisher sends a message every millisecond until
 *     every subscriber has one (slow joiners: ZeroMQ and nng drop what
 *     they publish before a subscription is in place);
 *  2. latency: LAT messages one at a time, each after every subscriber
 *     has the previous one; per message the latency to the first and to
 *     the last subscriber to get it; p50 of each;
 *  3. throughput: the publisher sends for a fixed time as fast as the
 *     transport takes them; each subscriber's delivered msg/s is its
 *     count over the time between its first and last message; the
 *     publisher's CPU time per message (getrusage, its process only: a
 *     library's I/O threads count, the subscribers do not).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/ipc.h"

#include "bench_pubsub.h"

#define MAXSUBS    16
#define LAT_MAX    400
#define OPEN_TRIES 10000 /* x 1 ms */
enum { PH_WARM = 1, PH_LAT, PH_THR, PH_END };

struct hdr {
	uint64_t seq;
	uint64_t sent_ns;
	uint32_t phase;
	uint32_t k; /* latency phase: the message's index */
};

struct ctl {
	_Atomic int ready;
	_Atomic int phase;
	_Atomic uint64_t acked[MAXSUBS]; /* last sequence number + 1 */
	uint64_t count[MAXSUBS];         /* throughput messages */
	uint64_t first_ns[MAXSUBS], last_ns[MAXSUBS];
	uint64_t lat[MAXSUBS][LAT_MAX];
	/* the publisher's */
	uint64_t sent;
	double pub_s, pub_cpu_s;
	int lat_n;
	int status;
	char why[BENCH_WHY];
};

/* ------------------------------------------------------------ libipc -- */

struct lep {
	ipc_channel *ch;
	int zc;
	unsigned char *buf;
	size_t cap;
};

static int
l_open(struct bench_ps_env *e, int pub, void **ep, const char *uri, int zc,
       char *why)
{
	struct lep *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	l->zc = zc;
	l->cap = e->size;
	l->buf = calloc(1, e->size);
	int r = -ENOMEM;
	if (l->buf != NULL) {
		for (int i = 0; i < OPEN_TRIES; i++) {
			r = ipc_open(&l->ch, uri,
			             pub ? IPC_PUBLISH : IPC_SUBSCRIBE);
			if (pub || (r != -ECONNREFUSED && r != -ENOENT)) {
				break;
			}
			bench_sleep_ms(1);
		}
	}
	if (r < 0) {
		free(l->buf);
		free(l);
		return bench_why(why,
		                 r == -EOPNOTSUPP || r == -EPROTONOSUPPORT
		                         ? BENCH_SKIP
		                         : BENCH_FAIL,
		                 "%s", ipc_last_error());
	}
	*ep = l;
	return BENCH_OK;
}

static int
l_publish(void *ep, const void *hdr, size_t hdr_len, size_t len)
{
	struct lep *l = ep;
	if (l->zc) {
		void *p;
		int r = ipc_reserve(l->ch, len, &p, 0);
		if (r < 0) {
			return r;
		}
		memcpy(p, hdr, hdr_len);
		return ipc_commit(l->ch, len);
	}
	memcpy(l->buf, hdr, hdr_len);
	ssize_t n = ipc_send(l->ch, l->buf, len, 0);
	return n < 0 ? (int)n : 0;
}

static int
l_next(void *ep, const void **buf, size_t *len, int timeout_ms)
{
	struct lep *l = ep;
	ipc_set_timeout(l->ch, timeout_ms);
	int r;
	if (l->zc) {
		r = ipc_acquire(l->ch, buf, len, 0);
	} else {
		ssize_t n = ipc_recv(l->ch, l->buf, l->cap, 0);
		r = n < 0 ? (int)n : 0;
		*buf = l->buf;
		*len = n < 0 ? 0 : (size_t)n;
	}
	if (r == -ETIMEDOUT) {
		return 0;
	}
	return r < 0 ? r : 1;
}

static void
l_done(void *ep)
{
	struct lep *l = ep;
	if (l->zc) {
		ipc_release(l->ch);
	}
}

static void
l_close(void *ep)
{
	struct lep *l = ep;
	ipc_close(l->ch);
	free(l->buf);
	free(l);
}

static int
shm_uri_open(struct bench_ps_env *e, int pub, void **ep, const char *extra,
             char *why)
{
	char uri[200];
	/* As much payload in flight as the one-to-one shm:// ring holds by
	 * default (4 MiB), and at least 16 messages. */
	unsigned slots = 16;
	while ((size_t)slots * 2 * e->size <= ((size_t)4 << 20)) {
		slots *= 2;
	}
	snprintf(uri, sizeof(uri), "shm://%s?slots=%u&maxmsg=%zu%s", e->token,
	         slots, e->size, extra);
	return l_open(e, pub, ep, uri, 1, why);
}

static int
shm_open_ps(struct bench_ps_env *e, int pub, void **ep, char *why)
{
	return shm_uri_open(e, pub, ep, "", why);
}

static int
shm_drop_open_ps(struct bench_ps_env *e, int pub, void **ep, char *why)
{
	return shm_uri_open(e, pub, ep, "&slow=drop", why);
}

static int
unix_open_ps(struct bench_ps_env *e, int pub, void **ep, char *why)
{
	char uri[200];
	snprintf(uri, sizeof(uri), "unix://%s/%s.sock", e->dir, e->token);
	return l_open(e, pub, ep, uri, 0, why);
}

static int
tcp_open_ps(struct bench_ps_env *e, int pub, void **ep, char *why)
{
	char uri[200];
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%u", e->port);
	return l_open(e, pub, ep, uri, 0, why);
}

static void
unix_cleanup(struct bench_ps_env *e)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/%s.sock", e->dir, e->token);
	unlink(path);
}

#define LIBIPC_PS_OPS(name, openfn, cleanupfn)                                \
	static const struct bench_ps_ops name = {                             \
	        .open = openfn,                                               \
	        .publish = l_publish,                                         \
	        .next = l_next,                                               \
	        .done = l_done,                                               \
	        .close = l_close,                                             \
	        .cleanup = cleanupfn,                                         \
	}
LIBIPC_PS_OPS(shm_ps_ops, shm_open_ps, NULL);
LIBIPC_PS_OPS(shm_drop_ps_ops, shm_drop_open_ps, NULL);
LIBIPC_PS_OPS(unix_ps_ops, unix_open_ps, unix_cleanup);
LIBIPC_PS_OPS(tcp_ps_ops, tcp_open_ps, NULL);

static const struct bench_ps_row libipc_rows[] = {
        {"shm",
         "shm://NAME IPC_PUBLISH/IPC_SUBSCRIBE, reserve/commit + "
         "acquire/release in place",
         &shm_ps_ops, NULL},
        {"shm-drop",
         "the same with slow=drop: the publisher never waits, "
         "so its msg/s and CPU per message are its own cost; "
         "delivered counts",
         &shm_drop_ps_ops, NULL},
        {"unix", "unix:///PATH IPC_PUBLISH/IPC_SUBSCRIBE, ipc_send/ipc_recv",
         &unix_ps_ops, NULL},
        {"tcp",
         "tcp://127.0.0.1:PORT IPC_PUBLISH/IPC_SUBSCRIBE, "
         "ipc_send/ipc_recv",
         &tcp_ps_ops, NULL},
        {NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------ a cell -- */

static int
sub_main(const struct bench_ps_row *row, struct bench_ps_env *e, struct ctl *c)
{
	void *ep;
	char why[BENCH_WHY];
	int i = e->index;
	if (row->ops->open(e, 0, &ep, why) != BENCH_OK) {
		fprintf(stderr, "ipc-bench --pubsub %s: subscriber: %s\n",
		        row->name, why);
		return 1;
	}
	atomic_fetch_add(&c->ready, 1);
	for (;;) {
		const void *buf;
		size_t len;
		int r = row->ops->next(ep, &buf, &len, 100);
		if (r < 0) {
			break;
		}
		if (r == 0) {
			if (atomic_load(&c->phase) == PH_END) {
				break;
			}
			continue;
		}
		uint64_t now = bench_now_ns();
		struct hdr h;
		if (len < sizeof(h)) {
			row->ops->done(ep);
			continue;
		}
		memcpy(&h, buf, sizeof(h));
		row->ops->done(ep);
		if (h.phase == PH_LAT && h.k < LAT_MAX) {
			c->lat[i][h.k] = now - h.sent_ns;
		} else if (h.phase == PH_THR) {
			if (c->count[i] == 0) {
				c->first_ns[i] = now;
			}
			c->last_ns[i] = now;
			c->count[i]++;
		}
		atomic_store(&c->acked[i], h.seq + 1);
	}
	row->ops->close(ep);
	return 0;
}

static int
all_acked(struct ctl *c, int n, uint64_t seq)
{
	for (int i = 0; i < n; i++) {
		if (atomic_load(&c->acked[i]) < seq) {
			return 0;
		}
	}
	return 1;
}

static double
cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int
pub_fail(struct ctl *c, int status, const char *what, int err)
{
	c->status = status;
	snprintf(c->why, sizeof(c->why), "%s: %s", what, strerror(-err));
	return 1;
}

static int
pub_main(const struct bench_ps_row *row, struct bench_ps_env *e, struct ctl *c,
         int lat_n, double thr_s)
{
	void *ep;
	int n = e->nsubs, r;
	struct hdr h = {0};
	r = row->ops->open(e, 1, &ep, c->why);
	if (r != BENCH_OK) {
		c->status = r;
		return 1;
	}
	uint64_t t0 = bench_now_ns();
	while (atomic_load(&c->ready) < n) {
		if (bench_now_ns() - t0 > 30000000000ull) {
			return pub_fail(c, BENCH_FAIL, "subscribers to open",
			                -ETIMEDOUT);
		}
		bench_sleep_ms(1);
	}
	atomic_store(&c->phase, PH_WARM);
	h.phase = PH_WARM;
	while (!all_acked(c, n, 1)) {
		h.sent_ns = bench_now_ns();
		if (h.sent_ns - t0 > 30000000000ull) {
			return pub_fail(c, BENCH_FAIL, "warm-up", -ETIMEDOUT);
		}
		if ((r = row->ops->publish(ep, &h, sizeof(h), e->size)) < 0) {
			return pub_fail(c, BENCH_FAIL, "publish", r);
		}
		h.seq++;
		bench_sleep_ms(1);
	}
	atomic_store(&c->phase, PH_LAT);
	h.phase = PH_LAT;
	for (int k = 0; k < lat_n; k++) {
		h.k = (uint32_t)k;
		h.sent_ns = bench_now_ns();
		if ((r = row->ops->publish(ep, &h, sizeof(h), e->size)) < 0) {
			return pub_fail(c, BENCH_FAIL, "publish", r);
		}
		h.seq++;
		uint64_t w0 = bench_now_ns();
		/* A lossy transport may lose one: give up after 1 s. */
		while (!all_acked(c, n, h.seq) &&
		       bench_now_ns() - w0 < 1000000000ull) {
			sched_yield();
		}
	}
	c->lat_n = lat_n;
	atomic_store(&c->phase, PH_THR);
	h.phase = PH_THR;
	double cpu0 = cpu_s();
	uint64_t s0 = bench_now_ns(), end = s0 + (uint64_t)(thr_s * 1e9);
	uint64_t sent = 0;
	do {
		h.sent_ns = bench_now_ns();
		if ((r = row->ops->publish(ep, &h, sizeof(h), e->size)) < 0) {
			return pub_fail(c, BENCH_FAIL, "publish", r);
		}
		h.seq++;
		sent++;
	} while (h.sent_ns < end);
	c->pub_s = (double)(bench_now_ns() - s0) / 1e9;
	c->pub_cpu_s = cpu_s() - cpu0;
	c->sent = sent;
	atomic_store(&c->phase, PH_END);
	row->ops->close(ep);
	c->status = BENCH_OK;
	return 0;
}

struct cell {
	int status;
	char why[BENCH_WHY];
	double per_sub, per_sub_min; /* delivered msg/s, mean and least */
	double pub_rate, cpu_ns;     /* publisher msg/s, CPU ns per message */
	double p50_first, p50_last;  /* ns */
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void
summarise(struct ctl *c, int n, struct cell *out)
{
	static double first[LAT_MAX], last[LAT_MAX];
	int m = 0;
	for (int k = 0; k < c->lat_n; k++) {
		double lo = 1e30, hi = 0;
		int all = 1;
		for (int i = 0; i < n; i++) {
			if (c->lat[i][k] == 0) {
				all = 0;
				break;
			}
			double v = (double)c->lat[i][k];
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		if (all) {
			first[m] = lo;
			last[m++] = hi;
		}
	}
	qsort(first, (size_t)m, sizeof(double), cmp_double);
	qsort(last, (size_t)m, sizeof(double), cmp_double);
	out->p50_first = m ? first[m / 2] : 0;
	out->p50_last = m ? last[m / 2] : 0;
	double sum = 0, lo = 1e30;
	for (int i = 0; i < n; i++) {
		double span = (double)(c->last_ns[i] - c->first_ns[i]) / 1e9;
		double rate = c->count[i] > 1 && span > 0
		                      ? (double)(c->count[i] - 1) / span
		                      : 0;
		sum += rate;
		lo = rate < lo ? rate : lo;
	}
	out->per_sub = sum / n;
	out->per_sub_min = lo;
	out->pub_rate = c->pub_s > 0 ? (double)c->sent / c->pub_s : 0;
	out->cpu_ns = c->sent ? c->pub_cpu_s * 1e9 / (double)c->sent : 0;
}

static void
run_cell(const struct bench_ps_row *row, const char *tmpdir, size_t size,
         int nsubs, int quick, struct cell *out)
{
	struct bench_ps_env e;
	memset(&e, 0, sizeof(e));
	memset(out, 0, sizeof(*out));
	snprintf(e.dir, sizeof(e.dir), "%s", tmpdir);
	snprintf(e.token, sizeof(e.token), "ipcbench-ps-%d-%s", (int)getpid(),
	         row->name);
	e.port = bench_free_port();
	e.size = size;
	e.nsubs = nsubs;
	if (row->ops->prepare != NULL &&
	    (out->status = row->ops->prepare(&e, out->why)) != BENCH_OK) {
		return;
	}
	struct ctl *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
	                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED) {
		out->status = bench_why(out->why, BENCH_FAIL, "mmap: %s",
		                        strerror(errno));
		return;
	}
	memset(c, 0, sizeof(*c));
	c->status = -1;
	pid_t pid[MAXSUBS + 1];
	int np = 0;
	fflush(NULL);
	for (int i = 0; i <= nsubs; i++) {
		e.index = i;
		pid_t p = fork();
		if (p == 0) {
			alarm(120);
			int rc = i < nsubs ? sub_main(row, &e, c)
			                   : pub_main(row, &e, c,
			                              quick ? 50 : 200,
			                              quick ? 0.2 : 1.0);
			_exit(rc);
		}
		if (p > 0) {
			pid[np++] = p;
		}
	}
	int bad = np != nsubs + 1;
	for (int i = 0; i < np; i++) {
		int st;
		if (waitpid(pid[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			bad = 1;
			if (i < nsubs || c->status < 0) {
				/* a subscriber failed: end the cell */
				atomic_store(&c->phase, PH_END);
			}
		}
	}
	if (c->status == BENCH_OK && !bad) {
		out->status = BENCH_OK;
		summarise(c, nsubs, out);
	} else {
		out->status =
		        c->status == BENCH_SKIP ? BENCH_SKIP : BENCH_FAIL;
		snprintf(out->why, sizeof(out->why), "%s",
		         c->why[0] ? c->why : "a process failed (see stderr)");
	}
	munmap(c, sizeof(*c));
	if (row->ops->cleanup != NULL) {
		row->ops->cleanup(&e);
	}
}

/* ----------------------------------------------------------- report -- */

static void
fmt_ns(char *b, size_t n, double ns)
{
	if (ns >= 1e6) {
		snprintf(b, n, "%.2f ms", ns / 1e6);
	} else {
		snprintf(b, n, "%.1f µs", ns / 1e3);
	}
}

/* Is name in the comma-separated list (NULL: everything is)? */
static int
listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p != NULL; p = strchr(p, ',')) {
		p += *p == ',';
		if (strncmp(p, name, n) == 0 &&
		    (p[n] == ',' || p[n] == '\0')) {
			return 1;
		}
	}
	return list == NULL;
}

int
bench_pubsub_run(const char *tmpdir, int quick, const char *only,
                 double one_to_one_64, double one_to_one_64_copy)
{
	static const size_t sizes[] = {64, 1u << 20};
	static const int subs[] = {1, 4, 16};
	const struct bench_ps_row *tabs[] = {libipc_rows, bench_ps_peer_rows};
	int rc = 0;
	double shm4 = 0, peer4[8] = {0}, cpu1m[2] = {0}, rate1m[2] = {0};
	const char *peer_name[8] = {0};
	int npeer = 0;
	printf("\n## Publish/subscribe (ipc-bench --pubsub)\n\n"
	       "| transport | size | subs | delivered msg/s per sub (least) "
	       "| publisher msg/s | publisher CPU per msg | p50 first sub "
	       "| p50 last sub | notes |\n"
	       "|---|---|---|---|---|---|---|---|---|\n");
	for (size_t t = 0; t < 2; t++) {
		for (const struct bench_ps_row *row = tabs[t]; row->name;
		     row++) {
			if (!listed(only, row->name)) {
				continue;
			}
			for (size_t s = 0; s < 2; s++) {
				for (size_t k = 0; k < 3; k++) {
					struct cell c;
					if (row->ops == NULL) {
						c.status = BENCH_SKIP;
						snprintf(c.why, sizeof(c.why),
						         "%s", row->skip);
					} else {
						run_cell(row, tmpdir, sizes[s],
						         subs[k], quick, &c);
					}
					const char *sz = s ? "1 MiB" : "64 B";
					if (c.status != BENCH_OK) {
						printf("| %s | %s | %d | %s: "
						       "%s "
						       "| | | | | |\n",
						       row->name, sz, subs[k],
						       c.status == BENCH_SKIP
						               ? "skipped"
						               : "FAILED",
						       c.why);
						rc |= c.status == BENCH_FAIL;
						if (row->ops == NULL ||
						    c.status == BENCH_SKIP) {
							break;
						}
						continue;
					}
					char f[32], l[32], cpu[32];
					fmt_ns(f, sizeof(f), c.p50_first);
					fmt_ns(l, sizeof(l), c.p50_last);
					fmt_ns(cpu, sizeof(cpu), c.cpu_ns);
					printf("| %s | %s | %d | %.0f (%.0f) "
					       "| "
					       "%.0f | %s | %s | %s | %s |\n",
					       row->name, sz, subs[k],
					       c.per_sub, c.per_sub_min,
					       c.pub_rate, cpu, f, l,
					       row->notes);
					fflush(stdout);
					if (s == 0 && subs[k] == 4) {
						if (t == 0 &&
						    strcmp(row->name, "shm") ==
						            0) {
							shm4 = c.per_sub;
						} else if (t == 1 &&
						           npeer < 8) {
							peer_name[npeer] =
							        row->name;
							peer4[npeer++] =
							        c.per_sub;
						}
					}
					if (t == 0 && s == 1 &&
					    strcmp(row->name, "shm-drop") ==
					            0 &&
					    subs[k] != 4) {
						cpu1m[k == 2] = c.cpu_ns;
						rate1m[k == 2] = c.pub_rate;
					}
				}
			}
		}
	}
	printf("\nRatios (same run):\n");
	if (shm4 > 0 && one_to_one_64 > 0) {
		printf("- shm fan-out, 4 subscribers, 64 B: %.2fx the "
		       "one-to-one shm-zc msg/s per subscriber (%.0f vs "
		       "%.0f)\n",
		       shm4 / one_to_one_64, shm4, one_to_one_64);
	}
	if (shm4 > 0 && one_to_one_64_copy > 0) {
		printf("- shm fan-out, 4 subscribers, 64 B: %.2fx the "
		       "one-to-one shm (send/recv) msg/s\n",
		       shm4 / one_to_one_64_copy);
	}
	for (int i = 0; i < npeer && shm4 > 0; i++) {
		if (peer4[i] > 0) {
			printf("- shm fan-out vs %s, 4 subscribers, 64 B: "
			       "%.2fx per subscriber\n",
			       peer_name[i], shm4 / peer4[i]);
		}
	}
	if (cpu1m[0] > 0 && cpu1m[1] > 0) {
		printf("- shm-drop 1 MiB, the publisher's cost: %.0f msg/s "
		       "and "
		       "%.1f µs CPU per message with 1 subscriber, %.0f msg/s "
		       "and %.1f µs with 16 (CPU %.2fx)\n",
		       rate1m[0], cpu1m[0] / 1e3, rate1m[1], cpu1m[1] / 1e3,
		       cpu1m[1] / cpu1m[0]);
	}
	return rc;
}
