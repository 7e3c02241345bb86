/*
 * Unit tests of the URI parser, over a table of fake drivers that covers
 * every address form and option type, so they do not depend on which real
 * drivers a build has.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/registry.h"
#include "core/uri.h"

static const char *const colours[] = {"red", "green", NULL};

static const struct ipc_optspec opts[] = {
        {"n", IPC_OPT_UINT, 1, 100, NULL, "a number"},
        {"size", IPC_OPT_SIZE, 0, 1ull << 40, NULL, "a size"},
        {"flag", IPC_OPT_BOOL, 0, 1, NULL, "a boolean"},
        {"colour", IPC_OPT_ENUM, 0, 0, colours, "red or green"},
        {"mode", IPC_OPT_MODE, 0, 0777, NULL, "permissions"},
        {"s", IPC_OPT_STR, 0, 0, NULL, "text"},
        {NULL, 0, 0, 0, NULL, NULL},
};

#define FAKE(id, sch, form)                                                   \
	static const struct ipc_driver id = {                                 \
	        .scheme = sch, .addr = form, .opts = opts}

FAKE(d_none, "none", IPC_ADDR_NONE);
FAKE(d_name, "name", IPC_ADDR_NAME);
FAKE(d_path, "path", IPC_ADDR_PATH);
FAKE(d_unix, "u+x", IPC_ADDR_UNIXPATH);
FAKE(d_host, "hp", IPC_ADDR_HOSTPORT);
FAKE(d_custom, "custom", IPC_ADDR_CUSTOM);

static const struct ipc_driver *const table[] = {
        &d_none, &d_name, &d_path, &d_unix, &d_host, &d_custom, NULL,
};

static struct ipc_uri *
ok(const char *text, int for_pair)
{
	struct ipc_uri *u = NULL;
	const struct ipc_driver *d = NULL;
	int r = ipc__uri_parse_in(table, text, for_pair, &u, &d);
	if (r != 0) {
		print_error("parse('%s') = %d: %s\n", text, r,
		            ipc_last_error());
	}
	assert_int_equal(r, 0);
	assert_non_null(u);
	return u;
}

/* Fails with err, and the message contains `needle`. */
static void
bad(const char *text, int for_pair, int err, const char *needle)
{
	struct ipc_uri *u = NULL;
	const struct ipc_driver *d = NULL;
	int r = ipc__uri_parse_in(table, text, for_pair, &u, &d);
	if (r != err || strstr(ipc_last_error(), needle) == NULL) {
		print_error("parse('%s') = %d (want %d): '%s' lacks '%s'\n",
		            text, r, err, ipc_last_error(), needle);
	}
	assert_int_equal(r, err);
	assert_null(u);
	assert_non_null(strstr(ipc_last_error(), needle));
}

static void
test_schemes(void **state)
{
	(void)state;
	struct ipc_uri *u = ok("none:", 0);
	assert_string_equal(u->scheme, "none");
	assert_false(u->has_addr);
	ipc__uri_free(u);
	u = ok("u+x:///tmp/a", 0);
	assert_string_equal(u->scheme, "u+x");
	ipc__uri_free(u);
	bad("nosuch://x", 0, -EPROTONOSUPPORT, "unknown scheme 'nosuch'");
	bad("NAME://x", 0, -EINVAL, "lower case");
	bad("://x", 0, -EINVAL, "not a URI");
	bad("noscheme", 0, -EINVAL, "not a URI");
	bad("", 0, -EINVAL, "not a URI");
	bad(NULL, 0, -EINVAL, "NULL");
	bad("none:junk", 0, -EINVAL, "expected none://");
}

static void
test_name(void **state)
{
	(void)state;
	struct ipc_uri *u = ok("name://telemetry.v2_x-y", 0);
	assert_string_equal(u->name, "telemetry.v2_x-y");
	ipc__uri_free(u);
	bad("name://", 0, -EINVAL, "missing address");
	bad("name://a/b", 0, -EINVAL, "cannot contain '/'");
	bad("name://a%20b", 0, -EINVAL, "not 1 to 200");
	bad("name://caf%C3%A9", 0, -EINVAL, "not 1 to 200");
	char long_name[260];
	memcpy(long_name, "name://", 7);
	memset(long_name + 7, 'a', 201);
	long_name[208] = '\0';
	bad(long_name, 0, -EINVAL, "not 1 to 200");
	long_name[207] = '\0'; /* exactly 200 */
	u = ok(long_name, 0);
	assert_int_equal(strlen(u->name), 200);
	ipc__uri_free(u);
	/* pair: no address */
	u = ok("name:", 1);
	ipc__uri_free(u);
	bad("name://x", 1, -EINVAL, "ipc_pair takes no address");
}

static void
test_paths(void **state)
{
	(void)state;
	struct ipc_uri *u = ok("path:///run/app/x.fifo", 0);
	assert_string_equal(u->fspath, "/run/app/x.fifo");
	ipc__uri_free(u);
	u = ok("path:///tmp/with%20space%3Fq", 0);
	assert_string_equal(u->fspath, "/tmp/with space?q");
	ipc__uri_free(u);
	bad("path://host/x", 0, -EINVAL, "three slashes");
	bad("path://", 0, -EINVAL, "missing address");
	bad("path:///a%00b", 0, -EINVAL, "NUL");
	bad("path:///a%zz", 0, -EINVAL, "percent-escape");
	bad("path:///a%4", 0, -EINVAL, "percent-escape");
	bad("path:///a b", 0, -EINVAL, "not allowed");
	bad("path:///a#frag", 0, -EINVAL, "not allowed");

	u = ok("u+x:///run/app.sock", 0);
	assert_string_equal(u->fspath, "/run/app.sock");
	assert_false(u->abstract);
	ipc__uri_free(u);
	u = ok("u+x://@libipc/test", 0);
	assert_string_equal(u->fspath, "libipc/test");
	assert_true(u->abstract);
	ipc__uri_free(u);
	char p[200] = "u+x:///";
	memset(p + 7, 'x', 107);
	p[114] = '\0'; /* "/" + 107 = 108 bytes: too long for sun_path */
	bad(p, 0, -EINVAL, "at most 107");
	bad("u+x://host/x", 0, -EINVAL, "found host");
}

static void
test_hostport(void **state)
{
	(void)state;
	struct ipc_uri *u = ok("hp://127.0.0.1:7000", 0);
	assert_string_equal(u->host, "127.0.0.1");
	assert_int_equal(u->port, 7000);
	ipc__uri_free(u);
	u = ok("hp://[::1]:65535", 0);
	assert_string_equal(u->host, "::1");
	assert_int_equal(u->port, 65535);
	ipc__uri_free(u);
	u = ok("hp://[fe80::1%25eth0]:1", 0);
	assert_string_equal(u->host, "fe80::1%eth0");
	ipc__uri_free(u);
	u = ok("hp://broker.example:0", 0);
	assert_string_equal(u->host, "broker.example");
	assert_int_equal(u->port, 0);
	ipc__uri_free(u);
	bad("hp://host", 0, -EINVAL, "missing ':PORT'");
	bad("hp://host:", 0, -EINVAL, "port");
	bad("hp://host:65536", 0, -EINVAL, "port");
	bad("hp://host:-1", 0, -EINVAL, "port");
	bad("hp://host:0x10", 0, -EINVAL, "port");
	bad("hp://host:1 ", 0, -EINVAL, "not allowed");
	bad("hp://host:99999999999999999999", 0, -EINVAL, "port");
	bad("hp://:80", 0, -EINVAL, "empty host");
	bad("hp://::1:80", 0, -EINVAL, "brackets");
	bad("hp://[::1:80", 0, -EINVAL, "unterminated");
	bad("hp://[::1]80", 0, -EINVAL, "missing ':PORT'");
	bad("hp://h:1/path", 0, -EINVAL, "unexpected path");
}

static void
test_options(void **state)
{
	(void)state;
	struct ipc_uri *u = ok("name://x?n=5&size=4M&flag=yes&colour=green"
	                       "&mode=0640&s=a%26b",
	                       0);
	assert_int_equal(ipc__opt_num(u, "n", 0), 5);
	assert_int_equal(ipc__opt_num(u, "size", 0), 4u << 20);
	assert_int_equal(ipc__opt_num(u, "flag", 0), 1);
	assert_int_equal(ipc__opt_num(u, "colour", 0), 1);
	assert_int_equal(ipc__opt_num(u, "mode", 0), 0640);
	assert_string_equal(ipc__opt_str(u, "s", NULL), "a&b");
	assert_true(ipc__opt_isset(u, "n"));
	ipc__uri_free(u);
	u = ok("name://x", 0);
	assert_int_equal(ipc__opt_num(u, "n", 42), 42);
	assert_false(ipc__opt_isset(u, "n"));
	ipc__uri_free(u);
	u = ok("name://x?size=0x10&n=100", 0);
	assert_int_equal(ipc__opt_num(u, "size", 0), 16);
	ipc__uri_free(u);
	/* A leading zero is decimal, not octal (0100 was read as 64). */
	u = ok("name://x?size=0100&n=010", 0);
	assert_int_equal(ipc__opt_num(u, "size", 0), 100);
	assert_int_equal(ipc__opt_num(u, "n", 0), 10);
	ipc__uri_free(u);
	u = ok("name://x?size=0X1fk", 0);
	assert_int_equal(ipc__opt_num(u, "size", 0), 31u << 10);
	ipc__uri_free(u);
	bad("name://x?n=08x", 0, -EINVAL, "not a whole number");

	bad("name://x?bogus=1", 0, -EINVAL, "unknown option 'bogus'");
	bad("name://x?bogus=1", 0, -EINVAL, "accepts n, size");
	bad("name://x?n=0", 0, -EINVAL, "out of range");
	bad("name://x?n=101", 0, -EINVAL, "out of range");
	bad("name://x?n=abc", 0, -EINVAL, "not a whole number");
	bad("name://x?n=", 0, -EINVAL, "not a whole number");
	bad("name://x?n=-1", 0, -EINVAL, "not a whole number");
	bad("name://x?n=5k", 0, -EINVAL, "not a whole number");
	bad("name://x?size=4X", 0, -EINVAL, "not a size");
	bad("name://x?size=99999999999999999999", 0, -EINVAL, "not a size");
	bad("name://x?size=17179869184G", 0, -EINVAL, "not a size");
	bad("name://x?flag=maybe", 0, -EINVAL, "not a boolean");
	bad("name://x?colour=blue", 0, -EINVAL, "red, green");
	bad("name://x?mode=0800", 0, -EINVAL, "octal");
	bad("name://x?mode=1777", 0, -EINVAL, "octal");
	bad("name://x?n", 0, -EINVAL, "has no value");
	bad("name://x?n=1&n=2", 0, -EINVAL, "given twice");
	bad("name://x?n=1&", 0, -EINVAL, "empty option");
	bad("name://x?&n=1", 0, -EINVAL, "empty option");
	bad("name://x?n=1&&s=2", 0, -EINVAL, "empty option");
	bad("name://x?s=%", 0, -EINVAL, "percent-escape");
	/* Options on pair URIs too. */
	u = ok("none:?n=3", 1);
	assert_int_equal(ipc__opt_num(u, "n", 0), 3);
	ipc__uri_free(u);
}

static void
test_custom_and_limits(void **state)
{
	(void)state;
	struct ipc_uri *u = ok("custom://session/org.example.Name", 0);
	assert_string_equal(u->authority, "session");
	assert_string_equal(u->path, "/org.example.Name");
	ipc__uri_free(u);
	u = ok("custom://", 0);
	ipc__uri_free(u);
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "name://", 7);
	big[sizeof(big) - 1] = '\0';
	bad(big, 0, -EINVAL, "longer than");
}

/* The public API reports URI errors the same way through ipc_open. */
static void
test_public_errors(void **state)
{
	(void)state;
	ipc_channel *ch = (ipc_channel *)1;
	assert_int_equal(ipc_open(&ch, "nosuch://x", 0), -EPROTONOSUPPORT);
	assert_null(ch);
	assert_non_null(strstr(ipc_last_error(), "unknown scheme"));
	assert_int_equal(ipc_open(&ch, "pipe:?framing=xml", 0), -EINVAL);
	assert_non_null(strstr(ipc_last_error(), "framing"));
	assert_int_equal(ipc_open(NULL, "pipe:", 0), -EINVAL);
	assert_int_equal(ipc_open(&ch, "pipe:", 0x100), -EINVAL);
	assert_non_null(strstr(ipc_last_error(), "unknown flags"));
	assert_int_equal(ipc_open(&ch, "fd://x", 0), -EINVAL);
	assert_int_equal(ipc_open(&ch, "fd://1,x", 0), -EINVAL);
	assert_int_equal(ipc_open(&ch, "fd://99999", 0), -EBADF);
	assert_string_equal(ipc_strerror(-EPROTONOSUPPORT),
	                    "unknown URI scheme (driver not built in)");
	assert_non_null(ipc_strerror(-12345));
	/* Not errno values: no negation of INT_MIN (undefined), a text
	 * that says so. */
	assert_non_null(strstr(ipc_strerror(INT_MIN), "not a negative errno"));
	assert_non_null(strstr(ipc_strerror(-100000), "not a negative errno"));
	assert_int_equal(ipc_close(NULL), 0);
	assert_int_equal(ipc_max_msg(NULL), 0);
	assert_int_equal(ipc_caps(NULL), 0);
	assert_null(ipc_scheme(NULL));
	assert_int_equal(ipc_send(NULL, "", 0, 0), -EINVAL);
	assert_int_equal(ipc_recv(NULL, NULL, 0, 0), -EINVAL);
	assert_int_equal(ipc_fd(NULL), -EINVAL);
	assert_int_equal(ipc_set_timeout(NULL, 1), -EINVAL);
	assert_int_equal(ipc_poll(NULL, 1, 0), -EINVAL);
	/* An item naming nothing is ignored, as poll(2) ignores fd < 0;
	 * one naming both a channel and a listener is an error. */
	ipc_pollitem it = {.channel = NULL, .listener = NULL, .fd = -1};
	assert_int_equal(ipc_poll(&it, 1, 0), 0);
	it.channel = (ipc_channel *)&it;
	it.listener = (ipc_listener *)&it;
	assert_int_equal(ipc_poll(&it, 1, 0), -EINVAL);
}

/* Every compiled-in driver fills the slots driver.h requires. */
static void
test_registry_slots(void **state)
{
	(void)state;
	const struct ipc_driver *const *all = ipc__drivers();
	size_t n = 0;
	for (; all[n] != NULL; n++) {
		const struct ipc_driver *d = all[n];
		assert_non_null(d->scheme);
		assert_non_null(d->open);
		assert_non_null(d->send);
		assert_non_null(d->recv);
		assert_non_null(d->close);
		assert_non_null(d->pollfds);
		int zc = (d->reserve != NULL) + (d->commit != NULL) +
		         (d->acquire != NULL) + (d->release != NULL);
		assert_true(zc == 0 || zc == 4);
		int ls = (d->listen != NULL) + (d->accept != NULL) +
		         (d->listener_fd != NULL) +
		         (d->listener_close != NULL);
		assert_true(ls == 0 || ls == 4);
		assert_int_equal(ls == 4, (d->caps & IPC_CAP_LISTEN) != 0);
		for (size_t j = 0; j < n; j++) {
			assert_string_not_equal(all[j]->scheme, d->scheme);
		}
		size_t k = 0;
		for (; d->opts != NULL && d->opts[k].key != NULL; k++) {
		}
		assert_true(k <= IPC_URI_MAXOPTS);
	}
	assert_true(n >= 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_schemes),
	        cmocka_unit_test(test_name),
	        cmocka_unit_test(test_paths),
	        cmocka_unit_test(test_hostport),
	        cmocka_unit_test(test_options),
	        cmocka_unit_test(test_custom_and_limits),
	        cmocka_unit_test(test_public_errors),
	        cmocka_unit_test(test_registry_slots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
