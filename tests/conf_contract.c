/*
 * Conformance cases of the section 2b contract: level-triggered ipc_fd(),
 * ipc_pollitem, ipc_local_uri() and ipc_listener_uri().
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
/* ---------------------------------------------- the section 2b contract -- */

/* Readiness of a descriptor: poll(2), waiting up to ms. */
static int
fd_now(int fd, int ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int r = poll(&pf, 1, ms);

	TU_CHECK_MSG(r >= 0, "poll(ipc_fd()): %s", strerror(errno));
	return r == 1 && (pf.revents & (POLLIN | POLLHUP | POLLERR));
}

/* The same through an epoll set in its default, level-triggered mode. */
static int
ep_now(int ep, int ms)
{
	struct epoll_event e;
	int r = epoll_wait(ep, &e, 1, ms);

	TU_CHECK_MSG(r >= 0, "epoll_wait: %s", strerror(errno));
	return r == 1;
}

/* ipc_fd() must say `want`, through poll(2) and through epoll.  "Not
 * readable" must hold now; "readable" may wait up to STEP_MS, because a
 * peer's "sent" is not "arrived" where a broker (D-Bus, NATS) carries the
 * message: a message already in the library's hands that the descriptor
 * does not report fails the same, after STEP_MS. */
#define LEVEL(fd, ep, want, when)                                             \
	do {                                                                  \
		int ms_ = (want) ? STEP_MS : 0;                               \
		int lp_ = fd_now(fd, ms_), le_ = ep_now(ep, ms_);             \
		TU_CHECK_MSG(lp_ == (want) && le_ == (want),                  \
		             "%s: ipc_fd() polls %s, epoll says %s; want %s", \
		             (when), lp_ ? "readable" : "not readable",       \
		             le_ ? "readable" : "not readable",               \
		             (want) ? "readable" : "not readable");           \
	} while (0)

/* Not readable, as LEVEL(fd, ep, 0, when).  dbus:// alone may be woken by
 * bus traffic that is no message for the channel (a late reply to one of
 * its sends; docs/dbus.md): readable there, a non-blocking receive must
 * say -EAGAIN and the descriptor must then be quiet again, as ipc.h
 * promises; a few rounds, each printed. */
static void
level0(ipc_channel *ch, int fd, int ep, const char *when)
{
	for (int round = 0; strcmp(G.scheme, "dbus") == 0 && round < 5;
	     round++) {
		if (!fd_now(fd, 0) && !ep_now(ep, 0)) {
			break;
		}
		char b[64];
		ssize_t r = ipc_recv(ch, b, sizeof b, IPC_NONBLOCK);
		TU_CHECK_MSG(r == -EAGAIN,
		             "%s: ipc_fd() readable and a receive gave %s, "
		             "want -EAGAIN",
		             when, tu_errname((int)r));
		printf("note: %s: a spurious wake-up (bus traffic)\n", when);
	}
	LEVEL(fd, ep, 0, when);
}

/* One non-blocking receive that must give the string s. */
#define EXPECT_NB(ch, s)                                                      \
	do {                                                                  \
		char nb_[64];                                                 \
		ssize_t nr_ = ipc_recv((ch), nb_, sizeof nb_, IPC_NONBLOCK);  \
		TU_CHECK_MSG(nr_ == (ssize_t)strlen(s) &&                     \
		                     memcmp(nb_, (s), strlen(s)) == 0,        \
		             "non-blocking receive: expected \"%s\", got %s " \
		             "(%zd)",                                         \
		             (s), tu_errname((int)nr_), nr_);                 \
	} while (0)

/*
 * ipc_fd() is level-triggered (DESIGN.md 2b).  What a driver must do:
 * the descriptor polls readable whenever ipc_recv would not block, no
 * matter which calls came before.  The case queues two messages, lets
 * ipc_poll see them (a driver may take both into its own buffer then),
 * and checks poll(2) and epoll (level-triggered) on ipc_fd() at every
 * step (LEVEL says how long each check waits): readable with two queued, after
 * ipc_poll, after receiving one of them; after receiving both a spurious
 * readiness is allowed once (printed as a note), but once a non-blocking
 * receive has said -EAGAIN the descriptor must not be readable, or an event
 * loop would spin.  Then: a message that arrives while nobody calls the
 * library makes it readable, and so does the peer's close (with
 * IPC_CAP_PEERCLOSE), which stays readable while ipc_recv says -EPIPE.
 */
int
case_fd_level(void *unused)
{
	struct epoll_event ev = {.events = EPOLLIN};
	char buf[64];
	struct sess s;

	(void)unused;
	sess_start(&s, peer_cmd, NULL, 0);
	int fd = ipc_fd(s.ch);
	TU_CHECK_MSG(fd >= 0, "ipc_fd(): %s (%s)", tu_errname(fd),
	             ipc_last_error());
	int ep = epoll_create1(EPOLL_CLOEXEC);
	TU_CHECK(ep >= 0);
	TU_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);

	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	level0(s.ch, fd, ep, "nothing queued, after a -EAGAIN receive");

	ctl_put(s.ctl, CMD(CMD_SENDN, 2));
	ctl_expect(s.ctl, CTL_SENT);
	short rev = poll1(s.ch, IPC_POLLIN, STEP_MS, 1);
	TU_CHECK(rev & IPC_POLLIN);
	LEVEL(fd, ep, 1, "two messages queued, after ipc_poll");
	poll1(s.ch, IPC_POLLIN, 0, 1);
	LEVEL(fd, ep, 1, "two messages queued, after a second ipc_poll");
	EXPECT_NB(s.ch, "m0");
	LEVEL(fd, ep, 1, "one of two received");
	poll1(s.ch, IPC_POLLIN, STEP_MS, 1);
	LEVEL(fd, ep, 1, "one of two received, after ipc_poll");
	EXPECT_NB(s.ch, "m1");
	if (fd_now(fd, 0)) {
		printf("note: ipc_fd() readable (spuriously) after both "
		       "messages were received\n");
	}
	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	level0(s.ch, fd, ep, "both received, a receive said -EAGAIN");
	poll1(s.ch, IPC_POLLIN, 0, 0);
	level0(s.ch, fd, ep, "both received, after an empty ipc_poll");

	/* Arrival while nobody calls the library. */
	ctl_put(s.ctl, CMD(CMD_SENDN, 1));
	ctl_expect(s.ctl, CTL_SENT);
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	/* Wake on the descriptor, receive without blocking; a spurious
	 * wake-up (-EAGAIN: bus traffic that was not our message) goes
	 * round again. */
	double until = tu_now() + STEP_MS / 1000.0;
	ssize_t got = -EAGAIN;
	while (got == -EAGAIN && tu_now() < until) {
		TU_CHECK_MSG(poll(&pf, 1, STEP_MS) == 1,
		             "ipc_fd() not readable when a message arrived");
		got = ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK);
	}
	TU_CHECK_MSG(got == 2 && memcmp(buf, "m0", 2) == 0,
	             "woken by ipc_fd(): expected \"m0\", got %s",
	             tu_errname((int)got));
	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	level0(s.ch, fd, ep, "it was received, a receive said -EAGAIN");

	if (G.caps & IPC_CAP_PEERCLOSE) {
		ctl_put(s.ctl, CMD_CLOSE);
		ctl_expect(s.ctl, CTL_CLOSED);
		TU_CHECK_MSG(poll(&pf, 1, STEP_MS) == 1,
		             "ipc_fd() not readable after the peer's close");
		TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EPIPE);
		LEVEL(fd, ep, 1, "the peer closed and ipc_recv says -EPIPE");
	} else {
		printf("readiness at the peer's close not checked: no "
		       "IPC_CAP_PEERCLOSE\n");
	}
	close(ep);
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);
	return 0;
}

/*
 * ipc_pollitem (DESIGN.md 2b): fd is ignored when channel or listener is
 * set, so a zero-initialised item naming a channel is valid.  What a
 * driver must do: nothing beyond ipc_poll's usual readiness; the case
 * names a ready pipe in fd beside the channel to prove it is ignored.
 */
int
case_pollitem(void *unused)
{
	char buf[64];
	struct sess s;
	ipc_pollitem it;
	int p[2];

	(void)unused;
	TU_CHECK(pipe(p) == 0);
	TU_CHECK(write(p[1], "x", 1) == 1); /* p[0] is readable */
	sess_start(&s, peer_cmd, NULL, 0);

	memset(&it, 0, sizeof it); /* fd 0 */
	it.channel = s.ch;
	it.events = IPC_POLLIN;
	TU_CHECK_EQ(ipc_poll(&it, 1, 0), 0);
	it.fd = p[0];
	TU_CHECK_MSG(ipc_poll(&it, 1, 0) == 0 && it.revents == 0,
	             "an item naming a channel reported its fd's readiness "
	             "(revents 0x%x)",
	             it.revents);
	ctl_put(s.ctl, CMD(CMD_SENDN, 1));
	ctl_expect(s.ctl, CTL_SENT);
	TU_CHECK_EQ(ipc_poll(&it, 1, STEP_MS), 1);
	TU_CHECK(it.revents & IPC_POLLIN);
	EXPECT_NB(s.ch, "m0");
	(void)buf;

	memset(&it, 0, sizeof it);
	it.channel = s.ch;
	it.listener = (ipc_listener *)&it; /* never looked at */
	it.events = IPC_POLLIN;
	TU_ERR(ipc_poll(&it, 1, 0), -EINVAL);
	TU_CHECK_MSG(strstr(ipc_last_error(), "item 0") != NULL,
	             "ipc_last_error() \"%s\" does not name the item",
	             ipc_last_error());
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);

	if ((G.caps & IPC_CAP_LISTEN) && G.mode == M_OPEN) {
		ipc_listener *l;
		TU_OK(ipc_listen(&l, C.uri, 0));
		memset(&it, 0, sizeof it);
		it.listener = l;
		it.fd = p[0];
		it.events = IPC_POLLIN;
		TU_CHECK_MSG(ipc_poll(&it, 1, 0) == 0 && it.revents == 0,
		             "an item naming a listener reported its fd's "
		             "readiness (revents 0x%x)",
		             it.revents);
		TU_CHECK_EQ(ipc_listener_close(l), 0);
	}
	close(p[0]);
	close(p[1]);
	return 0;
}

/* The peer of local_uri: its own end must name an address too. */
static int
peer_local(struct side *sd)
{
	const char *u = ipc_local_uri(sd->ch);

	TU_CHECK_MSG(u != NULL, "peer: ipc_local_uri: %s", ipc_last_error());
	TU_CHECK_MSG(strncmp(u, G.scheme, strlen(G.scheme)) == 0,
	             "peer: ipc_local_uri \"%s\" is not a %s URI", u,
	             G.scheme);
	return peer_cmd(sd);
}

/* The template with port 0 for %p: the kernel picks the port. */
static int
uri_port0(char *out, size_t n)
{
	const char *pp = strstr(G.tmpl, "%p");
	char t[512];

	if (pp == NULL) {
		return 0;
	}
	snprintf(t, sizeof t, "%.*s0%s", (int)(pp - G.tmpl), G.tmpl, pp + 2);
	TU_CHECK(expand(out, n, t, "") == 0);
	return 1;
}

/* The port of a tcp://HOST:PORT or udp://[H]:PORT URI, or -1. */
static long
uri_port(const char *u)
{
	const char *h = strstr(u, "://");
	const char *q = u + strcspn(u, "?");
	const char *c = NULL;

	if (h == NULL) {
		return -1;
	}
	for (const char *p = h + 3; p < q; p++) {
		if (*p == ':') {
			c = p;
		}
	}
	return c == NULL ? -1 : strtol(c + 1, NULL, 10);
}

/*
 * ipc_local_uri() and ipc_listener_uri() (DESIGN.md 2b).  What a driver
 * must do: give the URI another process opens to reach this end, with
 * what the kernel chose filled in (a URI with port 0 comes back with the
 * bound port).  The case creates the endpoint (on port 0 where the
 * template has %p), reads ipc_local_uri(), and has the peer open exactly
 * that and exchange messages; a listener the same with a client of this
 * process.  Channels of ipc_pair and fd:// have no address: NULL, with
 * ipc_last_error() set.
 */
int
case_local_uri(void *unused)
{
	char u0[512];
	struct sess s;

	(void)unused;
	if (G.mode == M_PAIR || G.mode == M_FD) {
		ipc_channel *a = NULL, *b = NULL;
		lone_open(&a, &b);
		TU_CHECK_MSG(ipc_local_uri(a) == NULL &&
		                     strstr(ipc_last_error(),
		                            "ipc_local_uri") != NULL,
		             "ipc_local_uri() of a channel without address: "
		             "want NULL and a reason");
		TU_CHECK_EQ(ipc_close(a), 0);
		TU_CHECK_EQ(ipc_close(b), 0);
		TU_CHECK(ipc_local_uri(NULL) == NULL);
		tu_skip("ipc_pair and fd:// channels have no address");
	}
	int port0 = uri_port0(u0, sizeof u0);
	ipc_channel *ch;
	TU_OK(ipc_open(&ch, port0 ? u0 : C.uri, IPC_CREATE));
	const char *lu = ipc_local_uri(ch);
	TU_CHECK_MSG(lu != NULL, "ipc_local_uri: %s", ipc_last_error());
	printf("%s: ipc_local_uri() = %s\n", port0 ? u0 : C.uri, lu);
	TU_CHECK(lu == ipc_local_uri(ch)); /* kept by the channel */
	TU_CHECK_MSG(strncmp(lu, G.scheme, strlen(G.scheme)) == 0 &&
	                     strncmp(lu + strlen(G.scheme), "://", 3) == 0,
	             "ipc_local_uri \"%s\" is not a %s:// URI", lu, G.scheme);
	if (port0) {
		long port = uri_port(lu);
		TU_CHECK_MSG(port > 0 && port < 65536,
		             "ipc_local_uri \"%s\" of %s: want the bound port",
		             lu, u0);
	} else {
		TU_CHECK_MSG(strcmp(lu, C.uri) == 0,
		             "ipc_local_uri \"%s\", want \"%s\"", lu, C.uri);
	}
	snprintf(C.uri, sizeof C.uri, "%s", lu); /* the peer opens this */
	s.ch = ch;
	sess_start(&s, peer_local, NULL, S_ADOPT);
	ctl_put(s.ctl, CMD(CMD_ECHO, 1));
	SEND_STR(s.ch, "via local uri");
	EXPECT_STR(s.ch, "via local uri");
	ctl_expect(s.ctl, CTL_DONE);
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);

	if (G.caps & IPC_CAP_LISTEN) {
		ipc_listener *l;
		ipc_channel *c, *a;
		TU_OK(ipc_listen(&l, port0 ? u0 : C.uri, 0));
		const char *ll = ipc_listener_uri(l);
		TU_CHECK_MSG(ll != NULL, "ipc_listener_uri: %s",
		             ipc_last_error());
		printf("ipc_listener_uri() = %s\n", ll);
		if (port0) {
			TU_CHECK_MSG(uri_port(ll) > 0,
			             "ipc_listener_uri \"%s\": want the bound "
			             "port",
			             ll);
		}
		TU_OK(ipc_open(&c, ll, 0));
		TU_OK(ipc_set_timeout(c, STEP_MS));
		ipc_pollitem it = {.listener = l, .events = IPC_POLLIN};
		TU_CHECK_EQ(ipc_poll(&it, 1, STEP_MS), 1);
		TU_OK(ipc_accept(l, &a, 0));
		TU_OK(ipc_set_timeout(a, STEP_MS));
		/* Reaching the listener is the point; no exchange here (a
		 * handshake, as in tls+tcp, needs both ends driven at once,
		 * which one thread cannot do with blocking calls). */
		const char *al = ipc_local_uri(a);
		TU_CHECK_MSG(al != NULL && strcmp(al, ll) == 0,
		             "accepted channel: ipc_local_uri \"%s\", want "
		             "the listener's \"%s\"",
		             al ? al : "(null)", ll);
		TU_CHECK_EQ(ipc_close(a), 0);
		TU_CHECK_EQ(ipc_close(c), 0);
		TU_CHECK_EQ(ipc_listener_close(l), 0);
	}
	TU_CHECK(ipc_listener_uri(NULL) == NULL);
	return 0;
}
