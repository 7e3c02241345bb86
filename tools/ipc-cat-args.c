/*
 * ipc-cat's command line: the options, -f's file, and --help's text.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc-cat.h"

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

int
ipc_cat_parse_args(struct cat *c, int argc, char **argv)
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
