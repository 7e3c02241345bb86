/*
 * The message-queue channel shared by mq:// and sysvmq:// (queue.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "proc.h"
#include "queue.h"

#define PF_EXITING_ 0x4u /* linux/sched.h: the task is in do_exit() */

void
ipc__queue_init(struct ipc_queue *q, const struct ipc_queue_ops *ops,
                const char *uri, size_t max_msg)
{
	q->ops = ops;
	q->uri = uri;
	q->owner = getpid();
	q->max_msg = max_msg;
	q->pidfd = -1;
	atomic_init(&q->peer, IPC_Q_NONE);
	atomic_init(&q->tx_detached, 0);
	pthread_mutex_init(&q->rx_mu, NULL);
	pthread_mutex_init(&q->tx_mu, NULL);
}

void
ipc__queue_fini(struct ipc_queue *q)
{
	if (q->pidfd >= 0) {
		close(q->pidfd);
		q->pidfd = -1;
	}
	free(q->rbase);
	free(q->tbase);
	q->rbase = q->tbase = q->rbuf = q->tbuf = NULL;
	ipc__frag_rx_fini(&q->fr);
	ipc__frag_tx_fini(&q->ft);
	pthread_mutex_destroy(&q->rx_mu);
	pthread_mutex_destroy(&q->tx_mu);
}

int
ipc__queue_bufs(struct ipc_queue *q, size_t rx_unit, size_t tx_unit,
                size_t head)
{
	q->rbase = malloc(head + rx_unit);
	q->tbase = malloc(head + tx_unit);
	if (q->rbase == NULL || q->tbase == NULL) {
		return ipc__err(-ENOMEM, q->uri, "open: out of memory");
	}
	q->rbuf = q->rbase + head;
	q->tbuf = q->tbase + head;
	q->rx_unit = rx_unit;
	q->tx_unit = tx_unit;
	return 0;
}

void
ipc__queue_peer_up(struct ipc_queue *q, pid_t pid, int epfd)
{
	q->peer_pid = pid;
	q->pidfd = ipc__pidfd_open(pid);
	if (q->pidfd >= 0 && epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};
		(void)epoll_ctl(epfd, EPOLL_CTL_ADD, q->pidfd, &ev);
	}
	atomic_store(&q->peer, IPC_Q_UP);
}

/* Is the peer's process still running, not exiting?  Its exit releases
 * its locks and semaphores before its pidfd turns readable, so the
 * exiting flag in /proc/PID/stat is asked too. */
static int
peer_alive(const struct ipc_queue *q)
{
	char path[64], line[512];
	unsigned long flags = 0;
	char state = 0;
	FILE *f;

	/* Without a pidfd (a kernel or a valgrind without pidfd_open), the
	 * pid alone: a recycled one would read as a close, not a death. */
	if (q->peer_pid <= 0 || ipc__pidfd_dead(q->pidfd)) {
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)q->peer_pid);
	f = fopen(path, "re");
	if (f == NULL) {
		return 0;
	}
	char *p = fgets(line, sizeof(line), f);
	fclose(f);
	p = p != NULL ? strrchr(line, ')') : NULL;
	if (p == NULL || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state,
	                        &flags) != 2) {
		return 0;
	}
	return state != 'Z' && state != 'X' && !(flags & PF_EXITING_);
}

enum ipc_peer_end
ipc__queue_end(struct ipc_queue *q)
{
	if (q->reof) {
		return q->rdied;
	}
	return ipc__pidfd_dead(q->pidfd) ? IPC_PEER_EITHER : IPC_PEER_CLOSED;
}

/* ------------------------------------------------------------ receive -- */

int
ipc__queue_pump(struct ipc_queue *q)
{
	for (;;) {
		uint32_t arg = 0;
		ssize_t n = q->ops->recv_unit(q);
		if (n == -EAGAIN) {
			return -EAGAIN;
		}
		if (n == -EPIPE) {
			q->reof = 1;
			atomic_store(&q->peer, IPC_Q_GONE);
			return -EPIPE;
		}
		if (n < 0) {
			q->rerr = (int)n;
			return q->rerr;
		}
		int k = ipc__frag_rx_feed(&q->fr, q->rbuf, (size_t)n,
		                          q->max_msg, &arg, q->uri);
		switch (k) {
		case IPC_FRAG_NEED:
			continue;
		case IPC_FRAG_WHOLE:
			return k;
		case IPC_FRAG_HELLO:
			q->rerr = q->ops->hello != NULL
			                  ? q->ops->hello(q, arg)
			                  : ipc__err(-EPROTO, q->uri,
			                             "recv: unexpected hello "
			                             "from the peer");
			if (q->rerr < 0) {
				return q->rerr;
			}
			continue;
		case IPC_FRAG_CLOSE:
			q->reof = 1;
			q->rdied = IPC_PEER_CLOSED;
			atomic_store(&q->peer, IPC_Q_GONE);
			return -EPIPE;
		default:
			q->rerr = k;
			return k;
		}
	}
}

int
ipc__queue_rx_step(struct ipc_queue *q, int gone_hint)
{
	if (q->fr.ready) {
		return IPC_FRAG_WHOLE;
	}
	if (q->rerr != 0) {
		return ipc__err(q->rerr, q->uri,
		                "recv: the channel failed earlier");
	}
	if (q->reof) {
		return -EPIPE;
	}
	int r = ipc__queue_pump(q);
	if (r == -EAGAIN && (gone_hint || q->ops->gone(q, 1))) {
		/* Gone: what it sent before is queued already, and a peer
		 * that closed sent its close record last. */
		r = ipc__queue_pump(q);
		if (r == -EAGAIN) {
			/* No close record: it died, unless it lives on (its
			 * close found no room for the record). */
			ipc__frag_rx_drop(&q->fr);
			q->reof = 1;
			q->rdied = peer_alive(q) ? IPC_PEER_CLOSED
			                         : IPC_PEER_DIED;
			r = -EPIPE;
		}
	}
	return r;
}

ssize_t
ipc__queue_recv(struct ipc_queue *q, void *buf, size_t cap)
{
	ssize_t r;

	pthread_mutex_lock(&q->rx_mu);
	r = ipc__queue_rx_step(q, 0);
	if (r == IPC_FRAG_WHOLE) {
		r = ipc__frag_rx_take(&q->fr, buf, cap, q->uri);
	} else if (r == -EPIPE) {
		r = ipc__err_peer(q->uri, "recv", q->rdied);
	}
	pthread_mutex_unlock(&q->rx_mu);
	if (r == -EAGAIN) {
		ipc__queue_kick(q);
	}
	return r;
}

/* ---------------------------------------------------------------- send -- */

static void
tx_stop(struct ipc_queue *q)
{
	ipc__frag_tx_done(&q->ft);
	atomic_store(&q->tx_detached, 0);
}

static int
tx_epipe(struct ipc_queue *q)
{
	tx_stop(q);
	q->werr = -EPIPE;
	return ipc__err_peer(q->uri, "send", ipc__queue_end(q));
}

/* Push units of the message in progress.  tx_mu held.  0 when it is out,
 * -EAGAIN when the queue is full, or an error. */
static int
push(struct ipc_queue *q)
{
	while (q->ft.active) {
		size_t n = ipc__frag_tx_next(&q->ft, q->tbuf, q->tx_unit);
		int r = q->ops->send_unit(q, n);
		if (r == -EAGAIN) {
			return r;
		}
		if (r == -EPIPE) {
			return tx_epipe(q);
		}
		if (r < 0) {
			tx_stop(q);
			q->werr = r;
			return r;
		}
		if (ipc__frag_tx_sent(&q->ft, n)) {
			tx_stop(q);
		}
	}
	return 0;
}

ssize_t
ipc__queue_tx_locked(struct ipc_queue *q, const void *buf, size_t len)
{
	int r;

	if (q->werr == -EPIPE) {
		return ipc__err_peer(q->uri, "send", ipc__queue_end(q));
	}
	if (q->werr != 0) {
		return ipc__err(q->werr, q->uri,
		                "send: the channel failed earlier");
	}
	if (q->ft.active) {
		int same = ipc__frag_tx_same(&q->ft, buf, len);
		r = push(q);
		if (r == -EAGAIN) {
			if (q->ops->gone(q, 1)) {
				return tx_epipe(q);
			}
			return same ? -EINPROGRESS : -EAGAIN;
		}
		if (r < 0) {
			return r;
		}
		if (same) {
			return (ssize_t)len;
		}
	}
	if (q->ops->gone(q, 0)) {
		return tx_epipe(q);
	}
	ipc__frag_tx_start(&q->ft, buf, len);
	r = push(q);
	if (r == -EAGAIN) {
		if (q->ft.off == 0) {
			ipc__frag_tx_done(&q->ft);
			return q->ops->gone(q, 1) ? tx_epipe(q) : -EAGAIN;
		}
		return q->ops->gone(q, 1) ? tx_epipe(q) : -EINPROGRESS;
	}
	return r < 0 ? r : (ssize_t)len;
}

int
ipc__queue_detach(struct ipc_queue *q)
{
	int r;

	pthread_mutex_lock(&q->tx_mu);
	r = ipc__frag_tx_detach(&q->ft);
	if (r == 0 && q->ft.active) {
		atomic_store(&q->tx_detached, 1);
	}
	pthread_mutex_unlock(&q->tx_mu);
	return r;
}

void
ipc__queue_kick(struct ipc_queue *q)
{
	if (atomic_load_explicit(&q->tx_detached, memory_order_relaxed)) {
		pthread_mutex_lock(&q->tx_mu);
		if (q->ft.active && q->ft.detached) {
			if (push(q) == -EAGAIN && q->ops->gone(q, 1)) {
				(void)tx_epipe(q);
			}
		}
		pthread_mutex_unlock(&q->tx_mu);
	}
}

int
ipc__queue_flush(struct ipc_queue *q, int timeout_ms)
{
	struct timespec dl;
	int r = 0;

	if (atomic_load(&q->peer) != IPC_Q_UP) {
		return 0;
	}
	if (timeout_ms >= 0) {
		ipc__deadline(&dl, timeout_ms);
	}
	pthread_mutex_lock(&q->tx_mu);
	while (q->ft.active && q->werr == 0) {
		r = push(q);
		if (r != -EAGAIN) {
			break;
		}
		if (q->ops->gone(q, 1)) {
			r = tx_epipe(q);
			break;
		}
		if (timeout_ms >= 0 && ipc__remaining_ms(&dl) == 0) {
			r = ipc__err(-EIO, q->uri,
			             "close: the last message could not be "
			             "sent whole in time");
			tx_stop(q);
			break;
		}
		pthread_mutex_unlock(&q->tx_mu);
		(void)q->ops->wait_room(q, timeout_ms >= 0 ? &dl : NULL);
		pthread_mutex_lock(&q->tx_mu);
	}
	pthread_mutex_unlock(&q->tx_mu);
	return r == -EPIPE || r == -EAGAIN ? 0 : r;
}

void
ipc__queue_close_record(struct ipc_queue *q)
{
	pthread_mutex_lock(&q->tx_mu);
	if (atomic_load(&q->peer) == IPC_Q_UP && q->werr == 0 &&
	    !q->ft.active && !q->ops->gone(q, 1)) {
		size_t n = ipc__frag_ctl(q->tbuf, IPC_FRAG_CLOSE, 0);
		(void)q->ops->send_unit(q, n);
	}
	pthread_mutex_unlock(&q->tx_mu);
}
