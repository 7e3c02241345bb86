/*
 * ipc-bench: every libipc transport side by side with the same mechanism
 * written by hand and with other messaging libraries, in one run, between
 * two processes pinned to different CPUs.  Prints one Markdown table and
 * the ratios the README quotes.
 *
 *   ipc-bench [--quick] [--rounds N] [--only ROW,ROW...] [--sizes ...]
 *             [--json F] [--csv F] [--svg F] [--list]
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pubsub.h"
#include "bench_report.h"

static const struct bench_row *const tables[] = {
        bench_libipc_rows,
        bench_raw_rows,
        bench_peer_rows,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

#define MAXROUNDS BENCH_MAXROUNDS

static struct bench_entry *entries;
static size_t nentries;

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: ipc-bench [--quick] [--rounds N] [--touch] "
	        "[--only ROW,ROW...] [--sizes S,S...] [--pubsub[=ROWS]]\n"
	        "                 [--json FILE] [--csv FILE] [--svg FILE] "
	        "[--list]\n"
	        "  --quick   a short run (a smoke test; figures are rough)\n"
	        "  --rounds  passes over all rows, 1 to 9 (default 3, or 1 "
	        "with --quick)\n"
	        "  --touch   senders write every payload byte, receivers "
	        "read them all\n"
	        "  --only    run only these rows (names as --list shows)\n"
	        "  --pubsub[=ROW,ROW...]  the publish/subscribe section: 1, 4 "
	        "and 16\n"
	        "            subscriber processes, 64 B and 1 MiB (alone, or "
	        "after the\n"
	        "            --only rows); ROWs: shm,unix,tcp,zmq-ipc,nng-ipc,"
	        "iceoryx\n"
	        "  --sizes   throughput message sizes, up to 8, with k or M "
	        "(default 64,64k,1M)\n"
	        "  --json    also write the results as JSON to FILE\n"
	        "  --csv     also write them as CSV (one line per figure)\n"
	        "  --svg     also draw latency and throughput as an SVG "
	        "chart\n"
	        "  --list    list the rows and whether each is built\n");
}

static int
collect_rows(void)
{
	size_t n = 0;
	for (size_t t = 0; t < NTABLES; t++) {
		for (const struct bench_row *r = tables[t]; r->name; r++) {
			n++;
		}
	}
	entries = calloc(n, sizeof(*entries));
	if (entries == NULL) {
		return -1;
	}
	for (size_t t = 0; t < NTABLES; t++) {
		for (const struct bench_row *r = tables[t]; r->name; r++) {
			entries[nentries++].row = r;
		}
	}
	return 0;
}

static struct bench_entry *
find(const char *name)
{
	for (size_t i = 0; i < nentries; i++) {
		if (strcmp(entries[i].row->name, name) == 0) {
			return &entries[i];
		}
	}
	return NULL;
}

/* Mark the rows named in list (comma-separated) to run; 0 or -1 with a
 * message for an unknown name. */
static int
select_rows(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	if (copy == NULL) {
		return -1;
	}
	int rc = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct bench_entry *e = find(tok);
		if (e == NULL) {
			fprintf(stderr,
			        "ipc-bench: no row named '%s' (see --list)\n",
			        tok);
			rc = -1;
			continue;
		}
		e->ran = 1;
	}
	free(copy);
	return rc;
}

static void
list_rows(void)
{
	printf("%-16s %-7s %s\n", "row", "group", "status / what it is");
	for (size_t i = 0; i < nentries; i++) {
		const struct bench_row *r = entries[i].row;
		if (r->ops == NULL) {
			printf("%-16s %-7s skipped: %s\n", r->name, r->group,
			       r->skip);
		} else {
			printf("%-16s %-7s %s\n", r->name, r->group, r->notes);
		}
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of n values (n <= MAXROUNDS). */
static double
median(const double *v, unsigned n)
{
	double t[MAXROUNDS];
	memcpy(t, v, n * sizeof(double));
	qsort(t, n, sizeof(double), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* The median, least and greatest of n values (n <= MAXROUNDS). */
static struct bench_fig
figure(const double *v, unsigned n)
{
	struct bench_fig f = {median(v, n), v[0], v[0]};
	for (unsigned r = 1; r < n; r++) {
		f.min = v[r] < f.min ? v[r] : f.min;
		f.max = v[r] > f.max ? v[r] : f.max;
	}
	return f;
}

/* e->res from the rounds: the first round that did not succeed, or the
 * median of each figure, with its spread in e's figures. */
static void
merge_rounds(struct bench_entry *e, unsigned n)
{
	double v[MAXROUNDS];
	if (n == 0) {
		e->res.status = BENCH_FAIL;
		snprintf(e->res.why, sizeof(e->res.why), "interrupted");
		return;
	}
	for (unsigned r = 0; r < n; r++) {
		if (e->round[r].status != BENCH_OK) {
			e->res = e->round[r];
			return;
		}
	}
	e->res = e->round[0];
	for (unsigned r = 0; r < n; r++) {
		v[r] = e->round[r].p50_ns;
	}
	e->p50 = figure(v, n);
	e->res.p50_ns = e->p50.med;
	for (unsigned r = 0; r < n; r++) {
		v[r] = e->round[r].p99_ns;
	}
	e->p99 = figure(v, n);
	e->res.p99_ns = e->p99.med;
	for (int k = 0; k < bench_nsizes; k++) {
		if (e->res.cell[k] != BENCH_CELL_OK) {
			continue;
		}
		for (unsigned r = 0; r < n; r++) {
			v[r] = e->round[r].msgs_s[k];
		}
		e->tput[k] = figure(v, n);
		e->res.msgs_s[k] = e->tput[k].med;
		for (unsigned r = 0; r < n; r++) {
			v[r] = e->round[r].received[k];
		}
		e->res.received[k] = median(v, n);
	}
}

/* ------------------------------------------------------------ output -- */

static void
fmt_us(char *buf, size_t n, double ns)
{
	if (ns < 10000) {
		snprintf(buf, n, "%.2f", ns / 1000);
	} else {
		snprintf(buf, n, "%.1f", ns / 1000);
	}
}

/* 1234567 -> "1,234,567" */
static void
fmt_count(char *buf, size_t n, double v)
{
	char digits[32], out[48];
	snprintf(digits, sizeof(digits), "%.0f", v);
	size_t len = strlen(digits), o = 0;
	for (size_t i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0) {
			out[o++] = ',';
		}
		out[o++] = digits[i];
	}
	out[o] = '\0';
	snprintf(buf, n, "%s", out);
}

/* Small messages are counted in messages, large ones in bytes. */
static int
counts_messages(int k)
{
	return bench_sizes[k] < 4096;
}

static void
fmt_size(char *buf, size_t n, size_t size)
{
	if (size >= 1024 * 1024 && size % (1024 * 1024) == 0) {
		snprintf(buf, n, "%zu MiB", size / (1024 * 1024));
	} else if (size >= 1024 && size % 1024 == 0) {
		snprintf(buf, n, "%zu KiB", size / 1024);
	} else {
		snprintf(buf, n, "%zu B", size);
	}
}

static void
fmt_tput(char *buf, size_t n, double msgs_s, int k)
{
	if (counts_messages(k)) {
		fmt_count(buf, n, msgs_s);
	} else {
		snprintf(buf, n, "%.0f",
		         msgs_s * (double)bench_sizes[k] / 1e6);
	}
}

static void
fmt_cell(char *buf, size_t n, const struct bench_entry *e, int k)
{
	const struct bench_result *r = &e->res;
	if (r->status != BENCH_OK || r->cell[k] == BENCH_CELL_NONE) {
		snprintf(buf, n, "-");
	} else if (r->cell[k] == BENCH_CELL_NA) {
		snprintf(buf, n, "n/a");
	} else {
		fmt_tput(buf, n, r->msgs_s[k], k);
	}
}

/* The spread of a row's figures over the passes, as a note. */
static void
fmt_spread(char *buf, size_t n, const struct bench_entry *e)
{
	buf[0] = '\0';
	if (e->res.status != BENCH_OK || e->nrounds < 2) {
		return;
	}
	char a[32], b[32];
	fmt_us(a, sizeof a, e->p50.min);
	fmt_us(b, sizeof b, e->p50.max);
	size_t o = (size_t)snprintf(buf, n, "spread: p50 %s..%s", a, b);
	for (int k = 0; k < bench_nsizes && o < n; k++) {
		if (e->res.cell[k] != BENCH_CELL_OK) {
			continue;
		}
		fmt_tput(a, sizeof a, e->tput[k].min, k);
		fmt_tput(b, sizeof b, e->tput[k].max, k);
		o += (size_t)snprintf(buf + o, n - o, ", %zu B %s..%s",
		                      bench_sizes[k], a, b);
	}
	if (o < n && bench_entry_spread(e) > BENCH_NOISY) {
		snprintf(buf + o, n - o, "; NOISY (spread over %.0f%%)",
		         BENCH_NOISY * 100);
	}
}

/* Pipes would break the table. */
static void
clean_text(char *s)
{
	for (; *s; s++) {
		if (*s == '|' || *s == '\n') {
			*s = '/';
		}
	}
}

static void
print_table(void)
{
	printf("| transport | p50 µs | p99 µs |");
	for (int k = 0; k < bench_nsizes; k++) {
		char sz[32];
		fmt_size(sz, sizeof sz, bench_sizes[k]);
		printf(" %s %s |", sz, counts_messages(k) ? "msg/s" : "MB/s");
	}
	printf(" notes |\n|---|--:|--:|");
	for (int k = 0; k < bench_nsizes; k++) {
		printf("--:|");
	}
	printf("---|\n");
	for (size_t i = 0; i < nentries; i++) {
		struct bench_entry *e = &entries[i];
		const struct bench_result *r = &e->res;
		char p50[32] = "-", p99[32] = "-", c[48];
		char notes[BENCH_WHY + 1024], spread[512];
		if (!e->ran) {
			continue;
		}
		if (r->status == BENCH_OK) {
			fmt_us(p50, sizeof(p50), r->p50_ns);
			fmt_us(p99, sizeof(p99), r->p99_ns);
		}
		printf("| %s | %s | %s |", e->row->name, p50, p99);
		for (int k = 0; k < bench_nsizes; k++) {
			fmt_cell(c, sizeof(c), e, k);
			printf(" %s |", c);
		}
		if (r->status == BENCH_SKIP) {
			snprintf(notes, sizeof(notes), "skipped: %s", r->why);
		} else if (r->status == BENCH_FAIL) {
			snprintf(notes, sizeof(notes), "failed: %s", r->why);
		} else if (e->row->flags & BENCH_LOSSY) {
			size_t o = (size_t)snprintf(
			        notes, sizeof(notes),
			        "%s; received:", e->row->notes);
			for (int k = 0; k < bench_nsizes; k++) {
				if (r->cell[k] == BENCH_CELL_OK &&
				    o < sizeof(notes)) {
					o += (size_t)snprintf(
					        notes + o, sizeof(notes) - o,
					        " %zu B %.0f%%",
					        bench_sizes[k],
					        r->received[k] * 100);
				}
			}
		} else {
			snprintf(notes, sizeof(notes), "%s", e->row->notes);
		}
		fmt_spread(spread, sizeof spread, e);
		if (spread[0] != '\0') {
			size_t o = strlen(notes);
			snprintf(notes + o, sizeof(notes) - o, "; %s", spread);
		}
		clean_text(notes);
		printf(" %s |\n", notes);
	}
}

/* ------------------------------------------------------------ ratios -- */

enum metric { M_P50, M_MSGS64, M_MBS64K, M_MBS1M };

struct ratio {
	const char *num, *den;
	enum metric m;
	int at_most; /* 1: value <= target; 0: value >= target */
	double target;
};

/* Each driver against the same mechanism used raw (its own table). */
static const struct {
	const char *lib, *raw;
} raw_pairs[] = {
        {"unix", "raw-unix"},
        {"unix+seqpacket", "raw-unix+seqpacket"},
        {"unix+dgram", "raw-unix+dgram"},
        {"tcp", "raw-tcp"},
        {"udp", "raw-udp"},
        {"pipe", "raw-pipe"},
        {"fifo", "raw-fifo"},
        {"mq", "raw-mq"},
        {"sysvmq", "raw-sysvmq"},
        {"shm", "raw-futex-ring"},
        {"shm-busy", "raw-busy-ring"},
        {"mmap", "raw-futex-ring"},
        {"sysvshm", "raw-sysvshm"},
        {"signal", "raw-signal"},
};
#define RAW_P50_MAX  1.10 /* driver p50 at most this times raw's */
#define RAW_TPUT_MIN 0.90 /* driver throughput at least this times raw's */

static const struct ratio ratios[] = {
        {"inproc", "shm", M_P50, 1, 1},   {"inproc", "shm", M_MSGS64, 0, 1},
        {"shm", "unix", M_MSGS64, 0, 10}, {"shm-zc", "unix", M_MBS1M, 0, 5},
        {"shm", "iceoryx", M_P50, 1, 1},  {"shm", "iceoryx", M_MSGS64, 0, 1},
        {"shm", "zmq-ipc", M_P50, 1, 1},  {"shm", "zmq-ipc", M_MSGS64, 0, 1},
        {"shm", "nng-ipc", M_P50, 1, 1},  {"shm", "nng-ipc", M_MSGS64, 0, 1},
};

static const char *const metric_name[] = {
        "p50 latency",
        "64 B msg/s",
        "64 KiB MB/s",
        "1 MiB MB/s",
};

/* The figure, or a reason it is missing. */
static int
metric(const char *row, enum metric m, double *v, const char **why)
{
	struct bench_entry *e = find(row);
	if (e == NULL || !e->ran) {
		*why = "not run";
		return -1;
	}
	const struct bench_result *r = &e->res;
	if (r->status == BENCH_SKIP) {
		*why = "skipped";
		return -1;
	}
	if (r->status != BENCH_OK) {
		*why = "failed";
		return -1;
	}
	switch (m) {
	case M_P50:
		*v = r->p50_ns;
		return 0;
	case M_MSGS64:
	case M_MBS64K:
	case M_MBS1M: {
		size_t want = m == M_MSGS64   ? 64
		              : m == M_MBS64K ? 64 * 1024
		                              : 1024 * 1024;
		for (int k = 0; k < bench_nsizes; k++) {
			if (bench_sizes[k] != want) {
				continue;
			}
			if (r->cell[k] != BENCH_CELL_OK) {
				*why = "n/a";
				return -1;
			}
			*v = m == M_MSGS64 ? r->msgs_s[k]
			                   : r->msgs_s[k] * (double)want / 1e6;
			return 0;
		}
		*why = "size not measured (--sizes)";
		return -1;
	}
	}
	*why = "n/a";
	return -1;
}

static int
both_ran(const char *num, const char *den)
{
	struct bench_entry *en = find(num), *ed = find(den);
	return en != NULL && ed != NULL && en->ran && ed->ran;
}

static int
ratio_ran(const struct ratio *q)
{
	return both_ran(q->num, q->den);
}

/* A ratio as printed: 0.00x says nothing, so below 0.01 how many times
 * faster. */
static void
fmt_ratio(char *val, size_t n, double v)
{
	if (v < 0.01 && v > 0) {
		snprintf(val, n, "%.0fx faster", 1 / v);
	} else if (v >= 100) {
		snprintf(val, n, "%.0fx", v);
	} else {
		snprintf(val, n, "%.2fx", v);
	}
}

/* One cell of the raw table: "1.05x", "0.80x (NOT met)" or "n/a". */
static int
raw_cell(const char *lib, const char *raw, enum metric m, char *out, size_t n)
{
	double a, b;
	const char *wa = NULL, *wb = NULL;
	if (metric(lib, m, &a, &wa) < 0 || metric(raw, m, &b, &wb) < 0 ||
	    !(b > 0)) {
		snprintf(out, n, "n/a");
		return 0;
	}
	double v = a / b;
	int ok = m == M_P50 ? v <= RAW_P50_MAX : v >= RAW_TPUT_MIN;
	fmt_ratio(out, n, v);
	if (!ok) {
		size_t o = strlen(out);
		snprintf(out + o, n - o, " (NOT met)");
	}
	return ok ? 0 : 1;
}

static void
print_raw_ratios(void)
{
	static const enum metric ms[] = {M_P50, M_MSGS64, M_MBS64K, M_MBS1M};
	size_t np = sizeof(raw_pairs) / sizeof(raw_pairs[0]), shown = 0;
	for (size_t i = 0; i < np; i++) {
		shown += (size_t)both_ran(raw_pairs[i].lib, raw_pairs[i].raw);
	}
	if (shown == 0) {
		return;
	}
	printf("\n### Every driver against its raw row (same run)\n\n"
	       "Driver / raw: p50 at most %.2fx, throughput at least %.2fx "
	       "(n/a: a row does not carry that size).\n\n",
	       RAW_P50_MAX, RAW_TPUT_MIN);
	printf("| driver / raw row | p50 | 64 B msg/s | 64 KiB MB/s | "
	       "1 MiB MB/s | targets |\n|---|--:|--:|--:|--:|---|\n");
	for (size_t i = 0; i < np; i++) {
		if (!both_ran(raw_pairs[i].lib, raw_pairs[i].raw)) {
			continue;
		}
		int missed = 0;
		printf("| %s / %s |", raw_pairs[i].lib, raw_pairs[i].raw);
		for (size_t k = 0; k < sizeof(ms) / sizeof(ms[0]); k++) {
			char c[48];
			missed += raw_cell(raw_pairs[i].lib, raw_pairs[i].raw,
			                   ms[k], c, sizeof(c));
			printf(" %s |", c);
		}
		printf(" %s |\n", missed ? "NOT met" : "met");
	}
}

static void
print_ratios(void)
{
	size_t nr = sizeof(ratios) / sizeof(ratios[0]), shown = 0;
	for (size_t i = 0; i < nr; i++) {
		shown += (size_t)ratio_ran(&ratios[i]);
	}
	printf("\n### Ratios (same run)\n\n");
	if (shown == 0) {
		printf("None: no ratio has both of its rows in this run.\n");
		return;
	}
	printf("| ratio | value | target | result |\n");
	printf("|---|--:|--:|---|\n");
	for (size_t i = 0; i < nr; i++) {
		const struct ratio *q = &ratios[i];
		double a, b;
		const char *wa = NULL, *wb = NULL;
		/* Only ratios whose two rows were asked for. */
		if (!ratio_ran(q)) {
			continue;
		}
		int ha = metric(q->num, q->m, &a, &wa) == 0;
		int hb = metric(q->den, q->m, &b, &wb) == 0;
		printf("| %s / %s, %s | ", q->num, q->den, metric_name[q->m]);
		if (ha && hb && b > 0) {
			double v = a / b;
			int ok = q->at_most ? v <= q->target : v >= q->target;
			char val[48];
			fmt_ratio(val, sizeof val, v);
			printf("%s | %s %.2fx | %s |\n", val,
			       q->at_most ? "<=" : ">=", q->target,
			       ok ? "met" : "NOT met");
		} else {
			printf("- | %s %.2fx | n/a: %s %s |\n",
			       q->at_most ? "<=" : ">=", q->target,
			       ha ? q->den : q->num, ha ? wb : wa);
		}
	}
}

/* --sizes 64,4096,64k,1M: 0, or -1 with a message. */
static int
parse_sizes(const char *list)
{
	int n = 0;
	const char *p = list;
	while (*p != '\0') {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p || errno != 0) {
			break;
		}
		if (*end == 'k' || *end == 'K') {
			v *= 1024;
			end++;
		} else if (*end == 'M') {
			v *= 1024 * 1024;
			end++;
		}
		if (v == 0 || v > BENCH_MAXSIZE || n == BENCH_MAXSIZES ||
		    (*end != ',' && *end != '\0')) {
			break;
		}
		bench_sizes[n++] = (size_t)v;
		p = *end == ',' ? end + 1 : end;
		if (*end == '\0') {
			bench_nsizes = n;
			return 0;
		}
	}
	fprintf(stderr,
	        "ipc-bench: --sizes takes 1 to %d sizes from 1 B to %u MiB, "
	        "comma-separated, with an optional k or M: '%s'\n",
	        BENCH_MAXSIZES, BENCH_MAXSIZE >> 20, list);
	return -1;
}

static FILE *
open_out(const char *path)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "ipc-bench: cannot write %s: %s\n", path,
		        strerror(errno));
	}
	return f;
}

/* Write one output file; 0 or -1 with a message. */
static int
write_out(const char *path, int kind, const struct bench_run *run)
{
	FILE *f = open_out(path);
	if (f == NULL) {
		return -1;
	}
	int rc = kind == 'j'   ? bench_write_json(f, run, entries, nentries)
	         : kind == 'c' ? bench_write_csv(f, entries, nentries)
	                       : bench_write_svg(f, run, entries, nentries);
	if (fclose(f) != 0 || rc < 0) {
		fprintf(stderr, "ipc-bench: writing %s failed\n", path);
		return -1;
	}
	fprintf(stderr, "ipc-bench: wrote %s\n", path);
	return 0;
}

/* "[3/22] unix, about 1 min 20 s left" on a terminal. */
static void
progress(size_t done, size_t total, const char *row, uint64_t t0)
{
	static int tty = -1;
	if (tty < 0) {
		tty = isatty(STDERR_FILENO);
	}
	if (!tty) {
		return;
	}
	char left[48] = "estimating";
	if (done > 0) {
		double spent = (double)(bench_now_ns() - t0) / 1e9;
		double rest = spent / (double)done * (double)(total - done);
		snprintf(left, sizeof left, "about %d min %02d s left",
		         (int)rest / 60, (int)rest % 60);
	}
	fprintf(stderr, "\r\033[K[%zu/%zu] %s, %s", done + 1, total, row,
	        left);
}

/* ------------------------------------------------------------- main -- */

static void
on_signal(int sig)
{
	(void)sig;
	bench_interrupted = 1;
}

static char tmpdir[64];

static void
remove_tmpdir(void)
{
	if (tmpdir[0] != '\0') {
		rmdir(tmpdir);
	}
}

/* A row's 64-byte throughput of this run (0: not run or no such size). */
static double
msgs_64(const char *name)
{
	struct bench_entry *e = find(name);
	if (e == NULL || !e->ran || e->res.status != BENCH_OK) {
		return 0;
	}
	for (int j = 0; j < bench_nsizes; j++) {
		if (bench_sizes[j] == 64 && e->res.cell[j] == BENCH_CELL_OK) {
			return e->res.msgs_s[j];
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	int quick = 0, list = 0, rounds = 0, touch = 0, pubsub = 0;
	const char *pubsub_only = NULL;
	const char *only = NULL, *json = NULL, *csv = NULL, *svg = NULL;
	static const struct option longopts[] = {
	        {"sizes", required_argument, NULL, 's'},
	        {"json", required_argument, NULL, 'J'},
	        {"csv", required_argument, NULL, 'C'},
	        {"svg", required_argument, NULL, 'S'},
	        {"quick", no_argument, NULL, 'q'},
	        {"only", required_argument, NULL, 'o'},
	        {"list", no_argument, NULL, 'l'},
	        {"rounds", required_argument, NULL, 'r'},
	        {"touch", no_argument, NULL, 't'},
	        {"pubsub", optional_argument, NULL, 'P'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "qo:lr:ths:J:C:S:", longopts,
	                        NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = 1;
			break;
		case 'o':
			only = optarg;
			break;
		case 'l':
			list = 1;
			break;
		case 's':
			if (parse_sizes(optarg) < 0) {
				return 2;
			}
			break;
		case 'J':
			json = optarg;
			break;
		case 'C':
			csv = optarg;
			break;
		case 'S':
			svg = optarg;
			break;
		case 't':
			touch = 1;
			break;
		case 'P':
			pubsub = 1;
			pubsub_only = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			if (rounds < 1 || rounds > MAXROUNDS) {
				fprintf(stderr,
				        "ipc-bench: --rounds takes 1 to "
				        "%d\n",
				        MAXROUNDS);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (collect_rows() < 0) {
		fprintf(stderr, "ipc-bench: out of memory\n");
		return 1;
	}
	if (list) {
		list_rows();
		return 0;
	}
	if (only != NULL) {
		if (select_rows(only) < 0) {
			return 2;
		}
	} else if (!pubsub) {
		for (size_t i = 0; i < nentries; i++) {
			entries[i].ran = 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct bench_plan plan;
	if (quick) {
		plan = (struct bench_plan){.pings = 1000,
		                           .ping_warmup = 100,
		                           .stream_s = 0.02,
		                           .warm_s = 0.005,
		                           .reps = 1,
		                           .row_timeout = 20,
		                           .rounds = 1};
	} else {
		/* Three passes over all rows, so that a burst of other work
		 * on the machine lands in one pass of every row rather than
		 * in all of one row. */
		plan = (struct bench_plan){.pings = 10000,
		                           .ping_warmup = 1000,
		                           .stream_s = 0.25,
		                           .warm_s = 0.05,
		                           .reps = 1,
		                           .row_timeout = 60,
		                           .rounds = 3};
	}
	if (rounds > 0) {
		plan.rounds = (unsigned)rounds;
	}
	plan.touch = touch;
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/ipc-bench-XXXXXX",
	         base != NULL && strlen(base) < 40 ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		fprintf(stderr, "ipc-bench: mkdtemp %s: %s\n", tmpdir,
		        strerror(errno));
		return 1;
	}

	int cpu[2];
	bench_pick_cpus(cpu);
	struct utsname u;
	uname(&u);
	printf("## ipc-bench%s\n\n", quick ? " (--quick: rough figures)" : "");
	printf("%s %s %s, %ld online CPUs; A on CPU %d, B on CPU %d. "
	       "Every figure is the median of %u pass%s over all rows. "
	       "One-way latency = ping-pong round trip / 2, %u round trips "
	       "of %d B per pass; throughput = one direction, one %.2f s "
	       "stream per size and pass after a warm-up stream, as the "
	       "receiver counted; MB = 10^6 B. %s Figures are noisy when "
	       "other work shares the CPUs.\n\n",
	       u.sysname, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN),
	       cpu[0], cpu[1], plan.rounds, plan.rounds == 1 ? "" : "es",
	       plan.pings, BENCH_PING_SIZE, plan.stream_s,
	       touch ? "Senders write every payload byte and receivers read "
	               "them all (--touch)."
	             : "Senders write and receivers read only an 8-byte "
	               "sequence number per message: copy rows send a "
	               "pre-filled buffer, zero-copy rows hand over buffers "
	               "without touching the rest (--touch changes that).");
	fflush(stdout);

	int failed = 0;
	size_t total = 0, done = 0;
	for (size_t i = 0; i < nentries; i++) {
		total += entries[i].ran ? plan.rounds : 0;
	}
	uint64_t t0 = bench_now_ns();
	int tty = isatty(STDERR_FILENO);
	for (unsigned r = 0; r < plan.rounds; r++) {
		for (size_t i = 0; i < nentries; i++) {
			struct bench_entry *e = &entries[i];
			if (!e->ran || bench_interrupted ||
			    (r > 0 && e->round[0].status != BENCH_OK)) {
				continue;
			}
			if (tty) {
				progress(done, total, e->row->name, t0);
			} else {
				fprintf(stderr, "ipc-bench: round %u/%u: %s\n",
				        r + 1, plan.rounds, e->row->name);
			}
			done++;
			bench_run_row(e->row, (int)i, &plan, tmpdir,
			              &e->round[r]);
			e->nrounds++;
			if (e->round[r].status == BENCH_FAIL) {
				fprintf(stderr, "ipc-bench: %s failed: %s\n",
				        e->row->name, e->round[r].why);
			}
		}
	}
	for (size_t i = 0; i < nentries; i++) {
		if (entries[i].ran) {
			merge_rounds(&entries[i], entries[i].nrounds);
			failed += entries[i].res.status == BENCH_FAIL;
		}
	}
	if (tty) {
		fprintf(stderr, "\r\033[K");
	}
	size_t nran = 0;
	for (size_t i = 0; i < nentries; i++) {
		nran += entries[i].ran != 0;
	}
	if (nran > 0) {
		print_table();
		print_raw_ratios();
		print_ratios();
		bench_print_compare(entries, nentries);
	}
	fflush(stdout);
	if (pubsub && !bench_interrupted) {
		failed += bench_pubsub_run(tmpdir, quick, pubsub_only,
		                           msgs_64("shm-zc"), msgs_64("shm"));
	}
	remove_tmpdir();
	char machine[512];
	snprintf(machine, sizeof machine,
	         "%s %s %s, %ld online CPUs, A on CPU %d, B on CPU %d%s",
	         u.sysname, u.release, u.machine,
	         sysconf(_SC_NPROCESSORS_ONLN), cpu[0], cpu[1],
	         touch ? ", --touch" : "");
	struct bench_run run = {
	        machine, plan.rounds, quick, touch, {cpu[0], cpu[1]}};
	if ((json != NULL && write_out(json, 'j', &run) < 0) ||
	    (csv != NULL && write_out(csv, 'c', &run) < 0) ||
	    (svg != NULL && write_out(svg, 'S', &run) < 0)) {
		failed++;
	}
	if (bench_interrupted) {
		return 130;
	}
	return failed ? 1 : 0;
}
