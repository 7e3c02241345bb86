/*
 * dbus://session/NAME, dbus://system/NAME, dbus:///NAME?address=ADDR:
 * D-Bus through a bus daemon, with sd-bus (libsystemd).
 *
 * NAME is a well-known bus name.  The creator (IPC_CREATE) owns it; the
 * opener resolves its owner's unique name once, at open, and talks to that
 * connection only.  A message is one method call Send(ay) on interface
 * org.libipc.Channel1 at object path /org/libipc/Channel; both ends export
 * that object, so any D-Bus program that calls or implements the method is
 * a peer (dbus-send, busctl, gdbus, Python).  The creator learns its peer
 * (a unique name) from the first call it receives and rejects every other
 * caller with an error reply; the opener announces itself at open with a
 * call Open() (a peer that does not implement it answers UnknownMethod,
 * which is fine).
 *
 * Flow control: the reply to a Send is its acknowledgement, and it is sent
 * when the receiving program takes the message (ipc_recv), not when it
 * reaches the library.  A sender keeps at most `window` calls (and about
 * WIN_BYTES bytes) without a reply, so a slow receiver is backpressure.
 * The peer's close and death come from the bus: NameOwnerChanged for its
 * unique name.
 *
 * sd-bus is not thread-safe: one connection per channel, every use of it
 * under the channel's mutex.  The core waits on the connection's descriptor
 * and on two eventfds this file keeps level with its state (rx: a message
 * is queued or the channel ended; tx: a send would not block).  ipc_fd() is
 * an epoll descriptor over the connection and the rx eventfd.
 *
 * The bus side (addresses, names, owners, credentials) is in
 * src/core/dbusbus.c.  See docs/dbus.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "core/dbusbus.h"
#include "core/trust.h"
#include "core/wait.h"

#define OBJ_PATH  "/org/libipc/Channel"
#define IFACE     "org.libipc.Channel1"
#define ERR_PEER  "org.libipc.Error.NotPeer"
#define ERR_LIMIT "org.libipc.Error.LimitsExceeded"
#define ERR_SIZE  "org.libipc.Error.TooLarge"

#define DEF_MAXMSG    (4u << 20) /* dbus-daemon moves ~5 MB/s of one message */
#define MAX_MAXMSG    (64u << 20) /* D-Bus arrays are at most 2^26 bytes */
#define DEF_WINDOW    64 /* the system bus allows 128 pending replies */
#define WIN_BYTES     (8u << 20) /* bytes in flight, at least one message */
#define RX_MAXMSGS    1100       /* > the largest window, for hostile peers */
#define PUMP_MAX      4096       /* sd_bus_process rounds per call */
#define CLOSE_SYNC_US (10u * 1000000u) /* close's wait for the daemon */

static const struct ipc_optspec dbus_opts[] = {
        {"address", IPC_OPT_STR, 0, 0, NULL,
         "D-Bus address of the bus (unix:path=/PATH)"},
        {"maxmsg", IPC_OPT_SIZE, 1u << 20, MAX_MAXMSG, NULL,
         "largest message, 1M..64M"},
        {"window", IPC_OPT_UINT, 1, 1024, NULL,
         "calls in flight without a reply"},
        IPC_TRUST_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

struct rxmsg {
	struct rxmsg *next;
	sd_bus_message *m; /* held until taken: then the reply acks it */
	const void *data;
	size_t len;
};

struct dbus_ch {
	pthread_mutex_t mu; /* everything below, and the sd_bus */
	sd_bus *bus;
	const char *uri;
	char *peer;  /* unique name of the peer; NULL until known */
	char *owned; /* creator: the well-known name it owns */
	int creator;
	int rx_efd, tx_efd, ep;
	int rx_on, tx_on, ep_events;
	struct rxmsg *head, **tail;
	size_t rx_count, rx_bytes, rx_max_bytes;
	unsigned inflight, window;
	size_t inflight_bytes, win_bytes;
	int backlog; /* pump stopped with work left */
	int partial; /* a sent call is still in sd-bus's write queue */
	int gone;    /* the peer's name vanished or the bus connection broke */
	int tx_err;  /* sticky send error */
	char why[256];
	struct ipc_trust trust;
	struct ipc_cred cred; /* the peer's, from the bus daemon */
	int refused;          /* creator: a caller was refused; say so once */
	char refusal[256];
};

struct call_ctx {
	struct dbus_ch *p;
	size_t len;
};

/* ---------------------------------------------------------- helpers -- */

static void set_why(struct dbus_ch *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
set_why(struct dbus_ch *p, const char *fmt, ...)
{
	va_list ap;

	if (p->why[0] != '\0') {
		return; /* the first cause is the one to tell */
	}
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
}

static int
send_ready(const struct dbus_ch *p)
{
	if (p->gone || p->tx_err) {
		return 1; /* send fails at once */
	}
	if (p->peer == NULL || p->partial) {
		return 0;
	}
	return p->inflight < p->window &&
	       (p->inflight == 0 || p->inflight_bytes < p->win_bytes);
}

/* Bring the eventfds and the epoll set in line with the state. */
static void
sync_fds(struct dbus_ch *p)
{
	ipc__efd_level(p->rx_efd, &p->rx_on,
	               p->head != NULL || p->gone || p->backlog ||
	                       p->tx_err == -ENOMEM);
	ipc__efd_level(p->tx_efd, &p->tx_on, send_ready(p) || p->backlog);
	if (p->bus == NULL || p->gone) {
		return;
	}
	int ev = sd_bus_get_events(p->bus);
	int want = EPOLLIN | ((ev > 0 && (ev & POLLOUT)) ? EPOLLOUT : 0);
	if (want != p->ep_events) {
		struct epoll_event e = {.events = (uint32_t)want};
		int fd = sd_bus_get_fd(p->bus);
		if (fd >= 0 && epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &e) == 0) {
			p->ep_events = want;
		}
	}
}

/* The connection broke (or the bus closed it): the peer is unreachable. */
static void
bus_lost(struct dbus_ch *p, int r)
{
	if (!p->gone) {
		set_why(p, "bus connection lost: %s", strerror(-r));
	}
	p->gone = 1;
}

/* Let sd-bus read, write and dispatch what it can.  Holds p->mu. */
static void
pump(struct dbus_ch *p)
{
	p->backlog = 0;
	if (p->bus == NULL) {
		return;
	}
	for (int i = 0; i < PUMP_MAX; i++) {
		int r = sd_bus_process(p->bus, NULL);
		if (r < 0) {
			bus_lost(p, r);
			return;
		}
		if (r == 0) {
			return;
		}
	}
	p->backlog = 1; /* a flood: come back soon */
}

/* --------------------------------------------------- peer liveness -- */

static int
on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct dbus_ch *p = userdata;
	const char *name, *old, *new;

	if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0) {
		return 0; /* malformed: not from the bus driver */
	}
	if (p->peer != NULL && strcmp(name, p->peer) == 0 && new[0] == '\0') {
		set_why(p,
		        "the peer closed the channel or exited (%s left "
		        "the bus)",
		        p->peer);
		p->gone = 1;
	}
	return 0;
}

static int
on_has_owner(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct dbus_ch *p = userdata;
	int has = 1;

	if (sd_bus_message_is_method_error(m, NULL) ||
	    sd_bus_message_read(m, "b", &has) < 0 || !has) {
		set_why(p,
		        "the peer closed the channel or exited (%s left "
		        "the bus)",
		        p->peer);
		p->gone = 1;
	}
	return 0;
}

/* The match is in place: from now on its death is seen; was it already
 * gone? */
static int
on_match_added(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct dbus_ch *p = userdata;
	const sd_bus_error *err = sd_bus_message_get_error(m);

	if (err != NULL) {
		set_why(p, "cannot watch peer %s: %s", p->peer, err->name);
		p->gone = 1;
		return 0;
	}
	int r = sd_bus_call_method_async(
	        p->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
	        "org.freedesktop.DBus", "NameHasOwner", on_has_owner, p, "s",
	        p->peer);
	if (r < 0) {
		bus_lost(p, r);
	}
	return 0;
}

/* Watch p->peer's unique name: its disappearance is the peer's close or
 * death. */
static int
watch_peer(struct dbus_ch *p)
{
	char rule[512];

	snprintf(rule, sizeof(rule),
	         "type='signal',sender='org.freedesktop.DBus',"
	         "path='/org/freedesktop/DBus',interface='org.freedesktop."
	         "DBus',member='NameOwnerChanged',arg0='%s'",
	         p->peer);
	return sd_bus_add_match_async(p->bus, NULL, rule, on_owner_changed,
	                              on_match_added, p);
}

/* Creator with allow_uid=/allow_gid=: may sender be the peer? */
static int
creator_trusts(struct dbus_ch *p, const char *sender)
{
	struct ipc_cred c = {0};

	if (ipc__dbus_cred(p->bus, sender, &c) < 0) {
		if (!p->trust.check) {
			return 1; /* gone already: recv will say so */
		}
		snprintf(p->refusal, sizeof(p->refusal),
		         "refused: the bus does not know caller %s", sender);
		p->refused = 1;
		return 0;
	}
	if (ipc__trust_check(&p->trust, p->uri, "the peer", &c) < 0) {
		snprintf(p->refusal, sizeof(p->refusal), "%s",
		         ipc_last_error());
		p->refused = 1;
		return 0;
	}
	p->cred = c;
	return 1;
}

/* Take sender as the peer if there is none yet (creator).  Returns 1 when
 * sender is the peer, 0 when it is a third party, <0 on error. */
static int
adopt(struct dbus_ch *p, const char *sender)
{
	if (sender == NULL) {
		return 0;
	}
	if (p->peer != NULL) {
		return strcmp(sender, p->peer) == 0;
	}
	if (!p->creator || !creator_trusts(p, sender)) {
		return 0;
	}
	p->peer = strdup(sender);
	if (p->peer == NULL) {
		return -ENOMEM;
	}
	int r = watch_peer(p);
	if (r < 0) {
		bus_lost(p, r);
	}
	return 1;
}

static int
reject(sd_bus_message *m, struct dbus_ch *p)
{
	if (p->peer == NULL && p->creator) {
		return sd_bus_reply_method_errorf(
		        m, SD_BUS_ERROR_ACCESS_DENIED,
		        "refused by the channel's allow_uid=/allow_gid=");
	}
	return sd_bus_reply_method_errorf(
	        m, ERR_PEER, "this channel's peer is %s",
	        p->peer != NULL ? p->peer : "not known yet");
}

/* A Send of the peer cannot be queued (out of memory): it is refused
 * with NoMemory, which the sender reports as -ENOMEM, and the channel
 * ends here after the messages queued before it (a later one would
 * arrive after a gap).  Never a silent drop. */
static int
refuse_nomem(sd_bus_message *m, struct dbus_ch *p)
{
	const char *s = sd_bus_message_get_sender(m);

	set_why(p,
	        "a message from %s could not be queued (out of memory): it "
	        "was refused, the sender was told, and the channel ends here",
	        s ? s : "the peer");
	p->tx_err = -ENOMEM;
	return sd_bus_reply_method_errorf(
	        m, SD_BUS_ERROR_NO_MEMORY,
	        "out of memory: the message was not taken");
}

/* ------------------------------------------------- the exported object */

static int
method_open(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct dbus_ch *p = userdata;
	int r = adopt(p, sd_bus_message_get_sender(m));

	if (r < 0) {
		return r;
	}
	if (r == 0) {
		return reject(m, p);
	}
	return sd_bus_reply_method_return(m, NULL);
}

static int
method_send(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct dbus_ch *p = userdata;
	const void *data = NULL;
	size_t len = 0;
	int r = adopt(p, sd_bus_message_get_sender(m));

	if (r < 0) {
		return refuse_nomem(m, p);
	}
	if (r == 0) {
		return reject(m, p);
	}
	if (p->tx_err == -ENOMEM) {
		/* An earlier message was lost: nothing after the gap. */
		return sd_bus_reply_method_errorf(
		        m, SD_BUS_ERROR_NO_MEMORY,
		        "an earlier message was refused: the channel has "
		        "ended");
	}
	r = sd_bus_message_read_array(m, 'y', &data, &len);
	if (r < 0) {
		return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS,
		                                  "Send takes one ay");
	}
	if (len > p->rx_max_bytes) {
		return sd_bus_reply_method_errorf(
		        m, ERR_SIZE, "%zu bytes exceed this channel's %zu",
		        len, p->rx_max_bytes);
	}
	if (p->rx_count >= RX_MAXMSGS ||
	    (p->rx_count > 0 && p->rx_bytes + len > 8 * p->rx_max_bytes)) {
		return sd_bus_reply_method_errorf(
		        m, ERR_LIMIT, "%zu messages are waiting to be read",
		        p->rx_count);
	}
	struct rxmsg *x = malloc(sizeof(*x));
	if (x == NULL) {
		return refuse_nomem(m, p);
	}
	x->next = NULL;
	x->m = sd_bus_message_ref(m);
	x->data = data;
	x->len = len;
	*p->tail = x;
	p->tail = &x->next;
	p->rx_count++;
	p->rx_bytes += len;
	return 1; /* the reply waits for ipc_recv */
}

static const sd_bus_vtable channel_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Send", "ay", "", method_send,
                      SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Open", "", "", method_open, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* A Send was answered: one call less in flight. */
static int
on_send_reply(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct call_ctx *c = userdata;
	struct dbus_ch *p = c->p;
	const sd_bus_error *err = sd_bus_message_get_error(m);

	p->inflight--;
	p->inflight_bytes -= c->len;
	c->len = 0;
	/* NoReply is a timeout of the bus, not a refusal: the message may
	 * well have been taken, so it only opens the window. */
	if (err != NULL &&
	    !sd_bus_error_has_name(err, SD_BUS_ERROR_NO_REPLY)) {
		if (sd_bus_error_has_name(err, SD_BUS_ERROR_NO_MEMORY)) {
			/* Not delivered: this end reports -ENOMEM from
			 * now on (recv after what is queued), as the
			 * peer does. */
			set_why(p,
			        "peer %s could not queue a message (out of "
			        "memory): it was not delivered, and the "
			        "channel ends here",
			        p->peer);
			p->tx_err = -ENOMEM;
			return 0;
		}
		if (!p->gone) {
			set_why(p, "peer %s answered Send with %s: %s",
			        p->peer, err->name,
			        err->message ? err->message : "");
		}
		if (p->tx_err != -ENOMEM) {
			p->tx_err = -EPIPE;
		}
	}
	return 0;
}

static void
free_ctx(void *userdata)
{
	struct call_ctx *c = userdata;

	/* Never answered (the channel closes): nothing to account. */
	free(c);
}

static int
on_open_reply(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct dbus_ch *p = userdata;
	const sd_bus_error *err = sd_bus_message_get_error(m);

	if (err != NULL && sd_bus_error_has_name(err, ERR_PEER)) {
		set_why(p, "%s already has a peer", p->peer);
		p->tx_err = -ECONNREFUSED;
		p->gone = 1;
	}
	/* Any other error: a peer that is not libipc (UnknownMethod). */
	return 0;
}

/* ------------------------------------------------------------- open -- */

/* Anybody on the bus can own a name first: the owner must be our uid,
 * root, or allowed by allow_uid=/allow_gid=. */
static int
opener_trusts(struct dbus_ch *p, const struct ipc_uri *u)
{
	int r = ipc__dbus_cred(p->bus, p->peer, &p->cred);

	if (r < 0) {
		return ipc__err(-ENOENT, u->text,
		                "the owner %s left the bus at once", p->peer);
	}
	return ipc__trust_check(&p->trust, u->text, "the channel's creator",
	                        &p->cred);
}

static int
setup_fds(struct dbus_ch *p, const struct ipc_uri *u)
{
	struct epoll_event e = {.events = EPOLLIN};
	int fd = sd_bus_get_fd(p->bus);

	p->rx_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->tx_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	if (p->rx_efd < 0 || p->tx_efd < 0 || p->ep < 0) {
		return ipc__errno(-errno, u->text, "eventfd/epoll");
	}
	if (fd < 0) {
		return ipc__errno(fd, u->text, "sd_bus_get_fd");
	}
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e) < 0 ||
	    epoll_ctl(p->ep, EPOLL_CTL_ADD, p->rx_efd, &e) < 0) {
		return ipc__errno(-errno, u->text, "epoll_ctl");
	}
	p->ep_events = EPOLLIN;
	return 0;
}

static void
release_all(struct dbus_ch *p)
{
	struct rxmsg *x = p->head;

	while (x != NULL) {
		struct rxmsg *next = x->next;
		sd_bus_message_unref(x->m);
		free(x);
		x = next;
	}
	p->head = NULL;
	if (p->bus != NULL) {
		/* Writes what is queued (replies, calls already sent), then
		 * closes: the calls reach the peer before our name goes. */
		sd_bus_flush_close_unref(p->bus);
		p->bus = NULL;
	}
	free(p->peer);
	p->peer = NULL;
	free(p->owned);
	p->owned = NULL;
	if (p->rx_efd >= 0) {
		close(p->rx_efd);
	}
	if (p->tx_efd >= 0) {
		close(p->tx_efd);
	}
	if (p->ep >= 0) {
		close(p->ep);
	}
	pthread_mutex_destroy(&p->mu);
}

static int
open_steps(struct dbus_ch *p, const struct ipc_uri *u, const char *addr,
           const char *name, int creator)
{
	int r = ipc__dbus_connect(&p->bus, u, addr);

	if (r < 0) {
		return r;
	}
	r = sd_bus_add_object_vtable(p->bus, NULL, OBJ_PATH, IFACE,
	                             channel_vtable, p);
	if (r < 0) {
		return ipc__errno(r, u->text, "exporting %s", OBJ_PATH);
	}
	if (creator) {
		r = ipc__dbus_own(p->bus, u, name, &p->owned);
	} else {
		r = ipc__dbus_owner(p->bus, u, name, &p->peer);
		if (r == 0) {
			r = opener_trusts(p, u);
		}
		if (r == 0) {
			r = watch_peer(p);
			if (r >= 0) {
				r = sd_bus_call_method_async(
				        p->bus, NULL, p->peer, OBJ_PATH, IFACE,
				        "Open", on_open_reply, p, "");
			}
			if (r < 0) {
				r = ipc__errno(r, u->text, "asking %s",
				               p->peer);
			}
		}
	}
	if (r < 0) {
		return r;
	}
	return setup_fds(p, u);
}

static int
dbus_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct dbus_ch *p = ipc__priv(ch);
	char buf[512];
	const char *addr = NULL, *name = NULL;
	int r;

	/* Anybody on a bus may own a name: the namespace is shared. */
	r = ipc__dbus_name(u, &name);
	if (r == 0) {
		r = ipc__trust_parse(&p->trust, u, !(flags & IPC_CREATE));
	}
	if (r == 0) {
		r = ipc__dbus_address(u, &addr, buf, sizeof(buf));
	}
	if (r < 0) {
		return r;
	}
	r = pthread_mutex_init(&p->mu, NULL);
	if (r != 0) {
		return ipc__errno(-r, u->text, "pthread_mutex_init");
	}
	p->rx_efd = p->tx_efd = p->ep = -1;
	p->tail = &p->head;
	p->uri = ch->uri;
	p->creator = (flags & IPC_CREATE) != 0;
	p->window = (unsigned)ipc__opt_num(u, "window", DEF_WINDOW);
	ch->max_msg = (size_t)ipc__opt_num(u, "maxmsg", DEF_MAXMSG);
	p->rx_max_bytes = ch->max_msg;
	p->win_bytes = WIN_BYTES > ch->max_msg ? WIN_BYTES : ch->max_msg;
	r = open_steps(p, u, addr, name, p->creator);
	if (r < 0) {
		release_all(p);
		return r;
	}
	sync_fds(p);
	return 0;
}

/* ------------------------------------------------------- send / recv -- */

static int
ended(struct dbus_ch *p, const char *what)
{
	int err = p->tx_err == -ECONNREFUSED || p->tx_err == -ENOMEM
	                  ? p->tx_err
	                  : -EPIPE;

	return ipc__err(err, p->uri, "%s: %s", what,
	                p->why[0] ? p->why : "the peer is gone");
}

/* sd-bus holds bytes it could not write yet. */
static int
write_pending(struct dbus_ch *p)
{
	int ev = sd_bus_get_events(p->bus);

	return ev > 0 && (ev & POLLOUT);
}

static ssize_t
send_locked(struct dbus_ch *p, const void *buf, size_t len)
{
	sd_bus_message *m = NULL;
	sd_bus_slot *slot = NULL;
	struct call_ctx *c;
	int r;

	/* Read the bus only when there is a reason to: acks to open a full
	 * window, the rest of a partly written call. */
	if (p->partial || !send_ready(p)) {
		pump(p);
	}
	if (p->gone || p->tx_err) {
		p->partial = 0;
		return ended(p, "send");
	}
	if (p->partial) {
		/* The core calls again with the same message: it is in
		 * the write queue, which pump() went on writing. */
		if (write_pending(p)) {
			return -EINPROGRESS;
		}
		p->partial = 0;
		return (ssize_t)len;
	}
	if (!send_ready(p)) {
		return ipc__err_eagain();
	}
	c = malloc(sizeof(*c));
	if (c == NULL) {
		return ipc__err(-ENOMEM, p->uri, "out of memory");
	}
	c->p = p;
	c->len = len;
	r = sd_bus_message_new_method_call(p->bus, &m, p->peer, OBJ_PATH,
	                                   IFACE, "Send");
	if (r >= 0) {
		/* A NULL pointer with length 0 is a valid empty array. */
		static const char empty;
		r = sd_bus_message_append_array(m, 'y', len ? buf : &empty,
		                                len);
	}
	if (r >= 0) {
		r = sd_bus_call_async(p->bus, &slot, m, on_send_reply, c,
		                      UINT64_MAX);
	}
	sd_bus_message_unref(m);
	if (r < 0) {
		free(c);
		if (r == -ENOTCONN || r == -ECONNRESET) {
			bus_lost(p, r);
			return ended(p, "send");
		}
		return ipc__errno(r, p->uri, "sending a Send call");
	}
	sd_bus_slot_set_destroy_callback(slot, free_ctx);
	sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
	p->inflight++;
	p->inflight_bytes += len;
	if (write_pending(p)) {
		/* Not all out yet (a large message): the core waits for
		 * POLLOUT and calls again, so that a sender that returns
		 * to other work leaves nothing half-written. */
		p->partial = 1;
		return -EINPROGRESS;
	}
	return (ssize_t)len;
}

/* The caller cannot wait: the rest stays in sd-bus's write queue, which
 * every later call on the channel (and close) goes on writing. */
static int
dbus_detach(ipc_channel *ch)
{
	struct dbus_ch *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	p->partial = 0;
	sync_fds(p);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static ssize_t
dbus_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct dbus_ch *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	ssize_t r = send_locked(p, buf, len);
	sync_fds(p);
	pthread_mutex_unlock(&p->mu);
	return r;
}

static ssize_t
recv_locked(struct dbus_ch *p, void *buf, size_t cap)
{
	struct rxmsg *x;

	if (p->head == NULL) {
		pump(p);
	}
	if (p->refused) {
		p->refused = 0;
		return ipc__err(-EACCES, p->uri, "%s", p->refusal);
	}
	x = p->head;
	if (x == NULL) {
		if (p->gone || p->tx_err == -ENOMEM) {
			return ended(p, "recv");
		}
		return ipc__err_eagain();
	}
	if (x->len > cap) {
		return ipc__err_msgsize(p->uri, x->len, cap);
	}
	if (x->len > 0) {
		memcpy(buf, x->data, x->len);
	}
	p->head = x->next;
	if (p->head == NULL) {
		p->tail = &p->head;
	}
	p->rx_count--;
	p->rx_bytes -= x->len;
	size_t len = x->len;
	/* The acknowledgement; a vanished sender is no error of ours. */
	int r = sd_bus_reply_method_return(x->m, NULL);
	if (r == -ENOTCONN || r == -ECONNRESET) {
		bus_lost(p, r);
	}
	sd_bus_message_unref(x->m);
	free(x);
	return (ssize_t)len;
}

static ssize_t
dbus_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct dbus_ch *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	ssize_t r = recv_locked(p, buf, cap);
	sync_fds(p);
	pthread_mutex_unlock(&p->mu);
	return r;
}

static int
dbus_close(ipc_channel *ch)
{
	struct dbus_ch *p = ipc__priv(ch);

	pthread_mutex_lock(&p->mu);
	if (p->owned != NULL && p->bus != NULL) {
		/* Release the name before returning, so that it can be
		 * owned again at once: the daemon handles the disconnect
		 * alone some time later.  A call answered by the daemon,
		 * so also the round trip below. */
		(void)sd_bus_release_name(p->bus, p->owned);
	} else if (p->bus != NULL && !p->gone && p->inflight > 0) {
		/* Sends the peer has not taken yet may still be in our
		 * socket, unread by the daemon.  Once we close it, the
		 * daemon's next write to us (an ack) fails with EPIPE and
		 * it drops the connection with that data unread: the
		 * peer would lose our last messages.  The daemon handles
		 * a connection's messages in order, so its answer to one
		 * call of ours means every Send before it has been
		 * routed to the peer. */
		ipc__dbus_round_trip(p->bus, CLOSE_SYNC_US);
	}
	pthread_mutex_unlock(&p->mu);
	release_all(p);
	return 0;
}

/* ---------------------------------------------------------- waiting -- */

static int
dbus_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct dbus_ch *p = ipc__priv(ch);
	int n = 0;

	pthread_mutex_lock(&p->mu);
	if (p->bus != NULL && !p->gone) {
		int ev = sd_bus_get_events(p->bus);
		int fd = sd_bus_get_fd(p->bus);
		if (ev >= 0 && fd >= 0) {
			pfd[n].fd = fd;
			pfd[n].events = (short)ev;
			n++;
		}
		ipc__dbus_timeout(p->bus, retry_ms);
	}
	pthread_mutex_unlock(&p->mu);
	if (events & IPC_POLLIN) {
		pfd[n].fd = p->rx_efd;
		pfd[n].events = POLLIN;
		n++;
	}
	if (events & IPC_POLLOUT) {
		pfd[n].fd = p->tx_efd;
		pfd[n].events = POLLIN;
		n++;
	}
	return n;
}

static short
dbus_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct dbus_ch *p = ipc__priv(ch);
	short r = 0;

	pthread_mutex_lock(&p->mu);
	pump(p);
	if ((events & IPC_POLLIN) && (p->head != NULL || p->gone)) {
		r |= IPC_POLLIN;
	}
	if ((events & IPC_POLLOUT) && send_ready(p)) {
		r |= IPC_POLLOUT;
	}
	if (p->gone && p->head == NULL) {
		r |= IPC_POLLHUP;
	}
	sync_fds(p);
	pthread_mutex_unlock(&p->mu);
	return r;
}

static int
dbus_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct dbus_ch *p = (struct dbus_ch *)ipc__cpriv(ch);

	pthread_mutex_lock(&p->mu);
	struct ipc_cred c = p->cred;
	pthread_mutex_unlock(&p->mu);
	return ipc__cred_out(&c, ch->uri, pid, uid, gid);
}

static int
dbus_fd(const ipc_channel *ch)
{
	const struct dbus_ch *p = ipc__cpriv(ch);

	return p->ep;
}

const struct ipc_driver ipc_driver_dbus = {
        .scheme = "dbus",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_PEERCLOSE,
        .addr = IPC_ADDR_CUSTOM,
        .opts = dbus_opts,
        .priv_size = sizeof(struct dbus_ch),
        .open = dbus_open,
        .send = dbus_send,
        .detach = dbus_detach,
        .recv = dbus_recv,
        .close = dbus_close,
        .pollfds = dbus_pollfds,
        .ready = dbus_ready,
        .fd = dbus_fd,
        .peer_cred = dbus_peer_cred,
};
