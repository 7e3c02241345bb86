/*
 * inproc://NAME: channels between threads of one process.
 *
 * A process-wide registry (one mutex, one list) maps NAME to a pair of
 * bounded in-memory queues, one per direction.  A message is one heap node
 * holding its bytes; send copies into a node and links it, recv unlinks it
 * and copies out.  reserve/commit and acquire/release hand the node itself
 * to the caller, so they copy nothing (IPC_CAP_ZEROCOPY).
 *
 * Waiting is done by the core: every queue owns two eventfds, one readable
 * while its reader could make progress (a message or the writer's close)
 * and one readable while its writer could (room, or the reader's close).
 * They are kept level-triggered under the queue's mutex.
 *
 * See docs/inproc.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/trust.h"

#define INP_DEF_MAXMSG   (16ull << 20)
#define INP_DEF_CAPACITY (4ull << 20)
#define INP_DEF_DEPTH    1024ull

struct inp_msg {
	struct inp_msg *next;
	size_t len;
	unsigned char data[];
};

/* One direction.  Its writer is the end that sends into it. */
struct inp_queue {
	pthread_mutex_t mu;
	struct inp_msg *head, *tail;
	size_t nbytes, nmsgs;
	size_t want; /* size of the send the writer waits to fit */
	int rready;  /* the reading end exists */
	int rclosed; /* the reading end closed */
	int wclosed; /* the writing end closed */
	int rd_efd;  /* readable: recv would not block */
	int wr_efd;  /* readable: send of `want` bytes would not block */
	int rd_on, wr_on;
};

struct inp_pair {
	struct inp_pair *next; /* registry list */
	char *name;            /* NULL for ipc_pair() pairs */
	int registered;
	int has_peer; /* side 1 attached */
	int refs;     /* open ends; under reg_lock */
	size_t max_msg, capacity, depth;
	/* q[0]: side 0 (creator) sends, side 1 receives; q[1] the reverse */
	struct inp_queue q[2];
};

struct inp_end {
	struct inp_pair *pair;
	int side;
	struct inp_msg *acq; /* acquired, not yet released */
	struct inp_msg *res; /* reserved, not yet committed */
};

/* The process-wide registry of named pairs. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inp_pair *reg_head;

static const struct ipc_optspec inp_opts[] = {
        {"maxmsg", IPC_OPT_SIZE, 1, (1ull << 30), NULL,
         "largest message, default 16M"},
        {"capacity", IPC_OPT_SIZE, 1, (1ull << 36), NULL,
         "bytes queued per direction before send waits, default 4M"},
        {"depth", IPC_OPT_UINT, 1, (1ull << 24), NULL,
         "messages queued per direction before send waits, default 1024"},
        {NULL, 0, 0, 0, NULL, NULL},
};

/* ------------------------------------------------------------ queues -- */

static int
q_room(const struct inp_queue *q, const struct inp_pair *p, size_t len)
{
	if (!q->rready || q->nmsgs >= p->depth) {
		return 0;
	}
	return q->nmsgs == 0 || q->nbytes + len <= p->capacity;
}

/* Bring both eventfds in line with the queue.  Holds q->mu. */
static void
q_signal(struct inp_queue *q, const struct inp_pair *p)
{
	ipc__efd_level(q->rd_efd, &q->rd_on, q->nmsgs > 0 || q->wclosed);
	ipc__efd_level(q->wr_efd, &q->wr_on,
	               q->rclosed || q_room(q, p, q->want));
}

static void
q_drop(struct inp_queue *q)
{
	struct inp_msg *m = q->head;

	while (m != NULL) {
		struct inp_msg *next = m->next;
		free(m);
		m = next;
	}
	q->head = q->tail = NULL;
	q->nbytes = q->nmsgs = 0;
}

static int
q_init(struct inp_queue *q)
{
	int err = pthread_mutex_init(&q->mu, NULL);

	if (err != 0) {
		return -err;
	}
	q->want = 1;
	q->rd_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->wr_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->rd_efd < 0 || q->wr_efd < 0) {
		err = -errno;
		if (q->rd_efd >= 0) {
			close(q->rd_efd);
		}
		if (q->wr_efd >= 0) {
			close(q->wr_efd);
		}
		pthread_mutex_destroy(&q->mu);
		return err;
	}
	return 0;
}

static void
q_fini(struct inp_queue *q)
{
	q_drop(q);
	close(q->rd_efd);
	close(q->wr_efd);
	pthread_mutex_destroy(&q->mu);
}

/* Pop the head message; -EAGAIN or -EPIPE when there is none, -EMSGSIZE
 * (with its length in *out's place: *need) when it is larger than cap. */
static int
q_pop(struct inp_queue *q, const struct inp_pair *p, size_t cap,
      struct inp_msg **out, size_t *need)
{
	struct inp_msg *m;
	int err = 0;

	pthread_mutex_lock(&q->mu);
	m = q->head;
	if (m == NULL) {
		err = q->wclosed ? -EPIPE : -EAGAIN;
	} else if (m->len > cap) {
		*need = m->len;
		err = -EMSGSIZE;
	} else {
		q->head = m->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		q->nmsgs--;
		q->nbytes -= m->len;
		q_signal(q, p);
		*out = m;
	}
	pthread_mutex_unlock(&q->mu);
	return err;
}

/* Link m at the tail if it fits; frees nothing.  0, -EAGAIN, -EPIPE. */
static int
q_push(struct inp_queue *q, const struct inp_pair *p, struct inp_msg *m)
{
	int err = 0;

	pthread_mutex_lock(&q->mu);
	if (q->rclosed) {
		err = -EPIPE;
	} else if (!q_room(q, p, m->len)) {
		q->want = m->len > 0 ? m->len : 1;
		err = -EAGAIN;
	} else {
		m->next = NULL;
		if (q->tail != NULL) {
			q->tail->next = m;
		} else {
			q->head = m;
		}
		q->tail = m;
		q->nmsgs++;
		q->nbytes += m->len;
		q->want = 1;
	}
	q_signal(q, p);
	pthread_mutex_unlock(&q->mu);
	return err;
}

/* -------------------------------------------------------------- pairs -- */

static void
pair_free(struct inp_pair *p)
{
	q_fini(&p->q[0]);
	q_fini(&p->q[1]);
	free(p->name);
	free(p);
}

static int
pair_new(const struct ipc_uri *u, struct inp_pair **out)
{
	struct inp_pair *p = calloc(1, sizeof(*p));
	int err;

	if (p == NULL) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	p->max_msg = ipc__opt_num(u, "maxmsg", INP_DEF_MAXMSG);
	p->capacity = ipc__opt_num(u, "capacity", INP_DEF_CAPACITY);
	p->depth = ipc__opt_num(u, "depth", INP_DEF_DEPTH);
	err = q_init(&p->q[0]);
	if (err < 0) {
		free(p);
		return ipc__errno(err, u->text, "cannot make its eventfds");
	}
	err = q_init(&p->q[1]);
	if (err < 0) {
		q_fini(&p->q[0]);
		free(p);
		return ipc__errno(err, u->text, "cannot make its eventfds");
	}
	/* the creator reads q[1] from the start */
	p->q[1].rready = 1;
	q_signal(&p->q[1], p);
	*out = p;
	return 0;
}

static struct inp_pair *
reg_find(const char *name)
{
	for (struct inp_pair *p = reg_head; p != NULL; p = p->next) {
		if (strcmp(p->name, name) == 0) {
			return p;
		}
	}
	return NULL;
}

static void
reg_remove(struct inp_pair *p)
{
	struct inp_pair **pp = &reg_head;

	while (*pp != NULL && *pp != p) {
		pp = &(*pp)->next;
	}
	if (*pp == p) {
		*pp = p->next;
	}
	p->registered = 0;
}

static void
end_attach(ipc_channel *ch, struct inp_pair *p, int side)
{
	struct inp_end *e = ipc__priv(ch);

	e->pair = p;
	e->side = side;
	ch->max_msg = p->max_msg;
}

/* Options given to an attaching open must agree with the creator's. */
static int
check_same(const struct ipc_uri *u, const char *key, size_t have)
{
	if (ipc__opt_isset(u, key) && ipc__opt_num(u, key, 0) != have) {
		return ipc__err(-EINVAL, u->text,
		                "%s=%llu differs from the creator's %zu "
		                "(options are set by IPC_CREATE)",
		                key, ipc__opt_num(u, key, 0), have);
	}
	return 0;
}

static int
inp_create(ipc_channel *ch, const struct ipc_uri *u)
{
	struct inp_pair *p;
	int err;

	err = pair_new(u, &p);
	if (err < 0) {
		return err;
	}
	p->name = strdup(u->name);
	if (p->name == NULL) {
		pair_free(p);
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	pthread_mutex_lock(&reg_lock);
	if (reg_find(u->name) != NULL) {
		pthread_mutex_unlock(&reg_lock);
		pair_free(p);
		return ipc__err(-EEXIST, u->text,
		                "the name is already in use in this process");
	}
	p->registered = 1;
	p->refs = 1;
	p->next = reg_head;
	reg_head = p;
	pthread_mutex_unlock(&reg_lock);
	end_attach(ch, p, 0);
	return 0;
}

static int
inp_attach(ipc_channel *ch, const struct ipc_uri *u)
{
	struct inp_pair *p;
	int err = 0;

	pthread_mutex_lock(&reg_lock);
	p = reg_find(u->name);
	if (p == NULL) {
		err = ipc__err(-ENOENT, u->text,
		               "no such channel in this process (its creator "
		               "opens it with IPC_CREATE)");
	} else if (p->has_peer) {
		err = ipc__err(-EADDRINUSE, u->text,
		               "the channel already has its peer");
	} else {
		err = check_same(u, "maxmsg", p->max_msg);
		if (err == 0) {
			err = check_same(u, "capacity", p->capacity);
		}
		if (err == 0) {
			err = check_same(u, "depth", p->depth);
		}
	}
	if (err == 0) {
		p->has_peer = 1;
		p->refs++;
		pthread_mutex_lock(&p->q[0].mu);
		p->q[0].rready = 1;
		q_signal(&p->q[0], p);
		pthread_mutex_unlock(&p->q[0].mu);
		end_attach(ch, p, 1);
	}
	pthread_mutex_unlock(&reg_lock);
	return err;
}

/* ------------------------------------------------------------- driver -- */

static struct inp_queue *
q_out(ipc_channel *ch)
{
	struct inp_end *e = ipc__priv(ch);
	return &e->pair->q[e->side];
}

static struct inp_queue *
q_in(ipc_channel *ch)
{
	struct inp_end *e = ipc__priv(ch);
	return &e->pair->q[1 - e->side];
}

static int
inp_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	if (u->name == NULL) {
		return ipc__err(
		        -EINVAL, u->text,
		        "inproc:// needs a NAME ([A-Za-z0-9._-]{1,200})");
	}
	if (flags & IPC_CREATE) {
		return inp_create(ch, u);
	}
	return inp_attach(ch, u);
}

static int
inp_pair(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u)
{
	struct inp_pair *p;
	int err = pair_new(u, &p);

	if (err < 0) {
		return err;
	}
	p->has_peer = 1;
	p->refs = 2;
	p->q[0].rready = 1;
	q_signal(&p->q[0], p);
	end_attach(a, p, 0);
	end_attach(b, p, 1);
	return 0;
}

static ssize_t
inp_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct inp_end *e = ipc__priv(ch);
	struct inp_msg *m = malloc(sizeof(*m) + len);
	int err;

	if (m == NULL) {
		return ipc__err(-ENOMEM, ch->uri,
		                "out of memory for a %zu-byte "
		                "message",
		                len);
	}
	m->len = len;
	if (len > 0) {
		memcpy(m->data, buf, len);
	}
	err = q_push(q_out(ch), e->pair, m);
	if (err < 0) {
		free(m);
		if (err == -EPIPE) {
			return ipc__err_peer(ch->uri, "send", IPC_PEER_CLOSED);
		}
		return err;
	}
	return (ssize_t)len;
}

static ssize_t
inp_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct inp_end *e = ipc__priv(ch);
	struct inp_msg *m = NULL;
	size_t len = 0;
	int err = q_pop(q_in(ch), e->pair, cap, &m, &len);

	if (err == -EPIPE) {
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_CLOSED);
	}
	if (err == -EMSGSIZE) {
		return ipc__err_msgsize(ch->uri, len, cap);
	}
	if (err < 0) {
		return err;
	}
	len = m->len;
	if (len > 0) {
		memcpy(buf, m->data, len);
	}
	free(m);
	return (ssize_t)len;
}

static int
inp_reserve(ipc_channel *ch, size_t len, void **buf)
{
	struct inp_end *e = ipc__priv(ch);
	struct inp_queue *q = q_out(ch);
	int err = 0;

	if (e->res != NULL) {
		return ipc__err(-EBUSY, ch->uri, "a reservation is open");
	}
	pthread_mutex_lock(&q->mu);
	if (q->rclosed) {
		err = -EPIPE;
	} else if (!q_room(q, e->pair, len)) {
		q->want = len > 0 ? len : 1;
		q_signal(q, e->pair);
		err = -EAGAIN;
	}
	pthread_mutex_unlock(&q->mu);
	if (err == -EPIPE) {
		return ipc__err_peer(ch->uri, "reserve", IPC_PEER_CLOSED);
	}
	if (err < 0) {
		return err;
	}
	e->res = malloc(sizeof(*e->res) + len);
	if (e->res == NULL) {
		return ipc__err(-ENOMEM, ch->uri,
		                "out of memory for a %zu-byte message", len);
	}
	e->res->len = len;
	*buf = e->res->data;
	return 0;
}

static int
inp_commit(ipc_channel *ch, size_t len)
{
	struct inp_end *e = ipc__priv(ch);
	struct inp_msg *m = e->res;
	int err;

	if (m == NULL || len > m->len) {
		return ipc__err(-EINVAL, ch->uri,
		                "commit without a matching "
		                "reservation");
	}
	m->len = len;
	/* Room only grows while we hold the reservation (we are the only
	 * sender), so this fails only if the peer closed meanwhile. */
	err = q_push(q_out(ch), e->pair, m);
	if (err == -EAGAIN) {
		return err; /* still reserved: the core may retry */
	}
	e->res = NULL;
	if (err < 0) {
		free(m);
		return ipc__err_peer(ch->uri, "commit", IPC_PEER_CLOSED);
	}
	return 0;
}

static int
inp_acquire(ipc_channel *ch, const void **buf, size_t *len)
{
	struct inp_end *e = ipc__priv(ch);
	int err;

	if (e->acq != NULL) {
		return ipc__err(-EBUSY, ch->uri, "a message is acquired");
	}
	size_t need;

	err = q_pop(q_in(ch), e->pair, SIZE_MAX, &e->acq, &need);
	if (err == -EPIPE) {
		return ipc__err_peer(ch->uri, "acquire", IPC_PEER_CLOSED);
	}
	if (err < 0) {
		return err;
	}
	*buf = e->acq->data;
	*len = e->acq->len;
	return 0;
}

static int
inp_release(ipc_channel *ch)
{
	struct inp_end *e = ipc__priv(ch);

	if (e->acq == NULL) {
		return ipc__err(-EINVAL, ch->uri, "no message is acquired");
	}
	free(e->acq);
	e->acq = NULL;
	return 0;
}

static int
inp_close(ipc_channel *ch)
{
	struct inp_end *e = ipc__priv(ch);
	struct inp_pair *p = e->pair;
	struct inp_queue *out = q_out(ch), *in = q_in(ch);
	int last;

	pthread_mutex_lock(&out->mu);
	out->wclosed = 1;
	q_signal(out, p);
	pthread_mutex_unlock(&out->mu);

	pthread_mutex_lock(&in->mu);
	in->rclosed = 1;
	q_drop(in);
	q_signal(in, p);
	pthread_mutex_unlock(&in->mu);

	free(e->acq);
	free(e->res);
	e->acq = e->res = NULL;

	pthread_mutex_lock(&reg_lock);
	if (e->side == 0 && p->registered) {
		reg_remove(p);
	}
	last = --p->refs == 0;
	pthread_mutex_unlock(&reg_lock);
	if (last) {
		pair_free(p);
	}
	e->pair = NULL;
	return 0;
}

static int
inp_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	int n = 0;

	(void)retry_ms;
	if (events & IPC_POLLIN) {
		pfd[n].fd = q_in(ch)->rd_efd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	if (events & IPC_POLLOUT) {
		pfd[n].fd = q_out(ch)->wr_efd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	return n;
}

/* The eventfds mirror the queues, so the queues themselves are the
 * truth: read them, whatever the descriptors said. */
static short
inp_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct inp_end *e = ipc__priv(ch);
	struct inp_queue *in = q_in(ch), *out = q_out(ch);
	short r = 0;

	(void)pfd;
	(void)npfd;
	pthread_mutex_lock(&in->mu);
	if (in->wclosed) {
		r |= IPC_POLLHUP;
	}
	if ((events & IPC_POLLIN) && (in->nmsgs > 0 || in->wclosed)) {
		r |= IPC_POLLIN;
	}
	pthread_mutex_unlock(&in->mu);
	if (events & IPC_POLLOUT) {
		pthread_mutex_lock(&out->mu);
		if (out->rclosed || q_room(out, e->pair, out->want)) {
			r |= IPC_POLLOUT;
		}
		pthread_mutex_unlock(&out->mu);
	}
	return r;
}

static int
inp_fd(const ipc_channel *ch)
{
	const struct inp_end *e = ipc__cpriv(ch);
	return e->pair->q[1 - e->side].rd_efd;
}

/* Both ends are this process. */
static int
inp_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ipc_cred c;

	ipc__cred_self(&c);
	return ipc__cred_out(&c, ch->uri, pid, uid, gid);
}

const struct ipc_driver ipc_driver_inproc = {
        .scheme = "inproc",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_ZEROCOPY,
        .addr = IPC_ADDR_NAME,
        .opts = inp_opts,
        .priv_size = sizeof(struct inp_end),
        .open = inp_open,
        .pair = inp_pair,
        .send = inp_send,
        .recv = inp_recv,
        .close = inp_close,
        .pollfds = inp_pollfds,
        .ready = inp_ready,
        .reserve = inp_reserve,
        .commit = inp_commit,
        .acquire = inp_acquire,
        .release = inp_release,
        .fd = inp_fd,
        .peer_cred = inp_peer_cred,
};
