/*
 * The driver interface: what a transport implements and what the core
 * promises it.  One driver per mechanism, one file in src/backends/, which
 * exports exactly one `const struct ipc_driver ipc_driver_<name>` and keeps
 * everything else static.  src/core/registry.c lists the drivers.
 *
 * Rules every driver keeps:
 *  - Drivers never block.  A call that cannot complete now returns -EAGAIN;
 *    the core waits (poll(2) on the descriptors pollfds() names, or the
 *    driver's own wait()) and calls again, and it owns timeouts, deadlines,
 *    IPC_NONBLOCK and EINTR.
 *  - Errors are negative errno values, and every failure path records a
 *    sentence with ipc__err() before returning.  -EAGAIN is not a failure
 *    and must not be recorded.
 *  - One thread may send while another receives: send-side and recv-side
 *    state must not share unsynchronised fields.
 *  - Everything the driver reads from a peer (frame headers, shared memory)
 *    is hostile: check every length and index.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_DRIVER_H
#define IPC_CORE_DRIVER_H

#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "ipc/ipc.h"

/* ---------------------------------------------------------------- URIs -- */

/* The address form a driver takes.  The URI parser never names a scheme:
 * it splits scheme://authority/path?query and the driver's form decides
 * what is valid. */
enum ipc_addr_form {
	IPC_ADDR_NONE,     /* "pipe:" - nothing after the scheme */
	IPC_ADDR_NAME,     /* "shm://NAME", NAME = [A-Za-z0-9._-]{1,200} */
	IPC_ADDR_PATH,     /* "fifo:///abs/path" */
	IPC_ADDR_UNIXPATH, /* "unix:///abs/path" or "unix://@abstract" */
	IPC_ADDR_HOSTPORT, /* "tcp://host:port", "tcp://[::1]:port" */
	IPC_ADDR_CUSTOM,   /* the driver reads u->authority and u->path */
};

enum ipc_opt_type {
	IPC_OPT_UINT, /* decimal or 0x hex, min..max */
	IPC_OPT_SIZE, /* like UINT, with an optional k, M or G suffix (x1024)
	               */
	IPC_OPT_BOOL, /* 0/1, true/false, yes/no, on/off */
	IPC_OPT_ENUM, /* one of choices[]; the value is the index */
	IPC_OPT_MODE, /* octal permission bits, 0..0777 */
	IPC_OPT_STR,  /* any percent-decoded string */
};

/* One accepted ?key=value option.  A driver lists them in a table ended by
 * an entry with key == NULL.  The core rejects unknown keys and bad values
 * with -EINVAL and a precise message before the driver sees the URI. */
struct ipc_optspec {
	const char *key;
	enum ipc_opt_type type;
	unsigned long long min, max; /* UINT, SIZE */
	const char *const *choices;  /* ENUM: NULL-terminated */
	const char *help;            /* a few words, for docs and errors */
};

#define IPC_URI_MAXOPTS 16

struct ipc_optval {
	int set;                /* given in the URI */
	unsigned long long num; /* UINT, SIZE, BOOL, ENUM (index), MODE */
	const char *str;        /* decoded text of the value */
};

/* A parsed URI.  All strings are percent-decoded and owned by the struct
 * (ipc__uri_free).  Fields that do not apply are NULL. */
struct ipc_uri {
	const char *text; /* the URI as given, for messages */
	char *scheme;     /* "unix+dgram" */
	char *authority;  /* between "//" and the next '/' or '?' */
	char *path;       /* from the first '/' after the authority */
	char *name;       /* IPC_ADDR_NAME: the name */
	char *host;       /* IPC_ADDR_HOSTPORT: without brackets */
	unsigned port;    /* IPC_ADDR_HOSTPORT */
	char *fspath;     /* IPC_ADDR_PATH / UNIXPATH: the path */
	int abstract;     /* IPC_ADDR_UNIXPATH: "@name" (fspath = name) */
	int has_addr;     /* something followed the scheme */
	const struct ipc_optspec *specs;        /* the driver's table */
	struct ipc_optval opt[IPC_URI_MAXOPTS]; /* parallel to specs */
};

/* Option accessors by key.  The key must be in the driver's table (a
 * programming error otherwise: abort()).  Return the default when the URI
 * did not give the option. */
unsigned long long ipc__opt_num(const struct ipc_uri *u, const char *key,
                                unsigned long long def);
const char *ipc__opt_str(const struct ipc_uri *u, const char *key,
                         const char *def);
int ipc__opt_isset(const struct ipc_uri *u, const char *key);

/* Publish/subscribe options (DESIGN.md 2b, docs/pubsub.md): a driver with
 * native pub/sub puts IPC_PUBSUB_OPTS in its option table and reads them
 * with ipc__pubsub_opts(), which also refuses them on a channel that is
 * neither publisher nor subscriber. */
extern const char *const ipc__slow_choices[]; /* "block", "drop" */
#define IPC_PUBSUB_HISTORY_MAX 65536u
#define IPC_PUBSUB_OPTS                                                       \
	{"slow",                                                              \
	 IPC_OPT_ENUM,                                                        \
	 0,                                                                   \
	 0,                                                                   \
	 ipc__slow_choices,                                                   \
	 "block (default: the publisher waits) or drop"},                     \
	{                                                                     \
		"history", IPC_OPT_UINT, 0, IPC_PUBSUB_HISTORY_MAX, NULL,     \
		        "messages replayed to a late subscriber, default 0"   \
	}
struct ipc_pubsub_opts {
	int drop;         /* slow=drop */
	unsigned history; /* history=N */
};
/* Read slow= and history= for a channel opened with flags; -EINVAL
 * (recorded) when they are given without IPC_PUBLISH / IPC_SUBSCRIBE. */
int ipc__pubsub_opts(const struct ipc_uri *u, int flags,
                     struct ipc_pubsub_opts *o);

/* Shared option tables for stream drivers ("framing", "maxmsg"); a driver
 * may point its opts at one of these or copy the entries into its own. */
extern const char *const ipc__framing_choices[]; /* "length","line","raw" */

/* -------------------------------------------------------------- errors -- */

/* Record this thread's last error: "<uri>: <printf text>" and return err
 * (a negative errno) so that `return ipc__err(-ENOENT, u->text, "...")`
 * reads naturally.  uri may be NULL. */
int ipc__err(int err, const char *uri, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* -EMSGSIZE from a receive whose buffer of cap bytes is too small for a
 * message of need bytes (which stays queued): the one text every driver
 * gives, "URI: recv: message of N bytes does not fit the C-byte buffer:
 * it stays queued, needs N bytes". */
int ipc__err_msgsize(const char *uri, size_t need, size_t cap);
/* -EPIPE for a peer that is gone, in the one text every driver gives:
 * "URI: WHAT: the peer closed the channel", or where the driver saw it go
 * without closing (no close record, heartbeats stopped) "URI: WHAT: the
 * peer died without closing the channel" (DESIGN.md 3: both are -EPIPE;
 * the text tells a crash from a close); where the driver cannot tell
 * (a stream's end of file), "the peer closed the channel or exited".
 * what: "recv", "send", ... */
enum ipc_peer_end { IPC_PEER_CLOSED, IPC_PEER_DIED, IPC_PEER_EITHER };
int ipc__err_peer(const char *uri, const char *what, enum ipc_peer_end how);
/* Same, appending ": strerror(-err)". */
int ipc__errno(int err, const char *uri, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------- the channel -- */

/* The core allocates sizeof(struct ipc_channel) + drv->priv_size bytes,
 * zeroed, and hands the driver its state with ipc__priv(ch). */
struct ipc_channel {
	const struct ipc_driver *drv;
	int flags;      /* IPC_NONBLOCK given at open */
	int timeout_ms; /* -1 forever */
	size_t max_msg; /* set by the driver in open/pair/accept */
	unsigned caps;  /* drv->caps unless the driver changed it at open */
	char *uri;      /* copy of the URI, for messages; may be "pipe:" */
	/* copy fallbacks of reserve/acquire (drivers without those slots) */
	unsigned char *txcopy;
	size_t txcopy_cap, reserved;
	int reserving;
	unsigned char *rxcopy;
	size_t rxcopy_cap;
	int acquired;
	int opened; /* the driver's open succeeded: close is owed */
	/* Set by the core before each send: this call cannot wait, so the
	 * driver should prefer -EAGAIN to sending part of the message. */
	int send_nowait;
	/* Set by the core before each recv: this call may wait forever (no
	 * IPC_NONBLOCK, no timeout), so a driver may block in the kernel
	 * itself rather than return -EAGAIN and be polled. */
	int recv_block;
	/* ipc_fd()'s level-triggered set, made on first use (readyfd.h). */
	_Atomic(struct ipc_readyfd *) readyfd;
	char *local_uri; /* ipc_local_uri(), made on first use */
	int has_addr;    /* opened by an address (not ipc_pair) */
	/* IPC_PUBLISH, IPC_SUBSCRIBE or 0: set by the core before open(),
	 * which may read it (see the publish/subscribe slots below). */
	int role;
	/* ipc_scheme(): drv->scheme, unless a core layer stands in for
	 * the driver named by the URI (core/pubsub.c). */
	const char *scheme;
	max_align_t priv[];
};

struct ipc_listener {
	const struct ipc_driver *drv;
	int flags;
	char *uri;
	struct ipc_uri *parsed; /* kept for accept: drivers read options */
	int opened;
	char *local_uri; /* ipc_listener_uri(), made on first use */
	max_align_t priv[];
};

static inline void *
ipc__priv(ipc_channel *ch)
{
	return ch->priv;
}

static inline const void *
ipc__cpriv(const ipc_channel *ch)
{
	return ch->priv;
}

static inline void *
ipc__lpriv(ipc_listener *l)
{
	return l->priv;
}

static inline const void *
ipc__clpriv(const ipc_listener *l)
{
	return l->priv;
}

/* Most descriptors a driver names for one wait. */
#define IPC_MAXPFD 4

/* ----------------------------------------------------------- the table -- */

struct ipc_driver {
	const char *scheme; /* "unix+dgram"; lower case */
	unsigned caps;      /* IPC_CAP_* */
	enum ipc_addr_form addr;
	const struct ipc_optspec *opts; /* NULL: no options accepted */
	size_t priv_size;  /* per-channel state, zeroed by the core */
	size_t lpriv_size; /* per-listener state (0 without listen) */

	/* Required.  Open one end, without blocking and without waiting for
	 * a peer (DESIGN.md 3).  flags: IPC_CREATE, IPC_NONBLOCK.  Set
	 * ch->max_msg.  On failure: release everything, record the error,
	 * return it; close() will not be called. */
	int (*open)(ipc_channel *ch, const struct ipc_uri *u, int flags);

	/* Optional (NULL: ipc_pair returns -EOPNOTSUPP).  Make a connected
	 * pair in this process; both must survive fork() with each process
	 * closing one end.  Same failure rule as open. */
	int (*pair)(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u);

	/* Required.  Send one whole message, never blocking.  Returns len;
	 * -EAGAIN (nothing sent: no room or no peer yet; the core waits for
	 * POLLOUT and calls again); -EPIPE (peer gone); -EMSGSIZE (len >
	 * max_msg: nothing sent; the core checks this before calling).
	 * Never half a message.  A driver that wrote part of it may return
	 * -EINPROGRESS: the core then waits for POLLOUT and calls send
	 * again with the same buf and len, which continues where it
	 * stopped (no copy); and if the core has to return to the caller
	 * first (IPC_NONBLOCK, timeout), it calls detach() and reports the
	 * message sent. */
	ssize_t (*send)(ipc_channel *ch, const void *buf, size_t len);

	/* Required if send can return -EINPROGRESS.  Copy the unsent rest
	 * of the message out of the caller's buffer; the driver finishes it
	 * before the next message (and from recv/ready/close, so that a
	 * caller who only receives afterwards does not deadlock its peer).
	 * Returns 0 or -ENOMEM. */
	int (*detach)(ipc_channel *ch);

	/* Required.  Receive one whole message into buf[cap], never
	 * blocking.  Returns its length; -EMSGSIZE if cap is too small (the
	 * message stays queued); -EAGAIN; -EPIPE after the peer's close once
	 * everything it sent was delivered; -EPROTO on a malformed frame. */
	ssize_t (*recv)(ipc_channel *ch, void *buf, size_t cap);

	/* Required.  Release everything; remove created OS objects unless
	 * persistent.  Must tolerate a peer that is gone.  Returns 0 or a
	 * negative errno (the channel is freed regardless). */
	int (*close)(ipc_channel *ch);

	/* Required.  Name up to IPC_MAXPFD descriptors (with their poll
	 * events set) whose readiness may make `events` (IPC_POLLIN and/or
	 * IPC_POLLOUT) possible; return how many.  Set *retry_ms >= 0 when
	 * readiness cannot be fully seen through descriptors (no peer yet,
	 * an unpollable object): the core then calls send/recv/ready again
	 * after at most that long.  It starts as -1. */
	int (*pollfds)(ipc_channel *ch, short events, struct pollfd *pfd,
	               int *retry_ms);

	/* Optional.  Report IPC_POLL* bits that hold now.  Called before
	 * waiting (data already buffered inside the driver) with pfd NULL,
	 * and after poll(2) with the descriptors pollfds() filled.  NULL:
	 * the core maps POLLIN/POLLOUT/POLLERR/POLLHUP of the descriptors. */
	short (*ready)(ipc_channel *ch, short events, const struct pollfd *pfd,
	               int npfd);

	/* Optional.  Wait for `events` on this one channel better than
	 * poll(2) can (a futex).  Returns 0 when something may be ready (the
	 * core retries), -ETIMEDOUT at the deadline (NULL: none).  Used by
	 * blocking send/recv; ipc_poll always uses pollfds(). */
	int (*wait)(ipc_channel *ch, short events,
	            const struct timespec *deadline);

	/* Optional zero-copy, all four or none (NULL: the core copies
	 * through send/recv).  Non-blocking like send/recv.  reserve: room
	 * for len bytes, -EAGAIN when full.  commit: publish len bytes.
	 * acquire: the next message in place, -EAGAIN when none.  release:
	 * free it. */
	int (*reserve)(ipc_channel *ch, size_t len, void **buf);
	int (*commit)(ipc_channel *ch, size_t len);
	int (*acquire)(ipc_channel *ch, const void **buf, size_t *len);
	int (*release)(ipc_channel *ch);

	/* Optional (NULL: the core runs a helper thread in wait(); see
	 * core/readyfd.c).  A descriptor that is readable,
	 * level-triggered, whenever something not yet taken into the
	 * library's buffers may make recv succeed: kernel data, the peer's
	 * close, an error; what the driver already holds is reported by
	 * ready(IPC_POLLIN, NULL) and the core adds it (core/readyfd.c).
	 * recv returning -EAGAIN must leave it unreadable. */
	int (*fd)(const ipc_channel *ch);

	/* Optional.  The URI a peer would open to reach this end, resolved
	 * (a bound port, not 0), as a malloc'ed string; NULL with the error
	 * recorded when there is none.  NULL slot: the URI as opened, when
	 * it named an address; ipc_listener_uri() likewise with l->uri. */
	char *(*local_uri)(const ipc_channel *ch);
	char *(*listener_uri)(const ipc_listener *l);

	/* Listeners: all four or none (IPC_CAP_LISTEN).  listen: bind, never
	 * blocking.  accept: one peer into ch (zeroed, priv_size bytes),
	 * -EAGAIN when none waits; set ch->max_msg.  listener_fd: readable
	 * when accept would not block. */
	int (*listen)(ipc_listener *l, const struct ipc_uri *u, int flags);
	int (*accept)(ipc_listener *l, ipc_channel *ch);
	int (*listener_fd)(const ipc_listener *l);
	int (*listener_close)(ipc_listener *l);

	/* Publish/subscribe (IPC_CAP_PUBSUB; DESIGN.md 2b, docs/pubsub.md).
	 * A driver without IPC_CAP_PUBSUB never sees IPC_PUBLISH or
	 * IPC_SUBSCRIBE: the core refuses them with -EOPNOTSUPP.  A driver
	 * with it carries pub/sub in one of two ways:
	 *
	 *  - Natively (shm://): it fills `subscribers`.  ipc_open() then
	 *    calls open() with IPC_PUBLISH (IPC_CREATE always set with it)
	 *    or IPC_SUBSCRIBE (IPC_CREATE never set with it) in flags, and
	 *    ch->role says the same.  The driver declares IPC_PUBSUB_OPTS
	 *    in its option table and reads them with ipc__pubsub_opts().
	 *    The core guarantees: send/reserve/commit never reach a
	 *    subscriber's driver and recv/acquire/release never reach a
	 *    publisher's (the core answers -EOPNOTSUPP); subscribers() is
	 *    called only on a publisher.  The publisher's send keeps the
	 *    send contract: -EAGAIN while slow=block and a live subscriber
	 *    has no room (the core waits through pollfds()/wait() for
	 *    IPC_POLLOUT); with no subscriber it returns len and counts
	 *    the message dropped, never -EAGAIN (unless history= keeps it).
	 *    The subscriber's recv keeps the recv contract, and returns
	 *    -EPIPE after the publisher's close once its backlog is
	 *    drained.  ipc_fd()/ipc_poll on a subscriber: as any receiver;
	 *    on a publisher pollfds(IPC_POLLOUT) names what a blocked send
	 *    waits for.  A dead subscriber must never stall the publisher.
	 *
	 *  - Through the core (unix, unix+seqpacket, tcp, tls+tcp):
	 *    `subscribers` NULL and the four listener slots filled.
	 *    core/pubsub.c makes the publisher a listener plus one accepted
	 *    channel per subscriber, and the subscriber a connecting
	 *    channel; the driver needs nothing else.
	 *
	 * subscribers: the publisher's current subscriber count (taking in
	 * arrivals and letting go of departures, without blocking), or a
	 * negative errno (recorded).
	 * dropped: optional (NULL: 0); messages lost so far, as
	 * ipc_dropped() documents; called on publishers and subscribers. */
	int (*subscribers)(const ipc_channel *ch);
	unsigned long long (*dropped)(const ipc_channel *ch);

	/* Optional (NULL: ipc_peer_cred says -EOPNOTSUPP).  The pid, uid
	 * and gid of the other end (pid 0 where only the owner of the
	 * object is known); any out pointer may be NULL.  -ENOTCONN before
	 * a peer arrived; -EOPNOTSUPP where the driver cannot tell this
	 * time (recorded).  Never blocks. */
	int (*peer_cred)(const ipc_channel *ch, pid_t *pid, uid_t *uid,
	                 gid_t *gid);
};

/* --------------------------------------------------------- core helpers -- */

/* Monotonic deadline arithmetic.  A NULL deadline means forever. */
void ipc__deadline(struct timespec *dl, int timeout_ms);
/* The same from CLOCK_MONOTONIC_COARSE: up to a clock tick (a few ms)
 * early, and much cheaper to read where the precise clock costs a TSC
 * read (over 100 ns in some virtual machines): for the slices of a wait
 * on a hot path, never for a caller's deadline. */
void ipc__deadline_coarse(struct timespec *dl, int timeout_ms);
/* Milliseconds left until dl, rounded up; -1 for NULL; 0 if passed. */
int ipc__remaining_ms(const struct timespec *dl);

/* Write without ever raising SIGPIPE, for pipes and FIFOs (sockets use
 * MSG_NOSIGNAL).  Returns bytes written or -errno (-EAGAIN, -EPIPE). */
ssize_t ipc__writev_nosigpipe(int fd, const struct iovec *iov, int iovcnt);

/* Set O_NONBLOCK and FD_CLOEXEC.  Returns 0 or -errno. */
int ipc__fd_setup(int fd);

/* Keep an eventfd readable exactly while `want` holds: write or drain it
 * when *on differs from want (no system call otherwise). */
void ipc__efd_level(int fd, int *on, int want);

/* Validate NAME = [A-Za-z0-9._-]{1,200}. */
int ipc__valid_name(const char *name);

/* Run fn(arg) with a umask of 0 and return what it returns, so that a
 * file it creates (mkfifo, bind of a Unix socket) gets exactly the mode
 * asked for at creation and is never chmod()ed by name afterwards (a
 * path in a directory others can write may be a symlink by then).  fn
 * runs in a short-lived thread with its own umask (unshare(CLONE_FS)):
 * the rest of the process never sees the change.  Where that is refused
 * (seccomp), fn runs in this thread inside a process-wide umask(0)
 * section serialised by a mutex.  fn returns 0 or -errno and must not
 * record errors itself (the thread's last error is not the caller's). */
int ipc__umask0(int (*fn)(void *arg), void *arg);

#endif /* IPC_CORE_DRIVER_H */
