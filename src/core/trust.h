/*
 * The trust model of channels whose names others can take: who may be the
 * other end.  Written once here and called by every driver that can learn
 * the other side's credentials (docs/security.md lists them).
 *
 * An opener that finds its channel in a namespace anyone can write (POSIX
 * mq and shm names, System V keys, abstract Unix sockets, paths in a
 * world-writable directory such as /tmp) accepts a creator of its own
 * effective uid or root, and refuses any other with -EACCES and a sentence
 * naming the uid, unless the URI says otherwise:
 *   allow_uid=UID[,UID...]   these uids too
 *   allow_gid=GID[,GID...]   a peer whose (effective) gid is one of these
 *   allow_uid=any            anybody (the old behaviour)
 * A creator checks its peers only when the URI has allow_uid=/allow_gid=
 * (its mode= bits already decide who can reach the object).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_TRUST_H
#define IPC_CORE_TRUST_H

#include <sys/types.h>

#include "driver.h"

#define IPC_TRUST_MAXIDS 16

/* The two URI options, for a driver's option table. */
#define IPC_TRUST_OPTS                                                        \
	{"allow_uid",                                                         \
	 IPC_OPT_STR,                                                         \
	 0,                                                                   \
	 0,                                                                   \
	 NULL,                                                                \
	 "uids accepted as the other end beside our own and root "            \
	 "(UID,UID... or any)"},                                              \
	{                                                                     \
		"allow_gid", IPC_OPT_STR, 0, 0, NULL,                         \
		        "gids accepted as the other end (GID,GID...)"         \
	}

struct ipc_trust {
	int check; /* 0: anybody is accepted */
	int given; /* allow_uid= or allow_gid= was in the URI */
	unsigned nuid, ngid;
	uid_t uid[IPC_TRUST_MAXIDS];
	gid_t gid[IPC_TRUST_MAXIDS];
};

/* What is known of the other end.  known == 0: nothing yet. */
struct ipc_cred {
	int known;
	pid_t pid; /* 0 when the driver cannot tell */
	uid_t uid;
	gid_t gid;
};

/* Read allow_uid=/allow_gid= of u (the driver's table must have
 * IPC_TRUST_OPTS).  shared: the channel lives in a namespace others can
 * write, so even without the options only our uid and root are trusted.
 * -EINVAL (recorded) on a malformed list. */
int ipc__trust_parse(struct ipc_trust *t, const struct ipc_uri *u, int shared);

/* Is the other end, with these credentials, acceptable?  who names it in
 * the message ("the channel's creator", "the peer").  0, or -EACCES
 * recorded as "URI: refused: WHO is uid N (allow it with allow_uid=N)". */
int ipc__trust_check(const struct ipc_trust *t, const char *uri,
                     const char *who, const struct ipc_cred *c);

/* The credentials of the peer of a connected Unix socket (SO_PEERCRED),
 * into c.  Returns 0 or -errno (recorded). */
int ipc__cred_socket(int fd, struct ipc_cred *c, const char *uri);

/* The owner of an object we hold open (fstat: uid, gid; pid 0). */
int ipc__cred_fd_owner(int fd, struct ipc_cred *c, const char *uri);

/* uid and gid of a live process, from /proc/PID (effective ids).
 * -ESRCH when it is gone. */
int ipc__cred_pid(pid_t pid, struct ipc_cred *c);

/* Is the directory holding path writable by others (S_IWOTH), so that
 * anybody may have made the object at path?  1, 0; a directory that
 * cannot be examined counts as shared. */
int ipc__trust_path_shared(const char *path);

/* ipc_peer_cred's answer from c: -ENOTCONN (recorded) before a peer. */
int ipc__cred_out(const struct ipc_cred *c, const char *uri, pid_t *pid,
                  uid_t *uid, gid_t *gid);

/* ipc_peer_cred of this process (inproc, pairs in one process). */
void ipc__cred_self(struct ipc_cred *c);

#endif /* IPC_CORE_TRUST_H */
