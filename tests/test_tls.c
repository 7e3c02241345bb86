/*
 * tls+tcp:// with a throwaway PKI that tests/tls_certs.sh makes with the
 * openssl command (a CA, a certificate for 127.0.0.1, one for another
 * name, one from another CA):
 *
 *   untrusted    a server certificate from an unknown CA: refused, and
 *                ipc_last_error() says "not trusted"
 *   wrong_name   a certificate for another name: refused, "wrong name";
 *                accepted with sni= naming it
 *   client_cert  a server with ca= wants a client certificate: a client
 *                without one fails, one with it passes
 *   options      bad options are -EINVAL naming them
 *   s_client     framing=line against `openssl s_client` (both ways)
 *   socat        framing=line against socat's OPENSSL address, socat as
 *                client and as server (skipped without socat)
 *
 * usage: test_tls PATH/TO/tls_certs.sh
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

static const char *certs_sh;
static char D[256]; /* the certificates */

static int
have(const char *prog)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static int
setup_certs(void **state)
{
	char cmd[600];

	(void)state;
	if (!have("openssl")) {
		printf("SKIP: the openssl command is not installed\n");
		return 0;
	}
	if (tu_tmpdir(D, sizeof(D), "ipc-tls") < 0) {
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "sh %s %s", certs_sh, D);
	return system(cmd) == 0 ? 0 : -1;
}

static int
teardown_certs(void **state)
{
	(void)state;
	if (D[0] != '\0') {
		tu_rmtree(D);
	}
	return 0;
}

static void
need_certs(void)
{
	if (D[0] == '\0') {
		printf("SKIP: no certificates (no openssl command)\n");
		skip();
	}
}

/* A server URI on a free port with certificate NAME. */
static int
server_uri(char *u, size_t n, const char *name, const char *extra)
{
	int port;
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(u, n, "tls+tcp://127.0.0.1:%d?cert=%s/%s.pem&key=%s/%s.key%s",
	         port, D, name, D, name, extra);
	return port;
}

/* Open server (creator) and client; run one exchange; return the
 * client's first result (a length or -errno). */
static ssize_t
exchange(const char *su, const char *cu, char *err, size_t errn)
{
	ipc_channel *s, *c;
	char buf[64];
	ssize_t r;

	assert_int_equal(ipc_open(&s, su, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&c, cu, 0), 0);
	ipc_set_timeout(s, 5000);
	ipc_set_timeout(c, 5000);
	/* the server's recv drives its side of the handshake in a child */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_close(c);
		ssize_t k = ipc_recv(s, buf, sizeof(buf), 0);
		if (k == 5) {
			ipc_send(s, "world", 5, 0);
		}
		ipc_close(s);
		_exit(0);
	}
	r = ipc_send(c, "hello", 5, 0);
	if (r == 5) {
		r = ipc_recv(c, buf, sizeof(buf), 0);
	}
	snprintf(err, errn, "%s", ipc_last_error());
	ipc_close(c);
	ipc_close(s);
	waitpid(pid, NULL, 0);
	return r;
}

static void
t_untrusted(void **state)
{
	char su[1200], cu[1200], err[512];

	(void)state;
	need_certs();
	int port = server_uri(su, sizeof(su), "rogue", "");
	snprintf(cu, sizeof(cu), "tls+tcp://127.0.0.1:%d?ca=%s/ca.pem", port,
	         D);
	ssize_t r = exchange(su, cu, err, sizeof(err));
	printf("untrusted CA: %s (%s)\n", tu_errname((int)r), err);
	assert_int_equal(r, -EACCES);
	assert_non_null(strstr(err, "not trusted"));
	/* verify=none takes it */
	snprintf(cu, sizeof(cu), "tls+tcp://127.0.0.1:%d?verify=none", port);
	port = server_uri(su, sizeof(su), "rogue", "");
	snprintf(cu, sizeof(cu), "tls+tcp://127.0.0.1:%d?verify=none", port);
	assert_int_equal(exchange(su, cu, err, sizeof(err)), 5);
}

static void
t_wrong_name(void **state)
{
	char su[1200], cu[1200], err[512];

	(void)state;
	need_certs();
	int port = server_uri(su, sizeof(su), "wrong", "");
	snprintf(cu, sizeof(cu), "tls+tcp://127.0.0.1:%d?ca=%s/ca.pem", port,
	         D);
	ssize_t r = exchange(su, cu, err, sizeof(err));
	printf("wrong name: %s (%s)\n", tu_errname((int)r), err);
	assert_int_equal(r, -EACCES);
	assert_non_null(strstr(err, "wrong name"));
	port = server_uri(su, sizeof(su), "wrong", "");
	snprintf(cu, sizeof(cu),
	         "tls+tcp://127.0.0.1:%d?ca=%s/ca.pem&sni=wrong.example", port,
	         D);
	assert_int_equal(exchange(su, cu, err, sizeof(err)), 5);
	/* the right certificate, by address and by name */
	port = server_uri(su, sizeof(su), "peer", "");
	snprintf(cu, sizeof(cu), "tls+tcp://127.0.0.1:%d?ca=%s/ca.pem", port,
	         D);
	assert_int_equal(exchange(su, cu, err, sizeof(err)), 5);
	port = server_uri(su, sizeof(su), "peer", "");
	snprintf(cu, sizeof(cu), "tls+tcp://localhost:%d?ca=%s/ca.pem", port,
	         D);
	assert_int_equal(exchange(su, cu, err, sizeof(err)), 5);
}

static void
t_client_cert(void **state)
{
	char su[1200], cu[1200], extra[300], err[512];

	(void)state;
	need_certs();
	snprintf(extra, sizeof(extra), "&ca=%s/ca.pem", D);
	int port = server_uri(su, sizeof(su), "peer", extra);
	snprintf(cu, sizeof(cu), "tls+tcp://127.0.0.1:%d?ca=%s/ca.pem", port,
	         D);
	ssize_t r = exchange(su, cu, err, sizeof(err));
	printf("no client certificate: %s (%s)\n", tu_errname((int)r), err);
	assert_int_equal(r, -EACCES);
	port = server_uri(su, sizeof(su), "peer", extra);
	snprintf(cu, sizeof(cu),
	         "tls+tcp://127.0.0.1:%d?ca=%s/ca.pem&cert=%s/peer.pem&key=%s/"
	         "peer.key",
	         port, D, D, D);
	assert_int_equal(exchange(su, cu, err, sizeof(err)), 5);
	/* a client certificate from another CA */
	port = server_uri(su, sizeof(su), "peer", extra);
	snprintf(cu, sizeof(cu),
	         "tls+tcp://127.0.0.1:%d?verify=none&cert=%s/rogue.pem&key=%s/"
	         "rogue.key",
	         port, D, D);
	r = exchange(su, cu, err, sizeof(err));
	printf("untrusted client certificate: %s (%s)\n", tu_errname((int)r),
	       err);
	assert_int_equal(r, -EACCES);
}

static void
expect_einval(const char *uri, int flags, const char *word)
{
	ipc_channel *ch = NULL;
	int r = ipc_open(&ch, uri, flags);

	if (r != -EINVAL || strstr(ipc_last_error(), word) == NULL) {
		fail_msg("%s: got %s, \"%s\"; want EINVAL naming %s", uri,
		         tu_errname(r), ipc_last_error(), word);
	}
}

static void
t_options(void **state)
{
	char u[1200];
	ipc_channel *ch;

	(void)state;
	need_certs();
	expect_einval("tls+tcp://127.0.0.1:9?verify=maybe", 0, "verify");
	expect_einval("tls+tcp://127.0.0.1:9?bogus=1", 0, "bogus");
	expect_einval("tls+tcp://127.0.0.1:0", IPC_CREATE, "cert=");
	snprintf(u, sizeof(u), "tls+tcp://127.0.0.1:0?cert=%s/peer.pem", D);
	expect_einval(u, IPC_CREATE, "key=");
	snprintf(u, sizeof(u),
	         "tls+tcp://127.0.0.1:0?cert=%s/peer.pem&key=%s/wrong.key", D,
	         D);
	expect_einval(u, IPC_CREATE, "mismatch");
	snprintf(
	        u, sizeof(u),
	        "tls+tcp://127.0.0.1:0?cert=%s/peer.pem&key=%s/peer.key&sni=x",
	        D, D);
	expect_einval(u, IPC_CREATE, "sni");
	snprintf(u, sizeof(u), "tls+tcp://127.0.0.1:9?ca=%s/nonexistent.pem",
	         D);
	assert_int_equal(ipc_open(&ch, u, 0), -ENOENT);
	assert_non_null(strstr(ipc_last_error(), "ca="));
}

/* ------------------------------------------------ foreign TLS peers -- */

struct prog {
	pid_t pid;
	int in, out;
};

static void
spawn(struct prog *p, char *const argv[])
{
	int in[2], out[2];

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(nul, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->in = in[1];
	p->out = out[0];
}

static void
prog_expect(struct prog *p, const char *want)
{
	char buf[512];
	size_t have = 0, n = strlen(want);

	while (have < n) {
		struct pollfd q = {.fd = p->out, .events = POLLIN};
		if (poll(&q, 1, 10000) != 1) {
			fail_msg("got \"%.*s\", waiting for \"%s\"", (int)have,
			         buf, want);
		}
		ssize_t r = read(p->out, buf + have, n - have);
		assert_true(r > 0);
		have += (size_t)r;
	}
	assert_memory_equal(buf, want, n);
}

static void
prog_end(struct prog *p)
{
	close(p->in);
	close(p->out);
	/* socat can sit in its TLS shutdown after SIGTERM (seen once in 30
	 * runs): give it two seconds, then SIGKILL. */
	kill(p->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			return;
		}
		tu_sleep_ms(10);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
}

/* A libipc end speaking framing=line with a foreign program. */
static void
talk(ipc_channel *ch, struct prog *p, const char *who)
{
	char buf[128];
	ssize_t n;

	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	assert_int_equal(write(p->in, "hello from the other side\n", 26), 26);
	n = ipc_recv(ch, buf, sizeof(buf), 0);
	if (n < 0) {
		fail_msg("%s: recv: %s (%s)", who, tu_errname((int)n),
		         ipc_last_error());
	}
	assert_int_equal(n, 25);
	assert_memory_equal(buf, "hello from the other side", 25);
	assert_int_equal(ipc_send(ch, "hello from libipc", 17, 0), 17);
	prog_expect(p, "hello from libipc\n");
	printf("%s: a line each way\n", who);
}

static void
t_s_client(void **state)
{
	char su[1200], addr[64], ca[300];
	ipc_channel *s;
	struct prog p;

	(void)state;
	need_certs();
	int port = server_uri(su, sizeof(su), "peer", "&framing=line");
	assert_int_equal(ipc_open(&s, su, IPC_CREATE), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(ca, sizeof(ca), "%s/ca.pem", D);
	char *argv[] = {"openssl",
	                "s_client",
	                "-connect",
	                addr,
	                "-CAfile",
	                ca,
	                "-verify_return_error",
	                "-verify_ip",
	                "127.0.0.1",
	                "-tls1_3",
	                "-quiet",
	                NULL};
	spawn(&p, argv);
	talk(s, &p, "openssl s_client -> libipc server");
	prog_end(&p);
	ipc_close(s);
}

static void
t_socat(void **state)
{
	char su[1200], cu[1200], addr[700];
	ipc_channel *ch;
	struct prog p;

	(void)state;
	need_certs();
	if (!have("socat")) {
		printf("SKIP: socat is not installed\n");
		skip();
	}
	/* socat connects to a libipc server */
	int port = server_uri(su, sizeof(su), "peer", "&framing=line");
	assert_int_equal(ipc_open(&ch, su, IPC_CREATE), 0);
	snprintf(addr, sizeof(addr),
	         "OPENSSL:127.0.0.1:%d,cafile=%s/ca.pem,verify=1,"
	         "commonname=127.0.0.1",
	         port, D);
	char *argv[] = {"socat", "-", addr, NULL};
	spawn(&p, argv);
	talk(ch, &p, "socat OPENSSL -> libipc server");
	prog_end(&p);
	ipc_close(ch);
	/* a libipc client connects to socat */
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(addr, sizeof(addr),
	         "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,cert=%s/peer.pem,"
	         "key=%s/peer.key,verify=0",
	         port, D, D);
	char *argv2[] = {"socat", "-", addr, NULL};
	spawn(&p, argv2);
	snprintf(cu, sizeof(cu),
	         "tls+tcp://127.0.0.1:%d?ca=%s/ca.pem&framing=line", port, D);
	int r = -1;
	for (int i = 0; i < 100 && r < 0; i++) {
		r = ipc_open(&ch, cu, 0);
		if (r < 0) {
			tu_sleep_ms(50);
		}
	}
	assert_int_equal(r, 0);
	talk(ch, &p, "libipc client -> socat OPENSSL-LISTEN");
	ipc_close(ch);
	prog_end(&p);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_untrusted),
	        cmocka_unit_test(t_wrong_name),
	        cmocka_unit_test(t_client_cert),
	        cmocka_unit_test(t_options),
	        cmocka_unit_test(t_s_client),
	        cmocka_unit_test(t_socat),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH/TO/tls_certs.sh\n", argv[0]);
		return 2;
	}
	certs_sh = argv[1];
	signal(SIGPIPE, SIG_DFL);
	alarm(100); /* a hang fails here, naming the case, before meson's limit
	             */
	return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
