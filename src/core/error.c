/*
 * Errors: negative errno values as the interface, and a thread-local
 * sentence saying what failed and why.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "wait.h"

#define IPC_ERRMAX 512

static _Thread_local char last_error[IPC_ERRMAX];

/* What follows the URI: ": ", or " " after a URI that ends in a colon
 * (the "pipe:" of ipc_pair), so that no text has "::". */
static const char *
sep(const char *uri, size_t n)
{
	return n > 0 && uri[n - 1] == ':' ? " " : ": ";
}

static void
verr(int err, const char *uri, int with_errno, const char *fmt, va_list ap)
{
	size_t n = 0;

	if (uri != NULL && *uri != '\0') {
		int k = snprintf(last_error, sizeof(last_error), "%s%s", uri,
		                 sep(uri, strlen(uri)));
		n = k < 0 ? 0 : (size_t)k;
		if (n >= sizeof(last_error)) {
			n = sizeof(last_error) - 1;
		}
	}
	int k = vsnprintf(last_error + n, sizeof(last_error) - n, fmt, ap);
	if (k > 0) {
		n += (size_t)k;
	}
	if (n >= sizeof(last_error)) {
		n = sizeof(last_error) - 1;
	}
	if (with_errno && n < sizeof(last_error) - 1) {
		snprintf(last_error + n, sizeof(last_error) - n, ": %s",
		         ipc_strerror(err));
	}
	(void)err;
}

int
ipc__err(int err, const char *uri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(err, uri, 0, fmt, ap);
	va_end(ap);
	return err;
}

int
ipc__errno(int err, const char *uri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(err, uri, 1, fmt, ap);
	va_end(ap);
	return err;
}

const char *
ipc_last_error(void)
{
	return last_error;
}

const char *
ipc_strerror(int err)
{
	if (err > 0) {
		return "not an error (positive value)";
	}
	if (err < -4095) {
		/* Not an errno value (and -INT_MIN does not exist). */
		return "unknown error (not a negative errno value)";
	}
	switch (err) {
	case 0:
		return "success";
	case -EPROTONOSUPPORT:
		return "unknown URI scheme (driver not built in)";
	case -EPIPE:
		return "peer closed the channel";
	case -EMSGSIZE:
		return "message too long for this channel or buffer";
	case -ETIMEDOUT:
		return "timed out";
	case -EAGAIN:
		return "would block";
	case -EPROTO:
		return "protocol error: the peer sent malformed data";
	case -EOPNOTSUPP:
		return "operation not supported by this driver";
	default:
		return strerror(-err);
	}
}

int
ipc__err_wouldblock(const char *uri, const char *what)
{
	/* Cheap: event loops see -EAGAIN constantly (no printf):
	 * "URI: WHAT: would block (non-blocking call)". */
	static const char msg[] = ": would block (non-blocking call)";
	size_t n = uri != NULL ? strlen(uri) : 0;
	size_t w = strlen(what);

	if (n > IPC_ERRMAX - sizeof(msg) - w - 2) {
		n = IPC_ERRMAX - sizeof(msg) - w - 2;
	}
	if (n > 0) {
		const char *s = sep(uri, n);
		memcpy(last_error, uri, n);
		memcpy(last_error + n, s, strlen(s));
		n += strlen(s);
	}
	memcpy(last_error + n, what, w);
	memcpy(last_error + n + w, msg, sizeof(msg));
	return -EAGAIN;
}

void
ipc__err_what(const char *uri, const char *what)
{
	size_t n = uri != NULL ? strlen(uri) : 0;
	size_t w = strlen(what);
	const char *s = sep(uri, n);
	char *rest = last_error + n + strlen(s);

	if (n == 0 || strncmp(last_error, uri, n) != 0 ||
	    strncmp(last_error + n, s, strlen(s)) != 0 ||
	    (strncmp(rest, what, w) == 0 &&
	     (rest[w] == ':' || rest[w] == ' '))) {
		return; /* not this URI's text, or it names the call */
	}
	size_t len = strlen(rest);
	size_t at = (size_t)(rest - last_error);
	if (at + w + 2 + len >= sizeof(last_error)) {
		len = sizeof(last_error) - 1 - (at + w + 2);
	}
	memmove(rest + w + 2, rest, len);
	rest[w + 2 + len] = '\0';
	memcpy(rest, what, w);
	memcpy(rest + w, ": ", 2);
}

int
ipc__err_msgsize(const char *uri, size_t need, size_t cap)
{
	return ipc__err(-EMSGSIZE, uri,
	                "recv: message of %zu bytes does not fit the "
	                "%zu-byte buffer: it stays queued, needs %zu bytes",
	                need, cap, need);
}

int
ipc__err_peer(const char *uri, const char *what, enum ipc_peer_end how)
{
	static const char *const text[] = {
	        [IPC_PEER_CLOSED] = "the peer closed the channel",
	        [IPC_PEER_DIED] = "the peer died without closing the channel",
	        [IPC_PEER_EITHER] = "the peer closed the channel or exited",
	};
	return ipc__err(-EPIPE, uri, "%s: %s", what, text[how]);
}

int
ipc__err_eagain(void)
{
	/* Cheap: event loops see -EAGAIN constantly. */
	static const char msg[] = "would block (non-blocking call)";
	memcpy(last_error, msg, sizeof(msg));
	return -EAGAIN;
}
