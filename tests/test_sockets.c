/*
 * Socket driver tests (unix, unix+seqpacket, unix+dgram, tcp, udp): the
 * socket file's life (stale files replaced, live ones kept and not
 * disturbed, permission bits, removal once the peer is in), one peer per
 * created channel, ipc_fd stability, SIGKILL of the peer while blocked in
 * recv, empty records against the end of a seqpacket stream, large
 * messages passed as memfds and forged ones, datagram peers that cannot
 * be answered or are not the peer, TCP and UDP addressing, and that
 * closing both ends leaves no descriptor and no file.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

/* A fresh directory and a socket path in it, torn down by fx_end. */
struct fx {
	char dir[96];
	char path[160];
	char uri[256];
	int fds;
};

static void
fx_start(struct fx *f, const char *scheme)
{
	assert_int_equal(tu_tmpdir(f->dir, sizeof f->dir, "ipcsock"), 0);
	snprintf(f->path, sizeof f->path, "%s/s", f->dir);
	snprintf(f->uri, sizeof f->uri, "%s://%s", scheme, f->path);
	f->fds = tu_fd_count();
}

/* Nothing left: no descriptor, no file. */
static void
fx_end(struct fx *f)
{
	char desc[2048];

	if (tu_fd_count() != f->fds) {
		tu_fd_describe(desc, sizeof desc);
		fail_msg("%d descriptors before, %d after: %s", f->fds,
		         tu_fd_count(), desc);
	}
	assert_int_equal(tu_rmtree(f->dir), 0);
}

static void
expect_msg(ipc_channel *ch, const char *want)
{
	char buf[256];
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

/* Creator and opener on f->uri, one message each way. */
static void
connect_pair(const char *uri, ipc_channel **c, ipc_channel **o)
{
	assert_int_equal(ipc_open(c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(o, uri, 0), 0);
	assert_int_equal(ipc_set_timeout(*c, 5000), 0);
	assert_int_equal(ipc_set_timeout(*o, 5000), 0);
	send_str(*o, "hello");
	expect_msg(*c, "hello");
	send_str(*c, "back");
	expect_msg(*o, "back");
}

static const char *const unix_schemes[] = {"unix", "unix+seqpacket",
                                           "unix+dgram"};
static const int unix_types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};

/* A socket file nobody serves: bind, close. */
static void
make_stale(const char *path, int type)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type, 0);

	assert_true(fd >= 0);
	strcpy(sun.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	close(fd);
}

/* ------------------------------------------------------- socket files */

static void
t_stale_file_replaced(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct fx f;
		ipc_channel *c, *o;
		fx_start(&f, unix_schemes[i]);
		make_stale(f.path, unix_types[i]);
		/* an opener finds nobody there */
		assert_int_equal(ipc_open(&o, f.uri, 0), -ECONNREFUSED);
		connect_pair(f.uri, &c, &o);
		ipc_close(o);
		ipc_close(c);
		fx_end(&f);
	}
}

/* A second creator on a live address fails and does not disturb the
 * first, which still takes its real peer. */
static void
t_live_kept(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct fx f;
		ipc_channel *c, *c2 = NULL, *o;
		fx_start(&f, unix_schemes[i]);
		assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), 0);
		assert_int_equal(ipc_open(&c2, f.uri, IPC_CREATE), -EEXIST);
		assert_null(c2);
		assert_int_equal(ipc_open(&o, f.uri, 0), 0);
		assert_int_equal(ipc_set_timeout(c, 5000), 0);
		send_str(o, "real");
		expect_msg(c, "real");
		send_str(c, "ok");
		expect_msg(o, "ok");
		ipc_close(o);
		ipc_close(c);
		fx_end(&f);
	}
}

static void
t_not_a_socket(void **state)
{
	struct fx f;
	ipc_channel *c = NULL;
	int fd;

	(void)state;
	fx_start(&f, "unix");
	fd = open(f.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), -EEXIST);
	assert_non_null(strstr(ipc_last_error(), "not a socket"));
	assert_int_equal(unlink(f.path), 0); /* left alone: remove it */
	fx_end(&f);
}

static unsigned
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	return st.st_mode & 07777;
}

static void
t_modes(void **state)
{
	mode_t old = umask(022);

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct fx f;
		ipc_channel *c, *c2 = NULL;
		char u[300];
		fx_start(&f, unix_schemes[i]);
		assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), 0);
		assert_int_equal(mode_of(f.path), 0600);
		ipc_close(c);
		/* wider than the umask allows: exact anyway */
		snprintf(u, sizeof u, "%s?mode=0666", f.uri);
		assert_int_equal(ipc_open(&c, u, IPC_CREATE), 0);
		assert_int_equal(mode_of(f.path), 0666);
		ipc_close(c);
		snprintf(u, sizeof u, "%s?mode=0640", f.uri);
		assert_int_equal(ipc_open(&c, u, IPC_CREATE), 0);
		assert_int_equal(mode_of(f.path), 0640);
		/* an opener makes no file: mode= is a mistake there */
		assert_int_equal(ipc_open(&c2, u, 0), -EINVAL);
		assert_non_null(strstr(ipc_last_error(), "mode="));
		ipc_close(c);
		snprintf(u, sizeof u, "%s:?mode=0600", unix_schemes[i]);
		assert_int_equal(ipc_pair(&c, &c2, u), -EINVAL);
		/* abstract names have no file */
		snprintf(u, sizeof u, "%s://@ipcsock-%d?mode=0600",
		         unix_schemes[i], (int)getpid());
		assert_int_equal(ipc_open(&c2, u, IPC_CREATE), -EINVAL);
		assert_non_null(strstr(ipc_last_error(), "abstract"));
		fx_end(&f);
	}
	umask(old);
}

/* The creator takes one peer: the file goes, and later openers are
 * refused. */
static void
t_one_peer(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct fx f;
		ipc_channel *c, *o, *o2 = NULL;
		struct stat st;
		int r;
		fx_start(&f, unix_schemes[i]);
		connect_pair(f.uri, &c, &o);
		assert_int_equal(lstat(f.path, &st), -1);
		r = ipc_open(&o2, f.uri, 0);
		assert_true(r == -ENOENT || r == -ECONNREFUSED);
		ipc_close(o);
		ipc_close(c);
		fx_end(&f);
	}
}

/* Abstract names: a second creator is -EEXIST; after the peer came, a
 * second opener is refused. */
static void
t_abstract(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char uri[128];
		ipc_channel *c, *c2 = NULL, *o, *o2 = NULL;
		int fds = tu_fd_count(), r;
		snprintf(uri, sizeof uri, "%s://@ipcsock-%d-%d",
		         unix_schemes[i], (int)getpid(), i);
		assert_int_equal(ipc_open(&o, uri, 0), -ECONNREFUSED);
		assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
		assert_int_equal(ipc_open(&c2, uri, IPC_CREATE), -EEXIST);
		assert_int_equal(ipc_open(&o, uri, 0), 0);
		assert_int_equal(ipc_set_timeout(c, 5000), 0);
		send_str(o, "x");
		expect_msg(c, "x");
		r = ipc_open(&o2, uri, 0);
		if (r == 0) {
			/* unix+dgram: the name stays bound, the send fails */
			assert_int_equal(ipc_send(o2, "y", 1, 0), -EPIPE);
			ipc_close(o2);
		} else {
			assert_int_equal(r, -ECONNREFUSED);
		}
		ipc_close(o);
		ipc_close(c);
		assert_int_equal(tu_fd_count(), fds);
	}
}

/* ipc_fd() of a creator is the same descriptor before and after the peer
 * arrives, and readable when a message is there. */
static void
t_fd_stable(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct fx f;
		ipc_channel *c, *o;
		char buf[16];
		fx_start(&f, unix_schemes[i]);
		assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), 0);
		int fd = ipc_fd(c);
		assert_true(fd >= 0);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 0), 0);
		assert_int_equal(ipc_open(&o, f.uri, 0), 0);
		send_str(o, "m");
		assert_int_equal(poll(&p, 1, 5000), 1);
		/* the peer is taken on the way: the same fd stays good */
		assert_int_equal(ipc_recv(c, buf, sizeof buf, IPC_NONBLOCK),
		                 1);
		assert_int_equal(ipc_fd(c), fd);
		assert_int_equal(ipc_recv(c, buf, sizeof buf, IPC_NONBLOCK),
		                 -EAGAIN);
		assert_int_equal(poll(&p, 1, 0), 0);
		send_str(o, "n");
		assert_int_equal(poll(&p, 1, 5000), 1);
		assert_int_equal(ipc_recv(c, buf, sizeof buf, IPC_NONBLOCK),
		                 1);
		ipc_close(o);
		ipc_close(c);
		fx_end(&f);
	}
}

/* --------------------------------------------------- kill -9 of a peer */

struct killarg {
	const char *uri;
};

static int
peer_then_pause(void *arg)
{
	struct killarg *k = arg;
	ipc_channel *o;

	for (int i = 0; i < 500; i++) {
		int r = ipc_open(&o, k->uri, 0);
		if (r == 0) {
			TU_OK(ipc_send(o, "up", 2, 0));
			for (;;) {
				pause();
			}
		}
		TU_CHECK(r == -ENOENT || r == -ECONNREFUSED);
		tu_sleep_ms(10);
	}
	TU_CHECK_MSG(0, "could not open %s", k->uri);
	return 1;
}

static void
kill_case(const char *uri)
{
	struct killarg k = {.uri = uri};
	ipc_channel *c;
	long long rc;
	char buf[8];
	int status;

	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_set_timeout(c, 10000), 0);
	pid_t pid = tu_fork(peer_then_pause, &k, 30);
	assert_true(pid > 0);
	assert_int_equal(ipc_recv(c, buf, sizeof buf, 0), 2);
	assert_int_equal(ipc_set_timeout(c, -1), 0);
	double dt = tu_time_to_epipe(c, pid, 200, 'r', &rc);
	assert_int_equal(tu_wait(pid, 5000, &status), 0);
	printf("%s: recv returned %s %.3f s after SIGKILL\n", uri,
	       tu_errname((int)rc), dt);
	assert_int_equal(rc, -EPIPE);
	assert_true(dt < TU_DEATH_S);
	ipc_close(c);
}

static void
t_kill9(void **state)
{
	const char *schemes[] = {"unix", "unix+seqpacket", "unix+dgram"};
	char uri[256];
	int port;

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct fx f;
		fx_start(&f, schemes[i]);
		kill_case(f.uri);
		fx_end(&f);
		snprintf(uri, sizeof uri, "%s://@ipcsock-kill-%d-%d",
		         schemes[i], (int)getpid(), i);
		kill_case(uri);
	}
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
	kill_case(uri);
	if (tu_free_port("::1", &port) == 0) {
		snprintf(uri, sizeof uri, "tcp://[::1]:%d", port);
		kill_case(uri);
	}
}

/* ------------------------------------------- creator used by 2 threads */

static void *
thread_recv(void *arg)
{
	ipc_channel *c = arg;
	char buf[8];

	return (void *)(intptr_t)ipc_recv(c, buf, sizeof buf, 0);
}

static int
peer_echo(void *arg)
{
	const char *uri = arg;
	ipc_channel *o;
	char buf[8];

	for (int i = 0; i < 500; i++) {
		int r = ipc_open(&o, uri, 0);
		if (r == 0) {
			TU_OK(ipc_set_timeout(o, 5000));
			TU_OK(ipc_send(o, "y", 1, 0));
			TU_CHECK_EQ(ipc_recv(o, buf, sizeof buf, 0), 1);
			TU_CHECK(buf[0] == 'x');
			ipc_close(o);
			return 0;
		}
		tu_sleep_ms(10);
	}
	TU_CHECK_MSG(0, "could not open %s", uri);
	return 1;
}

/* One thread blocks in recv and another in send on a creator before any
 * peer: both go through once the peer comes, whichever takes it. */
static void
t_creator_two_threads(void **state)
{
	char uri[256];
	int port;

	(void)state;
	for (int i = 0; i < 5; i++) {
		ipc_channel *c;
		pthread_t th;
		void *res;
		struct fx f;
		if (i < 3) {
			fx_start(&f, unix_schemes[i]);
			snprintf(uri, sizeof uri, "%s", f.uri);
		} else {
			assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
			snprintf(uri, sizeof uri, "%s://127.0.0.1:%d",
			         i == 3 ? "tcp" : "udp", port);
		}
		assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
		assert_int_equal(ipc_set_timeout(c, 10000), 0);
		assert_int_equal(pthread_create(&th, NULL, thread_recv, c), 0);
		pid_t pid = tu_fork(peer_echo, uri, 30);
		assert_true(pid > 0);
		assert_int_equal(ipc_send(c, "x", 1, 0), 1);
		assert_int_equal(pthread_join(th, &res), 0);
		assert_int_equal((intptr_t)res, 1);
		assert_int_equal(tu_wait_ok(pid, 10000), 0);
		ipc_close(c);
		if (i < 3) {
			fx_end(&f);
		}
	}
}

/* ------------------------------------------------------------ records */

/* Empty records are messages; the end of the stream is -EPIPE. */
static void
t_seqpacket_empty(void **state)
{
	ipc_channel *a, *b;
	char buf[4];

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "unix+seqpacket:"), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ipc_send(a, "", 0, 0), 0);
	}
	ipc_close(a);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ipc_recv(b, buf, sizeof buf, 0), 0);
	}
	assert_int_equal(ipc_recv(b, buf, sizeof buf, 0), -EPIPE);
	assert_int_equal(ipc_recv(b, buf, sizeof buf, 0), -EPIPE);
	ipc_close(b);
}

static void
fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (unsigned char)(i * 131 + seed);
	}
}

struct bigarg {
	ipc_channel *ch;
	size_t len;
};

static int
send_big(void *arg)
{
	struct bigarg *b = arg;
	unsigned char *p = malloc(b->len);

	TU_CHECK(p != NULL);
	fill(p, b->len, 7);
	TU_CHECK_EQ(ipc_send(b->ch, p, b->len, 0), (long long)b->len);
	TU_CHECK_EQ(ipc_send(b->ch, "end", 3, 0), 3);
	free(p);
	return 0;
}

/* Messages far above one datagram go as memfds: the receiver sees them
 * whole, a small buffer keeps them queued, and no descriptor stays. */
static void
t_large(void **state)
{
	const char *uris[] = {"unix+seqpacket:", "unix+dgram:"};
	size_t len = (size_t)4 << 20;
	unsigned char *got = malloc(len), *want = malloc(len);

	(void)state;
	assert_non_null(got);
	assert_non_null(want);
	fill(want, len, 7);
	for (int i = 0; i < 2; i++) {
		ipc_channel *a, *b;
		int fds = tu_fd_count();
		assert_int_equal(ipc_pair(&a, &b, uris[i]), 0);
		struct bigarg arg = {.ch = a, .len = len};
		pid_t pid = tu_fork(send_big, &arg, 30);
		assert_true(pid > 0);
		ipc_close(a);
		char small[64];
		assert_int_equal(ipc_set_timeout(b, 10000), 0);
		struct pollfd p = {.fd = ipc_fd(b), .events = POLLIN};
		assert_int_equal(poll(&p, 1, 10000), 1);
		assert_int_equal(ipc_recv(b, small, sizeof small, 0),
		                 -EMSGSIZE);
		assert_int_equal(ipc_recv(b, got, len - 1, 0), -EMSGSIZE);
		assert_int_equal(ipc_recv(b, got, len, 0), (ssize_t)len);
		assert_memory_equal(got, want, len);
		expect_msg(b, "end");
		assert_int_equal(tu_wait_ok(pid, 10000), 0);
		assert_int_equal(ipc_recv(b, small, sizeof small, 0), -EPIPE);
		ipc_close(b);
		assert_int_equal(tu_fd_count(), fds);
	}
	free(got);
	free(want);
}

/* A raw SOCK_SEQPACKET client sends what a hostile peer might: carriers
 * whose file is too short, or announce more than maxmsg. */
static void
forge(int fd, uint64_t len, size_t filelen)
{
	unsigned char hdr[16] = {'l', 'i', 'b', 'i', 'p', 'c', 'M', '1'};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = hdr, .iov_len = sizeof hdr};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = cbuf,
	                    .msg_controllen = sizeof cbuf};
	int mfd = memfd_create("forged", MFD_CLOEXEC);

	assert_true(mfd >= 0);
	assert_int_equal(ftruncate(mfd, (off_t)filelen), 0);
	for (int i = 0; i < 8; i++) {
		hdr[8 + i] = (unsigned char)(len >> (56 - 8 * i));
	}
	memset(cbuf, 0, sizeof cbuf);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &mfd, sizeof mfd);
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)sizeof hdr);
	close(mfd);
}

static int
raw_connect(const char *path, int type)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sun.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	return fd;
}

static void
t_forged_carriers(void **state)
{
	static const size_t caps[] = {64, 1 << 20};

	(void)state;
	for (int k = 0; k < 2; k++) {
		/* k = 0: a buffer smaller than maxmsg (peek first);
		 * k = 1: one at least maxmsg (read at once) */
		for (int t = 0; t < 2; t++) {
			struct fx f;
			ipc_channel *c;
			char u[300];
			static char buf[1 << 20];
			fx_start(&f, t ? "unix+dgram" : "unix+seqpacket");
			snprintf(u, sizeof u, "%s?maxmsg=%zu", f.uri, caps[1]);
			assert_int_equal(ipc_open(&c, u, IPC_CREATE), 0);
			int fd = raw_connect(f.path,
			                     t ? SOCK_DGRAM : SOCK_SEQPACKET);
			/* 40 bytes announced, 10 in the file */
			forge(fd, 40, 10);
			assert_int_equal(
			        ipc_recv(c, buf, caps[k], IPC_NONBLOCK),
			        -EPROTO);
			assert_non_null(strstr(ipc_last_error(), "40"));
			/* the channel is failed from now on */
			assert_int_equal(
			        ipc_recv(c, buf, caps[k], IPC_NONBLOCK),
			        -EPROTO);
			close(fd);
			ipc_close(c);
			/* more than maxmsg announced */
			assert_int_equal(ipc_open(&c, u, IPC_CREATE), 0);
			fd = raw_connect(f.path,
			                 t ? SOCK_DGRAM : SOCK_SEQPACKET);
			forge(fd, (1u << 20) + 1, 0);
			assert_int_equal(
			        ipc_recv(c, buf, caps[k], IPC_NONBLOCK),
			        -EPROTO);
			close(fd);
			ipc_close(c);
			fx_end(&f);
		}
	}
}

/* ---------------------------------------------------- datagram peers */

/* An unbound sender's datagram is delivered, but nobody can answer it:
 * the creator's send still waits for a peer. */
static void
t_dgram_unnamed_sender(void **state)
{
	struct fx f;
	ipc_channel *c;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	(void)state;
	fx_start(&f, "unix+dgram");
	assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), 0);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	strcpy(sun.sun_path, f.path);
	assert_int_equal(
	        sendto(fd, "abc", 3, 0, (struct sockaddr *)&sun, sizeof sun),
	        3);
	assert_int_equal(ipc_send(c, "r", 1, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_set_timeout(c, 300), 0);
	assert_int_equal(ipc_send(c, "r", 1, 0), -ETIMEDOUT);
	expect_msg(c, "abc");
	close(fd);
	ipc_close(c);
	fx_end(&f);
}

/* Datagrams queued from others before the peer was known are dropped;
 * after it, others cannot send at all. */
static void
t_dgram_foreign(void **state)
{
	struct fx f;
	ipc_channel *c, *o;
	char buf[8];
	int fd;

	(void)state;
	fx_start(&f, "unix+dgram");
	assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&o, f.uri, 0), 0);
	send_str(o, "peer");
	fd = raw_connect(f.path, SOCK_DGRAM);
	assert_int_equal(send(fd, "other", 5, 0), 5);
	expect_msg(c, "peer");
	assert_int_equal(ipc_recv(c, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(send(fd, "again", 5, MSG_NOSIGNAL), -1);
	send_str(c, "hi");
	expect_msg(o, "hi");
	close(fd);
	ipc_close(o);
	ipc_close(c);
	fx_end(&f);
}

/* The opener of unix+dgram sees the creator go even before its first
 * message (when its lifeline could not be handed over yet). */
static void
t_dgram_opener_sees_creator_go(void **state)
{
	struct fx f;
	ipc_channel *c, *o;
	char buf[8];

	(void)state;
	fx_start(&f, "unix+dgram");
	assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&o, f.uri, 0), 0);
	assert_int_equal(ipc_recv(o, buf, sizeof buf, IPC_NONBLOCK), -EAGAIN);
	ipc_close(c);
	assert_int_equal(ipc_set_timeout(o, 3000), 0);
	assert_int_equal(ipc_recv(o, buf, sizeof buf, 0), -EPIPE);
	ipc_close(o);
	fx_end(&f);
}

/* ---------------------------------------------------------------- tcp */

static void
t_tcp_refused_and_names(void **state)
{
	ipc_channel *c, *o = NULL;
	char uri[128];
	int port, fds = tu_fd_count();

	(void)state;
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
	assert_int_equal(ipc_open(&o, uri, 0), -ECONNREFUSED);
	assert_null(o);
	/* a name, served on IPv4: whatever localhost resolves to first,
	 * the connection is made */
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	snprintf(uri, sizeof uri, "tcp://localhost:%d", port);
	assert_int_equal(ipc_open(&o, uri, 0), 0);
	assert_int_equal(ipc_set_timeout(c, 5000), 0);
	assert_int_equal(ipc_set_timeout(o, 5000), 0);
	send_str(o, "by name");
	expect_msg(c, "by name");
	assert_int_equal(ipc_caps(c),
	                 IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_LISTEN |
	                         IPC_CAP_PEERCLOSE | IPC_CAP_CROSSHOST |
	                         IPC_CAP_PUBSUB);
	ipc_close(o);
	ipc_close(c);
	/* the port is free again at once */
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	ipc_close(c);
	assert_int_equal(ipc_open(&o, "tcp://no-such-host.invalid:1", 0),
	                 -ENOENT);
	assert_int_equal(tu_fd_count(), fds);
}

/* A listener on the IPv6 wildcard takes IPv4 and IPv6 clients, and can
 * listen again on the same port right after closing. */
static void
t_tcp_listener(void **state)
{
	ipc_listener *l;
	ipc_channel *a, *b, *x, *y, *z;
	char uri[128], u4[128], u6[128];
	int port, fds = tu_fd_count();

	(void)state;
	if (tu_free_port("::1", &port) < 0) {
		printf("no IPv6 loopback: skipped\n");
		skip();
	}
	snprintf(uri, sizeof uri, "tcp://[::]:%d", port);
	snprintf(u4, sizeof u4, "tcp://127.0.0.1:%d", port);
	snprintf(u6, sizeof u6, "tcp://[::1]:%d", port);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ipc_listen(&l, uri, 0), 0);
		assert_int_equal(ipc_open(&a, u4, 0), 0);
		assert_int_equal(ipc_open(&b, u6, 0), 0);
		assert_int_equal(ipc_accept(l, &x, 0), 0);
		assert_int_equal(ipc_accept(l, &y, 0), 0);
		assert_int_equal(ipc_accept(l, &z, IPC_NONBLOCK), -EAGAIN);
		send_str(a, "four");
		send_str(b, "six");
		char buf[8];
		ssize_t n1 = ipc_recv(x, buf, sizeof buf, 0);
		ssize_t n2 = ipc_recv(y, buf, sizeof buf, 0);
		assert_int_equal(n1 + n2, 7);
		ipc_close(a);
		ipc_close(b);
		ipc_close(x);
		ipc_close(y);
		assert_int_equal(ipc_listener_close(l), 0);
	}
	assert_int_equal(tu_fd_count(), fds);
}

/* ipc_open does not wait for a connection to a host that does not
 * answer. */
static void
t_tcp_open_does_not_wait(void **state)
{
	/* A loopback listener whose backlog is full drops new SYNs, so a
	 * connect to it stays in progress: ipc_open must return at once
	 * all the same (no traffic leaves the machine). */
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof sa;
	int fill[8], nfill = 0;
	ipc_channel *o = NULL;
	char uri[64];

	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(l, 0), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	for (; nfill < 8; nfill++) {
		fill[nfill] =
		        socket(AF_INET,
		               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		assert_true(fill[nfill] >= 0);
		(void)connect(fill[nfill], (struct sockaddr *)&sa, sizeof sa);
	}
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%u",
	         (unsigned)ntohs(sa.sin_port));
	double t0 = tu_now();
	int r = ipc_open(&o, uri, 0);
	assert_true(tu_now() - t0 < 1.0 * tu_time_factor());
	if (r == 0) {
		ssize_t n = ipc_send(o, "x", 1, IPC_NONBLOCK);
		assert_true(n == -EAGAIN || n == 1);
		ipc_close(o);
	} else {
		printf("open of a full listener: %s\n", ipc_last_error());
		assert_true(r == -ECONNREFUSED || r == -EAGAIN);
	}
	for (int i = 0; i < nfill; i++) {
		close(fill[i]);
	}
	close(l);
}

/* ---------------------------------------------------------------- udp */

static void
udp_case(const char *host, size_t want_max)
{
	ipc_channel *c, *o = NULL;
	char uri[128];
	int port, fds = tu_fd_count();
	unsigned char *big = malloc(want_max + 1), *got = malloc(want_max);

	assert_int_equal(tu_free_port(host, &port), 0);
	snprintf(uri, sizeof uri,
	         strchr(host, ':') ? "udp://[%s]:%d" : "udp://%s:%d", host,
	         port);
	assert_int_equal(ipc_open(&o, uri, 0), -ECONNREFUSED);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_caps(c), IPC_CAP_CROSSHOST | IPC_CAP_PUBSUB);
	assert_int_equal(ipc_max_msg(c), want_max);
	assert_int_equal(ipc_send(c, "x", 1, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_open(&o, uri, 0), 0);
	assert_int_equal(ipc_max_msg(o), want_max);
	assert_int_equal(ipc_set_timeout(c, 5000), 0);
	assert_int_equal(ipc_set_timeout(o, 5000), 0);
	fill(big, want_max, 3);
	assert_int_equal(ipc_send(o, big, want_max + 1, 0), -EMSGSIZE);
	assert_int_equal(ipc_send(o, big, want_max, 0), (ssize_t)want_max);
	assert_int_equal(ipc_recv(c, got, 100, 0), -EMSGSIZE);
	assert_int_equal(ipc_recv(c, got, want_max, 0), (ssize_t)want_max);
	assert_memory_equal(got, big, want_max);
	assert_int_equal(ipc_send(c, "", 0, 0), 0);
	assert_int_equal(ipc_recv(o, got, 10, 0), 0);
	ipc_close(o);
	ipc_close(c);
	assert_int_equal(tu_fd_count(), fds);
	free(big);
	free(got);
}

static void
t_udp(void **state)
{
	int port;

	(void)state;
	udp_case("127.0.0.1", 65507);
	if (tu_free_port("::1", &port) == 0) {
		udp_case("::1", 65527);
	} else {
		printf("no IPv6 loopback: udp6 not checked\n");
	}
}

/* ------------------------------------------------------ no leftovers */

/* Every scheme, both roles and a pair: both ends closed leave no
 * descriptor and no file. */
static void
t_no_leftovers(void **state)
{
	const char *pairs[] = {"unix:", "unix+seqpacket:", "unix+dgram:"};
	char uri[128];
	int port;

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct fx f;
		ipc_channel *c, *o;
		fx_start(&f, unix_schemes[i]);
		for (int k = 0; k < 3; k++) {
			connect_pair(f.uri, &c, &o);
			/* close in both orders */
			if (k & 1) {
				ipc_close(c);
				ipc_close(o);
			} else {
				ipc_close(o);
				ipc_close(c);
			}
		}
		/* a creator that never got a peer */
		assert_int_equal(ipc_open(&c, f.uri, IPC_CREATE), 0);
		ipc_close(c);
		fx_end(&f);
		int fds = tu_fd_count();
		assert_int_equal(ipc_pair(&c, &o, pairs[i]), 0);
		send_str(c, "p");
		expect_msg(o, "p");
		ipc_close(c);
		ipc_close(o);
		assert_int_equal(tu_fd_count(), fds);
	}
	int fds = tu_fd_count();
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
	for (int k = 0; k < 2; k++) {
		ipc_channel *c, *o;
		connect_pair(uri, &c, &o);
		ipc_close(o);
		ipc_close(c);
	}
	assert_int_equal(tu_fd_count(), fds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(t_stale_file_replaced),
	        cmocka_unit_test(t_live_kept),
	        cmocka_unit_test(t_not_a_socket),
	        cmocka_unit_test(t_modes),
	        cmocka_unit_test(t_one_peer),
	        cmocka_unit_test(t_abstract),
	        cmocka_unit_test(t_fd_stable),
	        cmocka_unit_test(t_kill9),
	        cmocka_unit_test(t_creator_two_threads),
	        cmocka_unit_test(t_seqpacket_empty),
	        cmocka_unit_test(t_large),
	        cmocka_unit_test(t_forged_carriers),
	        cmocka_unit_test(t_dgram_unnamed_sender),
	        cmocka_unit_test(t_dgram_foreign),
	        cmocka_unit_test(t_dgram_opener_sees_creator_go),
	        cmocka_unit_test(t_tcp_refused_and_names),
	        cmocka_unit_test(t_tcp_listener),
	        cmocka_unit_test(t_tcp_open_does_not_wait),
	        cmocka_unit_test(t_udp),
	        cmocka_unit_test(t_no_leftovers),
	};

	signal(SIGPIPE, SIG_DFL); /* a raised SIGPIPE would kill the test */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
