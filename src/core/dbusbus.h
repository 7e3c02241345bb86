/*
 * The bus side of dbus://: addresses, names, owners and credentials, over
 * sd-bus (libsystemd).  Built only with the dbus feature.  Every function
 * that fails with a URI records "URI: what failed: why".
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_DBUSBUS_H
#define IPC_CORE_DBUSBUS_H

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "driver.h"
#include "trust.h"

/* The well-known NAME of u (its path, checked against the D-Bus rules).
 * 0 or -EINVAL recorded. */
int ipc__dbus_name(const struct ipc_uri *u, const char **name);
/* The bus address of u (session, system, address=; buf of n bytes may
 * hold it).  0 or -EINVAL/-ENOENT recorded. */
int ipc__dbus_address(const struct ipc_uri *u, const char **addr, char *buf,
                      size_t n);
/* A new bus connection to addr, started (Hello done).  On failure *bus
 * may be set: the caller releases it. */
int ipc__dbus_connect(sd_bus **bus, const struct ipc_uri *u, const char *addr);
/* Own name; *owned gets a copy.  -EADDRINUSE when somebody owns it. */
int ipc__dbus_own(sd_bus *bus, const struct ipc_uri *u, const char *name,
                  char **owned);
/* The unique name that owns name (a copy in *owner); -ENOENT if none. */
int ipc__dbus_owner(sd_bus *bus, const struct ipc_uri *u, const char *name,
                    char **owner);
/* What the bus daemon knows of a connection: the uid and pid it saw at
 * connect (SO_PEERCRED); the gid from /proc while that pid has that uid.
 * Negative errno (nothing recorded) when the daemon does not know it. */
int ipc__dbus_cred(sd_bus *bus, const char *name, struct ipc_cred *c);
/* One call answered by the bus daemon, waiting at most usec: the daemon
 * handles a connection's messages in order, so once it answers, every
 * message written before has been routed. */
void ipc__dbus_round_trip(sd_bus *bus, uint64_t usec);
/* sd-bus's next timeout, if any, as *retry_ms (at most 60 s). */
void ipc__dbus_timeout(sd_bus *bus, int *retry_ms);

#endif
