/*
 * What the two ends of publish/subscribe over listeners share inside the
 * core: the publisher (pubsub.c) and the subscriber (pubsub_sub.c).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_PUBSUB_INT_H
#define IPC_CORE_PUBSUB_INT_H

#include <stddef.h>

#include "driver.h"

/* Each message starts with the publisher's sequence number. */
#define SEQ_BIN  8  /* little-endian (framing=length) */
#define SEQ_TEXT 17 /* 16 hex digits and a space (framing=line) */

static inline size_t
ipc__pubsub_seq_len(int text)
{
	return text ? SEQ_TEXT : SEQ_BIN;
}

/* The local URI of the channel or listener underneath, as the slot
 * wants it (malloc'ed; NULL with the error recorded). */
char *ipc__pubsub_dup_uri(const ipc_channel *ch, const char *s);

/* Open ch (on ipc__pubsub_sub) as a subscriber connecting to `inner`,
 * the URI without the pub/sub options; text under framing=line.
 * Failure rule as open(). */
int ipc__pubsub_sub_open(ipc_channel *ch, const char *inner, int flags,
                         int text);

#endif
