/*
 * Conformance cases: zero-copy, duplex threads, ipc_pair + fork, a
 * checksummed stream of 10^5 messages, and listeners.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "ipc/ipc.h"
#include "testutil.h"
#include "conformance.h"
/* Sizes for the zero-copy case. */
static int
zc_sizes(size_t *out)
{
	static const size_t want[] = {0, 1, 100, 4096, 65536, MIB};
	int n = 0;

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		size_t len = min_sz(want[i], G.max_msg);
		if (n == 0 || out[n - 1] != len) {
			out[n++] = len;
		}
	}
	return n;
}

static int
peer_zc(struct side *sd)
{
	size_t sizes[8];
	int n = zc_sizes(sizes);
	const void *p;
	size_t len;
	void *w;

	for (int i = 0; i < n; i++) {
		TU_OK(ipc_acquire(sd->ch, &p, &len, 0));
		TU_CHECK_MSG(len == sizes[i], "acquired %zu bytes, want %zu",
		             len, sizes[i]);
		TU_CHECK(mismatch(p, len, (uint32_t)len) < 0);
		if (i == 0) {
			TU_ERR(ipc_acquire(sd->ch, &p, &len, IPC_NONBLOCK),
			       -EBUSY);
		}
		TU_OK(ipc_release(sd->ch));
		if (i == 0) {
			TU_ERR(ipc_release(sd->ch), -EINVAL);
		}
		ctl_put(sd->ctl, CTL_DONE);
	}
	for (int i = 0; i < n; i++) {
		ctl_expect(sd->ctl, CTL_GO);
		TU_OK(ipc_reserve(sd->ch, sizes[i], &w, 0));
		TU_CHECK(sizes[i] == 0 || w != NULL);
		fill(w, sizes[i], (uint32_t)sizes[i]);
		TU_OK(ipc_commit(sd->ch, sizes[i]));
	}
	size_t shortlen = min_sz(1000, G.max_msg);
	TU_OK(ipc_reserve(sd->ch, shortlen, &w, 0));
	fill(w, shortlen, 10u);
	TU_OK(ipc_commit(sd->ch, min_sz(10, shortlen)));
	ctl_expect(sd->ctl, CTL_DONE);
	return 0;
}

/* reserve/commit and acquire/release in both directions, interleaved with
 * send/recv, and their misuse.  Each message is acknowledged on the
 * control socket before the next is sent, so unreliable drivers run this
 * too; the receiver is already waiting in acquire, since a large message
 * may not fit in the channel before it is read. */
int
case_zerocopy(void *unused)
{
	size_t sizes[8];
	int n = zc_sizes(sizes);
	unsigned char buf[16];
	const void *p;
	size_t len;
	void *w, *w2;
	struct sess s;

	(void)unused;
	printf("%s\n", (G.caps & IPC_CAP_ZEROCOPY)
	                       ? "IPC_CAP_ZEROCOPY: the ring is used in place"
	                       : "no IPC_CAP_ZEROCOPY: the copy fallback");
	sess_start(&s, peer_zc, NULL, 0);
	TU_ERR(ipc_commit(s.ch, 0), -EINVAL);
	TU_ERR(ipc_release(s.ch), -EINVAL);
	TU_ERR(ipc_acquire(s.ch, &p, &len, IPC_NONBLOCK), -EAGAIN);
	if (G.max_msg < ((size_t)1 << 40)) {
		TU_ERR(ipc_reserve(s.ch, G.max_msg + 1, &w, 0), -EMSGSIZE);
	}
	for (int i = 0; i < n; i++) {
		TU_OK(ipc_reserve(s.ch, sizes[i], &w, 0));
		TU_CHECK(sizes[i] == 0 || w != NULL);
		if (i == 0) {
			TU_ERR(ipc_reserve(s.ch, 1, &w2, IPC_NONBLOCK),
			       -EBUSY);
		}
		fill(w, sizes[i], (uint32_t)sizes[i]);
		TU_OK(ipc_commit(s.ch, sizes[i]));
		if (i == 0) {
			TU_ERR(ipc_commit(s.ch, 0), -EINVAL);
		}
		ctl_expect(s.ctl, CTL_DONE);
	}
	for (int i = 0; i < n; i++) {
		ctl_put(s.ctl, CTL_GO);
		TU_OK(ipc_acquire(s.ch, &p, &len, 0));
		TU_CHECK_MSG(len == sizes[i], "acquired %zu bytes, want %zu",
		             len, sizes[i]);
		TU_CHECK(mismatch(p, len, (uint32_t)len) < 0);
		TU_OK(ipc_release(s.ch));
	}
	size_t shortlen = min_sz(10, min_sz(1000, G.max_msg));
	EXPECT_FILL(s.ch, buf, sizeof buf, shortlen, 10u);
	ctl_put(s.ctl, CTL_DONE);
	sess_end(&s);
	return 0;
}

#define NDUPLEX 20000

struct duplex {
	ipc_channel *ch;
	pthread_t th;
};

static void *
duplex_sender(void *arg)
{
	struct duplex *d = arg;
	unsigned char b[256];

	for (uint32_t i = 0; i < NDUPLEX; i++) {
		size_t len = 8 + i % 120;
		fill(b, len, i);
		put32(b, i);
		TU_CHECK_EQ(ipc_send(d->ch, b, len, 0), (long long)len);
	}
	return NULL;
}

/* Send from a second thread while this thread receives. */
static void
duplex_run(ipc_channel *ch)
{
	struct duplex d = {.ch = ch};
	unsigned char b[256], ref[256];

	TU_CHECK(pthread_create(&d.th, NULL, duplex_sender, &d) == 0);
	for (uint32_t i = 0; i < NDUPLEX; i++) {
		ssize_t r = ipc_recv(ch, b, sizeof b, 0);
		size_t len = 8 + i % 120;
		TU_CHECK_MSG(r == (ssize_t)len, "duplex message %u: %s (%zd)",
		             i, tu_errname((int)r), r);
		fill(ref, len, i);
		put32(ref, i);
		TU_CHECK_MSG(memcmp(b, ref, len) == 0,
		             "duplex message %u: wrong content (number %u)", i,
		             get32(b));
	}
	pthread_join(d.th, NULL);
}

static int
peer_duplex(struct side *sd)
{
	duplex_run(sd->ch);
	ctl_put(sd->ctl, CTL_DONE);
	return 0;
}

int
case_duplex(void *unused)
{
	struct sess s;

	(void)unused;
	need_caps(IPC_CAP_RELIABLE | IPC_CAP_ORDERED,
	          "IPC_CAP_RELIABLE and IPC_CAP_ORDERED");
	double t0 = tu_now();
	sess_start(&s, peer_duplex, NULL, 0);
	duplex_run(s.ch);
	ctl_expect(s.ctl, CTL_DONE);
	sess_end(&s);
	printf("%d messages each way, sent and received at once, in %.2f s\n",
	       NDUPLEX, tu_now() - t0);
	return 0;
}

struct pairkid {
	ipc_channel *mine, *other;
	int ctl;
};

static int
pair_child(void *arg)
{
	struct pairkid *k = arg;

	TU_CHECK_EQ(ipc_close(k->other), 0);
	ctl_put(k->ctl, CTL_CLOSED);
	TU_OK(ipc_set_timeout(k->mine, STEP_MS));
	EXPECT_STR(k->mine, "ping");
	SEND_STR(k->mine, "pong");
	expect_numbered(k->mine, 100);
	if (ipc_caps(k->mine) & IPC_CAP_PEERCLOSE) {
		char b[16];
		TU_ERR(ipc_recv(k->mine, b, sizeof b, 0), -EPIPE);
	}
	TU_CHECK_EQ(ipc_close(k->mine), 0);
	return 0;
}

/* ipc_pair, fork, each process closes the end it does not use, and the
 * other process does not notice. */
int
case_pair_fork(void *unused)
{
	char pu[80];
	ipc_channel *a, *b;
	int sv[2];

	(void)unused;
	need_process("pair_fork");
	if (G.mode == M_PAIR) {
		snprintf(pu, sizeof pu, "%s", G.pair_uri);
	} else {
		snprintf(pu, sizeof pu, "%s:", G.scheme);
	}
	int r = ipc_pair(&a, &b, pu);
	if (r == -EOPNOTSUPP) {
		tu_skip("ipc_pair(\"%s\") is not supported", pu);
	}
	TU_OK(r);
	TU_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct pairkid k = {.mine = b, .other = a, .ctl = sv[1]};
	pid_t pid = tu_fork(pair_child, &k, LIMIT_S);
	TU_CHECK(pid > 0);
	close(sv[1]);
	TU_CHECK_EQ(ipc_close(b), 0);
	ctl_expect(sv[0], CTL_CLOSED);
	TU_OK(ipc_set_timeout(a, STEP_MS));
	SEND_STR(a, "ping");
	EXPECT_STR(a, "pong");
	send_numbered(a, 100);
	TU_CHECK_EQ(ipc_close(a), 0);
	TU_CHECK(tu_wait_ok(pid, CTL_MS) == 0);
	close(sv[0]);
	return 0;
}

#define STREAM_HDR    12
#define STREAM_MAXLEN 3000

static long
stream_count(void)
{
	const char *e = getenv("CONF_STREAM_N");

	return e != NULL ? atol(e) : 100000;
}

static int
peer_stream(struct side *sd)
{
	long n = stream_count();
	size_t maxlen = min_sz(STREAM_MAXLEN, G.max_msg);
	unsigned char *b = xmalloc(maxlen);
	uint32_t rs = G.seed ^ 0x5eed;
	uint32_t all = 0;

	for (long i = 0; i <= n; i++) {
		size_t len = STREAM_HDR;
		if (i < n) {
			len += xorshift(&rs) % (maxlen - STREAM_HDR + 1);
			fill(b + STREAM_HDR, len - STREAM_HDR, (uint32_t)i);
		} else {
			put32(b + STREAM_HDR - 4, all);
		}
		put32(b, (uint32_t)i);
		put32(b + 4, (uint32_t)len);
		if (i < n) {
			uint32_t c = fnv1a(b + STREAM_HDR, len - STREAM_HDR);
			put32(b + 8, c);
			all ^= c;
		}
		ssize_t r = ipc_send(sd->ch, b, len, 0);
		TU_CHECK_MSG(r == (ssize_t)len, "stream send %ld: %s", i,
		             tu_errname((int)r));
	}
	free(b);
	ctl_expect(sd->ctl, CTL_DONE);
	return 0;
}

/* 10^5 messages of random sizes between two processes, each with its
 * number, length and checksum; every one is counted. */
int
case_stream(void *unused)
{
	long n = stream_count();
	size_t maxlen = min_sz(STREAM_MAXLEN, G.max_msg);
	unsigned char *b = xmalloc(maxlen);
	uint32_t all = 0;
	long got = 0;
	struct sess s;

	(void)unused;
	need_caps(IPC_CAP_RELIABLE | IPC_CAP_ORDERED,
	          "IPC_CAP_RELIABLE and IPC_CAP_ORDERED");
	TU_CHECK(maxlen >= STREAM_HDR);
	double t0 = tu_now();
	sess_start(&s, peer_stream, NULL, 0);
	for (long i = 0; i < n; i++) {
		ssize_t r = ipc_recv(s.ch, b, maxlen, 0);
		TU_CHECK_MSG(r >= STREAM_HDR, "stream message %ld: %s (%zd)",
		             i, tu_errname((int)r), r);
		TU_CHECK_MSG(get32(b) == (uint32_t)i,
		             "stream message %ld carries number %u", i,
		             get32(b));
		TU_CHECK_MSG(get32(b + 4) == (uint32_t)r,
		             "stream message %ld: %zd bytes, header says %u",
		             i, r, get32(b + 4));
		uint32_t c = fnv1a(b + STREAM_HDR, (size_t)r - STREAM_HDR);
		TU_CHECK_MSG(c == get32(b + 8),
		             "stream message %ld: checksum mismatch", i);
		TU_CHECK_MSG(mismatch(b + STREAM_HDR, (size_t)r - STREAM_HDR,
		                      (uint32_t)i) < 0,
		             "stream message %ld: wrong content", i);
		all ^= c;
		got++;
	}
	ssize_t r = ipc_recv(s.ch, b, maxlen, 0);
	TU_CHECK_EQ(r, STREAM_HDR);
	TU_CHECK_EQ(get32(b), (uint32_t)n);
	TU_CHECK_MSG(get32(b + 8) == all, "stream: total checksum differs");
	TU_ERR(ipc_recv(s.ch, b, maxlen, IPC_NONBLOCK), -EAGAIN);
	ctl_put(s.ctl, CTL_DONE);
	sess_end(&s);
	printf("%ld messages received and checked in %.2f s\n", got,
	       tu_now() - t0);
	TU_CHECK_EQ(got, n);
	free(b);
	return 0;
}

#define NCLIENTS 3

static int
listen_client(void *arg)
{
	int k = (int)(intptr_t)arg;
	char m[32];
	ipc_channel *ch;

	TU_OK(ipc_open(&ch, C.uri, 0));
	TU_OK(ipc_set_timeout(ch, STEP_MS));
	snprintf(m, sizeof m, "client %d", k);
	SEND_STR(ch, m);
	snprintf(m, sizeof m, "ack %d", k);
	EXPECT_STR(ch, m);
	if (G.caps & IPC_CAP_PEERCLOSE) {
		char b[16];
		TU_ERR(ipc_recv(ch, b, sizeof b, 0), -EPIPE);
	}
	TU_CHECK_EQ(ipc_close(ch), 0);
	return 0;
}

static void *
listen_client_thread(void *arg)
{
	return (void *)(intptr_t)listen_client(arg);
}

/* ipc_listen and ipc_accept with several clients, or -EOPNOTSUPP. */
int
case_listener(void *unused)
{
	ipc_listener *l = NULL;
	ipc_channel *acc[NCLIENTS], *x;
	pid_t pids[NCLIENTS];
	pthread_t th[NCLIENTS];
	char lu[600];

	(void)unused;
	if (!(G.caps & IPC_CAP_LISTEN)) {
		int p[2] = {-1, -1};
		if (G.mode == M_FD) {
			TU_CHECK(pipe(p) == 0);
			snprintf(lu, sizeof lu, "fd://%d,%d", p[0], p[1]);
		} else {
			snprintf(lu, sizeof lu, "%s", C.uri);
		}
		TU_ERR(ipc_listen(&l, lu, 0), -EOPNOTSUPP);
		if (p[0] >= 0) {
			close(p[0]);
			close(p[1]);
		}
		tu_skip("no IPC_CAP_LISTEN (ipc_listen says -EOPNOTSUPP)");
	}
	need_open_mode("listener");
	TU_OK(ipc_listen(&l, C.uri, 0));
	int lfd = ipc_listener_fd(l);
	TU_CHECK_MSG(lfd >= 0, "ipc_listener_fd: %s", tu_errname(lfd));
	TU_ERR(ipc_accept(l, &x, IPC_NONBLOCK), -EAGAIN);
	ipc_pollitem it = {.listener = l, .fd = -1, .events = IPC_POLLIN};
	TU_CHECK_EQ(ipc_poll(&it, 1, 0), 0);

	for (int k = 0; k < NCLIENTS; k++) {
		if (G.threads) {
			TU_CHECK(pthread_create(&th[k], NULL,
			                        listen_client_thread,
			                        (void *)(intptr_t)k) == 0);
		} else {
			pids[k] = tu_fork(listen_client, (void *)(intptr_t)k,
			                  LIMIT_S);
			TU_CHECK(pids[k] > 0);
		}
	}
	for (int k = 0; k < NCLIENTS; k++) {
		it.revents = 0;
		TU_CHECK_EQ(ipc_poll(&it, 1, STEP_MS), 1);
		TU_CHECK(it.revents & IPC_POLLIN);
		struct pollfd pf = {.fd = lfd, .events = POLLIN};
		TU_CHECK_MSG(poll(&pf, 1, 0) == 1,
		             "ipc_listener_fd() not readable with a client "
		             "waiting");
		TU_OK(ipc_accept(l, &acc[k], 0));
		TU_OK(ipc_set_timeout(acc[k], STEP_MS));
	}
	for (int k = 0; k < NCLIENTS; k++) {
		char m[64];
		int who;
		ssize_t r = ipc_recv(acc[k], m, sizeof m - 1, 0);
		TU_OK(r);
		m[r] = '\0';
		TU_CHECK_MSG(sscanf(m, "client %d", &who) == 1 && who >= 0 &&
		                     who < NCLIENTS,
		             "accepted channel %d got \"%s\"", k, m);
		snprintf(m, sizeof m, "ack %d", who);
		SEND_STR(acc[k], m);
	}
	for (int k = 0; k < NCLIENTS; k++) {
		TU_CHECK_EQ(ipc_close(acc[k]), 0);
	}
	for (int k = 0; k < NCLIENTS; k++) {
		if (G.threads) {
			void *ret;
			pthread_join(th[k], &ret);
			TU_CHECK(ret == NULL);
		} else {
			TU_CHECK(tu_wait_ok(pids[k], CTL_MS) == 0);
		}
	}
	TU_CHECK_EQ(ipc_listener_close(l), 0);
	int r = ipc_open(&x, C.uri, 0);
	TU_CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED,
	             "ipc_open after ipc_listener_close: %s", tu_errname(r));
	return 0;
}
