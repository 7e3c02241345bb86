/* SPDX-License-Identifier: MIT */
#ifndef IPC_CORE_REGISTRY_H
#define IPC_CORE_REGISTRY_H

#include <stddef.h>

#include "driver.h"

/* The NULL-terminated table of every compiled-in driver. */
const struct ipc_driver *const *ipc__drivers(void);

#endif
