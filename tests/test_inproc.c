/*
 * inproc:// driver tests: the registry (create, attach, names in use),
 * bounded queues, zero-copy, threads blocking on each other, many
 * channels at once.
 *
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc/ipc.h"
#include "testutil.h"

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

static void
uri_for(char *buf, size_t n, const char *tag, const char *opts)
{
	static int counter;

	snprintf(buf, n, "inproc://t-%s-%d-%d%s", tag, (int)getpid(),
	         counter++, opts ? opts : "");
}

static void
fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
	}
}

/* ----------------------------------------------------------------- pair */

static void
test_pair_sizes(void **state)
{
	static const size_t sizes[] = {0, 1, 7, 4096, 65537, 1u << 20};
	ipc_channel *a, *b;
	unsigned char *out = malloc(1u << 20), *in = malloc(1u << 20);
	int fds = fd_count();

	(void)state;
	assert_non_null(out);
	assert_non_null(in);
	assert_int_equal(ipc_pair(&a, &b, "inproc:"), 0);
	assert_string_equal(ipc_scheme(a), "inproc");
	assert_true(ipc_max_msg(a) >= (1u << 20));
	assert_true(ipc_caps(a) & IPC_CAP_ZEROCOPY);
	assert_false(ipc_caps(a) & IPC_CAP_PEERCLOSE);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill(out, sizes[i], (unsigned)i);
		assert_int_equal(ipc_send(a, out, sizes[i], 0), sizes[i]);
		memset(in, 0xee, sizes[i]);
		assert_int_equal(ipc_recv(b, in, 1u << 20, 0), sizes[i]);
		assert_memory_equal(in, out, sizes[i]);
		/* and back */
		assert_int_equal(ipc_send(b, in, sizes[i], 0), sizes[i]);
		assert_int_equal(ipc_recv(a, in, 1u << 20, 0), sizes[i]);
		assert_memory_equal(in, out, sizes[i]);
	}
	/* too small a buffer: -EMSGSIZE and the message stays */
	assert_int_equal(ipc_send(a, "hello", 5, 0), 5);
	assert_int_equal(ipc_recv(b, in, 4, 0), -EMSGSIZE);
	assert_true(strstr(ipc_last_error(), "5") != NULL);
	assert_int_equal(ipc_recv(b, in, 5, 0), 5);
	assert_memory_equal(in, "hello", 5);
	/* nothing there */
	assert_int_equal(ipc_recv(b, in, 5, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_set_timeout(b, 30), 0);
	assert_int_equal(ipc_recv(b, in, 5, 0), -ETIMEDOUT);
	/* over the maximum */
	assert_int_equal(ipc_send(a, out, ipc_max_msg(a) + 1, 0), -EMSGSIZE);
	assert_int_equal(ipc_close(a), 0);
	assert_int_equal(ipc_recv(b, in, 5, 0), -EPIPE);
	assert_int_equal(ipc_send(b, "x", 1, 0), -EPIPE);
	assert_int_equal(ipc_close(b), 0);
	assert_int_equal(fd_count(), fds);
	free(out);
	free(in);
}

static void
test_pair_rejects_name(void **state)
{
	ipc_channel *a, *b;

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "inproc://x"), -EINVAL);
	assert_int_equal(ipc_pair(&a, &b, "inproc:?capacity=0"), -EINVAL);
	assert_int_equal(ipc_pair(&a, &b, "inproc:?bogus=1"), -EINVAL);
}

/* ------------------------------------------------------------ registry */

static void
test_registry(void **state)
{
	char uri[128];
	ipc_channel *c, *o, *x;
	char buf[16];
	int fds = fd_count();

	(void)state;
	uri_for(uri, sizeof(uri), "reg", NULL);
	assert_int_equal(ipc_open(&o, uri, 0), -ENOENT);
	assert_true(strstr(ipc_last_error(), uri) != NULL);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_open(&x, uri, IPC_CREATE), -EEXIST);
	/* the creator's send waits for a peer */
	assert_int_equal(ipc_send(c, "a", 1, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_open(&o, uri, 0), 0);
	assert_int_equal(ipc_open(&x, uri, 0), -EADDRINUSE);
	assert_int_equal(ipc_send(c, "a", 1, IPC_NONBLOCK), 1);
	assert_int_equal(ipc_recv(o, buf, sizeof(buf), 0), 1);
	assert_int_equal(ipc_send(o, "bc", 2, 0), 2);
	assert_int_equal(ipc_recv(c, buf, sizeof(buf), 0), 2);
	assert_memory_equal(buf, "bc", 2);
	/* the creator's close frees the name at once */
	assert_int_equal(ipc_close(c), 0);
	assert_int_equal(ipc_recv(o, buf, sizeof(buf), 0), -EPIPE);
	assert_int_equal(ipc_open(&x, uri, 0), -ENOENT);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_close(o), 0);
	assert_int_equal(ipc_close(c), 0);
	/* a creator alone closes cleanly too */
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	assert_int_equal(ipc_close(c), 0);
	assert_int_equal(fd_count(), fds);
}

static void
test_bad_names_and_options(void **state)
{
	ipc_channel *c, *o;
	char uri[160], base[128];

	(void)state;
	assert_int_equal(ipc_open(&c, "inproc://", IPC_CREATE), -EINVAL);
	assert_int_equal(ipc_open(&c, "inproc://a/b", IPC_CREATE), -EINVAL);
	assert_int_equal(ipc_open(&c, "inproc://sp ace", IPC_CREATE), -EINVAL);
	assert_int_equal(ipc_open(&c, "inproc://x?capacity=0", IPC_CREATE),
	                 -EINVAL);
	assert_int_equal(ipc_open(&c, "inproc://x?nope=1", IPC_CREATE),
	                 -EINVAL);
	/* options are the creator's: an attach may repeat them, not change
	 * them */
	uri_for(base, sizeof(base), "opt", NULL);
	snprintf(uri, sizeof(uri), "%s?capacity=8192", base);
	assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
	snprintf(uri, sizeof(uri), "%s?capacity=16384", base);
	assert_int_equal(ipc_open(&o, uri, 0), -EINVAL);
	assert_true(strstr(ipc_last_error(), "capacity") != NULL);
	snprintf(uri, sizeof(uri), "%s?maxmsg=100", base);
	assert_int_equal(ipc_open(&o, uri, 0), -EINVAL);
	assert_true(strstr(ipc_last_error(), "maxmsg") != NULL);
	snprintf(uri, sizeof(uri), "%s?capacity=8192", base);
	assert_int_equal(ipc_open(&o, uri, 0), 0);
	assert_int_equal(ipc_close(o), 0);
	assert_int_equal(ipc_close(c), 0);
}

/* ---------------------------------------------------------- the ring */

/* capacity: the bytes of each direction's ring (a power of two, at least
 * 4096); a record takes 16 bytes plus its length rounded up to 16. */
static void
test_capacity(void **state)
{
	ipc_channel *a, *b;
	static char big[5001];
	char buf[5000];
	ipc_pollitem it = {.channel = NULL, .fd = -1, .events = IPC_POLLOUT};

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "inproc:?capacity=3000"), 0);
	assert_int_equal(ipc_max_msg(a), 4096 - 16);
	assert_int_equal(ipc_send(a, big, 4081, 0), -EMSGSIZE);
	it.channel = a;
	assert_int_equal(ipc_poll(&it, 1, 0), 1);
	assert_true(it.revents & IPC_POLLOUT);
	assert_int_equal(ipc_send(a, big, 2000, 0), 2000);
	assert_int_equal(ipc_send(a, big, 2000, 0), 2000);
	assert_int_equal(ipc_send(a, big, 2000, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_poll(&it, 1, 0), 0);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), 0), 2000);
	assert_int_equal(ipc_poll(&it, 1, 0), 1);
	assert_int_equal(ipc_send(a, big, 2000, IPC_NONBLOCK), 2000);
	assert_int_equal(ipc_close(b), 0);
	/* a closed reader: send fails at once instead of waiting */
	assert_int_equal(ipc_send(a, "x", 1, 0), -EPIPE);
	assert_int_equal(ipc_close(a), 0);

	/* maxmsg grows the ring to carry it */
	assert_int_equal(ipc_pair(&a, &b, "inproc:?capacity=4096&maxmsg=5000"),
	                 0);
	assert_int_equal(ipc_max_msg(a), 5000);
	assert_int_equal(ipc_send(a, big, 5000, 0), 5000);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), 0), 5000);
	assert_int_equal(ipc_send(a, big, 5001, 0), -EMSGSIZE);
	assert_int_equal(ipc_close(a), 0);
	assert_int_equal(ipc_close(b), 0);
}

/* After a send found no room for a large message, POLLOUT waits until
 * that message fits, so a blocked sender does not spin. */
static void
test_pollout_means_fits(void **state)
{
	ipc_channel *a, *b;
	static unsigned char big[2500];
	char buf[2500];
	ipc_pollitem it = {.channel = NULL, .fd = -1, .events = IPC_POLLOUT};

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "inproc:?capacity=4096"), 0);
	it.channel = a;
	assert_int_equal(ipc_send(a, big, 2500, 0), 2500);
	assert_int_equal(ipc_send(a, big, 2500, IPC_NONBLOCK), -EAGAIN);
	assert_int_equal(ipc_poll(&it, 1, 0), 0);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), 0), 2500);
	assert_int_equal(ipc_poll(&it, 1, 0), 1);
	assert_int_equal(ipc_send(a, big, 2500, IPC_NONBLOCK), 2500);
	assert_int_equal(ipc_close(a), 0);
	assert_int_equal(ipc_close(b), 0);
}

/* ------------------------------------------------------------ zero-copy */

static void
test_zero_copy(void **state)
{
	ipc_channel *a, *b;
	void *w;
	const void *r;
	size_t len;
	char buf[8];

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "inproc:"), 0);
	assert_int_equal(ipc_reserve(a, 100, &w, 0), 0);
	memcpy(w, "zero-copy", 9);
	assert_int_equal(ipc_commit(a, 9), 0);
	assert_int_equal(ipc_acquire(b, &r, &len, 0), 0);
	assert_ptr_equal(r, w); /* the very buffer the sender wrote */
	assert_int_equal(len, 9);
	assert_memory_equal(r, "zero-copy", 9);
	assert_int_equal(ipc_acquire(b, &r, &len, 0), -EBUSY);
	assert_int_equal(ipc_release(b), 0);
	assert_int_equal(ipc_release(b), -EINVAL);
	/* empty reservation, and acquire of an empty message */
	assert_int_equal(ipc_reserve(a, 0, &w, 0), 0);
	assert_int_equal(ipc_commit(a, 0), 0);
	assert_int_equal(ipc_recv(b, buf, 0, 0), 0);
	/* mixing: send, acquire; reserve, recv */
	assert_int_equal(ipc_send(b, "abc", 3, 0), 3);
	assert_int_equal(ipc_acquire(a, &r, &len, IPC_NONBLOCK), 0);
	assert_int_equal(len, 3);
	assert_int_equal(ipc_release(a), 0);
	assert_int_equal(ipc_acquire(a, &r, &len, IPC_NONBLOCK), -EAGAIN);
	/* a reservation left open and a message left acquired are freed
	 * by close (ASan checks) */
	assert_int_equal(ipc_send(a, "q", 1, 0), 1);
	assert_int_equal(ipc_acquire(b, &r, &len, 0), 0);
	assert_int_equal(ipc_reserve(b, 64, &w, 0), 0);
	assert_int_equal(ipc_close(a), 0);
	assert_int_equal(ipc_commit(b, 1), -EPIPE);
	assert_int_equal(ipc_close(b), 0);
}

/* ----------------------------------------------------------- ipc_fd */

static void
test_fd_readable(void **state)
{
	ipc_channel *a, *b;
	char buf[4];
	struct pollfd p;

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "inproc:"), 0);
	p.fd = ipc_fd(b);
	assert_true(p.fd >= 0);
	p.events = POLLIN;
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(ipc_send(a, "hi", 2, 0), 2);
	assert_int_equal(poll(&p, 1, 0), 1);
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), IPC_NONBLOCK), 2);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(ipc_close(a), 0);
	assert_int_equal(poll(&p, 1, 0), 1); /* the close is readable */
	assert_int_equal(ipc_recv(b, buf, sizeof(buf), IPC_NONBLOCK), -EPIPE);
	assert_int_equal(ipc_close(b), 0);
}

/* ------------------------------------------------------------- threads */

struct blocker {
	ipc_channel *ch;
	int op; /* 'r' recv, 's' send */
	ssize_t rc;
	_Atomic pid_t tid;
};

static void *
block_thread(void *arg)
{
	struct blocker *bl = arg;
	char buf[16];

	atomic_store(&bl->tid, (pid_t)syscall(SYS_gettid));

	if (bl->op == 'r') {
		bl->rc = ipc_recv(bl->ch, buf, sizeof(buf), 0);
	} else {
		for (;;) {
			bl->rc = ipc_send(bl->ch, "x", 1, 0);
			if (bl->rc < 0) {
				break;
			}
		}
	}
	return NULL;
}

/* The peer closes from another thread while this one blocks. */
static void
test_close_wakes_blocked(void **state)
{
	ipc_channel *a, *b;
	struct blocker bl;
	pthread_t th;

	(void)state;
	for (int op = 0; op < 2; op++) {
		assert_int_equal(ipc_pair(&a, &b, "inproc:?capacity=4096"), 0);
		bl.ch = b;
		bl.op = op == 0 ? 'r' : 's';
		bl.rc = 0;
		atomic_store(&bl.tid, 0);
		assert_int_equal(pthread_create(&th, NULL, block_thread, &bl),
		                 0);
		/* The close must find it blocked: asleep in the kernel
		 * (send fills the ring first), not about to call. */
		while (atomic_load(&bl.tid) == 0) {
			usleep(1000);
		}
		assert_true(tu_wait_asleep(atomic_load(&bl.tid), 10000));
		assert_int_equal(ipc_close(a), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(bl.rc, -EPIPE);
		assert_int_equal(ipc_close(b), 0);
	}
}

/* A creator blocks in send until its peer attaches in another thread. */
struct attacher {
	char uri[128];
	ipc_channel *ch;
	int rc;
	char got[8];
};

static void *
attach_thread(void *arg)
{
	struct attacher *at = arg;

	usleep(30 * 1000);
	at->rc = ipc_open(&at->ch, at->uri, 0);
	if (at->rc == 0) {
		ssize_t n = ipc_recv(at->ch, at->got, sizeof(at->got), 0);
		at->rc = n == 4 ? 0 : (int)n;
	}
	return NULL;
}

static void
test_send_waits_for_peer(void **state)
{
	struct attacher at = {0};
	ipc_channel *c;
	pthread_t th;

	(void)state;
	uri_for(at.uri, sizeof(at.uri), "wait", NULL);
	assert_int_equal(ipc_open(&c, at.uri, IPC_CREATE), 0);
	assert_int_equal(pthread_create(&th, NULL, attach_thread, &at), 0);
	assert_int_equal(ipc_send(c, "ping", 4, 0), 4);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(at.rc, 0);
	assert_memory_equal(at.got, "ping", 4);
	assert_int_equal(ipc_close(at.ch), 0);
	assert_int_equal(ipc_close(c), 0);
}

/* Many named channels, a producer and a consumer thread on each, with
 * checksummed messages of varied sizes. */
#define NCHAN 12
#define NMSG  3000

struct worker {
	ipc_channel *ch;
	int id;
	int fail;
	uint64_t sum;
};

static void *
producer(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[2048];

	for (int i = 0; i < NMSG && !w->fail; i++) {
		size_t len = (size_t)((i * 37 + w->id) % (int)sizeof(buf));
		fill(buf, len, (unsigned)(i + w->id));
		if (len >= 4) {
			memcpy(buf, &i, 4);
		}
		if (ipc_send(w->ch, buf, len, 0) != (ssize_t)len) {
			w->fail = 1;
		}
		for (size_t k = 0; k < len; k++) {
			w->sum = w->sum * 31 + buf[k];
		}
	}
	return NULL;
}

static void *
consumer(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[2048];

	for (int i = 0; i < NMSG && !w->fail; i++) {
		size_t want = (size_t)((i * 37 + w->id) % (int)sizeof(buf));
		ssize_t n = ipc_recv(w->ch, buf, sizeof(buf), 0);
		if (n != (ssize_t)want) {
			w->fail = 2;
			break;
		}
		for (ssize_t k = 0; k < n; k++) {
			w->sum = w->sum * 31 + buf[k];
		}
	}
	/* then the producer's close */
	if (!w->fail && ipc_recv(w->ch, buf, sizeof(buf), 0) != -EPIPE) {
		w->fail = 3;
	}
	return NULL;
}

static void *
producer_then_close(void *arg)
{
	struct worker *w = arg;

	producer(w);
	if (ipc_close(w->ch) != 0) {
		w->fail = 4;
	}
	return NULL;
}

static void
test_many_threads(void **state)
{
	struct worker prod[NCHAN], cons[NCHAN];
	pthread_t tp[NCHAN], tc[NCHAN];
	char uri[128];
	int fds = fd_count();

	(void)state;
	for (int i = 0; i < NCHAN; i++) {
		uri_for(uri, sizeof(uri), "many",
		        i % 2 ? "?capacity=4096" : NULL);
		memset(&prod[i], 0, sizeof(prod[i]));
		memset(&cons[i], 0, sizeof(cons[i]));
		prod[i].id = cons[i].id = i;
		/* odd channels send creator -> opener, even the reverse */
		ipc_channel *c, *o;
		assert_int_equal(ipc_open(&c, uri, IPC_CREATE), 0);
		assert_int_equal(ipc_open(&o, uri, 0), 0);
		prod[i].ch = i % 2 ? c : o;
		cons[i].ch = i % 2 ? o : c;
	}
	for (int i = 0; i < NCHAN; i++) {
		assert_int_equal(
		        pthread_create(&tc[i], NULL, consumer, &cons[i]), 0);
		assert_int_equal(pthread_create(&tp[i], NULL,
		                                producer_then_close, &prod[i]),
		                 0);
	}
	for (int i = 0; i < NCHAN; i++) {
		assert_int_equal(pthread_join(tp[i], NULL), 0);
		assert_int_equal(pthread_join(tc[i], NULL), 0);
		assert_int_equal(prod[i].fail, 0);
		assert_int_equal(cons[i].fail, 0);
		assert_true(prod[i].sum == cons[i].sum);
		assert_int_equal(ipc_close(cons[i].ch), 0);
	}
	assert_int_equal(fd_count(), fds);
}

/* One thread sends while another receives on the same channel, both
 * directions at once. */
struct duplex {
	ipc_channel *ch;
	int fail;
};

static void *
duplex_sender(void *arg)
{
	struct duplex *d = arg;

	for (int i = 0; i < 20000; i++) {
		if (ipc_send(d->ch, &i, sizeof(i), 0) != sizeof(i)) {
			d->fail = 1;
			break;
		}
	}
	return NULL;
}

static void *
duplex_receiver(void *arg)
{
	struct duplex *d = arg;
	int v;

	for (int i = 0; i < 20000; i++) {
		if (ipc_recv(d->ch, &v, sizeof(v), 0) != sizeof(v) || v != i) {
			d->fail = 1;
			break;
		}
	}
	return NULL;
}

static void
test_duplex_threads(void **state)
{
	ipc_channel *a, *b;
	struct duplex d[4];
	pthread_t th[4];

	(void)state;
	assert_int_equal(ipc_pair(&a, &b, "inproc:?capacity=4096"), 0);
	for (int i = 0; i < 4; i++) {
		d[i].ch = i < 2 ? a : b;
		d[i].fail = 0;
		assert_int_equal(
		        pthread_create(&th[i], NULL,
		                       i % 2 ? duplex_receiver : duplex_sender,
		                       &d[i]),
		        0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(d[i].fail, 0);
	}
	assert_int_equal(ipc_close(a), 0);
	assert_int_equal(ipc_close(b), 0);
}

/* ipc_poll over several inproc channels at once. */
static void
test_poll_many(void **state)
{
	ipc_channel *a[3], *b[3];
	ipc_pollitem it[3];
	char buf[8];

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ipc_pair(&a[i], &b[i], "inproc:"), 0);
		it[i] = (ipc_pollitem){
		        .channel = b[i], .fd = -1, .events = IPC_POLLIN};
	}
	assert_int_equal(ipc_poll(it, 3, 0), 0);
	assert_int_equal(ipc_send(a[1], "m", 1, 0), 1);
	assert_int_equal(ipc_poll(it, 3, 1000), 1);
	assert_int_equal(it[0].revents, 0);
	assert_int_equal(it[1].revents, IPC_POLLIN);
	assert_int_equal(it[2].revents, 0);
	assert_int_equal(ipc_recv(b[1], buf, sizeof(buf), 0), 1);
	assert_int_equal(ipc_close(a[2]), 0);
	assert_int_equal(ipc_poll(it, 3, 1000), 1);
	assert_true(it[2].revents & IPC_POLLHUP);
	assert_true(it[2].revents & IPC_POLLIN);
	for (int i = 0; i < 3; i++) {
		if (i != 2) {
			assert_int_equal(ipc_close(a[i]), 0);
		}
		assert_int_equal(ipc_close(b[i]), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pair_sizes),
	        cmocka_unit_test(test_pair_rejects_name),
	        cmocka_unit_test(test_registry),
	        cmocka_unit_test(test_bad_names_and_options),
	        cmocka_unit_test(test_capacity),
	        cmocka_unit_test(test_pollout_means_fits),
	        cmocka_unit_test(test_zero_copy),
	        cmocka_unit_test(test_fd_readable),
	        cmocka_unit_test(test_close_wakes_blocked),
	        cmocka_unit_test(test_send_waits_for_peer),
	        cmocka_unit_test(test_many_threads),
	        cmocka_unit_test(test_duplex_threads),
	        cmocka_unit_test(test_poll_many),
	};
	return cmocka_run_group_tests_name("inproc", tests, NULL, NULL);
}
