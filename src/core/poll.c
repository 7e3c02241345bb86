/*
 * Waiting and readiness, once for every driver: the blocking loop's wait
 * for one channel, and ipc_poll over channels, listeners and plain
 * descriptors.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "readyfd.h"
#include "wait.h"

static int
min_timeout(int a, int b)
{
	if (a < 0) {
		return b;
	}
	if (b < 0) {
		return a;
	}
	return a < b ? a : b;
}

int
ipc__wait_fd(int fd, short events, const struct timespec *dl)
{
	struct pollfd p = {.fd = fd, .events = events};
	int rem = ipc__remaining_ms(dl);

	if (dl != NULL && rem == 0) {
		return -ETIMEDOUT;
	}
	if (poll(&p, 1, rem) < 0 && errno != EINTR) {
		return ipc__errno(-errno, NULL, "poll");
	}
	return 0;
}

int
ipc__wait(ipc_channel *ch, short events, const struct timespec *dl)
{
	struct pollfd pfd[IPC_MAXPFD];
	int retry = -1;
	int rem = ipc__remaining_ms(dl);

	if (dl != NULL && rem == 0) {
		return -ETIMEDOUT;
	}
	if (ch->drv->wait != NULL) {
		return ch->drv->wait(ch, events, dl);
	}
	int n = ch->drv->pollfds(ch, events, pfd, &retry);
	if (n < 0) {
		return n;
	}
	int t = min_timeout(rem, retry);
	if (n == 0 && t < 0) {
		return ipc__err(-EDEADLK, ch->uri,
		                "driver %s named nothing to wait on",
		                ch->drv->scheme);
	}
	if (poll(pfd, (nfds_t)n, t) < 0 && errno != EINTR) {
		return ipc__errno(-errno, ch->uri, "poll");
	}
	return 0;
}

/* The default translation of descriptor readiness into IPC_POLL* bits. */
short
ipc__map_revents(const struct pollfd *pfd, int n)
{
	short r = 0;

	for (int i = 0; i < n; i++) {
		short re = pfd[i].revents;
		if (re & POLLIN) {
			r |= IPC_POLLIN;
		}
		if (re & POLLOUT) {
			r |= IPC_POLLOUT;
		}
		if (re & POLLHUP) {
			r |= IPC_POLLHUP;
		}
		if (re & (POLLERR | POLLNVAL)) {
			r |= IPC_POLLERR;
		}
	}
	return r;
}

static short
to_sys(short ev)
{
	return (short)(((ev & IPC_POLLIN) ? POLLIN : 0) |
	               ((ev & IPC_POLLOUT) ? POLLOUT : 0));
}

static short
from_sys(short re)
{
	struct pollfd p = {.revents = re};
	return ipc__map_revents(&p, 1);
}

struct slot {
	size_t off;
	int n;
	short pre; /* bits ready before polling */
};

static int
check_items(const ipc_pollitem *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* fd counts only when neither channel nor listener is set
		 * (so a zero-initialised item naming a channel is valid);
		 * an item naming nothing (fd < 0) is ignored, as poll(2)
		 * ignores negative descriptors. */
		if (items[i].channel != NULL && items[i].listener != NULL) {
			return ipc__err(-EINVAL, NULL,
			                "ipc_poll: item %zu: names both a "
			                "channel and a listener",
			                i);
		}
	}
	return 0;
}

/* Fill pfd for every item and *retryp with the soonest retry hint. */
static int
gather(ipc_pollitem *items, size_t n, struct slot *sl, struct pollfd *pfd,
       size_t *total, int *any_pre, int *retryp)
{
	int retry = -1;
	size_t off = 0;

	*any_pre = 0;
	for (size_t i = 0; i < n; i++) {
		ipc_pollitem *it = &items[i];
		short want = it->events & (IPC_POLLIN | IPC_POLLOUT);
		sl[i].off = off;
		sl[i].pre = 0;
		if (it->channel != NULL) {
			ipc_channel *ch = it->channel;
			int r = -1;
			if (ch->drv->ready != NULL) {
				sl[i].pre = ch->drv->ready(ch, want, NULL, 0);
				*any_pre |= sl[i].pre != 0;
			}
			int k = ch->drv->pollfds(ch, want, &pfd[off], &r);
			if (k < 0) {
				return k;
			}
			retry = min_timeout(retry, r);
			sl[i].n = k;
			off += (size_t)k;
		} else if (it->listener != NULL) {
			pfd[off].fd =
			        it->listener->drv->listener_fd(it->listener);
			pfd[off].events = POLLIN;
			sl[i].n = 1;
			off++;
		} else {
			pfd[off].fd = it->fd;
			pfd[off].events = to_sys(it->events);
			sl[i].n = 1;
			off++;
		}
	}
	*total = off;
	*retryp = retry;
	return 0;
}

static int
scatter(ipc_pollitem *items, size_t n, const struct slot *sl,
        const struct pollfd *pfd)
{
	int count = 0;

	for (size_t i = 0; i < n; i++) {
		ipc_pollitem *it = &items[i];
		short want = it->events & (IPC_POLLIN | IPC_POLLOUT);
		const struct pollfd *p = &pfd[sl[i].off];
		short r;

		if (it->channel != NULL) {
			ipc_channel *ch = it->channel;
			if (ch->drv->ready != NULL) {
				r = ch->drv->ready(ch, want, p, sl[i].n);
			} else {
				r = ipc__map_revents(p, sl[i].n);
			}
			r |= sl[i].pre;
			if (want & IPC_POLLIN) {
				ipc__readyfd_sync(ch);
			}
		} else {
			r = from_sys(p->revents);
		}
		r &= (short)(want | IPC_POLLERR | IPC_POLLHUP);
		it->revents = r;
		count += r != 0;
	}
	return count;
}

int
ipc_poll(ipc_pollitem *items, size_t n, int timeout_ms)
{
	struct pollfd stack_pfd[64];
	struct slot stack_sl[16];
	struct pollfd *pfd = stack_pfd;
	struct slot *sl = stack_sl;
	struct timespec dl;
	int r;

	if (items == NULL && n > 0) {
		return ipc__err(-EINVAL, NULL, "ipc_poll: items is NULL");
	}
	if (timeout_ms < -1) {
		return ipc__err(-EINVAL, NULL,
		                "ipc_poll: timeout %d ms: use -1, 0 or more",
		                timeout_ms);
	}
	r = check_items(items, n);
	if (r < 0) {
		return r;
	}
	if (n > 16) {
		pfd = calloc(n * IPC_MAXPFD, sizeof(*pfd));
		sl = calloc(n, sizeof(*sl));
		if (pfd == NULL || sl == NULL) {
			free(pfd);
			free(sl);
			return ipc__err(-ENOMEM, NULL, "ipc_poll: no memory");
		}
	}
	if (timeout_ms > 0) {
		ipc__deadline(&dl, timeout_ms);
	}
	for (;;) {
		size_t total;
		int any_pre, retry;
		r = gather(items, n, sl, pfd, &total, &any_pre, &retry);
		if (r < 0) {
			break;
		}
		int rem = timeout_ms > 0 ? ipc__remaining_ms(&dl) : timeout_ms;
		int t = any_pre ? 0 : min_timeout(rem, retry);
		for (size_t i = 0; i < total; i++) {
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)total, t) < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = ipc__errno(-errno, NULL, "ipc_poll: poll");
			break;
		}
		r = scatter(items, n, sl, pfd);
		if (r > 0 || rem == 0) {
			break;
		}
		/* Woken by a retry hint or a readiness the drivers did
		 * not confirm: go round again until the deadline. */
	}
	if (pfd != stack_pfd) {
		free(pfd);
		free(sl);
	}
	return r;
}
