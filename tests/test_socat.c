/*
 * Interoperation with socat, a program that knows nothing of libipc:
 *  - lines typed into `socat - UNIX-CONNECT:PATH` arrive one message per
 *    line at unix:///PATH?framing=line, and replies come back as lines;
 *  - a datagram sent by socat to udp:// or unix+dgram:// arrives as one
 *    message (newlines inside it included), and one sent by libipc to a
 *    socat receiver arrives as one datagram.
 * socat's stdin and stdout are pipes held by the test.  Without socat on
 * PATH every test skips, saying so.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

#define STEP_MS 5000

static int
have_socat(void)
{
	const char *path = getenv("PATH");
	char dir[512], full[600];

	while (path != NULL && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		if (n > 0 && n < sizeof dir) {
			memcpy(dir, path, n);
			dir[n] = '\0';
			snprintf(full, sizeof full, "%s/socat", dir);
			if (access(full, X_OK) == 0) {
				return 1;
			}
		}
		path = end ? end + 1 : NULL;
	}
	return 0;
}

static void
need_socat(void)
{
	if (!have_socat()) {
		printf("socat is not on PATH (apt-get install socat): "
		       "skipped\n");
		skip();
	}
}

struct socat {
	pid_t pid;
	int in;  /* write end of its stdin, or -1 */
	int out; /* read end of its stdout */
};

/* Start socat with args (NULL-terminated, without argv[0]). */
static void
socat_start(struct socat *s, const char *const *args)
{
	const char *argv[16];
	int in[2], out[2], n = 0;

	argv[n++] = "socat";
	while (*args != NULL && n < 15) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execvp("socat", (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->in = in[1];
	s->out = out[0];
}

static void
socat_write(struct socat *s, const char *text)
{
	size_t n = strlen(text);
	assert_int_equal(write(s->in, text, n), (ssize_t)n);
}

/* Read from socat's stdout until want has come (or fail after STEP_MS). */
static void
socat_expect(struct socat *s, const char *want)
{
	char buf[512];
	size_t have = 0, n = strlen(want);

	assert_true(n < sizeof buf);
	while (have < n) {
		struct pollfd p = {.fd = s->out, .events = POLLIN};
		if (poll(&p, 1, STEP_MS) != 1) {
			fail_msg("socat printed \"%.*s\", waiting for \"%s\"",
			         (int)have, buf, want);
		}
		ssize_t r = read(s->out, buf + have, n - have);
		assert_true(r > 0);
		have += (size_t)r;
	}
	assert_memory_equal(buf, want, n);
}

/* Close its stdin and wait for it; SIGTERM first if kill is set. */
static int
socat_end(struct socat *s, int kill_it)
{
	int status;

	if (s->in >= 0) {
		close(s->in);
		s->in = -1;
	}
	if (kill_it) {
		kill(s->pid, SIGTERM);
	}
	assert_int_equal(tu_wait(s->pid, STEP_MS, &status), 0);
	close(s->out);
	return status;
}

static void
expect_msg(ipc_channel *ch, const char *want)
{
	char buf[512];
	ssize_t n = ipc_recv(ch, buf, sizeof buf, 0);

	if (n < 0) {
		fail_msg("recv: %s (%s)", tu_errname((int)n),
		         ipc_last_error());
	}
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_memory_equal(buf, want, (size_t)n);
}

static void
send_str(ipc_channel *ch, const char *s)
{
	assert_int_equal(ipc_send(ch, s, strlen(s), 0), (ssize_t)strlen(s));
}

/* ---------------------------------------------------------------- tests */

/* socat - UNIX-CONNECT:PATH against unix:///PATH?framing=line: each line
 * typed is one message, each message sent is one line printed; socat's
 * EOF is the channel's -EPIPE. */
static void
t_unix_lines(void **state)
{
	char dir[96], path[160], uri[256], addr[200];
	ipc_channel *c;
	struct socat s;
	int fds = tu_fd_count();

	(void)state;
	need_socat();
	assert_int_equal(tu_tmpdir(dir, sizeof dir, "ipcsocat"), 0);
	snprintf(path, sizeof path, "%s/s", dir);
	snprintf(uri, sizeof uri, "unix://%s?framing=line", path);
	snprintf(addr, sizeof addr, "UNIX-CONNECT:%s", path);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_set_timeout(c, STEP_MS), 0);
	const char *args[] = {"-", addr, NULL};
	socat_start(&s, args);

	socat_write(&s, "hello world\n");
	expect_msg(c, "hello world");
	send_str(c, "HELLO WORLD");
	socat_expect(&s, "HELLO WORLD\n");

	/* three lines in one write: three messages */
	socat_write(&s, "a\nbb\nccc\n");
	expect_msg(c, "a");
	expect_msg(c, "bb");
	expect_msg(c, "ccc");
	send_str(c, "x");
	send_str(c, "");
	send_str(c, "yz");
	socat_expect(&s, "x\n\nyz\n");

	/* a message holding a newline cannot be a line */
	assert_int_equal(ipc_send(c, "a\nb", 3, 0), -EINVAL);

	/* socat's EOF (its stdin closed) ends the channel */
	close(s.in);
	s.in = -1;
	char buf[8];
	assert_int_equal(ipc_recv(c, buf, sizeof buf, 0), -EPIPE);
	ipc_close(c);
	int status = socat_end(&s, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(tu_fd_count(), fds);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* socat -u - UDP-SENDTO: one datagram, one message; and the other way,
 * libipc to socat -u UDP-RECV. */
static void
t_udp_datagram(void **state)
{
	char uri[128], addr[128];
	ipc_channel *c, *o;
	struct socat s;
	int port, fds = tu_fd_count(), r = 0;

	(void)state;
	need_socat();
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(uri, sizeof uri, "udp://127.0.0.1:%d", port);
	snprintf(addr, sizeof addr, "UDP-SENDTO:127.0.0.1:%d", port);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_set_timeout(c, STEP_MS), 0);
	const char *args[] = {"-u", "-", addr, NULL};
	socat_start(&s, args);
	socat_write(&s, "one datagram\nwith two lines");
	expect_msg(c, "one datagram\nwith two lines");
	socat_end(&s, 0);
	ipc_close(c);

	/* libipc to socat: open once socat's socket is bound */
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(uri, sizeof uri, "udp://127.0.0.1:%d", port);
	snprintf(addr, sizeof addr, "UDP-RECV:%d,bind=127.0.0.1", port);
	const char *args2[] = {"-u", addr, "-", NULL};
	socat_start(&s, args2);
	for (int i = 0; i < 500; i++) {
		r = ipc_open(&o, uri, 0);
		if (r != -ECONNREFUSED) {
			break;
		}
		tu_sleep_ms(10);
	}
	assert_int_equal(r, 0);
	send_str(o, "from libipc\n");
	socat_expect(&s, "from libipc\n");
	ipc_close(o);
	socat_end(&s, 1);
	assert_int_equal(tu_fd_count(), fds);
}

/* socat -u - UNIX-SENDTO: one datagram, one message; and the other way,
 * libipc (which passes its lifeline along) to socat -u UNIX-RECV. */
static void
t_unix_dgram_datagram(void **state)
{
	char dir[96], path[160], uri[256], addr[200];
	ipc_channel *c, *o;
	struct socat s;
	int fds = tu_fd_count(), r = 0;

	(void)state;
	need_socat();
	assert_int_equal(tu_tmpdir(dir, sizeof dir, "ipcsocat"), 0);
	snprintf(path, sizeof path, "%s/d", dir);
	snprintf(uri, sizeof uri, "unix+dgram://%s", path);
	snprintf(addr, sizeof addr, "UNIX-SENDTO:%s", path);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_set_timeout(c, STEP_MS), 0);
	const char *args[] = {"-u", "-", addr, NULL};
	socat_start(&s, args);
	socat_write(&s, "a datagram\nof two lines");
	expect_msg(c, "a datagram\nof two lines");
	socat_end(&s, 0);
	ipc_close(c);

	snprintf(path, sizeof path, "%s/r", dir);
	snprintf(uri, sizeof uri, "unix+dgram://%s", path);
	snprintf(addr, sizeof addr, "UNIX-RECV:%s", path);
	const char *args2[] = {"-u", addr, "-", NULL};
	socat_start(&s, args2);
	for (int i = 0; i < 500; i++) {
		r = ipc_open(&o, uri, 0);
		if (r != -ENOENT && r != -ECONNREFUSED) {
			break;
		}
		tu_sleep_ms(10);
	}
	assert_int_equal(r, 0);
	send_str(o, "from libipc\n");
	socat_expect(&s, "from libipc\n");
	ipc_close(o);
	socat_end(&s, 1);
	unlink(path); /* socat's own socket file */
	assert_int_equal(tu_fd_count(), fds);
	assert_int_equal(tu_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_unix_lines),
	        cmocka_unit_test(t_udp_datagram),
	        cmocka_unit_test(t_unix_dgram_datagram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
