/*
 * jsonrpc: a JSON-RPC 2.0 server over any listener URI, one request per
 * line (framing=line), for clients that are not libipc: socat, netcat,
 * Python's socket module, ...
 *
 *   jsonrpc 'tcp://127.0.0.1:7000?framing=line'
 *   jsonrpc 'unix:///tmp/rpc.sock?framing=line'
 *
 *   $ echo '{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}' |
 *         socat - TCP:127.0.0.1:7000
 *   {"jsonrpc":"2.0","result":5,"id":1}
 *
 * Methods: "add" (two numbers: their sum), "echo" (the params back),
 * "ping" ("pong").  A request without "id" is a notification: no answer.
 * Malformed JSON gets error -32700, a request that is not a JSON-RPC
 * request -32600, an unknown method -32601, bad params -32602 (batches
 * are not supported: -32600).  The server prints "listening on URI" with
 * the resolved address (tcp://127.0.0.1:0 gives the port) and serves until
 * SIGINT or SIGTERM.
 *
 * Build: cc jsonrpc.c $(pkg-config --cflags --libs libipc) -o jsonrpc
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ipc/ipc.h>

#define MAXPEERS 64
#define MAXLINE  65536
#define MAXDEPTH 32

/* ------------------------------------------------- a small JSON reader -- */

struct span {
	const char *p;
	size_t n;
};

struct rd {
	const char *p, *end;
	int depth;
};

static void
ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
	                         *r->p == '\r' || *r->p == '\n'))
		r->p++;
}

static int value(struct rd *r);

static int
string(struct rd *r)
{
	if (r->p >= r->end || *r->p != '"')
		return -1;
	for (r->p++; r->p < r->end; r->p++) {
		unsigned char c = (unsigned char)*r->p;
		if (c == '"') {
			r->p++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (++r->p >= r->end || !strchr("\"\\/bfnrtu", *r->p))
				return -1;
			if (*r->p == 'u') {
				for (int i = 0; i < 4; i++)
					if (++r->p >= r->end ||
					    !strchr("0123456789abcdefABCDEF",
					            *r->p))
						return -1;
			}
		}
	}
	return -1;
}

static int
number(struct rd *r)
{
	const char *s = r->p;

	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (r->p >= r->end || *r->p < '0' || *r->p > '9')
		return -1;
	while (r->p < r->end && strchr("0123456789.eE+-", *r->p))
		r->p++;
	char tmp[64], *e;
	size_t n = (size_t)(r->p - s);
	if (n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	(void)strtod(tmp, &e);
	return *e == '\0' ? 0 : -1;
}

static int
word(struct rd *r, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return -1;
	r->p += n;
	return 0;
}

/* An array or an object: close is ']' or '}'; objects have keys. */
static int
compound(struct rd *r, char close)
{
	if (++r->depth > MAXDEPTH)
		return -1;
	r->p++;
	ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		r->depth--;
		return 0;
	}
	for (;;) {
		ws(r);
		if (close == '}') {
			if (string(r) < 0)
				return -1;
			ws(r);
			if (r->p >= r->end || *r->p++ != ':')
				return -1;
		}
		if (value(r) < 0)
			return -1;
		ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == close) {
			r->p++;
			r->depth--;
			return 0;
		}
		return -1;
	}
}

static int
value(struct rd *r)
{
	ws(r);
	if (r->p >= r->end)
		return -1;
	switch (*r->p) {
	case '{':
		return compound(r, '}');
	case '[':
		return compound(r, ']');
	case '"':
		return string(r);
	case 't':
		return word(r, "true");
	case 'f':
		return word(r, "false");
	case 'n':
		return word(r, "null");
	default:
		return number(r);
	}
}

/* The members of a request object that matter, as spans of the text. */
struct req {
	struct span version, method, params, id;
	int has_id;
};

static int
is_key(struct span k, const char *name)
{
	size_t n = strlen(name);
	return k.n == n + 2 && memcmp(k.p + 1, name, n) == 0;
}

/* 0: a request object; -32700: not JSON; -32600: JSON, not a request. */
static int
parse_request(const char *text, size_t len, struct req *q)
{
	struct rd r = {text, text + len, 0};

	memset(q, 0, sizeof(*q));
	if (value(&r) < 0 || (ws(&r), r.p != r.end))
		return -32700;
	r.p = text;
	ws(&r);
	if (*r.p != '{')
		return -32600;
	r.p++;
	for (;;) {
		ws(&r);
		if (*r.p == '}')
			break;
		struct span k = {r.p, 0}, v;
		string(&r);
		k.n = (size_t)(r.p - k.p);
		ws(&r);
		r.p++; /* ':' (checked above) */
		ws(&r);
		v.p = r.p;
		value(&r);
		v.n = (size_t)(r.p - v.p);
		if (is_key(k, "jsonrpc"))
			q->version = v;
		else if (is_key(k, "method"))
			q->method = v;
		else if (is_key(k, "params"))
			q->params = v;
		else if (is_key(k, "id")) {
			q->id = v;
			q->has_id = 1;
		}
		ws(&r);
		if (*r.p == ',')
			r.p++;
	}
	if (q->version.n != 5 || memcmp(q->version.p, "\"2.0\"", 5) != 0 ||
	    q->method.n < 2 || q->method.p[0] != '"')
		return -32600;
	if (q->has_id && (q->id.p[0] == '{' || q->id.p[0] == '[' ||
	                  q->id.p[0] == 't' || q->id.p[0] == 'f'))
		return -32600;
	if (q->params.n > 0 && q->params.p[0] != '[' && q->params.p[0] != '{')
		return -32600;
	return 0;
}

/* "add": params [a, b], two numbers. */
static int
add(struct span params, double *sum)
{
	struct rd r = {params.p, params.p + params.n, 0};
	double v[2];

	if (params.n == 0 || *r.p != '[')
		return -1;
	r.p++;
	for (int i = 0; i < 2; i++) {
		ws(&r);
		const char *s = r.p;
		if (number(&r) < 0)
			return -1;
		v[i] = strtod(s, NULL);
		ws(&r);
		if (r.p >= r.end || *r.p++ != (i == 0 ? ',' : ']'))
			return -1;
	}
	*sum = v[0] + v[1];
	return 0;
}

/* ------------------------------------------------------------ answers -- */

static int
reply(char *out, size_t cap, struct span id, const char *body)
{
	int n = snprintf(out, cap, "{\"jsonrpc\":\"2.0\",%s,\"id\":%.*s}",
	                 body, id.n ? (int)id.n : 4, id.n ? id.p : "null");
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

static int
error_reply(char *out, size_t cap, struct span id, int code)
{
	const char *msg = code == -32700   ? "Parse error"
	                  : code == -32600 ? "Invalid Request"
	                  : code == -32601 ? "Method not found"
	                                   : "Invalid params";
	char body[128];

	snprintf(body, sizeof body,
	         "\"error\":{\"code\":%d,\"message\":\"%s\"}", code, msg);
	return reply(out, cap, id, body);
}

/* The answer to one line in out; 0 for a notification (no answer). */
static int
answer(const char *line, size_t len, char *out, size_t cap)
{
	struct span none = {NULL, 0};
	struct req q;
	char body[MAXLINE];
	int code = parse_request(line, len, &q);

	if (code != 0)
		return error_reply(out, cap, none, code);
	if (q.method.n == 5 && memcmp(q.method.p, "\"add\"", 5) == 0) {
		double sum;
		if (add(q.params, &sum) < 0)
			code = -32602;
		else
			snprintf(body, sizeof body, "\"result\":%.17g", sum);
	} else if (q.method.n == 6 && memcmp(q.method.p, "\"echo\"", 6) == 0) {
		snprintf(body, sizeof body, "\"result\":%.*s",
		         q.params.n ? (int)q.params.n : 4,
		         q.params.n ? q.params.p : "null");
	} else if (q.method.n == 6 && memcmp(q.method.p, "\"ping\"", 6) == 0) {
		snprintf(body, sizeof body, "\"result\":\"pong\"");
	} else {
		code = -32601;
	}
	if (!q.has_id)
		return 0;
	return code ? error_reply(out, cap, q.id, code)
	            : reply(out, cap, q.id, body);
}

/* -------------------------------------------------------------- serve -- */

static int stop_pipe[2] = {-1, -1};

static void
on_signal(int sig)
{
	(void)sig;
	ssize_t r = write(stop_pipe[1], "x", 1);
	(void)r;
}

int
main(int argc, char **argv)
{
	ipc_listener *l;
	ipc_channel *peers[MAXPEERS];
	ipc_pollitem items[MAXPEERS + 2];
	static char line[MAXLINE], out[MAXLINE + 256];
	size_t npeers = 0;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s 'tcp://HOST:PORT?framing=line'\n",
		        argv[0]);
		return 2;
	}
	if (pipe(stop_pipe) < 0)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	r = ipc_listen(&l, argv[1], 0);
	if (r < 0) {
		fprintf(stderr, "jsonrpc: %s\n", ipc_last_error());
		return 1;
	}
	printf("listening on %s\n", ipc_listener_uri(l));
	fflush(stdout);
	for (;;) {
		memset(items, 0, sizeof items);
		items[0] = (ipc_pollitem){.fd = stop_pipe[0],
		                          .events = IPC_POLLIN};
		items[1] = (ipc_pollitem){.listener = l, .events = IPC_POLLIN};
		for (size_t i = 0; i < npeers; i++)
			items[2 + i] = (ipc_pollitem){.channel = peers[i],
			                              .events = IPC_POLLIN};
		r = ipc_poll(items, npeers + 2, -1);
		if (r < 0 || items[0].revents)
			break;
		if (items[1].revents && npeers < MAXPEERS &&
		    ipc_accept(l, &peers[npeers], IPC_NONBLOCK) == 0)
			npeers++;
		for (size_t i = npeers; i-- > 0;) {
			if (!items[2 + i].revents)
				continue;
			ssize_t n = ipc_recv(peers[i], line, sizeof line,
			                     IPC_NONBLOCK);
			int k = 0, drop = n < 0;
			if (n == -EAGAIN)
				continue;
			if (n >= 0)
				k = answer(line, (size_t)n, out, sizeof out);
			else if (n == -EMSGSIZE) /* a line too long: say so */
				k = error_reply(out, sizeof out,
				                (struct span){NULL, 0},
				                -32600);
			if (k > 0 && ipc_send(peers[i], out, (size_t)k, 0) < 0)
				drop = 1;
			if (drop) { /* gone, broken, or too long a line */
				ipc_close(peers[i]);
				peers[i] = peers[--npeers];
			}
		}
	}
	for (size_t i = 0; i < npeers; i++)
		ipc_close(peers[i]);
	ipc_listener_close(l);
	return 0;
}
