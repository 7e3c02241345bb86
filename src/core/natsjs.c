/*
 * The NATS side of nats:// (src/backends/nats.c): the address (servers,
 * subject), connecting, headers, JetStream streams and consumers, and the
 * receive queue that puts a direction's messages back in order (Ipc-Seq)
 * and drops what was already had.  No channel state besides the queue.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natsjs.h"

#define MAXSERVERS 16

static const char *const storage_choices[] = {"file", "memory", NULL};

const struct ipc_optspec ipc__nats_opts[] = {
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
        {"maxmsg", IPC_OPT_SIZE, 1u << 20, 1u << 30, NULL,
         "largest message, 1M..1G, default 64M: longer than the server's "
         "max_payload goes in fragments"},
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

int
ipc__nats_err(int err, const char *uri, const char *what, natsStatus s)
{
	const char *t = nats_GetLastError(NULL);
	if (t == NULL || *t == '\0') {
		t = natsStatus_GetText(s);
	}
	return ipc__err(err, uri, "%s: %s", what, t);
}

/* SUBJECT: tokens of [A-Za-z0-9_-] joined by single dots, 1..200 bytes;
 * no wildcards, no "$" or "_INBOX" roots. */
int
ipc__nats_subject_ok(const char *s)
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

const char *
ipc__nats_hdr(natsMsg *m, const char *key)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK) {
		return NULL;
	}
	return v;
}

int
ipc__nats_hdr_u64(natsMsg *m, const char *key, uint64_t *out)
{
	const char *v = ipc__nats_hdr(m, key);
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

natsMsg *
ipc__nats_msg(const char *subj, const char *reply, const void *data,
              size_t len)
{
	natsMsg *m = NULL;
	if (natsMsg_Create(&m, subj, reply, data, (int)len) != NATS_OK) {
		return NULL;
	}
	return m;
}

void
ipc__nats_make_id(char *out)
{
	unsigned char r[IPC_NATS_IDLEN / 2];
	FILE *f = fopen("/dev/urandom", "re");
	size_t got = f ? fread(r, 1, sizeof(r), f) : 0;

	if (f) {
		fclose(f);
	}
	if (got != sizeof(r)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		memcpy(r, &x, sizeof(r));
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	}
}

void
ipc__nats_stream_name(char *out, size_t cap, const char *subject)
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

int
ipc__nats_make_stream(jsCtx *js, const struct ipc_uri *u, const char *name,
                      const char *owner, const char *subj1, const char *subj2)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	const char *subs[2];
	natsStatus s;

	/* A stream by this name belongs to no live creator (the probe said
	 * so): a dead one's leftovers. */
	js_DeleteStream(js, name, NULL, &jerr);
	jsStreamConfig_Init(&sc);
	subs[0] = subj1;
	subs[1] = subj2;
	sc.Name = name;
	sc.Description = owner;
	sc.Subjects = subs;
	sc.SubjectsLen = 2;
	sc.Retention = js_WorkQueuePolicy;
	sc.Storage = ipc__opt_num(u, "storage", 0) ? js_MemoryStorage
	                                           : js_FileStorage;
	sc.Replicas = (int64_t)ipc__opt_num(u, "replicas", 1);
	sc.MaxAge = (int64_t)ipc__opt_num(u, "maxage", 86400) * 1000000000LL;
	sc.Duplicates = 120LL * 1000000000LL;
	jerr = 0;
	s = js_AddStream(&si, js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		if (s == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr ||
		    jerr == JSNotEnabledForAccountErr) {
			return ipc__err(
			        -EOPNOTSUPP, u->text,
			        "JetStream is not enabled on the server "
			        "(js=0 for core NATS)");
		}
		return ipc__nats_err(-EIO, u->text,
		                     "creating the JetStream stream", s);
	}
	jsStreamInfo_Destroy(si);
	return 0;
}

int
ipc__nats_names(struct ipc_nats_names *n, const char *subject, int creator,
                const char *id)
{
	const char *me = creator ? "c" : "o", *them = creator ? "o" : "c";
	natsInbox *inbox = NULL;

	if (asprintf(&n->tx, "%s.%s2%s", subject, me, them) < 0 ||
	    asprintf(&n->rx, "%s.%s2%s", subject, them, me) < 0 ||
	    asprintf(&n->hbtx, "%s.hb.%s", subject, me) < 0 ||
	    asprintf(&n->hbrx, "%s.hb.%s", subject, them) < 0 ||
	    asprintf(&n->hello, "%s.hello", subject) < 0) {
		return -ENOMEM;
	}
	if (natsInbox_Create(&inbox) != NATS_OK) {
		return -ENOMEM;
	}
	int r = asprintf(&n->ackpfx, "%s", (char *)inbox);
	natsInbox_Destroy(inbox);
	inbox = NULL;
	if (r < 0 || natsInbox_Create(&inbox) != NATS_OK) {
		return -ENOMEM;
	}
	r = asprintf(&n->deliver, "%s", (char *)inbox);
	natsInbox_Destroy(inbox);
	if (r < 0) {
		return -ENOMEM;
	}
	ipc__nats_stream_name(n->stream, sizeof(n->stream), subject);
	snprintf(n->owner, sizeof(n->owner), "libipc %s", id);
	snprintf(n->consumer, sizeof(n->consumer), "ipc_%s_%s", me, id);
	return 0;
}

void
ipc__nats_names_fini(struct ipc_nats_names *n)
{
	free(n->tx);
	free(n->rx);
	free(n->hbtx);
	free(n->hbrx);
	free(n->hello);
	free(n->ackpfx);
	free(n->deliver);
}

int
ipc__nats_check(const struct ipc_uri *u, int use_js, int hb_ms, int dead_ms)
{
	if (u->path == NULL || !ipc__nats_subject_ok(u->path + 1)) {
		return ipc__err(
		        -EINVAL, u->text,
		        "SUBJECT: want tokens of [A-Za-z0-9_-] joined "
		        "by '.', at most 200 bytes, after the servers");
	}
	if (dead_ms <= hb_ms) {
		return ipc__err(-EINVAL, u->text, "dead=%d must exceed hb=%d",
		                dead_ms, hb_ms);
	}
	if (ipc__opt_isset(u, "password") && !ipc__opt_isset(u, "user")) {
		return ipc__err(-EINVAL, u->text, "password: without user=");
	}
	if (!use_js &&
	    (ipc__opt_isset(u, "replicas") || ipc__opt_isset(u, "storage") ||
	     ipc__opt_isset(u, "ackwait") || ipc__opt_isset(u, "maxage"))) {
		return ipc__err(
		        -EINVAL, u->text,
		        "replicas, storage, ackwait, maxage: JetStream "
		        "options, but js=0");
	}
	return 0;
}

uint64_t
ipc__nats_pending(jsCtx *js, const char *stream, const char *consumer)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	jsOptions o;
	uint64_t n = 0;

	jsOptions_Init(&o);
	o.Wait = 500;
	if (js_GetConsumerInfo(&ci, js, stream, consumer, &o, &jerr) ==
	    NATS_OK) {
		n = ci->NumPending;
		jsConsumerInfo_Destroy(ci);
	}
	return n;
}

int
ipc__nats_make_consumer(jsCtx *js, const struct ipc_uri *u, const char *stream,
                        const char *durable, const char *deliver,
                        const char *filter, size_t window)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	jsConsumerConfig_Init(&cc);
	cc.Durable = durable;
	cc.DeliverSubject = deliver;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = (int64_t)ipc__opt_num(u, "ackwait", 10000) * 1000000LL;
	cc.MaxAckPending = (int64_t)window;
	cc.FilterSubject = filter;
	s = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr);
	if (s != NATS_OK) {
		if (jerr == JSStreamNotFoundErr) {
			return ipc__err(-ECONNREFUSED, u->text,
			                "the creator's stream %s is gone",
			                stream);
		}
		return ipc__nats_err(-EIO, u->text,
		                     "creating the JetStream consumer", s);
	}
	jsConsumerInfo_Destroy(ci);
	return 0;
}

int
ipc__nats_connect(natsConnection **nc, const struct ipc_uri *u, int optimeout,
                  natsErrHandler on_error)
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
		s = natsOptions_SetTimeout(o, optimeout);
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
	 * closure (the caller polls the connection's state instead). */
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
		r = ipc__nats_err(-EINVAL, u->text, "NATS options", s);
		goto out;
	}
	s = natsConnection_Connect(nc, o);
	if (s == NATS_NO_SERVER) {
		r = ipc__err(-ECONNREFUSED, u->text,
		             "no NATS server answers at %s", u->authority);
	} else if (s != NATS_OK) {
		r = ipc__nats_err(-ECONNREFUSED, u->text, "connecting", s);
	}
	*nc = s == NATS_OK ? *nc : NULL;
out:
	natsOptions_Destroy(o);
	for (int i = 0; i < MAXSERVERS; i++) {
		free(urls[i]);
	}
	return n < 0 ? n : r;
}

void
ipc__nats_delete_stream(jsCtx *js, const char *name, const char *owner,
                        jsOptions *o)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	int ours = 0;

	if (js_GetStreamInfo(&si, js, name, o, &jerr) == NATS_OK) {
		ours = si->Config != NULL && si->Config->Description != NULL &&
		       strcmp(si->Config->Description, owner) == 0;
		jsStreamInfo_Destroy(si);
	}
	if (ours) {
		js_DeleteStream(js, name, o, &jerr);
	}
}

/* The opener asks the creator in.  0, or -ECONNREFUSED (nobody serves
 * SUBJECT, or the creator has its peer) and the like. */
int
ipc__nats_hello(natsConnection *nc, const struct ipc_uri *u, const char *subj,
                const char *id, int use_js, const char *op, int optimeout,
                char *peer_id)
{
	natsMsg *m = ipc__nats_msg(subj, NULL, NULL, 0), *r = NULL;
	const char *st, *cid;
	natsStatus s;
	int ret = 0;

	if (m == NULL) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	natsMsgHeader_Set(m, "Ipc-Id", id);
	natsMsgHeader_Set(m, "Ipc-Op", op);
	natsMsgHeader_Set(m, "Ipc-Js", use_js ? "1" : "0");
	s = natsConnection_RequestMsg(&r, nc, m, optimeout);
	natsMsg_Destroy(m);
	if (s == NATS_NO_RESPONDERS) {
		return ipc__err(-ECONNREFUSED, u->text,
		                "no creator serves subject %s", subj);
	}
	if (s == NATS_TIMEOUT) {
		return ipc__err(-ETIMEDOUT, u->text,
		                "no answer on %s within %d ms", subj,
		                optimeout);
	}
	if (s != NATS_OK) {
		return ipc__nats_err(-EIO, u->text, "hello", s);
	}
	st = ipc__nats_hdr(r, "Ipc-Status");
	cid = ipc__nats_hdr(r, "Ipc-Id");
	if (st == NULL || cid == NULL || strlen(cid) != IPC_NATS_IDLEN) {
		ret = ipc__err(-EPROTO, u->text,
		               "malformed answer from the creator");
	} else if (strcmp(op, "probe") == 0) {
		ret = ipc__err(-EEXIST, u->text,
		               "a live creator already serves %s", subj);
	} else if (strcmp(st, "busy") == 0) {
		ret = ipc__err(-ECONNREFUSED, u->text,
		               "the creator already has its peer");
	} else if (strcmp(st, "js=0") == 0 || strcmp(st, "js=1") == 0) {
		ret = ipc__err(-EINVAL, u->text,
		               "js: the creator was opened with %s", st);
	} else if (strcmp(st, "ok") != 0) {
		ret = ipc__err(-EPROTO, u->text, "the creator says \"%s\"",
		               st);
	} else {
		memcpy(peer_id, cid, IPC_NATS_IDLEN + 1);
	}
	natsMsg_Destroy(r);
	return ret;
}

static int
q_push(struct ipc_nats_rxq *r, natsMsg *m)
{
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 64;
		natsMsg **v = malloc(nc * sizeof(*v));
		if (v == NULL) {
			return -1;
		}
		for (size_t i = 0; i < r->n; i++) {
			v[i] = r->q[(r->head + i) % r->cap];
		}
		free(r->q);
		r->q = v;
		r->cap = nc;
		r->head = 0;
	}
	r->q[(r->head + r->n) % r->cap] = m;
	r->n++;
	return 0;
}

/* Move messages waiting in pend that are next in order to the queue. */
static void
pend_drain(struct ipc_nats_rxq *r)
{
	while (r->npend > 0 && r->pend[0].seq <= r->next) {
		struct ipc_nats_pend e = r->pend[0];
		memmove(r->pend, r->pend + 1,
		        (r->npend - 1) * sizeof(*r->pend));
		r->npend--;
		if (e.seq == r->next && q_push(r, e.m) == 0) {
			r->next++;
		} else {
			if (e.seq < r->next) {
				r->dups++;
			}
			natsMsg_Destroy(e.m);
		}
	}
}

/* Keep an out-of-order message; 0 when kept. */
static int
pend_add(struct ipc_nats_rxq *r, uint64_t seq, natsMsg *m)
{
	size_t i;

	for (i = 0; i < r->npend; i++) {
		if (r->pend[i].seq == seq) {
			return -1; /* a duplicate of one waiting */
		}
		if (r->pend[i].seq > seq) {
			break;
		}
	}
	if (r->npend >= 2 * r->window + 64) {
		return -1; /* beyond the sender's window: a forgery */
	}
	if (r->npend == r->pendcap) {
		size_t nc = r->pendcap ? r->pendcap * 2 : 16;
		struct ipc_nats_pend *v = realloc(r->pend, nc * sizeof(*v));
		if (v == NULL) {
			return -1;
		}
		r->pend = v;
		r->pendcap = nc;
	}
	memmove(r->pend + i + 1, r->pend + i,
	        (r->npend - i) * sizeof(*r->pend));
	r->pend[i] = (struct ipc_nats_pend){seq, m};
	r->npend++;
	return 0;
}

int
ipc__nats_rxq_put(struct ipc_nats_rxq *r, natsMsg *m, int has_seq,
                  uint64_t seq, int ordered)
{
	if (!has_seq) {
		return q_push(r, m) == 0; /* not libipc's: as it comes */
	}
	if (seq < r->next) {
		r->dups++; /* a redelivery or a resend */
		return 0;
	}
	if (!ordered) {
		/* core NATS: at most once, a gap is a loss */
		if (q_push(r, m) != 0) {
			return 0;
		}
		r->next = seq + 1;
		return 1;
	}
	if (seq == r->next) {
		if (q_push(r, m) != 0) {
			return 0;
		}
		r->next++;
		pend_drain(r);
		return 1;
	}
	return pend_add(r, seq, m) == 0;
}

natsMsg *
ipc__nats_rxq_peek(const struct ipc_nats_rxq *r)
{
	return r->n > 0 ? r->q[r->head] : NULL;
}

void
ipc__nats_rxq_pop(struct ipc_nats_rxq *r)
{
	r->head = (r->head + 1) % r->cap;
	r->n--;
}

void
ipc__nats_rxq_fini(struct ipc_nats_rxq *r)
{
	for (size_t i = 0; i < r->n; i++) {
		natsMsg_Destroy(r->q[(r->head + i) % r->cap]);
	}
	free(r->q);
	for (size_t i = 0; i < r->npend; i++) {
		natsMsg_Destroy(r->pend[i].m);
	}
	free(r->pend);
}
