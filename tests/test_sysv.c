/*
 * sysvmq:// and sysvshm:// edge cases beyond the conformance suite: both
 * sides killed mid-stream and the name reopened fresh, a creator killed
 * before any peer (stale objects reclaimed), keys taken by foreign
 * objects (the next probe is used, the foreign objects are untouched),
 * limits and their error messages, a third party refused, mode=, and no
 * System V id left after close.
 *
 * The keys are recomputed with the driver's own function (sysv_sem.h), so
 * the tests can plant foreign objects on them and look for leftovers.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backends/sysv_sem.h"
#include "ipc/ipc.h"
#include "testutil.h"

static const char *g_kind; /* "sysvmq" or "sysvshm" */
static char g_name[128];
static char g_uri[300];

static void
fresh(const char *kind, const char *opts)
{
	g_kind = kind;
	tu_unique(g_name, sizeof g_name, kind);
	snprintf(g_uri, sizeof g_uri, "%s://%s%s", kind, g_name,
	         opts ? opts : "");
}

/* Objects of the kind's type (queue or segment) at key. */
static int
companion_get(key_t key)
{
	return strcmp(g_kind, "sysvmq") == 0 ? msgget(key, 0)
	                                     : shmget(key, 0, 0);
}

/* How many System V objects exist on the name's probe keys. */
static int
objects_on_keys(void)
{
	int n = 0;

	for (unsigned i = 0; i < SV_PROBES; i++) {
		key_t k = sv_key(g_kind, g_name, i);
		n += semget(k, 0, 0) >= 0;
		n += companion_get(k) >= 0;
	}
	return n;
}

static ipc_channel *
open_peer(const char *uri)
{
	ipc_channel *ch = NULL;

	for (int i = 0; i < 2000; i++) {
		int r = ipc_open(&ch, uri, 0);
		if (r == 0) {
			return ch;
		}
		TU_CHECK_MSG(r == -ENOENT || r == -ECONNREFUSED, "open: %s",
		             tu_errname(r));
		tu_sleep_ms(2);
	}
	tu_fail(__FILE__, __LINE__, "the creator never appeared");
}

static int
child_echo_once(void *arg)
{
	ipc_channel *ch = open_peer(g_uri);
	char b[64];

	(void)arg;
	TU_OK(ipc_set_timeout(ch, 10000));
	ssize_t n = TU_OK(ipc_recv(ch, b, sizeof b, 0));
	TU_CHECK_EQ(ipc_send(ch, b, (size_t)n, 0), n);
	TU_OK(ipc_close(ch));
	return 0;
}

/* The first message of a new channel is ours, echoed by a new peer. */
static void
roundtrip_fresh(ipc_channel *ch)
{
	char b[64];

	assert_int_equal(ipc_set_timeout(ch, 10000), 0);
	pid_t pid = tu_fork(child_echo_once, NULL, 30);
	assert_true(pid > 0);
	assert_int_equal(ipc_send(ch, "fresh", 5, 0), 5);
	assert_int_equal(ipc_recv(ch, b, sizeof b, 0), 5);
	assert_memory_equal(b, "fresh", 5);
	assert_int_equal(tu_wait_ok(pid, 30000), 0);
	assert_int_equal(ipc_recv(ch, b, sizeof b, 0), -EPIPE);
}

/* --------------------------------------------- kill both mid-stream -- */

static int
child_stream_creator(void *arg)
{
	ipc_channel *ch;
	unsigned char buf[3000];
	int *ready = arg;

	TU_OK(ipc_open(&ch, g_uri, IPC_CREATE));
	TU_CHECK(write(ready[1], "c", 1) == 1);
	for (unsigned i = 0;; i++) {
		size_t len = 100 + i % 2900;
		memset(buf, (int)i, len);
		TU_OK(ipc_send(ch, buf, len, 0));
	}
}

static int
child_stream_reader(void *arg)
{
	ipc_channel *ch = open_peer(g_uri);
	unsigned char buf[3000];
	int *ready = arg;

	for (unsigned i = 0;; i++) {
		TU_OK(ipc_recv(ch, buf, sizeof buf, 0));
		if (i == 100) {
			TU_CHECK(write(ready[1], "r", 1) == 1);
		}
	}
}

static void
kill_both_and_reopen(const char *kind)
{
	int p[2];
	char c;
	ipc_channel *ch;

	fresh(kind, NULL);
	assert_int_equal(pipe(p), 0);
	pid_t a = tu_fork(child_stream_creator, p, 60);
	assert_int_equal(read(p[0], &c, 1), 1);
	pid_t b = tu_fork(child_stream_reader, p, 60);
	assert_int_equal(read(p[0], &c, 1), 1); /* mid-stream */
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	assert_int_equal(waitpid(a, NULL, 0), a);
	assert_int_equal(waitpid(b, NULL, 0), b);
	close(p[0]);
	close(p[1]);
	assert_true(objects_on_keys() > 0); /* the set outlived them */
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	roundtrip_fresh(ch);
	assert_int_equal(ipc_close(ch), 0);
	assert_int_equal(objects_on_keys(), 0);
}

static void
test_kill_both_sysvmq(void **state)
{
	(void)state;
	kill_both_and_reopen("sysvmq");
}

static void
test_kill_both_sysvshm(void **state)
{
	(void)state;
	kill_both_and_reopen("sysvshm");
}

/* ------------------------------------------------ creator killed alone -- */

static int
child_create_and_hang(void *arg)
{
	ipc_channel *ch;
	int *pipefd = arg;

	TU_OK(ipc_open(&ch, g_uri, IPC_CREATE));
	TU_CHECK(write(pipefd[1], "r", 1) == 1);
	pause();
	return 0;
}

static void
stale_creator(const char *kind)
{
	ipc_channel *ch, *ch2;
	int p[2];
	char c;

	fresh(kind, NULL);
	assert_int_equal(pipe(p), 0);
	pid_t pid = tu_fork(child_create_and_hang, p, 60);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	close(p[1]);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), -EEXIST);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(objects_on_keys(), 2);
	assert_int_equal(ipc_open(&ch, g_uri, 0), -ECONNREFUSED);
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	assert_int_equal(objects_on_keys(), 2);
	roundtrip_fresh(ch);
	/* The peer came and went: nobody else may take its place. */
	assert_int_equal(ipc_open(&ch2, g_uri, 0), -ECONNREFUSED);
	assert_int_equal(ipc_close(ch), 0);
	assert_int_equal(objects_on_keys(), 0);
}

static void
test_stale_sysvmq(void **state)
{
	(void)state;
	stale_creator("sysvmq");
}

static void
test_stale_sysvshm(void **state)
{
	(void)state;
	stale_creator("sysvshm");
}

/* ------------------------------------------------------ key collisions -- */

static void
collisions(const char *kind)
{
	ipc_channel *ch;
	union sv_semun a;
	unsigned short v[SV_NSEMS];

	fresh(kind, NULL);
	key_t k0 = sv_key(kind, g_name, 0);
	key_t k1 = sv_key(kind, g_name, 1);
	key_t k2 = sv_key(kind, g_name, 2);
	/* Probe 0: a semaphore set of another size. */
	int f0 = semget(k0, 3, IPC_CREAT | IPC_EXCL | 0600);
	assert_true(f0 >= 0);
	/* Probe 1: a set of the same size with somebody else's values. */
	int f1 = semget(k1, SV_NSEMS, IPC_CREAT | IPC_EXCL | 0600);
	assert_true(f1 >= 0);
	for (int i = 0; i < SV_NSEMS; i++) {
		v[i] = (unsigned short)(i + 7);
	}
	a.array = v;
	assert_int_equal(semctl(f1, 0, SETALL, a), 0);
	struct sembuf op = {0, 1, 0};
	assert_int_equal(semop(f1, &op, 1), 0); /* "ready" */
	/* Probe 2: only the companion object, somebody else's. */
	int f2 = strcmp(kind, "sysvmq") == 0
	                 ? msgget(k2, IPC_CREAT | IPC_EXCL | 0600)
	                 : shmget(k2, 4096, IPC_CREAT | IPC_EXCL | 0600);
	assert_true(f2 >= 0);

	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	int id = semget(sv_key(kind, g_name, 3), 0, 0);
	assert_true(id >= 0); /* probe 3 holds the channel */
	roundtrip_fresh(ch);
	assert_int_equal(ipc_close(ch), 0);

	/* The foreign objects are untouched. */
	assert_int_equal(semget(k0, 0, 0), f0);
	assert_int_equal(semget(k1, 0, 0), f1);
	a.array = v;
	assert_int_equal(semctl(f1, 0, GETALL, a), 0);
	assert_int_equal(v[0], 8);
	assert_int_equal(v[SV_NSEMS - 1], SV_NSEMS - 1 + 7);
	assert_int_equal(companion_get(k2), f2);
	assert_int_equal(semget(sv_key(kind, g_name, 3), 0, 0), -1);
	semctl(f0, 0, IPC_RMID);
	semctl(f1, 0, IPC_RMID);
	if (strcmp(kind, "sysvmq") == 0) {
		msgctl(f2, IPC_RMID, NULL);
	} else {
		shmctl(f2, IPC_RMID, NULL);
	}
	assert_int_equal(objects_on_keys(), 0);
}

static void
test_collisions_sysvmq(void **state)
{
	(void)state;
	collisions("sysvmq");
}

static void
test_collisions_sysvshm(void **state)
{
	(void)state;
	collisions("sysvshm");
}

/* A set planted on every probe key by somebody else, larger than ours,
 * carrying our tag where ours keeps it: an opener must refuse it without
 * reading more values than its own set has (semctl GETALL would write 300
 * values over a 15-entry array: a stack overflow, caught by ASan and by
 * the stack protector).  A creator passes over it to an unplanted key or
 * refuses; the planted sets are untouched. */
#define BIG_NSEMS 300

static void
planted_big_set(const char *kind)
{
	ipc_channel *ch = NULL;
	unsigned short big[BIG_NSEMS];
	unsigned short tag[4];
	union sv_semun a = {.array = big};
	int ids[SV_PROBES];

	fresh(kind, NULL);
	sv_tag(kind, g_name, tag);
	for (int i = 0; i < BIG_NSEMS; i++) {
		big[i] = 0x7fff;
	}
	memcpy(&big[SV_TAG], tag, sizeof tag);
	big[SV_SLOT + SV_CREATOR] = 0; /* "live creator" */
	big[SV_PIDLO + SV_OPENER] = big[SV_PIDHI + SV_OPENER] = 0;
	for (unsigned i = 0; i < SV_PROBES; i++) {
		ids[i] = semget(sv_key(kind, g_name, i), BIG_NSEMS,
		                IPC_CREAT | IPC_EXCL | 0666);
		assert_true(ids[i] >= 0);
		assert_int_equal(semctl(ids[i], 0, SETALL, a), 0);
		struct sembuf op[2] = {{BIG_NSEMS - 1, -1, IPC_NOWAIT},
		                       {BIG_NSEMS - 1, 1, IPC_NOWAIT}};
		assert_int_equal(semop(ids[i], op, 2), 0); /* "ready" */
	}

	int r = ipc_open(&ch, g_uri, 0);
	assert_true(r < 0);
	assert_null(ch);
	assert_true(strlen(ipc_last_error()) > 0);

	r = ipc_open(&ch, g_uri, IPC_CREATE);
	assert_int_equal(r, -EEXIST); /* every key is somebody else's */
	assert_null(ch);

	for (unsigned i = 0; i < SV_PROBES; i++) {
		unsigned short after[BIG_NSEMS];
		a.array = after;
		assert_int_equal(semctl(ids[i], 0, GETALL, a), 0);
		assert_memory_equal(after, big, sizeof big);
		assert_int_equal(semctl(ids[i], 0, IPC_RMID), 0);
	}
	assert_int_equal(objects_on_keys(), 0);
}

static void
test_planted_big_set(void **state)
{
	(void)state;
	planted_big_set("sysvmq");
	planted_big_set("sysvshm");
}

/* ------------------------------------------------------- limits, mode -- */

static long
proc_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		if (fscanf(f, "%ld", &v) != 1) {
			v = -1;
		}
		fclose(f);
	}
	return v;
}

static void
drop_sys_resource(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) == 0) {
		d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
		d[0].permitted &= ~(1u << CAP_SYS_RESOURCE);
		d[0].inheritable &= ~(1u << CAP_SYS_RESOURCE);
		TU_CHECK(syscall(SYS_capset, &h, d) == 0);
	}
}

static int
child_qbytes(void *arg)
{
	long mnb = proc_long("/proc/sys/kernel/msgmnb");
	char uri[400];
	ipc_channel *ch;

	(void)arg;
	drop_sys_resource();
	TU_CHECK(mnb > 0);
	snprintf(uri, sizeof uri, "sysvmq://%s-q?qbytes=%ld", g_name, mnb * 2);
	TU_ERR(ipc_open(&ch, uri, IPC_CREATE), -EINVAL);
	TU_CHECK_MSG(strstr(ipc_last_error(), "msgmnb") != NULL, "%s",
	             ipc_last_error());
	return 0;
}

static void
test_limits(void **state)
{
	long msgmax = proc_long("/proc/sys/kernel/msgmax");
	ipc_channel *ch;

	(void)state;
	fresh("sysvmq", NULL);
	assert_true(msgmax > 0);
	if (msgmax + 16 <= 524272) {
		snprintf(g_uri, sizeof g_uri, "sysvmq://%s?msgsize=%ld",
		         g_name, msgmax + 16);
		assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), -EINVAL);
		assert_non_null(strstr(ipc_last_error(), "msgmax"));
	}
	assert_int_equal(objects_on_keys(), 0);
	pid_t pid = tu_fork(child_qbytes, NULL, 30);
	assert_int_equal(tu_wait_ok(pid, 30000), 0);
	/* sysvshm: the ring size must be a power of two. */
	fresh("sysvshm", "?size=5000");
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), -EINVAL);
	assert_int_equal(objects_on_keys(), 0);
	/* Small units and a small queue still carry 1 MiB. */
	fresh("sysvmq", "?msgsize=64&qbytes=2048");
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	assert_true(ipc_max_msg(ch) >= (1u << 20));
	assert_int_equal(ipc_close(ch), 0);
	assert_int_equal(objects_on_keys(), 0);
}

static void
mode_check(const char *kind)
{
	ipc_channel *ch;
	struct semid_ds ds;
	union sv_semun a = {.buf = &ds};

	fresh(kind, "?mode=0640");
	assert_int_equal(ipc_open(&ch, g_uri, IPC_CREATE), 0);
	int id = semget(sv_key(kind, g_name, 0), 0, 0);
	assert_true(id >= 0);
	assert_int_equal(semctl(id, 0, IPC_STAT, a), 0);
	assert_int_equal(ds.sem_perm.mode & 0777, 0640);
	int c = companion_get(sv_key(kind, g_name, 0));
	assert_true(c >= 0);
	if (strcmp(kind, "sysvmq") == 0) {
		struct msqid_ds m;
		assert_int_equal(msgctl(c, IPC_STAT, &m), 0);
		assert_int_equal(m.msg_perm.mode & 0777, 0640);
	} else {
		struct shmid_ds s;
		assert_int_equal(shmctl(c, IPC_STAT, &s), 0);
		assert_int_equal(s.shm_perm.mode & 0777, 0640);
	}
	assert_int_equal(ipc_close(ch), 0);
	assert_int_equal(objects_on_keys(), 0);
}

static void
test_mode(void **state)
{
	(void)state;
	mode_check("sysvmq");
	mode_check("sysvshm");
}

/* A SIGKILLed peer is reported as death, an ipc_close as a close (also
 * when the queue towards us was too full for the close record). */
static void
test_death_vs_close_sysvmq(void **state)
{
	(void)state;
	fresh("sysvmq", "?qbytes=4096&msgsize=256");
	tu_check_peer_end(g_uri);
}

static void
test_death_vs_close_sysvshm(void **state)
{
	(void)state;
	fresh("sysvshm", NULL);
	tu_check_peer_end(g_uri);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kill_both_sysvmq),
	        cmocka_unit_test(test_kill_both_sysvshm),
	        cmocka_unit_test(test_stale_sysvmq),
	        cmocka_unit_test(test_stale_sysvshm),
	        cmocka_unit_test(test_collisions_sysvmq),
	        cmocka_unit_test(test_collisions_sysvshm),
	        cmocka_unit_test(test_planted_big_set),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_mode),
	        cmocka_unit_test(test_death_vs_close_sysvmq),
	        cmocka_unit_test(test_death_vs_close_sysvshm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
