/*
 * ipc-bench's output files: --json, --csv, --svg, and the comparison of
 * methods printed after the table.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_report.h"

double
bench_spread(const struct bench_fig *f)
{
	return f->med > 0 ? (f->max - f->min) / f->med : 0;
}

double
bench_entry_spread(const struct bench_entry *e)
{
	double s = bench_spread(&e->p50);
	for (int k = 0; k < bench_nsizes; k++) {
		if (e->res.cell[k] == BENCH_CELL_OK) {
			double t = bench_spread(&e->tput[k]);
			s = t > s ? t : s;
		}
	}
	return s;
}

static const char *
status_name(int status)
{
	return status == BENCH_OK     ? "ok"
	       : status == BENCH_SKIP ? "skipped"
	                              : "failed";
}

/* ------------------------------------------------------------- JSON -- */

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
		} else if (c < 0x20) {
			fprintf(f, "\\u%04x", c);
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

static void
json_fig(FILE *f, const char *key, const struct bench_fig *x)
{
	fprintf(f, "\"%s\": {\"median\": %.6g, \"min\": %.6g, \"max\": %.6g}",
	        key, x->med, x->min, x->max);
}

int
bench_write_json(FILE *f, const struct bench_run *run,
                 const struct bench_entry *e, size_t n)
{
	fprintf(f, "{\n  \"tool\": \"ipc-bench\",\n  \"machine\": ");
	json_str(f, run->machine);
	fprintf(f,
	        ",\n  \"rounds\": %u,\n  \"quick\": %s,\n  \"touch\": %s,\n"
	        "  \"cpus\": [%d, %d],\n  \"sizes\": [",
	        run->rounds, run->quick ? "true" : "false",
	        run->touch ? "true" : "false", run->cpu[0], run->cpu[1]);
	for (int k = 0; k < bench_nsizes; k++) {
		fprintf(f, "%s%zu", k ? ", " : "", bench_sizes[k]);
	}
	fprintf(f, "],\n  \"units\": {\"latency\": \"ns, one way\", "
	           "\"throughput\": \"messages per second\"},\n"
	           "  \"rows\": [");
	int first = 1;
	for (size_t i = 0; i < n; i++) {
		const struct bench_entry *x = &e[i];
		if (!x->ran) {
			continue;
		}
		fprintf(f, "%s\n    {\"name\": ", first ? "" : ",");
		first = 0;
		json_str(f, x->row->name);
		fprintf(f, ", \"group\": ");
		json_str(f, x->row->group);
		fprintf(f, ", \"notes\": ");
		json_str(f, x->row->notes);
		fprintf(f, ", \"status\": \"%s\"", status_name(x->res.status));
		if (x->res.status != BENCH_OK) {
			fprintf(f, ", \"why\": ");
			json_str(f, x->res.why);
			fprintf(f, "}");
			continue;
		}
		fprintf(f, ", \"lossy\": %s, \"noisy\": %s,\n      ",
		        x->row->flags & BENCH_LOSSY ? "true" : "false",
		        bench_entry_spread(x) > BENCH_NOISY ? "true"
		                                            : "false");
		json_fig(f, "p50_ns", &x->p50);
		fprintf(f, ",\n      ");
		json_fig(f, "p99_ns", &x->p99);
		fprintf(f, ",\n      \"throughput\": [");
		for (int k = 0; k < bench_nsizes; k++) {
			fprintf(f, "%s\n        {\"size\": %zu, ",
			        k ? "," : "", bench_sizes[k]);
			if (x->res.cell[k] != BENCH_CELL_OK) {
				fprintf(f, "\"msgs_s\": null}");
				continue;
			}
			json_fig(f, "msgs_s", &x->tput[k]);
			fprintf(f, ", \"received\": %.4f}",
			        x->res.received[k]);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "\n  ]\n}\n");
	return ferror(f) ? -1 : 0;
}

/* -------------------------------------------------------------- CSV -- */

static void
csv_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s; s++) {
		if (*s == '"') {
			fputc('"', f);
		}
		fputc(*s == '\n' ? ' ' : *s, f);
	}
	fputc('"', f);
}

/* One line per row and figure: tidy data for a spreadsheet or pandas. */
int
bench_write_csv(FILE *f, const struct bench_entry *e, size_t n)
{
	fprintf(f, "row,group,status,metric,size,median,min,max,unit\n");
	for (size_t i = 0; i < n; i++) {
		const struct bench_entry *x = &e[i];
		if (!x->ran) {
			continue;
		}
		if (x->res.status != BENCH_OK) {
			csv_str(f, x->row->name);
			fputc(',', f);
			csv_str(f, x->row->group);
			fprintf(f, ",%s,,,,,,", status_name(x->res.status));
			csv_str(f, x->res.why);
			fputc('\n', f);
			continue;
		}
		const struct {
			const char *metric;
			const struct bench_fig *fig;
		} lat[] = {{"p50_latency", &x->p50}, {"p99_latency", &x->p99}};
		for (int j = 0; j < 2; j++) {
			fprintf(f, "%s,%s,ok,%s,%d,%.6g,%.6g,%.6g,ns\n",
			        x->row->name, x->row->group, lat[j].metric,
			        BENCH_PING_SIZE, lat[j].fig->med,
			        lat[j].fig->min, lat[j].fig->max);
		}
		for (int k = 0; k < bench_nsizes; k++) {
			if (x->res.cell[k] != BENCH_CELL_OK) {
				continue;
			}
			fprintf(f,
			        "%s,%s,ok,throughput,%zu,%.6g,%.6g,%.6g,msg/"
			        "s\n",
			        x->row->name, x->row->group, bench_sizes[k],
			        x->tput[k].med, x->tput[k].min,
			        x->tput[k].max);
		}
	}
	return ferror(f) ? -1 : 0;
}

/* -------------------------------------------------------------- SVG -- */

/* Two horizontal bar charts on log scales, one bar per row that ran:
 * one-way p50 latency (shorter is better) and 64 B throughput (the first
 * size; longer is better), with the spread as a whisker. */

#define SVG_W     900
#define SVG_ROW_H 18
#define SVG_LABEL 150
#define SVG_CHART (SVG_W / 2 - SVG_LABEL - 20)

static const char *
group_color(const char *group)
{
	if (strcmp(group, "libipc") == 0) {
		return "#2b6cb0";
	}
	if (strcmp(group, "raw") == 0) {
		return "#718096";
	}
	return "#c05621";
}

static void
svg_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* x position of v on a log scale [lo, hi] within [x0, x0 + w]. */
static double
logx(double v, double lo, double hi, double x0, double w)
{
	if (v <= lo) {
		return x0;
	}
	if (v >= hi) {
		return x0 + w;
	}
	return x0 + w * (log10(v) - log10(lo)) / (log10(hi) - log10(lo));
}

static void
svg_axis(FILE *f, double lo, double hi, double x0, double y, const char *unit)
{
	for (double d = lo; d <= hi * 1.0001; d *= 10) {
		double x = logx(d, lo, hi, x0, SVG_CHART);
		char label[32];
		if (d >= 1e6) {
			snprintf(label, sizeof label, "%gM", d / 1e6);
		} else if (d >= 1e3) {
			snprintf(label, sizeof label, "%gk", d / 1e3);
		} else {
			snprintf(label, sizeof label, "%g", d);
		}
		fprintf(f,
		        "<line x1='%.1f' y1='40' x2='%.1f' y2='%.1f' "
		        "stroke='#e2e8f0'/>\n"
		        "<text x='%.1f' y='%.1f' font-size='10' "
		        "text-anchor='middle' fill='#4a5568'>%s%s</text>\n",
		        x, x, y, x, y + 12, label, unit);
	}
}

static void
svg_chart(FILE *f, const struct bench_entry *e, size_t n, int which, double x0,
          double y_end, const char *title)
{
	double lo = 1e300, hi = 0;
	for (size_t i = 0; i < n; i++) {
		const struct bench_entry *x = &e[i];
		if (!x->ran || x->res.status != BENCH_OK) {
			continue;
		}
		const struct bench_fig *g = which == 0 ? &x->p50 : &x->tput[0];
		if (which == 1 && x->res.cell[0] != BENCH_CELL_OK) {
			continue;
		}
		double v = which == 0 ? g->min / 1000 : g->min;
		double w = which == 0 ? g->max / 1000 : g->max;
		lo = v > 0 && v < lo ? v : lo;
		hi = w > hi ? w : hi;
	}
	if (hi <= 0) {
		return;
	}
	lo = pow(10, floor(log10(lo)));
	hi = pow(10, ceil(log10(hi)));
	if (hi <= lo) {
		hi = lo * 10;
	}
	fprintf(f, "<text x='%.1f' y='24' font-size='13' font-weight='bold'>",
	        x0 - SVG_LABEL + 10);
	svg_escape(f, title);
	fprintf(f, "</text>\n");
	svg_axis(f, lo, hi, x0, y_end, which == 0 ? " µs" : "");
	double y = 44;
	for (size_t i = 0; i < n; i++) {
		const struct bench_entry *x = &e[i];
		if (!x->ran) {
			continue;
		}
		fprintf(f,
		        "<text x='%.1f' y='%.1f' font-size='11' "
		        "text-anchor='end'>",
		        x0 - 6, y + 12);
		svg_escape(f, x->row->name);
		fprintf(f, "</text>\n");
		const struct bench_fig *g = which == 0 ? &x->p50 : &x->tput[0];
		if (x->res.status != BENCH_OK ||
		    (which == 1 && x->res.cell[0] != BENCH_CELL_OK)) {
			fprintf(f,
			        "<text x='%.1f' y='%.1f' font-size='10' "
			        "fill='#a0aec0'>%s</text>\n",
			        x0 + 4, y + 12,
			        x->res.status == BENCH_OK
			                ? "n/a"
			                : status_name(x->res.status));
			y += SVG_ROW_H;
			continue;
		}
		double scale = which == 0 ? 1000 : 1;
		double xm = logx(g->med / scale, lo, hi, x0, SVG_CHART);
		double xa = logx(g->min / scale, lo, hi, x0, SVG_CHART);
		double xb = logx(g->max / scale, lo, hi, x0, SVG_CHART);
		fprintf(f,
		        "<rect x='%.1f' y='%.1f' width='%.1f' height='12' "
		        "fill='%s'><title>",
		        x0, y + 2, xm - x0 > 1 ? xm - x0 : 1,
		        group_color(x->row->group));
		svg_escape(f, x->row->name);
		if (which == 0) {
			fprintf(f, ": %.3g µs (%.3g..%.3g)</title></rect>\n",
			        g->med / 1000, g->min / 1000, g->max / 1000);
		} else {
			fprintf(f,
			        ": %.4g msg/s (%.4g..%.4g)</title></rect>\n",
			        g->med, g->min, g->max);
		}
		fprintf(f,
		        "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' "
		        "stroke='#1a202c'/>\n",
		        xa, y + 8, xb, y + 8);
		y += SVG_ROW_H;
	}
}

int
bench_write_svg(FILE *f, const struct bench_run *run,
                const struct bench_entry *e, size_t n)
{
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		shown += e[i].ran != 0;
	}
	double y_end = 44 + (double)shown * SVG_ROW_H;
	double h = y_end + 60;
	char t2[64];

	fprintf(f,
	        "<?xml version='1.0' encoding='UTF-8'?>\n"
	        "<svg xmlns='http://www.w3.org/2000/svg' width='%d' "
	        "height='%.0f' viewBox='0 0 %d %.0f' "
	        "font-family='DejaVu Sans, Arial, sans-serif'>\n"
	        "<rect width='100%%' height='100%%' fill='white'/>\n",
	        SVG_W, h, SVG_W, h);
	svg_chart(f, e, n, 0, SVG_LABEL, y_end,
	          "One-way latency, 64 B, p50 (log; shorter is better)");
	snprintf(t2, sizeof t2,
	         "Throughput, %zu B, msg/s (log; longer is "
	         "better)",
	         bench_sizes[0]);
	svg_chart(f, e, n, 1, SVG_W / 2 + SVG_LABEL, y_end, t2);
	fprintf(f,
	        "<text x='10' y='%.0f' font-size='10' fill='#4a5568'>"
	        "ipc-bench, median of %u pass%s; whiskers: min..max. ",
	        y_end + 34, run->rounds, run->rounds == 1 ? "" : "es");
	svg_escape(f, run->machine);
	fprintf(f,
	        "</text>\n"
	        "<text x='10' y='%.0f' font-size='10'>"
	        "<tspan fill='#2b6cb0'>&#9632; libipc</tspan>  "
	        "<tspan fill='#718096'>&#9632; raw mechanism</tspan>  "
	        "<tspan fill='#c05621'>&#9632; other library</tspan>"
	        "</text>\n</svg>\n",
	        y_end + 50);
	return ferror(f) ? -1 : 0;
}

/* ------------------------------------------------ methods compared -- */

/* What the drivers' docs say of each method: where it runs, who may
 * connect, and what it takes to set up.  Latency and efficiency come
 * from the run. */
static const struct method {
	const char *row;
	const char *os;
	const char *security;
	const char *complexity;
	const char *usability;
} methods[] = {
        {"shm", "Linux (memfd, futex)", "peer's uid via SO_PEERCRED; mode=",
         "nothing to set up", "zero-copy, pollable, listener"},
        {"sysvshm", "POSIX/SysV", "object mode bits; key by name",
         "System V limits (shmmax, semmni)", "zero-copy, pollable"},
        {"unix", "POSIX", "file mode of the socket; SO_PEERCRED",
         "a path or abstract name", "listener, pollable, framing=line"},
        {"unix+seqpacket", "Linux", "as unix", "as unix",
         "message boundaries kept by the kernel"},
        {"unix+dgram", "POSIX", "as unix", "as unix", "datagrams"},
        {"tcp", "POSIX, across hosts", "none of its own (network)", "a port",
         "listener, pollable, framing=line"},
        {"udp", "POSIX, across hosts", "none (network); lossy", "a port",
         "datagrams, loss allowed"},
        {"pipe", "POSIX", "inherited descriptors only", "fork",
         "related processes only"},
        {"fifo", "POSIX", "file mode of the FIFOs", "a path",
         "pollable, works with shell tools"},
        {"mq", "Linux, POSIX", "queue mode bits",
         "mqueue limits (msg_max, msgsize_max)",
         "pollable, priorities "
         "unused"},
        {"sysvmq", "POSIX/SysV", "object mode bits; key by name",
         "System V limits (msgmnb)", "pollable through libipc"},
        {"inproc", "any", "one process", "nothing", "threads only"},
        {"signal", "Linux (signalfd, pidfd)",
         "same uid or root (kill "
         "rules)",
         "the signal blocked in every thread", "pollable; small messages"},
        {"dbus", "Linux, BSD (D-Bus)", "bus policy; well-known names",
         "a running bus daemon", "interoperable with D-Bus tools"},
        {"nats", "any, across hosts", "server accounts and TLS",
         "a NATS server or cluster", "reliable with JetStream"},
        {"tls+tcp", "POSIX, across hosts", "TLS 1.3 certificates",
         "certificates and keys", "encrypted tcp"},
        {"mmap", "POSIX", "file mode", "a file path", "durable, zero-copy"},
        {"file", "POSIX", "file mode", "a file path",
         "durable, readable by any tool"},
        {NULL, NULL, NULL, NULL, NULL},
};

static const struct method *
method_of(const char *row)
{
	for (const struct method *m = methods; m->row != NULL; m++) {
		size_t n = strlen(m->row);
		/* "shm-busy", "nats-js": the row's method is its prefix. */
		if (strncmp(row, m->row, n) == 0 &&
		    (row[n] == '\0' || row[n] == '-')) {
			return m;
		}
	}
	return NULL;
}

void
bench_print_compare(const struct bench_entry *e, size_t n)
{
	printf("\n### Methods compared\n\n"
	       "Latency and efficiency are this run's (p50 one-way, and "
	       "64 B messages per second); the other columns are what each "
	       "driver's documentation states.\n\n"
	       "| method | supporting OS | security | latency p50 µs "
	       "| efficiency, 64 B msg/s | complexity | usability |\n"
	       "|---|---|---|--:|--:|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		const struct bench_entry *x = &e[i];
		if (!x->ran || strcmp(x->row->group, "libipc") != 0) {
			continue;
		}
		const struct method *m = method_of(x->row->name);
		char lat[32] = "-", eff[32] = "-";
		if (x->res.status == BENCH_OK) {
			snprintf(lat, sizeof lat, "%.2f", x->p50.med / 1000);
			if (x->res.cell[0] == BENCH_CELL_OK) {
				snprintf(eff, sizeof eff, "%.3g",
				         x->tput[0].med);
			}
		}
		printf("| %s | %s | %s | %s | %s | %s | %s |\n", x->row->name,
		       m ? m->os : "-", m ? m->security : "-", lat, eff,
		       m ? m->complexity : "-", m ? m->usability : "-");
	}
}
