/*
 * nats:// against real nats-server processes that this test starts and
 * stops itself (each with JetStream, its store in a temporary directory,
 * on free loopback ports; killed by PR_SET_PDEATHSIG if the test dies).
 *
 *   options      every bad option and address is -EINVAL naming it
 *   refused      no server: -ECONNREFUSED; a server but no creator:
 *                -ECONNREFUSED at once; a second creator: -EEXIST; a
 *                second opener: -ECONNREFUSED; caps say js or not
 *   interop      a NATS client that is not libipc (the text protocol over
 *                a plain socket, in this file) reads what libipc sends
 *                and publishes what libipc receives, with js=1 and js=0
 *   failover     a three-server cluster (routes on loopback); the
 *                producer is connected to server 1, the consumer to
 *                server 3, and server 1 is killed mid-stream: 10^4
 *                checksummed messages over a replicas=3 stream, none
 *                lost, none doubled (figures printed)
 *
 * Skips with a printed reason when nats-server is not installed.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

/* ------------------------------------------------------ the servers -- */

/* max_payload of the servers srv_start starts. */
static const char *srv_max_payload = "4MB";

struct srv {
	pid_t pid;
	int port, cport;
	char dir[256];
	char name[8];
};

static int
have_server(void)
{
	return system("command -v nats-server >/dev/null 2>&1") == 0;
}

static void
need_server(void)
{
	if (!have_server()) {
		printf("SKIP: nats-server is not installed (Debian: apt-get "
		       "install nats-server)\n");
		skip();
	}
}

static int
port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

/* Start server idx (1-based) of n; with n > 1 they form a cluster over
 * the cports of all. */
static void
srv_start(struct srv *all, int idx, int n, const char *dir)
{
	struct srv *s = &all[idx - 1];
	char conf[512], path[600], log[600];
	FILE *f;

	snprintf(s->name, sizeof(s->name), "s%d", idx);
	snprintf(s->dir, sizeof(s->dir), "%s/%s", dir, s->name);
	mkdir(s->dir, 0700);
	snprintf(path, sizeof(path), "%s/server.conf", s->dir);
	snprintf(log, sizeof(log), "%s/server.log", s->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
	        "server_name: %s\nlisten: 127.0.0.1:%d\nmax_payload: %s\n"
	        "jetstream { store_dir: \"%s/js\", max_memory_store: 256MB, "
	        "max_file_store: 1GB }\n",
	        s->name, s->port, srv_max_payload, s->dir);
	if (n > 1) {
		fprintf(f,
		        "cluster {\n  name: ipctest\n  listen: "
		        "127.0.0.1:%d\n  routes: [\n",
		        s->cport);
		for (int i = 0; i < n; i++) {
			if (i != idx - 1) {
				fprintf(f, "    nats-route://127.0.0.1:%d\n",
				        all[i].cport);
			}
		}
		fprintf(f, "  ]\n}\n");
	}
	fclose(f);
	(void)conf;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		execlp("nats-server", "nats-server", "-c", path, "-l", log,
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 400 && !port_open(s->port); i++) {
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		tu_sleep_ms(25);
	}
	if (!port_open(s->port)) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "cat %s", log);
		if (system(cmd) != 0) {
			printf("(no log)\n");
		}
		fail_msg("nats-server %s did not start on port %d", s->name,
		         s->port);
	}
}

static void
srv_kill(struct srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

static void
ports(struct srv *all, int n)
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(tu_free_port("127.0.0.1", &all[i].port), 0);
		assert_int_equal(tu_free_port("127.0.0.1", &all[i].cport), 0);
	}
}

/* One server for a test; *dir receives its directory. */
static void
single(struct srv *s, char *dir, size_t n)
{
	assert_int_equal(tu_tmpdir(dir, n, "ipc-nats"), 0);
	ports(s, 1);
	srv_start(s, 1, 1, dir);
}

static void
done(struct srv *s, int n, const char *dir)
{
	for (int i = 0; i < n; i++) {
		srv_kill(&s[i]);
	}
	tu_rmtree(dir);
}

/* ------------------------------------------------------------ cases -- */

static void
expect_einval(const char *uri, const char *word)
{
	ipc_channel *ch = NULL;
	int r = ipc_open(&ch, uri, IPC_CREATE);

	if (r != -EINVAL || strstr(ipc_last_error(), word) == NULL) {
		fail_msg("%s: got %s, \"%s\"; want EINVAL naming %s", uri,
		         tu_errname(r), ipc_last_error(), word);
	}
}

static void
t_options(void **state)
{
	char dir[256], u[512];
	struct srv s[1] = {{0}};

	(void)state;
	need_server();
	single(s, dir, sizeof(dir));
	const char *bad[][2] = {
	        {"?bogus=1", "bogus"},
	        {"?js=2", "js"},
	        {"?replicas=0", "replicas"},
	        {"?replicas=9", "replicas"},
	        {"?storage=tape", "storage"},
	        {"?hb=5", "hb"},
	        {"?hb=500&dead=400", "dead"},
	        {"?window=0", "window"},
	        {"?js=0&replicas=3", "replicas"},
	        {"?password=x", "password"},
	        {"?resend=1", "resend"},
	        {"?ackwait=x", "ackwait"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(u, sizeof(u), "nats://127.0.0.1:%d/opt%s", s->port,
		         bad[i][0]);
		expect_einval(u, bad[i][1]);
	}
	const char *subj[] = {"a..b",  "a.*", "a.>", "_INBOX.x",
	                      "a%20b", ".a",  "a."};
	for (size_t i = 0; i < sizeof(subj) / sizeof(subj[0]); i++) {
		snprintf(u, sizeof(u), "nats://127.0.0.1:%d/%s", s->port,
		         subj[i]);
		expect_einval(u, "SUBJECT");
	}
	expect_einval("nats://127.0.0.1/x", "HOST:PORT");
	expect_einval("nats://127.0.0.1:0/x", "port");
	expect_einval("nats://127.0.0.1:99999/x", "port");
	expect_einval("nats://127.0.0.1:4222,/x", "empty server");
	expect_einval("nats:///x", "no server");
	done(s, 1, dir);
}

static void
t_refused(void **state)
{
	char dir[256], u[512];
	struct srv s[1] = {{0}};
	ipc_channel *a, *b, *c;
	int port;

	(void)state;
	need_server();
	/* nobody listens */
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(u, sizeof(u), "nats://127.0.0.1:%d/x?optimeout=500", port);
	assert_int_equal(ipc_open(&a, u, IPC_CREATE), -ECONNREFUSED);
	printf("no server: %s\n", ipc_last_error());

	single(s, dir, sizeof(dir));
	for (int js = 0; js <= 1; js++) {
		snprintf(u, sizeof(u), "nats://127.0.0.1:%d/refused%d?js=%d",
		         s->port, js, js);
		double t0 = tu_now();
		assert_int_equal(ipc_open(&b, u, 0), -ECONNREFUSED);
		printf("no creator (js=%d): %s, after %.3f s\n", js,
		       ipc_last_error(), tu_now() - t0);
		assert_int_equal(ipc_open(&a, u, IPC_CREATE), 0);
		assert_int_equal(ipc_open(&c, u, IPC_CREATE), -EEXIST);
		printf("second creator: %s\n", ipc_last_error());
		assert_int_equal(ipc_open(&b, u, 0), 0);
		assert_int_equal(ipc_open(&c, u, 0), -ECONNREFUSED);
		printf("second opener: %s\n", ipc_last_error());
		unsigned caps = ipc_caps(a);
		assert_int_equal(!!(caps & IPC_CAP_RELIABLE), js);
		assert_true(caps & IPC_CAP_PEERCLOSE);
		assert_true(caps & IPC_CAP_CROSSHOST);
		assert_true(ipc_max_msg(a) >= (1u << 20));
		assert_int_equal(ipc_send(b, "ping", 4, 0), 4);
		char buf[16];
		assert_int_equal(ipc_set_timeout(a, 5000), 0);
		assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 4);
		assert_memory_equal(buf, "ping", 4);
		assert_int_equal(ipc_close(b), 0);
		assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), -EPIPE);
		assert_int_equal(ipc_close(a), 0);
		/* js=1 against a js=0 creator is named */
		snprintf(u, sizeof(u), "nats://127.0.0.1:%d/mix%d?js=%d",
		         s->port, js, js);
		assert_int_equal(ipc_open(&a, u, IPC_CREATE), 0);
		snprintf(u, sizeof(u), "nats://127.0.0.1:%d/mix%d?js=%d",
		         s->port, js, !js);
		assert_int_equal(ipc_open(&b, u, 0), -EINVAL);
		printf("js mismatch: %s\n", ipc_last_error());
		assert_non_null(strstr(ipc_last_error(), "js"));
		assert_int_equal(ipc_close(a), 0);
	}
	done(s, 1, dir);
}

/* ------------------------------------------------- a raw NATS client -- */

struct raw {
	int fd;
	char buf[8192];
	size_t n;
};

static void
raw_write(struct raw *r, const char *s)
{
	size_t len = strlen(s);
	assert_int_equal(write(r->fd, s, len), (ssize_t)len);
}

/* Read until the buffer holds a line; return it (without \r\n) and drop
 * it from the buffer into line. */
static void
raw_line(struct raw *r, char *line, size_t cap)
{
	for (;;) {
		char *e = memmem(r->buf, r->n, "\r\n", 2);
		if (e != NULL) {
			size_t len = (size_t)(e - r->buf);
			assert_true(len < cap);
			memcpy(line, r->buf, len);
			line[len] = '\0';
			memmove(r->buf, e + 2, r->n - len - 2);
			r->n -= len + 2;
			return;
		}
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 10000), 1);
		ssize_t k = read(r->fd, r->buf + r->n, sizeof(r->buf) - r->n);
		assert_true(k > 0);
		r->n += (size_t)k;
	}
}

static void
raw_bytes(struct raw *r, char *out, size_t len)
{
	while (r->n < len) {
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 10000), 1);
		ssize_t k = read(r->fd, r->buf + r->n, sizeof(r->buf) - r->n);
		assert_true(k > 0);
		r->n += (size_t)k;
	}
	memcpy(out, r->buf, len);
	memmove(r->buf, r->buf + len, r->n - len);
	r->n -= len;
}

static void
raw_connect(struct raw *r, int port, const char *subject)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};
	char line[4096], cmd[512];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->n = 0;
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	assert_int_equal(connect(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	raw_line(r, line, sizeof(line));
	assert_true(strncmp(line, "INFO ", 5) == 0);
	snprintf(cmd, sizeof(cmd), "%s%.200s%s",
	         "CONNECT {\"verbose\":false,\"pedantic\":false,"
	         "\"headers\":true,\"protocol\":1}\r\nSUB ",
	         subject, " 1\r\nPING\r\n");
	raw_write(r, cmd);
	do {
		raw_line(r, line, sizeof(line));
	} while (strcmp(line, "PONG") != 0);
}

/* The next MSG or HMSG on sid 1: its body (NUL-terminated). */
static size_t
raw_next(struct raw *r, char *body, size_t cap)
{
	char line[4096];
	size_t hlen = 0, total = 0;

	for (;;) {
		raw_line(r, line, sizeof(line));
		if (strcmp(line, "PING") == 0) {
			raw_write(r, "PONG\r\n");
			continue;
		}
		/* HMSG subject sid [reply] hlen total, MSG subject sid
		 * [reply] total */
		char *tok[6];
		int nt = 0;
		for (char *t = strtok(line, " "); t != NULL && nt < 6;
		     t = strtok(NULL, " ")) {
			tok[nt++] = t;
		}
		if (nt >= 5 && strcmp(tok[0], "HMSG") == 0) {
			hlen = strtoul(tok[nt - 2], NULL, 10);
			total = strtoul(tok[nt - 1], NULL, 10);
			break;
		}
		if (nt >= 4 && strcmp(tok[0], "MSG") == 0) {
			hlen = 0;
			total = strtoul(tok[nt - 1], NULL, 10);
			break;
		}
	}
	char *all = malloc(total + 2);
	assert_non_null(all);
	raw_bytes(r, all, total + 2);
	assert_true(hlen <= total && total - hlen < cap);
	memcpy(body, all + hlen, total - hlen);
	body[total - hlen] = '\0';
	if (hlen > 0) {
		/* libipc's bookkeeping rides in the headers */
		assert_non_null(memmem(all, hlen, "Ipc-Seq", 7));
	}
	free(all);
	return total - hlen;
}

static void
t_interop(void **state)
{
	char dir[256], u[512], subj[128], body[256], cmd[1024];
	struct srv s[1] = {{0}};
	ipc_channel *a, *b;
	struct raw r;

	(void)state;
	need_server();
	single(s, dir, sizeof(dir));
	for (int js = 1; js >= 0; js--) {
		snprintf(subj, sizeof(subj), "interop.js%d", js);
		/* Not a test of death: a peer starved under a sanitizer
		 * and a loaded machine must not pass for dead (500 ms). */
		snprintf(u, sizeof(u),
		         "nats://127.0.0.1:%d/%s?js=%d&hb=200&dead=10000",
		         s->port, subj, js);
		assert_int_equal(ipc_open(&a, u, IPC_CREATE), 0);
		assert_int_equal(ipc_open(&b, u, 0), 0);
		assert_int_equal(ipc_set_timeout(a, 5000), 0);
		assert_int_equal(ipc_set_timeout(b, 5000), 0);
		snprintf(cmd, sizeof(cmd), "%s.c2o", subj);
		raw_connect(&r, s->port, cmd);

		/* libipc -> the raw client (and the libipc peer) */
		assert_int_equal(ipc_send(a, "from libipc", 11, 0), 11);
		assert_int_equal(raw_next(&r, body, sizeof(body)), 11);
		assert_string_equal(body, "from libipc");
		assert_int_equal(ipc_recv(b, body, sizeof(body), 0), 11);

		/* the raw client -> libipc, on the opener's subject */
		snprintf(cmd, sizeof(cmd),
		         "PUB %s.o2c 15\r\nfrom raw socket\r\nPING\r\n", subj);
		raw_write(&r, cmd);
		ssize_t n = ipc_recv(a, body, sizeof(body), 0);
		assert_int_equal(n, 15);
		assert_memory_equal(body, "from raw socket", 15);
		printf("js=%d: a plain NATS client read \"from libipc\" and "
		       "published \"from raw socket\" to %s.o2c\n",
		       js, subj);
		close(r.fd);
		assert_int_equal(ipc_close(b), 0);
		assert_int_equal(ipc_close(a), 0);
	}
	done(s, 1, dir);
}

/* ---------------------------------------------------------- failover -- */

#define FO_N 10000

struct fo_shared {
	long sent, acked, received, lost, dup, badsum;
	int close_r, kill_at;
	uint32_t sum_tx, sum_rx;
};

static uint32_t
fnv(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

struct fo_arg {
	const char *uri;
	struct fo_shared *sh;
	int killpipe; /* producer: write a byte when mid-stream */
};

static int
open_retry(ipc_channel **ch, const char *uri, int flags, int secs)
{
	double end = tu_now() + secs;
	int r;

	for (;;) {
		r = ipc_open(ch, uri, flags);
		if (r == 0 || tu_now() > end) {
			return r;
		}
		tu_sleep_ms(200);
	}
}

static int
fo_producer(void *arg)
{
	struct fo_arg *a = arg;
	unsigned char m[1100];
	uint32_t rs = 12345;
	ipc_channel *ch;

	int r = open_retry(&ch, a->uri, IPC_CREATE, 30);
	TU_CHECK_MSG(r == 0, "producer open: %s", tu_errname(r));
	TU_OK(ipc_set_timeout(ch, 30000));
	for (long i = 0; i < FO_N; i++) {
		rs ^= rs << 13;
		rs ^= rs >> 17;
		rs ^= rs << 5;
		size_t len = 12 + rs % 1000;
		for (size_t k = 12; k < len; k++) {
			m[k] = (unsigned char)(i * 31 + k);
		}
		uint32_t c = fnv(m + 12, len - 12);
		memcpy(m, &i, 4);
		memcpy(m + 4, &len, 4);
		memcpy(m + 8, &c, 4);
		ssize_t s = ipc_send(ch, m, len, 0);
		TU_CHECK_MSG(s == (ssize_t)len, "send %ld: %s", i,
		             tu_errname((int)s));
		a->sh->sent++;
		a->sh->sum_tx ^= c;
		if (i == a->sh->kill_at) {
			TU_CHECK(write(a->killpipe, "k", 1) == 1);
		}
	}
	a->sh->close_r = ipc_close(ch);
	if (a->sh->close_r < 0) {
		printf("producer close: %s\n", ipc_last_error());
		long unacked = 0;
		sscanf(strstr(ipc_last_error(), "close: ") + 7, "%ld",
		       &unacked);
		a->sh->acked = a->sh->sent - unacked;
	} else {
		a->sh->acked = a->sh->sent;
	}
	return 0;
}

static int
fo_consumer(void *arg)
{
	struct fo_arg *a = arg;
	unsigned char m[1100];
	ipc_channel *ch;
	long expect = 0;

	int r = open_retry(&ch, a->uri, 0, 30);
	TU_CHECK_MSG(r == 0, "consumer open: %s", tu_errname(r));
	TU_OK(ipc_set_timeout(ch, 60000));
	for (;;) {
		ssize_t n = ipc_recv(ch, m, sizeof(m), 0);
		if (n == -EPIPE) {
			break;
		}
		TU_CHECK_MSG(n >= 12, "recv after %ld: %s (%s)",
		             a->sh->received, tu_errname((int)n),
		             ipc_last_error());
		long i = 0;
		uint32_t len = 0, c;
		memcpy(&i, m, 4);
		memcpy(&len, m + 4, 4);
		memcpy(&c, m + 8, 4);
		a->sh->received++;
		if (len != (uint32_t)n || fnv(m + 12, (size_t)n - 12) != c) {
			a->sh->badsum++;
		}
		if (i < expect) {
			a->sh->dup++;
			continue;
		}
		a->sh->lost += i - expect;
		expect = i + 1;
		a->sh->sum_rx ^= c;
	}
	a->sh->lost += FO_N - expect;
	ipc_close(ch);
	return 0;
}

static void
t_failover(void **state)
{
	char dir[256], up[512], uc[512];
	struct srv s[3] = {{0}};
	int kp[2];

	(void)state;
	need_server();
	assert_int_equal(tu_tmpdir(dir, sizeof(dir), "ipc-nats"), 0);
	ports(s, 3);
	for (int i = 1; i <= 3; i++) {
		srv_start(s, i, 3, dir);
	}
	/* The producer lists server 1 first (it connects there), the
	 * consumer server 3; both can reach every server. */
	snprintf(up, sizeof(up),
	         "nats://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/failover?"
	         "replicas=3&dead=10000&resend=500&ackwait=2000",
	         s[0].port, s[1].port, s[2].port);
	snprintf(uc, sizeof(uc),
	         "nats://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/failover?"
	         "replicas=3&dead=10000&resend=500&ackwait=2000",
	         s[2].port, s[1].port, s[0].port);
	struct fo_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	sh->kill_at = FO_N / 2;
	assert_int_equal(pipe2(kp, O_CLOEXEC), 0);
	struct fo_arg pa = {up, sh, kp[1]}, ca = {uc, sh, -1};
	double t0 = tu_now();
	pid_t prod = tu_fork(fo_producer, &pa, 240);
	assert_true(prod > 0);
	/* the consumer once the stream exists (open retries meanwhile) */
	pid_t cons = tu_fork(fo_consumer, &ca, 240);
	assert_true(cons > 0);
	close(kp[1]);
	char k;
	struct pollfd p = {.fd = kp[0], .events = POLLIN};
	int killed = poll(&p, 1, 180000) == 1 && read(kp[0], &k, 1) == 1;
	close(kp[0]);
	if (killed) {
		printf("message %d sent: SIGKILL to server 1 (port %d)\n",
		       sh->kill_at, s[0].port);
		srv_kill(&s[0]);
	}
	int okp = tu_wait_ok(prod, 240000);
	int okc = tu_wait_ok(cons, 240000);
	printf("failover: sent %ld, acked %ld, received %ld, lost %ld, "
	       "duplicated %ld, bad checksums %ld, checksums %s, %.1f s\n",
	       sh->sent, sh->acked, sh->received, sh->lost, sh->dup,
	       sh->badsum, sh->sum_tx == sh->sum_rx ? "equal" : "DIFFER",
	       tu_now() - t0);
	done(s, 3, dir);
	assert_true(killed);
	assert_int_equal(okp, 0);
	assert_int_equal(okc, 0);
	assert_int_equal(sh->sent, FO_N);
	assert_int_equal(sh->acked, FO_N);
	assert_int_equal(sh->received, FO_N);
	assert_int_equal(sh->lost, 0);
	assert_int_equal(sh->dup, 0);
	assert_int_equal(sh->badsum, 0);
	assert_true(sh->sum_tx == sh->sum_rx);
	munmap(sh, sizeof(*sh));
}

/* ------------------------------------------------------ fragmentation -- */

/* Sizes around the 64 KiB server's unit (max_payload - 512) and beyond:
 * a message longer than a NATS message can carry goes in fragments and
 * arrives whole. */
static const size_t frag_sizes[] = {
        0,           1,           65535 - 512,
        65536 - 512, 65537 - 512, 65536,
        100000,      (1u << 20),  3u * (1u << 20) + 7,
        200000,      17,          (1u << 20) - 1,
};
#define NFRAG (sizeof(frag_sizes) / sizeof(frag_sizes[0]))

static void
frag_fill(unsigned char *b, size_t len, unsigned i)
{
	uint32_t x = 0x9e3779b9u * (i + 1);

	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[k] = (unsigned char)x;
	}
}

struct frag_arg {
	char uri[512];
};

static int
frag_receiver(void *arg)
{
	struct frag_arg *a = arg;
	size_t cap = 3u * (1u << 20) + 64;
	unsigned char *got = malloc(cap), *want = malloc(cap);
	ipc_channel *ch;

	TU_CHECK(got != NULL && want != NULL);
	int r = open_retry(&ch, a->uri, 0, 30);
	TU_CHECK_MSG(r == 0, "receiver open: %s", tu_errname(r));
	TU_OK(ipc_set_timeout(ch, (int)(60000 * tu_time_factor())));
	for (unsigned i = 0; i < NFRAG; i++) {
		ssize_t n = ipc_recv(ch, got, cap, 0);
		TU_CHECK_MSG(n == (ssize_t)frag_sizes[i],
		             "message %u: %zd bytes (%s), want %zu", i, n,
		             n < 0 ? ipc_last_error() : "", frag_sizes[i]);
		frag_fill(want, frag_sizes[i], i);
		TU_CHECK_MSG(memcmp(got, want, frag_sizes[i]) == 0,
		             "message %u: wrong content", i);
	}
	TU_OK(ipc_send(ch, "ok", 2, 0) == 2 ? 0 : -EIO);
	ipc_close(ch);
	free(got);
	free(want);
	return 0;
}

static void
frag_case(int port, const char *opts)
{
	struct frag_arg a;
	unsigned char *b = malloc(3u * (1u << 20) + 64);
	char ok[8];
	ipc_channel *ch;

	assert_non_null(b);
	static int round;
	snprintf(a.uri, sizeof(a.uri), "nats://127.0.0.1:%d/frag%d_%d?%s",
	         port, (int)getpid(), ++round, opts);
	assert_int_equal(ipc_open(&ch, a.uri, IPC_CREATE), 0);
	assert_int_equal(ipc_max_msg(ch), 64u << 20);
	assert_int_equal(ipc_set_timeout(ch, (int)(60000 * tu_time_factor())),
	                 0);
	pid_t pid = tu_fork(frag_receiver, &a, 240);
	assert_true(pid > 0);
	for (unsigned i = 0; i < NFRAG; i++) {
		frag_fill(b, frag_sizes[i], i);
		ssize_t n = ipc_send(ch, b, frag_sizes[i], 0);
		if (n != (ssize_t)frag_sizes[i]) {
			fail_msg("%s: send %u (%zu bytes): %s", opts, i,
			         frag_sizes[i], ipc_last_error());
		}
	}
	assert_int_equal(ipc_recv(ch, ok, sizeof(ok), 0), 2);
	assert_int_equal(tu_wait_ok(pid, 240000), 0);
	printf("%s: %zu messages up to %zu bytes through a server with "
	       "max_payload 64 KiB, whole and intact\n",
	       opts, NFRAG, (size_t)3u * (1u << 20) + 7);
	assert_int_equal(ipc_close(ch), 0);
	free(b);
}

static void
t_fragments(void **state)
{
	char dir[256];
	struct srv s[1] = {{0}};

	(void)state;
	need_server();
	srv_max_payload = "64KB";
	single(s, dir, sizeof(dir));
	srv_max_payload = "4MB";
	frag_case(s[0].port, "storage=memory");
	frag_case(s[0].port, "js=0");
	done(s, 1, dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_options),   cmocka_unit_test(t_refused),
	        cmocka_unit_test(t_interop),   cmocka_unit_test(t_failover),
	        cmocka_unit_test(t_fragments),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
