/*
 * ipc-cat: copy messages between standard input/output and a libipc
 * channel, or between two channels, like socat for every libipc URI.
 *
 *     ipc-cat [OPTIONS] URI          stdin -> URI, URI -> stdout
 *     ipc-cat [OPTIONS] URI1 URI2    URI1 <-> URI2
 *
 * Everything waits in one ipc_poll() over the channels, standard input
 * and a self-pipe for signals; every channel call is non-blocking, so a
 * full channel in one direction never stops the other.  See --help and
 * docs/ipc-cat.md.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipc/ipc.h>

#include "ipc-cat-list.h"
#include "ipc-cat.h"

static volatile sig_atomic_t got_signal;
static int sig_pipe[2] = {-1, -1};

/* ----------------------------------------------------------- helpers -- */

static int
fail(const char *what, int err)
{
	fprintf(stderr, "ipc-cat: %s: %s (%s)\n", what, ipc_strerror(err),
	        ipc_last_error());
	return ST_ERROR;
}

/* Stop with an exit status: functions return what this returns (-1). */
static int
stop(struct cat *c, int status)
{
	c->status = status;
	return -1;
}

static void note(const struct cat *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void report_local_uri(const struct cat *c, int i);

/* -v: say what happened on stderr. */
static void
note(const struct cat *c, const char *fmt, ...)
{
	va_list ap;

	if (c->verbose) {
		va_start(ap, fmt);
		fprintf(stderr, "ipc-cat: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
}

static void
on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	got_signal = sig;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* full pipe: a signal is pending already */
	}
	errno = saved;
}

static int
setup_signals(void)
{
	struct sigaction sa;
	const int sigs[] = {SIGINT, SIGTERM, SIGHUP};

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		perror("ipc-cat: pipe2");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigaction(sigs[i], &sa, NULL);
	}
	/* A closed stdout is an EPIPE from write(), handled below. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static long
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t->tv_sec) * 1000 +
	       (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* IPC_CAP_* bits as words, for -v. */
static void
describe_caps(unsigned caps, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
	        {IPC_CAP_RELIABLE, "reliable"},
	        {IPC_CAP_ORDERED, "ordered"},
	        {IPC_CAP_ZEROCOPY, "zerocopy"},
	        {IPC_CAP_LISTEN, "listen"},
	        {IPC_CAP_PEERCLOSE, "peerclose"},
	        {IPC_CAP_CROSSHOST, "crosshost"},
	        {IPC_CAP_PUBSUB, "pubsub"},
	};
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((caps & names[i].bit) && n < len) {
			int k = snprintf(buf + n, len - n, "%s%s",
			                 n > 0 ? "," : "", names[i].name);
			n += k > 0 ? (size_t)k : 0;
		}
	}
	if (n == 0) {
		snprintf(buf, len, "none");
	}
}

/* Open one channel: create it, or open it and retry for up to wait_ms
 * while nobody has created it yet. */
static int
open_channel(struct cat *c, int i)
{
	const struct timespec step = {0, RETRY_STEP * 1000000L};
	struct timespec t0;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = ipc_open(&c->ch[i], c->uri[i],
		             c->create[i] ? IPC_CREATE : 0);
		if (r != -ENOENT && r != -ECONNREFUSED) {
			break;
		}
		if (c->create[i] || got_signal ||
		    ms_since(&t0) >= c->wait_ms) {
			break;
		}
		nanosleep(&step, NULL);
	}
	if (r < 0) {
		return r;
	}
	if (c->timeout_ms >= 0) {
		/* Only close blocks (flushing what is queued): bound it. */
		ipc_set_timeout(c->ch[i], c->timeout_ms);
	}
	if (c->verbose) {
		char caps[96];
		describe_caps(ipc_caps(c->ch[i]), caps, sizeof(caps));
		fprintf(stderr,
		        "ipc-cat: %s %s (%s, messages up to %zu bytes, caps "
		        "%s)\n",
		        c->create[i] ? "created" : "opened", c->uri[i],
		        ipc_scheme(c->ch[i]), ipc_max_msg(c->ch[i]), caps);
		report_local_uri(c, i);
	}
	return 0;
}

/* -v: the URI a peer would open to reach this end, resolved (a port asked
 * as 0 is the one the kernel bound).  Channels without an address (fd://)
 * have none. */
static void
report_local_uri(const struct cat *c, int i)
{
	const char *lu = ipc_local_uri(c->ch[i]);

	if (lu != NULL) {
		note(c, "local URI %s", lu);
	}
}

/* ------------------------------------------------------ standard input -- */

/* Make room for one more read() in the input buffer. */
static int
input_room(struct input *in, size_t want)
{
	if (in->start > 0 && in->cap - in->end < want) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->scan -= in->start;
		in->start = 0;
	}
	if (in->cap - in->end < want) {
		size_t cap = in->cap ? in->cap : want;
		while (cap - in->end < want) {
			cap *= 2;
		}
		char *b = realloc(in->buf, cap);
		if (b == NULL) {
			fprintf(stderr, "ipc-cat: out of memory\n");
			return -1;
		}
		in->buf = b;
		in->cap = cap;
	}
	return 0;
}

/* Has nothing been sent from standard input (or -d/-f) yet? */
static int
d_sent_none(const struct cat *c)
{
	return c->dir[0].count == 0;
}

/* The next message from stdin, or -d/-f: 1 (d->msg set), 0 (would
 * block), -EPIPE (end of input, or -n reached) or -1 (stop). */
/* Milliseconds until -i lets the next message go (0: now). */
static long
interval_left(const struct cat *c)
{
	if (c->interval_ms <= 0 || d_sent_none(c)) {
		return 0;
	}
	long left = -ms_since(&c->next_send);
	return left > 0 ? left : 0;
}

static int
input_take(struct cat *c, struct dir *d)
{
	struct input *in = &c->in;
	size_t max = ipc_max_msg(d->dst);

	if (c->count > 0 && d->count >= c->count) {
		return -EPIPE; /* -n: that many sent */
	}
	if (interval_left(c) > 0) {
		return 0; /* wait_round sleeps until then */
	}
	if (c->data != NULL) {
		if (c->data_len > max) {
			fprintf(stderr,
			        "ipc-cat: the message of %zu bytes is longer "
			        "than the largest message of %s (%zu bytes)\n",
			        c->data_len, d->dst_name, max);
			return stop(c, ST_ERROR);
		}
		d->msg = c->data;
		d->len = c->data_len;
		return 1;
	}

	for (;;) {
		size_t have = in->end - in->start;
		if (in->raw && have > 0) {
			d->msg = in->buf + in->start;
			d->len = have;
			in->next = in->end;
			return 1;
		}
		if (!in->raw) {
			char *nl = NULL;
			if (in->end > in->scan) {
				nl = memchr(in->buf + in->scan, '\n',
				            in->end - in->scan);
			}
			if (nl != NULL || (in->eof && have > 0)) {
				size_t stop =
				        nl ? (size_t)(nl - in->buf) : in->end;
				d->msg = in->buf + in->start;
				d->len = stop - in->start;
				in->next = nl ? stop + 1 : stop;
				in->scan = in->next;
				if (d->len > max) {
					break;
				}
				return 1;
			}
			in->scan = in->end;
			if (have > max) {
				break;
			}
		}
		if (in->eof) {
			return -EPIPE;
		}
		if (!in->readable) {
			c->stdin_wait = 1;
			return 0;
		}
		in->readable = 0;
		size_t chunk = in->raw ? (max < RAW_CHUNK ? max : RAW_CHUNK)
		                       : LINE_ROOM;
		if (input_room(in, chunk) < 0) {
			return stop(c, ST_ERROR);
		}
		ssize_t n = read(STDIN_FILENO, in->buf + in->end, chunk);
		if (n > 0) {
			in->end += (size_t)n;
		} else if (n == 0) {
			in->eof = 1;
		} else if (errno != EINTR && errno != EAGAIN) {
			perror("ipc-cat: reading standard input");
			return stop(c, ST_ERROR);
		}
	}
	fprintf(stderr,
	        "ipc-cat: a line of standard input is longer than the "
	        "largest message of %s (%zu bytes); try -r\n",
	        d->dst_name, max);
	return stop(c, ST_ERROR);
}

static void
input_done(struct input *in)
{
	in->start = in->next;
	if (in->start == in->end) {
		in->start = in->end = in->scan = in->next = 0;
	}
}

/* ---------------------------------------------------------- directions -- */

/* Get the next message of d in hand: 1, 0 (would block), -EPIPE (the
 * source ended) or -1 (stop). */
static int
take(struct cat *c, struct dir *d)
{
	if (d->src == NULL) {
		return input_take(c, d);
	}
	int r = ipc_acquire(d->src, &d->msg, &d->len, IPC_NONBLOCK);
	if (r == 0) {
		return 1;
	}
	if (r == -EAGAIN) {
		d->src_wait = IPC_POLLIN;
		return 0;
	}
	if (r == -EPIPE) {
		return r;
	}
	return stop(c, fail("receive", r));
}

static int
write_all(int fd, const struct iovec *iov, int n)
{
	struct iovec v[2];

	memcpy(v, iov, (size_t)n * sizeof(*iov));
	while (n > 0) {
		ssize_t w = writev(fd, v, n);
		if (w < 0 && errno == EINTR && !got_signal) {
			continue;
		}
		if (w < 0) {
			return -errno;
		}
		while (n > 0 && (size_t)w >= v[0].iov_len) {
			w -= (ssize_t)v[0].iov_len;
			v[0] = v[1];
			n--;
		}
		if (n > 0) {
			v[0].iov_base = (char *)v[0].iov_base + w;
			v[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Deliver the message in hand: 1, 0 (would block), or -1 (stop). */
static int
give(struct cat *c, struct dir *d)
{
	if (d->dst == NULL) {
		struct iovec v[2] = {{(void *)d->msg, d->len}, {"\n", 1}};
		int r = write_all(STDOUT_FILENO, v, c->raw ? 1 : 2);
		if (r == -EPIPE || (r == -EINTR && got_signal)) {
			note(c, "standard output closed");
			return stop(c, ST_OK);
		}
		if (r < 0) {
			errno = -r;
			perror("ipc-cat: writing standard output");
			return stop(c, ST_ERROR);
		}
		return 1;
	}
	ssize_t r = ipc_send(d->dst, d->msg, d->len, IPC_NONBLOCK);
	if (r >= 0) {
		return 1;
	}
	if (r == -EAGAIN) {
		d->dst_wait = IPC_POLLOUT;
		return 0;
	}
	if (r == -EPIPE) {
		fprintf(stderr,
		        "ipc-cat: %s: the peer closed after %lu messages; "
		        "the rest was not delivered\n",
		        d->dst_name, d->count);
		return stop(c, ST_LOST);
	}
	return stop(c, fail("send", (int)r));
}

static void
release(struct cat *c, struct dir *d)
{
	if (d->src == NULL) {
		if (c->data == NULL) {
			input_done(&c->in);
		}
		if (c->interval_ms > 0) {
			clock_gettime(CLOCK_MONOTONIC, &c->next_send);
			c->next_send.tv_sec += c->interval_ms / 1000;
			c->next_send.tv_nsec +=
			        (long)(c->interval_ms % 1000) * 1000000L;
			if (c->next_send.tv_nsec >= 1000000000L) {
				c->next_send.tv_sec++;
				c->next_send.tv_nsec -= 1000000000L;
			}
		}
	} else {
		ipc_release(d->src);
	}
	d->have = 0;
}

/* The hex lines of a -x dump: offset, 16 bytes, and those as text. */
static void
dump_hex(FILE *out, const unsigned char *p, size_t len)
{
	for (size_t off = 0; off < len; off += 16) {
		size_t n = len - off < 16 ? len - off : 16;
		fprintf(out, "%08zx ", off);
		for (size_t i = 0; i < 16; i++) {
			if (i < n) {
				fprintf(out, " %02x", p[off + i]);
			} else {
				fputs("   ", out);
			}
		}
		fputs("  |", out);
		for (size_t i = 0; i < n; i++) {
			unsigned char b = p[off + i];
			fputc(b >= 0x20 && b < 0x7f ? b : '.', out);
		}
		fputs("|\n", out);
	}
}

/* -x / --ascii: the message that just passed along d, on stderr.  ">"
 * marks what went toward the first URI's peer (or the second URI), "<"
 * what came from it. */
static void
dump(const struct cat *c, const struct dir *d)
{
	const unsigned char *p = d->msg;
	const char *arrow = d == &c->dir[0] ? ">" : "<";
	const char *where = d == &c->dir[0] ? d->dst_name : d->src_name;
	char *text = NULL;
	size_t textlen = 0;
	/* The dump is built in memory and written with one write(2): stderr
	 * is unbuffered, and the children of -k share it, so piecemeal
	 * writes would interleave their lines. */
	FILE *out = open_memstream(&text, &textlen);

	if (!out) {
		return;
	}
	fprintf(out, "%s %s: message %lu, %zu bytes\n", arrow, where,
	        d->count + 1, d->len);
	if (c->dump == 'a') {
		for (size_t i = 0; i < d->len; i++) {
			fputc(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.', out);
		}
		fputc('\n', out);
	} else {
		dump_hex(out, p, d->len);
	}
	if (fclose(out) == 0) {
		for (size_t off = 0; off < textlen;) {
			ssize_t w = write(STDERR_FILENO, text + off,
			                  textlen - off);
			if (w < 0 && errno == EINTR) {
				continue;
			}
			if (w <= 0) {
				break;
			}
			off += (size_t)w;
		}
	}
	free(text);
}

/* Move up to BURST messages along d.  Returns 0 to go on, -1 to stop. */
static int
pump(struct cat *c, struct dir *d)
{
	for (int k = 0; k < BURST; k++) {
		if (!d->have) {
			int r = take(c, d);
			if (r == -EPIPE) {
				d->ended = 1;
				return 0;
			}
			if (r <= 0) {
				return r;
			}
			d->have = 1;
		}
		int r = give(c, d);
		if (r <= 0) {
			return r;
		}
		if (c->dump) {
			dump(c, d);
		}
		release(c, d);
		d->count++;
		clock_gettime(CLOCK_MONOTONIC, &c->last_move);
		/* -1: the first message from a channel, or with -u the
		 * first one sent. */
		if (c->once && (d->src != NULL || !c->dir[1].on)) {
			note(c, "%s: one message copied", d->src_name);
			return stop(c, ST_OK);
		}
	}
	c->busy = 1; /* more may be waiting: come back without sleeping */
	return 0;
}

/* After a round: has one side ended?  Returns 0 to go on, -1 to stop. */
static int
check_ends(struct cat *c)
{
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->dir[i];
		if (!d->on || !d->ended) {
			continue;
		}
		if (d->src != NULL) {
			note(c, "%s: the peer closed after %lu messages",
			     d->src_name, d->count);
			return stop(c, ST_OK);
		}
		/* End of standard input: everything read was sent.  With
		 * -1, go on waiting for the message from the channel. */
		if (c->once && c->dir[1].on) {
			continue;
		}
		note(c, "end of input after %lu messages", d->count);
		return stop(c, ST_OK);
	}
	return 0;
}

/* Wait for something to do.  Returns 0 to go on, -1 to stop. */
static int
wait_round(struct cat *c)
{
	ipc_pollitem it[4];
	size_t n = 0;
	int timeout = -1;

	memset(it, 0, sizeof(it));
	it[n].fd = sig_pipe[0];
	it[n++].events = IPC_POLLIN;
	int stdin_item = -1;
	if (c->stdin_wait) {
		stdin_item = (int)n;
		it[n].fd = STDIN_FILENO;
		it[n++].events = IPC_POLLIN;
	}
	for (int i = 0; i < c->nch; i++) {
		short ev = 0;
		for (int k = 0; k < 2; k++) {
			struct dir *d = &c->dir[k];
			if (d->src == c->ch[i]) {
				ev |= d->src_wait;
			}
			if (d->dst == c->ch[i]) {
				ev |= d->dst_wait;
			}
		}
		if (ev != 0) {
			it[n].channel = c->ch[i];
			it[n].fd = -1;
			it[n++].events = ev;
		}
	}
	if (c->timeout_ms >= 0) {
		long left = c->timeout_ms - ms_since(&c->last_move);
		if (left <= 0) {
			fprintf(stderr,
			        "ipc-cat: nothing moved for %d ms (-t)\n",
			        c->timeout_ms);
			return stop(c, ST_TIMEOUT);
		}
		timeout = (int)left;
	}
	long gap = interval_left(c);
	if (gap > 0 && (timeout < 0 || gap < timeout)) {
		timeout = (int)gap; /* -i: the next message is due then */
	}
	if (c->busy) {
		timeout = 0; /* only look for signals and readiness */
	}
	int r = ipc_poll(it, n, timeout);
	if (r < 0) {
		return stop(c, fail("poll", r));
	}
	if (stdin_item >= 0 && it[stdin_item].revents != 0) {
		c->in.readable = 1; /* data, end of file or an error */
	}
	return 0;
}

/* The copy loop: move what can move, see whether a side ended, wait. */
static int
run(struct cat *c)
{
	clock_gettime(CLOCK_MONOTONIC, &c->last_move);
	while (!got_signal) {
		c->stdin_wait = 0;
		c->busy = 0;
		for (int i = 0; i < 2; i++) {
			struct dir *d = &c->dir[i];
			d->src_wait = d->dst_wait = 0;
			if (d->on && !d->ended && pump(c, d) < 0) {
				return c->status;
			}
		}
		if (check_ends(c) < 0 || wait_round(c) < 0) {
			return c->status;
		}
	}
	return ST_OK; /* main() dies of the signal after closing */
}

/* ---------------------------------------------------------------- main -- */
/* Wire the two directions to stdin/stdout and the channels. */
static void
wire(struct cat *c)
{
	struct dir *f = &c->dir[0], *b = &c->dir[1];

	if (c->nch == 1) {
		f->src = NULL;
		f->src_name = "standard input";
		f->dst = c->ch[0];
		f->dst_name = c->uri[0];
		b->src = c->ch[0];
		b->src_name = c->uri[0];
		b->dst = NULL;
		b->dst_name = "standard output";
	} else {
		f->src = b->dst = c->ch[0];
		f->src_name = b->dst_name = c->uri[0];
		f->dst = b->src = c->ch[1];
		f->dst_name = b->src_name = c->uri[1];
	}
}

/* Close what a conversation opened (a message still in hand first: close
 * flushes what is queued, bounded by -t, and removes what we created). */
static int
finish(struct cat *c, int status)
{
	for (int i = 0; i < 2; i++) {
		if (c->dir[i].have && c->dir[i].src != NULL) {
			ipc_release(c->dir[i].src);
		}
	}
	for (int i = 0; i < c->nch; i++) {
		int r = ipc_close(c->ch[i]);
		if (r < 0 && status == ST_OK) {
			status = fail("close", r);
		}
		c->ch[i] = NULL;
	}
	return status;
}

/* -k: in a child, accept one client, tell the parent on syncfd, and hold
 * the conversation.  Never returns. */
static void
serve_client(struct cat *c, ipc_listener *l, int syncfd)
{
	ipc_channel *ch;
	int status;

	int r = ipc_accept(l, &ch, IPC_NONBLOCK);
	if (write(syncfd, "a", 1) < 0) {
		/* the parent is gone: PR_SET_PDEATHSIG ends us */
	}
	close(syncfd);
	if (r == -EAGAIN) {
		_exit(ST_OK); /* nobody left to accept */
	}
	if (r < 0) {
		_exit(fail("accept", r));
	}
	c->ch[0] = ch;
	c->create[0] = 0;
	note(c, "%s: a client arrived (pid %ld serves it)", c->uri[0],
	     (long)getpid());
	status = -1;
	if (c->nch == 2 && open_channel(c, 1) < 0) {
		status = fail("open", -errno);
	}
	if (status < 0) {
		wire(c);
		status = run(c);
	}
	_exit(finish(c, status));
}

/* -l -k: accept every client and serve each in a child process, until a
 * signal.  The child accepts (so no channel is ever shared with the
 * parent) and says so on a pipe before the parent looks again. */
static int
serve_forking(struct cat *c)
{
	ipc_listener *l;
	int r = ipc_listen(&l, c->uri[0], 0);

	if (r == -EOPNOTSUPP) {
		fprintf(stderr,
		        "ipc-cat: -k: %s has no listeners: it serves one "
		        "peer (drop -k)\n",
		        c->uri[0]);
		return ST_USAGE;
	}
	if (r < 0) {
		return fail("listen", r);
	}
	const char *lu = ipc_listener_uri(l);
	note(c, "listening on %s; every client gets its own process",
	     c->uri[0]);
	if (lu != NULL) {
		note(c, "local URI %s", lu);
	}
	while (!got_signal) {
		while (waitpid(-1, NULL, WNOHANG) > 0) {
		}
		ipc_pollitem it[2];
		memset(it, 0, sizeof(it));
		it[0].fd = sig_pipe[0];
		it[0].events = IPC_POLLIN;
		it[1].listener = l;
		it[1].fd = -1;
		it[1].events = IPC_POLLIN;
		r = ipc_poll(it, 2, 200);
		if (r < 0) {
			ipc_listener_close(l);
			return fail("poll", r);
		}
		if (got_signal || !(it[1].revents & IPC_POLLIN)) {
			continue;
		}
		int sync[2];
		if (pipe2(sync, O_CLOEXEC) < 0) {
			perror("ipc-cat: pipe2");
			break;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(sync[0]);
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			close(sig_pipe[0]);
			close(sig_pipe[1]);
			if (setup_signals() < 0) {
				_exit(ST_ERROR);
			}
			serve_client(c, l, sync[1]);
		}
		close(sync[1]);
		if (pid < 0) {
			perror("ipc-cat: fork");
			close(sync[0]);
			break;
		}
		char b;
		while (read(sync[0], &b, 1) < 0 && errno == EINTR) {
		}
		close(sync[0]);
	}
	ipc_listener_close(l);
	return ST_OK;
}

int
main(int argc, char **argv)
{
	struct cat c;
	int status;

	if (argc >= 2 &&
	    (strcmp(argv[1], "--list") == 0 || strcmp(argv[1], "--gc") == 0)) {
		return ipc_cat_objects(argc, argv);
	}
	memset(&c, 0, sizeof(c));
	c.timeout_ms = -1;
	status = ipc_cat_parse_args(&c, argc, argv);
	if (status >= 0) {
		return status;
	}
	c.in.raw = c.raw;
	if (setup_signals() < 0) {
		return ST_ERROR;
	}
	if (c.forking) {
		status = serve_forking(&c);
	} else {
		for (int i = 0; i < c.nch && status < 0; i++) {
			int r = open_channel(&c, i);
			if (r < 0) {
				status = got_signal ? ST_OK : fail("open", r);
			}
		}
		if (status < 0) {
			wire(&c);
			status = run(&c);
		}
		status = finish(&c, status);
	}
	free(c.file_buf);
	free(c.in.buf);
	if (got_signal) {
		signal(got_signal, SIG_DFL);
		raise(got_signal);
	}
	return status;
}
