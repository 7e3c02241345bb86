/*
 * ipc-bench peer: iceoryx through its C binding.  One publisher and one
 * subscriber per direction, zero-copy (loan, write in place, publish; take,
 * read in place, release), the subscriber woken by a waitset, the
 * publisher blocked (not dropping) when the subscriber's queue is full.
 *
 * The row starts its own RouDi daemon with a memory configuration sized for
 * the benchmark's messages, waits until it says it is ready, and stops it
 * when the row ends, however it ends.
 *
 * iceoryx chunks do not tell the subscriber their length through the C
 * binding, so each payload starts with an 8-byte length; the benchmark's
 * message follows it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* runtime.h declares iox_runtime_shutdown() without (void). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>
#pragma GCC diagnostic pop

#include "bench.h"
#include "bench_config.h"
#include "bench_peers.h"
#include "bench_pubsub.h"

#define HDR 8
/* Subscriber queues.  Chunks in use at once are bounded by the queue: a
 * publisher facing a full queue waits in publish (BLOCK_PRODUCER with
 * WAIT_FOR_CONSUMER), so it can hold at most its one loan while the
 * queue holds QUEUE chunks and the subscriber reads one more.  The
 * mempools below are sized from these bounds, so a loan never finds its
 * pool empty.  64 chunks keep the pipe full for 64 B messages as for
 * 1 MiB ones. */
#define QUEUE         64    /* one-to-one rows, per direction */
#define PS_QUEUE      16    /* publish/subscribe rows, per subscriber */
#define ROUDI_WAIT_MS 10000 /* for RouDi to be ready */
#define MATCH_WAIT_MS 10000 /* for publishers to see their subscriber */
#define LOAN_WAIT_MS  10000 /* for a free chunk */

/* Chunks one size class needs.  Per publisher: a full subscriber queue,
 * the chunk the subscriber has taken, the publisher's loan, and the last
 * published chunk, which iceoryx's chunk sender keeps for its
 * previous-chunk feature (not in the C binding).  The one-to-one row has a
 * publisher each way; a publish/subscribe row one publisher whose chunks all
 * subscribers share (a chunk returns to its pool when the last subscriber
 * releases it), so the slowest subscriber's queue plus one taken chunk per
 * subscriber bounds it.  Eight more for chunks on their way back. */
#define PS_SUBS_MAX 16
#define POOL_1TO1   (2 * (QUEUE + 3))
#define POOL_PS     (PS_QUEUE + PS_SUBS_MAX + 2)
#define POOL_COUNT  ((POOL_1TO1 > POOL_PS ? POOL_1TO1 : POOL_PS) + 8)

/* Mempools: chunk payloads for up to 248 B, 64 KiB and 1 MiB messages
 * plus the 8-byte length (the publish/subscribe rows' 64 B messages with
 * their 24-byte header fit the first; other --sizes take the smallest
 * pool that fits, up to 1 MiB, the row's limit). */
static const size_t pool_size[] = {256, 65536 + HDR, 1048576 + HDR};

static void
roudi_config(char *buf, size_t n)
{
	int o = snprintf(buf, n, "[general]\nversion = 1\n\n[[segment]]\n");
	for (size_t i = 0; i < sizeof(pool_size) / sizeof(pool_size[0]); i++) {
		o += snprintf(buf + o, n - (size_t)o,
		              "\n[[segment.mempool]]\nsize = %zu\n"
		              "count = %d\n",
		              pool_size[i], POOL_COUNT);
	}
}

struct roudi {
	pid_t pid;
	char cfg[128], log[128];
};

struct iep {
	iox_pub_storage_t pub_st;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
	void *loan;
	const void *taken;
	int matched; /* the publisher has seen the peer's subscriber */
};

/* ------------------------------------------------------------- RouDi -- */

static int
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		return -errno;
	}
	int rc = bench_write_full(fd, text, strlen(text));
	close(fd);
	return rc;
}

/* Does the log hold needle?  The last line goes to last. */
static int
log_has(const char *path, const char *needle, char *last, size_t n)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	ssize_t len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0) {
		return 0;
	}
	buf[len] = '\0';
	if (last != NULL) {
		char *end = buf + len;
		while (end > buf && (end[-1] == '\n' || end[-1] == '\r')) {
			*--end = '\0';
		}
		char *nl = strrchr(buf, '\n');
		char *line = nl ? nl + 1 : buf;
		/* Drop the colour escapes RouDi writes. */
		size_t o = 0;
		for (char *p = line; *p && o + 1 < n; p++) {
			if (*p == '\033') {
				while (*p && *p != 'm') {
					p++;
				}
				if (!*p) {
					break;
				}
				continue;
			}
			last[o++] = *p;
		}
		last[o] = '\0';
	}
	return strstr(buf, needle) != NULL;
}

static int
iox_prepare(struct bench_env *e, const void *arg, char *why)
{
	(void)arg;
	const char *exe = BENCH_IOX_ROUDI;
	if (exe[0] == '\0' || access(exe, X_OK) != 0) {
		return bench_why(why, BENCH_SKIP,
		                 "iox-roudi not found (Debian package "
		                 "iceoryx)");
	}
	struct roudi *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	e->state = r;
	snprintf(r->cfg, sizeof(r->cfg), "%s/%s.toml", e->dir, e->token);
	snprintf(r->log, sizeof(r->log), "%s/%s.log", e->dir, e->token);
	char cfg[512];
	roudi_config(cfg, sizeof(cfg));
	if (write_file(r->cfg, cfg) < 0) {
		return bench_why(why, BENCH_FAIL, "cannot write %s", r->cfg);
	}
	int logfd =
	        open(r->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0) {
		return bench_why(why, BENCH_FAIL, "cannot write %s", r->log);
	}
	fflush(NULL);
	r->pid = fork();
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execl(exe, exe, "-c", r->cfg, "-l", "warning", (char *)NULL);
		_exit(127);
	}
	close(logfd);
	if (r->pid < 0) {
		return bench_why(why, BENCH_FAIL, "fork: %s", strerror(errno));
	}
	char last[200] = "";
	for (int t = 0; t < ROUDI_WAIT_MS / 10; t++) {
		int st;
		if (log_has(r->log, "RouDi is ready for clients", NULL, 0)) {
			return BENCH_OK;
		}
		if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
			r->pid = 0;
			int other = log_has(r->log, "still running", last,
			                    sizeof(last));
			return bench_why(why, other ? BENCH_SKIP : BENCH_FAIL,
			                 "iox-roudi exited: %s", last);
		}
		bench_sleep_ms(10);
	}
	log_has(r->log, "", last, sizeof(last));
	return bench_why(why, BENCH_FAIL, "iox-roudi not ready after %d s: %s",
	                 ROUDI_WAIT_MS / 1000, last);
}

static void
iox_cleanup(struct bench_env *e, const void *arg)
{
	(void)arg;
	struct roudi *r = e->state;
	if (r == NULL) {
		return;
	}
	if (r->pid > 0) {
		int st;
		kill(r->pid, SIGTERM);
		for (int t = 0; waitpid(r->pid, &st, WNOHANG) == 0; t++) {
			if (t == 500) {
				kill(r->pid, SIGKILL);
				waitpid(r->pid, &st, 0);
				break;
			}
			bench_sleep_ms(10);
		}
		/* RouDi leaves its files behind when it was killed, and when
		 * it stops while a client it knew was killed.  Ours held the
		 * lock, so these were ours. */
		struct passwd *pw = getpwuid(getuid());
		char seg[160];
		if (pw != NULL) {
			snprintf(seg, sizeof(seg), "/dev/shm/%s", pw->pw_name);
			unlink(seg);
		}
		unlink("/dev/shm/iceoryx_mgmt");
		unlink("/tmp/roudi");
		unlink("/tmp/roudi.lock");
		unlink("/tmp/iox-unique-roudi.lock");
	}
	/* The clients' sockets, left when a client was killed. */
	static const char *const sfx[] = {"-A", "-A.lock", "-B", "-B.lock"};
	for (int i = 0; i < 4; i++) {
		char path[160];
		snprintf(path, sizeof(path), "/tmp/%s%s", e->token, sfx[i]);
		unlink(path);
	}
	unlink(r->cfg);
	unlink(r->log);
	free(r);
	e->state = NULL;
}

/* ----------------------------------------------------------- the peer -- */

static int
iox_open(struct bench_env *e, const void *arg, int server, void **ep,
         char *why)
{
	(void)arg;
	char name[64];
	struct iep *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	snprintf(name, sizeof(name), "%s-%c", e->token, server ? 'A' : 'B');
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);

	iox_pub_options_t po;
	iox_pub_options_init(&po);
	po.historyCapacity = 0;
	po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	iox_sub_options_t so;
	iox_sub_options_init(&so);
	so.queueCapacity = QUEUE;
	so.historyRequest = 0;
	so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;

	p->pub = iox_pub_init(&p->pub_st, "ipcbench", e->token,
	                      server ? "AtoB" : "BtoA", &po);
	p->sub = iox_sub_init(&p->sub_st, "ipcbench", e->token,
	                      server ? "BtoA" : "AtoB", &so);
	p->ws = iox_ws_init(&p->ws_st);
	if (iox_ws_attach_subscriber_state(p->ws, p->sub,
	                                   SubscriberState_HAS_DATA, 0,
	                                   NULL) != WaitSetResult_SUCCESS) {
		iox_ws_deinit(p->ws);
		iox_sub_deinit(p->sub);
		iox_pub_deinit(p->pub);
		iox_runtime_shutdown();
		free(p);
		return bench_why(why, BENCH_FAIL, "cannot attach the waitset");
	}
	*ep = p;
	return BENCH_OK;
}

/* A chunk for len bytes and the length word, waiting while the pool is
 * empty: 0, or -ENOBUFS (*chunk NULL). */
static int
loan(iox_pub_t pub, size_t len, void **chunk)
{
	uint64_t deadline = bench_now_ns() + LOAN_WAIT_MS * 1000000ull;
	for (;;) {
		enum iox_AllocationResult r =
		        iox_pub_loan_chunk(pub, chunk, (uint32_t)(len + HDR));
		if (r == AllocationResult_SUCCESS) {
			return 0;
		}
		*chunk = NULL;
		if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS ||
		    bench_now_ns() > deadline) {
			return -ENOBUFS;
		}
		sched_yield();
	}
}

static int
iox_reserve(void *ep, size_t len, void **buf)
{
	struct iep *p = ep;
	if (p->loan != NULL) {
		return -EBUSY;
	}
	/* Nothing published before the peer's subscriber is connected would
	 * reach it: wait for the match before the first message. */
	for (int t = 0; !p->matched; t++) {
		p->matched = iox_pub_has_subscribers(p->pub);
		if (!p->matched && t == MATCH_WAIT_MS) {
			return -ENOTCONN;
		}
		if (!p->matched) {
			bench_sleep_ms(1);
		}
	}
	if (loan(p->pub, len, &p->loan) < 0) {
		return -ENOBUFS;
	}
	*buf = (unsigned char *)p->loan + HDR;
	return 0;
}

static int
iox_commit(void *ep, size_t len)
{
	struct iep *p = ep;
	uint64_t l = len;
	if (p->loan == NULL) {
		return -EINVAL;
	}
	memcpy(p->loan, &l, HDR);
	iox_pub_publish_chunk(p->pub, p->loan);
	p->loan = NULL;
	return 0;
}

static int
iox_acquire(void *ep, const void **buf, size_t *len)
{
	struct iep *p = ep;
	if (p->taken != NULL) {
		return -EBUSY;
	}
	for (;;) {
		enum iox_ChunkReceiveResult r =
		        iox_sub_take_chunk(p->sub, &p->taken);
		if (r == ChunkReceiveResult_SUCCESS) {
			break;
		}
		p->taken = NULL;
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			return -EIO;
		}
		iox_notification_info_t info[1];
		uint64_t missed = 0;
		iox_ws_wait(p->ws, info, 1, &missed);
	}
	uint64_t l;
	memcpy(&l, p->taken, HDR);
	*buf = (const unsigned char *)p->taken + HDR;
	*len = (size_t)l;
	return 0;
}

static int
iox_release(void *ep)
{
	struct iep *p = ep;
	if (p->taken == NULL) {
		return -EINVAL;
	}
	iox_sub_release_chunk(p->sub, p->taken);
	p->taken = NULL;
	return 0;
}

static size_t
iox_max_msg(void *ep)
{
	(void)ep;
	return pool_size[2] - HDR; /* the largest mempool */
}

static void
iox_close(void *ep, int server)
{
	struct iep *p = ep;
	(void)server;
	if (p->loan != NULL) {
		iox_pub_release_chunk(p->pub, p->loan);
	}
	if (p->taken != NULL) {
		iox_sub_release_chunk(p->sub, p->taken);
	}
	iox_ws_detach_subscriber_state(p->ws, p->sub,
	                               SubscriberState_HAS_DATA);
	iox_ws_deinit(p->ws);
	iox_sub_deinit(p->sub);
	iox_pub_deinit(p->pub);
	iox_runtime_shutdown();
	free(p);
}

const struct bench_ops bench_iceoryx_ops = {
        .prepare = iox_prepare,
        .open = iox_open,
        .reserve = iox_reserve,
        .commit = iox_commit,
        .acquire = iox_acquire,
        .release = iox_release,
        .max_msg = iox_max_msg,
        .close = iox_close,
        .cleanup = iox_cleanup,
};

/* ------------------------------------------------- publish/subscribe -- */

/* ipc-bench --pubsub: one iceoryx publisher and N subscribers (one
 * process each), zero-copy both ways, the publisher waiting for a full
 * subscriber queue (as libipc's slow=block). */

struct ips {
	iox_pub_storage_t pub_st;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
	const void *taken;
};

static void
ps_env(const struct bench_ps_env *e, struct bench_env *be)
{
	memset(be, 0, sizeof(*be));
	snprintf(be->dir, sizeof(be->dir), "%s", e->dir);
	snprintf(be->token, sizeof(be->token), "%.31s", e->token);
	be->state = e->state;
}

static int
ips_prepare(struct bench_ps_env *e, char *why)
{
	struct bench_env be;
	ps_env(e, &be);
	int r = iox_prepare(&be, NULL, why);
	e->state = be.state;
	return r;
}

static void
ips_cleanup(struct bench_ps_env *e)
{
	struct bench_env be;
	ps_env(e, &be);
	iox_cleanup(&be, NULL);
	e->state = NULL;
	for (int i = -1; i < 16; i++) {
		char path[160];
		snprintf(path, sizeof(path), "/tmp/%.31s-%d", e->token, i);
		unlink(path);
		snprintf(path, sizeof(path), "/tmp/%.31s-%d.lock", e->token,
		         i);
		unlink(path);
	}
}

static int
ips_open(struct bench_ps_env *e, int pub, void **ep, char *why)
{
	char name[64];
	struct ips *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	snprintf(name, sizeof(name), "%.31s-%d", e->token,
	         pub ? -1 : e->index);
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);
	if (pub) {
		iox_pub_options_t po;
		iox_pub_options_init(&po);
		po.historyCapacity = 0;
		po.subscriberTooSlowPolicy =
		        ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
		p->pub = iox_pub_init(&p->pub_st, "ipcbench", e->token, "ps",
		                      &po);
	} else {
		iox_sub_options_t so;
		iox_sub_options_init(&so);
		so.queueCapacity = PS_QUEUE;
		so.historyRequest = 0;
		so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
		p->sub = iox_sub_init(&p->sub_st, "ipcbench", e->token, "ps",
		                      &so);
		p->ws = iox_ws_init(&p->ws_st);
		if (iox_ws_attach_subscriber_state(
		            p->ws, p->sub, SubscriberState_HAS_DATA, 0,
		            NULL) != WaitSetResult_SUCCESS) {
			iox_ws_deinit(p->ws);
			iox_sub_deinit(p->sub);
			iox_runtime_shutdown();
			free(p);
			return bench_why(why, BENCH_FAIL,
			                 "cannot attach the waitset");
		}
	}
	*ep = p;
	return BENCH_OK;
}

static int
ips_publish(void *ep, const void *hdr, size_t hdr_len, size_t len)
{
	struct ips *p = ep;
	void *chunk;
	if (loan(p->pub, len, &chunk) < 0) {
		return -ENOBUFS;
	}
	uint64_t l = len;
	memcpy(chunk, &l, HDR);
	memcpy((unsigned char *)chunk + HDR, hdr, hdr_len);
	iox_pub_publish_chunk(p->pub, chunk);
	return 0;
}

static int
ips_next(void *ep, const void **buf, size_t *len, int timeout_ms)
{
	struct ips *p = ep;
	for (int tries = 0; tries < 2; tries++) {
		if (iox_sub_take_chunk(p->sub, &p->taken) ==
		    ChunkReceiveResult_SUCCESS) {
			uint64_t l;
			memcpy(&l, p->taken, HDR);
			*buf = (const unsigned char *)p->taken + HDR;
			*len = (size_t)l;
			return 1;
		}
		p->taken = NULL;
		if (tries == 0) {
			iox_notification_info_t info[1];
			uint64_t missed = 0;
			struct timespec to = {
			        .tv_sec = timeout_ms / 1000,
			        .tv_nsec =
			                (long)(timeout_ms % 1000) * 1000000};
			iox_ws_timed_wait(p->ws, to, info, 1, &missed);
		}
	}
	return 0;
}

static void
ips_done(void *ep)
{
	struct ips *p = ep;
	iox_sub_release_chunk(p->sub, p->taken);
	p->taken = NULL;
}

static void
ips_close(void *ep)
{
	struct ips *p = ep;
	if (p->ws != NULL) {
		iox_ws_detach_subscriber_state(p->ws, p->sub,
		                               SubscriberState_HAS_DATA);
		iox_ws_deinit(p->ws);
		iox_sub_deinit(p->sub);
	} else {
		iox_pub_deinit(p->pub);
	}
	iox_runtime_shutdown();
	free(p);
}

const struct bench_ps_ops bench_iceoryx_ps_ops = {
        .prepare = ips_prepare,
        .open = ips_open,
        .publish = ips_publish,
        .next = ips_next,
        .done = ips_done,
        .close = ips_close,
        .cleanup = ips_cleanup,
};
