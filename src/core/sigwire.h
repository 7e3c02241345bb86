/*
 * The signal:// wire format: chunk headers, and the in-order reassembly of
 * the values one sender queued (src/backends/signal.c sends them).
 *
 * A sender's signal values form chunks: a header value, then up to
 * IPC_SW_CHUNK_MAX payload values of 8 bytes (the last one padded).
 * Header (64 bits, host order: both ends are on one machine):
 *   bits  0..7   magic 0xA7
 *   bits  8..11  kind (enum ipc_sw_kind)
 *   bits 12..19  payload values in this chunk
 *   bits 20..31  chunk sequence number, per sender, from 0, modulo 4096
 *   bits 32..63  arg: DATA the message's length, MORE the same length
 *                again, CREDIT signals returned, HELLO the sender's window
 * A message is a DATA chunk and as many MORE chunks as it needs.
 *
 * Everything fed to the reassembler is hostile: a value that does not
 * continue the sender's stream exactly is -EPROTO, never an access out of
 * bounds.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_SIGWIRE_H
#define IPC_CORE_SIGWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_SW_MAGIC     0xA7u
#define IPC_SW_CHUNK_MAX 32u
#define IPC_SW_WORD      8u

enum ipc_sw_kind {
	IPC_SW_DATA = 1, /* the first chunk of a message */
	IPC_SW_MORE,     /* a later chunk */
	IPC_SW_CREDIT,   /* the receiver returns arg signals of credit */
	IPC_SW_HELLO,    /* a connector's first chunk; arg = its window */
	IPC_SW_CLOSE,    /* the sender closed; nothing follows */
	IPC_SW_REFUSE,   /* a creator with a peer turns a connector away */
};

struct ipc_sw_hdr {
	unsigned kind, nwords, seq;
	uint32_t arg;
};

uint64_t ipc__sw_hdr(unsigned kind, unsigned nwords, unsigned seq,
                     uint32_t arg);
/* Split a header value; 0 if w has no magic byte, else 1. */
int ipc__sw_parse(uint64_t w, struct ipc_sw_hdr *h);
/* Values needed to carry len bytes. */
size_t ipc__sw_words(size_t len);

/* A whole message, queued for the caller. */
struct ipc_sw_msg {
	struct ipc_sw_msg *next;
	size_t len;
	unsigned sigs; /* counted signals of its last chunk(s), returned as
	                  credit when the caller takes it */
	unsigned char data[];
};

struct ipc_sw_rx {
	size_t max_msg;
	unsigned seq;           /* next chunk sequence expected */
	unsigned words;         /* payload values left in the current chunk */
	struct ipc_sw_msg *cur; /* the message in progress */
	size_t have;
	unsigned sigs; /* counted signals of cur not yet returned */
	unsigned long long consumed;    /* counted signals ever */
	struct ipc_sw_msg *head, *tail; /* whole messages */
};

/* What one fed value meant. */
struct ipc_sw_out {
	int whole;       /* a message was queued */
	uint32_t credit; /* CREDIT: signals the peer returned */
	int close;       /* CLOSE */
	unsigned owed;   /* counted signals to return to the sender now */
};

/* Feed the next value from the sender (after its HELLO, which the caller
 * handles: start rx->seq at 1).  Returns 0 with *out filled, or -EPROTO /
 * -ENOMEM with ipc_last_error() set for uri. */
int ipc__sw_rx_feed(struct ipc_sw_rx *rx, uint64_t w, struct ipc_sw_out *out,
                    const char *uri);
/* Copy the first whole message into buf[cap]: its length, or -EMSGSIZE
 * (it stays).  *sigs: credit to return for it. */
ssize_t ipc__sw_rx_take(struct ipc_sw_rx *rx, void *buf, size_t cap,
                        unsigned *sigs, const char *uri);
void ipc__sw_rx_fini(struct ipc_sw_rx *rx);

#endif /* IPC_CORE_SIGWIRE_H */
