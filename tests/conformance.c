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
 * CONF_NETNS=/run/netns/NAME: every forked peer enters that network
 * namespace right after fork(); CONF_NETNS_HOSTS=OURS,PEERS: a channel
 * the peer creates is at PEERS instead of OURS (tests/test_netns.sh).
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
#include "conformance.h"

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
CASE(pubsub_stream)
CASE(pubsub_kill)
CASE(pubsub_history)
CASE(pubsub_nobody)
CASE(pubsub_drop)
CASE(pubsub_poll)

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
	T(pubsub_stream),
	T(pubsub_kill),
	T(pubsub_history),
	T(pubsub_nobody),
	T(pubsub_drop),
	T(pubsub_poll),
};
#undef T
/* clang-format on */

/* Open one channel the way the cases will, to learn caps and max_msg. */
int
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
	G.text = strstr(t, "framing=line") != NULL;
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
	G.threads = strcmp(G.scheme, "inproc") == 0;
	G.half_close = (strstr(t, "framing=line") != NULL ||
	                strstr(t, "framing=raw") != NULL) &&
	               (strcmp(G.scheme, "tcp") == 0 ||
	                strcmp(G.scheme, "tls+tcp") == 0);
	if (G.mode == M_OPEN && G.threads) {
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
	if (getenv("CONF_NETNS") != NULL) {
		printf("forked peers run in the network namespace %s%s%s\n",
		       getenv("CONF_NETNS"),
		       getenv("CONF_NETNS_HOSTS") ? ", addresses " : "",
		       getenv("CONF_NETNS_HOSTS") ? getenv("CONF_NETNS_HOSTS")
		                                  : "");
	}
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
