/*
 * The driver registry: one const table, one line per driver.  A driver is
 * compiled in when its file is in src/meson.build; optional drivers are
 * guarded by the IPC_HAVE_* macro meson defines for them.
 *
 * SPDX-License-Identifier: MIT
 */
#include "registry.h"

extern const struct ipc_driver ipc_driver_fd;
extern const struct ipc_driver ipc_driver_pipe;
extern const struct ipc_driver ipc_driver_fifo;
extern const struct ipc_driver ipc_driver_inproc;

static const struct ipc_driver *const drivers[] = {
        &ipc_driver_fd,
        &ipc_driver_pipe,
        &ipc_driver_fifo,
        &ipc_driver_inproc,
        NULL,
};

const struct ipc_driver *const *
ipc__drivers(void)
{
	return drivers;
}
