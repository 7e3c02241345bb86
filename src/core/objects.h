/*
 * The libipc objects left on this machine: what `ipc-cat --list` shows
 * and `ipc-cat --gc` removes.  Kept beside the drivers' naming (the
 * System V tags of backends/sysv_sem.h, the mq:// and fifo:// names of
 * objnames.h) so the tool never repeats it.
 *
 * Only objects that are provably libipc's are reported: System V
 * semaphore sets of libipc's size whose key tag (sv_keytag) matches their
 * key and kind, with the queue or segment on the same key made by the
 * same user; POSIX queues named /libipc.NAME.0 and .1; FIFO pairs
 * PATH.in and PATH.out in the directories given.  An object is stale when
 * the kernel shows that every process of the channel is gone: both
 * SEM_UNDO slots of a set free, no flock on a queue pair or FIFO.  Socket
 * files (unix://, unix+seqpacket://, unix+dgram:// creators and
 * listeners) are those in the directories given: nothing in a socket file
 * says it is libipc's, so one is stale when connecting to it is refused
 * (no socket is bound to it), and removal takes only the caller's own.
 * shm:// channels are not listed (their objects are gone with their
 * processes).
 *
 * This file needs nothing of the library but header-only code: the tool
 * compiles it in (it links the shared library, whose internals are
 * hidden).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_OBJECTS_H
#define IPC_CORE_OBJECTS_H

#include <limits.h>
#include <sys/types.h>

struct ipc_obj {
	const char *scheme;       /* "sysvmq", "sysvshm", "mq", "fifo" */
	char name[PATH_MAX + 32]; /* URI when known, else "key 0x..." */
	uid_t uid;                /* the creator's */
	pid_t pid[2];             /* creator, opener; 0 unknown */
	int stale;                /* every process of it is gone */
	/* where it is, for removal */
	key_t key;
	int semid;
	char where[PATH_MAX]; /* mq: the queue name; fifo, unix: PATH */
	int sock;             /* a socket file (unix://) */
	dev_t dev;            /* socket file: the one listed */
	ino_t ino;
};

/* Call fn for every object found (fn returns non-zero to stop).  dirs:
 * where to look for FIFO pairs and socket files.  Sources that cannot be read
 * (no mqueue file system, not allowed) are reported through note(arg, text)
 * and skipped.  Returns 0 or -errno. */
int ipc__objects_scan(const char *const *dirs, int ndirs,
                      int (*fn)(void *arg, const struct ipc_obj *o),
                      void (*note)(void *arg, const char *text), void *arg);

/* Remove o if it is still there, still the same and still stale (checked
 * again, under the locks the drivers use).  0 removed, -EBUSY alive now,
 * -ENOENT gone already, -EPERM another user's socket file (left alone),
 * or -errno; why gets a sentence. */
int ipc__objects_remove(const struct ipc_obj *o, char *why, size_t n);

/* Release what a scan set up (a private mqueue mount). */
void ipc__objects_done(void);

#endif /* IPC_CORE_OBJECTS_H */
