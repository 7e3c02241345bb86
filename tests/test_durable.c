/*
 * Crash tests of the durable drivers (mmap://, file://): what was
 * committed survives the death of the processes, exactly once and in
 * order, and nothing corrupt is ever delivered.
 *
 *   kill_writer   the writer is killed with SIGKILL at random points, 1000
 *                 times over parallel workers; after each kill the reader
 *                 reopens and drains: every message whose send returned is
 *                 there, once, in order, intact (the kill count is
 *                 printed)
 *   kill_both     a message committed before both processes are killed is
 *                 received after both restart; one released before is not
 *                 received again
 *   power_loss    the files are cut at random offsets (and for file://,
 *                 bytes in the tail flipped) while nobody has them open:
 *                 what is delivered afterwards is intact and in order, and
 *                 the channel keeps working
 *
 * Usage: test_durable SCHEME (mmap or file) [KILLS]
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

#define WORKERS 4
#define MAXLEN  300

static const char *scheme = "mmap";
static int kills = 1000;
static char opts[64]; /* per-scheme URI options of the crash runs */

/* --------------------------------------------------------- messages -- */

static uint32_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* Message seq: 8 bytes of seq, then a length and bytes derived from it. */
static size_t
make_msg(unsigned char *buf, uint64_t seq)
{
	size_t len = 8 + mix(seq) % (MAXLEN - 8);
	memcpy(buf, &seq, 8);
	for (size_t i = 8; i < len; i++) {
		buf[i] = (unsigned char)mix(seq * 1000 + i);
	}
	return len;
}

/* The sequence number of an intact message, or -1 if it is corrupt. */
static long long
check_msg(const unsigned char *buf, size_t len)
{
	uint64_t seq;
	unsigned char want[MAXLEN];
	if (len < 8) {
		return -1;
	}
	memcpy(&seq, buf, 8);
	if (make_msg(want, seq) != len || memcmp(want, buf, len) != 0) {
		return -1;
	}
	return (long long)seq;
}

static void
uri_of(char *out, size_t n, const char *dir, const char *extra)
{
	snprintf(out, n, "%s://%s/chan%s%s%s", scheme, dir,
	         opts[0] || extra[0] ? "?" : "", opts,
	         opts[0] && extra[0] ? "&" : "");
	strncat(out, extra, n - strlen(out) - 1);
}

static ipc_channel *
xopen(const char *uri, int flags)
{
	ipc_channel *ch = NULL;
	int r = ipc_open(&ch, uri, flags);
	if (r != 0) {
		fail_msg("ipc_open(%s): %s", uri, ipc_last_error());
	}
	return ch;
}

/* ----------------------------------------------------------- writers -- */

struct wargs {
	const char *uri;
	uint64_t first;
	volatile uint64_t *done; /* shared: seq of the last send returned */
	int zerocopy;
};

static int
writer(void *arg)
{
	struct wargs *w = arg;
	ipc_channel *ch;
	unsigned char buf[MAXLEN];
	if (ipc_open(&ch, w->uri, IPC_CREATE) != 0) {
		fprintf(stderr, "writer: %s\n", ipc_last_error());
		return 3;
	}
	for (uint64_t seq = w->first;; seq++) {
		size_t len = make_msg(buf, seq);
		if (w->zerocopy) {
			void *p;
			int r = ipc_reserve(ch, len, &p, 0);
			if (r != 0) {
				fprintf(stderr, "writer: reserve %llu: %s\n",
				        (unsigned long long)seq,
				        ipc_last_error());
				return 4;
			}
			memcpy(p, buf, len);
			if ((r = ipc_commit(ch, len)) != 0) {
				fprintf(stderr, "writer: commit %llu: %s\n",
				        (unsigned long long)seq,
				        ipc_last_error());
				return 5;
			}
		} else {
			ssize_t n = ipc_send(ch, buf, len, 0);
			if (n != (ssize_t)len) {
				fprintf(stderr, "writer: send %llu: %zd: %s\n",
				        (unsigned long long)seq, n,
				        ipc_last_error());
				return 6;
			}
		}
		*w->done = seq;
		if (seq - w->first > 3000) {
			pause(); /* enough for one run: wait for the kill */
		}
	}
}

/* Drain ch without waiting; check each message follows *next. */
static int
drain(ipc_channel *ch, uint64_t *next, int gap_ok, long *got)
{
	unsigned char buf[MAXLEN];
	for (;;) {
		ssize_t n = ipc_recv(ch, buf, sizeof(buf), IPC_NONBLOCK);
		if (n == -EAGAIN || n == -EPIPE) {
			return 0;
		}
		if (n < 0) {
			fprintf(stderr, "recv: %s\n", ipc_last_error());
			return -1;
		}
		long long seq = check_msg(buf, (size_t)n);
		if (seq < 0) {
			fprintf(stderr, "a corrupt message of %zd bytes\n", n);
			return -1;
		}
		if ((uint64_t)seq != *next &&
		    !(gap_ok && (uint64_t)seq > *next)) {
			fprintf(stderr, "got message %lld, want %llu\n", seq,
			        (unsigned long long)*next);
			return -1;
		}
		*next = (uint64_t)seq + 1;
		(*got)++;
	}
}

/* ------------------------------------------------------- kill_writer -- */

struct worker {
	char dir[96];
	int runs;
	unsigned seed;
	long kills, msgs;
};

static int
worker_main(void *arg)
{
	struct worker *wk = arg;
	char uri[300];
	uri_of(uri, sizeof(uri), wk->dir, "");
	volatile uint64_t *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (done == MAP_FAILED) {
		return 2;
	}
	/* The reader side opens once, so that the writer may send. */
	ipc_channel *rd = NULL, *wr = NULL;
	if (ipc_open(&wr, uri, IPC_CREATE) != 0 ||
	    ipc_open(&rd, uri, 0) != 0) {
		fprintf(stderr, "worker: %s\n", ipc_last_error());
		return 2;
	}
	ipc_close(wr);
	ipc_close(rd);
	uint64_t next = 1;
	long msgs = 0;
	for (int run = 0; run < wk->runs; run++) {
		*done = next - 1;
		struct wargs w = {.uri = uri,
		                  .first = next,
		                  .done = done,
		                  .zerocopy = run & 1};
		pid_t pid = tu_fork(writer, &w, 30);
		if (pid < 0) {
			return 2;
		}
		/* Half the runs read while the writer writes. */
		rd = NULL;
		if (run & 2) {
			if (ipc_open(&rd, uri, 0) != 0) {
				return 2;
			}
		}
		unsigned us = (unsigned)rand_r(&wk->seed) % 5000;
		if (rd != NULL) {
			double end = tu_now() + us / 1e6;
			while (tu_now() < end) {
				if (drain(rd, &next, 0, &msgs) != 0) {
					return 1;
				}
			}
		} else {
			usleep(us);
		}
		kill(pid, SIGKILL);
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st)) {
			fprintf(stderr, "writer ended by itself: %d\n", st);
			return 1;
		}
		wk->kills++;
		/* The reader restarts (or starts) and drains. */
		if (rd != NULL) {
			ipc_close(rd);
		}
		if (ipc_open(&rd, uri, 0) != 0) {
			fprintf(stderr, "reopen: %s\n", ipc_last_error());
			return 1;
		}
		if (drain(rd, &next, 0, &msgs) != 0) {
			return 1;
		}
		ipc_close(rd);
		/* Every message whose send returned arrived; at most one
		 * more (committed, killed before noting it). */
		if (next - 1 < *done || next - 1 > *done + 1) {
			fprintf(stderr,
			        "run %d: received up to %llu, sends returned "
			        "up to %llu\n",
			        run, (unsigned long long)(next - 1),
			        (unsigned long long)*done);
			return 1;
		}
	}
	wk->msgs = msgs;
	return 0;
}

static void
test_kill_writer(void **state)
{
	(void)state;
	struct worker *wk = mmap(NULL, sizeof(struct worker) * WORKERS,
	                         PROT_READ | PROT_WRITE,
	                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(wk != MAP_FAILED);
	pid_t pids[WORKERS];
	for (int i = 0; i < WORKERS; i++) {
		memset(&wk[i], 0, sizeof(wk[i]));
		assert_int_equal(
		        tu_tmpdir(wk[i].dir, sizeof(wk[i].dir), "ipcdur"), 0);
		wk[i].runs = kills / WORKERS + (i < kills % WORKERS);
		wk[i].seed = 12345u + (unsigned)i * 7919u;
		pids[i] = tu_fork(worker_main, &wk[i], 240);
		assert_true(pids[i] > 0);
	}
	int bad = 0;
	long total = 0, msgs = 0;
	for (int i = 0; i < WORKERS; i++) {
		bad |= tu_wait_ok(pids[i], 300000) != 0;
		total += wk[i].kills;
		msgs += wk[i].msgs;
		tu_rmtree(wk[i].dir);
	}
	printf("%s: %ld writers killed with SIGKILL, %ld messages checked "
	       "after restarts\n",
	       scheme, total, msgs);
	assert_false(bad);
	assert_int_equal(total, kills);
	munmap(wk, sizeof(struct worker) * WORKERS);
}

/* --------------------------------------------------------- kill_both -- */

struct holder {
	const char *uri;
	int flags;
	int ctl;  /* write end: one byte when done */
	int mode; /* 0: send 1 and 2; 1: receive 1 */
};

static int
holder_main(void *arg)
{
	struct holder *h = arg;
	ipc_channel *ch;
	unsigned char buf[MAXLEN];
	int r;
	/* The reader retries until the writer has made the file. */
	for (int i = 0;
	     (r = ipc_open(&ch, h->uri, h->flags)) == -ENOENT && i < 5000;
	     i++) {
		usleep(1000);
	}
	if (r != 0) {
		return 2;
	}
	if (h->mode == 0) {
		for (uint64_t seq = 1; seq <= 2; seq++) {
			size_t len = make_msg(buf, seq);
			if (ipc_send(ch, buf, len, 0) != (ssize_t)len) {
				return 3;
			}
		}
	} else {
		ssize_t n = ipc_recv(ch, buf, sizeof(buf), 0);
		if (n < 0 || check_msg(buf, (size_t)n) != 1) {
			return 4;
		}
	}
	char one = 1;
	if (write(h->ctl, &one, 1) != 1) {
		return 5;
	}
	pause();
	return 0;
}

static void
test_kill_both(void **state)
{
	(void)state;
	char dir[96], uri[300], c;
	assert_int_equal(tu_tmpdir(dir, sizeof(dir), "ipcdur"), 0);
	uri_of(uri, sizeof(uri), dir, "");
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct holder wr = {.uri = uri, .flags = IPC_CREATE, .ctl = p[1]};
	struct holder rd = {.uri = uri, .flags = 0, .ctl = p[1], .mode = 1};
	pid_t w = tu_fork(holder_main, &wr, 30);
	assert_true(w > 0);
	pid_t r = tu_fork(holder_main, &rd, 30);
	assert_true(r > 0);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(read(p[0], &c, 1), 1);
	kill(w, SIGKILL);
	kill(r, SIGKILL);
	int st;
	assert_int_equal(waitpid(w, &st, 0), w);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(waitpid(r, &st, 0), r);
	assert_true(WIFSIGNALED(st));
	/* Both restart: message 2 arrives, message 1 (released) does not. */
	ipc_channel *a = xopen(uri, IPC_CREATE), *b = xopen(uri, 0);
	unsigned char buf[MAXLEN];
	assert_int_equal(ipc_set_timeout(b, 5000), 0);
	ssize_t n = ipc_recv(b, buf, sizeof(buf), 0);
	assert_true(n > 0);
	assert_int_equal(check_msg(buf, (size_t)n), 2);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	/* And the channel works on. */
	size_t len = make_msg(buf, 3);
	assert_int_equal(ipc_send(a, buf, len, 0), (ssize_t)len);
	n = ipc_recv(b, buf, sizeof(buf), 0);
	assert_int_equal(check_msg(buf, (size_t)n), 3);
	ipc_close(a);
	ipc_close(b);
	close(p[0]);
	close(p[1]);
	printf("%s: a message committed before both died arrived after "
	       "both restarted\n",
	       scheme);
	tu_rmtree(dir);
}

/* -------------------------------------------------------- power_loss -- */

/* Cut one of the channel's files at a random offset; for file:// also
 * flip a few bytes in what remains of its tail. */
static void
damage(const char *dir, unsigned *seed, int flip)
{
	char pat[160];
	glob_t g;
	snprintf(pat, sizeof(pat), "%s/chan*", dir);
	if (glob(pat, 0, NULL, &g) != 0) {
		return;
	}
	/* The biggest file: the ring file, or the log that holds data. */
	const char *pick = NULL;
	off_t best = -1;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct stat st;
		if (stat(g.gl_pathv[i], &st) == 0 && st.st_size > best) {
			best = st.st_size;
			pick = g.gl_pathv[i];
		}
	}
	if (pick != NULL && best > 0) {
		off_t cut = (off_t)((uint64_t)rand_r(seed) * 65537u %
		                    (uint64_t)best);
		assert_int_equal(truncate(pick, cut), 0);
		if (flip && cut > 0) {
			int fd = open(pick, O_RDWR);
			assert_true(fd >= 0);
			for (int k = 0; k < 3; k++) {
				off_t at = cut - 1 - rand_r(seed) % 64;
				unsigned char b;
				if (at >= 0 && pread(fd, &b, 1, at) == 1) {
					b ^= (unsigned char)(1u
					                     << (rand_r(seed) %
					                         8));
					assert_int_equal(pwrite(fd, &b, 1, at),
					                 1);
				}
			}
			close(fd);
		}
	}
	globfree(&g);
}

static void
test_power_loss(void **state)
{
	(void)state;
	char dir[96], uri[300];
	unsigned seed = 777;
	unsigned char buf[MAXLEN];
	assert_int_equal(tu_tmpdir(dir, sizeof(dir), "ipcdur"), 0);
	uri_of(uri, sizeof(uri), dir, "");
	uint64_t seq = 1, next = 1;
	long got = 0;
	int rounds = 60;
	for (int round = 0; round < rounds; round++) {
		ipc_channel *a = NULL, *b = NULL;
		int r = ipc_open(&b, uri, 0);
		assert_true(r == 0 || r == -ENOENT);
		a = xopen(uri, IPC_CREATE);
		if (b == NULL) {
			b = xopen(uri, 0);
		}
		/* What survived the last cut: intact, in order (a gap is
		 * what the cut took). */
		assert_int_equal(drain(b, &next, 1, &got), 0);
		int n = 1 + rand_r(&seed) % 40, sent = 0;
		for (int i = 0; i < n; i++, seq++) {
			size_t len = make_msg(buf, seq);
			ssize_t m = ipc_send(a, buf, len, IPC_NONBLOCK);
			if (m == -EAGAIN) {
				break; /* full: the reader is behind */
			}
			assert_int_equal(m, (ssize_t)len);
			sent++;
		}
		n = sent;
		/* The channel works: read some now, leave the rest. */
		int k = rand_r(&seed) % (n + 1);
		for (int i = 0; i < k; i++) {
			ssize_t m = ipc_recv(b, buf, sizeof(buf), 0);
			assert_true(m > 0);
			long long s = check_msg(buf, (size_t)m);
			assert_true(s >= 0 && (uint64_t)s >= next);
			next = (uint64_t)s + 1;
			got++;
		}
		ipc_close(a);
		ipc_close(b);
		damage(dir, &seed, strcmp(scheme, "file") == 0);
	}
	printf("%s: %d cuts of the files at random offsets, %ld intact "
	       "messages delivered in order\n",
	       scheme, rounds, got);
	tu_rmtree(dir);
}

int
main(int argc, char **argv)
{
	if (argc > 1) {
		scheme = argv[1];
	}
	if (argc > 2) {
		kills = atoi(argv[2]);
	}
	if (strcmp(scheme, "mmap") == 0) {
		/* Small rings: the writer wraps and fills them often. */
		snprintf(opts, sizeof(opts), "size=4096");
	} else {
		snprintf(opts, sizeof(opts), "max_bytes=8192");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kill_writer),
	        cmocka_unit_test(test_kill_both),
	        cmocka_unit_test(test_power_loss),
	};
	return cmocka_run_group_tests_name(scheme, tests, NULL, NULL);
}
