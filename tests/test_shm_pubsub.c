/*
 * shm:// publish/subscribe (core/fanchan.c over core/fanring.c), with
 * forked subscriber processes and real memfds and sockets:
 *  - 4 subscribers x 10^5 messages, each checksummed, in order, then
 *    -EPIPE after the publisher's close;
 *  - kill -9 of a subscriber that holds an acquired message while the
 *    publisher is blocked on it: the publisher publishes again within the
 *    contract's second, and every slot is written again afterwards while
 *    another subscriber reads everything;
 *  - history=N for a late joiner; slow=drop counts what it lost;
 *  - 48 subscribers (no 32-bit mask: the limit is subs=);
 *  - a hostile segment: a subscriber's cursor scribbled on (the publisher
 *    evicts it and goes on) and a head scribbled on (the subscriber fails
 *    with -EPROTO);
 *  - nothing left behind (descriptors, /dev/shm, the name).
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "core/fanring.h"
#include "testutil.h"

#define NSUB 4
#define NMSG 100000

static char uri_base[64];

static void
mkuri(char *buf, size_t n, const char *tag, const char *opts)
{
	if (uri_base[0] == '\0') {
		snprintf(uri_base, sizeof(uri_base), "fanout-%d",
		         (int)getpid());
	}
	snprintf(buf, n, "shm://%s-%s%s", uri_base, tag, opts);
}

/* Subscribe, retrying while the publisher is not there yet. */
static ipc_channel *
subscribe(const char *uri)
{
	return tu_open_retry(uri, IPC_SUBSCRIBE, 30000);
}

/* Wait until the publisher counts n subscribers. */
static void
wait_subscribers(ipc_channel *pub, int n)
{
	double end = tu_now() + 30 * tu_time_factor();
	int k;
	while ((k = ipc_subscribers(pub)) != n && tu_now() < end) {
		tu_sleep_ms(2);
	}
	assert_int_equal(k, n);
}

static uint64_t
mix(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	return v ^ (v >> 29);
}

static size_t
msg_len(uint64_t v)
{
	return 8 + (size_t)(mix(v) % 120);
}

static void
fill(unsigned char *b, uint64_t v)
{
	size_t n = msg_len(v);
	memcpy(b, &v, 8);
	for (size_t i = 8; i < n; i++) {
		b[i] = (unsigned char)(mix(v) >> (i % 56));
	}
}

static int
check(const unsigned char *b, size_t n, uint64_t want)
{
	uint64_t v;
	if (n != msg_len(want)) {
		return 0;
	}
	memcpy(&v, b, 8);
	if (v != want) {
		return 0;
	}
	for (size_t i = 8; i < n; i++) {
		if (b[i] != (unsigned char)(mix(v) >> (i % 56))) {
			return 0;
		}
	}
	return 1;
}

struct sub_args {
	const char *uri;
	uint64_t first, count; /* expected messages first .. first+count-1 */
	int zerocopy;
	int hold; /* acquire one message, say so on fd, then wait forever */
	int fd;
};

/* A subscriber process: every expected message, in order and intact
 * (half of them zero-copy), then -EPIPE.  Exit 0 on success. */
static int
sub_main(void *arg)
{
	struct sub_args *a = arg;
	ipc_channel *ch = subscribe(a->uri);
	unsigned char buf[256];
	if (ch == NULL) {
		return 10;
	}
	if (a->hold) {
		const void *p;
		size_t n;
		if (ipc_acquire(ch, &p, &n, 0) != 0) {
			return 11;
		}
		char c = 'h';
		if (write(a->fd, &c, 1) != 1) {
			return 12;
		}
		for (;;) {
			pause();
		}
	}
	for (uint64_t i = 0; i < a->count; i++) {
		uint64_t want = a->first + i;
		if (a->zerocopy && (i & 1)) {
			const void *p;
			size_t n;
			int r = ipc_acquire(ch, &p, &n, 0);
			if (r != 0) {
				fprintf(stderr, "acquire %llu: %s\n",
				        (unsigned long long)want,
				        ipc_last_error());
				return 13;
			}
			if (!check(p, n, want)) {
				return 14;
			}
			ipc_release(ch);
		} else {
			ssize_t n = ipc_recv(ch, buf, sizeof(buf), 0);
			if (n < 0) {
				fprintf(stderr, "recv %llu: %s\n",
				        (unsigned long long)want,
				        ipc_last_error());
				return 15;
			}
			if (!check(buf, (size_t)n, want)) {
				fprintf(stderr, "message %llu is wrong\n",
				        (unsigned long long)want);
				return 16;
			}
		}
	}
	ssize_t r = ipc_recv(ch, buf, sizeof(buf), 0);
	if (r != -EPIPE) {
		fprintf(stderr, "after the last: %zd (%s)\n", r,
		        ipc_last_error());
		return 17;
	}
	ipc_close(ch);
	return 0;
}

static void
publish(ipc_channel *pub, uint64_t v)
{
	unsigned char buf[256];
	fill(buf, v);
	ssize_t r = ipc_send(pub, buf, msg_len(v), 0);
	if (r < 0) {
		fprintf(stderr, "send %llu: %s\n", (unsigned long long)v,
		        ipc_last_error());
	}
	assert_int_equal(r, (ssize_t)msg_len(v));
}

/* 4 subscriber processes, 10^5 messages each, zero-copy publishing for
 * half of them. */
static void
t_four_subscribers(void **state)
{
	(void)state;
	char uri[128];
	int fds0 = tu_fd_count(), shm0 = tu_count_dir("/dev/shm");
	mkuri(uri, sizeof(uri), "four", "?slots=256");
	ipc_channel *pub;
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	assert_true(ipc_caps(pub) & IPC_CAP_PUBSUB);
	pid_t pid[NSUB];
	struct sub_args a = {
	        .uri = uri, .first = 0, .count = NMSG, .zerocopy = 1};
	for (int i = 0; i < NSUB; i++) {
		pid[i] = tu_fork(sub_main, &a, 600);
		assert_true(pid[i] > 0);
	}
	wait_subscribers(pub, NSUB);
	for (uint64_t v = 0; v < NMSG; v++) {
		if (v & 1) {
			void *p;
			assert_int_equal(ipc_reserve(pub, msg_len(v), &p, 0),
			                 0);
			fill(p, v);
			assert_int_equal(ipc_commit(pub, msg_len(v)), 0);
		} else {
			publish(pub, v);
		}
	}
	assert_int_equal(ipc_dropped(pub), 0);
	assert_int_equal(ipc_close(pub), 0);
	for (int i = 0; i < NSUB; i++) {
		assert_int_equal(tu_wait_ok(pid[i], 600000), 0);
	}
	assert_int_equal(tu_fd_count(), fds0);
	assert_int_equal(tu_count_dir("/dev/shm"), shm0);
	/* The name is free again. */
	ipc_channel *ch;
	assert_int_equal(ipc_open(&ch, uri, IPC_SUBSCRIBE), -ECONNREFUSED);
}

/* kill -9 of a subscriber holding an acquired message while the
 * publisher waits for that very slot. */
static void
t_kill_holder(void **state)
{
	(void)state;
	char uri[128];
	enum { SLOTS = 8 };
	mkuri(uri, sizeof(uri), "kill", "?slots=8");
	ipc_channel *pub;
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	struct sub_args h = {.uri = uri, .hold = 1, .fd = pfd[1]};
	pid_t holder = tu_fork(sub_main, &h, 600);
	assert_true(holder > 0);
	wait_subscribers(pub, 1);
	/* The reader joins after message 0 went to the holder only. */
	publish(pub, 0);
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1); /* it holds message 0 */
	struct sub_args r = {.uri = uri, .first = 1, .count = 4 * SLOTS};
	pid_t reader = tu_fork(sub_main, &r, 600);
	assert_true(reader > 0);
	wait_subscribers(pub, 2);
	/* Messages 1..7 fill the other slots; 8 needs message 0's slot. */
	for (uint64_t v = 1; v < SLOTS; v++) {
		publish(pub, v);
	}
	unsigned char buf[256];
	fill(buf, SLOTS);
	assert_int_equal(ipc_send(pub, buf, msg_len(SLOTS), IPC_NONBLOCK),
	                 -EAGAIN);
	/* Now kill it and publish: within the contract's second, and every
	 * slot is written again (4 rounds) while the reader reads them. */
	assert_int_equal(ipc_set_timeout(pub, (int)(TU_DEATH_S * 1000)), 0);
	double t0 = tu_now();
	assert_int_equal(kill(holder, SIGKILL), 0);
	publish(pub, SLOTS);
	double took = tu_now() - t0;
	printf("publisher went on %.3f s after kill -9 of the holder\n", took);
	assert_true(took <= TU_DEATH_S);
	for (uint64_t v = SLOTS + 1; v <= 4 * SLOTS; v++) {
		publish(pub, v);
	}
	assert_int_equal(ipc_subscribers(pub), 1);
	int st;
	assert_int_equal(tu_wait(holder, 10000, &st), 0);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(ipc_close(pub), 0);
	assert_int_equal(tu_wait_ok(reader, 600000), 0);
	close(pfd[0]);
	close(pfd[1]);
}

/* history=3: a late joiner gets exactly the last 3, then what follows;
 * one that asks for 1 gets 1. */
static void
t_history(void **state)
{
	(void)state;
	char uri[128], suri[160];
	mkuri(uri, sizeof(uri), "hist", "?history=3");
	ipc_channel *pub, *s1, *s2;
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	for (uint64_t v = 0; v < 10; v++) {
		publish(pub, v); /* nobody: never waits */
	}
	assert_int_equal(ipc_dropped(pub), 0); /* kept by history= */
	assert_int_equal(ipc_open(&s1, uri, IPC_SUBSCRIBE), 0);
	mkuri(suri, sizeof(suri), "hist", "?history=1");
	assert_int_equal(ipc_open(&s2, suri, IPC_SUBSCRIBE), 0);
	wait_subscribers(pub, 2);
	publish(pub, 10);
	unsigned char buf[256];
	for (uint64_t v = 7; v <= 10; v++) {
		ssize_t n = ipc_recv(s1, buf, sizeof(buf), 0);
		assert_true(n > 0 && check(buf, (size_t)n, v));
	}
	for (uint64_t v = 9; v <= 10; v++) {
		ssize_t n = ipc_recv(s2, buf, sizeof(buf), 0);
		assert_true(n > 0 && check(buf, (size_t)n, v));
	}
	assert_int_equal(ipc_recv(s1, buf, sizeof(buf), IPC_NONBLOCK),
	                 -EAGAIN);
	ipc_close(pub);
	assert_int_equal(ipc_recv(s1, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_recv(s2, buf, sizeof(buf), 0), -EPIPE);
	ipc_close(s1);
	ipc_close(s2);
}

/* slow=drop: a subscriber that does not read never holds the publisher
 * back; it gets the newest messages and counts the rest.  A slow=block
 * one on the same publisher gets every message.  The publisher's slow=
 * is the policy of subscribers that give none. */
static void
t_drop(void **state)
{
	(void)state;
	char uri[128], duri[160], buri[160];
	enum { SLOTS = 8, N = 1000 };
	mkuri(uri, sizeof(uri), "drop", "?slots=8&slow=drop");
	mkuri(duri, sizeof(duri), "drop", "");
	mkuri(buri, sizeof(buri), "drop", "?slow=block");
	ipc_channel *pub, *d;
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	assert_int_equal(ipc_open(&d, duri, IPC_SUBSCRIBE), 0);
	struct sub_args r = {.uri = buri, .first = 0, .count = N};
	pid_t reader = tu_fork(sub_main, &r, 600);
	assert_true(reader > 0);
	wait_subscribers(pub, 2);
	for (uint64_t v = 0; v < N; v++) {
		publish(pub, v);
	}
	unsigned char buf[256];
	uint64_t got = 0, last = 0, first = 0;
	ssize_t n;
	while ((n = ipc_recv(d, buf, sizeof(buf), IPC_NONBLOCK)) > 0) {
		uint64_t v;
		memcpy(&v, buf, 8);
		assert_true(check(buf, (size_t)n, v));
		assert_true(got == 0 || v > last);
		first = got == 0 ? v : first;
		last = v;
		got++;
	}
	assert_int_equal(n, -EAGAIN);
	printf("slow=drop: got %llu, dropped %llu of %d\n",
	       (unsigned long long)got, ipc_dropped(d), N);
	assert_true(got >= 1 && got <= SLOTS);
	assert_int_equal(last, N - 1);
	/* Lost before its first message: not known, not counted. */
	assert_int_equal(ipc_dropped(d), last - first + 1 - got);
	assert_int_equal(ipc_dropped(pub), N - got); /* what d missed */
	ipc_close(pub);
	assert_int_equal(ipc_recv(d, buf, sizeof(buf), 0), -EPIPE);
	ipc_close(d);
	assert_int_equal(tu_wait_ok(reader, 600000), 0);
}

/* The publisher's segment as the test sees it (this process opened the
 * publisher): its memfd, found among our descriptors by name. */
static unsigned char *
map_pub_segment(const char *name, size_t *len)
{
	char want[128], path[300], link[256];
	snprintf(want, sizeof(want), "/memfd:libipc-shm-pub:%s", name);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned char *m = NULL;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL && m == NULL) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0) {
			continue;
		}
		link[n] = '\0';
		if (strncmp(link, want, strlen(want)) != 0) {
			continue;
		}
		struct stat st;
		int fd = atoi(e->d_name);
		assert_int_equal(fstat(fd, &st), 0);
		*len = (size_t)st.st_size;
		m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		         0);
		assert_true(m != MAP_FAILED);
	}
	closedir(d);
	assert_non_null(m);
	return m;
}

static void
t_hostile_segment(void **state)
{
	(void)state;
	char uri[128];
	mkuri(uri, sizeof(uri), "hostile", "?slots=4&subs=2");
	ipc_channel *pub, *a, *b;
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	assert_int_equal(ipc_open(&a, uri, IPC_SUBSCRIBE), 0);
	assert_int_equal(ipc_open(&b, uri, IPC_SUBSCRIBE), 0);
	wait_subscribers(pub, 2);
	/* A third is refused: subs=2. */
	ipc_channel *c;
	unsigned char buf[256];
	assert_int_equal(ipc_open(&c, uri, IPC_SUBSCRIBE), 0);
	assert_int_equal(ipc_subscribers(pub), 2);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), -EUSERS);
	ipc_close(c);
	for (uint64_t v = 0; v < 4; v++) {
		publish(pub, v);
	}
	size_t len = 0;
	char name[96];
	snprintf(name, sizeof(name), "%s", strstr(uri, "//") + 2);
	*strchr(name, '?') = '\0';
	unsigned char *m = map_pub_segment(name, &len);
	/* Entry 1's cursor out of range: the publisher evicts that
	 * subscriber and goes on (entry 0 reads everything). */
	atomic_store((_Atomic uint64_t *)(void *)(m + IPC_FAN_HDR +
	                                          IPC_FAN_ENTRY +
	                                          IPC_FAN_E_CURSOR),
	             (uint64_t)1 << 60);
	for (uint64_t v = 0; v < 4; v++) {
		ssize_t n = ipc_recv(a, buf, sizeof(buf), 0);
		assert_true(n > 0 && check(buf, (size_t)n, v));
	}
	publish(pub, 4);
	assert_int_equal(ipc_subscribers(pub), 1);
	ssize_t n = ipc_recv(a, buf, sizeof(buf), 0);
	assert_true(n > 0 && check(buf, (size_t)n, 4));
	/* The evicted one learns that its publisher let go of it. */
	/* A head beyond anything: the subscriber fails, reads nothing. */
	atomic_store((_Atomic uint64_t *)(void *)(m + IPC_FAN_OFF_HEAD),
	             (uint64_t)1 << 40);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), -EPROTO);
	printf("%s\n", ipc_last_error());
	munmap(m, len);
	ipc_close(a);
	ipc_close(b);
	ipc_close(pub);
}

/* More subscribers than a 32-bit mask would hold: the limit is subs=. */
static void
t_many_subscribers(void **state)
{
	(void)state;
	enum { N = 48 };
	char uri[128];
	mkuri(uri, sizeof(uri), "many", "?subs=48&slots=16");
	ipc_channel *pub, *sub[N + 1];
	unsigned char buf[256];
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	for (int i = 0; i <= N; i++) {
		assert_int_equal(ipc_open(&sub[i], uri, IPC_SUBSCRIBE), 0);
	}
	wait_subscribers(pub, N);
	assert_int_equal(ipc_recv(sub[N], buf, sizeof(buf), 0), -EUSERS);
	ipc_close(sub[N]);
	for (uint64_t v = 0; v < 10; v++) {
		publish(pub, v);
	}
	for (int i = 0; i < N; i++) {
		for (uint64_t v = 0; v < 10; v++) {
			ssize_t n = ipc_recv(sub[i], buf, sizeof(buf), 0);
			assert_true(n > 0 && check(buf, (size_t)n, v));
		}
		ipc_close(sub[i]);
	}
	wait_subscribers(pub, 0);
	ipc_close(pub);
}

/* Options: wrong combinations are refused with a reason. */
static void
t_options(void **state)
{
	(void)state;
	ipc_channel *ch;
	char uri[128];
	mkuri(uri, sizeof(uri), "opt", "?slots=3");
	assert_int_equal(ipc_open(&ch, uri, IPC_PUBLISH), -EINVAL);
	mkuri(uri, sizeof(uri), "opt", "?slots=4&history=4");
	assert_int_equal(ipc_open(&ch, uri, IPC_PUBLISH), -EINVAL);
	mkuri(uri, sizeof(uri), "opt", "?size=8192");
	assert_int_equal(ipc_open(&ch, uri, IPC_PUBLISH), -EINVAL);
	mkuri(uri, sizeof(uri), "opt", "?slots=8");
	assert_int_equal(ipc_open(&ch, uri, IPC_CREATE), -EINVAL);
	/* A one-to-one opener that reaches a publisher is turned away, and
	 * a subscriber that reaches a one-to-one channel too. */
	mkuri(uri, sizeof(uri), "opt", "");
	ipc_channel *pub, *o;
	unsigned char buf[16];
	assert_int_equal(ipc_open(&pub, uri, IPC_PUBLISH), 0);
	assert_int_equal(ipc_open(&o, uri, 0), 0);
	wait_subscribers(pub, 0);
	assert_true(ipc_recv(o, buf, sizeof(buf), 0) < 0);
	ipc_close(o);
	ipc_close(pub);
	assert_int_equal(ipc_open(&pub, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&o, uri, IPC_SUBSCRIBE), 0);
	assert_int_equal(ipc_send(pub, "x", 1, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_recv(o, buf, sizeof(buf), 0), -ECONNREFUSED);
	printf("%s\n", ipc_last_error());
	ipc_close(o);
	ipc_close(pub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_options),
	        cmocka_unit_test(t_history),
	        cmocka_unit_test(t_drop),
	        cmocka_unit_test(t_hostile_segment),
	        cmocka_unit_test(t_many_subscribers),
	        cmocka_unit_test(t_kill_holder),
	        cmocka_unit_test(t_four_subscribers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
