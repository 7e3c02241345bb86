/*
 * The driver registry: one const table, one line per driver.  A driver is
 * compiled in when its file is in src/meson.build; optional drivers are
 * guarded by the IPC_HAVE_* macro meson defines for them.
 *
 * SPDX-License-Identifier: MIT
 */
#include "registry.h"

extern const struct ipc_driver ipc_driver_shm;
extern const struct ipc_driver ipc_driver_mmap;
extern const struct ipc_driver ipc_driver_file;
extern const struct ipc_driver ipc_driver_unix;
extern const struct ipc_driver ipc_driver_unix_seqpacket;
extern const struct ipc_driver ipc_driver_unix_dgram;
extern const struct ipc_driver ipc_driver_tcp;
extern const struct ipc_driver ipc_driver_udp;
extern const struct ipc_driver ipc_driver_pipe;
extern const struct ipc_driver ipc_driver_fd;
extern const struct ipc_driver ipc_driver_fifo;
extern const struct ipc_driver ipc_driver_mq;
extern const struct ipc_driver ipc_driver_sysvmq;
extern const struct ipc_driver ipc_driver_sysvshm;
extern const struct ipc_driver ipc_driver_inproc;
#ifdef IPC_HAVE_DBUS
extern const struct ipc_driver ipc_driver_dbus;
#endif
extern const struct ipc_driver ipc_driver_signal;
#ifdef IPC_HAVE_NATS
extern const struct ipc_driver ipc_driver_nats;
#endif
#ifdef IPC_HAVE_TLS
extern const struct ipc_driver ipc_driver_tls;
#endif

/* clang-format off */
static const struct ipc_driver *const drivers[] = {
	&ipc_driver_shm,
	&ipc_driver_mmap,
	&ipc_driver_file,
	&ipc_driver_unix,
	&ipc_driver_unix_seqpacket,
	&ipc_driver_unix_dgram,
	&ipc_driver_tcp,
	&ipc_driver_udp,
	&ipc_driver_pipe,
	&ipc_driver_fd,
	&ipc_driver_fifo,
	&ipc_driver_mq,
	&ipc_driver_sysvmq,
	&ipc_driver_sysvshm,
	&ipc_driver_inproc,
#ifdef IPC_HAVE_DBUS
	&ipc_driver_dbus,
#endif
	&ipc_driver_signal,
#ifdef IPC_HAVE_NATS
	&ipc_driver_nats,
#endif
#ifdef IPC_HAVE_TLS
	&ipc_driver_tls,
#endif
	NULL,
};
/* clang-format on */

const struct ipc_driver *const *
ipc__drivers(void)
{
	return drivers;
}
