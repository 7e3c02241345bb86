/*
 * The channel object: open/close, send/recv with blocking, timeouts and
 * IPC_NONBLOCK done once for every driver, the copy fallbacks of the
 * zero-copy calls, listeners and pairs.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub.h"
#include "readyfd.h"
#include "registry.h"
#include "uri.h"
#include "wait.h"

#define IPC_ALL_FLAGS  (IPC_CREATE | IPC_NONBLOCK)
#define IPC_ROLE_FLAGS (IPC_PUBLISH | IPC_SUBSCRIBE)
#define ACQUIRE_START  (64u << 10)

static ipc_channel *
channel_new(const struct ipc_driver *drv, const char *uri)
{
	ipc_channel *ch = calloc(1, sizeof(*ch) + drv->priv_size);

	if (ch == NULL) {
		return NULL;
	}
	ch->uri = strdup(uri);
	if (ch->uri == NULL) {
		free(ch);
		return NULL;
	}
	ch->drv = drv;
	ch->timeout_ms = -1;
	ch->caps = drv->caps;
	ch->scheme = drv->scheme;
	return ch;
}

static void
channel_free(ipc_channel *ch)
{
	ipc__readyfd_free(ch);
	free(ch->txcopy);
	free(ch->rxcopy);
	free(ch->local_uri);
	free(ch->uri);
	free(ch);
}

static int
check_flags(int flags, int allowed, const char *uri)
{
	if (flags & ~allowed) {
		return ipc__err(-EINVAL, uri, "unknown flags 0x%x",
		                (unsigned)(flags & ~allowed));
	}
	return 0;
}

/* The channel was opened: fill in what the driver left at defaults. */
static void
channel_opened(ipc_channel *ch)
{
	ch->opened = 1;
	if (ch->max_msg == 0) {
		ch->max_msg = 1u << 20;
	}
}

/* The checks ipc_open and ipc_listen share: flags, then the URI. */
static int
parse_for_open(const char *uri, int flags, int allowed, struct ipc_uri **u,
               const struct ipc_driver **drv)
{
	int r = check_flags(flags, allowed, uri);
	return r < 0 ? r : ipc__uri_parse(uri, 0, u, drv);
}

/* IPC_PUBLISH / IPC_SUBSCRIBE at open: said before the URI is parsed, as
 * ipc_listen does, so that "pipe:" hears why whatever its options. */
static int
check_role(const char *uri, int flags)
{
	const struct ipc_driver *drv = ipc__uri_driver(uri);
	int role = flags & IPC_ROLE_FLAGS;

	if (role == IPC_ROLE_FLAGS) {
		return ipc__err(
		        -EINVAL, uri,
		        "open: IPC_PUBLISH and IPC_SUBSCRIBE together: "
		        "an end either publishes or subscribes");
	}
	if (role == IPC_SUBSCRIBE && (flags & IPC_CREATE)) {
		return ipc__err(-EINVAL, uri,
		                "open: IPC_SUBSCRIBE with IPC_CREATE: the "
		                "publisher creates the endpoint");
	}
	if (drv != NULL && !(drv->caps & IPC_CAP_PUBSUB)) {
		return ipc__err(-EOPNOTSUPP, uri,
		                "open: %s: %s has no publish/subscribe "
		                "(docs/pubsub.md lists the drivers that have)",
		                role == IPC_PUBLISH ? "IPC_PUBLISH"
		                                    : "IPC_SUBSCRIBE",
		                drv->scheme);
	}
	return 0;
}

/* Publish/subscribe through listeners (core/pubsub.c): the channel runs
 * on the core's layer over the driver the URI names. */
static int
open_layer(ipc_channel **out, const char *uri, int flags,
           const struct ipc_driver *real)
{
	int pub = flags & IPC_PUBLISH;
	int r = check_flags(flags, IPC_ALL_FLAGS | IPC_ROLE_FLAGS, uri);
	ipc_channel *ch;

	if (r < 0) {
		return r;
	}
	ch = channel_new(pub ? &ipc__pubsub_pub : &ipc__pubsub_sub, uri);
	if (ch == NULL) {
		return ipc__err(-ENOMEM, uri, "out of memory");
	}
	ch->flags = flags & IPC_NONBLOCK;
	ch->has_addr = 1;
	ch->role = flags & IPC_ROLE_FLAGS;
	ch->scheme = real->scheme;
	ch->caps = real->caps;
	r = ipc__pubsub_open(ch, real, flags);
	if (r < 0) {
		channel_free(ch);
		return r;
	}
	channel_opened(ch);
	*out = ch;
	return 0;
}

int
ipc_open(ipc_channel **out, const char *uri, int flags)
{
	const struct ipc_driver *drv;
	struct ipc_uri *u;
	ipc_channel *ch;
	int r;

	if (out == NULL) {
		return ipc__err(-EINVAL, uri, "ipc_open: out is NULL");
	}
	*out = NULL;
	if (flags & IPC_ROLE_FLAGS) {
		r = check_role(uri, flags);
		if (r < 0) {
			return r;
		}
		if (flags & IPC_PUBLISH) {
			flags |= IPC_CREATE;
		}
	}
	drv = ipc__uri_driver(uri);
	if ((flags & IPC_ROLE_FLAGS) && drv != NULL &&
	    drv->subscribers == NULL) {
		return open_layer(out, uri, flags, drv);
	}
	r = parse_for_open(uri, flags, IPC_ALL_FLAGS | IPC_ROLE_FLAGS, &u,
	                   &drv);
	if (r < 0) {
		return r;
	}
	ch = channel_new(drv, uri);
	if (ch == NULL) {
		ipc__uri_free(u);
		return ipc__err(-ENOMEM, uri, "out of memory");
	}
	ch->flags = flags & IPC_NONBLOCK;
	ch->has_addr = u->has_addr;
	ch->role = flags & IPC_ROLE_FLAGS;
	r = drv->open(ch, u, flags);
	ipc__uri_free(u);
	if (r < 0) {
		ipc__err_what(uri, "open");
		channel_free(ch);
		return r;
	}
	channel_opened(ch);
	*out = ch;
	return 0;
}

int
ipc_pair(ipc_channel **a, ipc_channel **b, const char *uri)
{
	const struct ipc_driver *drv;
	struct ipc_uri *u;
	ipc_channel *x, *y;
	int r;

	if (a == NULL || b == NULL) {
		return ipc__err(-EINVAL, uri, "ipc_pair: a or b is NULL");
	}
	*a = *b = NULL;
	r = ipc__uri_parse(uri, 1, &u, &drv);
	if (r < 0) {
		return r;
	}
	if (drv->pair == NULL) {
		ipc__uri_free(u);
		return ipc__err(-EOPNOTSUPP, uri,
		                "%s has no ipc_pair: open two ends by address",
		                drv->scheme);
	}
	x = channel_new(drv, uri);
	y = channel_new(drv, uri);
	if (x == NULL || y == NULL) {
		if (x != NULL) {
			channel_free(x);
		}
		if (y != NULL) {
			channel_free(y);
		}
		ipc__uri_free(u);
		return ipc__err(-ENOMEM, uri, "out of memory");
	}
	r = drv->pair(x, y, u);
	ipc__uri_free(u);
	if (r < 0) {
		channel_free(x);
		channel_free(y);
		return r;
	}
	channel_opened(x);
	channel_opened(y);
	*a = x;
	*b = y;
	return 0;
}

int
ipc_close(ipc_channel *ch)
{
	int r = 0;

	if (ch == NULL) {
		return 0;
	}
	ipc__readyfd_free(ch); /* stops a helper before the driver goes */
	if (ch->opened) {
		r = ch->drv->close(ch);
	}
	channel_free(ch);
	return r;
}

/* A deadline from the channel's timeout, started on first need. */
struct call {
	ipc_channel *ch;
	int nonblock;
	struct timespec dl;
	const struct timespec *dlp;
	int started;
};

static void
call_init(struct call *c, ipc_channel *ch, int flags)
{
	c->ch = ch;
	c->nonblock =
	        ((flags | ch->flags) & IPC_NONBLOCK) || ch->timeout_ms == 0;
	c->dlp = NULL;
	c->started = 0;
}

/* After -EAGAIN from the driver: wait for events, or say why not. */
static int
call_wait(struct call *c, short events, const char *what)
{
	ipc_channel *ch = c->ch;

	if (c->nonblock) {
		return ipc__err_wouldblock(ch->uri, what);
	}
	if (!c->started) {
		c->started = 1;
		if (ch->timeout_ms > 0) {
			ipc__deadline(&c->dl, ch->timeout_ms);
			c->dlp = &c->dl;
		}
	}
	int r = ipc__wait(ch, events, c->dlp);
	if (r == -ETIMEDOUT) {
		return ipc__err(-ETIMEDOUT, ch->uri,
		                "%s: timed out after %d ms", what,
		                ch->timeout_ms);
	}
	return r;
}

static int
check_call(ipc_channel *ch, int flags, const char *what)
{
	if (ch == NULL) {
		return ipc__err(-EINVAL, NULL, "%s: channel is NULL", what);
	}
	return check_flags(flags, IPC_NONBLOCK, ch->uri);
}

/* A publisher only sends (role IPC_PUBLISH refuses the receiving calls),
 * a subscriber only receives. */
static int
check_role_call(ipc_channel *ch, int flags, const char *what, int refused)
{
	int r = check_call(ch, flags, what);

	if (r == 0 && ch->role == refused) {
		r = ipc__err(-EOPNOTSUPP, ch->uri, "%s: this end %s", what,
		             refused == IPC_PUBLISH
		                     ? "publishes (IPC_PUBLISH): it cannot "
		                       "receive"
		                     : "subscribes (IPC_SUBSCRIBE): only the "
		                       "publisher sends");
	}
	return r;
}

ssize_t
ipc_send(ipc_channel *ch, const void *buf, size_t len, int flags)
{
	struct call c;
	ssize_t r;

	r = check_role_call(ch, flags, "ipc_send", IPC_SUBSCRIBE);
	if (r < 0) {
		return r;
	}
	if (buf == NULL && len > 0) {
		return ipc__err(-EINVAL, ch->uri, "ipc_send: buf is NULL");
	}
	if (len > ch->max_msg) {
		return ipc__err(-EMSGSIZE, ch->uri,
		                "send: message of %zu bytes is too long: "
		                "this channel carries at most %zu",
		                len, ch->max_msg);
	}
	call_init(&c, ch, flags);
	ch->send_nowait = c.nonblock;
	for (;;) {
		r = ch->drv->send(ch, buf, len);
		if (r == -EINPROGRESS) {
			/* Part of the message is out: it must go whole. */
			int w = call_wait(&c, IPC_POLLOUT, "send");
			if (w == 0) {
				continue;
			}
			if (w != -EAGAIN && w != -ETIMEDOUT) {
				return w;
			}
			w = ch->drv->detach(ch);
			return w < 0 ? ipc__err(w, ch->uri,
			                        "cannot keep the rest of a "
			                        "partly sent message")
			             : (ssize_t)len;
		}
		if (r != -EAGAIN) {
			return r;
		}
		r = call_wait(&c, IPC_POLLOUT, "send");
		if (r < 0) {
			return r;
		}
	}
}

ssize_t
ipc_recv(ipc_channel *ch, void *buf, size_t cap, int flags)
{
	struct call c;
	ssize_t r;

	r = check_role_call(ch, flags, "ipc_recv", IPC_PUBLISH);
	if (r < 0) {
		return r;
	}
	if (buf == NULL && cap > 0) {
		return ipc__err(-EINVAL, ch->uri, "ipc_recv: buf is NULL");
	}
	call_init(&c, ch, flags);
	ch->recv_block = !c.nonblock && ch->timeout_ms < 0;
	for (;;) {
		r = ch->drv->recv(ch, buf, cap);
		if (r != -EAGAIN) {
			break;
		}
		r = call_wait(&c, IPC_POLLIN, "recv");
		if (r < 0) {
			break;
		}
	}
	ipc__readyfd_sync(ch);
	return r;
}

static int
grow(unsigned char **p, size_t *cap, size_t need)
{
	if (need == 0) {
		need = 1;
	}
	if (*cap >= need) {
		return 0;
	}
	unsigned char *n = realloc(*p, need);
	if (n == NULL) {
		return -ENOMEM;
	}
	*p = n;
	*cap = need;
	return 0;
}

int
ipc_reserve(ipc_channel *ch, size_t len, void **buf, int flags)
{
	struct call c;
	int r;

	r = check_role_call(ch, flags, "ipc_reserve", IPC_SUBSCRIBE);
	if (r < 0) {
		return r;
	}
	if (buf == NULL) {
		return ipc__err(-EINVAL, ch->uri, "ipc_reserve: buf is NULL");
	}
	if (ch->reserving) {
		return ipc__err(-EBUSY, ch->uri,
		                "ipc_reserve: a reservation is already open "
		                "(commit it first)");
	}
	if (len > ch->max_msg) {
		return ipc__err(-EMSGSIZE, ch->uri,
		                "reservation of %zu bytes exceeds this "
		                "channel's maximum of %zu",
		                len, ch->max_msg);
	}
	if (ch->drv->reserve == NULL) {
		if (grow(&ch->txcopy, &ch->txcopy_cap, len) < 0) {
			return ipc__err(-ENOMEM, ch->uri, "out of memory");
		}
		*buf = ch->txcopy;
	} else {
		call_init(&c, ch, flags);
		for (;;) {
			r = ch->drv->reserve(ch, len, buf);
			if (r != -EAGAIN) {
				break;
			}
			r = call_wait(&c, IPC_POLLOUT, "reserve");
			if (r < 0) {
				return r;
			}
		}
		if (r < 0) {
			return r;
		}
	}
	ch->reserving = 1;
	ch->reserved = len;
	return 0;
}

int
ipc_commit(ipc_channel *ch, size_t len)
{
	int r;

	if (ch == NULL) {
		return ipc__err(-EINVAL, NULL, "ipc_commit: channel is NULL");
	}
	if (!ch->reserving) {
		return ipc__err(-EINVAL, ch->uri,
		                "ipc_commit: nothing is reserved (call "
		                "ipc_reserve first)");
	}
	if (len > ch->reserved) {
		return ipc__err(-EINVAL, ch->uri,
		                "ipc_commit of %zu bytes, but %zu were "
		                "reserved",
		                len, ch->reserved);
	}
	if (ch->drv->commit != NULL) {
		r = ch->drv->commit(ch, len);
	} else {
		ssize_t n = ipc_send(ch, ch->txcopy, len, 0);
		r = n < 0 ? (int)n : 0;
		if (r == -EAGAIN || r == -ETIMEDOUT) {
			return r; /* the reservation stays: commit again */
		}
	}
	ch->reserving = 0;
	return r;
}

int
ipc_acquire(ipc_channel *ch, const void **buf, size_t *len, int flags)
{
	struct call c;
	int r;

	r = check_role_call(ch, flags, "ipc_acquire", IPC_PUBLISH);
	if (r < 0) {
		return r;
	}
	if (buf == NULL || len == NULL) {
		return ipc__err(-EINVAL, ch->uri,
		                "ipc_acquire: buf or len is NULL");
	}
	if (ch->acquired) {
		return ipc__err(-EBUSY, ch->uri,
		                "ipc_acquire: a message is already acquired "
		                "(release it first)");
	}
	if (ch->drv->acquire != NULL) {
		call_init(&c, ch, flags);
		for (;;) {
			r = ch->drv->acquire(ch, buf, len);
			if (r != -EAGAIN) {
				break;
			}
			r = call_wait(&c, IPC_POLLIN, "acquire");
			if (r < 0) {
				break;
			}
		}
		ipc__readyfd_sync(ch);
		if (r < 0) {
			return r;
		}
		ch->acquired = 1;
		return 0;
	}
	size_t want = ch->rxcopy_cap ? ch->rxcopy_cap : ACQUIRE_START;
	for (;;) {
		if (want > ch->max_msg) {
			want = ch->max_msg;
		}
		if (grow(&ch->rxcopy, &ch->rxcopy_cap, want) < 0) {
			return ipc__err(-ENOMEM, ch->uri, "out of memory");
		}
		ssize_t n = ipc_recv(ch, ch->rxcopy, ch->rxcopy_cap, flags);
		if (n == -EMSGSIZE && ch->rxcopy_cap < ch->max_msg) {
			want = ch->rxcopy_cap * 4;
			continue;
		}
		if (n < 0) {
			return (int)n;
		}
		*buf = ch->rxcopy;
		*len = (size_t)n;
		ch->acquired = 1;
		return 0;
	}
}

int
ipc_release(ipc_channel *ch)
{
	int r = 0;

	if (ch == NULL) {
		return ipc__err(-EINVAL, NULL, "ipc_release: channel is NULL");
	}
	if (!ch->acquired) {
		return ipc__err(-EINVAL, ch->uri,
		                "ipc_release without ipc_acquire");
	}
	if (ch->drv->release != NULL) {
		r = ch->drv->release(ch);
		ipc__readyfd_sync(ch);
	}
	ch->acquired = 0;
	return r;
}

int
ipc_set_timeout(ipc_channel *ch, int timeout_ms)
{
	if (ch == NULL) {
		return ipc__err(-EINVAL, NULL,
		                "ipc_set_timeout: NULL channel");
	}
	if (timeout_ms < -1) {
		return ipc__err(-EINVAL, ch->uri,
		                "timeout %d ms: use -1 (forever), 0 or more",
		                timeout_ms);
	}
	ch->timeout_ms = timeout_ms;
	return 0;
}

size_t
ipc_max_msg(const ipc_channel *ch)
{
	return ch ? ch->max_msg : 0;
}

unsigned
ipc_caps(const ipc_channel *ch)
{
	return ch ? ch->caps : 0;
}

const char *
ipc_scheme(const ipc_channel *ch)
{
	return ch ? ch->scheme : NULL;
}

int
ipc_fd(const ipc_channel *ch)
{
	if (ch == NULL) {
		return ipc__err(-EINVAL, NULL, "ipc_fd: channel is NULL");
	}
	/* The caller's channel is not const: the set is made on first
	 * use, as the drivers make theirs. */
	return ipc__readyfd_get((ipc_channel *)ch);
}

const char *
ipc_local_uri(const ipc_channel *ch)
{
	ipc_channel *c = (ipc_channel *)ch; /* filled on first use */

	if (ch == NULL) {
		ipc__err(-EINVAL, NULL, "ipc_local_uri: channel is NULL");
		return NULL;
	}
	if (c->local_uri == NULL) {
		if (!ch->has_addr) {
			ipc__err(-ENOENT, ch->uri,
			         "ipc_local_uri: a channel of ipc_pair or "
			         "of inherited descriptors has no address");
		} else if (ch->drv->local_uri != NULL) {
			c->local_uri = ch->drv->local_uri(ch);
		} else if ((c->local_uri = strdup(ch->uri)) == NULL) {
			ipc__err(-ENOMEM, ch->uri,
			         "ipc_local_uri: out of memory");
		}
	}
	return c->local_uri;
}

int
ipc_subscribers(const ipc_channel *pub)
{
	if (pub == NULL) {
		return ipc__err(-EINVAL, NULL,
		                "ipc_subscribers: channel is NULL");
	}
	if (pub->role != IPC_PUBLISH) {
		return ipc__err(-EINVAL, pub->uri,
		                "ipc_subscribers: not a publisher (opened "
		                "without IPC_PUBLISH)");
	}
	return pub->drv->subscribers(pub);
}

unsigned long long
ipc_dropped(const ipc_channel *ch)
{
	if (ch == NULL || ch->role == 0 || ch->drv->dropped == NULL) {
		return 0;
	}
	return ch->drv->dropped(ch);
}

int
ipc_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	if (ch == NULL) {
		return ipc__err(-EINVAL, NULL,
		                "ipc_peer_cred: channel is NULL");
	}
	if (ch->drv->peer_cred == NULL) {
		return ipc__err(
		        -EOPNOTSUPP, ch->uri,
		        "ipc_peer_cred: %s cannot tell who the peer is",
		        ch->drv->scheme);
	}
	return ch->drv->peer_cred(ch, pid, uid, gid);
}

/* ------------------------------------------------------------ listeners */

int
ipc_listen(ipc_listener **out, const char *uri, int flags)
{
	const struct ipc_driver *drv;
	struct ipc_uri *u;
	ipc_listener *l;
	int r;

	if (out == NULL) {
		return ipc__err(-EINVAL, uri, "ipc_listen: out is NULL");
	}
	*out = NULL;
	drv = ipc__uri_driver(uri);
	if (drv != NULL && drv->listen == NULL) {
		/* Said before the address is checked: "pipe:" or
		 * "unix+dgram:" cannot listen whatever follows. */
		return ipc__err(-EOPNOTSUPP, uri,
		                "%s cannot listen for many peers",
		                drv->scheme);
	}
	r = parse_for_open(uri, flags, IPC_ALL_FLAGS, &u, &drv);
	if (r < 0) {
		return r;
	}
	if (drv->listen == NULL) {
		ipc__uri_free(u);
		return ipc__err(-EOPNOTSUPP, uri,
		                "%s cannot listen for many peers",
		                drv->scheme);
	}
	l = calloc(1, sizeof(*l) + drv->lpriv_size);
	if (l == NULL || (l->uri = strdup(uri)) == NULL) {
		free(l);
		ipc__uri_free(u);
		return ipc__err(-ENOMEM, uri, "out of memory");
	}
	l->drv = drv;
	l->flags = flags & IPC_NONBLOCK;
	l->parsed = u;
	r = drv->listen(l, u, flags | IPC_CREATE);
	if (r < 0) {
		ipc__err_what(uri, "listen");
		ipc__uri_free(u);
		free(l->uri);
		free(l);
		return r;
	}
	l->opened = 1;
	*out = l;
	return 0;
}

int
ipc_accept(ipc_listener *l, ipc_channel **out, int flags)
{
	ipc_channel *ch;
	int r;

	if (l == NULL || out == NULL) {
		return ipc__err(-EINVAL, NULL,
		                "ipc_accept: listener or out is NULL");
	}
	*out = NULL;
	r = check_flags(flags, IPC_NONBLOCK, l->uri);
	if (r < 0) {
		return r;
	}
	ch = channel_new(l->drv, l->uri);
	if (ch == NULL) {
		return ipc__err(-ENOMEM, l->uri, "out of memory");
	}
	for (;;) {
		r = l->drv->accept(l, ch);
		if (r != -EAGAIN) {
			break;
		}
		if ((flags | l->flags) & IPC_NONBLOCK) {
			channel_free(ch);
			return ipc__err_wouldblock(l->uri, "accept");
		}
		r = ipc__wait_fd(l->drv->listener_fd(l), POLLIN, NULL);
		if (r < 0) {
			channel_free(ch);
			return r;
		}
		memset(ch->priv, 0, l->drv->priv_size);
	}
	if (r < 0) {
		channel_free(ch);
		return r;
	}
	ch->has_addr = 1;
	channel_opened(ch);
	*out = ch;
	return 0;
}

int
ipc_listener_fd(const ipc_listener *l)
{
	if (l == NULL) {
		return ipc__err(-EINVAL, NULL, "ipc_listener_fd: NULL");
	}
	return l->drv->listener_fd(l);
}

int
ipc_listener_close(ipc_listener *l)
{
	int r = 0;

	if (l == NULL) {
		return 0;
	}
	if (l->opened) {
		r = l->drv->listener_close(l);
	}
	ipc__uri_free(l->parsed);
	free(l->local_uri);
	free(l->uri);
	free(l);
	return r;
}

const char *
ipc_listener_uri(const ipc_listener *l)
{
	ipc_listener *m = (ipc_listener *)l; /* filled on first use */

	if (l == NULL) {
		ipc__err(-EINVAL, NULL, "ipc_listener_uri: listener is NULL");
		return NULL;
	}
	if (m->local_uri == NULL) {
		if (l->drv->listener_uri != NULL) {
			m->local_uri = l->drv->listener_uri(l);
		} else if ((m->local_uri = strdup(l->uri)) == NULL) {
			ipc__err(-ENOMEM, l->uri,
			         "ipc_listener_uri: out of memory");
		}
	}
	return m->local_uri;
}
