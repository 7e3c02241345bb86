/*
 * ipc-cat: what ipc-cat.c (the copying) and ipc-cat-args.c (the command
 * line and --help) share.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CAT_H
#define IPC_CAT_H

#include <stddef.h>
#include <time.h>

#include <ipc/ipc.h>

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

/* The command line into c: -1 to go on, else the exit status (--help
 * and --version exit). */
int ipc_cat_parse_args(struct cat *c, int argc, char **argv);

#endif /* IPC_CAT_H */
