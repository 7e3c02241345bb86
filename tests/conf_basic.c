/*
 * Conformance cases: the API, options, opening, modes, message boundaries,
 * ordering, sizes, EMSGSIZE, non-blocking calls, timeouts and EINTR.
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
/* NULL and invalid arguments are -EINVAL; closing NULL is 0. */
int
case_api_misuse(void *unused)
{
	ipc_channel *a = NULL, *b = NULL, *x = NULL;
	ipc_pollitem it;
	char buf[16];

	(void)unused;
	TU_CHECK(ipc_last_error() != NULL);
	TU_ERR(ipc_open(NULL, C.uri, IPC_CREATE), -EINVAL);
	TU_ERR(ipc_open(&x, NULL, IPC_CREATE), -EINVAL);
	TU_CHECK_MSG(ipc_last_error()[0] != '\0',
	             "a failure left ipc_last_error() empty");
	TU_ERR(ipc_open(&x, "nosuchscheme://x", IPC_CREATE), -EPROTONOSUPPORT);
	TU_CHECK_MSG(strstr(ipc_last_error(), "nosuchscheme") != NULL,
	             "ipc_last_error() \"%s\" does not name the scheme",
	             ipc_last_error());
	TU_ERR(ipc_send(NULL, "x", 1, 0), -EINVAL);
	TU_ERR(ipc_recv(NULL, buf, sizeof buf, 0), -EINVAL);
	TU_CHECK_EQ(ipc_close(NULL), 0);
	TU_CHECK_EQ(ipc_max_msg(NULL), 0);
	TU_CHECK_EQ(ipc_caps(NULL), 0);
	TU_CHECK(ipc_scheme(NULL) == NULL);
	TU_ERR(ipc_fd(NULL), -EINVAL);
	TU_ERR(ipc_set_timeout(NULL, 5), -EINVAL);
	TU_CHECK(ipc_strerror(-EPIPE) != NULL && ipc_strerror(-EPIPE)[0]);

	lone_open(&a, &b);
	TU_ERR(ipc_set_timeout(a, -2), -EINVAL);
	TU_ERR(ipc_send(a, NULL, 5, IPC_NONBLOCK), -EINVAL);
	TU_ERR(ipc_commit(a, 0), -EINVAL);
	TU_ERR(ipc_release(a), -EINVAL);
	/* DESIGN.md 2b: fd is ignored when a channel is named (the
	 * pollitem case checks that); naming nothing is ignored as poll(2)
	 * ignores negative descriptors. */
	it = (ipc_pollitem){.fd = -1, .events = IPC_POLLIN};
	TU_CHECK_EQ(ipc_poll(&it, 1, 0), 0);
	TU_CHECK_EQ(it.revents, 0);
	TU_CHECK_EQ(ipc_close(a), 0);
	TU_CHECK_EQ(ipc_close(b), 0);
	return 0;
}

/* base + "?key" or "&key". */
static void
with_query(char *out, size_t n, const char *base, const char *kv)
{
	snprintf(out, n, "%s%c%s", base, strchr(base, '?') ? '&' : '?', kv);
}

static void
check_names_key(const char *key)
{
	TU_CHECK_MSG(strstr(ipc_last_error(), key) != NULL,
	             "ipc_last_error() \"%s\" does not mention \"%s\"",
	             ipc_last_error(), key);
}

/* An unknown option is -EINVAL with an ipc_last_error() naming it; for
 * NAME addresses, bad names are -EINVAL too. */
int
case_bad_option(void *unused)
{
	ipc_channel *a = NULL, *b = NULL;
	char u[700];

	(void)unused;
	if (G.mode == M_PAIR) {
		with_query(u, sizeof u, G.pair_uri, "bogus=1");
		TU_ERR(ipc_pair(&a, &b, u), -EINVAL);
		check_names_key("bogus");
		return 0;
	}
	if (G.mode == M_FD) {
		int p[2];
		char base[64];
		TU_CHECK(pipe(p) == 0);
		snprintf(base, sizeof base, "fd://%d,%d", p[0], p[1]);
		with_query(u, sizeof u, base, "bogus=1");
		TU_ERR(ipc_open(&a, u, 0), -EINVAL);
		check_names_key("bogus");
		/* Who owns the descriptors after a failed open is not
		 * specified: close them whether or not they still exist. */
		close(p[0]);
		close(p[1]);
		return 0;
	}
	with_query(u, sizeof u, C.uri, "bogus=1");
	TU_ERR(ipc_open(&a, u, IPC_CREATE), -EINVAL);
	check_names_key("bogus");
	TU_ERR(ipc_open(&a, u, 0), -EINVAL);
	check_names_key("bogus");
	with_query(u, sizeof u, C.uri, "bogus2");
	TU_ERR(ipc_open(&a, u, IPC_CREATE), -EINVAL);
	check_names_key("bogus2");

	/* NAME form: "scheme://%s" exactly. */
	size_t sl = strlen(G.scheme);
	if (strncmp(G.tmpl + sl, "://%s", 6) == 0) {
		char name[260];
		snprintf(u, sizeof u, "%s://bad%%2Fname", G.scheme);
		TU_ERR(ipc_open(&a, u, IPC_CREATE), -EINVAL);
		memset(name, 'a', 201);
		name[201] = '\0';
		snprintf(u, sizeof u, "%s://%s", G.scheme, name);
		TU_ERR(ipc_open(&a, u, IPC_CREATE), -EINVAL);
		snprintf(u, sizeof u, "%s://", G.scheme);
		TU_ERR(ipc_open(&a, u, IPC_CREATE), -EINVAL);
	}
	return 0;
}

/* Without IPC_CREATE and without an endpoint, ipc_open fails at once. */
int
case_open_missing(void *unused)
{
	ipc_channel *a = NULL;

	(void)unused;
	need_open_mode("open_missing");
	for (int i = 0; i < 2; i++) {
		double t0 = tu_now();
		int r = ipc_open(&a, C.uri, i ? IPC_NONBLOCK : 0);
		double t = tu_now() - t0;
		TU_CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED,
		             "ipc_open(%s) of a missing endpoint: %s, want "
		             "ENOENT or ECONNREFUSED",
		             C.uri, tu_errname(r));
		TU_CHECK_MSG(ipc_last_error()[0] != '\0',
		             "no ipc_last_error() after a failed open");
		TU_CHECK_MSG(t < 2.0 * tu_time_factor(),
		             "ipc_open took %.3f s to fail", t);
	}
	return 0;
}

/* What the channel says about itself. */
int
case_facts(void *unused)
{
	ipc_channel *a = NULL, *b = NULL;

	(void)unused;
	lone_open(&a, &b);
	for (int i = 0; i < 2; i++) {
		ipc_channel *ch = i ? b : a;
		if (ch == NULL) {
			continue;
		}
		const char *sc = ipc_scheme(ch);
		TU_CHECK_MSG(sc != NULL && strcmp(sc, G.scheme) == 0,
		             "ipc_scheme() is \"%s\", want \"%s\"",
		             sc ? sc : "(null)", G.scheme);
		TU_CHECK(ipc_max_msg(ch) > 0);
		if (ipc_caps(ch) & IPC_CAP_RELIABLE) {
			TU_CHECK_MSG(ipc_max_msg(ch) >= MIB,
			             "a reliable driver must carry 1 MiB; "
			             "ipc_max_msg() is %zu",
			             ipc_max_msg(ch));
		}
		/* DESIGN.md 2b: every driver has a descriptor. */
		int fd = ipc_fd(ch);
		TU_CHECK_MSG(fd >= 0, "ipc_fd(): %s (%s)", tu_errname(fd),
		             ipc_last_error());
		TU_CHECK_EQ(ipc_fd(ch), fd); /* the same one every time */
		printf("%s end: scheme %s, caps 0x%x, max_msg %zu, ipc_fd "
		       "%d\n",
		       i ? "second" : "first", sc, ipc_caps(ch),
		       ipc_max_msg(ch), fd);
	}
	if (b != NULL) {
		TU_CHECK_EQ(ipc_caps(a), ipc_caps(b));
	}
	TU_CHECK_EQ(ipc_close(a), 0);
	TU_CHECK_EQ(ipc_close(b), 0);
	return 0;
}

static int
peer_ping(struct side *sd)
{
	EXPECT_STR(sd->ch, "ping");
	SEND_STR(sd->ch, "pong");
	return 0;
}

/* Open and close many times; reuse an address once both ends closed. */
int
case_open_close_repeat(void *unused)
{
	ipc_channel *a, *b;
	struct sess s;

	(void)unused;
	int f0 = tu_fd_count();
	for (int i = 0; i < 20; i++) {
		lone_open(&a, &b);
		TU_CHECK_EQ(ipc_close(a), 0);
		TU_CHECK_EQ(ipc_close(b), 0);
	}
	TU_CHECK_EQ(tu_fd_count(), f0);
	for (int i = 0; i < 3; i++) {
		sess_start(&s, peer_ping, NULL, 0);
		SEND_STR(s.ch, "ping");
		EXPECT_STR(s.ch, "pong");
		sess_join(&s, 0);
		sess_close(&s);
	}
	return 0;
}

static int
peer_first(struct side *sd)
{
	char buf[64];

	SEND_STR(sd->ch, hello);
	EXPECT_STR(sd->ch, "first");
	TU_ERR(ipc_recv(sd->ch, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	ctl_put(sd->ctl, CTL_DONE);
	return 0;
}

/* Before any peer exists, the creator's calls wait (and time out); they
 * never report -EPIPE and send nothing. */
int
case_creator_waits(void *unused)
{
	ipc_channel *ch;
	struct sess s;
	char buf[64];

	(void)unused;
	need_open_mode("creator_waits");
	TU_OK(ipc_open(&ch, C.uri, IPC_CREATE));
	TU_ERR(ipc_recv(ch, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	TU_ERR(ipc_send(ch, "early", 5, IPC_NONBLOCK), -EAGAIN);
	TU_OK(ipc_set_timeout(ch, 100));
	double t0 = tu_now();
	TU_ERR(ipc_send(ch, "early", 5, 0), -ETIMEDOUT);
	double t1 = tu_now();
	TU_ERR(ipc_recv(ch, buf, sizeof buf, 0), -ETIMEDOUT);
	double t2 = tu_now();
	TU_CHECK_MSG(t1 - t0 >= 0.09 && t2 - t1 >= 0.09,
	             "100 ms timeouts returned after %.3f s and %.3f s",
	             t1 - t0, t2 - t1);
	TU_OK(ipc_set_timeout(ch, STEP_MS));

	s.ch = ch;
	sess_start(&s, peer_first, NULL, S_ADOPT | S_NO_HELLO);
	SEND_STR(s.ch, "first"); /* waits for the peer to arrive */
	EXPECT_STR(s.ch, hello);
	ctl_expect(s.ctl, CTL_DONE);
	sess_end(&s);
	return 0;
}

/* Check the permission bits of every object new since before. */
static int
check_modes(const struct tu_objs *before, int want, const char *when)
{
	struct tu_shared *sh = tu_shared();
	pid_t pids[256];
	size_t np = 0, idx[64];
	struct tu_objs now;
	int seen = 0;

	for (int i = 0; sh != NULL && i < sh->npids && np < 255; i++) {
		pids[np++] = sh->pids[i];
	}
	pids[np++] = getpid();
	tu_objs_snapshot(&now, C.token, C.dir);
	size_t n = tu_objs_new(before, &now, pids, np, idx, 64);
	for (size_t i = 0; i < n; i++) {
		const char *name = now.names[idx[i]];
		int m = tu_obj_mode(name);
		if (m == -1) {
			continue; /* a directory or an abstract socket */
		}
		TU_CHECK_MSG(m >= 0, "%s: cannot read the mode of %s: %s",
		             when, name, tu_errname(m));
		TU_CHECK_MSG(m == want, "%s: %s has mode %04o, want %04o",
		             when, name, m, want);
		printf("%s: %s has mode %04o\n", when, name, m);
		seen++;
	}
	tu_objs_free(&now);
	return seen;
}

static int
peer_hold(struct side *sd)
{
	ctl_expect(sd->ctl, CTL_DONE);
	return 0;
}

/* Created objects are mode 0600, whatever the umask, unless the URI says
 * mode=; then they have exactly that mode. */
int
case_modes(void *unused)
{
	struct tu_objs before;
	ipc_channel *a;
	struct sess s;
	char u[700];

	(void)unused;
	need_open_mode("modes");
	umask(022);
	tu_objs_snapshot(&before, C.token, C.dir);
	TU_OK(ipc_open(&a, C.uri, IPC_CREATE));
	int seen = check_modes(&before, 0600, "after ipc_open");
	TU_CHECK_EQ(ipc_close(a), 0);
	sess_start(&s, peer_hold, NULL, 0);
	seen += check_modes(&before, 0600, "with a peer");
	ctl_put(s.ctl, CTL_DONE);
	sess_end(&s);
	with_query(u, sizeof u, C.uri, "mode=0640");
	umask(077);
	int r = ipc_open(&a, u, IPC_CREATE), seen640 = 0;
	if (r == -EINVAL) {
		/* Only a refusal of mode= itself may excuse it (no such
		 * option, or none for this address), not any -EINVAL. */
		TU_CHECK_MSG(strstr(ipc_last_error(), "mode") != NULL,
		             "mode=0640 gave -EINVAL without naming mode=: %s",
		             ipc_last_error());
		printf("no mode= option (%s)\n", ipc_last_error());
	} else {
		TU_OK(r);
		seen640 = check_modes(&before, 0640,
		                      "mode=0640 under umask 077");
		TU_CHECK_EQ(ipc_close(a), 0);
		/* A driver that made objects with a mode must make them
		 * with mode= too, and the reverse. */
		TU_CHECK_MSG((seen == 0) == (seen640 == 0),
		             "objects with a mode: %d by default, %d with "
		             "mode=0640",
		             seen, seen640);
	}
	tu_objs_free(&before);
	if (seen == 0 && seen640 == 0) {
		tu_skip("modes: %s creates no object with a mode (nothing "
		        "to check)",
		        C.uri);
	}
	return 0;
}

#define NBOUND 300

static int
peer_boundaries(struct side *sd)
{
	unsigned char *buf = xmalloc(65536);

	for (int i = 0; i < NBOUND; i++) {
		size_t len = (size_t)(i * 7) % 257;
		fill(buf, len, (uint32_t)i);
		TU_CHECK_EQ(send_wait(sd->ch, buf, len, STEP_MS),
		            (long long)len);
	}
	for (int i = 0; i < NBOUND; i++) {
		size_t len = (size_t)(i * 13) % 301;
		EXPECT_FILL(sd->ch, buf, 65536, len, 1000u + (uint32_t)i);
	}
	ctl_put(sd->ctl, CTL_DONE);
	free(buf);
	return 0;
}

/* A burst of small messages (zero-length among them) is received one
 * message per call, in both directions and both roles. */
int
case_boundaries(void *unused)
{
	unsigned char *buf = xmalloc(65536);
	struct sess s;

	(void)unused;
	need_caps(IPC_CAP_RELIABLE, "IPC_CAP_RELIABLE (a burst may be lost)");
	int roles = (G.mode == M_OPEN || G.mode == M_THREAD) ? 2 : 1;
	for (int role = 0; role < roles; role++) {
		sess_start(&s, peer_boundaries, NULL,
		           role ? S_PEER_CREATES : 0);
		for (int i = 0; i < NBOUND; i++) {
			size_t len = (size_t)(i * 7) % 257;
			EXPECT_FILL(s.ch, buf, 65536, len, (uint32_t)i);
		}
		for (int i = 0; i < NBOUND; i++) {
			size_t len = (size_t)(i * 13) % 301;
			fill(buf, len, 1000u + (uint32_t)i);
			TU_CHECK_EQ(send_wait(s.ch, buf, len, STEP_MS),
			            (long long)len);
		}
		ctl_expect(s.ctl, CTL_DONE);
		sess_end(&s);
	}
	free(buf);
	return 0;
}

#define NORDER 3000

/* Receive NORDER numbered messages, alternately with ipc_recv and with
 * ipc_acquire/ipc_release. */
static void
expect_in_order(ipc_channel *ch)
{
	for (uint32_t i = 0; i < NORDER; i++) {
		unsigned char b[64];
		const unsigned char *p;
		size_t len;
		if (i % 2 == 0) {
			ssize_t r = ipc_recv(ch, b, sizeof b, 0);
			TU_CHECK_EQ(r, 8);
			p = b;
			len = (size_t)r;
		} else {
			const void *v;
			TU_OK(ipc_acquire(ch, &v, &len, 0));
			TU_CHECK_EQ(len, 8);
			memcpy(b, v, len);
			TU_OK(ipc_release(ch));
			p = b;
		}
		TU_CHECK_MSG(get32(p) == i &&
		                     get32(p + 4) == (~i & 0x0fffffffu),
		             "message %u carries %u", i, get32(p));
	}
}

static void
send_in_order(ipc_channel *ch)
{
	for (uint32_t i = 0; i < NORDER; i++) {
		unsigned char b[8];
		put32(b, i);
		put32(b + 4, ~i & 0x0fffffffu);
		TU_CHECK_EQ(ipc_send(ch, b, 8, 0), 8);
	}
}

static int
peer_ordering(struct side *sd)
{
	send_in_order(sd->ch);
	expect_in_order(sd->ch);
	ctl_put(sd->ctl, CTL_DONE);
	return 0;
}

int
case_ordering(void *unused)
{
	struct sess s;

	(void)unused;
	need_caps(IPC_CAP_RELIABLE | IPC_CAP_ORDERED,
	          "IPC_CAP_RELIABLE and IPC_CAP_ORDERED");
	sess_start(&s, peer_ordering, NULL, 0);
	expect_in_order(s.ch);
	send_in_order(s.ch);
	ctl_expect(s.ctl, CTL_DONE);
	sess_end(&s);
	return 0;
}

/* Message sizes from 0 to min(1 MiB, ipc_max_msg()), and random ones, each
 * sent, echoed by the peer and checked byte for byte (received into a
 * buffer of exactly its size); alternately through blocking calls and
 * through IPC_NONBLOCK calls driven by ipc_poll. */
int
case_sizes(void *unused)
{
	static const size_t fixed[] = {0,     1,     2,       63,   64,
	                               65,    4095,  4096,    4097, 65535,
	                               65536, 65537, 1u << 20};
	size_t limit = min_sz(MIB, G.max_msg);
	size_t sizes[64];
	int n = 0;
	uint32_t rs = G.seed;
	struct sess s;

	(void)unused;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		if (fixed[i] <= limit) {
			sizes[n++] = fixed[i];
		}
	}
	if (limit < MIB) {
		sizes[n++] = limit - 1;
		sizes[n++] = limit;
	}
	for (int i = 0; i < 16; i++) {
		uint32_t r = xorshift(&rs);
		size_t len = (size_t)(xorshift(&rs) % (1u << (r % 21)));
		sizes[n++] = len > limit ? limit : len;
	}
	unsigned char *out = xmalloc(limit), *in = xmalloc(limit);
	sess_start(&s, peer_cmd, NULL, 0);
	ctl_put(s.ctl, CMD(CMD_ECHO, n));
	for (int i = 0; i < n; i++) {
		size_t len = sizes[i];
		double t0 = tu_now();
		fill(out, len, (uint32_t)len);
		int polled = i % 2; /* as the peer's echo_one() */
		ssize_t r = polled ? send_wait(s.ch, out, len, STEP_MS)
		                   : ipc_send(s.ch, out, len, 0);
		TU_CHECK_MSG(r == (ssize_t)len, "send of %zu bytes: %s (%zd)",
		             len, tu_errname((int)r), r);
		r = polled ? recv_wait(s.ch, in, len, STEP_MS)
		           : ipc_recv(s.ch, in, len, 0);
		TU_CHECK_MSG(r == (ssize_t)len, "echo of %zu bytes: %s (%zd)",
		             len, tu_errname((int)r), r);
		TU_CHECK_MSG(mismatch(in, len, (uint32_t)len) < 0,
		             "echo of %zu bytes differs", len);
		if (tu_now() - t0 > 0.5) {
			printf("note: the echo of %zu bytes took %.2f s\n",
			       len, tu_now() - t0);
		}
	}
	ctl_expect(s.ctl, CTL_DONE);
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);
	free(out);
	free(in);
	return 0;
}

static int
peer_after(struct side *sd)
{
	size_t big = *(size_t *)sd->arg;

	EXPECT_STR(sd->ch, "after");
	if (big > 0) {
		unsigned char *buf = xmalloc(big);
		EXPECT_FILL(sd->ch, buf, big, big, 77u);
		free(buf);
	}
	ctl_put(sd->ctl, CTL_DONE);
	return 0;
}

/* A message one byte over ipc_max_msg() is refused with -EMSGSIZE and
 * sends nothing: the next message arrives first and intact.  A message of
 * exactly ipc_max_msg() (when that is at most 16 MiB) goes through. */
int
case_emsgsize_send(void *unused)
{
	size_t m = G.max_msg;
	size_t exact = m <= 16 * (size_t)MIB ? m : 0;
	struct sess s;
	void *rb;

	(void)unused;
	if (m >= ((size_t)1 << 40)) {
		tu_skip("ipc_max_msg() is %zu: no buffer can exceed it", m);
	}
	/* Untouched pages of a MAP_NORESERVE mapping cost nothing. */
	unsigned char *big =
	        mmap(NULL, m + 1, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	TU_CHECK(big != MAP_FAILED);
	sess_start(&s, peer_after, &exact, 0);
	TU_ERR(ipc_send(s.ch, big, m + 1, 0), -EMSGSIZE);
	TU_CHECK(ipc_last_error()[0] != '\0');
	TU_ERR(ipc_send(s.ch, big, m + 1, IPC_NONBLOCK), -EMSGSIZE);
	TU_ERR(ipc_reserve(s.ch, m + 1, &rb, 0), -EMSGSIZE);
	SEND_STR(s.ch, "after");
	if (exact > 0) {
		fill(big, exact, 77u);
		TU_CHECK_EQ(ipc_send(s.ch, big, exact, 0), (long long)exact);
	}
	ctl_expect(s.ctl, CTL_DONE);
	sess_end(&s);
	munmap(big, m + 1);
	return 0;
}

static int
peer_emsg_recv(struct side *sd)
{
	unsigned char buf[100];

	fill(buf, 100, 100u);
	TU_CHECK_EQ(ipc_send(sd->ch, buf, 100, 0), 100);
	ctl_put(sd->ctl, CTL_SENT);
	ctl_expect(sd->ctl, CTL_GO);
	TU_CHECK_EQ(ipc_send(sd->ch, buf, 0, 0), 0);
	ctl_put(sd->ctl, CTL_SENT);
	ctl_expect(sd->ctl, CTL_GO);
	TU_CHECK_EQ(ipc_send(sd->ch, "z", 1, 0), 1);
	ctl_put(sd->ctl, CTL_SENT);
	ctl_expect(sd->ctl, CTL_DONE);
	return 0;
}

/* A receive buffer too small gives -EMSGSIZE and leaves the message
 * queued and pollable; zero-length messages fit in zero bytes. */
int
case_emsgsize_recv(void *unused)
{
	unsigned char buf[128];
	struct sess s;
	ipc_pollitem it;
	const void *p;
	size_t len;

	(void)unused;
	sess_start(&s, peer_emsg_recv, NULL, 0);
	ctl_expect(s.ctl, CTL_SENT);
	it = (ipc_pollitem){.channel = s.ch, .fd = -1, .events = IPC_POLLIN};
	TU_CHECK_EQ(ipc_poll(&it, 1, STEP_MS), 1);
	TU_ERR(ipc_recv(s.ch, buf, 10, 0), -EMSGSIZE);
	TU_ERR(ipc_recv(s.ch, buf, 99, IPC_NONBLOCK), -EMSGSIZE);
	TU_ERR(ipc_recv(s.ch, buf, 0, 0), -EMSGSIZE);
	it.revents = 0;
	TU_CHECK_EQ(ipc_poll(&it, 1, 0), 1);
	TU_CHECK(it.revents & IPC_POLLIN);
	EXPECT_FILL(s.ch, buf, 100, 100, 100u);
	ctl_put(s.ctl, CTL_GO);
	ctl_expect(s.ctl, CTL_SENT);
	TU_CHECK_EQ(ipc_recv(s.ch, buf, 0, 0), 0);
	ctl_put(s.ctl, CTL_GO);
	ctl_expect(s.ctl, CTL_SENT);
	TU_OK(ipc_acquire(s.ch, &p, &len, 0));
	TU_CHECK(len == 1 && *(const char *)p == 'z');
	TU_OK(ipc_release(s.ch));
	ctl_put(s.ctl, CTL_DONE);
	sess_end(&s);
	return 0;
}

/* IPC_NONBLOCK per call, then per channel at open. */
int
case_nonblock(void *unused)
{
	char buf[64];
	const void *p;
	size_t len;
	struct sess s;

	(void)unused;
	sess_start(&s, peer_cmd, NULL, 0);
	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	TU_ERR(ipc_acquire(s.ch, &p, &len, IPC_NONBLOCK), -EAGAIN);
	TU_CHECK_EQ(ipc_send(s.ch, "nb", 2, IPC_NONBLOCK), 2);
	ctl_put(s.ctl, CMD(CMD_ECHO, 1));
	ctl_expect(s.ctl, CTL_DONE);
	EXPECT_STR(s.ch, "nb");
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);

	if (G.mode == M_PAIR) {
		printf("note: ipc_pair() takes no flags: IPC_NONBLOCK at open "
		       "is not checked for %s\n",
		       G.tmpl);
		return 0;
	}
	sess_start(&s, peer_cmd, NULL, S_NONBLOCK);
	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, 0), -EAGAIN);
	TU_ERR(ipc_acquire(s.ch, &p, &len, 0), -EAGAIN);
	TU_CHECK_EQ(ipc_send(s.ch, "nb2", 3, 0), 3);
	ctl_put(s.ctl, CMD(CMD_ECHO, 1));
	ctl_expect(s.ctl, CTL_DONE);
	EXPECT_STR(s.ch, "nb2");
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);
	return 0;
}

/* ipc_set_timeout bounds recv and acquire on an empty channel. */
int
case_timeout(void *unused)
{
	char buf[64];
	const void *p;
	size_t len;
	struct sess s;

	(void)unused;
	sess_start(&s, peer_cmd, NULL, 0);
	TU_OK(ipc_set_timeout(s.ch, 150));
	double t0 = tu_now();
	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, 0), -ETIMEDOUT);
	double t1 = tu_now();
	TU_ERR(ipc_acquire(s.ch, &p, &len, 0), -ETIMEDOUT);
	double t2 = tu_now();
	TU_CHECK_MSG(t1 - t0 >= 0.14 && t2 - t1 >= 0.14,
	             "150 ms timeouts returned after %.3f s and %.3f s",
	             t1 - t0, t2 - t1);
	TU_OK(ipc_set_timeout(s.ch, 0));
	ssize_t r = ipc_recv(s.ch, buf, sizeof buf, 0);
	TU_CHECK_MSG(r == -EAGAIN || r == -ETIMEDOUT,
	             "recv with timeout 0: %s", tu_errname((int)r));
	TU_ERR(ipc_set_timeout(s.ch, -2), -EINVAL);
	TU_OK(ipc_set_timeout(s.ch, -1));
	ctl_put(s.ctl, CMD(CMD_LATE_SEND, 100));
	ctl_expect(s.ctl, CTL_READY);
	TU_CHECK_EQ(ipc_recv(s.ch, buf, sizeof buf, 0), 4); /* "late" */
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);
	return 0;
}

static volatile sig_atomic_t g_signals;

static void
on_usr1(int sig)
{
	(void)sig;
	g_signals++;
}

struct pester {
	pthread_t target, th;
	pid_t tid;
	atomic_int stop;
	atomic_int asleep_hits; /* signals sent while the target slept */
};

static void *
pester_main(void *arg)
{
	struct pester *ps = arg;

	while (!atomic_load(&ps->stop)) {
		/* Observed asleep in the kernel: this signal interrupts a
		 * blocking call (or the call returned meanwhile). */
		if (tu_wait_asleep(ps->tid, 0)) {
			atomic_fetch_add(&ps->asleep_hits, 1);
		}
		pthread_kill(ps->target, SIGUSR1);
		tu_sleep_ms(7);
	}
	return NULL;
}

/* Signals (installed without SA_RESTART) arriving during blocking calls
 * neither end them with -EINTR nor stretch or shorten their deadline. */
int
case_eintr(void *unused)
{
	struct sigaction sa;
	struct pester ps;
	struct sess s;
	char buf[64];

	(void)unused;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	TU_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

	sess_start(&s, peer_cmd, NULL, 0);
	ps.target = pthread_self();
	ps.tid = (pid_t)syscall(SYS_gettid);
	atomic_init(&ps.stop, 0);
	atomic_init(&ps.asleep_hits, 0);
	TU_CHECK(pthread_create(&ps.th, NULL, pester_main, &ps) == 0);

	TU_OK(ipc_set_timeout(s.ch, 300));
	double t0 = tu_now();
	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, 0), -ETIMEDOUT);
	double t1 = tu_now();
	ipc_pollitem it = {.channel = s.ch, .fd = -1, .events = IPC_POLLIN};
	TU_CHECK_EQ(ipc_poll(&it, 1, 300), 0);
	double t2 = tu_now();
	TU_CHECK_MSG(t1 - t0 >= 0.29 && t2 - t1 >= 0.29,
	             "300 ms waits under signals ended after %.3f s and "
	             "%.3f s",
	             t1 - t0, t2 - t1);
	TU_CHECK_MSG(t1 - t0 < 5 && t2 - t1 < 5,
	             "300 ms waits under signals ended after %.3f s and "
	             "%.3f s: the deadline restarts on every signal",
	             t1 - t0, t2 - t1);

	TU_OK(ipc_set_timeout(s.ch, -1));
	ctl_put(s.ctl, CMD(CMD_LATE_SEND, 200));
	ctl_expect(s.ctl, CTL_READY);
	TU_CHECK_EQ(ipc_recv(s.ch, buf, sizeof buf, 0), 4);
	TU_CHECK(memcmp(buf, "late", 4) == 0);
	atomic_store(&ps.stop, 1);
	pthread_join(ps.th, NULL);
	printf("%d signals delivered during the waits, %d sent while the "
	       "receiver slept in the kernel\n",
	       (int)g_signals, atomic_load(&ps.asleep_hits));
	/* What is tested: signals that hit a blocked call (not a count per
	 * second). */
	TU_CHECK(atomic_load(&ps.asleep_hits) > 0);
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);
	return 0;
}
