/*
 * ipc_fd() made level-triggered once for every driver.
 *
 * A driver's own descriptor (a socket, a pipe, an eventfd its peer writes)
 * says whether the kernel or the peer has something new; it cannot say
 * that the library already holds a message: bytes a stream read ahead into
 * its buffer, a datagram kept back after a -EMSGSIZE, a queue message a
 * ready() check took.  So ipc_fd() hands out an epoll set holding the
 * driver's descriptor and one eventfd of the core's, and the core keeps
 * that eventfd signalled while the driver's ready(IPC_POLLIN, no
 * descriptors) says a receive would not block.  It is brought up to date
 * after every call that may change it on the receiving side (recv,
 * acquire, release, ipc_poll for input) and only when the state flips:
 * a stream that stays busy, or stays idle, costs no system call, and a
 * channel whose ipc_fd() was never asked for pays one pointer test.
 *
 * Drivers whose OS object has no descriptor at all (System V queues and
 * semaphores) have no fd slot but a wait slot that sleeps until a receive
 * may succeed.  For them the core runs a helper thread, made with the
 * descriptor: while the eventfd is clear it sleeps in the driver's wait
 * (in slices of HELPER_SLICE_MS, to notice ipc_close), and when ready()
 * then says a message is there it signals the eventfd and sleeps until a
 * receive clears it again.  A busy stream thus costs the helper nothing;
 * an idle channel with a descriptor costs it a wake-up per slice.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "readyfd.h"

#define HELPER_SLICE_MS 100

struct ipc_readyfd {
	int ep; /* what ipc_fd() returns */
	int ev; /* signalled while the driver holds a receivable message */
	int on; /* ev's state as last set (receiving side, or under mu) */
	/* The helper of drivers without a descriptor (helper set). */
	int helper;
	pid_t owner; /* the helper runs in this process only (fork) */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	ipc_channel *ch;
};

static int
held(ipc_channel *ch)
{
	if (ch->drv->ready == NULL) {
		return 0;
	}
	short r = ch->drv->ready(ch, IPC_POLLIN, NULL, 0);
	return (r & (IPC_POLLIN | IPC_POLLHUP | IPC_POLLERR)) != 0;
}

static void
set(struct ipc_readyfd *rf, int on)
{
	uint64_t v = 1;

	if (on == rf->on) {
		return;
	}
	/* An eventfd holds a counter: write 1 signals, a read clears.
	 * Neither blocks (EFD_NONBLOCK), and only this side writes. */
	if (on) {
		(void)!write(rf->ev, &v, sizeof v);
	} else {
		(void)!read(rf->ev, &v, sizeof v);
	}
	rf->on = on;
}

void
ipc__readyfd_sync_slow(ipc_channel *ch)
{
	struct ipc_readyfd *rf =
	        atomic_load_explicit(&ch->readyfd, memory_order_acquire);

	if (rf == NULL) {
		return;
	}
	if (!rf->helper) {
		set(rf, held(ch));
		return;
	}
	pthread_mutex_lock(&rf->mu);
	set(rf, held(ch));
	if (!rf->on) {
		pthread_cond_signal(&rf->cv); /* the helper watches again */
	}
	pthread_mutex_unlock(&rf->mu);
}

static void *
helper_main(void *arg)
{
	struct ipc_readyfd *rf = arg;
	ipc_channel *ch = rf->ch;

	pthread_mutex_lock(&rf->mu);
	for (;;) {
		while (rf->on && !rf->stop) {
			pthread_cond_wait(&rf->cv, &rf->mu);
		}
		if (rf->stop) {
			break;
		}
		pthread_mutex_unlock(&rf->mu);
		struct timespec dl;
		ipc__deadline(&dl, HELPER_SLICE_MS);
		(void)ch->drv->wait(ch, IPC_POLLIN, &dl);
		pthread_mutex_lock(&rf->mu);
		if (!rf->stop && !rf->on) {
			set(rf, held(ch));
		}
	}
	pthread_mutex_unlock(&rf->mu);
	return NULL;
}

int
ipc__readyfd_get(ipc_channel *ch)
{
	struct ipc_readyfd *rf =
	        atomic_load_explicit(&ch->readyfd, memory_order_acquire);
	struct epoll_event e = {.events = EPOLLIN};
	int r;

	if (rf != NULL) {
		return rf->ep;
	}
	int dfd = -1;
	if (ch->drv->fd != NULL) {
		dfd = ch->drv->fd(ch);
		if (dfd < 0) {
			return dfd;
		}
	} else if (ch->drv->wait == NULL || ch->drv->ready == NULL) {
		return ipc__err(-EOPNOTSUPP, ch->uri,
		                "ipc_fd: %s has nothing to wait on",
		                ch->drv->scheme);
	}
	rf = calloc(1, sizeof(*rf));
	if (rf == NULL) {
		return ipc__err(-ENOMEM, ch->uri, "ipc_fd: out of memory");
	}
	rf->ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rf->ev < 0) {
		r = ipc__errno(-errno, ch->uri, "ipc_fd: eventfd");
		free(rf);
		return r;
	}
	rf->ep = epoll_create1(EPOLL_CLOEXEC);
	if (rf->ep < 0) {
		r = ipc__errno(-errno, ch->uri, "ipc_fd: epoll_create1");
		goto fail;
	}
	e.data.fd = rf->ev;
	if (epoll_ctl(rf->ep, EPOLL_CTL_ADD, rf->ev, &e) < 0) {
		r = ipc__errno(-errno, ch->uri, "ipc_fd: epoll_ctl");
		goto fail;
	}
	e.data.fd = dfd;
	if (dfd >= 0 && epoll_ctl(rf->ep, EPOLL_CTL_ADD, dfd, &e) < 0) {
		r = ipc__errno(-errno, ch->uri, "ipc_fd: epoll_ctl");
		goto fail;
	}
	set(rf, held(ch));
	struct ipc_readyfd *none = NULL;
	if (!atomic_compare_exchange_strong(&ch->readyfd, &none, rf)) {
		/* Another thread made one first: use that. */
		close(rf->ep);
		close(rf->ev);
		free(rf);
		return none->ep;
	}
	if (dfd < 0) {
		rf->ch = ch;
		rf->owner = getpid();
		pthread_mutex_init(&rf->mu, NULL);
		pthread_cond_init(&rf->cv, NULL);
		r = pthread_create(&rf->th, NULL, helper_main, rf);
		if (r != 0) {
			atomic_store(&ch->readyfd, NULL);
			pthread_mutex_destroy(&rf->mu);
			pthread_cond_destroy(&rf->cv);
			r = ipc__errno(
			        -r, ch->uri,
			        "ipc_fd: cannot start the helper thread");
			goto fail;
		}
		rf->helper = 1;
	}
	return rf->ep;
fail:
	if (rf->ep >= 0) {
		close(rf->ep);
	}
	close(rf->ev);
	free(rf);
	return r;
}

void
ipc__readyfd_free(ipc_channel *ch)
{
	struct ipc_readyfd *rf = atomic_load(&ch->readyfd);

	if (rf == NULL) {
		return;
	}
	if (rf->helper && rf->owner == getpid()) {
		pthread_mutex_lock(&rf->mu);
		rf->stop = 1;
		pthread_cond_signal(&rf->cv);
		pthread_mutex_unlock(&rf->mu);
		pthread_join(rf->th, NULL);
	}
	if (rf->helper) {
		pthread_mutex_destroy(&rf->mu);
		pthread_cond_destroy(&rf->cv);
	}
	close(rf->ep);
	close(rf->ev);
	free(rf);
	atomic_store(&ch->readyfd, NULL);
}
