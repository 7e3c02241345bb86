/*
 * Publish/subscribe in the core (DESIGN.md 2b, docs/pubsub.md): the
 * options every pub/sub driver shares (slow=, history=), and fan-out over
 * listeners for drivers that have no native pub/sub (unix, unix+seqpacket,
 * tcp, tls+tcp).
 *
 * A publisher is a listener of the driver plus one accepted channel per
 * subscriber; a subscriber is a connecting channel.  Each message carries
 * an 8-byte little-endian sequence number before the payload, so that a
 * subscriber counts what slow=drop made it miss.  The publisher never
 * blocks inside a send: a subscriber whose kernel buffer is full gets the
 * message in a backlog of its own (slow=block; the next send waits until
 * every backlog is out) or loses it (slow=drop).  One copy of a message
 * is shared by every backlog and the history ring (reference counts).
 * The subscriber end, which reads the sequence numbers, is pubsub_sub.c.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pubsub.h"
#include "pubsub_int.h"
#include "readyfd.h"
#include "stream.h"
#include "uri.h"
#include "wait.h"

const char *const ipc__slow_choices[] = {"block", "drop", NULL};

int
ipc__pubsub_opts(const struct ipc_uri *u, int flags, struct ipc_pubsub_opts *o)
{
	o->drop = (int)ipc__opt_num(u, "slow", 0) == 1;
	o->history = (unsigned)ipc__opt_num(u, "history", 0);
	if (!(flags & (IPC_PUBLISH | IPC_SUBSCRIBE)) &&
	    (ipc__opt_isset(u, "slow") || ipc__opt_isset(u, "history"))) {
		return ipc__err(-EINVAL, u->text,
		                "open: slow= and history= apply to "
		                "IPC_PUBLISH and IPC_SUBSCRIBE only");
	}
	return 0;
}

/* ------------------------------------------------------------- messages */

static void
seq_put(unsigned char *p, uint64_t seq, int text)
{
	for (int i = 0; i < 16 && text; i++) {
		p[i] = (unsigned char)"0123456789abcdef"[(seq >>
		                                          (60 - 4 * i)) &
		                                         15];
	}
	for (int i = 0; i < SEQ_BIN && !text; i++) {
		p[i] = (unsigned char)(seq >> (8 * i));
	}
	if (text) {
		p[16] = ' ';
	}
}

struct ps_msg {
	unsigned refs;
	size_t len; /* sequence number + payload */
	size_t cap; /* of data */
	unsigned char data[];
};

static void
msg_unref(struct ps_msg *m)
{
	if (m != NULL && --m->refs == 0) {
		free(m);
	}
}

/* One subscriber, as the publisher sees it. */
struct ps_sub {
	ipc_channel *c;
	struct ps_msg **q; /* backlog, a ring */
	size_t qhead, qlen, qcap;
	int nreg; /* descriptors registered in the publisher's epoll */
	struct pollfd reg[IPC_MAXPFD];
};

struct ps_pub {
	pthread_mutex_t mu;
	int have_mu;
	ipc_listener *l;
	int ep; /* listener + backlogged subscribers + wake */
	/* Signalled when the backlogs went out in a call of another thread
	 * (ipc_poll, ipc_subscribers beside a waiting sender). */
	int wake;
	int woken, backlog;
	struct ps_sub **subs;
	size_t nsubs, subcap;
	struct ps_msg **hist; /* ring of history= messages */
	unsigned hcap, hhead, hlen;
	struct ps_msg *spare;    /* a message nobody holds, for the next */
	struct timespec knocked; /* when the listener was last looked at */
	uint64_t seq;
	int drop;
	int text;    /* framing=line: a text sequence number */
	int inprog;  /* slow=block: the last send waits for backlogs */
	int waiting; /* a send said -EAGAIN: backlogs of an earlier one */
	_Atomic unsigned long long dropped;
};

/* ---------------------------------------------------------- the URI --- */

static int
is_pubsub_key(const char *s, size_t n)
{
	return (n > 5 && strncmp(s, "slow=", 5) == 0) ||
	       (n > 8 && strncmp(s, "history=", 8) == 0);
}

/* The URI without slow= and history=, for the driver underneath. */
static char *
inner_uri(const char *uri)
{
	const char *q = strchr(uri, '?');
	size_t n = q ? (size_t)(q - uri) : strlen(uri);
	char *out = malloc(strlen(uri) + 1);
	char sep = '?';

	if (out == NULL) {
		return NULL;
	}
	memcpy(out, uri, n);
	while (q != NULL && *q != '\0') {
		const char *s = q + 1;
		const char *amp = strchr(s, '&');
		size_t k = amp ? (size_t)(amp - s) : strlen(s);
		if (!is_pubsub_key(s, k)) {
			out[n++] = sep;
			memcpy(out + n, s, k);
			n += k;
			sep = '&';
		}
		q = amp;
	}
	out[n] = '\0';
	return out;
}

static int
has_opt(const struct ipc_uri *u, const char *key)
{
	for (size_t i = 0; u->specs[i].key != NULL; i++) {
		if (strcmp(u->specs[i].key, key) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Check uri against the driver's options plus slow= and history=; give
 * the options and the URI for the driver underneath. */
static int
parse(const char *uri, const struct ipc_driver *real, int flags,
      struct ipc_pubsub_opts *o, char **inner, size_t *maxmsg, int *text)
{
	static const struct ipc_optspec ps[] = {IPC_PUBSUB_OPTS};
	struct ipc_optspec specs[IPC_URI_MAXOPTS + 1];
	struct ipc_driver fake = *real;
	const struct ipc_driver *table[] = {&fake, NULL};
	const struct ipc_driver *d;
	struct ipc_uri *u;
	size_t n = 0;
	int r;

	for (; real->opts != NULL && real->opts[n].key != NULL; n++) {
		if (n + 2 >= IPC_URI_MAXOPTS) {
			return ipc__err(-EINVAL, uri,
			                "open: %s has too many options for "
			                "publish/subscribe",
			                real->scheme);
		}
		specs[n] = real->opts[n];
	}
	specs[n++] = ps[0];
	specs[n++] = ps[1];
	memset(&specs[n], 0, sizeof(specs[n]));
	fake.opts = specs;
	r = ipc__uri_parse_in(table, uri, 0, &u, &d);
	if (r < 0) {
		return r;
	}
	r = ipc__pubsub_opts(u, flags, o);
	*text = has_opt(u, "framing") && ipc__opt_num(u, "framing", 0) == 1;
	if (r == 0 && has_opt(u, "framing") &&
	    ipc__opt_num(u, "framing", 0) > 1) {
		r = ipc__err(-EINVAL, uri,
		             "open: publish/subscribe needs message "
		             "boundaries: framing=length or line, not raw");
	}
	*maxmsg = has_opt(u, "maxmsg")
	                  ? (size_t)ipc__opt_num(u, "maxmsg",
	                                         IPC_STREAM_DEFAULT_MAXMSG)
	                  : IPC_STREAM_DEFAULT_MAXMSG;
	ipc__uri_free(u);
	if (r == 0 && *maxmsg <= ipc__pubsub_seq_len(*text)) {
		r = ipc__err(-EINVAL, uri,
		             "open: maxmsg must exceed %zu bytes for "
		             "publish/subscribe",
		             ipc__pubsub_seq_len(*text));
	}
	if (r == 0 && (*inner = inner_uri(uri)) == NULL) {
		r = ipc__err(-ENOMEM, uri, "open: out of memory");
	}
	return r;
}

/* ------------------------------------------------------- the publisher */

static int
sub_push(struct ps_sub *s, struct ps_msg *m)
{
	if (s->qlen == s->qcap) {
		size_t cap = s->qcap ? s->qcap * 2 : 8;
		struct ps_msg **q = malloc(cap * sizeof(*q));
		if (q == NULL) {
			return -ENOMEM;
		}
		for (size_t i = 0; i < s->qlen; i++) {
			q[i] = s->q[(s->qhead + i) % s->qcap];
		}
		free(s->q);
		s->q = q;
		s->qhead = 0;
		s->qcap = cap;
	}
	s->q[(s->qhead + s->qlen) % s->qcap] = m;
	s->qlen++;
	m->refs++;
	return 0;
}

static void
sub_unregister(struct ps_pub *p, struct ps_sub *s)
{
	for (int i = 0; i < s->nreg; i++) {
		epoll_ctl(p->ep, EPOLL_CTL_DEL, s->reg[i].fd, NULL);
	}
	s->nreg = 0;
}

/* Keep the publisher's epoll set naming what a backlogged subscriber
 * waits for (and nothing of one without a backlog). */
static void
sub_register(struct ps_pub *p, struct ps_sub *s)
{
	struct pollfd pfd[IPC_MAXPFD];
	int retry = -1, n = 0;

	if (s->qlen > 0) {
		n = s->c->drv->pollfds(s->c, IPC_POLLOUT, pfd, &retry);
		if (n < 0) {
			n = 0;
		}
	}
	/* Descriptors and events only: a driver's pollfds leaves revents
	 * as it found it (uninitialised here). */
	int same = n == s->nreg;
	for (int i = 0; same && i < n; i++) {
		same = pfd[i].fd == s->reg[i].fd &&
		       pfd[i].events == s->reg[i].events;
	}
	if (same) {
		return;
	}
	sub_unregister(p, s);
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = {.data.ptr = s};
		ev.events = ((pfd[i].events & POLLIN) ? EPOLLIN : 0) |
		            ((pfd[i].events & POLLOUT) ? EPOLLOUT : 0);
		pfd[i].revents = 0;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, pfd[i].fd, &ev) == 0) {
			s->reg[s->nreg++] = pfd[i];
		}
	}
}

static void
sub_free(struct ps_pub *p, size_t i)
{
	struct ps_sub *s = p->subs[i];

	sub_unregister(p, s);
	/* The channel first: it may point into the message at the head
	 * of the backlog (sent in part). */
	ipc_set_timeout(s->c, 0); /* a failed subscriber: no waiting */
	ipc_close(s->c);
	for (size_t k = 0; k < s->qlen; k++) {
		msg_unref(s->q[(s->qhead + k) % s->qcap]);
	}
	free(s->q);
	free(s);
	p->subs[i] = p->subs[--p->nsubs];
}

/* One message to one subscriber's channel, without waiting: its length
 * when all of it went, -EAGAIN when none did, -EINPROGRESS when part did
 * (the rest goes out from m at the next call with m, so m must stay in
 * the backlog), another negative errno when the subscriber is gone.  The
 * driver's send rather than ipc_send, which would copy the rest into the
 * channel, where nothing pushes it while the publisher is idle (a 1 MiB
 * message over unix:// stayed cut until the next send). */
static ssize_t
sub_send(struct ps_sub *s, struct ps_msg *m)
{
	s->c->send_nowait = 1;
	return s->c->drv->send(s->c, m->data, m->len);
}

/* Push s's backlog: 0 when it is out, -EAGAIN when some stays, another
 * negative errno when the subscriber is gone. */
static int
sub_flush(struct ps_sub *s)
{
	while (s->qlen > 0) {
		struct ps_msg *m = s->q[s->qhead];
		ssize_t r = sub_send(s, m);
		if (r < 0) {
			return r == -EINPROGRESS ? -EAGAIN : (int)r;
		}
		s->qhead = (s->qhead + 1) % s->qcap;
		s->qlen--;
		msg_unref(m);
	}
	return 0;
}

/* Take in the subscribers that are knocking.  A send looks at the
 * listener at most once a millisecond (a system call), waits and queries
 * every time (force). */
static void
pub_accept(struct ps_pub *p, int force)
{
	struct pollfd lp = {.fd = ipc_listener_fd(p->l), .events = POLLIN};
	struct timespec now;
	ipc_channel *c;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && now.tv_sec == p->knocked.tv_sec &&
	    now.tv_nsec - p->knocked.tv_nsec < 1000000) {
		return;
	}
	p->knocked = now;
	if (poll(&lp, 1, 0) <= 0) {
		return;
	}
	while (ipc_accept(p->l, &c, IPC_NONBLOCK) == 0) {
		struct ps_sub *s = calloc(1, sizeof(*s));
		if (s != NULL && p->nsubs == p->subcap) {
			size_t cap = p->subcap ? p->subcap * 2 : 8;
			struct ps_sub **n = realloc(p->subs, cap * sizeof(*n));
			if (n == NULL) {
				free(s);
				s = NULL;
			} else {
				p->subs = n;
				p->subcap = cap;
			}
		}
		if (s == NULL) {
			ipc_close(c);
			continue;
		}
		s->c = c;
		p->subs[p->nsubs++] = s;
		for (unsigned k = 0; k < p->hlen; k++) {
			struct ps_msg *m = p->hist[(p->hhead + k) % p->hcap];
			if (sub_push(s, m) < 0) {
				break;
			}
		}
	}
}

/* Take in new subscribers, push backlogs, let the failed go; returns
 * whether a backlog remains. */
/* The wake eventfd is readable exactly while a send waits for backlogs
 * that are out: a sender asleep in poll(2) on ep goes on even when another
 * thread's call (ipc_poll, ipc_subscribers) pushed them, and ipc_fd() of
 * the publisher stays level-triggered. */
static void
wake_sync(struct ps_pub *p)
{
	int want = (p->inprog || p->waiting) && !p->backlog;
	uint64_t v = 1;

	if (want && !p->woken && write(p->wake, &v, sizeof v) == sizeof v) {
		p->woken = 1;
	} else if (!want && p->woken &&
	           read(p->wake, &v, sizeof v) == sizeof v) {
		p->woken = 0;
	}
}

static int
pub_service(struct ps_pub *p, int force)
{
	int backlog = 0;

	pub_accept(p, force);
	for (size_t i = 0; i < p->nsubs;) {
		struct ps_sub *s = p->subs[i];
		int r = sub_flush(s);
		if (r < 0 && r != -EAGAIN) {
			sub_free(p, i);
			continue;
		}
		sub_register(p, s);
		backlog |= s->qlen > 0;
		i++;
	}
	p->backlog = backlog;
	wake_sync(p);
	return backlog;
}

static struct ps_msg *
pub_msg(struct ps_pub *p, const void *buf, size_t len)
{
	struct ps_msg *m = p->spare;
	size_t h = ipc__pubsub_seq_len(p->text);

	if (m != NULL && m->cap >= h + len) {
		p->spare = NULL;
	} else {
		m = malloc(sizeof(*m) + h + len);
		if (m == NULL) {
			return NULL;
		}
		m->cap = h + len;
	}
	m->refs = 1;
	m->len = h + len;
	seq_put(m->data, p->seq, p->text);
	if (len > 0) {
		memcpy(m->data + h, buf, len);
	}
	p->seq++;
	return m;
}

static void
pub_remember(struct ps_pub *p, struct ps_msg *m)
{
	if (p->hcap == 0) {
		return;
	}
	m->refs++;
	if (p->hlen == p->hcap) {
		msg_unref(p->hist[p->hhead]);
		p->hist[p->hhead] = m;
		p->hhead = (p->hhead + 1) % p->hcap;
	} else {
		p->hist[(p->hhead + p->hlen++) % p->hcap] = m;
	}
}

static void
count_drop(struct ps_pub *p)
{
	atomic_fetch_add_explicit(&p->dropped, 1, memory_order_relaxed);
}

/* Hand m to every subscriber; returns whether some backlog holds it. */
static int
pub_fanout(struct ps_pub *p, struct ps_msg *m)
{
	int backlog = 0;

	for (size_t i = 0; i < p->nsubs;) {
		struct ps_sub *s = p->subs[i];
		ssize_t r = -EAGAIN;
		if (s->qlen == 0) {
			r = sub_send(s, m);
		}
		if (r == -EINPROGRESS) {
			/* Part is out: the rest must follow, also under
			 * slow=drop. */
			if (sub_push(s, m) < 0) {
				sub_free(p, i);
				continue;
			}
			sub_register(p, s);
			backlog = 1;
		} else if (r == -EAGAIN && !p->drop && sub_push(s, m) == 0) {
			sub_register(p, s);
			backlog = 1;
		} else if (r == -EAGAIN) {
			count_drop(p);
		} else if (r < 0) {
			sub_free(p, i);
			continue;
		}
		i++;
	}
	return backlog;
}

/* slow=block: a send returns once every subscriber has the message in
 * its channel; until then -EINPROGRESS (the core waits and calls again,
 * or detaches: the backlogs keep their copies). */
static ssize_t
pub_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct ps_pub *p = ipc__priv(ch);
	ssize_t r = (ssize_t)len;

	pthread_mutex_lock(&p->mu);
	int backlog = pub_service(p, p->inprog);
	p->waiting = 0;
	if (p->inprog) {
		p->inprog = backlog;
		r = backlog ? -EINPROGRESS : (ssize_t)len;
	} else if (backlog && !p->drop) {
		p->waiting = 1;
		r = -EAGAIN; /* a detached message is still going out */
	} else if (p->nsubs == 0 && p->hcap == 0) {
		count_drop(p); /* sent to nobody */
	} else {
		struct ps_msg *m = pub_msg(p, buf, len);
		if (m == NULL) {
			r = ipc__err(-ENOMEM, ch->uri, "send: out of memory");
		} else {
			if (pub_fanout(p, m) && !p->drop) {
				p->inprog = p->backlog = 1;
				r = -EINPROGRESS;
			}
			pub_remember(p, m);
			if (m->refs == 1 && p->spare == NULL) {
				p->spare = m; /* nobody kept it: reuse */
			} else {
				msg_unref(m);
			}
		}
	}
	wake_sync(p);
	pthread_mutex_unlock(&p->mu);
	return r;
}

static int
pub_detach(ipc_channel *ch)
{
	struct ps_pub *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	p->inprog = 0; /* the backlogs hold their copies */
	wake_sync(p);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static ssize_t
pub_recv(ipc_channel *ch, void *buf, size_t cap)
{
	(void)buf;
	(void)cap;
	/* The core refuses ipc_recv on a publisher before this. */
	return ipc__err(-EOPNOTSUPP, ch->uri, "recv: this end publishes");
}

static int
pub_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct ps_pub *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	int backlog = pub_service(p, 1);
	pthread_mutex_unlock(&p->mu);
	if ((events & IPC_POLLOUT) && (!backlog || p->drop)) {
		*retry_ms = 0; /* the backlogs went out just now */
	}
	pfd[0].fd = p->ep;
	pfd[0].events = POLLIN;
	return 1;
}

static short
pub_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct ps_pub *p = ipc__priv(ch);
	int backlog;

	(void)pfd;
	(void)npfd;
	pthread_mutex_lock(&p->mu);
	backlog = pub_service(p, 1);
	pthread_mutex_unlock(&p->mu);
	return (events & IPC_POLLOUT) && (p->drop || !backlog) ? IPC_POLLOUT
	                                                       : 0;
}

static int
pub_fd(const ipc_channel *ch)
{
	const struct ps_pub *p = ipc__cpriv(ch);
	return p->ep;
}

/* A subscriber whose end reads as closed (or that sent something: a
 * subscriber never sends) is gone. */
static int
sub_gone(struct ps_sub *s)
{
	struct pollfd pfd[IPC_MAXPFD];
	unsigned char junk[64];
	int retry = -1;
	int n = s->c->drv->pollfds(s->c, IPC_POLLIN, pfd, &retry);

	if (n <= 0 || poll(pfd, (nfds_t)n, 0) <= 0) {
		return n < 0;
	}
	return ipc_recv(s->c, junk, sizeof(junk), IPC_NONBLOCK) != -EAGAIN;
}

static int
pub_subscribers(const ipc_channel *ch)
{
	struct ps_pub *p = ipc__priv((ipc_channel *)ch);
	int n;

	pthread_mutex_lock(&p->mu);
	(void)pub_service(p, 1);
	for (size_t i = 0; i < p->nsubs;) {
		if (sub_gone(p->subs[i])) {
			sub_free(p, i);
		} else {
			i++;
		}
	}
	n = (int)p->nsubs;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static unsigned long long
pub_dropped(const ipc_channel *ch)
{
	const struct ps_pub *p = ipc__cpriv(ch);
	return atomic_load_explicit(&p->dropped, memory_order_relaxed);
}

static void
pub_free(struct ps_pub *p)
{
	while (p->nsubs > 0) {
		sub_free(p, p->nsubs - 1);
	}
	free(p->subs);
	for (unsigned k = 0; k < p->hlen; k++) {
		msg_unref(p->hist[(p->hhead + k) % p->hcap]);
	}
	free(p->hist);
	free(p->spare);
	ipc_listener_close(p->l);
	if (p->ep >= 0) {
		close(p->ep);
	}
	if (p->wake >= 0) {
		close(p->wake);
	}
	if (p->have_mu) {
		pthread_mutex_destroy(&p->mu);
	}
}

/* Close: every backlog goes out first (waiting as a stream's close does,
 * up to the channel's timeout), then each subscriber's channel closes, and
 * it reads -EPIPE after what it was sent. */
static int
pub_close(ipc_channel *ch)
{
	struct ps_pub *p = ipc__priv(ch);
	struct timespec dl;
	int r = 0;

	if (ch->timeout_ms >= 0) {
		ipc__deadline(&dl, ch->timeout_ms);
	}
	pthread_mutex_lock(&p->mu);
	while (pub_service(p, 1)) {
		r = ipc__wait_fd(p->ep, POLLIN,
		                 ch->timeout_ms >= 0 ? &dl : NULL);
		if (r < 0) {
			r = ipc__err(-EIO, ch->uri,
			             "close: a subscriber's backlog could not "
			             "be sent");
			break;
		}
	}
	for (size_t i = 0; i < p->nsubs; i++) {
		ipc_set_timeout(p->subs[i]->c, ch->timeout_ms);
		sub_unregister(p, p->subs[i]);
		ipc_close(p->subs[i]->c);
		p->subs[i]->c = NULL;
		free(p->subs[i]->q);
		free(p->subs[i]);
	}
	p->nsubs = 0;
	pthread_mutex_unlock(&p->mu);
	pub_free(p);
	return r;
}

char *
ipc__pubsub_dup_uri(const ipc_channel *ch, const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s != NULL && d == NULL) {
		ipc__err(-ENOMEM, ch->uri, "local URI: out of memory");
	}
	return d;
}

static char *
pub_local_uri(const ipc_channel *ch)
{
	const struct ps_pub *p = ipc__cpriv(ch);
	return ipc__pubsub_dup_uri(ch, ipc_listener_uri(p->l));
}

static int
pub_open(ipc_channel *ch, const char *inner, const struct ipc_pubsub_opts *o,
         size_t maxmsg)
{
	struct ps_pub *p = ipc__priv(ch);
	struct epoll_event ev = {.events = EPOLLIN};
	int r;

	p->ep = -1;
	p->wake = -1;
	p->drop = o->drop;
	p->hcap = o->history;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		return ipc__err(-ENOMEM, ch->uri, "open: no mutex");
	}
	p->have_mu = 1;
	if (p->hcap > 0 &&
	    (p->hist = calloc(p->hcap, sizeof(*p->hist))) == NULL) {
		r = ipc__err(-ENOMEM, ch->uri, "open: out of memory");
		goto fail;
	}
	r = ipc_listen(&p->l, inner, IPC_NONBLOCK);
	if (r < 0) {
		goto fail;
	}
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->ep < 0 || p->wake < 0 ||
	    epoll_ctl(p->ep, EPOLL_CTL_ADD, ipc_listener_fd(p->l), &ev) < 0 ||
	    epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake, &ev) < 0) {
		r = ipc__errno(-errno, ch->uri, "open: epoll");
		goto fail;
	}
	ch->max_msg = maxmsg - ipc__pubsub_seq_len(p->text);
	if (p->drop) {
		ch->caps &= ~IPC_CAP_RELIABLE;
	}
	return 0;
fail:
	pub_free(p);
	return r;
}

const struct ipc_driver ipc__pubsub_pub = {
        .scheme = "publisher",
        .priv_size = sizeof(struct ps_pub),
        .send = pub_send,
        .detach = pub_detach,
        .recv = pub_recv,
        .close = pub_close,
        .pollfds = pub_pollfds,
        .ready = pub_ready,
        .fd = pub_fd,
        .local_uri = pub_local_uri,
        .subscribers = pub_subscribers,
        .dropped = pub_dropped,
};

int
ipc__pubsub_open(ipc_channel *ch, const struct ipc_driver *real, int flags)
{
	struct ipc_pubsub_opts o;
	char *inner = NULL;
	size_t maxmsg;
	int text;
	int r = parse(ch->uri, real, flags, &o, &inner, &maxmsg, &text);

	if (r == 0 && (flags & IPC_PUBLISH)) {
		struct ps_pub *p = ipc__priv(ch);
		p->text = text;
		r = pub_open(ch, inner, &o, maxmsg);
	} else if (r == 0) {
		r = ipc__pubsub_sub_open(ch, inner, flags, text);
	}
	free(inner);
	return r;
}
