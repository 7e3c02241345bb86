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
 * resend= ms, as after a server's death.  The receiver orders by Ipc-Seq
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

#define IDLEN      16
#define MAXSERVERS 16
#define HDR_ROOM   512 /* bytes of a NATS message kept for headers */

static const char *const storage_choices[] = {"file", "memory", NULL};

static const struct ipc_optspec nats_opts[] = {
        {"js", IPC_OPT_BOOL, 0, 1, NULL,
         "1: JetStream, reliable (default); 0: core NATS"},
        {"replicas", IPC_OPT_UINT, 1, 5, NULL,
         "JetStream replicas of the channel's stream, default 1"},
        {"storage", IPC_OPT_ENUM, 0, 0, storage_choices,
         "file (default) or memory"},
        {"hb", IPC_OPT_UINT, 10, 60000, NULL,
         "heartbeat interval in ms, default 100"},
        {"dead", IPC_OPT_UINT, 50, 3600000, NULL,
         "ms without a heartbeat before the peer counts as dead, default "
         "500"},
        {"window", IPC_OPT_UINT, 1, 65536, NULL,
         "messages in flight and held by the stream per direction, "
         "default 1024"},
        {"resend", IPC_OPT_UINT, 50, 3600000, NULL,
         "ms before an unacknowledged publish is sent again, default 2000"},
        {"ackwait", IPC_OPT_UINT, 100, 3600000, NULL,
         "ms before JetStream redelivers an unacked message, default "
         "10000"},
        {"maxage", IPC_OPT_UINT, 0, 100000000, NULL,
         "seconds a stream left behind by dead ends lives, default 86400"},
        {"optimeout", IPC_OPT_UINT, 10, 600000, NULL,
         "ms for connecting and for JetStream requests, default 5000"},
        {"reconnect", IPC_OPT_UINT, 0, 1000000, NULL,
         "reconnect attempts per server, default 60"},
        {"user", IPC_OPT_STR, 0, 0, NULL, "user name"},
        {"password", IPC_OPT_STR, 0, 0, NULL, "password"},
        {"token", IPC_OPT_STR, 0, 0, NULL, "authentication token"},
        {NULL, 0, 0, 0, NULL, NULL},
};

struct txent {
	natsMsg *m;
	int64_t due; /* when to publish it again unless acked */
	int acked;
};

struct pend {
	uint64_t seq;
	natsMsg *m;
};

struct nats_ch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int have_sync;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub_data, *sub_ack, *sub_hb, *sub_echo, *sub_hello;
	int creator, use_js;
	char id[IDLEN + 1], peer_id[IDLEN + 1];
	char *s_tx, *s_rx, *s_hbtx, *s_hbrx, *s_hello, *ackpfx, *deliver;
	char stream[256], consumer[64];
	char owner[64]; /* the stream's Description: "libipc CREATOR-ID" */
	const char *uri;

	/* receive side */
	natsMsg **q;
	size_t qhead, qn, qcap;
	struct pend *pend;
	size_t npend, pendcap;
	uint64_t rx_next;  /* next Ipc-Seq expected from the peer */
	_Atomic uint64_t rx_taken; /* Ipc-Seq after the last one taken */
	uint64_t rx_credited;      /* rx_taken last told to the peer */
	unsigned long long rx_dups;

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

	/* send side (JetStream: the window of unacked messages) */
	struct txent *ring;
	size_t window;
	uint64_t tx_base, tx_next; /* seqs [tx_base, tx_next) in flight */
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
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
nerr(int err, const char *uri, const char *what, natsStatus s)
{
	const char *t = nats_GetLastError(NULL);
	if (t == NULL || *t == '\0') {
		t = natsStatus_GetText(s);
	}
	return ipc__err(err, uri, "%s: %s", what, t);
}

/* ------------------------------------------------------ the address -- */

/* SUBJECT: tokens of [A-Za-z0-9_-] joined by single dots, 1..200 bytes;
 * no wildcards, no "$" or "_INBOX" roots. */
static int
valid_subject(const char *s)
{
	size_t n = strlen(s), tok = 0;

	if (n == 0 || n > 200 || strncmp(s, "_INBOX", 6) == 0) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (tok == 0) {
				return 0;
			}
			tok = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-')) {
			return 0;
		}
		tok++;
	}
	return tok > 0;
}

/* Split "h:p,h:p" into nats://h:p URLs.  Returns the count or -EINVAL. */
static int
parse_servers(const struct ipc_uri *u, char **urls)
{
	const char *a = u->authority;
	int n = 0;

	if (a == NULL || *a == '\0') {
		return ipc__err(-EINVAL, u->text,
		                "no server: write nats://HOST:PORT/SUBJECT");
	}
	while (*a != '\0') {
		const char *end = strchr(a, ',');
		size_t len = end ? (size_t)(end - a) : strlen(a);
		const char *colon = NULL;
		char *stop;
		unsigned long port;

		if (n == MAXSERVERS) {
			return ipc__err(-EINVAL, u->text,
			                "more than %d servers", MAXSERVERS);
		}
		for (size_t i = 0; i < len; i++) {
			if (a[i] == ':') {
				colon = a + i;
			}
		}
		if (len == 0 || colon == NULL || colon == a ||
		    (a[0] == '[' && colon[-1] != ']')) {
			return ipc__err(-EINVAL, u->text,
			                "server \"%.*s\": want HOST:PORT",
			                (int)len, a);
		}
		errno = 0;
		port = strtoul(colon + 1, &stop, 10);
		if (stop != a + len || colon + 1 == stop || port == 0 ||
		    port > 65535) {
			return ipc__err(-EINVAL, u->text,
			                "server \"%.*s\": bad port", (int)len,
			                a);
		}
		if (asprintf(&urls[n], "nats://%.*s", (int)len, a) < 0) {
			return ipc__err(-ENOMEM, u->text, "out of memory");
		}
		n++;
		a += len;
		if (*a == ',') {
			a++;
			if (*a == '\0') {
				return ipc__err(-EINVAL, u->text,
				                "empty server after ','");
			}
		}
	}
	return n;
}

/* --------------------------------------------------- the eventfds -- */

static int
rx_ready(struct nats_ch *p)
{
	if (p->qn > 0 || p->fail < 0) {
		return 1;
	}
	if (p->peer_gone) {
		return 1;
	}
	if (p->peer_closed) {
		int grace = p->use_js ? 5000 : 500;
		return p->rx_next > p->peer_sent ||
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
	return !p->use_js || (p->tx_next - p->tx_base < p->window &&
	                      p->tx_next - atomic_load(&p->peer_taken) <
	                              p->window);
}

static void
efd_level(int fd, int want, int *set)
{
	uint64_t v = 1;
	if (want && !*set) {
		if (write(fd, &v, sizeof(v)) == sizeof(v)) {
			*set = 1;
		}
	} else if (!want && *set) {
		if (read(fd, &v, sizeof(v)) == sizeof(v)) {
			*set = 0;
		}
	}
}

/* Under mu. */
static void
sync_efd(struct nats_ch *p)
{
	efd_level(p->efd_r, rx_ready(p), &p->r_set);
	efd_level(p->efd_w, tx_ready(p), &p->w_set);
}

/* ------------------------------------------------------- messages -- */

static const char *
hdr(natsMsg *m, const char *key)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK) {
		return NULL;
	}
	return v;
}

static int
hdr_u64(natsMsg *m, const char *key, uint64_t *out)
{
	const char *v = hdr(m, key);
	char *end;

	if (v == NULL || *v < '0' || *v > '9') {
		return 0;
	}
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (*end != '\0' || errno != 0) {
		return 0;
	}
	*out = x;
	return 1;
}

static natsMsg *
new_msg(const char *subj, const char *reply, const void *data, size_t len)
{
	natsMsg *m = NULL;
	if (natsMsg_Create(&m, subj, reply, data, (int)len) != NATS_OK) {
		return NULL;
	}
	return m;
}

/* A control message on our heartbeat subject. */
static void
publish_ctl(struct nats_ch *p, const char *op, uint64_t sent)
{
	natsMsg *m = new_msg(p->s_hbtx, NULL, NULL, 0);
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

static int
q_push(struct nats_ch *p, natsMsg *m)
{
	if (p->qn == p->qcap) {
		size_t nc = p->qcap ? p->qcap * 2 : 64;
		natsMsg **v = malloc(nc * sizeof(*v));
		if (v == NULL) {
			return -1;
		}
		for (size_t i = 0; i < p->qn; i++) {
			v[i] = p->q[(p->qhead + i) % p->qcap];
		}
		free(p->q);
		p->q = v;
		p->qcap = nc;
		p->qhead = 0;
	}
	p->q[(p->qhead + p->qn) % p->qcap] = m;
	p->qn++;
	return 0;
}

/* Move messages waiting in pend that are next in order to the queue. */
static void
pend_drain(struct nats_ch *p)
{
	while (p->npend > 0 && p->pend[0].seq <= p->rx_next) {
		struct pend e = p->pend[0];
		memmove(p->pend, p->pend + 1, (p->npend - 1) * sizeof(*p->pend));
		p->npend--;
		if (e.seq == p->rx_next && q_push(p, e.m) == 0) {
			p->rx_next++;
		} else {
			if (e.seq < p->rx_next) {
				p->rx_dups++;
			}
			natsMsg_Destroy(e.m);
		}
	}
}

/* Keep an out-of-order message; 0 when kept. */
static int
pend_add(struct nats_ch *p, uint64_t seq, natsMsg *m)
{
	size_t i;

	for (i = 0; i < p->npend; i++) {
		if (p->pend[i].seq == seq) {
			return -1; /* a duplicate of one waiting */
		}
		if (p->pend[i].seq > seq) {
			break;
		}
	}
	if (p->npend >= 2 * p->window + 64) {
		return -1; /* beyond the sender's window: a forgery */
	}
	if (p->npend == p->pendcap) {
		size_t nc = p->pendcap ? p->pendcap * 2 : 16;
		struct pend *v = realloc(p->pend, nc * sizeof(*v));
		if (v == NULL) {
			return -1;
		}
		p->pend = v;
		p->pendcap = nc;
	}
	memmove(p->pend + i + 1, p->pend + i, (p->npend - i) * sizeof(*p->pend));
	p->pend[i] = (struct pend){seq, m};
	p->npend++;
	return 0;
}

static void
on_data(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	const char *from = hdr(m, "Ipc-Id");
	uint64_t seq;
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
	} else if (from == NULL || !hdr_u64(m, "Ipc-Seq", &seq)) {
		/* a NATS client that is not libipc: as it comes */
		keep = q_push(p, m) == 0;
	} else if (seq < p->rx_next) {
		p->rx_dups++; /* a redelivery or a resend */
	} else if (!p->use_js) {
		/* core NATS: at most once, a gap is a loss */
		keep = q_push(p, m) == 0;
		if (keep) {
			p->rx_next = seq + 1;
		}
	} else if (seq == p->rx_next) {
		keep = q_push(p, m) == 0;
		if (keep) {
			p->rx_next++;
			pend_drain(p);
		}
	} else {
		keep = pend_add(p, seq, m) == 0;
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
	const char *subj = natsMsg_GetSubject(m);
	const char *d = natsMsg_GetData(m);
	size_t dl = (size_t)natsMsg_GetDataLength(m);
	size_t pl = strlen(p->ackpfx);
	char *end;
	int ok;

	ok = d != NULL && memmem(d, dl, "\"seq\"", 5) != NULL &&
	     memmem(d, dl, "\"error\"", 7) == NULL;
	if (strncmp(subj, p->ackpfx, pl) != 0 || subj[pl] != '.') {
		natsMsg_Destroy(m);
		return;
	}
	unsigned long long seq = strtoull(subj + pl + 1, &end, 10);
	pthread_mutex_lock(&p->mu);
	if (*end == '\0' && seq >= p->tx_base && seq < p->tx_next) {
		struct txent *e = &p->ring[seq % p->window];
		if (ok) {
			e->acked = 1;
		} else if (!e->acked) {
			/* refused: the stream is full (the peer has not read
			 * window= messages yet), or it has no leader just now */
			e->due = now_ms() + 100;
		}
		while (p->tx_base < p->tx_next &&
		       p->ring[p->tx_base % p->window].acked) {
			struct txent *b = &p->ring[p->tx_base % p->window];
			natsMsg_Destroy(b->m);
			*b = (struct txent){0};
			p->tx_base++;
		}
		if (p->tx_base == p->tx_next) {
			pthread_cond_broadcast(&p->cv);
		}
		sync_efd(p);
	}
	pthread_mutex_unlock(&p->mu);
	natsMsg_Destroy(m);
}

static void
on_hb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	const char *from = hdr(m, "Ipc-Id");
	const char *op = hdr(m, "Ipc-Op");
	uint64_t sent = 0;

	if (from == NULL || op == NULL || !atomic_load(&p->peer_here) ||
	    strcmp(from, p->peer_id) != 0) {
		natsMsg_Destroy(m);
		return;
	}
	atomic_store(&p->last_hb, now_ms());
	uint64_t taken;
	if (hdr_u64(m, "Ipc-Taken", &taken) &&
	    taken > atomic_load(&p->peer_taken)) {
		atomic_store(&p->peer_taken, taken);
		pthread_mutex_lock(&p->mu);
		sync_efd(p);
		pthread_mutex_unlock(&p->mu);
	}
	if (strcmp(op, "close") == 0 && hdr_u64(m, "Ipc-Sent", &sent)) {
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
	const char *from = hdr(m, "Ipc-Id");
	uint64_t t;

	if (from != NULL && strcmp(from, p->id) == 0 &&
	    hdr_u64(m, "Ipc-T", &t) && (int64_t)t > atomic_load(&p->echo_pub)) {
		atomic_store(&p->echo_pub, (int64_t)t);
	}
	natsMsg_Destroy(m);
}

/* The creator's rendezvous: an opener asks, the first one is taken. */
static void
on_hello(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_ch *p = arg;
	const char *from = hdr(m, "Ipc-Id");
	const char *op = hdr(m, "Ipc-Op");
	const char *js = hdr(m, "Ipc-Js");
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
	r = new_msg(reply, NULL, NULL, 0);
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

/* Publish (again) one message of the window; under mu. */
static void
tx_publish(struct nats_ch *p, struct txent *e)
{
	natsStatus s = natsConnection_PublishMsg(p->nc, e->m);
	e->due = now_ms() + (s == NATS_OK ? p->resend_ms : 100);
}

/* Publish again what was refused or not acked in time, in order; the
 * stream drops copies it has (Nats-Msg-Id) and the receiver orders. */
static void
resend_due(struct nats_ch *p)
{
	int64_t t = now_ms();

	for (uint64_t s = p->tx_base; s < p->tx_next; s++) {
		struct txent *e = &p->ring[s % p->window];
		if (!e->acked && e->due <= t) {
			tx_publish(p, e);
		}
	}
}

/* The peer stopped beating: in JetStream mode it is gone once its
 * stream holds nothing more for us.  Called without mu. */
static int
peer_drained(struct nats_ch *p)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	jsOptions o;
	int done = 1;

	if (!p->use_js) {
		return 1;
	}
	jsOptions_Init(&o);
	o.Wait = 500;
	if (js_GetConsumerInfo(&ci, p->js, p->stream, p->consumer, &o,
	                       &jerr) == NATS_OK) {
		done = ci->NumPending == 0;
		jsConsumerInfo_Destroy(ci);
	}
	return done;
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
				resend_due(p);
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

static void
make_id(char *out)
{
	unsigned char r[IDLEN / 2];
	FILE *f = fopen("/dev/urandom", "re");
	size_t got = f ? fread(r, 1, sizeof(r), f) : 0;

	if (f) {
		fclose(f);
	}
	if (got != sizeof(r)) {
		uint64_t x = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
		memcpy(r, &x, sizeof(r));
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	}
}

static void
stream_name(char *out, size_t cap, const char *subject)
{
	uint32_t h = 2166136261u;
	size_t n = 0;

	for (const char *c = subject; *c; c++) {
		h = (h ^ (unsigned char)*c) * 16777619u;
	}
	n = (size_t)snprintf(out, cap, "IPC_");
	for (const char *c = subject; *c && n + 12 < cap; c++) {
		out[n++] = *c == '.' ? '_' : *c;
	}
	snprintf(out + n, cap - n, "_%08x", h);
}

static int
subscribe(struct nats_ch *p, natsSubscription **sub, const char *subj,
          natsMsgHandler cb)
{
	natsStatus s = natsConnection_Subscribe(sub, p->nc, subj, cb, p);
	if (s != NATS_OK) {
		return nerr(-EIO, p->uri, "subscribe", s);
	}
	natsSubscription_SetPendingLimits(*sub, -1, -1);
	return 0;
}

static int
make_stream(struct nats_ch *p, const struct ipc_uri *u)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	const char *subs[2];
	natsStatus s;

	/* A stream by this name belongs to no live creator (the probe said
	 * so): a dead one's leftovers. */
	js_DeleteStream(p->js, p->stream, NULL, &jerr);
	jsStreamConfig_Init(&sc);
	subs[0] = p->s_tx;
	subs[1] = p->s_rx;
	sc.Name = p->stream;
	sc.Description = p->owner;
	sc.Subjects = subs;
	sc.SubjectsLen = 2;
	sc.Retention = js_WorkQueuePolicy;
	sc.Storage = ipc__opt_num(u, "storage", 0) ? js_MemoryStorage
	                                            : js_FileStorage;
	sc.Replicas = (int64_t)ipc__opt_num(u, "replicas", 1);
	sc.MaxAge = (int64_t)ipc__opt_num(u, "maxage", 86400) * 1000000000LL;
	sc.Duplicates = 120LL * 1000000000LL;
	jerr = 0;
	s = js_AddStream(&si, p->js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		if (s == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr ||
		    jerr == JSNotEnabledForAccountErr) {
			return ipc__err(-EOPNOTSUPP, u->text,
			                "JetStream is not enabled on the server "
			                "(js=0 for core NATS)");
		}
		return nerr(-EIO, u->text, "creating the JetStream stream", s);
	}
	jsStreamInfo_Destroy(si);
	return 0;
}

static int
make_consumer(struct nats_ch *p, const struct ipc_uri *u)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	jsConsumerConfig_Init(&cc);
	cc.Durable = p->consumer;
	cc.DeliverSubject = p->deliver;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = (int64_t)ipc__opt_num(u, "ackwait", 10000) * 1000000LL;
	cc.MaxAckPending = (int64_t)p->window;
	cc.FilterSubject = p->s_rx;
	s = js_AddConsumer(&ci, p->js, p->stream, &cc, NULL, &jerr);
	if (s != NATS_OK) {
		if (jerr == JSStreamNotFoundErr) {
			return ipc__err(-ECONNREFUSED, u->text,
			                "the creator's stream %s is gone",
			                p->stream);
		}
		return nerr(-EIO, u->text, "creating the JetStream consumer",
		            s);
	}
	jsConsumerInfo_Destroy(ci);
	return 0;
}

/* The opener asks the creator in.  0, or -ECONNREFUSED (nobody serves
 * SUBJECT, or the creator has its peer) and the like. */
static int
hello(struct nats_ch *p, const struct ipc_uri *u, const char *op)
{
	natsMsg *m = new_msg(p->s_hello, NULL, NULL, 0), *r = NULL;
	const char *st, *cid;
	natsStatus s;
	int ret = 0;

	if (m == NULL) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	natsMsgHeader_Set(m, "Ipc-Id", p->id);
	natsMsgHeader_Set(m, "Ipc-Op", op);
	natsMsgHeader_Set(m, "Ipc-Js", p->use_js ? "1" : "0");
	s = natsConnection_RequestMsg(&r, p->nc, m, p->optimeout);
	natsMsg_Destroy(m);
	if (s == NATS_NO_RESPONDERS) {
		return ipc__err(-ECONNREFUSED, u->text,
		                "no creator serves subject %s", p->s_hello);
	}
	if (s == NATS_TIMEOUT) {
		return ipc__err(-ETIMEDOUT, u->text,
		                "no answer on %s within %d ms", p->s_hello,
		                p->optimeout);
	}
	if (s != NATS_OK) {
		return nerr(-EIO, u->text, "hello", s);
	}
	st = hdr(r, "Ipc-Status");
	cid = hdr(r, "Ipc-Id");
	if (st == NULL || cid == NULL || strlen(cid) != IDLEN) {
		ret = ipc__err(-EPROTO, u->text,
		               "malformed answer from the creator");
	} else if (strcmp(op, "probe") == 0) {
		ret = ipc__err(-EEXIST, u->text,
		               "a live creator already serves %s", p->s_hello);
	} else if (strcmp(st, "busy") == 0) {
		ret = ipc__err(-ECONNREFUSED, u->text,
		               "the creator already has its peer");
	} else if (strcmp(st, "js=0") == 0 || strcmp(st, "js=1") == 0) {
		ret = ipc__err(-EINVAL, u->text,
		               "js: the creator was opened with %s", st);
	} else if (strcmp(st, "ok") != 0) {
		ret = ipc__err(-EPROTO, u->text, "the creator says \"%s\"", st);
	} else {
		pthread_mutex_lock(&p->mu);
		memcpy(p->peer_id, cid, IDLEN + 1);
		atomic_store(&p->last_hb, now_ms());
		atomic_store(&p->peer_here, 1);
		pthread_mutex_unlock(&p->mu);
	}
	natsMsg_Destroy(r);
	return ret;
}

static int
connect_server(struct nats_ch *p, const struct ipc_uri *u)
{
	char *urls[MAXSERVERS] = {0};
	natsOptions *o = NULL;
	natsStatus s;
	int n = parse_servers(u, urls), r = 0;

	if (n < 0) {
		goto out;
	}
	s = natsOptions_Create(&o);
	if (s == NATS_OK) {
		s = natsOptions_SetServers(o, (const char **)urls, n);
	}
	if (s == NATS_OK) {
		s = natsOptions_SetNoRandomize(o, true);
	}
	if (s == NATS_OK) {
		s = natsOptions_SetTimeout(o, p->optimeout);
	}
	if (s == NATS_OK) {
		s = natsOptions_SetMaxReconnect(
		        o, (int)ipc__opt_num(u, "reconnect", 60));
	}
	if (s == NATS_OK) {
		s = natsOptions_SetReconnectWait(o, 250);
	}
	if (s == NATS_OK) {
		s = natsOptions_SetPingInterval(o, 2000);
	}
	/* Write each publish at once: libnats's flusher thread otherwise
	 * adds about a millisecond to every message. */
	if (s == NATS_OK) {
		s = natsOptions_SetSendAsap(o, true);
	}
	/* Asynchronous callbacks may run after close: they get no
	 * closure, and the pump polls the connection's state instead. */
	if (s == NATS_OK) {
		s = natsOptions_SetErrorHandler(o, on_error, NULL);
	}
	if (s == NATS_OK && ipc__opt_isset(u, "user")) {
		s = natsOptions_SetUserInfo(o, ipc__opt_str(u, "user", NULL),
		                            ipc__opt_str(u, "password", ""));
	}
	if (s == NATS_OK && ipc__opt_isset(u, "token")) {
		s = natsOptions_SetToken(o, ipc__opt_str(u, "token", NULL));
	}
	if (s != NATS_OK) {
		r = nerr(-EINVAL, u->text, "NATS options", s);
		goto out;
	}
	s = natsConnection_Connect(&p->nc, o);
	if (s == NATS_NO_SERVER) {
		r = ipc__err(-ECONNREFUSED, u->text,
		             "no NATS server answers at %s", u->authority);
	} else if (s != NATS_OK) {
		r = nerr(-ECONNREFUSED, u->text, "connecting", s);
	}
	p->nc = s == NATS_OK ? p->nc : NULL;
out:
	natsOptions_Destroy(o);
	for (int i = 0; i < MAXSERVERS; i++) {
		free(urls[i]);
	}
	return n < 0 ? n : r;
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
	for (size_t i = 0; i < 5; i++) {
		natsSubscription_Destroy(subs[i]);
	}
	jsCtx_Destroy(p->js);
	natsConnection_Destroy(p->nc);
	for (size_t i = 0; i < p->qn; i++) {
		natsMsg_Destroy(p->q[(p->qhead + i) % p->qcap]);
	}
	free(p->q);
	for (size_t i = 0; i < p->npend; i++) {
		natsMsg_Destroy(p->pend[i].m);
	}
	free(p->pend);
	if (p->ring != NULL) {
		for (size_t i = 0; i < p->window; i++) {
			natsMsg_Destroy(p->ring[i].m);
		}
	}
	free(p->ring);
	free(p->s_tx);
	free(p->s_rx);
	free(p->s_hbtx);
	free(p->s_hbrx);
	free(p->s_hello);
	free(p->ackpfx);
	free(p->deliver);
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
names(struct nats_ch *p, const char *subject)
{
	const char *me = p->creator ? "c" : "o", *them = p->creator ? "o" : "c";
	natsInbox *inbox = NULL;

	if (asprintf(&p->s_tx, "%s.%s2%s", subject, me, them) < 0 ||
	    asprintf(&p->s_rx, "%s.%s2%s", subject, them, me) < 0 ||
	    asprintf(&p->s_hbtx, "%s.hb.%s", subject, me) < 0 ||
	    asprintf(&p->s_hbrx, "%s.hb.%s", subject, them) < 0 ||
	    asprintf(&p->s_hello, "%s.hello", subject) < 0) {
		return -ENOMEM;
	}
	if (natsInbox_Create(&inbox) != NATS_OK) {
		return -ENOMEM;
	}
	int r = asprintf(&p->ackpfx, "%s", (char *)inbox);
	natsInbox_Destroy(inbox);
	inbox = NULL;
	if (r < 0 || natsInbox_Create(&inbox) != NATS_OK) {
		return -ENOMEM;
	}
	r = asprintf(&p->deliver, "%s", (char *)inbox);
	natsInbox_Destroy(inbox);
	if (r < 0) {
		return -ENOMEM;
	}
	stream_name(p->stream, sizeof(p->stream), subject);
	snprintf(p->owner, sizeof(p->owner), "libipc %s", p->id);
	snprintf(p->consumer, sizeof(p->consumer), "ipc_%s_%s", me, p->id);
	return 0;
}

static int
nats_open2(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct nats_ch *p = ipc__priv(ch);
	const char *subject = u->path != NULL ? u->path + 1 : "";
	char *ackwild = NULL;
	int r;

	if (u->path == NULL || !valid_subject(subject)) {
		return ipc__err(-EINVAL, u->text,
		                "SUBJECT: want tokens of [A-Za-z0-9_-] joined "
		                "by '.', at most 200 bytes, after the servers");
	}
	if (p->dead_ms <= p->hb_ms) {
		return ipc__err(-EINVAL, u->text,
		                "dead=%d must exceed hb=%d", p->dead_ms,
		                p->hb_ms);
	}
	if (ipc__opt_isset(u, "password") && !ipc__opt_isset(u, "user")) {
		return ipc__err(-EINVAL, u->text, "password: without user=");
	}
	if (!p->use_js &&
	    (ipc__opt_isset(u, "replicas") || ipc__opt_isset(u, "storage") ||
	     ipc__opt_isset(u, "ackwait") || ipc__opt_isset(u, "maxage"))) {
		return ipc__err(-EINVAL, u->text,
		                "replicas, storage, ackwait, maxage: JetStream "
		                "options, but js=0");
	}
	if (names(p, subject) < 0) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	r = connect_server(p, u);
	if (r < 0) {
		return r;
	}
	int mp = (int)natsConnection_GetMaxPayload(p->nc);
	if (mp <= HDR_ROOM) {
		return ipc__err(-EPROTO, u->text, "server max_payload %d", mp);
	}
	p->max_msg = (size_t)(mp - HDR_ROOM);
	ch->max_msg = p->max_msg;
	if (p->use_js) {
		jsOptions jo;
		jsOptions_Init(&jo);
		jo.Wait = p->optimeout;
		if (natsConnection_JetStream(&p->js, p->nc, &jo) != NATS_OK) {
			return ipc__err(-ENOMEM, u->text, "JetStream context");
		}
	}
	if (asprintf(&ackwild, "%s.*", p->ackpfx) < 0) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	r = subscribe(p, &p->sub_ack, ackwild, on_ack);
	free(ackwild);
	if (r == 0) {
		r = subscribe(p, &p->sub_hb, p->s_hbrx, on_hb);
	}
	if (r == 0) {
		r = subscribe(p, &p->sub_echo, p->s_hbtx, on_echo);
	}
	if (r == 0) {
		r = subscribe(p, &p->sub_data, p->use_js ? p->deliver : p->s_rx,
		              on_data);
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
			r = make_stream(p, u);
			if (r == 0) {
				r = make_consumer(p, u);
			}
			if (r < 0) {
				return r;
			}
		}
		r = subscribe(p, &p->sub_hello, p->s_hello, on_hello);
		if (r == 0 &&
		    natsConnection_FlushTimeout(p->nc, p->optimeout) != NATS_OK) {
			r = ipc__err(-ETIMEDOUT, u->text, "flush to the server");
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
	p->rx_next = 1;
	p->rx_taken = 1;
	p->rx_credited = 1;
	p->peer_taken = 1;
	p->tx_base = p->tx_next = 1;
	make_id(p->id);
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
	p->ring = calloc(p->window, sizeof(*p->ring));
	if (p->efd_r < 0 || p->efd_w < 0) {
		r = ipc__errno(-errno, u->text, "eventfd");
	} else if (p->ring == NULL) {
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
		return ipc__err(p->fail, p->uri,
		                "%s: the connection to the NATS servers closed",
		                what);
	}
	if (p->peer_closed) {
		return ipc__err_peer(p->uri, what, IPC_PEER_CLOSED);
	}
	return ipc__err(-EPIPE, p->uri,
	                "%s: the peer died without closing the channel (no "
	                "heartbeat for %d ms)",
	                what, p->dead_ms);
}

static ssize_t
nats_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct nats_ch *p = ipc__priv(ch);
	char num[32], reply[128];
	ssize_t r = (ssize_t)len;
	natsMsg *m;

	pthread_mutex_lock(&p->mu);
	if (p->fail < 0 || p->peer_closed || p->peer_dead) {
		r = peer_end(p, "send");
		goto out;
	}
	if (!tx_ready(p)) {
		r = -EAGAIN;
		goto out;
	}
	uint64_t seq = p->tx_next;
	snprintf(num, sizeof(num), "%" PRIu64, seq);
	snprintf(reply, sizeof(reply), "%s.%" PRIu64, p->ackpfx, seq);
	m = new_msg(p->s_tx, p->use_js ? reply : NULL, buf, len);
	if (m == NULL) {
		r = ipc__err(-ENOMEM, p->uri, "out of memory");
		goto out;
	}
	natsMsgHeader_Set(m, "Ipc-Id", p->id);
	natsMsgHeader_Set(m, "Ipc-Seq", num);
	if (p->use_js) {
		char mid[64];
		snprintf(mid, sizeof(mid), "%s-%" PRIu64, p->id, seq);
		natsMsgHeader_Set(m, "Nats-Msg-Id", mid);
		struct txent *e = &p->ring[seq % p->window];
		e->m = m;
		e->acked = 0;
		tx_publish(p, e); /* a failure is retried by the pump */
		p->tx_next++;
	} else {
		natsStatus s = natsConnection_PublishMsg(p->nc, m);
		natsMsg_Destroy(m);
		if (s == NATS_INSUFFICIENT_BUFFER) {
			r = -EAGAIN;
		} else if (s != NATS_OK) {
			r = nerr(-EIO, p->uri, "publish", s);
		} else {
			p->tx_next++;
		}
	}
out:
	sync_efd(p);
	pthread_mutex_unlock(&p->mu);
	return r;
}

static ssize_t
nats_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct nats_ch *p = ipc__priv(ch);
	ssize_t r;

	pthread_mutex_lock(&p->mu);
	if (p->qn > 0) {
		natsMsg *m = p->q[p->qhead];
		size_t n = (size_t)natsMsg_GetDataLength(m);
		if (n > cap) {
			r = ipc__err_msgsize(p->uri, n, cap);
			goto out;
		}
		if (n > 0) {
			memcpy(buf, natsMsg_GetData(m), n);
		}
		p->qhead = (p->qhead + 1) % p->qcap;
		p->qn--;
		uint64_t seq;
		if (hdr_u64(m, "Ipc-Seq", &seq) &&
		    seq >= atomic_load(&p->rx_taken)) {
			atomic_store(&p->rx_taken, seq + 1);
		}
		natsMsg_Destroy(m);
		if (atomic_load(&p->rx_taken) - p->rx_credited >=
		    (p->window + 3) / 4) {
			p->rx_credited = atomic_load(&p->rx_taken);
			publish_ctl(p, "credit", 0);
		}
		r = (ssize_t)n;
	} else if (rx_ready(p)) {
		r = peer_end(p, "recv");
	} else {
		r = -EAGAIN;
	}
out:
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
	} else if (p->qn == 0 && rx_ready(p)) {
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

/* Delete the channel's stream if it is still this channel's: a creator
 * that came after us on the same subject has a stream by the same name,
 * which is not ours to delete. */
static void
delete_stream(struct nats_ch *p, jsOptions *o)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	int ours = 0;

	snprintf(p->owner, sizeof(p->owner), "libipc %s",
	         p->creator ? p->id : p->peer_id);
	if (js_GetStreamInfo(&si, p->js, p->stream, o, &jerr) == NATS_OK) {
		ours = si->Config != NULL && si->Config->Description != NULL &&
		       strcmp(si->Config->Description, p->owner) == 0;
		jsStreamInfo_Destroy(si);
	}
	if (ours) {
		js_DeleteStream(p->js, p->stream, o, &jerr);
	}
}

/* Wait (bounded) until every message in the window is acked. */
static void
flush_window(struct nats_ch *p, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	pthread_mutex_lock(&p->mu);
	while (p->tx_base < p->tx_next && p->fail == 0 && now_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
}

static int
nats_close(ipc_channel *ch)
{
	struct nats_ch *p = ipc__priv(ch);
	int last, ret = 0;

	if (p->use_js && p->fail == 0) {
		int t = ch->timeout_ms >= 0 && ch->timeout_ms < 10000
		                ? ch->timeout_ms
		                : 10000;
		flush_window(p, t);
	}
	pthread_mutex_lock(&p->mu);
	if (p->use_js && p->tx_base < p->tx_next) {
		ret = ipc__err(-ETIMEDOUT, p->uri,
		               "close: %" PRIu64 " messages not acknowledged "
		               "by JetStream",
		               p->tx_next - p->tx_base);
	}
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_lock(&p->mu);
	publish_ctl(p, "close", p->tx_next - 1);
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
		js_DeleteConsumer(p->js, p->stream, p->consumer, &o, &jerr);
		if (last) {
			delete_stream(p, &o);
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
        .opts = nats_opts,
        .priv_size = sizeof(struct nats_ch),
        .open = nats_open,
        .send = nats_send,
        .recv = nats_recv,
        .close = nats_close,
        .pollfds = nats_pollfds,
        .ready = nats_ready,
        .fd = nats_fd,
};
