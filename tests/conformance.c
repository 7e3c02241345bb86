/*
 * The conformance suite: the semantic rules of DESIGN.md section 3, written
 * once and run over every URI the build registers (tests/meson.build has
 * the list, one meson test per entry).
 *
 * Usage: conformance TEMPLATE [CASE-PATTERN [SKIP-PATTERN]]
 *
 * TEMPLATE says how the two ends of a channel are made:
 *   scheme://...     ipc_open: the test process opens with IPC_CREATE and
 *                    the peer opens without it (some cases swap the roles).
 *                    In the text, %s becomes a name unique to the case
 *                    ("ipcconf-PID-N"), %d a fresh private directory under
 *                    /tmp (removed afterwards, and it must be empty), %p a
 *                    port free for TCP and UDP on the URI's host, chosen
 *                    below the ephemeral port range so that concurrent
 *                    connect()s never take it, %P the pid of the process
 *                    that creates the channel (the opener's own with
 *                    IPC_CREATE), and %% a percent sign.
 *                    Example: 'unix://%d/sock', 'tcp://127.0.0.1:%p',
 *                    'tcp://[::1]:%p' (every case skips, saying why, when
 *                    ::1 cannot be bound), 'shm://%s', 'signal://%P'.
 *   pair:URI         ipc_pair(URI) before fork(); each process closes the
 *                    end it does not use.  Example: 'pair:pipe:'.
 *   fd               two pipe(2)s made before fork(); each process opens
 *                    fd://R,W on its ends.
 *   inproc://...     as scheme://..., but the peer is a thread of the test
 *                    process (inproc channels cannot cross processes).
 * CASE-PATTERN selects cases by name (cmocka's filter: "*", "stream",
 * "kill*"); SKIP-PATTERN leaves matching cases out.
 * CONF_SEED=N sets the seed of the random sizes (printed at the start).
 *
 * How a case runs.  Every case runs in its own forked process that leads
 * its own process group (tu_run_isolated in testutil.c), with alarm(60) in
 * it and in every peer, and an outer limit in the runner: a hang or crash
 * fails that case only.  The peer ("the other end") is a further child
 * process, started by fork() before either side opens (so that neither
 * inherits the other's descriptors), or a thread for inproc.  The two sides
 * coordinate over a control socketpair, never over the channel under test.
 * Both ends get a 20 s channel timeout so that a driver that fails to
 * deliver reports -ETIMEDOUT at the failing line instead of a bare time
 * limit; cases that test blocking itself set their own.
 *
 * After every case the runner checks that nothing was left behind: the case
 * process's descriptor count is what it was before the case, peers opened
 * with ipc_open close back to their count, and once every process of the
 * case is gone, no socket file, FIFO or file remains in the case's
 * directory, no /dev/shm entry, POSIX message queue or abstract socket
 * carries the case's name, and no System V id is new (testutil.h explains
 * how queues and ids are counted: exactly in a private IPC namespace when
 * the suite runs as root, by attribution otherwise).  Only a case that
 * kills a creating peer with SIGKILL may leave objects; they are removed
 * and listed.
 *
 * Capabilities decide what applies.  A case whose subject the driver does
 * not claim (IPC_CAP_RELIABLE for volume and loss-sensitive cases,
 * IPC_CAP_ORDERED, IPC_CAP_PEERCLOSE for close and death, IPC_CAP_LISTEN)
 * prints why and is skipped.  Drivers without IPC_CAP_RELIABLE (udp) still
 * run every case that exchanges one message at a time, each acknowledged
 * over the control socket before the next: loopback datagrams are lost only
 * when a receive queue overflows, which that pacing rules out.
 *
 * The cases (see each function):
 *   api_misuse        NULL and invalid arguments give -EINVAL, closing NULL
 *   bad_option        ?bogus=1 (and bad NAMEs) give -EINVAL naming the key
 *   open_missing      ipc_open without IPC_CREATE on no endpoint fails at
 *                     once with -ENOENT or -ECONNREFUSED
 *   facts             scheme, caps, max_msg (>= 1 MiB when reliable), ipc_fd
 *   modes             created objects are 0600 whatever the umask, or
 *                     exactly what mode= says
 *   open_close_repeat open/close cycles leak nothing; an address is
 *                     reusable after both ends closed
 *   creator_waits     the creator's send and recv before any peer exists
 *                     give -EAGAIN/-ETIMEDOUT, never -EPIPE, send nothing
 *   boundaries        many small messages in a burst come back one by one,
 *                     in both roles
 *   ordering          thousands of numbered messages arrive in order,
 *                     through recv and acquire alternately
 *   sizes             0 .. 1 MiB (and random sizes) echoed, content checked
 *   emsgsize_send     ipc_max_msg()+1 gives -EMSGSIZE and sends nothing
 *   emsgsize_recv     too small a buffer gives -EMSGSIZE, message kept
 *   nonblock          IPC_NONBLOCK per call and per channel
 *   timeout           ipc_set_timeout on recv and acquire
 *   eintr             signals during waits are retried, deadline kept
 *   full_send         a full channel: -EAGAIN, -ETIMEDOUT, nothing torn
 *   peer_close        the peer sends, closes: drained, then -EPIPE; sends
 *                     to it give -EPIPE (never SIGPIPE, which stays fatal)
 *   self_close        the same seen from the peer after this side closes
 *   kill_recv         SIGKILL of the connecting peer while blocked in recv:
 *                     -EPIPE within one second (2.5 s allowed)
 *   kill_creator      SIGKILL of the creating peer, the same
 *   kill_send         SIGKILL of the peer while blocked in send on a full
 *                     channel
 *   poll              ipc_poll readiness, channels mixed with plain fds,
 *                     ipc_fd readable on arrival, hang-up after close
 *   fd_level          ipc_fd() level-triggered (poll(2) and epoll): two
 *                     messages queued, ipc_poll, readable; one received,
 *                     readable; both received and -EAGAIN, not readable
 *   pollitem          fd ignored in items naming a channel or listener
 *   local_uri         ipc_local_uri()/ipc_listener_uri() resolved (port 0
 *                     gives the bound port) and reachable by a peer
 *   zerocopy          reserve/commit/acquire/release both ways, misuse
 *   duplex            two threads per side send and receive at once
 *   pair_fork         ipc_pair + fork: closing the unused end disturbs
 *                     nothing
 *   stream            10^5 checksummed messages of random sizes between
 *                     two processes, every one counted
 *   listener          ipc_listen/ipc_accept with several clients, or
 *                     -EOPNOTSUPP
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

#define LIMIT_S 60    /* per case, and per peer process */
#define STEP_MS 20000 /* default channel timeout in sessions */
#define CTL_MS  30000 /* longest wait on the control socket */
#define MIB     (1u << 20)

/* ------------------------------------------------------- configuration -- */

enum mode {
	M_OPEN,   /* ipc_open on both sides, peer in another process */
	M_THREAD, /* ipc_open on both sides, peer is a thread */
	M_PAIR,   /* ipc_pair before fork */
	M_FD,     /* fd://R,W over two pipes made before fork */
};

static struct {
	const char *tmpl;     /* the template as given */
	const char *pair_uri; /* M_PAIR: the URI for ipc_pair */
	enum mode mode;
	char scheme[32];
	char host[64]; /* %p: the host of the URI, without brackets */
	const char *skip_all;
	unsigned seed;
	/* probed once, from a channel made like the cases make theirs */
	unsigned caps;
	size_t max_msg;
} G;

/* The current case's names; set by the runner before it forks the case. */
static struct {
	char token[64];
	char dir[96];
	char uri[512];
} C;

/* %P: the creating process; 0 means the one expanding. */
static pid_t creator_pid;

/* Expand the template for the current case; tag makes a second name. */
static int
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
static void
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

/* A fresh token, directory and URI for one case (or for the probe). */
static int
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

static size_t
min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ----------------------------------------------------------- payloads -- */

static uint32_t
xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Pseudo-random bytes from seed; a shorter fill is a prefix of a longer. */
static void
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
		p[i] = (unsigned char)(v >> (8 * (i % 4)));
	}
}

/* Index of the first byte that differs from fill(seed), or -1. */
static long
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
		if (p[i] != (unsigned char)(v >> (8 * (i % 4)))) {
			return (long)i;
		}
	}
	return -1;
}

static uint32_t
fnv1a(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

static void
put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	TU_CHECK_MSG(p != NULL, "malloc(%zu) failed", n);
	return p;
}

/* --------------------------------------------------- channel helpers -- */

/* Receive, waiting with ipc_poll when the channel says -EAGAIN (for
 * channels opened with IPC_NONBLOCK). */
static ssize_t
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

static ssize_t
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

#define SEND_STR(ch, s)                                                       \
	TU_CHECK_EQ(send_wait((ch), (s), strlen(s), STEP_MS),                 \
	            (long long)strlen(s))

/* Receive one message and compare it with the string s. */
#define EXPECT_STR(ch, s)                                                     \
	do {                                                                  \
		char eb_[256];                                                \
		ssize_t er_ = recv_wait((ch), eb_, sizeof eb_, STEP_MS);      \
		TU_CHECK_MSG(er_ == (ssize_t)strlen(s) &&                     \
		                     memcmp(eb_, (s), strlen(s)) == 0,        \
		             "expected message \"%s\", got %s (%zd) "         \
		             "\"%.*s\"",                                      \
		             (s), tu_errname((int)er_), er_,                  \
		             er_ > 0 ? (int)er_ : 0, eb_);                    \
	} while (0)

/* Receive one message of exactly len bytes filled from seed. */
#define EXPECT_FILL(ch, buf, cap, len, seed)                                  \
	do {                                                                  \
		ssize_t fr_ = recv_wait((ch), (buf), (cap), STEP_MS);         \
		TU_CHECK_MSG(fr_ == (ssize_t)(len),                           \
		             "expected a %zu-byte message, got %s (%zd)",     \
		             (size_t)(len), tu_errname((int)fr_), fr_);       \
		long fm_ = mismatch((buf), (size_t)(len), (seed));            \
		TU_CHECK_MSG(fm_ < 0, "%zu-byte message differs at byte %ld", \
		             (size_t)(len), fm_);                             \
	} while (0)

/* A channel without a peer process: the creator alone for ipc_open
 * modes; both ends (*b) for pair and fd modes. */
static void
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

static void
need_caps(unsigned caps, const char *what)
{
	if ((G.caps & caps) != caps) {
		tu_skip("the driver does not claim %s", what);
	}
}

static void
need_open_mode(const char *what)
{
	if (G.mode == M_PAIR || G.mode == M_FD) {
		tu_skip("%s: channels of %s come ready-made, not from "
		        "ipc_open",
		        what, G.tmpl);
	}
}

static void
need_process(const char *what)
{
	if (G.mode == M_THREAD) {
		tu_skip("%s: the peer of %s is a thread, not a process", what,
		        G.scheme);
	}
}

/* ------------------------------------------------------- control link -- */

static void
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
static int
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

static void
ctl_expect(int fd, int want)
{
	int v = ctl_get(fd);

	TU_CHECK_MSG(v == want, "control socket: got %d, want %d", v, want);
}

/* ---------------------------------------------------------- sessions -- */

/* Session options. */
#define S_PEER_CREATES 0x1 /* the peer opens with IPC_CREATE, we do not */
#define S_NO_HELLO     0x2 /* no first message from connector to creator */
#define S_NONBLOCK     0x4 /* our end is opened with IPC_NONBLOCK */
#define S_ADOPT        0x8 /* s->ch is already open (with IPC_CREATE) */

enum { CTL_GO = 0x474f, CTL_READY, CTL_DONE, CTL_CLOSED, CTL_SENT };

/* What a peer function sees. */
struct side {
	ipc_channel *ch; /* set to NULL if the function closes it */
	int ctl;
	void *arg;
	int creator;
};

typedef int (*peer_fn)(struct side *sd);

struct boot {
	peer_fn fn;
	void *arg;
	unsigned opts;
	int ctl, ctl_other;   /* peer's and our control ends */
	int rfd, wfd, ofd[2]; /* M_FD: peer's and our pipe ends */
	ipc_channel *pair_ours, *pair_peer;
	int pair_nfd; /* M_PAIR: descriptors ipc_pair() made */
	char uri[512];
};

struct sess {
	ipc_channel *ch;
	int ctl;
	pid_t pid;
	pthread_t th;
	int threaded;
	unsigned opts;
	struct boot *boot;
};

static const char hello[] = "hello";

static int
peer_body(struct boot *b)
{
	struct side sd = {.ctl = b->ctl, .arg = b->arg};
	int base = -1;

	if (G.mode != M_THREAD) {
		close(b->ctl_other);
	}
	if (G.mode == M_PAIR) {
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
	return peer_body(arg);
}

static void *
peer_thread(void *arg)
{
	return (void *)(intptr_t)peer_body(arg);
}

/* Start a peer running fn and make our end s->ch, connected and (unless
 * S_NO_HELLO) past a first message from the connector to the creator. */
static void
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

	if (G.mode == M_THREAD) {
		TU_CHECK(pthread_create(&s->th, NULL, peer_thread, b) == 0);
		s->threaded = 1;
	} else {
		s->pid = tu_fork(peer_proc, b, LIMIT_S);
		TU_CHECK(s->pid > 0);
		close(sv[1]);
	}

	if (G.mode == M_PAIR) {
		TU_CHECK_EQ(ipc_close(b->pair_peer), 0);
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
		uri_created_by(pu, sizeof pu, s->pid);
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

static void
sess_close(struct sess *s)
{
	if (s->ch != NULL) {
		TU_CHECK_EQ(ipc_close(s->ch), 0);
		s->ch = NULL;
	}
}

/* Wait for the peer.  killed: it must have died of SIGKILL.  A peer that
 * skipped (exit 77) skips the case. */
static void
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

static void
sess_end(struct sess *s)
{
	sess_close(s);
	sess_join(s, 0);
}

/* End a session early (before a skip): kill or abandon the peer. */
static void
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

/* A peer that obeys commands from the control socket: CMD | (arg << 8). */
enum {
	CMD_EXIT = 1,    /* return */
	CMD_SENDN,       /* send arg messages "m0".."m<arg-1>"; CTL_SENT */
	CMD_CLOSE,       /* close the channel; CTL_CLOSED */
	CMD_SENDN_CLOSE, /* send arg messages, close; CTL_CLOSED */
	CMD_ECHO,        /* echo arg messages back; CTL_DONE */
	CMD_PAUSE,       /* CTL_READY, then sleep until killed */
	CMD_LATE_SEND,   /* CTL_READY, sleep arg ms, send "late" */
	CMD_DRAIN_EPIPE, /* receive arg messages "m0".., then expect -EPIPE
	                    on recv and (within 2 s) on send; return */
};

static void
send_numbered(ipc_channel *ch, int n)
{
	for (int i = 0; i < n; i++) {
		char m[32];
		snprintf(m, sizeof m, "m%d", i);
		SEND_STR(ch, m);
	}
}

static void
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
static int
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
static void
echo_one(ipc_channel *ch, unsigned char *buf, size_t cap, int polled)
{
	ssize_t r = polled ? recv_wait(ch, buf, cap, STEP_MS)
	                   : ipc_recv(ch, buf, cap, 0);
	TU_OK(r);
	ssize_t w = polled ? send_wait(ch, buf, (size_t)r, STEP_MS)
	                   : ipc_send(ch, buf, (size_t)r, 0);
	TU_CHECK_EQ(w, r);
}

static int
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

#define CMD(c, arg) ((c) | ((arg) << 8))

/* The n-th message of a filled channel: len bytes filled from n, starting
 * with n. */
static void
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
static int
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

/* NULL and invalid arguments are -EINVAL; closing NULL is 0. */
static int
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
static int
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
static int
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
static int
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
static int
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
static int
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
static int
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
static int
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
		TU_CHECK_MSG(get32(p) == i && get32(p + 4) == ~i,
		             "message %u carries %u", i, get32(p));
	}
}

static void
send_in_order(ipc_channel *ch)
{
	for (uint32_t i = 0; i < NORDER; i++) {
		unsigned char b[8];
		put32(b, i);
		put32(b + 4, ~i);
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

static int
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
static int
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
static int
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
static int
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
static int
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
static int
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
static int
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

static int
peer_drain_count(struct side *sd)
{
	size_t big = min_sz(4096, G.max_msg), small = min_sz(16, G.max_msg);
	unsigned char *buf = xmalloc(big), *ref = xmalloc(big);
	long n = ctl_get(sd->ctl);

	/* The n filled messages, then the one sent after the timeout. */
	for (long i = 0; i <= n; i++) {
		ssize_t r = ipc_recv(sd->ch, buf, big, 0);
		TU_CHECK_MSG(r == (ssize_t)big || r == (ssize_t)small,
		             "message %ld: %s (%zd)", i, tu_errname((int)r),
		             r);
		fill(ref, (size_t)r, (uint32_t)i);
		if (r >= 4) {
			put32(ref, (uint32_t)i);
		}
		TU_CHECK_MSG(memcmp(buf, ref, (size_t)r) == 0,
		             "message %ld (%zd bytes) differs; it carries "
		             "number %u",
		             i, r, r >= 4 ? get32(buf) : 0);
	}
	/* Nothing of the refused sends may follow. */
	TU_ERR(ipc_recv(sd->ch, buf, big, IPC_NONBLOCK), -EAGAIN);
	ctl_put(sd->ctl, CTL_DONE);
	free(buf);
	free(ref);
	return 0;
}

/* A full channel: IPC_NONBLOCK gives -EAGAIN, a timeout gives -ETIMEDOUT,
 * and neither leaves part of a message behind. */
static int
case_full_send(void *unused)
{
	unsigned char buf[4096];
	struct sess s;

	(void)unused;
	need_caps(IPC_CAP_RELIABLE, "IPC_CAP_RELIABLE (datagrams are "
	                            "dropped, not blocked)");
	sess_start(&s, peer_drain_count, NULL, 0);
	long n;
	if (fill_channel(s.ch, buf, &n) < 0) {
		kill_peer(&s);
		tu_skip("the channel took 64 MiB without filling up");
	}
	size_t len = min_sz(16, G.max_msg);
	/* Room may still appear now and then (see fill_channel): what a
	 * send takes is one more message for the peer to find. */
	ssize_t r;
	for (int i = 0; i < 1000; i++) {
		fill_msg(buf, len, n);
		r = ipc_send(s.ch, buf, len, IPC_NONBLOCK);
		if (r != (ssize_t)len) {
			break;
		}
		n++;
	}
	TU_ERR(r, -EAGAIN);
	TU_OK(ipc_set_timeout(s.ch, 100));
	double t0 = tu_now();
	for (int i = 0; i < 100; i++) {
		t0 = tu_now();
		r = ipc_send(s.ch, buf, len, 0);
		if (r != (ssize_t)len) {
			break;
		}
		fill_msg(buf, len, ++n);
	}
	TU_ERR(r, -ETIMEDOUT);
	TU_CHECK_MSG(tu_now() - t0 >= 0.09,
	             "a 100 ms timeout ended after %.3f s", tu_now() - t0);
	TU_OK(ipc_set_timeout(s.ch, STEP_MS));
	printf("filled with %ld messages\n", n);
	/* The peer drains while we send one more, blocking: it must come
	 * right after the filled ones.  (A send that was partly written when
	 * IPC_NONBLOCK or the timeout ended it returns success, and the core
	 * finishes that message in a later call on the channel, DESIGN.md 3:
	 * this send is that call.) */
	ctl_put(s.ctl, (int)n);
	TU_CHECK_EQ(ipc_send(s.ch, buf, len, 0), (long long)len);
	ctl_expect(s.ctl, CTL_DONE);
	sess_end(&s);
	return 0;
}

/* The peer sends, then closes: we drain everything, then recv gives
 * -EPIPE (and again), poll reports it, and send gives -EPIPE.  Then a peer
 * that closes without sending: our sends end in -EPIPE.  SIGPIPE keeps its
 * default action, so a raised SIGPIPE would kill the case. */
static int
case_peer_close(void *unused)
{
	char buf[64];
	struct sess s;

	(void)unused;
	sess_start(&s, peer_cmd, NULL, 0);
	ctl_put(s.ctl, CMD(CMD_SENDN_CLOSE, 10));
	ctl_expect(s.ctl, CTL_CLOSED);
	TU_OK(ipc_set_timeout(s.ch, 5000));
	expect_numbered(s.ch, 10);
	ssize_t r = ipc_recv(s.ch, buf, sizeof buf, 0);
	if (r == -ETIMEDOUT && !(G.caps & IPC_CAP_PEERCLOSE)) {
		ctl_put(s.ctl, CMD_EXIT);
		sess_end(&s);
		tu_skip("without IPC_CAP_PEERCLOSE the peer's close was not "
		        "reported in 5 s");
	}
	TU_ERR(r, -EPIPE);
	TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EPIPE);
	ipc_pollitem it = {.channel = s.ch, .fd = -1, .events = IPC_POLLIN};
	TU_CHECK_EQ(ipc_poll(&it, 1, 0), 1);
	TU_CHECK(it.revents & (IPC_POLLIN | IPC_POLLHUP));
	TU_ERR(ipc_send(s.ch, "x", 1, 0), -EPIPE);
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);

	sess_start(&s, peer_cmd, NULL, 0);
	ctl_put(s.ctl, CMD_CLOSE);
	ctl_expect(s.ctl, CTL_CLOSED);
	int ok = send_until_epipe(s.ch);
	if (ok > 0) {
		printf("note: %d sends to the closed peer were accepted "
		       "before -EPIPE\n",
		       ok);
	}
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);
	return 0;
}

/* This side sends and closes at once; the peer drains it all, then sees
 * -EPIPE on recv and on send. */
static int
case_self_close(void *unused)
{
	struct sess s;

	(void)unused;
	sess_start(&s, peer_cmd, NULL, 0);
	ctl_put(s.ctl, CMD(CMD_DRAIN_EPIPE, 10));
	send_numbered(s.ch, 10);
	sess_close(&s);
	sess_join(&s, 0);
	return 0;
}

/* Kill the peer while this side blocks in op ('r' or 's'). */
static void
kill_and_check(struct sess *s, int op)
{
	long long rc;
	char buf[64];

	if (G.caps & IPC_CAP_PEERCLOSE) {
		double t = tu_time_to_epipe(s->ch, s->pid, 100, op, &rc);
		printf("%s returned %s %.3f s after SIGKILL of the peer\n",
		       op == 'r' ? "recv" : "send", tu_errname((int)rc), t);
		TU_ERR(rc, -EPIPE);
		TU_CHECK_MSG(t >= 0, "returned before the peer was killed");
		TU_CHECK_MSG(t < TU_DEATH_S,
		             "the peer's death took %.3f s to report", t);
		/* The dying process's descriptors close one by one: the
		 * other direction may still look open for a moment. */
		double end = tu_now() + 2.0;
		ssize_t r;
		while ((r = ipc_recv(s->ch, buf, sizeof buf, IPC_NONBLOCK)) ==
		               -EAGAIN &&
		       tu_now() < end) {
			tu_sleep_ms(5);
		}
		TU_ERR(r, -EPIPE);
		/* Once the peer is wholly gone (a zombie: every descriptor
		 * of it closed; not reaped yet), no send may be accepted. */
		siginfo_t si;
		int w;
		do {
			w = waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOWAIT);
		} while (w < 0 && errno == EINTR);
		TU_CHECK_MSG(w == 0, "waitid: %s", strerror(errno));
		int ok = send_until_epipe(s->ch);
		TU_CHECK_MSG(ok == 0,
		             "%d sends accepted after the peer's death was "
		             "reported and the peer was gone",
		             ok);
	} else {
		/* Nothing may hang on a dead peer when a timeout is set. */
		TU_OK(ipc_set_timeout(s->ch, 500));
		tu_time_to_epipe(s->ch, s->pid, 100, op, &rc);
		printf("without IPC_CAP_PEERCLOSE, %s on a killed peer "
		       "returned %s\n",
		       op == 'r' ? "recv" : "send", tu_errname((int)rc));
		TU_CHECK_MSG(rc == -ETIMEDOUT || rc == -EPIPE,
		             "%s on a killed peer: %s",
		             op == 'r' ? "recv" : "send", tu_errname((int)rc));
	}
	sess_close(s);
	sess_join(s, 1);
}

/* SIGKILL of the connecting peer while the creator blocks in recv. */
static int
case_kill_recv(void *unused)
{
	struct sess s;

	(void)unused;
	need_process("kill_recv");
	sess_start(&s, peer_cmd, NULL, 0);
	ctl_put(s.ctl, CMD_PAUSE);
	ctl_expect(s.ctl, CTL_READY);
	kill_and_check(&s, 'r');
	return 0;
}

/* SIGKILL of the creating peer while the connector blocks in recv.  The
 * creator cannot clean up after a SIGKILL: what it leaves is listed and
 * removed, not failed. */
static int
case_kill_creator(void *unused)
{
	struct sess s;

	(void)unused;
	need_process("kill_creator");
	need_open_mode("kill_creator (kill_recv covers it)");
	tu_shared()->allow_leftovers = 1;
	sess_start(&s, peer_cmd, NULL, S_PEER_CREATES);
	ctl_put(s.ctl, CMD_PAUSE);
	ctl_expect(s.ctl, CTL_READY);
	kill_and_check(&s, 'r');
	return 0;
}

/* SIGKILL of the peer while this side blocks in send on a full channel. */
static int
case_kill_send(void *unused)
{
	unsigned char buf[4096];
	struct sess s;

	(void)unused;
	need_process("kill_send");
	need_caps(IPC_CAP_RELIABLE, "IPC_CAP_RELIABLE (sends never block)");
	sess_start(&s, peer_cmd, NULL, 0);
	ctl_put(s.ctl, CMD_PAUSE);
	ctl_expect(s.ctl, CTL_READY);
	long n;
	if (fill_channel(s.ch, buf, &n) < 0) {
		kill_peer(&s);
		tu_skip("the channel took 64 MiB without filling up");
	}
	kill_and_check(&s, 's');
	return 0;
}

static short
poll1(ipc_channel *ch, short events, int ms, int want)
{
	ipc_pollitem it = {.channel = ch, .fd = -1, .events = events};
	int r = ipc_poll(&it, 1, ms);

	TU_CHECK_MSG(r == want,
	             "ipc_poll(events 0x%x, %d ms) = %s (%d), "
	             "want %d (revents 0x%x)",
	             events, ms, tu_errname(r), r, want, it.revents);
	return it.revents;
}

/* ipc_poll readiness, channels mixed with a pipe, ipc_fd, hang-up. */
static int
case_poll(void *unused)
{
	char buf[64];
	struct sess s;
	int p[2];

	(void)unused;
	TU_CHECK(pipe(p) == 0);
	sess_start(&s, peer_cmd, NULL, 0);

	short rev = poll1(s.ch, IPC_POLLIN | IPC_POLLOUT, 0, 1);
	TU_CHECK_MSG(rev == IPC_POLLOUT,
	             "a fresh channel: revents 0x%x, want IPC_POLLOUT", rev);
	poll1(s.ch, IPC_POLLIN, 50, 0);

	ctl_put(s.ctl, CMD(CMD_SENDN, 1));
	ctl_expect(s.ctl, CTL_SENT);
	rev = poll1(s.ch, IPC_POLLIN, STEP_MS, 1);
	TU_CHECK(rev & IPC_POLLIN);
	EXPECT_STR(s.ch, "m0");
	poll1(s.ch, IPC_POLLIN, 0, 0);

	/* A channel and a plain descriptor in one call. */
	ipc_pollitem it[2] = {
	        {.channel = s.ch, .fd = -1, .events = IPC_POLLIN},
	        {.fd = p[0], .events = IPC_POLLIN},
	};
	TU_CHECK(write(p[1], "x", 1) == 1);
	TU_CHECK_EQ(ipc_poll(it, 2, STEP_MS), 1);
	TU_CHECK(it[0].revents == 0 && (it[1].revents & IPC_POLLIN));
	TU_CHECK(read(p[0], buf, 1) == 1);
	ctl_put(s.ctl, CMD(CMD_SENDN, 1));
	ctl_expect(s.ctl, CTL_SENT);
	TU_CHECK_EQ(ipc_poll(it, 2, STEP_MS), 1);
	TU_CHECK((it[0].revents & IPC_POLLIN) && it[1].revents == 0);
	ctl_put(s.ctl, CMD(CMD_SENDN, 1)); /* a second "m0" */
	ctl_expect(s.ctl, CTL_SENT);
	TU_CHECK(write(p[1], "x", 1) == 1);
	TU_CHECK_EQ(ipc_poll(it, 2, STEP_MS), 2);
	TU_CHECK(read(p[0], buf, 1) == 1);
	EXPECT_STR(s.ch, "m0");
	EXPECT_STR(s.ch, "m0");

	/* ipc_fd(): readable with poll(2) when a message arrives. */
	int fd = ipc_fd(s.ch);
	if (fd >= 0) {
		ctl_put(s.ctl, CMD(CMD_SENDN, 1));
		ctl_expect(s.ctl, CTL_SENT);
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		TU_CHECK_MSG(
		        poll(&pf, 1, STEP_MS) == 1 && (pf.revents & POLLIN),
		        "ipc_fd() %d not readable with a message queued", fd);
		TU_CHECK_EQ(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), 2);
		TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
		if (poll(&pf, 1, 0) == 1) {
			printf("note: ipc_fd() stays readable after the "
			       "channel was drained\n");
		}
	} else {
		tu_fail(__FILE__, __LINE__, "ipc_fd(): %s (%s)",
		        tu_errname(fd), ipc_last_error());
	}

	/* The peer's close wakes a poll for input. */
	if (G.caps & IPC_CAP_PEERCLOSE) {
		ctl_put(s.ctl, CMD_CLOSE);
		ctl_expect(s.ctl, CTL_CLOSED);
		rev = poll1(s.ch, IPC_POLLIN, STEP_MS, 1);
		TU_CHECK_MSG(rev & (IPC_POLLIN | IPC_POLLHUP),
		             "after the peer's close: revents 0x%x", rev);
		TU_ERR(ipc_recv(s.ch, buf, sizeof buf, IPC_NONBLOCK), -EPIPE);
	} else {
		printf("hang-up after close not checked: no "
		       "IPC_CAP_PEERCLOSE\n");
	}
	ctl_put(s.ctl, CMD_EXIT);
	sess_end(&s);
	close(p[0]);
	close(p[1]);
	return 0;
}

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
		             (when), lp_ ? "readable" : "not readable",      \
		             le_ ? "readable" : "not readable",               \
		             (want) ? "readable" : "not readable");           \
	} while (0)

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
 * step (LEVEL says how long each check waits): readable with two queued, after ipc_poll,
 * after receiving one of them; after receiving both a spurious readiness
 * is allowed once (printed as a note), but once a non-blocking receive has
 * said -EAGAIN the descriptor must not be readable, or an event loop would
 * spin.  Then: a message that arrives while nobody calls the library makes
 * it readable, and so does the peer's close (with IPC_CAP_PEERCLOSE), which
 * stays readable while ipc_recv says -EPIPE.
 */
static int
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
	LEVEL(fd, ep, 0, "nothing queued, after a -EAGAIN receive");

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
	LEVEL(fd, ep, 0, "both received, a receive said -EAGAIN");
	poll1(s.ch, IPC_POLLIN, 0, 0);
	LEVEL(fd, ep, 0, "both received, after an empty ipc_poll");

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
	LEVEL(fd, ep, 0, "it was received, a receive said -EAGAIN");

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
static int
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
static int
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
static int
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

static int
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
static int
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
static int
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
static int
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
		if (G.mode == M_THREAD) {
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
		if (G.mode == M_THREAD) {
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

/* ============================================================ runner === */

static tu_child_fn case_fn;

/* Drivers whose messages outlive the processes keep their files: the
 * files the URI names (PATH and PATH.*) may remain, and their documented
 * removal (rm PATH PATH.*) must leave nothing else. */
static int
persistent(void)
{
	return strcmp(G.scheme, "mmap") == 0 || strcmp(G.scheme, "file") == 0;
}

static void
remove_persistent(void)
{
	const char *p = strstr(C.uri, "://");
	char path[512], pat[520];
	glob_t g;

	snprintf(path, sizeof path, "%s", p != NULL ? p + 3 : "");
	path[strcspn(path, "?")] = '\0';
	unlink(path);
	snprintf(pat, sizeof pat, "%s.*", path);
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			unlink(g.gl_pathv[i]);
		}
		globfree(&g);
	}
}

/* In the case's process: %P is this process from here on. */
static int
case_entry(void *arg)
{
	uri_created_by(C.uri, sizeof C.uri, getpid());
	int rc = case_fn(arg);
	if (persistent()) {
		remove_persistent();
	}
	return rc;
}

static void
run_case(tu_child_fn fn, const char *name)
{
	char why[1024];

	if (G.skip_all != NULL) {
		printf("SKIP %s: %s\n", name, G.skip_all);
		skip();
	}
	int rc = prepare_case();
	if (rc != 0) {
		fail_msg("%s: cannot prepare the case: %s", name,
		         strerror(-rc));
	}
	printf("%s: %s\n", name, C.uri);
	fflush(stdout);
	double t0 = tu_now();
	case_fn = fn;
	enum tu_result res = tu_run_isolated(case_entry, NULL, LIMIT_S,
	                                     C.token, C.dir, why, sizeof why);
	printf("%s: %.2f s\n", name, tu_now() - t0);
	tu_rmtree(C.dir);
	if (res == TU_SKIP) {
		skip(); /* the case printed why */
	}
	if (res == TU_FAIL) {
		fail_msg("%s: %s", name, why);
	}
}

#define CASE(n)                                                               \
	static void t_##n(void **state)                                       \
	{                                                                     \
		(void)state;                                                  \
		run_case(case_##n, #n);                                       \
	}
CASE(api_misuse)
CASE(bad_option)
CASE(open_missing)
CASE(facts)
CASE(modes)
CASE(open_close_repeat)
CASE(creator_waits)
CASE(boundaries)
CASE(ordering)
CASE(sizes)
CASE(emsgsize_send)
CASE(emsgsize_recv)
CASE(nonblock)
CASE(timeout)
CASE(eintr)
CASE(full_send)
CASE(peer_close)
CASE(self_close)
CASE(kill_recv)
CASE(kill_creator)
CASE(kill_send)
CASE(poll)
CASE(fd_level)
CASE(pollitem)
CASE(local_uri)
CASE(zerocopy)
CASE(duplex)
CASE(pair_fork)
CASE(stream)
CASE(listener)

/* clang-format off */
#define T(n) {#n, t_##n, NULL, NULL, NULL}
static const struct CMUnitTest tests[] = {
	T(api_misuse),
	T(bad_option),
	T(open_missing),
	T(facts),
	T(modes),
	T(open_close_repeat),
	T(creator_waits),
	T(boundaries),
	T(ordering),
	T(sizes),
	T(emsgsize_send),
	T(emsgsize_recv),
	T(nonblock),
	T(timeout),
	T(eintr),
	T(full_send),
	T(peer_close),
	T(self_close),
	T(kill_recv),
	T(kill_creator),
	T(kill_send),
	T(poll),
	T(fd_level),
	T(pollitem),
	T(local_uri),
	T(zerocopy),
	T(duplex),
	T(pair_fork),
	T(stream),
	T(listener),
};
#undef T
/* clang-format on */

/* Open one channel the way the cases will, to learn caps and max_msg. */
static int
probe(void)
{
	ipc_channel *a = NULL, *b = NULL;
	int rc = prepare_case();

	if (rc != 0) {
		fprintf(stderr, "probe: %s\n", strerror(-rc));
		return rc;
	}
	if (G.mode == M_PAIR) {
		rc = ipc_pair(&a, &b, G.pair_uri);
	} else if (G.mode == M_FD) {
		int p[2];
		char u[64];
		if (pipe(p) != 0) {
			return -errno;
		}
		snprintf(u, sizeof u, "fd://%d,%d", p[0], p[1]);
		rc = ipc_open(&a, u, 0);
		if (rc < 0) {
			close(p[0]);
			close(p[1]);
		}
	} else {
		rc = ipc_open(&a, C.uri, IPC_CREATE);
	}
	if (rc < 0) {
		fprintf(stderr, "probe: cannot open %s: %s (%s)\n", C.uri,
		        tu_errname(rc), ipc_last_error());
		tu_rmtree(C.dir);
		return rc;
	}
	G.caps = ipc_caps(a);
	G.max_msg = ipc_max_msg(a);
	ipc_close(a);
	ipc_close(b);
	tu_rmtree(C.dir);
	return 0;
}

static int
parse_template(const char *t)
{
	G.tmpl = t;
	if (strncmp(t, "pair:", 5) == 0) {
		G.mode = M_PAIR;
		G.pair_uri = t + 5;
		t += 5;
	} else if (strcmp(t, "fd") == 0) {
		G.mode = M_FD;
	} else {
		G.mode = M_OPEN;
	}
	size_t n = strcspn(t, ":");
	if (t[n] != ':' && G.mode != M_FD) {
		return -EINVAL;
	}
	if (n >= sizeof G.scheme) {
		return -EINVAL;
	}
	memcpy(G.scheme, t, n);
	G.scheme[n] = '\0';
	if (G.mode == M_OPEN && strcmp(G.scheme, "inproc") == 0) {
		G.mode = M_THREAD;
	}
	const char *pp = strstr(t, "%p");
	if (pp != NULL) {
		const char *h = strstr(t, "://");
		if (h == NULL) {
			return -EINVAL;
		}
		h += 3;
		size_t hl = (size_t)(pp - 1 - h);
		if (pp[-1] != ':' || hl == 0 || hl >= sizeof G.host) {
			return -EINVAL;
		}
		if (h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		memcpy(G.host, h, hl);
		G.host[hl] = '\0';
		int port;
		if (tu_free_port(G.host, &port) == -EAFNOSUPPORT) {
			static char why[128];
			snprintf(why, sizeof why, "%s cannot be bound here",
			         G.host);
			G.skip_all = why;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *why;

	if (argc < 2 || argc > 4) {
		fprintf(stderr,
		        "usage: %s TEMPLATE [CASE-PATTERN [SKIP-PATTERN]]\n",
		        argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_DFL); /* the library must never raise it */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_template(argv[1]) != 0) {
		fprintf(stderr, "bad template \"%s\"\n", argv[1]);
		return 2;
	}
	const char *seed = getenv("CONF_SEED");
	G.seed = seed != NULL ? (unsigned)strtoul(seed, NULL, 0) : 20240601u;
	if (G.seed == 0) {
		G.seed = 1;
	}
	int iso = tu_isolate_ipc(&why);
	printf("conformance %s: seed %u (CONF_SEED), %s%s%s; POSIX queues "
	       "%s\n",
	       argv[1], G.seed,
	       iso ? "private IPC namespace" : "shared IPC namespace",
	       why[0] ? ": " : "", why,
	       tu_mq_dir() ? "counted" : "not countable (no mqueue mount)");
	if (G.skip_all != NULL) {
		/* Not 27 skipped cases that pass: the whole run is skipped,
		 * and tests/skips.sh lists it (CI fails unless expected). */
		printf("SKIP: conformance %s: %s\n", argv[1], G.skip_all);
		return 77;
	}
	if (probe() != 0) {
		fprintf(stderr, "cannot open %s at all: every case fails\n",
		        argv[1]);
	}
	printf("caps 0x%x, max_msg %zu\n", G.caps, G.max_msg);
	/* Cases are selected here with fnmatch(3) (cmocka's own filter
	 * knows only * and ?, so "[dek]*" would select nothing). */
	struct CMUnitTest sel[sizeof tests / sizeof tests[0]];
	size_t hits = 0;
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		if ((argc < 3 || fnmatch(argv[2], tests[i].name, 0) == 0) &&
		    (argc < 4 || fnmatch(argv[3], tests[i].name, 0) != 0)) {
			sel[hits++] = tests[i];
		}
	}
	if (hits == 0) {
		/* A pattern that selects nothing must not pass quietly. */
		fprintf(stderr, "no case matches \"%s\"\n", argv[2]);
		return 2;
	}

	char group[600];
	snprintf(group, sizeof group, "conformance %s", argv[1]);
	return _cmocka_run_group_tests(group, sel, hits, NULL, NULL);
}
