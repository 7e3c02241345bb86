/*
 * The conformance suite: configuration, payloads, channel helpers, the
 * control link, sessions and the command peer (see conformance.c).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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
/* ------------------------------------------------------- configuration -- */

struct conf_global G;

struct conf_case C;

/* %P: the creating process; 0 means the one expanding. */
static pid_t creator_pid;

/* Expand the template for the current case; tag makes a second name. */
int
expand(char *out, size_t n, const char *tmpl, const char *tag)
{
	size_t o = 0;

	for (const char *p = tmpl; *p != '\0'; p++) {
		char piece[160];
		const char *ins = piece;
		if (*p != '%') {
			piece[0] = *p;
			piece[1] = '\0';
		} else if (p[1] == 's') {
			snprintf(piece, sizeof piece, "%s%s", C.token, tag);
			p++;
		} else if (p[1] == 'd') {
			ins = C.dir;
			p++;
		} else if (p[1] == 'p') {
			int port, rc = tu_free_port(G.host, &port);
			if (rc != 0) {
				return rc;
			}
			snprintf(piece, sizeof piece, "%d", port);
			p++;
		} else if (p[1] == 'P') {
			snprintf(piece, sizeof piece, "%d",
			         (int)(creator_pid ? creator_pid : getpid()));
			p++;
		} else if (p[1] == '%') {
			snprintf(piece, sizeof piece, "%%");
			p++;
		} else {
			return -EINVAL;
		}
		size_t len = strlen(ins);
		if (o + len + 1 > n) {
			return -ENAMETOOLONG;
		}
		memcpy(out + o, ins, len);
		o += len;
	}
	out[o] = '\0';
	return 0;
}

/* The case's URI as seen when creator made the channel (%P templates;
 * others come out as C.uri). */
void
uri_created_by(char *out, size_t n, pid_t creator)
{
	if (G.mode != M_OPEN || strstr(G.tmpl, "%P") == NULL) {
		if (out != C.uri) {
			snprintf(out, n, "%s", C.uri);
		}
		return;
	}
	creator_pid = creator;
	int rc = expand(out, n, G.tmpl, "");
	creator_pid = 0;
	TU_CHECK_MSG(rc == 0, "cannot expand %s", G.tmpl);
}

/* ------------------------------------------- peers in another netns -- */

/* CONF_NETNS=PATH (a network namespace, /run/netns/NAME): a forked peer
 * enters it right after fork(), so that the two ends of a channel are in
 * different network namespaces (tests/test_netns.sh starts the runner
 * itself in another one). */
static void
netns_enter(void)
{
	const char *ns = getenv("CONF_NETNS");

	if (ns == NULL || *ns == '\0') {
		return;
	}
	int fd = open(ns, O_RDONLY | O_CLOEXEC);
	TU_CHECK_MSG(fd >= 0, "CONF_NETNS=%s: %s", ns, strerror(errno));
	int rc = setns(fd, CLONE_NEWNET);
	int e = errno;
	close(fd);
	TU_CHECK_MSG(rc == 0, "CONF_NETNS=%s: setns: %s", ns, strerror(e));
}

/* CONF_NETNS_HOSTS=OURS,PEERS: the addresses of the runner's namespace
 * and of the peer's.  A channel the peer creates must live at the peer's
 * address: in its URI, on both sides, "//OURS" becomes "//PEERS". */
void
netns_peer_uri(char *uri, size_t n)
{
	const char *h = getenv("CONF_NETNS_HOSTS");
	const char *comma = h != NULL ? strchr(h, ',') : NULL;
	char from[80], out[sizeof C.uri];

	if (comma == NULL || (size_t)(comma - h) + 3 > sizeof from) {
		return;
	}
	snprintf(from, sizeof from, "//%.*s", (int)(comma - h), h);
	const char *at = strstr(uri, from);
	if (at == NULL) {
		return;
	}
	int len = snprintf(out, sizeof out, "%.*s//%s%s", (int)(at - uri), uri,
	                   comma + 1, at + strlen(from));
	TU_CHECK_MSG(len > 0 && (size_t)len < n && (size_t)len < sizeof out,
	             "CONF_NETNS_HOSTS: %s is too long", uri);
	memcpy(uri, out, (size_t)len + 1);
}

/* A fresh token, directory and URI for one case (or for the probe). */
int
prepare_case(void)
{
	tu_unique(C.token, sizeof C.token, "ipcconf");
	int rc = tu_tmpdir(C.dir, sizeof C.dir, "ipcconf");
	if (rc != 0) {
		return rc;
	}
	if (G.mode == M_OPEN || G.mode == M_THREAD) {
		return expand(C.uri, sizeof C.uri, G.tmpl, "");
	}
	snprintf(C.uri, sizeof C.uri, "%s",
	         G.mode == M_PAIR ? G.pair_uri : "fd");
	return 0;
}

size_t
min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ----------------------------------------------------------- payloads -- */

uint32_t
xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Pseudo-random bytes from seed; a shorter fill is a prefix of a longer. */
/* A payload byte: never '\n' in text mode (framing=line). */
static unsigned char
text_byte(unsigned char b)
{
	return G.text && b == '\n' ? 0x0b : b;
}

void
fill(void *buf, size_t n, uint32_t seed)
{
	unsigned char *p = buf;
	uint32_t s = seed * 2654435761u + 0x9e3779b9u, v = 0;

	if (s == 0) {
		s = 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (i % 4 == 0) {
			v = xorshift(&s);
		}
		p[i] = text_byte((unsigned char)(v >> (8 * (i % 4))));
	}
}

/* Index of the first byte that differs from fill(seed), or -1. */
long
mismatch(const void *buf, size_t n, uint32_t seed)
{
	const unsigned char *p = buf;
	uint32_t s = seed * 2654435761u + 0x9e3779b9u, v = 0;

	if (s == 0) {
		s = 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (i % 4 == 0) {
			v = xorshift(&s);
		}
		if (p[i] != text_byte((unsigned char)(v >> (8 * (i % 4))))) {
			return (long)i;
		}
	}
	return -1;
}

uint32_t
fnv1a(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ p[i]) * 16777619u;
	}
	return G.text ? h & 0x0fffffffu : h; /* what put32 carries */
}

void
put32(unsigned char *p, uint32_t v)
{
	if (G.text) {
		TU_CHECK_MSG(v < 1u << 28, "put32(%u) in text mode", v);
		for (int i = 0; i < 4; i++) {
			p[i] = (unsigned char)(0x80 | ((v >> (7 * i)) & 0x7f));
		}
		return;
	}
	memcpy(p, &v, 4);
}

uint32_t
get32(const unsigned char *p)
{
	uint32_t v = 0;

	if (G.text) {
		for (int i = 0; i < 4; i++) {
			v |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		}
		return v;
	}
	memcpy(&v, p, 4);
	return v;
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	TU_CHECK_MSG(p != NULL, "malloc(%zu) failed", n);
	return p;
}

/* --------------------------------------------------- channel helpers -- */

/* Receive, waiting with ipc_poll when the channel says -EAGAIN (for
 * channels opened with IPC_NONBLOCK). */
ssize_t
recv_wait(ipc_channel *ch, void *buf, size_t cap, int ms)
{
	double end = tu_now() + ms / 1000.0;

	for (;;) {
		ssize_t r = ipc_recv(ch, buf, cap, IPC_NONBLOCK);
		if (r != -EAGAIN) {
			return r;
		}
		int left = (int)((end - tu_now()) * 1000);
		if (left <= 0) {
			return -ETIMEDOUT;
		}
		ipc_pollitem it = {
		        .channel = ch, .fd = -1, .events = IPC_POLLIN};
		int pr = ipc_poll(&it, 1, left);
		if (pr < 0) {
			return pr;
		}
	}
}

ssize_t
send_wait(ipc_channel *ch, const void *buf, size_t len, int ms)
{
	double end = tu_now() + ms / 1000.0;

	for (;;) {
		ssize_t r = ipc_send(ch, buf, len, IPC_NONBLOCK);
		if (r != -EAGAIN) {
			return r;
		}
		int left = (int)((end - tu_now()) * 1000);
		if (left <= 0) {
			return -ETIMEDOUT;
		}
		ipc_pollitem it = {
		        .channel = ch, .fd = -1, .events = IPC_POLLOUT};
		int pr = ipc_poll(&it, 1, left);
		if (pr < 0) {
			return pr;
		}
	}
}

/* A channel without a peer process: the creator alone for ipc_open
 * modes; both ends (*b) for pair and fd modes. */
void
lone_open(ipc_channel **a, ipc_channel **b)
{
	*b = NULL;
	if (G.mode == M_PAIR) {
		TU_OK(ipc_pair(a, b, G.pair_uri));
	} else if (G.mode == M_FD) {
		int p1[2], p2[2];
		char u[64];
		TU_CHECK(pipe(p1) == 0 && pipe(p2) == 0);
		snprintf(u, sizeof u, "fd://%d,%d", p2[0], p1[1]);
		TU_OK(ipc_open(a, u, 0));
		snprintf(u, sizeof u, "fd://%d,%d", p1[0], p2[1]);
		TU_OK(ipc_open(b, u, 0));
	} else {
		TU_OK(ipc_open(a, C.uri, IPC_CREATE));
	}
}

void
need_caps(unsigned caps, const char *what)
{
	if ((G.caps & caps) != caps) {
		tu_skip("the driver does not claim %s", what);
	}
}

void
need_open_mode(const char *what)
{
	if (G.mode == M_PAIR || G.mode == M_FD) {
		tu_skip("%s: channels of %s come ready-made, not from "
		        "ipc_open",
		        what, G.tmpl);
	}
}

void
need_process(const char *what)
{
	if (G.threads) {
		tu_skip("%s: the peer of %s is a thread, not a process", what,
		        G.scheme);
	}
}

/* ------------------------------------------------------- control link -- */

void
ctl_put(int fd, int v)
{
	ssize_t r;

	do {
		r = send(fd, &v, sizeof v, MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	TU_CHECK_MSG(r == (ssize_t)sizeof v, "control socket: send: %s",
	             r < 0 ? strerror(errno) : "short");
}

/* Signals (the eintr case sends many) must not cut these waits short. */
int
ctl_get(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	double end = tu_now() + CTL_MS / 1000.0;
	unsigned char v[sizeof(int)];
	size_t got = 0;

	while (got < sizeof v) {
		int left = (int)((end - tu_now()) * 1000);
		int pr = left > 0 ? poll(&p, 1, left) : 0;
		if (pr < 0 && errno == EINTR) {
			continue;
		}
		TU_CHECK_MSG(pr == 1,
		             "control socket: nothing from the other side in "
		             "%d ms",
		             CTL_MS);
		ssize_t r = recv(fd, v + got, sizeof v - got, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
			continue;
		}
		TU_CHECK_MSG(r > 0,
		             "control socket: the other side is gone (%s)",
		             r < 0 ? strerror(errno) : "closed");
		got += (size_t)r;
	}
	int val;
	memcpy(&val, v, sizeof val);
	return val;
}

void
ctl_expect(int fd, int want)
{
	int v = ctl_get(fd);

	TU_CHECK_MSG(v == want, "control socket: got %d, want %d", v, want);
}

/* ---------------------------------------------------------- sessions -- */

const char hello[] = "hello";

static int
peer_body(struct boot *b)
{
	struct side sd = {.ctl = b->ctl, .arg = b->arg};
	int base = -1;

	if (!G.threads) {
		close(b->ctl_other);
	}
	if (G.mode == M_PAIR && G.threads) {
		sd.ch = b->pair_peer; /* the other end stays the test's */
	} else if (G.mode == M_PAIR) {
		/* Once both ends are closed, what ipc_pair() made is gone. */
		base = tu_fd_count() - b->pair_nfd;
		/* The end the parent uses: closing it here must not disturb
		 * the parent (DESIGN.md 3, fork). */
		TU_CHECK_EQ(ipc_close(b->pair_ours), 0);
		sd.ch = b->pair_peer;
	} else if (G.mode == M_FD) {
		char u[64];
		close(b->ofd[0]);
		close(b->ofd[1]);
		base = tu_fd_count() - 2; /* the channel adopts rfd, wfd */
		snprintf(u, sizeof u, "fd://%d,%d", b->rfd, b->wfd);
		TU_OK(ipc_open(&sd.ch, u, 0));
	} else {
		if (G.mode == M_OPEN) {
			base = tu_fd_count();
		}
		if (b->opts & S_PEER_CREATES) {
			uri_created_by(b->uri, sizeof b->uri, getpid());
			netns_peer_uri(b->uri, sizeof b->uri);
			TU_OK(ipc_open(&sd.ch, b->uri, IPC_CREATE));
			sd.creator = 1;
			ctl_put(b->ctl, CTL_READY);
		} else {
			ctl_expect(b->ctl, CTL_GO);
			TU_OK(ipc_open(&sd.ch, b->uri, 0));
		}
	}
	TU_OK(ipc_set_timeout(sd.ch, STEP_MS));
	if (!(b->opts & S_NO_HELLO)) {
		if (sd.creator) {
			EXPECT_STR(sd.ch, hello);
		} else {
			SEND_STR(sd.ch, hello);
		}
	}
	int rc = b->fn(&sd);
	if (sd.ch != NULL) {
		TU_CHECK_EQ(ipc_close(sd.ch), 0);
	}
	if (rc == 0 && base >= 0 && tu_fd_count() != base) {
		char list[2048];
		tu_fd_describe(list, sizeof list);
		tu_fail(__FILE__, __LINE__,
		        "peer: %d descriptors before open, %d after close: %s",
		        base, tu_fd_count(), list);
	}
	close(b->ctl);
	return rc;
}

static int
peer_proc(void *arg)
{
	netns_enter();
	return peer_body(arg);
}

static void *
peer_thread(void *arg)
{
	return (void *)(intptr_t)peer_body(arg);
}

/* Start a peer running fn and make our end s->ch, connected and (unless
 * S_NO_HELLO) past a first message from the connector to the creator. */
void
sess_start(struct sess *s, peer_fn fn, void *arg, unsigned opts)
{
	ipc_channel *adopted = (opts & S_ADOPT) ? s->ch : NULL;
	int flags = (opts & S_NONBLOCK) ? IPC_NONBLOCK : 0;
	int sv[2];

	memset(s, 0, sizeof *s);
	s->opts = opts;
	TU_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct boot *b = xmalloc(sizeof *b);
	memset(b, 0, sizeof *b);
	b->fn = fn;
	b->arg = arg;
	b->opts = opts;
	b->ctl = sv[1];
	b->ctl_other = sv[0];
	snprintf(b->uri, sizeof b->uri, "%s", C.uri);
	s->boot = b;
	s->ctl = sv[0];

	if (G.mode == M_PAIR) {
		int n0 = tu_fd_count();
		TU_OK(ipc_pair(&b->pair_ours, &b->pair_peer, G.pair_uri));
		b->pair_nfd = tu_fd_count() - n0;
	} else if (G.mode == M_FD) {
		int p1[2], p2[2]; /* p1: us to peer, p2: peer to us */
		TU_CHECK(pipe(p1) == 0 && pipe(p2) == 0);
		b->rfd = p1[0];
		b->wfd = p2[1];
		b->ofd[0] = p2[0];
		b->ofd[1] = p1[1];
	}

	if (G.threads) {
		TU_CHECK(pthread_create(&s->th, NULL, peer_thread, b) == 0);
		s->threaded = 1;
	} else {
		s->pid = tu_fork(peer_proc, b, LIMIT_S);
		TU_CHECK(s->pid > 0);
		close(sv[1]);
	}

	if (G.mode == M_PAIR) {
		if (!G.threads) {
			TU_CHECK_EQ(ipc_close(b->pair_peer), 0);
		}
		s->ch = b->pair_ours;
	} else if (G.mode == M_FD) {
		char u[64];
		close(b->rfd);
		close(b->wfd);
		snprintf(u, sizeof u, "fd://%d,%d", b->ofd[0], b->ofd[1]);
		TU_OK(ipc_open(&s->ch, u, flags));
	} else if (opts & S_PEER_CREATES) {
		char pu[sizeof C.uri];
		ctl_expect(s->ctl, CTL_READY);
		if (tu_shared() != NULL && tu_shared()->allow_leftovers) {
			/* The peer is the creator to be killed: what exists
			 * now is its; what our side makes must still go. */
			tu_allow_present();
		}
		uri_created_by(pu, sizeof pu, s->pid);
		netns_peer_uri(pu, sizeof pu);
		TU_OK(ipc_open(&s->ch, pu, flags));
	} else {
		if (adopted != NULL) {
			s->ch = adopted;
		} else {
			TU_OK(ipc_open(&s->ch, C.uri, IPC_CREATE | flags));
		}
		ctl_put(s->ctl, CTL_GO);
	}
	TU_OK(ipc_set_timeout(s->ch, STEP_MS));
	if (!(opts & S_NO_HELLO)) {
		if (opts & S_PEER_CREATES) {
			SEND_STR(s->ch, hello);
		} else {
			EXPECT_STR(s->ch, hello);
		}
	}
}

void
sess_close(struct sess *s)
{
	if (s->ch != NULL) {
		TU_CHECK_EQ(ipc_close(s->ch), 0);
		s->ch = NULL;
	}
}

/* Wait for the peer.  killed: it must have died of SIGKILL.  A peer that
 * skipped (exit 77) skips the case. */
void
sess_join(struct sess *s, int killed)
{
	if (s->threaded) {
		void *ret;
		TU_CHECK(pthread_join(s->th, &ret) == 0);
		TU_CHECK_MSG((intptr_t)ret == 0, "peer thread returned %d",
		             (int)(intptr_t)ret);
	} else {
		int st = 0;
		char b[96];
		int rc = tu_wait(s->pid, CTL_MS, &st);
		if (rc == -ETIMEDOUT) {
			kill(s->pid, SIGKILL);
			tu_wait(s->pid, -1, &st);
			tu_fail(__FILE__, __LINE__,
			        "peer %d did not finish in %d ms", (int)s->pid,
			        CTL_MS);
		}
		TU_CHECK(rc == 0);
		if (killed) {
			TU_CHECK_MSG(WIFSIGNALED(st) &&
			                     WTERMSIG(st) == SIGKILL,
			             "peer: %s, want killed by SIGKILL",
			             tu_status_str(st, b, sizeof b));
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == TU_EXIT_SKIP) {
			struct tu_shared *sh = tu_shared();
			tu_skip("%s", sh != NULL && sh->skip_reason[0]
			                      ? sh->skip_reason
			                      : "the peer skipped");
		} else {
			TU_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			             "peer: %s",
			             tu_status_str(st, b, sizeof b));
		}
	}
	close(s->ctl);
	free(s->boot);
	s->boot = NULL;
}

void
sess_end(struct sess *s)
{
	sess_close(s);
	sess_join(s, 0);
}

/* End a session early (before a skip): kill or abandon the peer. */
void
kill_peer(struct sess *s)
{
	if (s->threaded) {
		/* A thread cannot be killed; let the process exit end it. */
		return;
	}
	kill(s->pid, SIGKILL);
	sess_close(s);
	sess_join(s, 1);
}

/* ------------------------------------------------- the command peer -- */

void
send_numbered(ipc_channel *ch, int n)
{
	for (int i = 0; i < n; i++) {
		char m[32];
		snprintf(m, sizeof m, "m%d", i);
		SEND_STR(ch, m);
	}
}

void
expect_numbered(ipc_channel *ch, int n)
{
	for (int i = 0; i < n; i++) {
		char m[32];
		snprintf(m, sizeof m, "m%d", i);
		EXPECT_STR(ch, m);
	}
}

/* Send small messages until -EPIPE; at most 2 s.  Returns how many were
 * accepted before it (a stream transport may take a few). */
int
send_until_epipe(ipc_channel *ch)
{
	double end = tu_now() + 2.0;
	int ok = 0;

	for (;;) {
		ssize_t r = ipc_send(ch, "y", 1, IPC_NONBLOCK);
		if (r == -EPIPE) {
			return ok;
		}
		TU_CHECK_MSG(r == 1 || r == -EAGAIN,
		             "send to a closed peer: %s", tu_errname((int)r));
		ok += r == 1;
		TU_CHECK_MSG(tu_now() < end,
		             "send to a closed peer: no -EPIPE after 2 s "
		             "(%d sends accepted)",
		             ok);
		tu_sleep_ms(10);
	}
}

/* Receive one message and send it back: through blocking calls, or
 * (polled) through IPC_NONBLOCK calls driven by ipc_poll. */
void
echo_one(ipc_channel *ch, unsigned char *buf, size_t cap, int polled)
{
	ssize_t r = polled ? recv_wait(ch, buf, cap, STEP_MS)
	                   : ipc_recv(ch, buf, cap, 0);
	TU_OK(r);
	ssize_t w = polled ? send_wait(ch, buf, (size_t)r, STEP_MS)
	                   : ipc_send(ch, buf, (size_t)r, 0);
	TU_CHECK_EQ(w, r);
}

int
peer_cmd(struct side *sd)
{
	size_t cap = min_sz(G.max_msg, 2 * MIB);
	unsigned char *buf = xmalloc(cap);

	for (;;) {
		int c = ctl_get(sd->ctl);
		int arg = c >> 8;
		switch (c & 0xff) {
		case CMD_EXIT:
			free(buf);
			return 0;
		case CMD_SENDN:
			send_numbered(sd->ch, arg);
			ctl_put(sd->ctl, CTL_SENT);
			break;
		case CMD_CLOSE:
			TU_CHECK_EQ(ipc_close(sd->ch), 0);
			sd->ch = NULL;
			ctl_put(sd->ctl, CTL_CLOSED);
			break;
		case CMD_SENDN_CLOSE:
			send_numbered(sd->ch, arg);
			TU_CHECK_EQ(ipc_close(sd->ch), 0);
			sd->ch = NULL;
			ctl_put(sd->ctl, CTL_CLOSED);
			break;
		case CMD_ECHO:
			for (int i = 0; i < arg; i++) {
				echo_one(sd->ch, buf, cap, i % 2);
			}
			ctl_put(sd->ctl, CTL_DONE);
			break;
		case CMD_PAUSE:
			ctl_put(sd->ctl, CTL_READY);
			for (;;) {
				pause();
			}
		case CMD_LATE_SEND:
			ctl_put(sd->ctl, CTL_READY);
			tu_sleep_ms(arg);
			SEND_STR(sd->ch, "late");
			break;
		case CMD_DRAIN_EPIPE: {
			expect_numbered(sd->ch, arg);
			TU_OK(ipc_set_timeout(sd->ch, 5000));
			ssize_t r = ipc_recv(sd->ch, buf, cap, 0);
			if (r == -ETIMEDOUT && !(G.caps & IPC_CAP_PEERCLOSE)) {
				free(buf); /* tu_skip() exits */
				tu_skip("without IPC_CAP_PEERCLOSE the close "
				        "was not reported in 5 s");
			}
			TU_ERR(r, -EPIPE);
			TU_ERR(ipc_recv(sd->ch, buf, cap, IPC_NONBLOCK),
			       -EPIPE);
			int ok = send_until_epipe(sd->ch);
			if (ok > 0) {
				printf("note: %d sends to the closed peer "
				       "were "
				       "accepted before -EPIPE\n",
				       ok);
			}
			free(buf);
			return 0;
		}
		default:
			tu_fail(__FILE__, __LINE__, "peer: unknown command %d",
			        c);
		}
	}
}

/* The n-th message of a filled channel: len bytes filled from n, starting
 * with n. */
void
fill_msg(unsigned char *buf, size_t len, long n)
{
	fill(buf, len, (uint32_t)n);
	if (len >= 4) {
		put32(buf, (uint32_t)n);
	}
}

/* Fill the channel with IPC_NONBLOCK sends until -EAGAIN: chunks of up to
 * 4 KiB, then 16-byte messages, numbered from *n on (fill_msg).  Kernel
 * buffers can keep growing or draining for a while (TCP moves data to the
 * receiver and autotunes its buffers), so the 16-byte phase is repeated
 * after 50 ms pauses until a pass adds nothing.  Returns 0, or -1 if the
 * channel took 64 MiB without filling up. */
int
fill_channel(ipc_channel *ch, unsigned char *buf, long *n)
{
	size_t sizes[2] = {min_sz(4096, G.max_msg), min_sz(16, G.max_msg)};
	size_t total = 0;

	*n = 0;
	for (int pass = 0; pass < 100; pass++) {
		long before = *n;
		for (int phase = pass ? 1 : 0; phase < 2; phase++) {
			for (;;) {
				size_t len = sizes[phase];
				fill_msg(buf, len, *n);
				ssize_t r =
				        ipc_send(ch, buf, len, IPC_NONBLOCK);
				if (r == -EAGAIN) {
					break;
				}
				TU_CHECK_EQ(r, (long long)len);
				(*n)++;
				total += len;
				if (total > 64 * (size_t)MIB) {
					return -1;
				}
			}
		}
		if (pass > 0 && *n == before) {
			return 0;
		}
		tu_sleep_ms(50);
	}
	return -1;
}

/* ============================================================ cases === */
