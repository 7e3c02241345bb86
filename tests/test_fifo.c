/*
 * fifo:// driver tests: the FIFO pair's life (create, connect, unlink,
 * stale pairs, live creators), peer close and kill -9 on both sides and at
 * every stage of the connection, shell peers with framing=line, and large
 * messages through 64 KiB pipes.
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

#define BIG (1u << 20)

/* ------------------------------------------------------------- helpers */

/* Checks inside forked children: print and exit non-zero. */
#define CHILD_CHECK(cond)                                                     \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "child %d: %s:%d: %s (%s)\n",         \
			        (int)getpid(), __FILE__, __LINE__, #cond,     \
			        ipc_last_error());                            \
			_exit(1);                                             \
		}                                                             \
	} while (0)

struct fx {
	char dir[64];
	char path[128]; /* dir/f */
	char uri[192];  /* fifo://dir/f */
	char in[160];   /* dir/f.in */
	char out[160];  /* dir/f.out */
	int fds;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL) {
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		n += e->d_name[0] != '.';
	}
	closedir(d);
	return n;
}

/* Entries in dir, not counting . and .. */
static int
dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL) {
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0) {
			n++;
		}
	}
	closedir(d);
	return n;
}

static void
uri_opts(struct fx *f, const char *opts)
{
	snprintf(f->uri, sizeof(f->uri), "fifo://%s%s", f->path,
	         opts ? opts : "");
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/ipcfifo-%d-XXXXXX",
	         (int)getpid());
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/f", f->dir);
	snprintf(f->in, sizeof(f->in), "%s.in", f->path);
	snprintf(f->out, sizeof(f->out), "%s.out", f->path);
	uri_opts(f, NULL);
	f->fds = fd_count();
	*state = f;
	return 0;
}

/* Every test leaves its directory empty and no descriptor open. */
static int
teardown(void **state)
{
	struct fx *f = *state;
	int left = dir_entries(f->dir);
	int fds = fd_count();
	char cmd[128];

	if (left != 0) {
		fprintf(stderr, "%d entries left in %s\n", left, f->dir);
	}
	if (fds != f->fds) {
		fprintf(stderr, "descriptors: %d before, %d after\n", f->fds,
		        fds);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", f->dir);
	}
	int ok = left == 0 && fds == f->fds;
	free(f);
	return ok ? 0 : -1;
}

/* Open without IPC_CREATE, retrying while there is no creator yet. */
static int
open_retry(ipc_channel **ch, const char *uri)
{
	double end = now() + 10;
	int r;

	for (;;) {
		r = ipc_open(ch, uri, 0);
		if ((r != -ENOENT && r != -ECONNREFUSED) || now() > end) {
			return r;
		}
		usleep(2000);
	}
}

typedef int (*child_fn)(struct fx *f, int note);

/* Fork a child running fn with a pipe to tell the parent it reached some
 * point (write one byte to note).  Returns the pid; *note_rd is the
 * parent's end. */
static pid_t
spawn(struct fx *f, child_fn fn, int *note_rd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0) {
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		alarm(30);
		_exit(fn(f, p[1]));
	}
	close(p[1]);
	if (note_rd != NULL) {
		*note_rd = p[0];
	} else {
		close(p[0]);
	}
	return pid;
}

static void
noted(int note)
{
	char c;

	assert_int_equal(read(note, &c, 1), 1);
}

static void
note(int fd)
{
	CHILD_CHECK(write(fd, "!", 1) == 1);
}

static int
reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid) {
		return -1;
	}
	return st;
}

static void
reap_ok(pid_t pid)
{
	int st = reap(pid);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
kill_reap(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	st = reap(pid);
	assert_true(WIFSIGNALED(st));
}

static void
pattern(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = (unsigned char)(seed + i * 251u + (i >> 9));
	}
}

/* ------------------------------------------------ two processes, echo */

static int
echo_child(struct fx *f, int nt)
{
	ipc_channel *ch;
	unsigned char *buf = malloc(BIG);
	ssize_t n;

	CHILD_CHECK(buf != NULL);
	CHILD_CHECK(open_retry(&ch, f->uri) == 0);
	note(nt);
	while ((n = ipc_recv(ch, buf, BIG, 0)) >= 0) {
		CHILD_CHECK(ipc_send(ch, buf, (size_t)n, 0) == n);
	}
	CHILD_CHECK(n == -EPIPE);
	CHILD_CHECK(ipc_close(ch) == 0);
	free(buf);
	return 0;
}

static void
test_echo_sizes(void **state)
{
	static const size_t sizes[] = {0,     1,     100,     4095, 65535,
	                               65536, 65537, 1000000, BIG};
	struct fx *f = *state;
	unsigned char *out = malloc(BIG), *in = malloc(BIG);
	ipc_channel *c;
	int nt;
	pid_t pid;

	assert_non_null(out);
	assert_non_null(in);
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_string_equal(ipc_scheme(c), "fifo");
	assert_true(ipc_caps(c) & IPC_CAP_PEERCLOSE);
	assert_true(ipc_max_msg(c) >= BIG);
	assert_int_equal(dir_entries(f->dir), 2);
	pid = spawn(f, echo_child, &nt);
	noted(nt);
	/* the peer unlinked both FIFOs as it connected */
	assert_int_equal(dir_entries(f->dir), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pattern(out, sizes[i], (unsigned)i);
		assert_int_equal(ipc_send(c, out, sizes[i], 0), sizes[i]);
		memset(in, 0, sizes[i]);
		assert_int_equal(ipc_recv(c, in, BIG, 0), sizes[i]);
		assert_memory_equal(in, out, sizes[i]);
	}
	/* a buffer too small leaves the message queued */
	assert_int_equal(ipc_send(c, "hello", 5, 0), 5);
	assert_int_equal(ipc_recv(c, in, 3, 0), -EMSGSIZE);
	assert_int_equal(ipc_recv(c, in, 5, 0), 5);
	assert_memory_equal(in, "hello", 5);
	assert_int_equal(ipc_close(c), 0);
	reap_ok(pid);
	close(nt);
	free(out);
	free(in);
}

/* ------------------------------------------ both ends in one process */

static void
test_same_process_and_detach(void **state)
{
	struct fx *f = *state;
	unsigned char *out = malloc(BIG), *in = malloc(BIG);
	ipc_channel *c, *o;
	ipc_pollitem it = {.channel = NULL, .fd = -1, .events = IPC_POLLOUT};
	ssize_t n;
	int rounds = 0;

	assert_non_null(out);
	assert_non_null(in);
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&o, f->uri, 0), 0);
	/* A 1 MiB message with IPC_NONBLOCK: the pipe takes 64 KiB, the
	 * rest is kept by the channel and the call reports it sent. */
	pattern(out, BIG, 7);
	assert_int_equal(ipc_send(c, out, BIG, IPC_NONBLOCK), BIG);
	memset(out, 0, BIG); /* the caller's buffer is free again */
	it.channel = c;
	for (;;) {
		n = ipc_recv(o, in, BIG, IPC_NONBLOCK);
		if (n != -EAGAIN) {
			break;
		}
		/* polling the sender pushes its kept tail */
		assert_true(ipc_poll(&it, 1, 100) >= 0);
		assert_true(++rounds < 100000);
	}
	assert_int_equal(n, BIG);
	pattern(out, BIG, 7);
	assert_memory_equal(in, out, BIG);
	/* the other way, small */
	assert_int_equal(ipc_send(o, "x", 1, 0), 1);
	assert_int_equal(ipc_recv(c, in, 1, 0), 1);
	assert_int_equal(ipc_close(o), 0);
	assert_int_equal(ipc_recv(c, in, 1, 0), -EPIPE);
	assert_int_equal(ipc_send(c, "x", 1, 0), -EPIPE);
	assert_int_equal(ipc_close(c), 0);
	free(out);
	free(in);
}

/* A large message sent with IPC_NONBLOCK is partly kept by the channel;
 * a sender that then only waits in recv must still get it out, or the
 * peer (waiting for the whole message before it answers) never answers. */
static int
recv_big_reply(struct fx *f, int creator)
{
	ipc_channel *ch;
	unsigned char *buf = malloc(BIG), *want = malloc(BIG);

	CHILD_CHECK(buf != NULL && want != NULL);
	if (creator) {
		CHILD_CHECK(ipc_open(&ch, f->uri, IPC_CREATE) == 0);
	} else {
		CHILD_CHECK(open_retry(&ch, f->uri) == 0);
	}
	CHILD_CHECK(ipc_set_timeout(ch, 20000) == 0);
	/* the creator cannot send before its peer exists: say hello first
	 * so that the parent's send finds a reader */
	if (creator) {
		CHILD_CHECK(ipc_recv(ch, buf, BIG, 0) == 5);
	} else {
		CHILD_CHECK(ipc_send(ch, "hello", 5, 0) == 5);
	}
	CHILD_CHECK(ipc_recv(ch, buf, BIG, 0) == BIG);
	pattern(want, BIG, 3);
	CHILD_CHECK(memcmp(buf, want, BIG) == 0);
	CHILD_CHECK(ipc_send(ch, "done", 4, 0) == 4);
	CHILD_CHECK(ipc_recv(ch, buf, BIG, 0) == -EPIPE);
	CHILD_CHECK(ipc_close(ch) == 0);
	free(buf);
	free(want);
	return 0;
}

static int
recv_big_reply_creator(struct fx *f, int nt)
{
	(void)nt;
	return recv_big_reply(f, 1);
}

static int
recv_big_reply_opener(struct fx *f, int nt)
{
	(void)nt;
	return recv_big_reply(f, 0);
}

static void
test_detached_tail_pushed_by_recv(void **state)
{
	struct fx *f = *state;
	unsigned char *out = malloc(BIG);
	char buf[8];
	ipc_channel *ch;
	pid_t pid;

	assert_non_null(out);
	pattern(out, BIG, 3);
	for (int role = 0; role < 2; role++) {
		if (role == 0) {
			/* this process creates, the child opens */
			assert_int_equal(ipc_open(&ch, f->uri, IPC_CREATE), 0);
			pid = spawn(f, recv_big_reply_opener, NULL);
			assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 5);
		} else {
			pid = spawn(f, recv_big_reply_creator, NULL);
			assert_int_equal(open_retry(&ch, f->uri), 0);
			assert_int_equal(ipc_send(ch, "hello", 5, 0), 5);
		}
		assert_int_equal(ipc_send(ch, out, BIG, IPC_NONBLOCK), BIG);
		assert_int_equal(ipc_set_timeout(ch, 20000), 0);
		assert_int_equal(ipc_recv(ch, buf, sizeof(buf), 0), 4);
		assert_memory_equal(buf, "done", 4);
		assert_int_equal(ipc_close(ch), 0);
		reap_ok(pid);
	}
	free(out);
}

/* ----------------------------------------------------- opening errors */

static void
test_open_errors(void **state)
{
	struct fx *f = *state;
	ipc_channel *c, *o;
	char uri[256];

	assert_int_equal(ipc_open(&o, f->uri, 0), -ENOENT);
	assert_true(strstr(ipc_last_error(), f->path) != NULL);
	assert_int_equal(ipc_open(&c, "fifo://host/x", IPC_CREATE), -EINVAL);
	assert_int_equal(ipc_open(&c, "fifo:", IPC_CREATE), -EINVAL);
	snprintf(uri, sizeof(uri), "%s?mode=0644", f->uri);
	assert_int_equal(ipc_open(&o, uri, 0), -EINVAL);
	snprintf(uri, sizeof(uri), "%s?framing=words", f->uri);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), -EINVAL);
	snprintf(uri, sizeof(uri), "fifo://%s/", f->dir);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), -EINVAL);
	/* after the peer connected, nobody else can */
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&o, f->uri, 0), 0);
	ipc_channel *third;
	assert_int_equal(ipc_open(&third, f->uri, 0), -ENOENT);
	assert_int_equal(ipc_close(o), 0);
	assert_int_equal(ipc_close(c), 0);
}

static void
test_maxmsg_option(void **state)
{
	struct fx *f = *state;
	ipc_channel *c, *o;
	char big[1001] = {0}, buf[1001];

	uri_opts(f, "?maxmsg=1000");
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&o, f->uri, 0), 0);
	assert_int_equal(ipc_max_msg(c), 1000);
	assert_int_equal(ipc_send(c, big, 1001, 0), -EMSGSIZE);
	assert_int_equal(ipc_send(c, big, 1000, 0), 1000);
	assert_int_equal(ipc_recv(o, buf, sizeof(buf), 0), 1000);
	assert_int_equal(ipc_close(o), 0);
	assert_int_equal(ipc_close(c), 0);
}

static void
test_mode(void **state)
{
	struct fx *f = *state;
	ipc_channel *c;
	struct stat st;
	mode_t old = umask(077);

	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(stat(f->in, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ipc_close(c), 0);
	assert_int_equal(dir_entries(f->dir), 0);

	uri_opts(f, "?mode=0640");
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(stat(f->in, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640); /* not cut by umask */
	assert_int_equal(stat(f->out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(ipc_close(c), 0);
	umask(old);
}

/* ---------------------------------------------- live and stale pairs */

static void
test_live_creator_is_eexist(void **state)
{
	struct fx *f = *state;
	ipc_channel *c, *c2, *o;
	char buf[8];
	int fd;

	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&c2, f->uri, IPC_CREATE), -EEXIST);
	assert_true(strstr(ipc_last_error(), "live") != NULL);
	/* the attempt did not disturb the first creator */
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_open(&o, f->uri, 0), 0);
	assert_int_equal(ipc_send(c, "abc", 3, 0), 3);
	assert_int_equal(ipc_recv(o, buf, sizeof(buf), 0), 3);
	assert_int_equal(ipc_send(o, "de", 2, 0), 2);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 2);
	assert_int_equal(ipc_close(o), 0);
	assert_int_equal(ipc_close(c), 0);

	/* something that is not a FIFO is never removed */
	fd = open(f->in, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), -EEXIST);
	assert_true(strstr(ipc_last_error(), "not a FIFO") != NULL);
	assert_int_equal(ipc_open(&o, f->uri, 0), -EEXIST);
	assert_int_equal(unlink(f->in), 0);
	assert_int_equal(dir_entries(f->dir), 0);
}

static int
create_and_die(struct fx *f, int nt)
{
	ipc_channel *c;

	CHILD_CHECK(ipc_open(&c, f->uri, IPC_CREATE) == 0);
	note(nt);
	raise(SIGKILL);
	return 1;
}

static int
connect_send_child(struct fx *f, int nt)
{
	ipc_channel *o;
	char buf[8];

	CHILD_CHECK(open_retry(&o, f->uri) == 0);
	CHILD_CHECK(ipc_send(o, "hi", 2, 0) == 2);
	CHILD_CHECK(ipc_recv(o, buf, sizeof(buf), 0) == 3);
	CHILD_CHECK(memcmp(buf, "bye", 3) == 0);
	CHILD_CHECK(ipc_recv(o, buf, sizeof(buf), 0) == -EPIPE);
	CHILD_CHECK(ipc_close(o) == 0);
	(void)nt;
	return 0;
}

static void
test_stale_pair_reclaimed(void **state)
{
	struct fx *f = *state;
	ipc_channel *c, *o;
	char buf[8];
	int nt;
	pid_t pid;

	pid = spawn(f, create_and_die, &nt);
	noted(nt);
	close(nt);
	kill_reap(pid);
	/* the dead creator's FIFOs are there, with nobody behind them */
	assert_int_equal(dir_entries(f->dir), 2);
	assert_int_equal(ipc_open(&o, f->uri, 0), -ECONNREFUSED);
	assert_true(strstr(ipc_last_error(), "gone") != NULL);
	/* a new creator takes the name over */
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(dir_entries(f->dir), 2);
	pid = spawn(f, connect_send_child, NULL);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(ipc_send(c, "bye", 3, 0), 3);
	assert_int_equal(ipc_close(c), 0);
	reap_ok(pid);
}

/* ------------------------------------------------------------- death */

/* Block in recv (op 'r') or send (op 's') on ch while pid is killed,
 * once this thread is seen asleep in the kernel (testutil's killer).
 * Returns what the call returned; *secs the time from the kill to the
 * return. */
static ssize_t
blocked_call_during_kill(ipc_channel *ch, pid_t pid, int op, double *secs)
{
	struct tu_killer k;
	char buf[64];
	ssize_t r;

	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	assert_int_equal(tu_killer_start(&k, pid, 20), 0);
	if (op == 'r') {
		r = ipc_recv(ch, buf, sizeof(buf), 0);
	} else {
		static unsigned char chunk[65536];
		do {
			r = ipc_send(ch, chunk, sizeof(chunk), 0);
		} while (r >= 0);
	}
	*secs = tu_killer_join(&k);
	/* The call was blocked when the peer died, not yet to come. */
	assert_true(k.asleep);
	assert_true(*secs >= 0);
	return r;
}

static int
open_send_pause(struct fx *f, int nt)
{
	ipc_channel *o;

	CHILD_CHECK(open_retry(&o, f->uri) == 0);
	CHILD_CHECK(ipc_send(o, "last", 4, 0) == 4);
	note(nt);
	for (;;) {
		pause();
	}
}

/* The opener dies: the creator drains what it sent, then -EPIPE. */
static void
test_opener_killed(void **state)
{
	struct fx *f = *state;
	ipc_channel *c;
	char buf[8];
	double secs;
	int nt;
	pid_t pid;

	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	pid = spawn(f, open_send_pause, &nt);
	noted(nt);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 4);
	assert_int_equal(blocked_call_during_kill(c, pid, 'r', &secs), -EPIPE);
	assert_true(secs < TU_DEATH_S);
	/* at once, even if the dying process still holds the other FIFO */
	assert_int_equal(ipc_send(c, "x", 1, IPC_NONBLOCK), -EPIPE);
	reap(pid);
	assert_int_equal(ipc_send(c, "x", 1, 0), -EPIPE);
	assert_int_equal(ipc_close(c), 0);
	close(nt);
}

/* The same, with the creator blocked in send on a full pipe. */
static void
test_opener_killed_during_send(void **state)
{
	struct fx *f = *state;
	ipc_channel *c;
	double secs;
	char buf[8];
	int nt;
	pid_t pid;

	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	pid = spawn(f, open_send_pause, &nt);
	noted(nt);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 4);
	assert_int_equal(blocked_call_during_kill(c, pid, 's', &secs), -EPIPE);
	assert_true(secs < TU_DEATH_S);
	/* at once, even if the dying process still holds the other FIFO */
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), IPC_NONBLOCK), -EPIPE);
	assert_int_equal(ipc_close(c), 0);
	reap(pid);
	close(nt);
}

static int
create_echo_once_pause(struct fx *f, int nt)
{
	ipc_channel *c;
	char buf[8];

	CHILD_CHECK(ipc_open(&c, f->uri, IPC_CREATE) == 0);
	note(nt);
	CHILD_CHECK(ipc_recv(c, buf, sizeof(buf), 0) == 2);
	CHILD_CHECK(ipc_send(c, "ack", 3, 0) == 3);
	for (;;) {
		pause();
	}
}

/* The creator dies after talking: the opener sees -EPIPE. */
static void
test_creator_killed(void **state)
{
	struct fx *f = *state;
	ipc_channel *o;
	char buf[8];
	double secs;
	int nt;
	pid_t pid;

	pid = spawn(f, create_echo_once_pause, &nt);
	noted(nt);
	assert_int_equal(ipc_open(&o, f->uri, 0), 0);
	assert_int_equal(ipc_send(o, "hi", 2, 0), 2);
	assert_int_equal(ipc_recv(o, buf, sizeof(buf), 0), 3);
	assert_int_equal(blocked_call_during_kill(o, pid, 'r', &secs), -EPIPE);
	assert_true(secs < TU_DEATH_S);
	assert_int_equal(ipc_send(o, "x", 1, IPC_NONBLOCK), -EPIPE);
	reap(pid);
	assert_int_equal(ipc_send(o, "x", 1, 0), -EPIPE);
	assert_int_equal(ipc_close(o), 0);
	close(nt);
}

static int
create_pause(struct fx *f, int nt)
{
	ipc_channel *c;

	CHILD_CHECK(ipc_open(&c, f->uri, IPC_CREATE) == 0);
	note(nt);
	for (;;) {
		pause();
	}
}

/* The creator dies before it ever wrote (its write end never opened):
 * the opener's recv still ends with -EPIPE. */
static void
test_creator_killed_before_writing(void **state)
{
	struct fx *f = *state;
	ipc_channel *o;
	double secs;
	int nt;
	pid_t pid;

	pid = spawn(f, create_pause, &nt);
	noted(nt);
	assert_int_equal(ipc_open(&o, f->uri, 0), 0);
	assert_int_equal(blocked_call_during_kill(o, pid, 'r', &secs), -EPIPE);
	assert_true(secs < TU_DEATH_S);
	assert_int_equal(ipc_close(o), 0);
	reap(pid);
	close(nt);
}

static int
open_pause(struct fx *f, int nt)
{
	ipc_channel *o;

	CHILD_CHECK(open_retry(&o, f->uri) == 0);
	note(nt);
	for (;;) {
		pause();
	}
}

/* The opener connects and dies before the creator ever sent: the
 * creator's send (still waiting for the peer to read) gives -EPIPE
 * instead of waiting for a peer that can no longer come. */
static void
test_opener_killed_before_creator_sent(void **state)
{
	struct fx *f = *state;
	ipc_channel *c;
	double secs;
	int nt;
	pid_t pid;

	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	pid = spawn(f, open_pause, &nt);
	noted(nt);
	kill_reap(pid);
	assert_int_equal(ipc_set_timeout(c, 5000), 0);
	double t0 = now();
	assert_int_equal(ipc_send(c, "x", 1, 0), -EPIPE);
	secs = now() - t0;
	assert_true(secs < TU_DEATH_S);
	assert_int_equal(ipc_recv(c, &secs, 1, 0), -EPIPE);
	assert_int_equal(ipc_close(c), 0);
	close(nt);
}

static int
talk_and_pause(struct fx *f, int nt, int creator)
{
	ipc_channel *ch;
	char buf[8];

	if (creator) {
		CHILD_CHECK(ipc_open(&ch, f->uri, IPC_CREATE) == 0);
		note(nt);
		CHILD_CHECK(ipc_send(ch, "c", 1, 0) == 1);
		CHILD_CHECK(ipc_recv(ch, buf, sizeof(buf), 0) == 1);
	} else {
		CHILD_CHECK(open_retry(&ch, f->uri) == 0);
		CHILD_CHECK(ipc_recv(ch, buf, sizeof(buf), 0) == 1);
		CHILD_CHECK(ipc_send(ch, "o", 1, 0) == 1);
	}
	note(nt);
	for (;;) {
		pause();
	}
}

static int
talk_creator(struct fx *f, int nt)
{
	return talk_and_pause(f, nt, 1);
}

static int
talk_opener(struct fx *f, int nt)
{
	return talk_and_pause(f, nt, 0);
}

/* Both sides killed after connecting: nothing is left on disk. */
static void
test_both_killed_leave_nothing(void **state)
{
	struct fx *f = *state;
	int ntc, nto;
	pid_t pc, po;

	pc = spawn(f, talk_creator, &ntc);
	noted(ntc); /* created */
	po = spawn(f, talk_opener, &nto);
	noted(ntc); /* talked */
	noted(nto);
	kill_reap(pc);
	kill_reap(po);
	close(ntc);
	close(nto);
	assert_int_equal(dir_entries(f->dir), 0);
}

/* ------------------------------------------------ waiting for a peer */

static int
late_peer(struct fx *f, int nt)
{
	ipc_channel *o;
	char buf[8];

	usleep(100 * 1000);
	CHILD_CHECK(ipc_open(&o, f->uri, 0) == 0);
	CHILD_CHECK(ipc_recv(o, buf, sizeof(buf), 0) == 4);
	CHILD_CHECK(ipc_send(o, "pong", 4, 0) == 4);
	CHILD_CHECK(ipc_recv(o, buf, sizeof(buf), 0) == -EPIPE);
	CHILD_CHECK(ipc_close(o) == 0);
	(void)nt;
	return 0;
}

static void
test_send_waits_for_peer(void **state)
{
	struct fx *f = *state;
	ipc_channel *c;
	ipc_pollitem it = {
	        .channel = NULL, .fd = -1, .events = IPC_POLLOUT | IPC_POLLIN};
	char buf[8];
	pid_t pid;

	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	it.channel = c;
	assert_int_equal(ipc_send(c, "ping", 4, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_poll(&it, 1, 30), 0);
	assert_int_equal(ipc_set_timeout(c, 30), 0);
	assert_int_equal(ipc_send(c, "ping", 4, 0), -ETIMEDOUT);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), -ETIMEDOUT);
	assert_int_equal(ipc_set_timeout(c, -1), 0);
	pid = spawn(f, late_peer, NULL);
	assert_int_equal(ipc_send(c, "ping", 4, 0), 4);
	it.events = IPC_POLLIN;
	assert_int_equal(ipc_poll(&it, 1, 10000), 1);
	assert_true(it.revents & IPC_POLLIN);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "pong", 4);
	assert_int_equal(ipc_close(c), 0);
	reap_ok(pid);
}

static void
test_fd_readable(void **state)
{
	struct fx *f = *state;
	ipc_channel *c, *o;
	struct pollfd p;
	char buf[4];

	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&o, f->uri, 0), 0);
	p.fd = ipc_fd(c);
	p.events = POLLIN;
	assert_true(p.fd >= 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(ipc_send(o, "hi", 2, 0), 2);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), IPC_NONBLOCK), 2);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_close(o), 0);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), IPC_NONBLOCK), -EPIPE);
	assert_int_equal(ipc_close(c), 0);
}

/* -------------------------------------------------- shell peers */

static pid_t
run_sh(const char *script)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* framing=line: a plain shell writer into PATH.in, a plain reader of
 * PATH.out. */
static void
test_line_framing_with_shell(void **state)
{
	struct fx *f = *state;
	ipc_channel *c;
	char buf[64], script[512], outfile[160];
	pid_t pid;
	FILE *fp;

	if (access("/bin/sh", X_OK) != 0) {
		printf("no /bin/sh: cannot run a shell peer\n");
		skip();
	}
	uri_opts(f, "?framing=line");
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	snprintf(script, sizeof(script),
	         "printf 'hello\\nworld\\r\\n\\nlast' > '%s'", f->in);
	pid = run_sh(script);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "world\r", 6);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 0);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "last", 4);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), -EPIPE);
	reap_ok(pid);
	assert_int_equal(ipc_send(c, "a\nb", 3, 0), -EINVAL);
	assert_int_equal(ipc_close(c), 0);
	assert_int_equal(dir_entries(f->dir), 0);

	/* the other way: cat reads what the creator sends */
	snprintf(outfile, sizeof(outfile), "%s/got", f->dir);
	assert_int_equal(ipc_open(&c, f->uri, IPC_CREATE), 0);
	snprintf(script, sizeof(script), "cat '%s' > '%s'", f->out, outfile);
	pid = run_sh(script);
	assert_int_equal(ipc_send(c, "one", 3, 0), 3);
	assert_int_equal(ipc_send(c, "", 0, 0), 0);
	assert_int_equal(ipc_send(c, "three", 5, 0), 5);
	assert_int_equal(ipc_close(c), 0);
	reap_ok(pid);
	fp = fopen(outfile, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_int_equal(n, 11);
	assert_memory_equal(buf, "one\n\nthree\n", 11);
	assert_int_equal(unlink(outfile), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_echo_sizes),
	        T(test_same_process_and_detach),
	        T(test_detached_tail_pushed_by_recv),
	        T(test_open_errors),
	        T(test_maxmsg_option),
	        T(test_mode),
	        T(test_live_creator_is_eexist),
	        T(test_stale_pair_reclaimed),
	        T(test_opener_killed),
	        T(test_opener_killed_during_send),
	        T(test_creator_killed),
	        T(test_creator_killed_before_writing),
	        T(test_opener_killed_before_creator_sent),
	        T(test_both_killed_leave_nothing),
	        T(test_send_waits_for_peer),
	        T(test_fd_readable),
	        T(test_line_framing_with_shell),
#undef T
	};
	signal(SIGPIPE, SIG_DFL); /* the library must never raise it */
	return cmocka_run_group_tests_name("fifo", tests, NULL, NULL);
}
