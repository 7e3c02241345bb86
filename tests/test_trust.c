/*
 * The trust model (docs/security.md) with the peer really run as another
 * user: the test forks, and the child drops to an unused uid with
 * setresgid/setresuid (no passwd entry needed), so it needs root; without
 * it every case is skipped with the reason printed.
 *
 *  - An opener refuses a channel made by another uid (mode=0666) with
 *    -EACCES naming the uid, on every driver whose objects others can
 *    plant: mq, sysvmq, sysvshm, shm, unix and unix+seqpacket and
 *    unix+dgram in a world-writable sticky directory, fifo there too;
 *    allow_uid=UID and allow_uid=any accept it, and then ipc_peer_cred()
 *    names the creator (its pid where the driver knows it).
 *  - A creator with allow_uid= refuses a peer of another uid (-EACCES
 *    naming it) and accepts it once it is listed; ipc_peer_cred() names
 *    it.
 *  - ipc_peer_cred() on pairs, inproc, and -EOPNOTSUPP on tcp and pipe.
 *  - Malformed allow_uid= / allow_gid= are -EINVAL.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

#define CHILD_TIMEOUT_MS 3000

static uid_t other_uid; /* the peer's uid: no passwd entry, not ours */
static uid_t third_uid; /* another one, for allow_uid= that excludes it */
static char sticky_dir[128];
static int seq;

struct drv {
	const char *scheme;
	int path;         /* address is a path (else a name) */
	int opener_pid;   /* an opener learns the creator's pid */
	int creator_side; /* a creator can check its peer */
};

static const struct drv drivers[] = {
        {"mq", 0, 1, 1},         {"sysvmq", 0, 1, 1},
        {"sysvshm", 0, 1, 1},    {"shm", 0, 1, 1},
        {"unix", 1, 1, 1},       {"unix+seqpacket", 1, 1, 1},
        {"unix+dgram", 1, 0, 1}, {"fifo", 1, 0, 0},
};
#define NDRV (sizeof(drivers) / sizeof(drivers[0]))

static int
need_root(const char *test)
{
	if (geteuid() != 0) {
		printf("%s: skipped: needs root to run the peer as another "
		       "uid (setresuid)\n",
		       test);
		return 0;
	}
	return 1;
}

static void
become(uid_t uid)
{
	if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
	    setresuid(uid, uid, uid) != 0) {
		fprintf(stderr, "cannot become uid %u: %s\n", (unsigned)uid,
		        strerror(errno));
		_exit(3);
	}
}

static void
make_uri(char *buf, size_t n, const struct drv *d, const char *query)
{
	seq++;
	if (d->path) {
		snprintf(buf, n, "%s://%s/c%d%s%s", d->scheme, sticky_dir, seq,
		         *query ? "?" : "", query);
	} else {
		snprintf(buf, n, "%s://trust-%d-%d%s%s", d->scheme,
		         (int)getpid(), seq, *query ? "?" : "", query);
	}
}

/* The same channel with another query. */
static void
with_query(char *out, size_t n, const char *uri, const char *query)
{
	const char *q = strchr(uri, '?');
	int len = q ? (int)(q - uri) : (int)strlen(uri);

	snprintf(out, n, "%.*s%s%s", len, uri, *query ? "?" : "", query);
}

static void
read_byte(int fd)
{
	char b;

	while (read(fd, &b, 1) < 0 && errno == EINTR) {
	}
}

static void
write_byte(int fd, char b)
{
	while (write(fd, &b, 1) < 0 && errno == EINTR) {
	}
}

/* ------------------------------------------- the creator is another uid -- */

/* Child: become uid, create uri, say so, send "hi" (waits for a peer at
 * most CHILD_TIMEOUT_MS), wait for the parent's word, close. */
static void
child_create(const char *uri, uid_t uid, int ready_w, int done_r)
{
	ipc_channel *c;

	become(uid);
	int r = ipc_open(&c, uri, IPC_CREATE);
	write_byte(ready_w, r == 0 ? 'y' : 'n');
	if (r < 0) {
		fprintf(stderr, "child: create %s: %s\n", uri,
		        ipc_last_error());
		_exit(1);
	}
	ipc_set_timeout(c, CHILD_TIMEOUT_MS);
	(void)ipc_send(c, "hi", 2, 0);
	read_byte(done_r);
	ipc_close(c);
	_exit(0);
}

/* Open the channel another uid created.  query: what the opener adds;
 * want: 0 (accepted: receives "hi", ipc_peer_cred names the child) or
 * -EACCES (refused, naming the uid). */
static void
foreign_creator(const struct drv *d, const char *query, int want)
{
	char curi[512], ouri[512], b;
	int ready[2], done[2];

	make_uri(curi, sizeof curi, d, "mode=0666");
	with_query(ouri, sizeof ouri, curi, query);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(done[1]);
		child_create(curi, other_uid, ready[1], done[0]);
	}
	close(ready[1]);
	close(done[0]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(b, 'y');

	ipc_channel *o = NULL;
	int r = ipc_open(&o, ouri, 0);
	if (r != want) {
		printf("%s: ipc_open = %d (%s), want %d\n", ouri, r,
		       ipc_last_error(), want);
	}
	assert_int_equal(r, want);
	if (want == -EACCES) {
		char uidtxt[64], allow[64];
		snprintf(uidtxt, sizeof uidtxt, "uid %u", (unsigned)other_uid);
		snprintf(allow, sizeof allow, "allow_uid=%u",
		         (unsigned)other_uid);
		const char *e = ipc_last_error();
		if (strstr(e, uidtxt) == NULL || strstr(e, allow) == NULL ||
		    strncmp(e, ouri, strlen(ouri)) != 0) {
			printf("%s: message does not name the uid: %s\n", ouri,
			       e);
			fail();
		}
	} else {
		char buf[8];
		pid_t ppid = -1;
		uid_t puid = 0;
		gid_t pgid = 0;
		ipc_set_timeout(o, 5000);
		/* A datagram creator learns its peer from what it sends. */
		assert_int_equal(ipc_send(o, "yo", 2, 0), 2);
		assert_int_equal(ipc_recv(o, buf, sizeof buf, 0), 2);
		assert_memory_equal(buf, "hi", 2);
		r = ipc_peer_cred(o, &ppid, &puid, &pgid);
		if (r != 0) {
			printf("%s: ipc_peer_cred: %s\n", ouri,
			       ipc_last_error());
		}
		assert_int_equal(r, 0);
		assert_int_equal(puid, other_uid);
		assert_int_equal(pgid, other_uid);
		assert_int_equal(ppid, d->opener_pid ? pid : 0);
		/* any out pointer may be NULL */
		assert_int_equal(ipc_peer_cred(o, NULL, &puid, NULL), 0);
		ipc_close(o);
	}
	write_byte(done[1], 'x');
	close(done[1]);
	close(ready[0]);
	assert_int_equal(tu_wait_ok(pid, 10000), 0);
}

static void
test_opener_refuses_foreign_creator(void **state)
{
	(void)state;
	if (!need_root(__func__)) {
		skip();
	}
	for (size_t i = 0; i < NDRV; i++) {
		printf("%s: refused, then allow_uid=%u, then allow_uid=any\n",
		       drivers[i].scheme, (unsigned)other_uid);
		char q[64];
		foreign_creator(&drivers[i], "", -EACCES);
		snprintf(q, sizeof q, "allow_uid=%u", (unsigned)other_uid);
		foreign_creator(&drivers[i], q, 0);
		foreign_creator(&drivers[i], "allow_uid=any", 0);
		snprintf(q, sizeof q, "allow_gid=%u", (unsigned)other_uid);
		foreign_creator(&drivers[i], q, 0);
		snprintf(q, sizeof q, "allow_uid=%u", (unsigned)third_uid);
		foreign_creator(&drivers[i], q, -EACCES);
	}
}

/* ------------------------------------------ the peer is another uid -- */

/* Child: become uid, open uri, send "hi", wait for the parent, close. */
static void
child_open(const char *uri, uid_t uid, int done_r)
{
	ipc_channel *c;

	become(uid);
	int r = ipc_open(&c, uri, 0);
	if (r < 0) {
		fprintf(stderr, "child: open %s: %s\n", uri, ipc_last_error());
		_exit(1);
	}
	ipc_set_timeout(c, CHILD_TIMEOUT_MS);
	(void)ipc_send(c, "hi", 2, 0);
	read_byte(done_r);
	ipc_close(c);
	_exit(0);
}

static void
foreign_peer(const struct drv *d, uid_t allowed, int want)
{
	char curi[512], ouri[512], q[96], buf[8];
	int done[2];
	ipc_channel *c;

	snprintf(q, sizeof q, "mode=0666&allow_uid=%u", (unsigned)allowed);
	make_uri(curi, sizeof curi, d, q);
	with_query(ouri, sizeof ouri, curi, "");
	assert_int_equal(ipc_open(&c, curi, IPC_CREATE), 0);
	if (d->path) {
		/* The child must reach the socket file or FIFOs. */
		assert_int_equal(chmod(sticky_dir, 01777), 0);
	}
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(done[1]);
		child_open(ouri, other_uid, done[0]);
	}
	close(done[0]);
	ipc_set_timeout(c, 5000);
	ssize_t n = ipc_recv(c, buf, sizeof buf, 0);
	if (n != (want == 0 ? 2 : want)) {
		printf("%s: ipc_recv = %zd (%s), want %d\n", curi, n,
		       ipc_last_error(), want == 0 ? 2 : want);
	}
	if (want == 0) {
		pid_t ppid = -1;
		uid_t puid = 0;
		gid_t pgid = 0;
		assert_int_equal(n, 2);
		assert_int_equal(ipc_peer_cred(c, &ppid, &puid, &pgid), 0);
		assert_int_equal(ppid, pid);
		assert_int_equal(puid, other_uid);
		assert_int_equal(pgid, other_uid);
	} else {
		char uidtxt[64];
		assert_int_equal(n, want);
		snprintf(uidtxt, sizeof uidtxt, "the peer is uid %u",
		         (unsigned)other_uid);
		if (strstr(ipc_last_error(), uidtxt) == NULL) {
			printf("%s: message does not name the uid: %s\n", curi,
			       ipc_last_error());
			fail();
		}
	}
	write_byte(done[1], 'x');
	close(done[1]);
	assert_int_equal(tu_wait(pid, 10000, &(int){0}), 0);
	ipc_close(c);
}

static void
test_creator_refuses_foreign_peer(void **state)
{
	(void)state;
	if (!need_root(__func__)) {
		skip();
	}
	for (size_t i = 0; i < NDRV; i++) {
		if (!drivers[i].creator_side) {
			continue;
		}
		printf("%s: allow_uid=%u refuses uid %u, allow_uid=%u takes "
		       "it\n",
		       drivers[i].scheme, (unsigned)third_uid,
		       (unsigned)other_uid, (unsigned)other_uid);
		foreign_peer(&drivers[i], third_uid, -EACCES);
		foreign_peer(&drivers[i], other_uid, 0);
	}
}

/* ipc_listen with allow_uid=: a refused peer is dropped and its accept
 * says -EACCES naming it; a listed one is accepted and identified. */
static void
foreign_client(const struct drv *d, uid_t allowed, int want)
{
	char luri[512], ouri[512], q[96], buf[8];
	int done[2];
	ipc_listener *l;
	ipc_channel *c = NULL;

	snprintf(q, sizeof q, "mode=0666&allow_uid=%u", (unsigned)allowed);
	make_uri(luri, sizeof luri, d, q);
	with_query(ouri, sizeof ouri, luri, "");
	assert_int_equal(ipc_listen(&l, luri, 0), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(done[1]);
		child_open(ouri, other_uid, done[0]);
	}
	close(done[0]);
	int r = -EAGAIN;
	for (int i = 0; i < 500 && r == -EAGAIN; i++) {
		r = ipc_accept(l, &c, IPC_NONBLOCK);
		if (r == -EAGAIN) {
			usleep(10000);
		}
	}
	if (r != want) {
		printf("%s: ipc_accept = %d (%s), want %d\n", luri, r,
		       ipc_last_error(), want);
	}
	assert_int_equal(r, want);
	if (want == 0) {
		pid_t ppid = -1;
		uid_t puid = 0;
		ipc_set_timeout(c, 5000);
		assert_int_equal(ipc_recv(c, buf, sizeof buf, 0), 2);
		assert_int_equal(ipc_peer_cred(c, &ppid, &puid, NULL), 0);
		assert_int_equal(ppid, pid);
		assert_int_equal(puid, other_uid);
		ipc_close(c);
	} else {
		char uidtxt[64];
		snprintf(uidtxt, sizeof uidtxt, "the peer is uid %u",
		         (unsigned)other_uid);
		assert_non_null(strstr(ipc_last_error(), uidtxt));
		/* nothing else is waiting: the refused one is gone */
		assert_int_equal(ipc_accept(l, &c, IPC_NONBLOCK), -EAGAIN);
	}
	write_byte(done[1], 'x');
	close(done[1]);
	assert_int_equal(tu_wait(pid, 10000, &(int){0}), 0);
	ipc_listener_close(l);
}

static void
test_listener_refuses_foreign_peer(void **state)
{
	(void)state;
	if (!need_root(__func__)) {
		skip();
	}
	for (size_t i = 0; i < NDRV; i++) {
		const char *sc = drivers[i].scheme;
		if (strcmp(sc, "unix") != 0 &&
		    strcmp(sc, "unix+seqpacket") != 0 &&
		    strcmp(sc, "shm") != 0) {
			continue; /* the drivers with ipc_listen */
		}
		printf("%s: a listener with allow_uid=%u refuses uid %u\n", sc,
		       (unsigned)third_uid, (unsigned)other_uid);
		foreign_client(&drivers[i], third_uid, -EACCES);
		foreign_client(&drivers[i], other_uid, 0);
	}
}

/* A FIFO does not tell its creator who opened it: allow_uid= there is an
 * error, not a promise. */
static void
test_fifo_creator_cannot_check(void **state)
{
	char uri[512];
	ipc_channel *c;

	(void)state;
	make_uri(uri, sizeof uri, &drivers[NDRV - 1], "allow_uid=1");
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), -EOPNOTSUPP);
	assert_non_null(strstr(ipc_last_error(), "mode="));
}

/* ---------------------------------------------------- ipc_peer_cred -- */

static void
check_self(ipc_channel *ch)
{
	pid_t pid = -1;
	uid_t uid = 1;
	gid_t gid = 1;

	assert_int_equal(ipc_peer_cred(ch, &pid, &uid, &gid), 0);
	assert_int_equal(pid, getpid());
	assert_int_equal(uid, geteuid());
	assert_int_equal(gid, getegid());
}

static void
test_peer_cred_local(void **state)
{
	static const char *const pairs[] = {
	        "unix:", "unix+seqpacket:", "unix+dgram:", "shm:"};
	ipc_channel *a, *b;
	char uri[128];

	(void)state;
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		assert_int_equal(ipc_pair(&a, &b, pairs[i]), 0);
		check_self(a);
		check_self(b);
		ipc_close(a);
		ipc_close(b);
	}
	snprintf(uri, sizeof uri, "inproc://trust-%d", (int)getpid());
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&b, uri, 0), 0);
	check_self(a);
	check_self(b);
	ipc_close(b);
	ipc_close(a);

	/* a creator before its peer: -ENOTCONN */
	snprintf(uri, sizeof uri, "unix://@trust-%d", (int)getpid());
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_peer_cred(a, NULL, NULL, NULL), -ENOTCONN);
	assert_int_equal(ipc_open(&b, uri, 0), 0);
	assert_int_equal(ipc_send(b, "x", 1, 0), 1);
	char buf[4];
	assert_int_equal(ipc_recv(a, buf, sizeof buf, 0), 1);
	check_self(a);
	check_self(b);
	ipc_close(b);
	ipc_close(a);

	/* pipes and TCP cannot tell */
	assert_int_equal(ipc_pair(&a, &b, "pipe:"), 0);
	assert_int_equal(ipc_peer_cred(a, NULL, NULL, NULL), -EOPNOTSUPP);
	assert_non_null(strstr(ipc_last_error(), "pipe"));
	ipc_close(a);
	ipc_close(b);
	int port;
	assert_int_equal(tu_free_port("127.0.0.1", &port), 0);
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
	assert_int_equal(ipc_open(&a, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&b, uri, 0), 0);
	assert_int_equal(ipc_peer_cred(b, NULL, NULL, NULL), -EOPNOTSUPP);
	assert_non_null(strstr(ipc_last_error(), "tcp"));
	ipc_close(b);
	ipc_close(a);
	assert_int_equal(ipc_peer_cred(NULL, NULL, NULL, NULL), -EINVAL);
}

static void
test_bad_options(void **state)
{
	static const char *const bad[] = {
	        "allow_uid=",     "allow_uid=abc",       "allow_uid=1,",
	        "allow_uid=-1",   "allow_uid=0x10",      "allow_gid=any",
	        "allow_uid=1,,2", "allow_uid=4294967295"};
	char uri[256];
	ipc_channel *c;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(uri, sizeof uri, "mq://trust-bad-%d?%s",
		         (int)getpid(), bad[i]);
		int r = ipc_open(&c, uri, IPC_CREATE);
		if (r != -EINVAL) {
			printf("%s: %d (%s)\n", uri, r, ipc_last_error());
		}
		assert_int_equal(r, -EINVAL);
		assert_non_null(strstr(ipc_last_error(), "allow_"));
	}
	/* tcp cannot check: the options are not offered there */
	assert_int_equal(ipc_open(&c, "tcp://127.0.0.1:1?allow_uid=1", 0),
	                 -EINVAL);
}

/* An unused uid: no passwd entry, not ours. */
static uid_t
unused_uid(uid_t from)
{
	for (uid_t u = from;; u++) {
		if (getpwuid(u) == NULL && getgrgid(u) == NULL &&
		    u != geteuid()) {
			return u;
		}
	}
}

static int
setup(void **state)
{
	(void)state;
	other_uid = unused_uid(61000 + (unsigned)getpid() % 2000);
	third_uid = unused_uid(other_uid + 1);
	if (tu_tmpdir(sticky_dir, sizeof sticky_dir, "trust") < 0) {
		return -1;
	}
	/* A world-writable sticky directory, like /tmp. */
	return chmod(sticky_dir, 01777);
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(sticky_dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_opener_refuses_foreign_creator),
	        cmocka_unit_test(test_creator_refuses_foreign_peer),
	        cmocka_unit_test(test_listener_refuses_foreign_peer),
	        cmocka_unit_test(test_fifo_creator_cannot_check),
	        cmocka_unit_test(test_peer_cred_local),
	        cmocka_unit_test(test_bad_options),
	};
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
