/*
 * Fuzz target: the message-queue drivers as a hostile peer drives them:
 * hellos, close records and data units (src/core/frag.h) in the queues of
 * mq:// and sysvmq://, and the queue attributes a hostile mq:// creator
 * chose.
 *
 * byte 0, bits 0-1 pick the scene:
 *   0  mq:// opener: the harness plays the creator (makes both queues,
 *      with a unit size from bits 2-4, holds the creator's flock) and
 *      queues the units of the input; ipc_open and ipc_recv parse them
 *   1  mq:// creator: a real IPC_CREATE channel; the harness plays the
 *      opener (its flock, its queue) and sends the units
 *   2  sysvmq://: a real creator and opener in this process; the harness
 *      puts the units into the System V queue towards one of them (bit 2)
 *   3  as 2, towards the other side
 * then ops, each a byte whose low 2 bits pick:
 *   0  a raw unit of the next (op >> 2) bytes
 *   1  a HELLO (op bit 2: with the pid from the next 4 bytes, else ours)
 *      or, with op bit 3, a CLOSE
 *   2  a DATA (op bit 2 clear) or MORE unit: 2 bytes of total, 2 bytes
 *      of offset, (op >> 4) bytes of payload, all from the input
 *   3  receive once, into a buffer of caps[op >> 2 & 7] bytes
 * Every receive returns a length that fits, or a documented error.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <unistd.h>

#include "backends/sysv_sem.h"
#include "core/frag.h"
#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names its line (and the library's last error). */
#define FAIL()                                                                \
	do {                                                                  \
		fprintf(stderr, "%s:%d: check failed (last error: %s)\n",     \
		        __FILE__, __LINE__, ipc_last_error());                \
		abort();                                                      \
	} while (0)

static const size_t caps[8] = {0, 1, 11, 12, 100, 4096, 70000, 1 << 20};
static const long units[8] = {1, 11, 12, 13, 64, 1024, 8192, 12 + 4096};
static unsigned counter;
static unsigned char *rbuf;

struct sink {
	mqd_t mq;  /* mq scenes */
	int msqid; /* sysvmq scenes */
	long type;
	ipc_channel *rx; /* the channel that reads what we send */
};

static void
put(struct sink *s, const unsigned char *p, size_t n)
{
	if (s->mq != (mqd_t)-1) {
		(void)mq_send(s->mq, (const char *)p, n, 0);
		return;
	}
	struct {
		long mtype;
		unsigned char text[12 + 4096];
	} msg;
	if (n > sizeof(msg.text)) {
		n = sizeof(msg.text);
	}
	msg.mtype = s->type;
	memcpy(msg.text, p, n);
	(void)msgsnd(s->msqid, &msg, n, IPC_NOWAIT);
}

static void
receive(struct sink *s, size_t cap)
{
	if (s->rx == NULL) {
		return;
	}
	ssize_t n = ipc_recv(s->rx, rbuf, cap, IPC_NONBLOCK);
	if (n > (ssize_t)cap || n < -4095) {
		FAIL();
	}
}

static void
run(struct sink *s, const uint8_t *p, const uint8_t *end)
{
	unsigned char u[12 + 256];

	while (p < end) {
		unsigned op = *p++;
		switch (op & 3) {
		case 0: {
			size_t n = op >> 2;
			n = n < (size_t)(end - p) ? n : (size_t)(end - p);
			put(s, p, n);
			p += n;
			break;
		}
		case 1: {
			uint32_t pid = (uint32_t)getpid();
			if ((op & 4) && end - p >= 4) {
				memcpy(&pid, p, 4);
				p += 4;
			}
			size_t n = ipc__frag_ctl(
			        u, (op & 8) ? IPC_FRAG_CLOSE : IPC_FRAG_HELLO,
			        pid);
			put(s, u, n);
			break;
		}
		case 2: {
			if (end - p < 4) {
				return;
			}
			uint32_t total = (uint32_t)p[0] << 8 | p[1];
			uint32_t off = (uint32_t)p[2] << 8 | p[3];
			p += 4;
			size_t n = op >> 4;
			n = n < (size_t)(end - p) ? n : (size_t)(end - p);
			/* The header through the library's own writer, then
			 * the fields the input chose. */
			ipc__frag_ctl(u, IPC_FRAG_HELLO, 0);
			u[2] = (op & 4) ? IPC_FRAG_MORE : IPC_FRAG_DATA;
			memcpy(u + 4, &total, 4);
			memcpy(u + 8, &off, 4);
			memcpy(u + 12, p, n);
			p += n;
			put(s, u, 12 + n);
			break;
		}
		default:
			receive(s, caps[(op >> 2) & 7]);
			break;
		}
	}
	for (int k = 0; k < 8; k++) {
		receive(s, caps[7]);
	}
}

static void
mq_opener(const char *name, const uint8_t *data, size_t size)
{
	char n0[96], n1[96], uri[96];
	struct mq_attr at = {.mq_maxmsg = 8,
	                     .mq_msgsize = units[(data[0] >> 2) & 7]};
	struct sink s = {.mq = (mqd_t)-1, .msqid = -1};

	snprintf(n0, sizeof(n0), "/libipc.%s.0", name);
	snprintf(n1, sizeof(n1), "/libipc.%s.1", name);
	mqd_t q0 =
	        mq_open(n0, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &at);
	mqd_t q1 =
	        mq_open(n1, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &at);
	if (q0 == (mqd_t)-1 || q1 == (mqd_t)-1 || flock(q1, LOCK_EX) != 0) {
		FAIL();
	}
	/* The input's first units are there before the opener comes. */
	size_t half = (size - 1) / 2;
	s.mq = q0;
	run(&s, data + 1, data + 1 + half);
	snprintf(uri, sizeof(uri), "mq://%s", name);
	int r = ipc_open(&s.rx, uri, IPC_NONBLOCK);
	if (r < -4095 || r > 0) {
		FAIL();
	}
	if (r != 0) {
		s.rx = NULL;
	}
	run(&s, data + 1 + half, data + size);
	if (s.rx != NULL) {
		ipc_close(s.rx);
	}
	mq_close(q0);
	mq_close(q1);
	mq_unlink(n0);
	mq_unlink(n1);
}

static void
mq_creator(const char *name, const uint8_t *data, size_t size)
{
	char n0[96], n1[96], uri[96];
	struct sink s = {.mq = (mqd_t)-1, .msqid = -1};

	snprintf(uri, sizeof(uri), "mq://%s", name);
	if (ipc_open(&s.rx, uri, IPC_CREATE | IPC_NONBLOCK) != 0) {
		return;
	}
	snprintf(n0, sizeof(n0), "/libipc.%s.0", name);
	snprintf(n1, sizeof(n1), "/libipc.%s.1", name);
	mqd_t q0 = mq_open(n0, O_RDONLY | O_NONBLOCK);
	s.mq = mq_open(n1, O_WRONLY | O_NONBLOCK);
	if (q0 == (mqd_t)-1 || s.mq == (mqd_t)-1 ||
	    flock(q0, LOCK_EX | LOCK_NB) != 0) {
		FAIL();
	}
	run(&s, data + 1, data + size);
	ipc_close(s.rx);
	mq_close(q0);
	mq_close(s.mq);
	mq_unlink(n0);
	mq_unlink(n1);
}

static void
sysvmq(const char *name, const uint8_t *data, size_t size)
{
	char uri[96];
	ipc_channel *c, *o;
	struct sink s = {.mq = (mqd_t)-1, .msqid = -1};

	snprintf(uri, sizeof(uri), "sysvmq://%s", name);
	if (ipc_open(&c, uri, IPC_CREATE | IPC_NONBLOCK) != 0) {
		return;
	}
	if (ipc_open(&o, uri, IPC_NONBLOCK) != 0) {
		FAIL();
	}
	for (unsigned i = 0; i < SV_PROBES && s.msqid < 0; i++) {
		s.msqid = msgget(sv_key("sysvmq", name, i), 0);
	}
	if (s.msqid < 0) {
		FAIL();
	}
	/* Type 1 is creator -> opener, 2 opener -> creator. */
	s.type = (data[0] & 1) ? 1 : 2;
	s.rx = (data[0] & 1) ? o : c;
	run(&s, data + 1, data + size);
	ipc_close(o);
	ipc_close(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[64];

	if (size < 1 || size > 2000) {
		return 0;
	}
	if (rbuf == NULL && (rbuf = malloc(1 << 20)) == NULL) {
		FAIL();
	}
	snprintf(name, sizeof(name), "fuzz-%d-%u", (int)getpid(), counter++);
	switch (data[0] & 3) {
	case 0:
		mq_opener(name, data, size);
		break;
	case 1:
		mq_creator(name, data, size);
		break;
	default:
		sysvmq(name, data, size);
		break;
	}
	return 0;
}
