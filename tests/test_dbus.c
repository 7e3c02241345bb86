/*
 * dbus:// against a private dbus-daemon (started here, in a temporary
 * directory, and stopped afterwards) and the real D-Bus tools:
 *   - the dbus-send command reaches a channel byte for byte (the
 *     --session bus being the private one), and so do busctl and gdbus;
 *   - a libipc sender reaches a peer that is not libipc (an sd-bus
 *     responder written here), which answers through the same method;
 *   - a third caller is refused with an error once the peer is known, and
 *     a call with the wrong signature is refused without harm;
 *   - kill -9 of either side gives -EPIPE within one second;
 *   - ipc_fd() stays readable while a message waits in the library;
 *   - the window: a receiver that does not read stops the sender;
 *   - nothing sent before close is lost: an opener that sends and closes
 *     while the bus daemon is stopped (SIGSTOP) still delivers everything;
 *   - ipc_peer_cred from the bus daemon; allow_uid= parsed;
 *   - URI errors, a name already owned, a missing owner or bus.
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "dbusd.h"
#include "ipc/ipc.h"
#include "testutil.h"

/* "Within one second", with room for a loaded machine and sanitizers. */
#define DEATH_S (SANITIZED ? 5.0 : 2.5)

static struct dbusd bus;
static char busdir[128];
static char skip_why[256];
static int names;

static void
need_bus(void)
{
	if (bus.pid <= 0) {
		printf("SKIP: %s\n", skip_why);
		skip();
	}
}

/* A fresh well-known name on the private bus. */
static void
fresh_uri(char *uri, size_t n, char *name, size_t nn)
{
	snprintf(name, nn, "org.libipc.test.n%d_%d", (int)getpid(), ++names);
	snprintf(uri, n, "dbus:///%s?address=%s", name, bus.address);
}

/* Start cmd in the background (output to out, read by finish()). */
struct bg {
	pid_t pid;
	int fd;
	int status;
};

static void
start_bg(struct bg *b, char *const argv[])
{
	int pfd[2];

	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	b->pid = fork();
	assert_true(b->pid >= 0);
	if (b->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		setenv("DBUS_SESSION_BUS_ADDRESS", bus.address, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	b->fd = pfd[0];
}

static int
finish_bg(struct bg *b, char *out, size_t n)
{
	size_t got = 0;
	ssize_t k;
	int st;

	while (got < n - 1 && (k = read(b->fd, out + got, n - 1 - got)) > 0) {
		got += (size_t)k;
	}
	out[got] = '\0';
	close(b->fd);
	if (b->pid > 0) {
		assert_int_equal(waitpid(b->pid, &st, 0), b->pid);
	} else {
		st = b->status; /* reaped by finish_bg_polling */
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* finish_bg, while ch is polled (which lets it answer calls). */
static int
finish_bg_polling(struct bg *b, ipc_channel *ch, char *out, size_t n)
{
	int st;

	for (int i = 0; i < 400; i++) {
		pid_t w = waitpid(b->pid, &st, WNOHANG);
		assert_true(w >= 0);
		if (w == b->pid) {
			b->pid = 0;
			b->status = st;
			break;
		}
		ipc_pollitem it = {
		        .channel = ch, .fd = -1, .events = IPC_POLLIN};
		(void)ipc_poll(&it, 1, 50);
	}
	return finish_bg(b, out, n);
}

static int
have(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* ---------------------------------------------------------- the tools -- */

/* The command, with --session meaning the private bus. */
static void
t_dbus_send_hi(void **state)
{
	ipc_channel *ch;
	char buf[64], out[2048];
	struct bg b;

	(void)state;
	need_bus();
	if (!have("dbus-send")) {
		printf("SKIP: dbus-send is not installed (Debian: "
		       "dbus-bin)\n");
		skip();
	}
	setenv("DBUS_SESSION_BUS_ADDRESS", bus.address, 1);
	assert_int_equal(ipc_open(&ch, "dbus://session/org.example.Telemetry",
	                          IPC_CREATE),
	                 0);
	char *const argv[] = {
	        "dbus-send",           "--session",
	        "--print-reply",       "--dest=org.example.Telemetry",
	        "/org/libipc/Channel", "org.libipc.Channel1.Send",
	        "array:byte:104,105",  NULL};
	start_bg(&b, argv);
	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 2);
	assert_memory_equal(buf, "hi", 2);
	int st = finish_bg(&b, out, sizeof(out));
	if (st != 0) {
		fail_msg("dbus-send: exit %d: %s", st, out);
	}
	/* dbus-send got its reply and left: that is its close. */
	assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_close(ch), 0);
	unsetenv("DBUS_SESSION_BUS_ADDRESS");
}

/* Every byte value through dbus-send; busctl and gdbus too. */
static void
t_all_bytes(void **state)
{
	char uri[512], name[128], arg[2048], out[2048], dest[160];
	unsigned char buf[512];
	ipc_channel *ch;
	int tools = 0;

	(void)state;
	need_bus();
	size_t o = (size_t)snprintf(arg, sizeof(arg), "array:byte:");
	for (int i = 0; i < 256; i++) {
		o += (size_t)snprintf(arg + o, sizeof(arg) - o, "%s%d",
		                      i ? "," : "", i);
	}
	if (have("dbus-send")) {
		tools++;
		fresh_uri(uri, sizeof(uri), name, sizeof(name));
		assert_int_equal(ipc_open(&ch, uri, IPC_CREATE), 0);
		assert_int_equal(ipc_set_timeout(ch, 10000), 0);
		snprintf(dest, sizeof(dest), "--dest=%s", name);
		char *const argv[] = {"dbus-send",
		                      "--session",
		                      "--print-reply",
		                      dest,
		                      "/org/libipc/Channel",
		                      "org.libipc.Channel1.Send",
		                      arg,
		                      NULL};
		struct bg b;
		start_bg(&b, argv);
		assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 256);
		for (int i = 0; i < 256; i++) {
			assert_int_equal(buf[i], i);
		}
		assert_int_equal(finish_bg(&b, out, sizeof(out)), 0);
		assert_int_equal(ipc_close(ch), 0);
	}
	if (have("busctl")) {
		char addr[400];
		tools++;
		fresh_uri(uri, sizeof(uri), name, sizeof(name));
		assert_int_equal(ipc_open(&ch, uri, IPC_CREATE), 0);
		assert_int_equal(ipc_set_timeout(ch, 10000), 0);
		snprintf(addr, sizeof(addr), "--address=%s", bus.address);
		char *const argv[] = {"busctl",
		                      addr,
		                      "call",
		                      name,
		                      "/org/libipc/Channel",
		                      "org.libipc.Channel1",
		                      "Send",
		                      "ay",
		                      "3",
		                      "0",
		                      "255",
		                      "7",
		                      NULL};
		struct bg b;
		start_bg(&b, argv);
		assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 3);
		assert_int_equal(buf[0], 0);
		assert_int_equal(buf[1], 255);
		assert_int_equal(buf[2], 7);
		int st = finish_bg(&b, out, sizeof(out));
		if (st != 0) {
			fail_msg("busctl: exit %d: %s", st, out);
		}
		assert_int_equal(ipc_close(ch), 0);
	}
	if (have("gdbus")) {
		tools++;
		fresh_uri(uri, sizeof(uri), name, sizeof(name));
		assert_int_equal(ipc_open(&ch, uri, IPC_CREATE), 0);
		assert_int_equal(ipc_set_timeout(ch, 10000), 0);
		char *const argv[] = {"gdbus",
		                      "call",
		                      "--session",
		                      "--dest",
		                      name,
		                      "--object-path",
		                      "/org/libipc/Channel",
		                      "--method",
		                      "org.libipc.Channel1.Send",
		                      "[byte 0, 255, 7, 10]",
		                      NULL};
		struct bg b;
		start_bg(&b, argv);
		assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 4);
		assert_memory_equal(buf, "\0\377\7\n", 4);
		int st = finish_bg(&b, out, sizeof(out));
		if (st != 0) {
			fail_msg("gdbus: exit %d: %s", st, out);
		}
		assert_int_equal(ipc_close(ch), 0);
	}
	if (tools == 0) {
		printf("SKIP: none of dbus-send, busctl, gdbus is "
		       "installed\n");
		skip();
	}
}

/* A peer is known: a third caller gets an error, the wrong signature
 * too, and the channel goes on. */
static void
t_third_party_and_bad_calls(void **state)
{
	char uri[512], name[128], out[2048], dest[160];
	char buf[64];
	ipc_channel *a, *b;

	(void)state;
	need_bus();
	if (!have("dbus-send")) {
		printf("SKIP: dbus-send is not installed (Debian: "
		       "dbus-bin)\n");
		skip();
	}
	fresh_uri(uri, sizeof(uri), name, sizeof(name));
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&b, uri, 0), 0);
	assert_int_equal(ipc_set_timeout(a, 10000), 0);
	assert_int_equal(ipc_set_timeout(b, 10000), 0);
	pid_t pid;
	uid_t uid;
	gid_t gid;
	assert_int_equal(ipc_peer_cred(a, &pid, &uid, &gid), -ENOTCONN);
	/* The opener knows its creator from the bus daemon at open. */
	assert_int_equal(ipc_peer_cred(b, &pid, &uid, &gid), 0);
	assert_int_equal(pid, getpid());
	assert_int_equal(uid, geteuid());
	assert_int_equal(gid, getegid());
	assert_int_equal(ipc_send(b, "first", 5, 0), 5);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 5);
	assert_int_equal(ipc_peer_cred(a, &pid, &uid, NULL), 0);
	assert_int_equal(pid, getpid());
	assert_int_equal(uid, geteuid());

	snprintf(dest, sizeof(dest), "--dest=%s", name);
	char *const third[] = {
	        "dbus-send",           "--session",
	        "--print-reply",       dest,
	        "/org/libipc/Channel", "org.libipc.Channel1.Send",
	        "array:byte:1,2,3",    NULL};
	struct bg bgp;
	start_bg(&bgp, third);
	assert_int_not_equal(finish_bg_polling(&bgp, a, out, sizeof(out)), 0);
	if (strstr(out, "org.libipc.Error.NotPeer") == NULL) {
		fail_msg("a third caller was not refused: %s", out);
	}
	char *const badsig[] = {
	        "dbus-send",           "--session",
	        "--print-reply",       dest,
	        "/org/libipc/Channel", "org.libipc.Channel1.Send",
	        "string:hi",           NULL};
	start_bg(&bgp, badsig);
	assert_int_not_equal(finish_bg_polling(&bgp, a, out, sizeof(out)), 0);
	if (strstr(out, "InvalidArgs") == NULL) {
		fail_msg("a call with the wrong signature: %s", out);
	}

	/* Nothing of theirs arrived; the peer's next message does. */
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_send(b, "second", 6, 0), 6);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "second", 6);
	assert_int_equal(ipc_send(a, "back", 4, 0), 4);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), 0), 4);
	assert_int_equal(ipc_close(b), 0);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_close(a), 0);
}

/* ------------------------------------------- a peer that is not libipc */

struct responder {
	int quit;
};

/* Send(ay): acknowledge, then call the caller's Send with the same bytes
 * (no reply wanted); the message "quit" ends the responder. */
static int
r_send(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct responder *r = userdata;
	sd_bus_message *call = NULL;
	const void *data;
	size_t len;

	(void)e;
	if (sd_bus_message_read_array(m, 'y', &data, &len) < 0) {
		return -EINVAL;
	}
	if (len == 4 && memcmp(data, "quit", 4) == 0) {
		r->quit = 1;
	}
	sd_bus *b = sd_bus_message_get_bus(m);
	if (sd_bus_message_new_method_call(
	            b, &call, sd_bus_message_get_sender(m),
	            "/org/libipc/Channel", "org.libipc.Channel1",
	            "Send") < 0 ||
	    sd_bus_message_append_array(call, 'y', data, len) < 0 ||
	    sd_bus_send(b, call, NULL) < 0) {
		sd_bus_message_unref(call);
		return -EIO;
	}
	sd_bus_message_unref(call);
	return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable r_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Send", "ay", "", r_send, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* The child: own name, serve until "quit".  Writes one byte to ready. */
static int
responder_main(const char *name, int ready)
{
	struct responder r = {0};
	sd_bus *b = NULL;

	if (sd_bus_new(&b) < 0 || sd_bus_set_address(b, bus.address) < 0 ||
	    sd_bus_set_bus_client(b, 1) < 0 || sd_bus_start(b) < 0 ||
	    sd_bus_add_object_vtable(b, NULL, "/org/libipc/Channel",
	                             "org.libipc.Channel1", r_vtable,
	                             &r) < 0 ||
	    sd_bus_request_name(b, name, 0) < 0) {
		return 1;
	}
	(void)!write(ready, "r", 1);
	while (!r.quit) {
		int k = sd_bus_process(b, NULL);
		if (k < 0) {
			return 2;
		}
		if (k == 0 && sd_bus_wait(b, UINT64_MAX) < 0) {
			return 3;
		}
	}
	sd_bus_flush_close_unref(b);
	return 0;
}

static void
t_sdbus_peer(void **state)
{
	char uri[512], name[128], buf[4096];
	int pfd[2];
	ipc_channel *ch;

	(void)state;
	need_bus();
	fresh_uri(uri, sizeof(uri), name, sizeof(name));
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		alarm(60);
		_exit(responder_main(name, pfd[1]));
	}
	close(pfd[1]);
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);

	assert_int_equal(ipc_open(&ch, uri, 0), 0);
	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	for (int i = 0; i < 100; i++) {
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "message %d", i);
		assert_int_equal(ipc_send(ch, msg, (size_t)n, 0), n);
		assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), n);
		assert_memory_equal(buf, msg, (size_t)n);
	}
	assert_int_equal(ipc_send(ch, "quit", 4, 0), 4);
	assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 4);
	/* The responder leaves: its close. */
	assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_send(ch, "x", 1, 0), -EPIPE);
	assert_int_equal(tu_wait_ok(pid, 10000), 0);
	assert_int_equal(ipc_close(ch), 0);
}

/* ----------------------------------------------------- peers dying -- */

struct kid {
	char uri[512];
	int create;
	int ctl; /* write end: "ready" */
};

static int
kid_main(void *arg)
{
	struct kid *k = arg;
	ipc_channel *ch;

	if (ipc_open(&ch, k->uri, k->create ? IPC_CREATE : 0) < 0) {
		return 1;
	}
	if (!k->create && ipc_send(ch, "hello", 5, 0) != 5) {
		return 2;
	}
	(void)!write(k->ctl, "r", 1);
	for (;;) {
		pause();
	}
}

static void
kill_case(int kill_creator)
{
	char name[128], buf[64];
	struct kid k = {0};
	int pfd[2];
	ipc_channel *ch;
	long long rc;

	fresh_uri(k.uri, sizeof(k.uri), name, sizeof(name));
	assert_int_equal(pipe(pfd), 0);
	k.ctl = pfd[1];
	k.create = kill_creator;
	if (!kill_creator) {
		assert_int_equal(ipc_open(&ch, k.uri, IPC_CREATE), 0);
	}
	pid_t pid = tu_fork(kid_main, &k, 60);
	assert_true(pid > 0);
	close(pfd[1]);
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	if (kill_creator) {
		assert_int_equal(ipc_open(&ch, k.uri, 0), 0);
	} else {
		assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 5);
	}
	double t = tu_time_to_epipe(ch, pid, 200, 'r', &rc);
	waitpid(pid, NULL, 0);
	assert_int_equal(rc, -EPIPE);
	printf("recv returned -EPIPE %.3f s after SIGKILL of the %s\n", t,
	       kill_creator ? "creator" : "opener");
	assert_true(t < DEATH_S);
	assert_int_equal(ipc_send(ch, "x", 1, 0), -EPIPE);
	assert_int_equal(ipc_close(ch), 0);
}

static void
t_kill_opener(void **state)
{
	(void)state;
	need_bus();
	kill_case(0);
}

static void
t_kill_creator(void **state)
{
	(void)state;
	need_bus();
	kill_case(1);
}

/* ----------------------------------------------------- ipc_fd, window -- */

/* Two messages arrive at once; after the first is received the second
 * waits inside the library, and ipc_fd() must still say so. */
static void
t_fd_level(void **state)
{
	char uri[512], name[128], buf[64];
	ipc_channel *a, *b;

	(void)state;
	need_bus();
	fresh_uri(uri, sizeof(uri), name, sizeof(name));
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&b, uri, 0), 0);
	assert_int_equal(ipc_set_timeout(a, 10000), 0);
	assert_int_equal(ipc_set_timeout(b, 10000), 0);
	/* A round trip, then a pause: a has learned its peer and every
	 * answer of the bus about it has arrived; nothing else is on its
	 * way to a. */
	assert_int_equal(ipc_send(b, "sync", 4, 0), 4);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 4);
	assert_int_equal(ipc_send(a, "ack", 3, 0), 3);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), 0), 3);
	tu_sleep_ms(300);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_send(b, "one", 3, 0), 3);
	assert_int_equal(ipc_send(b, "two", 3, 0), 3);
	struct pollfd p = {.fd = ipc_fd(a), .events = POLLIN};
	assert_true(p.fd >= 0);
	assert_int_equal(poll(&p, 1, 10000), 1);
	/* Let both reach a's socket, so that one receive reads both. */
	tu_sleep_ms(200);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "one", 3);
	p.revents = 0;
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), IPC_NONBLOCK), 3);
	assert_memory_equal(buf, "two", 3);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_close(b), 0);
	p.revents = 0;
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_close(a), 0);
}

/* window=4: four calls without a reply, then the sender waits; one
 * receive lets exactly one more go. */
static void
t_window(void **state)
{
	char uri[560], name[128], buf[64];
	ipc_channel *a, *b;

	(void)state;
	need_bus();
	fresh_uri(uri, sizeof(uri), name, sizeof(name));
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	strcat(uri, "&window=4");
	assert_int_equal(ipc_open(&b, uri, 0), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ipc_send(b, "w", 1, IPC_NONBLOCK), 1);
	}
	assert_int_equal(ipc_set_timeout(b, 300), 0);
	assert_int_equal(ipc_send(b, "w", 1, 0), -ETIMEDOUT);
	assert_int_equal(ipc_set_timeout(a, 10000), 0);
	assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 1);
	assert_int_equal(ipc_set_timeout(b, 10000), 0);
	assert_int_equal(ipc_send(b, "w", 1, 0), 1); /* after the ack */
	assert_int_equal(ipc_send(b, "w", 1, IPC_NONBLOCK), -EAGAIN);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ipc_recv(a, buf, sizeof(buf), 0), 1);
	}
	assert_int_equal(ipc_close(b), 0);
	assert_int_equal(ipc_close(a), 0);
}

/* ------------------------------------------------ nothing lost at close */

static void
burst_fill(unsigned char *b, size_t len, unsigned round, unsigned i)
{
	uint32_t x = round * 2654435761u + i * 40503u + 1u;

	for (size_t k = 0; k < len; k++) {
		x = x * 1103515245u + 12345u;
		b[k] = (unsigned char)(x >> 16);
	}
	memcpy(b, &i, sizeof(i));
}

#define STOP_ROUNDS 3
#define STOP_MSGS   24 /* 24 x 4 KiB: fits the socket, under window */
#define STOP_LEN    4096u

struct stopkid {
	char uri[512];
	int go[2];   /* parent -> child: the daemon is stopped */
	int said[2]; /* child -> parent: "o" opened, "c" closing */
};

static int
stop_main(void *arg)
{
	struct stopkid *k = arg;
	unsigned char b[STOP_LEN];
	ipc_channel *ch;
	char c;

	if (ipc_open(&ch, k->uri, 0) < 0 || ipc_send(ch, "hello", 5, 0) != 5) {
		return 1;
	}
	(void)!write(k->said[1], "o", 1);
	if (read(k->go[0], &c, 1) != 1) {
		return 2;
	}
	for (unsigned i = 0; i < STOP_MSGS; i++) {
		burst_fill(b, STOP_LEN, 7, i);
		if (ipc_send(ch, b, STOP_LEN, IPC_NONBLOCK) != STOP_LEN) {
			return 3;
		}
	}
	(void)!write(k->said[1], "c", 1);
	return ipc_close(ch) == 0 ? 0 : 4;
}

/* The same loss made certain: the bus daemon is stopped (SIGSTOP) while
 * the opener writes messages into its socket and closes, and while the
 * creator sends it one message.  Resumed, the daemon routes that message
 * to the opener first, its write fails with EPIPE, and without the fix it
 * dropped the opener's connection with the messages unread. */
static void
t_close_daemon_stopped(void **state)
{
	unsigned char got[STOP_LEN], want[STOP_LEN];
	unsigned lost = 0;

	(void)state;
	need_bus();
	for (unsigned round = 0; round < STOP_ROUNDS; round++) {
		char name[128], c;
		struct stopkid k;
		ipc_channel *ch;
		unsigned n = 0;
		ssize_t r;
		int st;

		fresh_uri(k.uri, sizeof(k.uri), name, sizeof(name));
		assert_int_equal(pipe(k.go), 0);
		assert_int_equal(pipe(k.said), 0);
		assert_int_equal(ipc_open(&ch, k.uri, IPC_CREATE), 0);
		assert_int_equal(
		        ipc_set_timeout(ch, (int)(20000 * tu_time_factor())),
		        0);
		pid_t pid = tu_fork(stop_main, &k, 120);
		assert_true(pid > 0);
		close(k.go[0]);
		close(k.said[1]);
		assert_int_equal(read(k.said[0], &c, 1), 1);
		assert_int_equal(ipc_recv(ch, got, sizeof(got), 0), 5);
		assert_int_equal(kill(bus.pid, SIGSTOP), 0);
		assert_int_equal(write(k.go[1], "g", 1), 1);
		assert_int_equal(read(k.said[0], &c, 1), 1);
		assert_int_equal(ipc_send(ch, "x", 1, IPC_NONBLOCK), 1);
		/* Without the fix the opener is gone at once; with it, its
		 * close waits for the daemon: give it a moment either way
		 * (the outcome with the fix does not depend on it). */
		pid_t w = 0;
		for (int i = 0; i < 100 && w == 0; i++) {
			tu_sleep_ms(10);
			w = waitpid(pid, &st, WNOHANG);
		}
		assert_int_equal(kill(bus.pid, SIGCONT), 0);
		while ((r = ipc_recv(ch, got, sizeof(got), 0)) >= 0) {
			burst_fill(want, STOP_LEN, 7, n);
			assert_true(n < STOP_MSGS);
			assert_int_equal(r, STOP_LEN);
			assert_memory_equal(got, want, STOP_LEN);
			n++;
		}
		if (w == 0) {
			assert_int_equal(waitpid(pid, &st, 0), pid);
		}
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		printf("round %u: %u of %u messages, then %s (opener %s "
		       "before the daemon resumed)\n",
		       round, n, STOP_MSGS, tu_errname((int)r),
		       w == pid ? "exited" : "had not exited");
		assert_int_equal(r, -EPIPE);
		lost += STOP_MSGS - n;
		close(k.go[1]);
		close(k.said[0]);
		assert_int_equal(ipc_close(ch), 0);
	}
	assert_int_equal(lost, 0);
}

/* ------------------------------------------------------------- errors -- */

static void
t_errors(void **state)
{
	char uri[700], name[128], dir_uri[700];
	ipc_channel *a, *b;

	(void)state;
	need_bus();
	static const char *const bad[] = {
	        "dbus://nosuchbus/org.x.Y",
	        "dbus://session/",
	        "dbus://session/noelements",
	        "dbus://session/org..x",
	        "dbus://session/org.1x",
	        "dbus://session/:1.5",
	        "dbus://session/org.x.Y/more",
	        "dbus:///org.x.Y",
	        "dbus://session/org.x.Y?window=0",
	        "dbus://session/org.x.Y?maxmsg=65M",
	        "dbus://session/org.x.Y?bogus=1",
	        "dbus://session/org.x.Y?address=",
	        "dbus://session/org.x.Y?allow_uid=x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = ipc_open(&a, bad[i], IPC_CREATE);
		if (r != -EINVAL) {
			fail_msg("%s: %d (%s), want -EINVAL", bad[i], r,
			         ipc_last_error());
		}
		assert_true(strstr(ipc_last_error(), "dbus") != NULL);
	}
	fresh_uri(uri, sizeof(uri), name, sizeof(name));
	assert_int_equal(ipc_open(&a, uri, 0), -ENOENT);
	assert_non_null(strstr(ipc_last_error(), name));
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&b, uri, IPC_CREATE), -EADDRINUSE);
	assert_int_equal(ipc_close(a), 0);
	/* Released at close: owned again at once. */
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_close(a), 0);
	/* dbus://session/NAME?address= is the same bus. */
	snprintf(uri, sizeof(uri), "dbus://session/%s?address=%s", name,
	         bus.address);
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_caps(a), IPC_CAP_RELIABLE | IPC_CAP_ORDERED |
	                                      IPC_CAP_PEERCLOSE);
	assert_int_equal(ipc_max_msg(a), 4u << 20);
	assert_string_equal(ipc_scheme(a), "dbus");
	assert_int_equal(ipc_close(a), 0);
	/* No bus there. */
	snprintf(dir_uri, sizeof(dir_uri),
	         "dbus:///org.x.Y?address=unix:path=%s/nobus", busdir);
	int r = ipc_open(&a, dir_uri, 0);
	assert_true(r == -ENOENT || r == -ECONNREFUSED);
}

/* ------------------------------------------------------------- setup -- */

static int
setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(busdir, sizeof(busdir), "%s/ipcdbus-test-XXXXXX",
	         tmp != NULL && *tmp == '/' ? tmp : "/tmp");
	if (mkdtemp(busdir) == NULL) {
		snprintf(skip_why, sizeof(skip_why), "mkdtemp: %s",
		         strerror(errno));
		return 0;
	}
	char sock[200];
	snprintf(sock, sizeof(sock), "%s/bus", busdir);
	if (dbusd_start(&bus, sock, skip_why, sizeof(skip_why)) < 0) {
		bus.pid = 0;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	dbusd_stop(&bus);
	rmdir(busdir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_dbus_send_hi),
	        cmocka_unit_test(t_all_bytes),
	        cmocka_unit_test(t_third_party_and_bad_calls),
	        cmocka_unit_test(t_sdbus_peer),
	        cmocka_unit_test(t_kill_opener),
	        cmocka_unit_test(t_kill_creator),
	        cmocka_unit_test(t_fd_level),
	        cmocka_unit_test(t_window),
	        cmocka_unit_test(t_errors),
	        /* Last: a failure in it may leave the daemon stopped. */
	        cmocka_unit_test(t_close_daemon_stopped),
	};

	signal(SIGPIPE, SIG_DFL); /* a raised SIGPIPE would kill the test */
	return cmocka_run_group_tests(tests, setup, teardown);
}
