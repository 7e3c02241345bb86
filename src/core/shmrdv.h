/*
 * The rendezvous of shm:// (one-to-one channels and publish/subscribe):
 * an abstract Unix seqpacket socket "@libipc/shm/NAME" that the serving
 * side binds, on which descriptors (a sealed memfd, eventfds) travel with
 * SCM_RIGHTS, and whose hang-up is the other side's death.  What the two
 * shm:// protocols share lives here; the messages themselves are theirs.
 *
 * A refusal is one struct ipc_shm_hello with status set (the one-to-one
 * hello), whichever protocol the client spoke, so that every client can
 * read why it was turned away.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_SHMRDV_H
#define IPC_CORE_SHMRDV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "trust.h"

#define IPC_SHM_HELLO_MAGIC 0x6c6c6568u /* "hell" */
#define IPC_SHM_VERSION     1u
#define IPC_SHM_MAXFDS      8 /* most descriptors in one message */

/* The one-to-one hello (backends/shm.c), and every refusal. */
struct ipc_shm_hello {
	uint32_t magic;
	uint32_t version;
	int32_t status; /* 0, or a positive errno: the server refused */
	uint32_t reserved;
	uint64_t ring_size;
	uint64_t seg_len;
	char name[208]; /* the full name (abstract names may be hashed) */
};

/* The abstract address of NAME (names too long for sun_path are hashed;
 * the hellos carry the full name, which the server checks). */
socklen_t ipc__shm_addr(struct sockaddr_un *sa, const char *name);
/* Bind and listen on NAME's address: 0 with *out, or a recorded error
 * (-EEXIST when the name is served already). */
int ipc__shm_bind(const char *name, const char *uri, int *out);
/* Connect to NAME's address: 0 with *out, or a recorded error
 * (-ECONNREFUSED when nobody serves it). */
int ipc__shm_connect(const char *name, const char *uri, int *out);

/* May the process at the other end of fd be our peer?  An opener trusts
 * a server under t (trust.h: its uid or root unless allow_uid= says
 * more).  A server goes by t when the URI has allow_uid=/allow_gid=, and
 * by its mode= bits otherwise.  0 or a recorded error. */
int ipc__shm_peer_allowed(int fd, unsigned mode, const struct ipc_trust *t,
                          int server, const char *uri);

/* One message with up to IPC_SHM_MAXFDS descriptors, never blocking, never
 * SIGPIPE.  0 or -errno (not recorded). */
int ipc__shm_sendfds(int sock, const void *buf, size_t len, const int *fds,
                     int nfd);
/* Receive one message and up to maxfd descriptors (close-on-exec; any
 * beyond maxfd are closed).  Returns the message length (0: hang-up) or
 * -errno (not recorded); *nfd descriptors were stored; *ctrunc is set when
 * the kernel dropped some. */
ssize_t ipc__shm_recvfds(int sock, void *buf, size_t len, int *fds, int maxfd,
                         int *nfd, int *ctrunc);
/* Refuse a client: read and close what it sent, then send a hello whose
 * status is err (> 0), so that its close reads as a clean hang-up. */
void ipc__shm_refuse(int conn, int err);
/* A refusal waiting on sock: its errno (> 0), or 0. */
int ipc__shm_read_refusal(int sock);

/* A memfd of len bytes, mode bits, sealed against shrinking and growing
 * (so a peer can map it safely): 0 with *out, or a recorded error. */
int ipc__shm_memfd(const char *label, size_t len, unsigned mode,
                   const char *uri, int *out);
/* Is fd a memfd of exactly len bytes that cannot shrink?  1 or 0. */
int ipc__shm_memfd_ok(int fd, uint64_t len);

/* epoll_ctl ADD / DEL, ignoring fd < 0 or epfd < 0 (and EEXIST). */
void ipc__epoll_add(int epfd, int fd, uint32_t events);
void ipc__epoll_del(int epfd, int fd);

#endif /* IPC_CORE_SHMRDV_H */
