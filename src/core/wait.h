/* SPDX-License-Identifier: MIT */
#ifndef IPC_CORE_WAIT_H
#define IPC_CORE_WAIT_H

#include "driver.h"

/* Wait until `events` (IPC_POLLIN/IPC_POLLOUT) may be possible on ch, or
 * the deadline (NULL: none) passes.  Returns 0 to retry the operation,
 * -ETIMEDOUT, or another negative errno.  EINTR returns 0 (the caller
 * retries with its deadline kept). */
int ipc__wait(ipc_channel *ch, short events, const struct timespec *dl);
/* Wait for poll(2) events on one descriptor. */
int ipc__wait_fd(int fd, short events, const struct timespec *dl);
/* poll(2) revents of n descriptors as IPC_POLL* bits (what the core
 * does for a driver without a ready slot). */
short ipc__map_revents(const struct pollfd *pfd, int n);
/* Record "would block" cheaply and return -EAGAIN (a driver's answer,
 * which the core replaces with the URI version below when it returns
 * -EAGAIN to the caller). */
int ipc__err_eagain(void);
/* -EAGAIN: "URI: WHAT: would block (non-blocking call)". */
int ipc__err_wouldblock(const char *uri, const char *what);
/* The last error of uri names the call that failed: "URI: WHAT: ..."
 * (inserted unless it is there). */
void ipc__err_what(const char *uri, const char *what);

#endif
