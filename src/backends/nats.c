/*
 * nats://HOST:PORT[,HOST:PORT...]/SUBJECT: a channel through a NATS server
 * or cluster, on libnats (cnats).  See docs/nats.md for the user's view.
 *
 * Subjects.  SUBJECT.c2o carries the creator's messages to the opener,
 * SUBJECT.o2c the opener's to the creator: the body of each NATS message
 * is the libipc message itself, and libipc's bookkeeping rides in headers
 * (Ipc-Id: the sending end, Ipc-Seq: its message number, Nats-Msg-Id for
 * JetStream's de-duplication).  SUBJECT.hello is the creator's rendezvous
 * (request/reply); SUBJECT.hb.c and SUBJECT.hb.o carry each end's
 * heartbeats and its close record (Ipc-Op: close, Ipc-Sent: N).
 *
 * Reliable mode (js=1, the default).  The creator makes one JetStream
 * stream for the channel (work-queue retention, both data subjects,
 * replicas=, storage=); each end reads its direction through a durable
 * push consumer of its own with explicit acks, acked when ipc_recv hands
 * the message out.  Sends are JetStream publishes with a reply inbox:
 * each message stays in a window of at most window= messages until its
 * PubAck comes, and is published again (same Nats-Msg-Id, so the stream
 * stores it once) when the ack reports an error or does not come within
 * resend= ms, as after a server's death (that window, the numbering and
 * the fragments are src/core/natsmsg.c).  The receiver orders by Ipc-Seq
 * and drops what it has already had, so redeliveries and resends are
 * neither lost nor doubled.  js=0: core NATS publishes, at most once.
 *
 * Liveness.  A thread per channel ("pump") publishes a heartbeat every
 * hb= ms, resends overdue messages and declares the peer dead after
 * dead= ms without a heartbeat.  libnats delivers on its own threads; the
 * channel's descriptors are two eventfds kept level-triggered under the
 * channel's mutex: one readable while ipc_recv would not block, one while
 * ipc_send would not.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "core/driver.h"
#include "core/natsjs.h"
#include "core/natsmsg.h"

#define IDLEN      IPC_NATS_IDLEN
#define HDR_ROOM   512 /* bytes of a NATS message kept for headers */
#define DEF_MAXMSG (64u << 20)

struct nats_ch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int have_sync;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub_data, *sub_ack, *sub_hb, *sub_echo, *sub_hello;
	int subs_live; /* subscriptions whose handler may still run (mu) */
	int creator, use_js;
	char id[IDLEN + 1], peer_id[IDLEN + 1];
	struct ipc_nats_names n; /* subjects, inboxes, stream, consumer */
	const char *uri;

	/* receive side */
	struct ipc_nats_rxq rq;    /* in order; rq.next: the next Ipc-Seq */
	_Atomic uint64_t rx_taken; /* Ipc-Seq after the last one taken */
	uint64_t rx_credited;      /* rx_taken last told to the peer */

	/* the peer */
	atomic_int peer_here; /* release: peer_id is set */
	int peer_closed, peer_dead, peer_gone;
	uint64_t peer_sent;
	/* Heartbeats update last_hb without the mutex, so that a busy
	 * stream (which holds it often) never delays them into a false
	 * death. */
	_Atomic int64_t last_hb;
	/* Our own heartbeats come back to us too: echo_pub is when the
	 * latest one that did was published.  The peer is dead only when
	 * the server delivered to us something we published dead= ms after
	 * the peer's last sign of life, and that holds for a further hb=
	 * ms (since suspect): a stalled server or a descheduled process
	 * delays both alike and kills nobody. */
	_Atomic int64_t echo_pub;
	int64_t suspect;
	int64_t close_ms;
	int fail; /* sticky: the connection closed for good */

	/* send side: numbering, fragments, the JetStream window */
	struct ipc_nats_tx tx;
	size_t window;
	/* Flow control: the peer's reader took every message before
	 * peer_taken (it says so in its heartbeats and in credit records);
	 * we send up to window= messages beyond that. */
	_Atomic uint64_t peer_taken;

	int efd_r, efd_w, r_set, w_set;
	/* The pump sleeps on pcv under pmu, never under mu, and takes mu
	 * only with trylock: a sender that holds mu in a tight loop must
	 * not hold back the heartbeats. */
	pthread_t pump;
	pthread_mutex_t pmu;
	pthread_cond_t pcv;
	int have_pump, stop;
	int hb_ms, dead_ms, resend_ms, optimeout;
	size_t max_msg;
	struct ipc_nats_rx rx; /* reassembly of fragments */
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --------------------------------------------------- the eventfds -- */

static int
rx_ready(struct nats_ch *p)
{
	if (p->rq.n > 0 || p->rx.frx.ready || p->fail < 0) {
		return 1;
	}
	if (p->peer_gone) {
		return 1;
	}
	if (p->peer_closed) {
		int grace = p->use_js ? 5000 : 500;
		return p->rq.next > p->peer_sent ||
		       now_ms() - p->close_ms > grace;
	}
	return 0;
}

static int
tx_ready(struct nats_ch *p)
{
	if (p->fail < 0 || p->peer_closed || p->peer_gone || p->peer_dead) {
		return 1;
	}
	if (!p->peer_here) {
		return 0;
	}
	return !p->use_js ||
	       (p->tx.next - p->tx.base < p->window &&
	        p->tx.next - atomic_load(&p->peer_taken) < p->window);
}

/* Under mu. */
static void
sync_efd(struct nats_ch *p)
{
	ipc__efd_level(p->efd_r, &p->r_set, rx_ready(p));
	ipc__efd_level(p->efd_w, &p->w_set, tx_ready(p));
}

/* ------------------------------------------------------- messages -- */

/* A control message on our heartbeat subject. */
static void
publish_ctl(struct nats_ch *p, const char *op, uint64_t sent)
{
	natsMsg *m = ipc__nats_msg(p->n.hbtx, NULL, NULL, 0);
	char num[32];

	if (m == NULL) {
		return;
	}
	snprintf(num, sizeof(num), "%" PRIu64, sent);
	natsMsgHeader_Set(m, "Ipc-Id", p->id);
	natsMsgHeader_Set(m, "Ipc-Op", op);
	natsMsgHeader_Set(m, "Ipc-Sent", num);
	snprintf(num, sizeof(num), "%" PRIu64, atomic_load(&p->rx_taken));
	natsMsgHeader_Set(m, "Ipc-Taken", num);
	snprintf(num, sizeof(num), "%" PRId64, now_ms());
	natsMsgHeader_Set(m, "Ipc-T", num);
	natsConnection_PublishMsg(p->nc, m);
	natsMsg_Destroy(m);
}

static void
ack_msg(struct nats_ch *p, natsMsg *m)
{
	const char *r = natsMsg_GetReply(m);
	if (p->use_js && r != NULL && *r != '\0') {
		natsConnection_Publish(p->nc, r, "+ACK", 4);
	}
}

static void
on_data(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	const char *from = ipc__nats_hdr(m, "Ipc-Id");
	uint64_t seq = 0;
	int keep = 0;

	/* Acked on arrival: from here on the message is this process's
	 * (a reader that dies loses what it held, and its channel with
	 * it); flow control is the credit the reader gives the sender. */
	ack_msg(p, m);
	pthread_mutex_lock(&p->mu);
	if (from != NULL && p->peer_here && strcmp(from, p->peer_id) == 0) {
		atomic_store(&p->last_hb, now_ms()); /* data is life too */
	}
	if (from != NULL && p->peer_here && strcmp(from, p->peer_id) != 0) {
		/* an earlier end's leftover: not ours to deliver */
	} else {
		/* From a NATS client that is not libipc (no Ipc-Seq): as
		 * it comes. */
		int has =
		        from != NULL && ipc__nats_hdr_u64(m, "Ipc-Seq", &seq);
		keep = ipc__nats_rxq_put(&p->rq, m, has, seq, p->use_js) == 1;
	}
	if (!keep) {
		natsMsg_Destroy(m);
	}
	sync_efd(p);
	pthread_mutex_unlock(&p->mu);
}

/* A PubAck for seq, at ackpfx.SEQ. */
static void
on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	uint64_t seq;
	int ok;

	if (ipc__nats_ack_parse(p->n.ackpfx, m, &seq, &ok)) {
		pthread_mutex_lock(&p->mu);
		int k = ipc__nats_tx_acked(&p->tx, seq, ok);
		if (k == 1) {
			pthread_cond_broadcast(&p->cv);
		}
		if (k >= 0) {
			sync_efd(p);
		}
		pthread_mutex_unlock(&p->mu);
	}
	natsMsg_Destroy(m);
}

static void
on_hb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	const char *from = ipc__nats_hdr(m, "Ipc-Id");
	const char *op = ipc__nats_hdr(m, "Ipc-Op");
	uint64_t sent = 0;

	if (from == NULL || op == NULL || !atomic_load(&p->peer_here) ||
	    strcmp(from, p->peer_id) != 0) {
		natsMsg_Destroy(m);
		return;
	}
	atomic_store(&p->last_hb, now_ms());
	uint64_t taken;
	if (ipc__nats_hdr_u64(m, "Ipc-Taken", &taken) &&
	    taken > atomic_load(&p->peer_taken)) {
		atomic_store(&p->peer_taken, taken);
		pthread_mutex_lock(&p->mu);
		sync_efd(p);
		pthread_mutex_unlock(&p->mu);
	}
	if (strcmp(op, "close") == 0 &&
	    ipc__nats_hdr_u64(m, "Ipc-Sent", &sent)) {
		pthread_mutex_lock(&p->mu);
		if (!p->peer_closed) {
			p->peer_closed = 1;
			p->peer_sent = sent;
			p->close_ms = now_ms();
		}
		sync_efd(p);
		pthread_mutex_unlock(&p->mu);
	}
	natsMsg_Destroy(m);
}

/* Our own heartbeat, back from the server. */
static void
on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	const char *from = ipc__nats_hdr(m, "Ipc-Id");
	uint64_t t;

	if (from != NULL && strcmp(from, p->id) == 0 &&
	    ipc__nats_hdr_u64(m, "Ipc-T", &t) &&
	    (int64_t)t > atomic_load(&p->echo_pub)) {
		atomic_store(&p->echo_pub, (int64_t)t);
	}
	natsMsg_Destroy(m);
}

/* The creator's rendezvous: an opener asks, the first one is taken. */
static void
on_hello(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	const char *from = ipc__nats_hdr(m, "Ipc-Id");
	const char *op = ipc__nats_hdr(m, "Ipc-Op");
	const char *js = ipc__nats_hdr(m, "Ipc-Js");
	const char *reply = natsMsg_GetReply(m);
	const char *status = "ok";
	natsMsg *r;

	if (reply == NULL || *reply == '\0') {
		natsMsg_Destroy(m);
		return;
	}
	pthread_mutex_lock(&p->mu);
	if (op != NULL && strcmp(op, "probe") == 0) {
		status = "exists";
	} else if (from == NULL || strlen(from) != IDLEN || js == NULL) {
		status = "malformed";
	} else if ((js[0] == '1') != (p->use_js != 0)) {
		status = p->use_js ? "js=1" : "js=0";
	} else if (p->peer_here && strcmp(from, p->peer_id) != 0) {
		status = "busy";
	} else if (!p->peer_here) {
		memcpy(p->peer_id, from, IDLEN + 1);
		atomic_store(&p->last_hb, now_ms());
		atomic_store(&p->peer_here, 1);
		sync_efd(p);
	}
	pthread_mutex_unlock(&p->mu);
	r = ipc__nats_msg(reply, NULL, NULL, 0);
	if (r != NULL) {
		natsMsgHeader_Set(r, "Ipc-Id", p->id);
		natsMsgHeader_Set(r, "Ipc-Status", status);
		natsConnection_PublishMsg(nc, r);
		natsMsg_Destroy(r);
	}
	natsMsg_Destroy(m);
}

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *arg)
{
	/* slow consumers and the like: libnats would print them */
}

/* ---------------------------------------------------------- pump -- */

/* The peer stopped beating: in JetStream mode it is gone once its
 * stream holds nothing more for us.  Called without mu. */
static int
peer_drained(struct nats_ch *p)
{
	return !p->use_js ||
	       ipc__nats_pending(p->js, p->n.stream, p->n.consumer) == 0;
}

static void
check_life(struct nats_ch *p)
{
	int64_t t = now_ms();

	if (atomic_load(&p->echo_pub) - atomic_load(&p->last_hb) <=
	    p->dead_ms) {
		p->suspect = 0;
	} else if (p->suspect == 0) {
		p->suspect = t;
	} else if (t - p->suspect >= p->hb_ms) {
		p->peer_dead = 1;
	}
}

static void *
pump_main(void *arg)
{
	struct nats_ch *p = arg;
	int64_t next_hb = 0;

	pthread_mutex_lock(&p->pmu);
	while (!p->stop) {
		struct timespec ts;
		int64_t t = now_ms();

		pthread_mutex_unlock(&p->pmu);
		if (t >= next_hb) {
			publish_ctl(p, "hb", 0);
			next_hb = t + p->hb_ms;
		}
		if (pthread_mutex_trylock(&p->mu) == 0) {
			if (p->fail == 0 && natsConnection_IsClosed(p->nc)) {
				p->fail = -ECONNRESET; /* reconnects ran out */
			}
			if (p->use_js) {
				ipc__nats_tx_resend(&p->tx);
			}
			if (atomic_load(&p->peer_here) && !p->peer_closed &&
			    !p->peer_dead) {
				check_life(p);
			}
			if (p->peer_dead && !p->peer_gone) {
				pthread_mutex_unlock(&p->mu);
				int d = peer_drained(p);
				pthread_mutex_lock(&p->mu);
				p->peer_gone = d;
			}
			sync_efd(p);
			pthread_mutex_unlock(&p->mu);
		}
		pthread_mutex_lock(&p->pmu);
		if (p->stop) {
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->pcv, &p->pmu, &ts);
	}
	pthread_mutex_unlock(&p->pmu);
	return NULL;
}

/* ---------------------------------------------------- open, close -- */

/* Wait on cv (mu held) for a change, at most 20 ms. */
static void
cv_wait_slice(struct nats_ch *p)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += 20 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

static void
sub_done(void *arg)
{
	struct nats_ch *p = arg;

	pthread_mutex_lock(&p->mu);
	p->subs_live--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static int
subscribe(struct nats_ch *p, natsSubscription **sub, const char *subj,
          natsMsgHandler cb)
{
	natsStatus s = natsConnection_Subscribe(sub, p->nc, subj, cb, p);
	if (s != NATS_OK) {
		return ipc__nats_err(-EIO, p->uri, "subscribe", s);
	}
	natsSubscription_SetPendingLimits(*sub, -1, -1);
	/* Told when its handler has returned for the last time: teardown
	 * waits for that before it frees what the handlers use. */
	if (natsSubscription_SetOnCompleteCB(*sub, sub_done, p) == NATS_OK) {
		pthread_mutex_lock(&p->mu);
		p->subs_live++;
		pthread_mutex_unlock(&p->mu);
	}
	return 0;
}

static int
make_consumer(struct nats_ch *p, const struct ipc_uri *u)
{
	return ipc__nats_make_consumer(p->js, u, p->n.stream, p->n.consumer,
	                               p->n.deliver, p->n.rx, p->window);
}

/* The opener asks the creator in (op "hello"), or a creator asks whether
 * another serves the subject ("probe"). */
static int
hello(struct nats_ch *p, const struct ipc_uri *u, const char *op)
{
	char cid[IDLEN + 1];
	int r = ipc__nats_hello(p->nc, u, p->n.hello, p->id, p->use_js, op,
	                        p->optimeout, cid);

	if (r == 0) {
		pthread_mutex_lock(&p->mu);
		memcpy(p->peer_id, cid, IDLEN + 1);
		atomic_store(&p->last_hb, now_ms());
		atomic_store(&p->peer_here, 1);
		pthread_mutex_unlock(&p->mu);
	}
	return r;
}

static void
teardown(struct nats_ch *p)
{
	if (p->have_pump) {
		pthread_mutex_lock(&p->pmu);
		p->stop = 1;
		pthread_cond_broadcast(&p->pcv);
		pthread_mutex_unlock(&p->pmu);
		pthread_join(p->pump, NULL);
		p->have_pump = 0;
	}
	natsSubscription *subs[] = {p->sub_data, p->sub_ack, p->sub_hb,
	                            p->sub_echo, p->sub_hello};
	for (size_t i = 0; i < 5; i++) {
		if (subs[i] != NULL) {
			natsSubscription_Unsubscribe(subs[i]);
		}
	}
	if (p->nc != NULL) {
		natsConnection_Close(p->nc);
	}
	/* A handler running on libnats' thread reads this channel: wait
	 * until every one has returned (bounded: 5 s). */
	if (p->have_sync) {
		int64_t end = now_ms() + 5000;
		pthread_mutex_lock(&p->mu);
		while (p->subs_live > 0 && now_ms() < end) {
			cv_wait_slice(p);
		}
		pthread_mutex_unlock(&p->mu);
	}
	for (size_t i = 0; i < 5; i++) {
		natsSubscription_Destroy(subs[i]);
	}
	jsCtx_Destroy(p->js);
	natsConnection_Destroy(p->nc);
	ipc__nats_rxq_fini(&p->rq);
	ipc__nats_tx_fini(&p->tx);
	ipc__nats_rx_fini(&p->rx);
	ipc__nats_names_fini(&p->n);
	if (p->efd_r >= 0) {
		close(p->efd_r);
	}
	if (p->efd_w >= 0) {
		close(p->efd_w);
	}
	if (p->have_sync) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->pcv);
		pthread_mutex_destroy(&p->pmu);
	}
}

static int
nats_open2(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct nats_ch *p = ipc__priv(ch);
	const char *subject = u->path != NULL ? u->path + 1 : "";
	char *ackwild = NULL;
	int r;

	r = ipc__nats_check(u, p->use_js, p->hb_ms, p->dead_ms);
	if (r < 0) {
		return r;
	}
	if (ipc__nats_names(&p->n, subject, p->creator, p->id) < 0) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	r = ipc__nats_connect(&p->nc, u, p->optimeout, on_error);
	if (r < 0) {
		return r;
	}
	int mp = (int)natsConnection_GetMaxPayload(p->nc);
	if (mp <= HDR_ROOM) {
		return ipc__err(-EPROTO, u->text, "server max_payload %d", mp);
	}
	p->max_msg = (size_t)ipc__opt_num(u, "maxmsg", DEF_MAXMSG);
	if (p->max_msg < (size_t)(mp - HDR_ROOM)) {
		p->max_msg = (size_t)(mp - HDR_ROOM);
	}
	ch->max_msg = p->max_msg;
	p->rx.max_msg = p->max_msg;
	p->tx.nc = p->nc;
	p->tx.subj = p->n.tx;
	p->tx.ackpfx = p->n.ackpfx;
	if (ipc__nats_tx_unit(&p->tx, (size_t)(mp - HDR_ROOM)) < 0) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	if (p->use_js) {
		jsOptions jo;
		jsOptions_Init(&jo);
		jo.Wait = p->optimeout;
		if (natsConnection_JetStream(&p->js, p->nc, &jo) != NATS_OK) {
			return ipc__err(-ENOMEM, u->text, "JetStream context");
		}
	}
	if (asprintf(&ackwild, "%s.*", p->n.ackpfx) < 0) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	r = subscribe(p, &p->sub_ack, ackwild, on_ack);
	free(ackwild);
	if (r == 0) {
		r = subscribe(p, &p->sub_hb, p->n.hbrx, on_hb);
	}
	if (r == 0) {
		r = subscribe(p, &p->sub_echo, p->n.hbtx, on_echo);
	}
	if (r == 0) {
		r = subscribe(p, &p->sub_data,
		              p->use_js ? p->n.deliver : p->n.rx, on_data);
	}
	if (r < 0) {
		return r;
	}
	if (p->creator) {
		r = hello(p, u, "probe");
		if (r != -ECONNREFUSED) {
			return r < 0 ? r : -EIO;
		}
		if (p->use_js) {
			r = ipc__nats_make_stream(p->js, u, p->n.stream,
			                          p->n.owner, p->n.tx,
			                          p->n.rx);
			if (r == 0) {
				r = make_consumer(p, u);
			}
			if (r < 0) {
				return r;
			}
		}
		r = subscribe(p, &p->sub_hello, p->n.hello, on_hello);
		if (r == 0 && natsConnection_FlushTimeout(
		                      p->nc, p->optimeout) != NATS_OK) {
			r = ipc__err(-ETIMEDOUT, u->text,
			             "flush to the server");
		}
	} else {
		r = hello(p, u, "hello");
		if (r == 0 && p->use_js) {
			r = make_consumer(p, u);
		}
	}
	if (r < 0) {
		return r;
	}
	r = pthread_create(&p->pump, NULL, pump_main, p);
	if (r != 0) {
		return ipc__errno(-r, u->text, "pthread_create");
	}
	p->have_pump = 1;
	return 0;
}

static int
nats_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct nats_ch *p = ipc__priv(ch);
	int r;

	p->efd_r = p->efd_w = -1;
	p->uri = ch->uri;
	p->creator = (flags & IPC_CREATE) != 0;
	p->use_js = (int)ipc__opt_num(u, "js", 1);
	p->hb_ms = (int)ipc__opt_num(u, "hb", 100);
	p->dead_ms = (int)ipc__opt_num(u, "dead", 500);
	p->resend_ms = (int)ipc__opt_num(u, "resend", 2000);
	p->optimeout = (int)ipc__opt_num(u, "optimeout", 5000);
	p->window = (size_t)ipc__opt_num(u, "window", 1024);
	p->rq.window = p->window;
	p->rq.next = 1;
	p->rx_taken = 1;
	p->rx_credited = 1;
	p->peer_taken = 1;
	p->tx.uri = p->rx.uri = ch->uri;
	p->tx.id = p->id;
	p->tx.use_js = p->rx.use_js = p->use_js;
	p->tx.resend_ms = p->resend_ms;
	ipc__nats_make_id(p->id);
	if (!p->use_js) {
		ch->caps &= ~IPC_CAP_RELIABLE;
	}
	r = pthread_mutex_init(&p->mu, NULL);
	if (r != 0) {
		return ipc__errno(-r, u->text, "pthread_mutex_init");
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&p->cv, &ca);
	if (r == 0) {
		r = pthread_cond_init(&p->pcv, &ca);
		if (r != 0) {
			pthread_cond_destroy(&p->cv);
		}
	}
	pthread_condattr_destroy(&ca);
	if (r == 0) {
		r = pthread_mutex_init(&p->pmu, NULL);
		if (r != 0) {
			pthread_cond_destroy(&p->cv);
			pthread_cond_destroy(&p->pcv);
		}
	}
	if (r != 0) {
		pthread_mutex_destroy(&p->mu);
		return ipc__errno(-r, u->text, "pthread_cond_init");
	}
	p->have_sync = 1;
	p->efd_r = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->efd_w = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd_r < 0 || p->efd_w < 0) {
		r = ipc__errno(-errno, u->text, "eventfd");
	} else if (ipc__nats_tx_init(&p->tx, p->window) < 0) {
		r = ipc__err(-ENOMEM, u->text, "out of memory");
	} else {
		r = nats_open2(ch, u, flags);
	}
	if (r < 0) {
		teardown(p);
		return r;
	}
	pthread_mutex_lock(&p->mu);
	sync_efd(p);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static ssize_t
peer_end(struct nats_ch *p, const char *what)
{
	if (p->fail < 0) {
		return ipc__err(
		        p->fail, p->uri,
		        "%s: the connection to the NATS servers closed", what);
	}
	if (p->peer_closed) {
		return ipc__err_peer(p->uri, what, IPC_PEER_CLOSED);
	}
	return ipc__err(-EPIPE, p->uri,
	                "%s: the peer died without closing the channel (no "
	                "heartbeat for %d ms)",
	                what, p->dead_ms);
}

static int
tx_ready_cb(void *arg)
{
	return tx_ready(arg);
}

/* Send fragments of the message in progress while the window allows.
 * 1: all out; 0: the window is full; <0: an error.  Under mu. */
static int
frag_pump(struct nats_ch *p)
{
	return ipc__nats_tx_frags(&p->tx, tx_ready_cb, p);
}

static ssize_t
nats_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct nats_ch *p = ipc__priv(ch);
	ssize_t r = (ssize_t)len;

	pthread_mutex_lock(&p->mu);
	if (p->fail < 0 || p->peer_closed || p->peer_dead) {
		ipc__frag_tx_done(&p->tx.ftx);
		r = peer_end(p, "send");
		goto out;
	}
	if (p->tx.ftx.active && !ipc__frag_tx_same(&p->tx.ftx, buf, len)) {
		/* The rest of a detached message goes first. */
		int k = frag_pump(p);
		if (k <= 0) {
			r = k < 0 ? k : -EAGAIN;
			goto out;
		}
	}
	if (p->tx.ftx.active) {
		/* The core calls again with the message in progress. */
		int k = frag_pump(p);
		r = k < 0 ? k : k == 0 ? -EINPROGRESS : (ssize_t)len;
		goto out;
	}
	if (!tx_ready(p)) {
		r = -EAGAIN;
		goto out;
	}
	if (len <= p->tx.unit) {
		int k = ipc__nats_tx_publish(&p->tx, buf, len, NULL);
		r = k < 0 ? k : (ssize_t)len;
		goto out;
	}
	ipc__frag_tx_start(&p->tx.ftx, buf, len);
	int k = frag_pump(p);
	r = k < 0 ? k : k == 0 ? -EINPROGRESS : (ssize_t)len;
out:
	sync_efd(p);
	pthread_mutex_unlock(&p->mu);
	return r;
}

/* The caller cannot wait for the rest of a fragmented message: keep a
 * copy, sent by later calls (and by close). */
static int
nats_detach(ipc_channel *ch)
{
	struct nats_ch *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	int r = ipc__frag_tx_detach(&p->tx.ftx);
	pthread_mutex_unlock(&p->mu);
	return r < 0 ? ipc__err(r, p->uri, "out of memory") : 0;
}

/* The message m was taken: credit for the sender. */
static void
taken(void *arg, natsMsg *m)
{
	struct nats_ch *p = arg;
	uint64_t seq;

	if (ipc__nats_hdr_u64(m, "Ipc-Seq", &seq) &&
	    seq >= atomic_load(&p->rx_taken)) {
		atomic_store(&p->rx_taken, seq + 1);
	}
	if (atomic_load(&p->rx_taken) - p->rx_credited >=
	    (p->window + 3) / 4) {
		p->rx_credited = atomic_load(&p->rx_taken);
		publish_ctl(p, "credit", 0);
	}
}

static ssize_t
recv_locked(struct nats_ch *p, void *buf, size_t cap)
{
	ssize_t r = ipc__nats_rx_take(&p->rx, &p->rq, buf, cap, taken, p);

	if (r != -EAGAIN) {
		return r;
	}
	if (rx_ready(p)) {
		ipc__frag_rx_drop(&p->rx.frx);
		return peer_end(p, "recv");
	}
	return -EAGAIN;
}

static ssize_t
nats_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct nats_ch *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	ssize_t r = recv_locked(p, buf, cap);
	sync_efd(p);
	pthread_mutex_unlock(&p->mu);
	return r;
}

static int
nats_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct nats_ch *p = ipc__priv(ch);
	int n = 0;

	if (events & IPC_POLLIN) {
		pfd[n++] = (struct pollfd){.fd = p->efd_r, .events = POLLIN};
	}
	if (events & IPC_POLLOUT) {
		pfd[n++] = (struct pollfd){.fd = p->efd_w, .events = POLLIN};
	}
	return n;
}

static short
nats_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct nats_ch *p = ipc__priv(ch);
	short rev = 0;

	pthread_mutex_lock(&p->mu);
	if ((events & IPC_POLLIN) && rx_ready(p)) {
		rev |= IPC_POLLIN;
	}
	if ((events & IPC_POLLOUT) && tx_ready(p)) {
		rev |= IPC_POLLOUT;
	}
	if (p->fail < 0) {
		rev |= IPC_POLLERR;
	} else if (p->rq.n == 0 && !p->rx.frx.ready && rx_ready(p)) {
		rev |= IPC_POLLHUP;
	}
	pthread_mutex_unlock(&p->mu);
	return rev;
}

static int
nats_fd(const ipc_channel *ch)
{
	const struct nats_ch *p = ipc__cpriv(ch);
	return p->efd_r;
}

/* Wait (bounded) until every message in the window is acked. */
static void
flush_window(struct nats_ch *p, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	pthread_mutex_lock(&p->mu);
	while (p->tx.base < p->tx.next && p->fail == 0 && now_ms() < end) {
		cv_wait_slice(p);
	}
	pthread_mutex_unlock(&p->mu);
}

static int
nats_close(ipc_channel *ch)
{
	struct nats_ch *p = ipc__priv(ch);
	int last, ret = 0;

	int t = ch->timeout_ms >= 0 && ch->timeout_ms < 10000 ? ch->timeout_ms
	                                                      : 10000;
	/* The rest of a detached fragmented message, as the window lets. */
	int64_t fend = now_ms() + t;
	pthread_mutex_lock(&p->mu);
	while (p->tx.ftx.active && p->fail == 0 && !p->peer_closed &&
	       !p->peer_dead && frag_pump(p) == 0 && now_ms() < fend) {
		pthread_mutex_unlock(&p->mu);
		usleep(10000);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	if (p->use_js && p->fail == 0) {
		flush_window(p, t);
	}
	pthread_mutex_lock(&p->mu);
	if (p->use_js && p->tx.base < p->tx.next) {
		ret = ipc__err(-ETIMEDOUT, p->uri,
		               "close: %" PRIu64 " messages not acknowledged "
		               "by JetStream",
		               p->tx.next - p->tx.base);
	}
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_lock(&p->mu);
	publish_ctl(p, "close", p->tx.next - 1);
	pthread_mutex_unlock(&p->mu);
	natsConnection_FlushTimeout(p->nc, 1000);
	if (p->use_js && p->fail == 0) {
		jsErrCode jerr = 0;
		jsOptions o;
		jsOptions_Init(&o);
		o.Wait = 1000;
		/* A peer that closes with us may not have seen our close:
		 * give its record a moment, so that one of us deletes. */
		pthread_mutex_lock(&p->mu);
		if (p->peer_here && !p->peer_closed && !p->peer_gone) {
			int64_t end = now_ms() + 100;
			while (!p->peer_closed && now_ms() < end) {
				pthread_mutex_unlock(&p->mu);
				usleep(10000);
				pthread_mutex_lock(&p->mu);
			}
		}
		last = !p->peer_here || p->peer_closed || p->peer_gone ||
		       p->peer_dead;
		pthread_mutex_unlock(&p->mu);
		js_DeleteConsumer(p->js, p->n.stream, p->n.consumer, &o,
		                  &jerr);
		if (last) {
			snprintf(p->n.owner, sizeof(p->n.owner), "libipc %s",
			         p->creator ? p->id : p->peer_id);
			ipc__nats_delete_stream(p->js, p->n.stream, p->n.owner,
			                        &o);
		}
	}
	teardown(p);
	return ret;
}

const struct ipc_driver ipc_driver_nats = {
        .scheme = "nats",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE |
                IPC_CAP_CROSSHOST,
        .addr = IPC_ADDR_CUSTOM,
        .opts = ipc__nats_opts,
        .priv_size = sizeof(struct nats_ch),
        .open = nats_open,
        .send = nats_send,
        .detach = nats_detach,
        .recv = nats_recv,
        .close = nats_close,
        .pollfds = nats_pollfds,
        .ready = nats_ready,
        .fd = nats_fd,
};
