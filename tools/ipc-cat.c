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
#include <getopt.h>
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

/* Exit statuses (documented in --help and docs/ipc-cat.md). */
enum {
	ST_OK = 0,      /* input ended, the peer closed, or -1 was met */
	ST_ERROR = 1,   /* an open, I/O or protocol error */
	ST_USAGE = 2,   /* bad command line */
	ST_TIMEOUT = 3, /* -t: nothing moved for that long */
	ST_LOST = 4,    /* a peer closed before taking all our messages */
};

#define BURST      64          /* messages per direction per round */
#define RAW_CHUNK  (64u << 10) /* -r: largest read of stdin */
#define LINE_ROOM  (16u << 10) /* -l mode: free space kept for read() */
#define RETRY_STEP 20          /* ms between open attempts with -w */

static const char usage_text[] =
        "NAME\n"
        "    ipc-cat - copy messages between stdin/stdout and a libipc "
        "channel,\n"
        "    or between two channels\n"
        "\n"
        "SYNOPSIS\n"
        "    ipc-cat [OPTIONS] URI\n"
        "    ipc-cat [OPTIONS] URI1 URI2\n"
        "    ipc-cat --list [DIR...]   libipc channels on this machine\n"
        "    ipc-cat --gc [DIR...]     remove those whose processes are "
        "dead\n"
        "\n"
        "DESCRIPTION\n"
        "    With one URI, each line of standard input is sent as one "
        "message\n"
        "    (without its newline) and each message received is written "
        "to\n"
        "    standard output followed by a newline.  With two URIs, "
        "messages\n"
        "    are relayed both ways between the two channels unchanged.\n"
        "\n"
        "    ipc-cat ends when one side ends: standard input reaches "
        "end of\n"
        "    file (after every line was sent) or a channel's peer "
        "closes\n"
        "    (after every message it sent was copied).  -u and -U copy "
        "one\n"
        "    way only; with -U, standard input is not read at all.\n"
        "\n"
        "    URIs are those of libipc: unix:///path, tcp://host:port,\n"
        "    fifo:///path, shm://name, mq://name, fd://R,W, ...\n"
        "\n"
        "OPTIONS\n"
        "    -l, --listen       create the endpoint of URI (URI1) with\n"
        "                       IPC_CREATE instead of opening an "
        "existing one\n"
        "    -L, --listen2      create the endpoint of URI2\n"
        "    -r, --raw          raw chunks: each read of standard input "
        "is one\n"
        "                       message, and messages are written out "
        "as they\n"
        "                       are, without a newline\n"
        "    -u, --unidirectional\n"
        "                       copy only from the first address to the\n"
        "                       second: stdin -> URI (URI1 -> URI2)\n"
        "    -U, --reverse      copy only from the second to the first:\n"
        "                       URI -> stdout (URI2 -> URI1)\n"
        "    -1, --once         exit after one message: the first "
        "message\n"
        "                       received from a channel (with -u: the "
        "first\n"
        "                       line sent).  End of input does not end\n"
        "                       ipc-cat while that message is awaited.\n"
        "    -t, --timeout MS   exit with status 3 when nothing has "
        "moved for\n"
        "                       MS milliseconds; also bounds the flush "
        "at close\n"
        "    -w, --wait MS      while an endpoint does not exist yet "
        "(no\n"
        "                       listener, -ENOENT or -ECONNREFUSED), "
        "retry\n"
        "                       opening it for up to MS milliseconds\n"
        "    -v, --verbose      report opens, ends and counts on "
        "standard error\n"
        "    -x, --hex          dump every message that passes on "
        "standard error\n"
        "                       in hex and text (> sent to URI, < "
        "received)\n"
        "        --ascii        the same dump as text only "
        "(non-printable: .)\n"
        "    -d, --data TEXT    send TEXT as the message instead of "
        "reading\n"
        "                       standard input\n"
        "    -f, --file PATH    send the whole file PATH as one message\n"
        "    -n, --count N      with -d or -f: send the message N times "
        "(default\n"
        "                       1); otherwise stop after sending N "
        "messages\n"
        "    -i, --interval MS  wait MS milliseconds between two "
        "messages sent\n"
        "    -k, --fork         with -l: serve every client that "
        "connects, each\n"
        "                       in its own process with its own "
        "conversation, like\n"
        "                       socat's fork (URIs whose transport has "
        "listeners)\n"
        "    -h, --help         show this text\n"
        "    -V, --version      show the libipc version\n"
        "\n"
        "EXIT STATUS\n"
        "    0  standard input ended, a peer closed, or -1 was met\n"
        "    1  an error (the message names the URI and the reason)\n"
        "    2  bad usage\n"
        "    3  -t expired\n"
        "    4  a peer closed before it took every message\n"
        "    On SIGINT, SIGTERM or SIGHUP, ipc-cat closes its channels\n"
        "    (removing what it created) and dies of the same signal.\n"
        "\n"
        "EXAMPLES\n"
        "    ipc-cat -l -U unix:///tmp/log.sock > log.txt &\n"
        "    printf 'one\\ntwo\\n' | ipc-cat -w 2000 unix:///tmp/log.sock\n"
        "\n"
        "    echo ping | ipc-cat -1 tcp://127.0.0.1:7000   (one reply)\n"
        "    ipc-cat -l shm://front 'tcp://127.0.0.1:7000'   (relay)\n";

/* ------------------------------------------------------------- state -- */

/* Standard input, split into messages. */
struct input {
	int raw;
	char *buf;
	size_t cap, start, end; /* unconsumed bytes: [start, end) */
	size_t scan;            /* line mode: [start, scan) has no '\n' */
	size_t next;            /* start of what follows the message */
	int readable;           /* poll said read() will not block */
	int eof;
};

/* One direction: messages from src (NULL: stdin) to dst (NULL: stdout).
 */
struct dir {
	int on;
	ipc_channel *src, *dst;
	const char *src_name, *dst_name;
	int have; /* a message is in hand: msg/len */
	const void *msg;
	size_t len;
	int ended; /* src has no more messages */
	short src_wait, dst_wait;
	unsigned long count;
};

struct cat {
	int raw, once, verbose;
	int dump;         /* -x: 'x' hex, 'a' --ascii, 0 none */
	const char *data; /* -d TEXT or the contents of -f PATH */
	size_t data_len;
	char *file_buf;            /* -f: owned */
	unsigned long count;       /* -n: messages to send (0: no limit) */
	int interval_ms;           /* -i */
	int forking;               /* -k */
	struct timespec next_send; /* -i: not before */
	int timeout_ms, wait_ms;
	ipc_channel *ch[2];
	const char *uri[2];
	int create[2];
	int nch;
	struct dir dir[2]; /* [0]: first -> second, [1]: second -> first */
	struct input in;
	int stdin_wait; /* want POLLIN on fd 0 */
	int busy;       /* a direction stopped at BURST: do not sleep */
	struct timespec last_move;
	int status; /* the exit status, once a function returns -1 */
};

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

static int
parse_ms(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > INT_MAX) {
		return -1;
	}
	*out = (int)v;
	return 0;
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

static int
usage_error(const char *msg)
{
	if (msg != NULL) {
		fprintf(stderr, "ipc-cat: %s\n", msg);
	}
	fprintf(stderr,
	        "usage: ipc-cat [-lLruU1v] [-t MS] [-w MS] URI [URI2]\n"
	        "       ipc-cat --help for the manual\n");
	return ST_USAGE;
}

/* -f PATH: the whole file is the message. */
static int
read_file(struct cat *c, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "ipc-cat: -f %s: %s\n", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	size_t cap = st.st_size > 0 ? (size_t)st.st_size : 4096, len = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (buf == NULL) {
			fprintf(stderr, "ipc-cat: -f %s: out of memory\n",
			        path);
			close(fd);
			return -1;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "ipc-cat: -f %s: %s\n", path,
			        strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (r == 0) {
			break;
		}
		len += (size_t)r;
		if (len == cap) {
			cap *= 2;
			char *b = realloc(buf, cap + 1);
			if (b == NULL) {
				free(buf);
			}
			buf = b;
		}
	}
	close(fd);
	c->file_buf = buf;
	c->data = buf;
	c->data_len = len;
	return 0;
}

static int
parse_args(struct cat *c, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"listen", no_argument, NULL, 'l'},
	        {"listen2", no_argument, NULL, 'L'},
	        {"raw", no_argument, NULL, 'r'},
	        {"unidirectional", no_argument, NULL, 'u'},
	        {"reverse", no_argument, NULL, 'U'},
	        {"once", no_argument, NULL, '1'},
	        {"timeout", required_argument, NULL, 't'},
	        {"wait", required_argument, NULL, 'w'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {"hex", no_argument, NULL, 'x'},
	        {"ascii", no_argument, NULL, 'A'},
	        {"data", required_argument, NULL, 'd'},
	        {"file", required_argument, NULL, 'f'},
	        {"count", required_argument, NULL, 'n'},
	        {"interval", required_argument, NULL, 'i'},
	        {"fork", no_argument, NULL, 'k'},
	        {NULL, 0, NULL, 0},
	};
	int fwd = 1, rev = 1, opt, n;
	const char *file = NULL;

	while ((opt = getopt_long(argc, argv, "lLruU1t:w:vhVxd:f:n:i:k", opts,
	                          NULL)) != -1) {
		switch (opt) {
		case 'x':
			c->dump = 'x';
			break;
		case 'A':
			c->dump = 'a';
			break;
		case 'd':
			c->data = optarg;
			c->data_len = strlen(optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 'n':
			if (parse_ms(optarg, &n) < 0 || n == 0) {
				return usage_error("-n takes a count of 1 or "
				                   "more");
			}
			c->count = (unsigned long)n;
			break;
		case 'i':
			if (parse_ms(optarg, &c->interval_ms) < 0) {
				return usage_error("-i takes milliseconds");
			}
			break;
		case 'k':
			c->forking = 1;
			break;
		case 'l':
			c->create[0] = 1;
			break;
		case 'L':
			c->create[1] = 1;
			break;
		case 'r':
			c->raw = 1;
			break;
		case 'u':
			rev = 0;
			break;
		case 'U':
			fwd = 0;
			break;
		case '1':
			c->once = 1;
			break;
		case 't':
			if (parse_ms(optarg, &c->timeout_ms) < 0) {
				return usage_error("-t takes milliseconds");
			}
			break;
		case 'w':
			if (parse_ms(optarg, &c->wait_ms) < 0) {
				return usage_error("-w takes milliseconds");
			}
			break;
		case 'v':
			c->verbose = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(ST_OK);
		case 'V':
			printf("ipc-cat (libipc %d.%d.%d)\n",
			       IPC_VERSION_MAJOR, IPC_VERSION_MINOR,
			       IPC_VERSION_PATCH);
			exit(ST_OK);
		default:
			return usage_error(NULL);
		}
	}
	c->nch = argc - optind;
	if (c->nch < 1 || c->nch > 2) {
		return usage_error(c->nch < 1 ? "missing URI"
		                              : "at most two URIs");
	}
	if (!fwd && !rev) {
		return usage_error("-u and -U exclude each other");
	}
	if (c->create[1] && c->nch < 2) {
		return usage_error("-L needs a second URI");
	}
	if (c->data != NULL && file != NULL) {
		return usage_error("-d and -f exclude each other");
	}
	if ((c->data != NULL || file != NULL) && c->nch != 1) {
		return usage_error("-d and -f send to one URI");
	}
	if (c->forking && !c->create[0]) {
		return usage_error("-k serves the clients of -l: give -l");
	}
	if (file != NULL && read_file(c, file) < 0) {
		return ST_ERROR;
	}
	if (c->data != NULL && c->count == 0) {
		c->count = 1;
	}
	c->uri[0] = argv[optind];
	c->uri[1] = c->nch == 2 ? argv[optind + 1] : NULL;
	c->dir[0].on = fwd;
	c->dir[1].on = rev;
	return -1;
}

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
	status = parse_args(&c, argc, argv);
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
