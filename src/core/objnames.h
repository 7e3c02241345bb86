/*
 * How drivers name the objects they put in shared namespaces, for the
 * drivers themselves and for objects.c (ipc-cat --list, --gc).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_OBJNAMES_H
#define IPC_CORE_OBJNAMES_H

/* mq://NAME: queues IPC_MQ_PREFIX NAME ".0" (creator -> opener) and ".1"
 * (opener -> creator); the creator holds an exclusive flock on ".1", the
 * opener on ".0". */
#define IPC_MQ_PREFIX "/libipc."

/* fifo:///PATH: PATH.in (the creator reads it and holds an exclusive
 * flock on it) and PATH.out. */
#define IPC_FIFO_IN  ".in"
#define IPC_FIFO_OUT ".out"

#include <sys/file.h>

/* Is the exclusive flock that a live end holds on fd's object gone?
 * Probed with a shared lock on our own open file description. */
static inline int
ipc__flock_free(int fd)
{
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		(void)flock(fd, LOCK_UN);
		return 1;
	}
	return 0;
}

#endif /* IPC_CORE_OBJNAMES_H */
