/*
 * The conformance suite: publish/subscribe (DESIGN.md 2b), over every
 * driver with IPC_CAP_PUBSUB.  The publisher is the case's process; each
 * subscriber is a forked process that opens the case's URI with
 * IPC_SUBSCRIBE (retrying until the publisher is there).  Pipes, never the
 * channel under test, say when a subscriber may go on or what it saw.
 *
 * CONF_PUBSUB_N=N sets the message count of pubsub_stream (default
 * 100000, the 10^5; 20000 when IPC_TEST_TIME_FACTOR says a
 * sanitizer slows the run).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conformance.h"

#define NSUBS    4
#define SMALL    64
#define DROP_LEN (16u << 10)

static int
wait_ms(int ms)
{
	return (int)(ms * tu_time_factor());
}

/* The case's URI with one more option. */
static void
with_opt(char *out, size_t n, const char *opt)
{
	snprintf(out, n, "%s%c%s", C.uri, strchr(C.uri, '?') ? '&' : '?', opt);
}

static void
need_pubsub(const char *what)
{
	need_caps(IPC_CAP_PUBSUB, "IPC_CAP_PUBSUB (publish/subscribe)");
	/* udp:// multicast (loss allowed, a group address): its own test,
	 * tests/test_multicast.c. */
	need_caps(IPC_CAP_RELIABLE, "IPC_CAP_RELIABLE (multicast is tested "
	                            "in test_multicast)");
	need_open_mode(what);
	need_process(what);
}

/* Message i of a stream: 4 bytes of i, then fill(i); 8..SMALL bytes. */
static size_t
gen(unsigned char *buf, long i)
{
	size_t len = 8 + (size_t)(i * 7919 % (SMALL - 7));

	put32(buf, (uint32_t)i);
	fill(buf + 4, len - 4, (uint32_t)i);
	return len;
}

static void
check_msg(const unsigned char *buf, ssize_t r, long i)
{
	unsigned char want[SMALL];
	size_t len = gen(want, i);

	TU_CHECK_MSG(r == (ssize_t)len && memcmp(buf, want, len) == 0,
	             "message %ld: got %s (%zd bytes, index %ld), want %zu "
	             "bytes",
	             i, tu_errname((int)r), r, r >= 4 ? (long)get32(buf) : -1L,
	             len);
}

static ipc_channel *
subscribe(const char *uri)
{
	double end = tu_now() + wait_ms(30000) / 1000.0;
	ipc_channel *s = NULL;

	for (;;) {
		int r = ipc_open(&s, uri, IPC_SUBSCRIBE);
		if (r == 0) {
			break;
		}
		TU_CHECK_MSG((r == -ENOENT || r == -ECONNREFUSED) &&
		                     tu_now() < end,
		             "subscribe to %s: %s", uri, tu_errname(r));
		tu_sleep_ms(5);
	}
	TU_OK(ipc_set_timeout(s, wait_ms(STEP_MS)));
	return s;
}

/* Wait until pub has n subscribers, woken by its ipc_fd(). */
static void
wait_subscribers(ipc_channel *pub, int n)
{
	double end = tu_now() + wait_ms(30000) / 1000.0;
	struct pollfd p = {.fd = TU_OK(ipc_fd(pub)), .events = POLLIN};
	int have;

	while ((have = TU_OK(ipc_subscribers(pub))) != n) {
		TU_CHECK_MSG(tu_now() < end, "%d subscribers, want %d", have,
		             n);
		poll(&p, 1, 50);
	}
}

static void
pipe_put(int fd, long v)
{
	TU_CHECK(write(fd, &v, sizeof v) == (ssize_t)sizeof v);
}

static long
pipe_get(int fd)
{
	long v = -1;
	ssize_t r = read(fd, &v, sizeof v);

	TU_CHECK_MSG(r == (ssize_t)sizeof v, "control pipe: %zd", r);
	return v;
}

static void
reap_ok(pid_t pid)
{
	TU_CHECK_MSG(tu_wait_ok(pid, wait_ms(90000)) == 0,
	             "subscriber %d failed", (int)pid);
}

/* ------------------------------------------------------------- stream -- */

struct sub_arg {
	long n;          /* messages to expect */
	long stop_after; /* > 0: close (or die) after this many */
	int die;         /* SIGKILL itself instead of closing */
	int go;          /* read end: wait for a word before reading */
	int report;      /* write end: send what was seen */
	char uri[600];
};

static int
sub_stream(void *argp)
{
	struct sub_arg *a = argp;
	ipc_channel *s = subscribe(a->uri);
	unsigned char buf[SMALL], want[SMALL];
	uint32_t sum = 2166136261u, wsum = 2166136261u;

	for (long i = 0; i < a->n; i++) {
		ssize_t r = ipc_recv(s, buf, sizeof buf, 0);
		check_msg(buf, r, i);
		size_t wl = gen(want, i);
		for (ssize_t k = 0; k < r; k++) {
			sum = (sum ^ buf[k]) * 16777619u;
		}
		for (size_t k = 0; k < wl; k++) {
			wsum = (wsum ^ want[k]) * 16777619u;
		}
		if (a->stop_after > 0 && i + 1 == a->stop_after) {
			if (a->die) {
				raise(SIGKILL);
			}
			TU_OK(ipc_close(s));
			return 0;
		}
	}
	TU_ERR(ipc_recv(s, buf, sizeof buf, 0), -EPIPE);
	TU_CHECK_EQ(ipc_dropped(s), 0);
	TU_CHECK_MSG(sum == wsum, "checksum %08x, want %08x", sum, wsum);
	TU_OK(ipc_close(s));
	return 0;
}

static long
stream_count(void)
{
	const char *e = getenv("CONF_PUBSUB_N");
	long def = tu_time_factor() > 1 ? 20000 : 100000; /* sanitizers */
	long n = e ? atol(e) : def;
	return n > 0 ? n : def;
}

static void
publish_range(ipc_channel *pub, long from, long to)
{
	unsigned char buf[SMALL];

	for (long i = from; i < to; i++) {
		size_t len = gen(buf, i);
		TU_CHECK_EQ(ipc_send(pub, buf, len, 0), (long long)len);
	}
}

/* Four subscriber processes get every message in order (slow=block, the
 * default), checksummed, then -EPIPE at the publisher's close. */
int
case_pubsub_stream(void *unused)
{
	struct sub_arg a = {.n = stream_count()};
	pid_t kids[NSUBS];
	ipc_channel *pub;

	(void)unused;
	need_pubsub("pubsub_stream");
	need_caps(IPC_CAP_RELIABLE | IPC_CAP_ORDERED,
	          "IPC_CAP_RELIABLE and IPC_CAP_ORDERED");
	snprintf(a.uri, sizeof a.uri, "%s", C.uri);
	for (int k = 0; k < NSUBS; k++) {
		kids[k] = TU_OK(tu_fork(sub_stream, &a, LIMIT_S * 2));
	}
	TU_OK(ipc_open(&pub, C.uri, IPC_PUBLISH));
	TU_OK(ipc_set_timeout(pub, wait_ms(STEP_MS)));
	TU_CHECK(ipc_caps(pub) & IPC_CAP_PUBSUB);
	wait_subscribers(pub, NSUBS);
	double t0 = tu_now();
	publish_range(pub, 0, a.n);
	TU_CHECK_EQ(ipc_dropped(pub), 0);
	TU_OK(ipc_close(pub));
	for (int k = 0; k < NSUBS; k++) {
		reap_ok(kids[k]);
	}
	printf("pubsub_stream: %ld messages to %d subscribers in %.2f s\n",
	       a.n, NSUBS, tu_now() - t0);
	return 0;
}

/* A subscriber that closes and one killed with SIGKILL mid-stream leave
 * the publisher and the third subscriber running. */
int
case_pubsub_kill(void *unused)
{
	struct sub_arg all = {.n = 21000}, quits = all, dies = all;
	pid_t ka, kb, kc;
	ipc_channel *pub;
	int st;

	(void)unused;
	need_pubsub("pubsub_kill");
	need_caps(IPC_CAP_RELIABLE | IPC_CAP_ORDERED,
	          "IPC_CAP_RELIABLE and IPC_CAP_ORDERED");
	snprintf(all.uri, sizeof all.uri, "%s", C.uri);
	quits = dies = all;
	quits.stop_after = dies.stop_after = 1000;
	dies.die = 1;
	ka = TU_OK(tu_fork(sub_stream, &all, LIMIT_S));
	kb = TU_OK(tu_fork(sub_stream, &quits, LIMIT_S));
	kc = TU_OK(tu_fork(sub_stream, &dies, LIMIT_S));
	TU_OK(ipc_open(&pub, C.uri, IPC_PUBLISH));
	TU_OK(ipc_set_timeout(pub, wait_ms(STEP_MS)));
	wait_subscribers(pub, 3);
	publish_range(pub, 0, 20000);
	TU_OK(tu_wait(kc, wait_ms(60000), &st));
	TU_CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	             "the dying subscriber ended otherwise (%d)", st);
	reap_ok(kb);
	wait_subscribers(pub, 1);
	publish_range(pub, 20000, all.n); /* the publisher goes on */
	TU_OK(ipc_close(pub));
	reap_ok(ka);
	return 0;
}

/* ------------------------------------------------------------ history -- */

static int
sub_history(void *argp)
{
	struct sub_arg *a = argp;
	unsigned char buf[SMALL];

	(void)pipe_get(a->go);
	ipc_channel *s = subscribe(a->uri);
	for (long i = 90; i <= 100; i++) {
		check_msg(buf, ipc_recv(s, buf, sizeof buf, 0), i);
	}
	TU_ERR(ipc_recv(s, buf, sizeof buf, 0), -EPIPE);
	TU_CHECK_EQ(ipc_dropped(s), 0);
	TU_OK(ipc_close(s));
	return 0;
}

/* A late joiner with history=10 gets exactly the last 10, then what
 * follows. */
int
case_pubsub_history(void *unused)
{
	struct sub_arg a = {0};
	char uri[600];
	int go[2];
	ipc_channel *pub;

	(void)unused;
	need_pubsub("pubsub_history");
	need_caps(IPC_CAP_RELIABLE | IPC_CAP_ORDERED,
	          "IPC_CAP_RELIABLE and IPC_CAP_ORDERED");
	with_opt(uri, sizeof uri, "history=10");
	snprintf(a.uri, sizeof a.uri, "%s", uri);
	TU_OK(pipe(go) == 0 ? 0 : -errno);
	a.go = go[0];
	pid_t kid = TU_OK(tu_fork(sub_history, &a, LIMIT_S));
	close(go[0]);
	TU_OK(ipc_open(&pub, uri, IPC_PUBLISH));
	TU_OK(ipc_set_timeout(pub, wait_ms(STEP_MS)));
	publish_range(pub, 0, 100); /* nobody yet: kept for history */
	TU_CHECK_EQ(ipc_dropped(pub), 0);
	pipe_put(go[1], 1);
	close(go[1]);
	wait_subscribers(pub, 1);
	publish_range(pub, 100, 101);
	TU_OK(ipc_close(pub));
	reap_ok(kid);
	return 0;
}

/* Sending to nobody drops and counts without waiting; the roles refuse
 * the other side's calls. */
int
case_pubsub_nobody(void *unused)
{
	ipc_channel *pub, *sub;
	unsigned char buf[SMALL];

	(void)unused;
	need_pubsub("pubsub_nobody");
	TU_OK(ipc_open(&pub, C.uri, IPC_PUBLISH));
	TU_OK(ipc_set_timeout(pub, 0)); /* a wait would be -EAGAIN */
	TU_CHECK_MSG(strcmp(ipc_scheme(pub), G.scheme) == 0, "scheme %s",
	             ipc_scheme(pub));
	for (long i = 0; i < 5; i++) {
		size_t len = gen(buf, i);
		TU_CHECK_EQ(ipc_send(pub, buf, len, 0), (long long)len);
	}
	TU_CHECK_EQ(ipc_dropped(pub), 5);
	TU_CHECK_EQ(ipc_subscribers(pub), 0);
	TU_ERR(ipc_recv(pub, buf, sizeof buf, 0), -EOPNOTSUPP);
	sub = subscribe(C.uri);
	TU_ERR(ipc_send(sub, "x", 1, 0), -EOPNOTSUPP);
	TU_ERR(ipc_subscribers(sub), -EINVAL);
	wait_subscribers(pub, 1);
	size_t len = gen(buf, 5);
	TU_CHECK_EQ(ipc_send(pub, buf, len, IPC_NONBLOCK), (long long)len);
	/* One thread drives both ends (a TLS handshake needs both). */
	double end = tu_now() + wait_ms(STEP_MS) / 1000.0;
	ssize_t r;
	ipc_pollitem it[2] = {{.channel = pub, .events = IPC_POLLOUT},
	                      {.channel = sub, .events = IPC_POLLIN}};
	while ((r = ipc_recv(sub, buf, sizeof buf, IPC_NONBLOCK)) == -EAGAIN &&
	       tu_now() < end) {
		TU_OK(ipc_poll(it, 2, 10));
	}
	check_msg(buf, r, 5);
	TU_CHECK_EQ(ipc_dropped(pub), 5);
	TU_OK(ipc_close(sub));
	TU_OK(ipc_close(pub));
	return 0;
}

/* --------------------------------------------------------------- drop -- */

struct seen {
	long received, dropped, first, last;
};

static int
sub_drop(void *argp)
{
	struct sub_arg *a = argp;
	unsigned char *buf = xmalloc(DROP_LEN);
	struct seen s = {0, 0, -1, -1};
	ssize_t r;

	ipc_channel *ch = subscribe(a->uri);
	if (a->go >= 0) {
		(void)pipe_get(
		        a->go); /* stalled until the publisher is done */
	}
	while ((r = ipc_recv(ch, buf, DROP_LEN, 0)) >= 0) {
		long i = (long)get32(buf);
		TU_CHECK_MSG(r == DROP_LEN && i > s.last &&
		                     mismatch(buf + 4, DROP_LEN - 4,
		                              (uint32_t)i) < 0,
		             "message %ld after %ld: %zd bytes", i, s.last, r);
		if (s.received++ == 0) {
			s.first = i;
		}
		s.last = i;
	}
	TU_CHECK_EQ(r, -EPIPE);
	s.dropped = (long)ipc_dropped(ch);
	TU_OK(ipc_close(ch));
	TU_CHECK(write(a->report, &s, sizeof s) == (ssize_t)sizeof s);
	free(buf);
	return 0;
}

/* slow=drop: a stalled subscriber loses messages, the other does not
 * wait for it, and both ends count exactly what was lost. */
int
case_pubsub_drop(void *unused)
{
	struct sub_arg fast = {.go = -1}, slow;
	struct seen sf = {0, 0, 0, 0}, ss = sf;
	const long m = 4000;
	int go[2], rep[2];
	char uri[600];
	ipc_channel *pub;

	(void)unused;
	need_pubsub("pubsub_drop");
	need_caps(IPC_CAP_ORDERED, "IPC_CAP_ORDERED");
	with_opt(uri, sizeof uri, "slow=drop");
	TU_OK(pipe(go) == 0 && pipe(rep) == 0 ? 0 : -errno);
	snprintf(fast.uri, sizeof fast.uri, "%s", uri);
	fast.report = rep[1];
	slow = fast;
	slow.go = go[0];
	pid_t kf = TU_OK(tu_fork(sub_drop, &fast, LIMIT_S));
	pid_t ks = TU_OK(tu_fork(sub_drop, &slow, LIMIT_S));
	close(go[0]);
	close(rep[1]);
	TU_OK(ipc_open(&pub, uri, IPC_PUBLISH));
	TU_CHECK(!(ipc_caps(pub) & IPC_CAP_RELIABLE));
	wait_subscribers(pub, 2);
	TU_OK(ipc_set_timeout(pub, 0)); /* slow=drop never waits */
	unsigned char *buf = xmalloc(DROP_LEN);
	for (long i = 0; i < m; i++) {
		put32(buf, (uint32_t)i);
		fill(buf + 4, DROP_LEN - 4, (uint32_t)i);
		TU_CHECK_EQ(ipc_send(pub, buf, DROP_LEN, 0), DROP_LEN);
	}
	free(buf);
	unsigned long long pd = ipc_dropped(pub);
	pipe_put(go[1], 1);
	close(go[1]);
	TU_OK(ipc_set_timeout(pub, wait_ms(STEP_MS)));
	TU_OK(ipc_close(pub));
	for (int k = 0; k < 2; k++) {
		struct seen s;
		TU_CHECK(read(rep[0], &s, sizeof s) == (ssize_t)sizeof s);
		/* A subscriber cannot know of what it lost before its
		 * first message (a TLS handshake still going on). */
		TU_CHECK_MSG(s.dropped == (s.received > 0
		                                   ? s.last - s.first + 1 -
		                                             s.received
		                                   : 0),
		             "received %ld, dropped %ld, first %ld, last %ld",
		             s.received, s.dropped, s.first, s.last);
		if (k == 0) {
			sf = s;
		} else {
			ss = s;
		}
	}
	close(rep[0]);
	reap_ok(kf);
	reap_ok(ks);
	printf("pubsub_drop: %ld sent; subscribers received %ld and %ld; "
	       "publisher counted %llu dropped\n",
	       m, sf.received, ss.received, pd);
	long lost = (m - sf.received) + (m - ss.received);
	TU_CHECK_EQ(pd, lost);
	TU_CHECK_MSG(sf.received + ss.received > 0 &&
	                     sf.received + ss.received < 2 * m,
	             "nothing was lost, or nothing arrived");
	return 0;
}

/* --------------------------------------------------------------- poll -- */

/* Wait on the descriptor, then receive without blocking; a wake-up
 * that brings nothing (a TLS record that is not data) waits again. */
static ssize_t
recv_polled(ipc_channel *s, struct pollfd *p, unsigned char *buf, size_t cap)
{
	double end = tu_now() + wait_ms(STEP_MS) / 1000.0;
	ssize_t r;

	do {
		TU_CHECK_MSG(tu_now() < end, "nothing arrived");
		TU_CHECK_EQ(poll(p, 1, wait_ms(STEP_MS)), 1);
		r = ipc_recv(s, buf, cap, IPC_NONBLOCK);
	} while (r == -EAGAIN);
	return r;
}

static int
sub_poll(void *argp)
{
	struct sub_arg *a = argp;
	ipc_channel *s = subscribe(a->uri);
	struct pollfd p = {.fd = TU_OK(ipc_fd(s)), .events = POLLIN};
	unsigned char buf[SMALL];

	for (long i = 0; i < 2; i++) {
		check_msg(buf, recv_polled(s, &p, buf, sizeof buf), i);
	}
	TU_ERR(ipc_recv(s, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	TU_CHECK_EQ(poll(&p, 1, 0), 0);
	ipc_pollitem it = {.channel = s, .events = IPC_POLLIN};
	TU_CHECK_EQ(ipc_poll(&it, 1, 0), 0);
	pipe_put(a->report, 1);
	TU_CHECK_EQ(ipc_poll(&it, 1, wait_ms(STEP_MS)), 1); /* the close */
	TU_ERR(recv_polled(s, &p, buf, sizeof buf), -EPIPE);
	TU_OK(ipc_close(s));
	return 0;
}

/* ipc_fd() and ipc_poll on both ends, level-triggered. */
int
case_pubsub_poll(void *unused)
{
	struct sub_arg a = {0};
	ipc_channel *pub;
	int rep[2];

	(void)unused;
	need_pubsub("pubsub_poll");
	need_caps(IPC_CAP_RELIABLE, "IPC_CAP_RELIABLE");
	snprintf(a.uri, sizeof a.uri, "%s", C.uri);
	TU_OK(pipe(rep) == 0 ? 0 : -errno);
	a.report = rep[1];
	TU_OK(ipc_open(&pub, C.uri, IPC_PUBLISH));
	TU_OK(ipc_set_timeout(pub, wait_ms(STEP_MS)));
	struct pollfd p = {.fd = TU_OK(ipc_fd(pub)), .events = POLLIN};
	TU_CHECK_EQ(poll(&p, 1, 0), 0); /* nobody is knocking */
	pid_t kid = TU_OK(tu_fork(sub_poll, &a, LIMIT_S));
	close(rep[1]);
	TU_CHECK_EQ(poll(&p, 1, wait_ms(30000)), 1); /* a subscriber */
	TU_CHECK_EQ(ipc_subscribers(pub), 1);
	TU_CHECK_EQ(poll(&p, 1, 0), 0); /* taken in: quiet again */
	ipc_pollitem it = {.channel = pub, .events = IPC_POLLOUT};
	TU_CHECK_EQ(ipc_poll(&it, 1, 0), 1);
	TU_CHECK(it.revents & IPC_POLLOUT);
	publish_range(pub, 0, 2);
	TU_CHECK_EQ(pipe_get(rep[0]), 1);
	close(rep[0]);
	TU_OK(ipc_close(pub));
	reap_ok(kid);
	return 0;
}
