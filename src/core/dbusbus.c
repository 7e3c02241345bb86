/*
 * The bus side of dbus:// (src/backends/dbus.c): where the bus is and
 * which name a URI means, connecting, owning a name, finding its owner,
 * what the bus daemon knows of a connection, one round trip to the daemon,
 * and sd-bus's timeout as a poll retry.  None of it keeps channel state.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbusbus.h"

/* D-Bus well-known name: 1..255 bytes, two or more dot-separated
 * elements of [A-Za-z0-9_-], none empty or starting with a digit. */
static int
valid_bus_name(const char *s)
{
	size_t n = strlen(s), elem = 0;
	int dots = 0;

	if (n < 1 || n > 255 || s[0] == '.') {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (elem == 0) {
				return 0;
			}
			dots++;
			elem = 0;
			continue;
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '_' || c == '-' || (c >= '0' && c <= '9'))) {
			return 0;
		}
		if (elem == 0 && c >= '0' && c <= '9') {
			return 0;
		}
		elem++;
	}
	return dots > 0 && elem > 0;
}

/* One uint32 answer of the bus driver about a unique name. */
static int
ask_u32(sd_bus *bus, const char *method, const char *name, uint32_t *v)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r = sd_bus_call_method(
	        bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
	        "org.freedesktop.DBus", method, &err, &reply, "s", name);

	if (r >= 0) {
		r = sd_bus_message_read(reply, "u", v);
	}
	sd_bus_error_free(&err);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

/* What the bus daemon knows of a connection: the uid and pid it saw at
 * connect (SO_PEERCRED); the gid from /proc while that pid has that uid. */
int
ipc__dbus_cred(sd_bus *bus, const char *name, struct ipc_cred *c)
{
	uint32_t uid, pid = 0;
	struct ipc_cred proc;

	int r = ask_u32(bus, "GetConnectionUnixUser", name, &uid);
	if (r < 0) {
		return r;
	}
	(void)ask_u32(bus, "GetConnectionUnixProcessID", name, &pid);
	c->known = 1;
	c->uid = (uid_t)uid;
	c->pid = (pid_t)pid;
	c->gid = (gid_t)-1;
	if (pid > 0 && ipc__cred_pid((pid_t)pid, &proc) == 0 &&
	    proc.uid == c->uid) {
		c->gid = proc.gid;
	}
	return 0;
}

int
ipc__dbus_address(const struct ipc_uri *u, const char **addr, char *buf,
                  size_t n)
{
	const char *a = u->authority ? u->authority : "";
	const char *opt = ipc__opt_str(u, "address", NULL);

	if (opt != NULL) {
		if (*a != '\0' && strcmp(a, "session") != 0 &&
		    strcmp(a, "system") != 0) {
			return ipc__err(-EINVAL, u->text,
			                "unknown bus '%s' (session or system; "
			                "or leave it empty with address=)",
			                a);
		}
		if (opt[0] == '\0') {
			return ipc__err(-EINVAL, u->text, "empty address=");
		}
		*addr = opt;
		return 0;
	}
	if (strcmp(a, "session") == 0) {
		const char *e = secure_getenv("DBUS_SESSION_BUS_ADDRESS");
		const char *rt = secure_getenv("XDG_RUNTIME_DIR");
		if (e != NULL && *e != '\0') {
			*addr = e;
		} else if (rt != NULL && *rt == '/') {
			snprintf(buf, n, "unix:path=%s/bus", rt);
			*addr = buf;
		} else {
			return ipc__err(-ENOENT, u->text,
			                "no session bus: neither "
			                "DBUS_SESSION_BUS_ADDRESS nor "
			                "XDG_RUNTIME_DIR is set (or give "
			                "address=)");
		}
		return 0;
	}
	if (strcmp(a, "system") == 0) {
		const char *e = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
		*addr = (e != NULL && *e != '\0')
		                ? e
		                : "unix:path=/run/dbus/system_bus_socket";
		return 0;
	}
	return ipc__err(-EINVAL, u->text,
	                "expected dbus://session/NAME, dbus://system/NAME or "
	                "dbus:///NAME?address=ADDR, found bus '%s'",
	                a);
}

int
ipc__dbus_name(const struct ipc_uri *u, const char **name)
{
	const char *p = u->path ? u->path : "";

	if (*p != '/' || p[1] == '\0') {
		return ipc__err(-EINVAL, u->text,
		                "missing bus NAME (dbus://session/NAME)");
	}
	if (!valid_bus_name(p + 1)) {
		return ipc__err(-EINVAL, u->text,
		                "'%.255s' is not a D-Bus well-known name (two "
		                "or more dot-separated elements of "
		                "[A-Za-z0-9_-], not starting with a digit, at "
		                "most 255 bytes)",
		                p + 1);
	}
	*name = p + 1;
	return 0;
}

int
ipc__dbus_connect(sd_bus **busp, const struct ipc_uri *u, const char *addr)
{
	int r = sd_bus_new(busp);
	sd_bus *bus = *busp;

	if (r < 0) {
		return ipc__errno(r, u->text, "sd_bus_new");
	}
	if ((r = sd_bus_set_address(bus, addr)) < 0 ||
	    (r = sd_bus_set_bus_client(bus, 1)) < 0 ||
	    (r = sd_bus_negotiate_fds(bus, 0)) < 0) {
		return ipc__errno(r, u->text, "bus address '%s'", addr);
	}
	r = sd_bus_start(bus);
	if (r < 0) {
		return ipc__errno(r == -EINVAL ? -EINVAL : r, u->text,
		                  "cannot connect to the bus at %s", addr);
	}
	return 0;
}

int
ipc__dbus_own(sd_bus *bus, const struct ipc_uri *u, const char *name,
              char **owned)
{
	int r = sd_bus_request_name(bus, name, 0);

	if (r == -EEXIST || r == -EALREADY) {
		return ipc__err(-EADDRINUSE, u->text,
		                "bus name %s is already owned", name);
	}
	if (r < 0) {
		return ipc__errno(r == -EACCES ? -EACCES : r, u->text,
		                  "cannot own bus name %s (the system bus "
		                  "needs a policy that allows it)",
		                  name);
	}
	*owned = strdup(name);
	return *owned ? 0 : ipc__err(-ENOMEM, u->text, "out of memory");
}

int
ipc__dbus_owner(sd_bus *bus, const struct ipc_uri *u, const char *name,
                char **owner_out)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *owner;
	int r;

	r = sd_bus_call_method(bus, "org.freedesktop.DBus",
	                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
	                       "GetNameOwner", &err, &reply, "s", name);
	if (r < 0) {
		if (sd_bus_error_has_name(&err,
		                          SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
			r = ipc__err(-ENOENT, u->text,
			             "no program owns bus name %s", name);
		} else {
			r = ipc__err(r, u->text, "GetNameOwner(%s): %s", name,
			             err.message ? err.message : strerror(-r));
		}
		sd_bus_error_free(&err);
		return r;
	}
	r = sd_bus_message_read(reply, "s", &owner);
	if (r >= 0 && owner[0] != ':') {
		r = -EPROTO;
	}
	if (r < 0) {
		sd_bus_message_unref(reply);
		return ipc__err(r, u->text, "GetNameOwner(%s): bad reply",
		                name);
	}
	*owner_out = strdup(owner);
	sd_bus_message_unref(reply);
	if (*owner_out == NULL) {
		return ipc__err(-ENOMEM, u->text,
		                "out of memory keeping the owner of %s", name);
	}
	return 0;
}

void
ipc__dbus_round_trip(sd_bus *bus, uint64_t usec)
{
	sd_bus_message *m = NULL, *reply = NULL;

	if (sd_bus_message_new_method_call(
	            bus, &m, "org.freedesktop.DBus", "/org/freedesktop/DBus",
	            "org.freedesktop.DBus", "GetId") >= 0) {
		(void)sd_bus_call(bus, m, usec, NULL, &reply);
	}
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
}

void
ipc__dbus_timeout(sd_bus *bus, int *retry_ms)
{
	uint64_t until;

	if (sd_bus_get_timeout(bus, &until) > 0 && until != UINT64_MAX) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000u +
		               (uint64_t)ts.tv_nsec / 1000u;
		uint64_t ms = until > now ? (until - now + 999) / 1000 : 0;
		*retry_ms = ms > 60000 ? 60000 : (int)ms;
	}
}
