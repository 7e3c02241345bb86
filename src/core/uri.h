/* SPDX-License-Identifier: MIT */
#ifndef IPC_CORE_URI_H
#define IPC_CORE_URI_H

#include "driver.h"

/* Parse text, find its driver, check the address against the driver's
 * form (for_pair: no address allowed) and the options against its table.
 * On success *out is owned by the caller (ipc__uri_free). */
int ipc__uri_parse(const char *text, int for_pair, struct ipc_uri **out,
                   const struct ipc_driver **drv);
/* The same over another driver table (tests, fuzzers). */
int ipc__uri_parse_in(const struct ipc_driver *const *table, const char *text,
                      int for_pair, struct ipc_uri **out,
                      const struct ipc_driver **drv);
/* The driver named by text's scheme, without parsing the rest; NULL if
 * there is none. */
const struct ipc_driver *ipc__uri_driver(const char *text);
void ipc__uri_free(struct ipc_uri *u);

#endif
