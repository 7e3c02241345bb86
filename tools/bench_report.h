/*
 * ipc-bench's results and the files it writes from them: JSON, CSV, an
 * SVG chart, and the comparison of methods.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_BENCH_REPORT_H
#define IPC_BENCH_REPORT_H

#include <stdio.h>

#include "bench.h"

#define BENCH_MAXROUNDS 9

/* A figure over the passes: the median and the spread. */
struct bench_fig {
	double med, min, max;
};

struct bench_entry {
	const struct bench_row *row;
	struct bench_result res; /* the medians of the rounds */
	struct bench_result round[BENCH_MAXROUNDS];
	unsigned nrounds; /* rounds that ran */
	int ran;
	/* When res.status is BENCH_OK: */
	struct bench_fig p50, p99, tput[BENCH_MAXSIZES]; /* msg/s */
};

/* How the run was made, for the files' headers. */
struct bench_run {
	const char *machine; /* "Linux 6.1 x86_64, 2 online CPUs, ..." */
	unsigned rounds;
	int quick, touch;
	int cpu[2];
};

/* (max - min) / median of a figure, 0 when it has one pass. */
double bench_spread(const struct bench_fig *f);
/* The largest spread of an entry's figures. */
double bench_entry_spread(const struct bench_entry *e);
#define BENCH_NOISY 0.25

int bench_write_json(FILE *f, const struct bench_run *run,
                     const struct bench_entry *e, size_t n);
int bench_write_csv(FILE *f, const struct bench_entry *e, size_t n);
int bench_write_svg(FILE *f, const struct bench_run *run,
                    const struct bench_entry *e, size_t n);
/* The methods compared on OS support, security, latency, complexity,
 * efficiency and usability (Markdown, to stdout). */
void bench_print_compare(const struct bench_entry *e, size_t n);

#endif /* IPC_BENCH_REPORT_H */
