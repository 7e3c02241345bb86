/*
 * shm:// under abuse and load: a peer scribbling over the live segment
 * (the rings' headers and records, at random), a two-process stress of
 * 10 million checksummed messages of random lengths (1 million under the
 * sanitizers), and ping-pong in every spin mode.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

/* ------------------------------------------------------------ scribble -- */

/* The mapping of the segment in this process, from /proc/self/maps. */
static unsigned char *
find_segment(size_t *len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned char *found = NULL;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (strstr(line, "libipc-shm:pair") != NULL &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			found = (unsigned char *)lo;
			*len = hi - lo;
			break;
		}
	}
	fclose(f);
	return found;
}

static uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static volatile unsigned sink;

static void
scribble_round(int target_header, uint64_t seed)
{
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:?size=16k&spin=0"), 0);
	pid_t pid = tu_fork_plain();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The peer: sends normally and scribbles over everything,
		 * the rings' headers and records included. */
		ipc_close(a);
		size_t seglen = 0;
		unsigned char *seg = find_segment(&seglen);
		if (seg == NULL) {
			_exit(7);
		}
		uint64_t s = seed;
		unsigned char msg[300];
		memset(msg, 'm', sizeof(msg));
		for (int i = 0; i < 20000; i++) {
			ipc_send(b, msg, xorshift(&s) % sizeof(msg),
			         IPC_NONBLOCK);
			char in[300];
			ipc_recv(b, in, sizeof(in), IPC_NONBLOCK);
			size_t off;
			if (target_header) {
				/* A word of either ring's header. */
				size_t ring = 4096 + (xorshift(&s) & 1) *
				                             (16384 + 4096);
				off = ring + (xorshift(&s) % 640 & ~7ul);
			} else {
				off = 4096 +
				      xorshift(&s) % (seglen - 4096 - 8);
			}
			uint64_t v = xorshift(&s);
			if (xorshift(&s) & 1) {
				v &= 0xffff;
			}
			memcpy(seg + off, &v, 8);
		}
		_exit(0);
	}
	ipc_close(b);
	/* We keep using the channel until it fails; it must fail cleanly
	 * (or the peer leaves), never crash or touch memory outside. */
	unsigned char buf[70000];
	int failed = 0;
	for (int i = 0; i < 1000000 && !failed; i++) {
		ssize_t n = ipc_recv(a, buf, sizeof(buf), IPC_NONBLOCK);
		if (n == -EPROTO || n == -EPIPE) {
			failed = 1;
			break;
		}
		assert_true(n >= 0 || n == -EAGAIN || n == -EMSGSIZE);
		const void *p;
		size_t len;
		int r = ipc_acquire(a, &p, &len, IPC_NONBLOCK);
		if (r == 0) {
			/* Read every byte handed out (ASan checks). */
			unsigned sum = 0;
			for (size_t k = 0; k < len; k++) {
				sum += ((const unsigned char *)p)[k];
			}
			sink = sum;
			ipc_release(a);
		} else if (r == -EPROTO || r == -EPIPE) {
			failed = 1;
		}
		n = ipc_send(a, buf, i % 500, IPC_NONBLOCK);
		assert_true(n >= 0 || n == -EAGAIN || n == -EPROTO ||
		            n == -EPIPE);
		if (n == -EPROTO || n == -EPIPE) {
			failed = 1;
		}
	}
	assert_int_equal(tu_wait_ok(pid, -1), 0);
	/* Whatever is left ends in a clean failure, which stays. */
	ssize_t n;
	do {
		n = ipc_recv(a, buf, sizeof(buf), 0);
	} while (n >= 0);
	assert_true(n == -EPROTO || n == -EPIPE);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), n);
	ipc_close(a);
}

static void
test_scribble(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 6; seed++) {
		scribble_round((int)(seed & 1), seed * 0x9e3779b97f4a7c15ull);
	}
}

/* -------------------------------------------------------------- stress -- */

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

#define STRESS_HDR 16 /* u64 seq, u32 checksum, u32 length */

static size_t
stress_len(uint64_t seq)
{
	uint64_t h = mix(seq);
	if ((h & 1023) == 0) {
		return STRESS_HDR + (size_t)((h >> 10) % 65536);
	}
	return STRESS_HDR + (size_t)((h >> 10) % 113);
}

static uint32_t
checksum(const unsigned char *p, size_t n)
{
	uint32_t a = 1, b = 0;
	for (size_t i = 0; i < n; i++) {
		a = (a + p[i]) % 65521;
		b = (b + a) % 65521;
	}
	return (b << 16) | a;
}

static void
stress_fill(uint64_t seq, unsigned char *p, size_t len)
{
	uint64_t x = mix(seq + 1);
	for (size_t i = STRESS_HDR; i < len; i++) {
		p[i] = (unsigned char)(x >> ((i & 7) * 8));
		if ((i & 7) == 7) {
			x = x * 6364136223846793005ull +
			    1442695040888963407ull;
		}
	}
	uint32_t ck = checksum(p + STRESS_HDR, len - STRESS_HDR);
	uint32_t l32 = (uint32_t)len;
	memcpy(p, &seq, 8);
	memcpy(p + 8, &ck, 4);
	memcpy(p + 12, &l32, 4);
}

static int
stress_check(uint64_t seq, const unsigned char *p, size_t len)
{
	uint64_t s;
	uint32_t ck, l32;
	if (len != stress_len(seq) || len < STRESS_HDR) {
		return 0;
	}
	memcpy(&s, p, 8);
	memcpy(&ck, p + 8, 4);
	memcpy(&l32, p + 12, 4);
	return s == seq && l32 == len &&
	       ck == checksum(p + STRESS_HDR, len - STRESS_HDR);
}

static void
test_stress(void **state)
{
	(void)state;
	/* 10 million messages; 1 million under sanitizers (slower). */
	const uint64_t count = SANITIZED ? 1000000 : 10000000;
	ipc_channel *a, *b;
	assert_int_equal(ipc_pair(&a, &b, "shm:?size=1M"), 0);
	pid_t pid = tu_fork_plain();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_close(a);
		unsigned char *tmp = malloc(STRESS_HDR + 65536);
		if (tmp == NULL) {
			_exit(1);
		}
		for (uint64_t seq = 0; seq < count; seq++) {
			size_t len = stress_len(seq);
			if (seq & 1) {
				void *w;
				if (ipc_reserve(b, len, &w, 0) != 0) {
					_exit(2);
				}
				stress_fill(seq, w, len);
				if (ipc_commit(b, len) != 0) {
					_exit(3);
				}
			} else {
				stress_fill(seq, tmp, len);
				if (ipc_send(b, tmp, len, 0) != (ssize_t)len) {
					_exit(4);
				}
			}
		}
		/* The receiver's verdict comes back the other way. */
		uint64_t verdict[2];
		if (ipc_recv(b, verdict, sizeof(verdict), 0) !=
		    sizeof(verdict)) {
			_exit(5);
		}
		free(tmp);
		ipc_close(b);
		_exit(verdict[0] == count && verdict[1] == 0 ? 0 : 6);
	}
	ipc_close(b);
	unsigned char *buf = malloc(STRESS_HDR + 65536);
	assert_non_null(buf);
	uint64_t got = 0, bad = 0;
	while (got < count) {
		if (got & 1) {
			const void *p;
			size_t len;
			assert_int_equal(ipc_acquire(a, &p, &len, 0), 0);
			bad += !stress_check(got, p, len);
			assert_int_equal(ipc_release(a), 0);
		} else {
			ssize_t n = ipc_recv(a, buf, STRESS_HDR + 65536, 0);
			assert_true(n >= 0);
			bad += !stress_check(got, buf, (size_t)n);
		}
		got++;
	}
	uint64_t verdict[2] = {got, bad};
	assert_int_equal(ipc_send(a, verdict, sizeof(verdict), 0),
	                 sizeof(verdict));
	assert_int_equal(bad, 0);
	assert_int_equal(ipc_recv(a, buf, 16, 0), -EPIPE);
	assert_int_equal(tu_wait_ok(pid, -1), 0);
	free(buf);
	ipc_close(a);
}

static void
test_ping_pong_modes(void **state)
{
	(void)state;
	const char *uris[] = {"shm:?spin=0", "shm:?spin=busy", "shm:"};
	for (size_t u = 0; u < 3; u++) {
		ipc_channel *a, *b;
		assert_int_equal(ipc_pair(&a, &b, uris[u]), 0);
		pid_t pid = tu_fork_plain();
		assert_true(pid >= 0);
		if (pid == 0) {
			ipc_close(a);
			uint64_t v;
			while (ipc_recv(b, &v, sizeof(v), 0) == sizeof(v)) {
				v++;
				if (ipc_send(b, &v, sizeof(v), 0) !=
				    sizeof(v)) {
					_exit(1);
				}
			}
			ipc_close(b);
			_exit(0);
		}
		ipc_close(b);
		uint64_t v = 0;
		for (int i = 0; i < 20000; i++) {
			assert_int_equal(ipc_send(a, &v, sizeof(v), 0),
			                 sizeof(v));
			assert_int_equal(ipc_recv(a, &v, sizeof(v), 0),
			                 sizeof(v));
		}
		assert_int_equal(v, 20000);
		ipc_close(a);
		assert_int_equal(tu_wait_ok(pid, -1), 0);
	}
}

int
main(void)
{
	signal(SIGPIPE, SIG_DFL);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_scribble),
	        cmocka_unit_test(test_ping_pong_modes),
	        cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
