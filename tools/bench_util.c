/*
 * ipc-bench helpers every part of the benchmark uses: the clock, CPU
 * pinning and choice, whole reads and writes on pipes, a free loopback
 * port, and the "why" text of a skipped or failed row.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t
bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
bench_pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return -rc;
}

void
bench_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

int
bench_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
bench_read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			return -EPIPE;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
bench_why(char *why, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, BENCH_WHY, fmt, ap);
	va_end(ap);
	return code;
}

/* A loopback port free for both TCP and UDP right now (0 if none). */
unsigned
bench_free_port(void)
{
	for (int tries = 0; tries < 20; tries++) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		unsigned port = 0;
		if (t >= 0 && u >= 0 &&
		    bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(t, (struct sockaddr *)&sa, &sl) == 0 &&
		    bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			port = ntohs(sa.sin_port);
		}
		if (t >= 0) {
			close(t);
		}
		if (u >= 0) {
			close(u);
		}
		if (port != 0) {
			return port;
		}
	}
	return 0;
}

/* The first two CPUs this process may run on: A on the first, B on the
 * second.  With one CPU both share it. */
void
bench_pick_cpus(int cpu[2])
{
	cpu_set_t set;
	int n = 0;
	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set) < 0) {
		return;
	}
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++) {
		if (CPU_ISSET(c, &set)) {
			cpu[n++] = c;
		}
	}
	if (n == 1) {
		cpu[1] = cpu[0];
	}
}
