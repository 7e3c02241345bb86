/*
 * Fault injection (issue 7 item 3): the control side of the one
 * indirection every system call of src/core and src/backends goes
 * through in the test build.
 *
 * How it is wired: the meson option `fault_injection` (on with the tests)
 * builds a second, static copy of the library, libipc-fault, every file
 * of it compiled with `-include core/fault_redirect.h`.  That header maps
 * the names of the calls that can fail (open, mmap, socket, read, futex
 * through syscall, semop, mq_send, epoll_wait, malloc, ...) onto the
 * wrappers of fault.c, which call the real function unless a test armed
 * a fault for that call site.  The installed library and every other test
 * are built without it: zero cost there.  A call site is the return
 * address of the call, so every call is covered without marking it, and
 * code added later is covered too.
 *
 * A test first counts: it runs a scenario with counting on and reads the
 * call sites reached, each with the faults that were plausible there (a
 * short read only on a stream, EAGAIN only on a non-blocking descriptor,
 * ENOSPC only where something is allocated, ...).  Then it arms one site
 * and one fault at a time: the next call at that site where the fault is
 * plausible fails with it once (or, for a short transfer, moves half the
 * bytes); the calls before and after are real.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_FAULT_H
#define IPC_CORE_FAULT_H

#include <stddef.h>

/* The faults, one bit each. */
enum {
	IPC_FAULT_EINTR = 1u << 0,
	IPC_FAULT_EAGAIN = 1u << 1,
	IPC_FAULT_ENOMEM = 1u << 2,
	IPC_FAULT_EMFILE = 1u << 3,
	IPC_FAULT_ENFILE = 1u << 4,
	IPC_FAULT_ENOSPC = 1u << 5,
	IPC_FAULT_EPERM = 1u << 6,
	IPC_FAULT_ENOBUFS = 1u << 7,
	IPC_FAULT_EIO = 1u << 8,
	IPC_FAULT_SHORT = 1u << 9, /* half the bytes moved */
	IPC_FAULT_NKINDS = 10
};

struct ipc_fault_site {
	void *site;      /* return address of the call */
	const char *fn;  /* the system call's name */
	unsigned faults; /* IPC_FAULT_* plausible at some hit */
	unsigned long hits;
};

/* The name of one fault bit ("EINTR", ..., "short"). */
const char *ipc__fault_name(unsigned fault);

/* The errno value of a fault bit (0 for IPC_FAULT_SHORT). */
int ipc__fault_errno(unsigned fault);

/* Counting on (1) or off (0); turning it on forgets what was counted. */
void ipc__fault_count(int on);

/* Copies up to max sites counted so far, in the order first reached;
 * returns how many there are. */
size_t ipc__fault_sites(struct ipc_fault_site *out, size_t max);

/* Arms one fault at one site (site NULL: disarms).  The next call at the
 * site where the fault is plausible gets it, once. */
void ipc__fault_arm(void *site, unsigned fault);

/* Whether the armed fault has been injected. */
int ipc__fault_fired(void);

#endif /* IPC_CORE_FAULT_H */
