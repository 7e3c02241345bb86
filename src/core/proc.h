/*
 * Facts about other processes that several drivers need: a pidfd for a
 * peer (its death makes the descriptor readable), and per-thread signal
 * masks read from /proc; and the claim of a realtime signal by a channel
 * of this process.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_PROC_H
#define IPC_CORE_PROC_H

#include <sys/types.h>

/* pidfd_open(pid) with FD_CLOEXEC; -1 with errno (ENOSYS on old kernels,
 * ESRCH when there is no such process). */
int ipc__pidfd_open(pid_t pid);

/* Has the process behind pidfd exited?  0 for pidfd < 0. */
int ipc__pidfd_dead(int pidfd);

/* Does every thread of process pid block signal signo, and has it no
 * handler?  Returns 1 yes, 0 no (*tid is the first thread that does not
 * block it, or 0 when a handler is installed), or -errno when /proc
 * cannot tell (-ESRCH: no such process).  skip_tid: a thread not to look
 * at (0: none). */
int ipc__proc_sig_blocked(pid_t pid, int signo, pid_t skip_tid, pid_t *tid);

/*
 * A channel reads realtime signal signo through a signalfd (signal://).
 * Claim it for this process: refused (-EBUSY, with the error recorded for
 * uri) when this process has claimed it already, when it has a handler,
 * or when another thread does not block it; otherwise it is blocked in
 * the calling thread.  Release: discard what is still queued, and unblock
 * it in the calling thread if it was not blocked before the claim; quiet
 * = 0 means a peer may still send, so the disposition becomes SIG_IGN
 * first (a late signal must not terminate the process).  Claims are per
 * process: a child forked after a claim may claim the number again.
 */
int ipc__sig_claim(const char *uri, int signo);
void ipc__sig_release(int signo, int quiet);

#endif /* IPC_CORE_PROC_H */
