/*
 * libipc: one API for every Unix inter-process communication mechanism.
 *
 * A channel is opened from a URI ("shm://telemetry", "unix:///run/app.sock",
 * "tcp://[::1]:7000", "fifo:///tmp/f", ...).  It carries whole messages in
 * both directions: one send is one receive, same bytes, same length.
 * Changing the URI changes the transport and nothing else.
 *
 * Conventions:
 *  - Every call returns 0 or a count on success and a negative errno value
 *    on failure; errno itself is not part of the interface.
 *  - Every failure also records a sentence in this thread's
 *    ipc_last_error(), in one form: "URI: what failed: why", lower case
 *    after the URI (a call that has no channel names itself instead,
 *    "ipc_poll: item 2: ...").  What failed is the operation ("open",
 *    "listen", "accept", "send", "recv", "reserve", "acquire") or, for a
 *    misuse, the API call ("ipc_commit: nothing is reserved ...").
 *    -EAGAIN reads "URI: recv: would block (non-blocking call)";
 *    -ETIMEDOUT "URI: recv: timed out after N ms"; -EPIPE "URI: recv: the
 *    peer closed the channel", "... the peer died without closing the
 *    channel" where the driver can tell a crash (IPC_CAP_PEERCLOSE), or
 *    "... the peer closed the channel or exited" where it cannot; a
 *    receive's -EMSGSIZE ends in "needs N bytes" (see ipc_recv).
 *  - Blocking calls wait forever unless the channel was opened with
 *    IPC_NONBLOCK, the call passes IPC_NONBLOCK, or ipc_set_timeout() set a
 *    limit.  Interrupted system calls are retried with the deadline kept.
 *  - The library never raises SIGPIPE.
 *  - Threads: one thread may send while another receives on the same
 *    channel.  Two threads that both send (or both receive, acquire,
 *    reserve) on one channel must serialise those calls with a lock of
 *    their own; different channels need nothing.  ipc_poll, ipc_fd and
 *    the query calls may run beside one sender and one receiver.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_IPC_H
#define IPC_IPC_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(IPC_STATIC)
#define IPC_API
#elif defined(__GNUC__)
#define IPC_API __attribute__((visibility("default")))
#else
#define IPC_API
#endif

#define IPC_VERSION_MAJOR 0
#define IPC_VERSION_MINOR 1
#define IPC_VERSION_PATCH 0

/* One duplex, message-preserving endpoint. */
typedef struct ipc_channel ipc_channel;
/* Accepts many peers on one address. */
typedef struct ipc_listener ipc_listener;

/* Flags for ipc_open / ipc_listen / ipc_accept. */
#define IPC_CREATE 0x1 /* create the endpoint (bind, mkfifo, O_CREAT, ...) */
/* At open: every call on the channel returns -EAGAIN instead of blocking.
 * As a flag of one send/recv/reserve/acquire/accept: that call only. */
#define IPC_NONBLOCK 0x2
/* One-to-many (flags of ipc_open only; docs/pubsub.md).  IPC_PUBLISH: this
 * end publishes, every current subscriber receives each message it sends;
 * implies IPC_CREATE; ipc_recv/ipc_acquire on it are -EOPNOTSUPP.
 * IPC_SUBSCRIBE: this end subscribes to a publisher (which must exist:
 * -ENOENT or -ECONNREFUSED otherwise, retry); ipc_send/ipc_reserve on it
 * are -EOPNOTSUPP.  Drivers without IPC_CAP_PUBSUB refuse both with
 * -EOPNOTSUPP; giving both flags, or IPC_SUBSCRIBE with IPC_CREATE, is
 * -EINVAL. */
#define IPC_PUBLISH   0x4
#define IPC_SUBSCRIBE 0x8

/*
 * ipc_open: open one end of a channel named by uri.
 *
 * With IPC_CREATE the endpoint is created (socket bound, FIFOs made, queue
 * or segment created) and the call returns at once; the peer may come
 * later, and a send before it arrives waits as for a full queue.  Without
 * IPC_CREATE the endpoint must exist already.  ipc_open never waits for a
 * peer.
 *
 * Errors: -EINVAL (malformed URI, unknown option or bad value, NULL
 * argument), -EPROTONOSUPPORT (unknown scheme), -ENOENT or -ECONNREFUSED (no
 * endpoint yet: retry), -EEXIST (IPC_CREATE and an endpoint in use), -EACCES,
 * -ENOMEM, or another negative errno from the system.
 */
IPC_API int ipc_open(ipc_channel **out, const char *uri, int flags);

/*
 * ipc_send: send len bytes of buf as one message.  len may be 0.
 * flags: 0 or IPC_NONBLOCK.  Returns len.
 *
 * Errors: -EMSGSIZE (len > ipc_max_msg(); nothing sent), -EAGAIN (would
 * block and non-blocking), -ETIMEDOUT (timeout set by ipc_set_timeout()
 * expired), -EPIPE (the peer closed or died), -EINVAL (NULL channel, or
 * buf NULL with len > 0, or a byte the framing cannot carry), -EPROTO (the
 * channel failed earlier because its peer broke the protocol).
 * A message is never delivered in part.  On stream and queue transports a
 * large message may not fit the kernel's buffer at once: a blocking send
 * waits until it is all out; a send with a timeout that expires after part
 * of it went out returns len (the message will arrive whole) and the rest
 * is pushed by this channel's next calls (send, recv, poll, close); a send
 * with IPC_NONBLOCK sends a message that fits the buffer whole or returns
 * -EAGAIN having sent nothing.
 */
IPC_API ssize_t ipc_send(ipc_channel *ch, const void *buf, size_t len,
                         int flags);

/*
 * ipc_recv: receive the next message into buf, which holds cap bytes.
 * Returns the message length (0 for an empty message).
 *
 * Errors: -EMSGSIZE (cap is smaller than the message; the message stays
 * queued: ipc_last_error() ends in "needs N bytes", so a caller may grow
 * its buffer to N, at most ipc_max_msg(), and call again:
 *     const char *t = strstr(ipc_last_error(), "needs ");
 *     size_t need = t != NULL ? strtoull(t + 6, NULL, 10)
 *                             : ipc_max_msg(ch);
 * or simply receive into a buffer of ipc_max_msg() bytes; ipc_acquire
 * sizes its buffer itself), -EAGAIN, -ETIMEDOUT, -EPIPE (the peer closed or
 * died and every message it sent has been received), -EPROTO (the peer sent a
 * malformed frame or corrupted shared memory; the channel is failed), -EINVAL.
 */
IPC_API ssize_t ipc_recv(ipc_channel *ch, void *buf, size_t cap, int flags);

/*
 * ipc_close: close the channel and free it.  Objects the channel created
 * (socket files, FIFOs, segments, queues) are removed once neither end uses
 * them, unless the URI asked for persistence.  Returns 0; closing NULL is
 * a no-op that returns 0.  The channel is freed even when an error is
 * returned (-EIO: pending data could not be flushed).
 */
IPC_API int ipc_close(ipc_channel *ch);

/*
 * Zero-copy.  On shared-memory drivers (IPC_CAP_ZEROCOPY) these touch the
 * shared buffer itself; elsewhere they make one internal copy.
 *
 * ipc_reserve: get room for one outgoing message of up to len bytes in
 * *buf.  len may be 0.  Errors as ipc_send, and -EBUSY if a reservation is
 * already open.
 * ipc_commit: send the reserved message with its final length
 * (len <= reserved).  -EINVAL if nothing is reserved or len is too large.
 * Without IPC_CAP_ZEROCOPY, commit is ipc_send of the copy and may wait
 * or fail as ipc_send does; after -EAGAIN or -ETIMEDOUT the reservation
 * stays open and commit may be called again.
 * ipc_acquire: borrow the next incoming message: *buf and *len stay valid
 * until ipc_release().  Errors as ipc_recv (no -EMSGSIZE), and -EBUSY if a
 * message is already acquired.
 * ipc_release: give the borrowed message back.  -EINVAL if none.
 */
IPC_API int ipc_reserve(ipc_channel *ch, size_t len, void **buf, int flags);
IPC_API int ipc_commit(ipc_channel *ch, size_t len);
IPC_API int ipc_acquire(ipc_channel *ch, const void **buf, size_t *len,
                        int flags);
IPC_API int ipc_release(ipc_channel *ch);

/* Readiness bits for ipc_pollitem.events / revents. */
#define IPC_POLLIN  0x1
#define IPC_POLLOUT 0x4
#define IPC_POLLERR 0x8
#define IPC_POLLHUP 0x10

/* An item names a channel, or a listener, or (both NULL) a plain
 * descriptor.  fd is ignored when channel or listener is set, so a
 * zero-initialised item naming a channel is valid; an item with both NULL
 * and fd < 0 is ignored (revents 0), as poll(2) does. */
typedef struct ipc_pollitem {
	ipc_channel *channel;
	ipc_listener *listener;
	int fd; /* counts only when channel and listener are NULL */
	short events;
	short revents;
} ipc_pollitem;

/*
 * ipc_poll: wait until one of the items is ready, like poll(2).
 * IPC_POLLIN on a channel means ipc_recv would not block (a message, or
 * the peer's close, is there); on a listener, ipc_accept would not block.
 * IPC_POLLOUT means ipc_send of a small message would not block.
 * IPC_POLLHUP and IPC_POLLERR are reported whether asked for or not.
 * timeout_ms: -1 forever, 0 do not wait.
 * Returns the number of ready items, 0 on timeout, or -EINVAL (an item
 * names both a channel and a listener), -ENOMEM.  Interruptions are retried
 * with the deadline kept.
 */
IPC_API int ipc_poll(ipc_pollitem *items, size_t n, int timeout_ms);

/*
 * ipc_fd: a descriptor for epoll, libuv, selectors and other event loops,
 * level-triggered on every driver: it polls readable whenever ipc_recv
 * would not block (a message, the peer's close, or an error), whatever
 * other calls (ipc_poll, ipc_recv, ipc_acquire) happened before, and it
 * stops being readable once a non-blocking ipc_recv has said -EAGAIN.  A
 * spurious wake-up is possible (the receive then says -EAGAIN), so receive
 * with IPC_NONBLOCK; receiving one message per wake-up is enough.  The
 * descriptor is made on the first call and belongs to the channel: do not
 * read from or close it.  It costs the data path nothing until it is asked
 * for, and no system call per message after.  Returns -EINVAL for NULL.
 * If a send returned with the rest of a message still to go (see
 * ipc_send), only calls on the channel push it: an event loop that waits on
 * this descriptor alone should retry ipc_send, or use ipc_poll, until its
 * messages are out.
 */
IPC_API int ipc_fd(const ipc_channel *ch);

/*
 * Servers with many peers (drivers with IPC_CAP_LISTEN; others return
 * -EOPNOTSUPP).  ipc_listen implies IPC_CREATE.  ipc_accept returns one
 * connected channel per peer; -EAGAIN with IPC_NONBLOCK when none waits.
 * ipc_listener_fd: readable when ipc_accept would not block.
 * ipc_listener_close: stop listening and remove the address (socket file).
 */
IPC_API int ipc_listen(ipc_listener **out, const char *uri, int flags);
IPC_API int ipc_accept(ipc_listener *l, ipc_channel **out, int flags);
IPC_API int ipc_listener_fd(const ipc_listener *l);
IPC_API int ipc_listener_close(ipc_listener *l);

/*
 * ipc_pair: two connected channels in this process, for fork():
 * "pipe:", "unix:", "unix+seqpacket:", "unix+dgram:", "shm:", "inproc:"...
 * After fork each process closes the end it does not use; that close does
 * not disturb the other process.  -EOPNOTSUPP for drivers without pairs.
 */
IPC_API int ipc_pair(ipc_channel **a, ipc_channel **b, const char *uri);

/* ipc_set_timeout: limit for blocking calls in milliseconds; -1 forever
 * (the default), 0 never block.  -EINVAL for NULL or timeout_ms < -1. */
IPC_API int ipc_set_timeout(ipc_channel *ch, int timeout_ms);
/* ipc_max_msg: the largest message this channel carries (0 for NULL). */
IPC_API size_t ipc_max_msg(const ipc_channel *ch);
/* ipc_caps: IPC_CAP_* bits of this channel (0 for NULL). */
IPC_API unsigned ipc_caps(const ipc_channel *ch);
/*
 * ipc_local_uri: the URI another process would open (without IPC_CREATE)
 * to reach the endpoint this channel belongs to, resolved: a creator of
 * "tcp://127.0.0.1:0" gets its real port, a unix:// channel its path, a
 * shm:// channel its name.  On a connecting end it is the address it
 * reached.  NULL (with ipc_last_error() set) for channels of ipc_pair and
 * fd://, which have no address.  The string belongs to the channel.
 * ipc_listener_uri: the same for a listener.
 */
IPC_API const char *ipc_local_uri(const ipc_channel *ch);
IPC_API const char *ipc_listener_uri(const ipc_listener *l);
/* ipc_scheme: "shm", "tcp", ... (NULL for NULL). */
IPC_API const char *ipc_scheme(const ipc_channel *ch);
/* ipc_peer_cred: pid, uid and gid of the other end, as the kernel tells
 * them (SO_PEERCRED, the owner of the queue or segment, ...); any out
 * pointer may be NULL.  pid is 0 where only the owner of the object is
 * known.  -ENOTCONN before a creator's peer arrived; -EOPNOTSUPP where the
 * driver cannot know (tcp, udp, pipe, fd).  docs/security.md lists what
 * each driver knows and checks (URI options allow_uid= and allow_gid=). */
IPC_API int ipc_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid,
                          gid_t *gid);
/*
 * Publish/subscribe facts (docs/pubsub.md).
 * ipc_subscribers: the number of subscribers a publisher has now (taking
 * in those that arrived and letting go of those that left); -EINVAL for
 * NULL or a channel opened without IPC_PUBLISH.
 * ipc_dropped: messages lost so far: on a subscriber, those the publisher
 * could not hand it under slow=drop; on a publisher, those sent while it
 * had no subscriber (and, under slow=drop, one count per subscriber that
 * missed a message).  0 for NULL and for channels that are not pub/sub.
 */
IPC_API int ipc_subscribers(const ipc_channel *pub);
IPC_API unsigned long long ipc_dropped(const ipc_channel *ch);
/* ipc_strerror: text for an error as returned (negative). */
IPC_API const char *ipc_strerror(int err);
/* ipc_last_error: this thread's detail on its last failure, e.g.
 * "mq://x: msgsize 1e9 exceeds /proc/sys/fs/mqueue/msgsize_max".
 * Never NULL; "" before any failure. */
IPC_API const char *ipc_last_error(void);

#define IPC_CAP_RELIABLE  0x01 /* no loss while both peers live */
#define IPC_CAP_ORDERED   0x02
#define IPC_CAP_ZEROCOPY  0x04 /* reserve/acquire touch the shared buffer */
#define IPC_CAP_LISTEN    0x08
#define IPC_CAP_PEERCLOSE 0x10 /* the peer's close and death are reported */
#define IPC_CAP_CROSSHOST 0x20
#define IPC_CAP_PUBSUB    0x40 /* carries IPC_PUBLISH / IPC_SUBSCRIBE */

#ifdef __cplusplus
}
#endif

#endif /* IPC_IPC_H */
