/*
 * The level-triggered descriptor of ipc_fd() (readyfd.c): an epoll set of
 * the driver's descriptor and an eventfd the core keeps signalled while
 * the driver holds a message (its ready() says so without descriptors).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_READYFD_H
#define IPC_CORE_READYFD_H

#include <stdatomic.h>

#include "driver.h"

/* ipc_fd(): make the set on first use; returns it or a negative errno. */
int ipc__readyfd_get(ipc_channel *ch);
/* Bring the eventfd up to date after a receiving-side call. */
void ipc__readyfd_sync_slow(ipc_channel *ch);
static inline void
ipc__readyfd_sync(ipc_channel *ch)
{
	if (atomic_load_explicit(&ch->readyfd, memory_order_relaxed) != NULL) {
		ipc__readyfd_sync_slow(ch);
	}
}
/* At close. */
void ipc__readyfd_free(ipc_channel *ch);

#endif
