/*
 * The URI parser.  Generic: it splits scheme ":" [ "//" authority ] [ path ]
 * [ "?" options ], percent-decodes, finds the driver by scheme, and checks
 * the address against the form the driver declares and the options against
 * the driver's table.  It never names a scheme.
 *
 * URIs are hostile input: every failure is -EINVAL (or -EPROTONOSUPPORT for
 * an unknown scheme) with a sentence saying exactly what is wrong.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "uri.h"

#define URI_MAX       4096
#define UNIX_PATH_MAX 107 /* sun_path is 108 bytes with the NUL */

const char *const ipc__framing_choices[] = {"length", "line", "raw", NULL};

static int
hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Decode s[0..n) into a new string.  %00 and malformed escapes fail. */
static int
decode(const char *uri, const char *what, const char *s, size_t n, char **out)
{
	char *d = malloc(n + 1);
	size_t j = 0;

	if (d == NULL) {
		return ipc__err(-ENOMEM, uri, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(d);
				return ipc__err(-EINVAL, uri,
				                "bad percent-escape in %s",
				                what);
			}
			c = (unsigned char)(hi * 16 + lo);
			if (c == 0) {
				free(d);
				return ipc__err(
				        -EINVAL, uri,
				        "%%00 (NUL) is not allowed in %s",
				        what);
			}
			i += 2;
		} else if (c < 0x20 || c == 0x7f || c == '#' || c == ' ') {
			free(d);
			return ipc__err(
			        -EINVAL, uri,
			        "character 0x%02x is not allowed in %s "
			        "(percent-encode it)",
			        c, what);
		}
		d[j++] = (char)c;
	}
	d[j] = '\0';
	*out = d;
	return 0;
}

void
ipc__uri_free(struct ipc_uri *u)
{
	if (u == NULL) {
		return;
	}
	free(u->scheme);
	free(u->authority);
	free(u->path);
	free(u->host);
	free(u->fspath);
	free(u->name);
	for (size_t i = 0; i < IPC_URI_MAXOPTS; i++) {
		free((char *)u->opt[i].str);
	}
	free((char *)u->text);
	free(u);
}

static int
parse_uint(const char *s, unsigned long long *v, int allow_suffix)
{
	char *end;
	unsigned long long mul = 1;

	if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ') {
		return -1;
	}
	/* Decimal, or hex with 0x: a leading zero does not make it octal
	 * (maxmsg=0100 is one hundred). */
	int base = s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10;
	errno = 0;
	unsigned long long x = strtoull(s, &end, base);
	if (errno != 0 || end == s) {
		return -1;
	}
	if (allow_suffix && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1ull << 10;
			break;
		case 'm':
		case 'M':
			mul = 1ull << 20;
			break;
		case 'g':
		case 'G':
			mul = 1ull << 30;
			break;
		default:
			return -1;
		}
		end++;
	}
	if (*end != '\0') {
		return -1;
	}
	if (x > ULLONG_MAX / mul) {
		return -1;
	}
	*v = x * mul;
	return 0;
}

static int
parse_bool(const char *s, unsigned long long *v)
{
	static const char *const yes[] = {"1", "true", "yes", "on", NULL};
	static const char *const no[] = {"0", "false", "no", "off", NULL};

	for (size_t i = 0; yes[i] != NULL; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*v = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*v = 0;
			return 0;
		}
	}
	return -1;
}

static void
list_keys(const struct ipc_optspec *specs, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; specs != NULL && specs[i].key != NULL; i++) {
		int k = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "",
		                 specs[i].key);
		if (k < 0 || (size_t)k >= cap - n) {
			break;
		}
		n += (size_t)k;
	}
	if (n == 0) {
		snprintf(buf, cap, "none");
	}
}

static void
list_choices(const char *const *c, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; c[i] != NULL; i++) {
		int k = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "",
		                 c[i]);
		if (k < 0 || (size_t)k >= cap - n) {
			break;
		}
		n += (size_t)k;
	}
}

static int
parse_value(const char *uri, const struct ipc_optspec *sp, const char *val,
            struct ipc_optval *ov)
{
	char list[256];
	unsigned long long v = 0;

	switch (sp->type) {
	case IPC_OPT_UINT:
	case IPC_OPT_SIZE:
		if (parse_uint(val, &v, sp->type == IPC_OPT_SIZE) < 0) {
			return ipc__err(-EINVAL, uri,
			                "option %s: '%s' is not a %s", sp->key,
			                val,
			                sp->type == IPC_OPT_SIZE
			                        ? "size (a number with an "
			                          "optional k, M or G)"
			                        : "whole number");
		}
		if (v < sp->min || v > sp->max) {
			return ipc__err(-EINVAL, uri,
			                "option %s: %s is out of range "
			                "(%llu to %llu)",
			                sp->key, val, sp->min, sp->max);
		}
		break;
	case IPC_OPT_BOOL:
		if (parse_bool(val, &v) < 0) {
			return ipc__err(-EINVAL, uri,
			                "option %s: '%s' is not a boolean "
			                "(1/0, true/false, yes/no, on/off)",
			                sp->key, val);
		}
		break;
	case IPC_OPT_ENUM: {
		size_t i;
		for (i = 0; sp->choices[i] != NULL; i++) {
			if (strcmp(val, sp->choices[i]) == 0) {
				break;
			}
		}
		if (sp->choices[i] == NULL) {
			list_choices(sp->choices, list, sizeof(list));
			return ipc__err(-EINVAL, uri,
			                "option %s: '%s' is not one of: %s",
			                sp->key, val, list);
		}
		v = i;
		break;
	}
	case IPC_OPT_MODE: {
		char *end;
		errno = 0;
		v = strtoull(val, &end, 8);
		if (*val == '\0' || *end != '\0' || errno != 0 ||
		    *val == '-' || *val == '+' || v > 0777) {
			return ipc__err(-EINVAL, uri,
			                "option %s: '%s' is not an octal "
			                "mode from 0 to 0777",
			                sp->key, val);
		}
		break;
	}
	case IPC_OPT_STR:
		break;
	}
	ov->num = v;
	return 0;
}

static int
parse_options(struct ipc_uri *u, const char *q)
{
	const char *uri = u->text;
	char list[256];

	while (*q != '\0') {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);
		char *key = NULL, *val = NULL;
		int r;

		if (n == 0) {
			return ipc__err(-EINVAL, uri, "empty option in query");
		}
		if (eq == NULL) {
			return ipc__err(-EINVAL, uri,
			                "option '%.*s' has no value (write "
			                "key=value)",
			                (int)(n > 64 ? 64 : n), q);
		}
		r = decode(uri, "an option name", q, (size_t)(eq - q), &key);
		if (r < 0) {
			return r;
		}
		r = decode(uri, "an option value", eq + 1,
		           n - (size_t)(eq - q) - 1, &val);
		if (r < 0) {
			free(key);
			return r;
		}
		size_t i;
		for (i = 0; u->specs != NULL && u->specs[i].key != NULL; i++) {
			if (strcmp(u->specs[i].key, key) == 0) {
				break;
			}
		}
		if (u->specs == NULL || u->specs[i].key == NULL) {
			list_keys(u->specs, list, sizeof(list));
			r = ipc__err(-EINVAL, uri,
			             "unknown option '%s': %s accepts %s", key,
			             u->scheme, list);
			free(key);
			free(val);
			return r;
		}
		if (u->opt[i].set) {
			r = ipc__err(-EINVAL, uri, "option '%s' given twice",
			             key);
			free(key);
			free(val);
			return r;
		}
		r = parse_value(uri, &u->specs[i], val, &u->opt[i]);
		free(key);
		if (r < 0) {
			free(val);
			return r;
		}
		u->opt[i].set = 1;
		u->opt[i].str = val;
		q += n;
		if (*q == '&') {
			q++;
			if (*q == '\0') {
				return ipc__err(-EINVAL, uri,
				                "empty option in query");
			}
		}
	}
	return 0;
}

static int
parse_hostport(struct ipc_uri *u)
{
	const char *a = u->authority;
	const char *hs, *he, *colon;

	if (a == NULL || *a == '\0') {
		return ipc__err(-EINVAL, u->text,
		                "missing HOST:PORT after %s://", u->scheme);
	}
	if (a[0] == '[') {
		he = strchr(a, ']');
		if (he == NULL) {
			return ipc__err(-EINVAL, u->text,
			                "unterminated '[' in IPv6 address");
		}
		hs = a + 1;
		colon = he + 1;
		if (*colon != ':') {
			return ipc__err(-EINVAL, u->text,
			                "missing ':PORT' after ']'");
		}
	} else {
		colon = strrchr(a, ':');
		if (colon == NULL) {
			return ipc__err(-EINVAL, u->text,
			                "missing ':PORT' in '%s'", a);
		}
		if (memchr(a, ':', (size_t)(colon - a)) != NULL) {
			return ipc__err(-EINVAL, u->text,
			                "IPv6 addresses go in brackets: "
			                "[::1]:PORT");
		}
		hs = a;
		he = colon;
	}
	if (he == hs) {
		return ipc__err(-EINVAL, u->text, "empty host");
	}
	unsigned long port = 0;
	const char *d = colon + 1;
	while (*d >= '0' && *d <= '9' && port <= 65535) {
		port = port * 10 + (unsigned long)(*d++ - '0');
	}
	if (d == colon + 1 || *d != '\0' || port > 65535) {
		return ipc__err(-EINVAL, u->text,
		                "port '%s' is not a number from 0 to 65535",
		                colon + 1);
	}
	u->host = strndup(hs, (size_t)(he - hs));
	if (u->host == NULL) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	u->port = (unsigned)port;
	return 0;
}

static int
check_path(struct ipc_uri *u, const char *p, size_t max)
{
	size_t n = strlen(p);

	if (n == 0) {
		return ipc__err(-EINVAL, u->text, "empty path");
	}
	if (n > max) {
		return ipc__err(-EINVAL, u->text,
		                "path is %zu bytes; %s allows at most %zu", n,
		                u->scheme, max);
	}
	u->fspath = strdup(p);
	return u->fspath ? 0 : ipc__err(-ENOMEM, u->text, "out of memory");
}

static int
check_address(struct ipc_uri *u, const struct ipc_driver *drv, int for_pair)
{
	const char *a = u->authority ? u->authority : "";
	const char *p = u->path ? u->path : "";
	const char *what = for_pair ? "ipc_pair" : "this URI";

	if (for_pair) {
		if (u->has_addr && drv->addr != IPC_ADDR_CUSTOM) {
			return ipc__err(-EINVAL, u->text,
			                "ipc_pair takes no address: write "
			                "\"%s:\"",
			                u->scheme);
		}
		return 0;
	}
	switch (drv->addr) {
	case IPC_ADDR_NONE:
		if (u->has_addr) {
			return ipc__err(-EINVAL, u->text,
			                "%s takes no address", u->scheme);
		}
		return 0;
	case IPC_ADDR_NAME:
		if (*p != '\0') {
			return ipc__err(-EINVAL, u->text,
			                "a %s name cannot contain '/'",
			                u->scheme);
		}
		if (!ipc__valid_name(a)) {
			return ipc__err(-EINVAL, u->text,
			                "name '%s' is not 1 to 200 of "
			                "[A-Za-z0-9._-] (%s)",
			                a, what);
		}
		u->name = strdup(a);
		return u->name ? 0 : ipc__err(-ENOMEM, u->text, "no memory");
	case IPC_ADDR_PATH:
		if (*a != '\0') {
			return ipc__err(-EINVAL, u->text,
			                "expected %s:///absolute/path (three "
			                "slashes), found host '%s'",
			                u->scheme, a);
		}
		return check_path(u, p, PATH_MAX - 16);
	case IPC_ADDR_UNIXPATH:
		if (a[0] == '@') {
			/* Abstract: the name runs to the query, slashes
			 * included. */
			size_t al = strlen(a + 1), pl = strlen(p);
			char *name = malloc(al + pl + 1);
			if (name == NULL) {
				return ipc__err(-ENOMEM, u->text, "no memory");
			}
			memcpy(name, a + 1, al);
			memcpy(name + al, p, pl + 1);
			u->abstract = 1;
			int r = check_path(u, name, UNIX_PATH_MAX);
			free(name);
			return r;
		}
		if (*a != '\0') {
			return ipc__err(-EINVAL, u->text,
			                "expected %s:///absolute/path or "
			                "%s://@abstract, found host '%s'",
			                u->scheme, u->scheme, a);
		}
		return check_path(u, p, UNIX_PATH_MAX);
	case IPC_ADDR_HOSTPORT:
		if (*p != '\0') {
			return ipc__err(-EINVAL, u->text,
			                "unexpected path '%s' after HOST:PORT",
			                p);
		}
		return parse_hostport(u);
	case IPC_ADDR_CUSTOM:
		return 0;
	}
	return ipc__err(-EINVAL, u->text, "driver declares no address form");
}

static const struct ipc_driver *
find_in(const struct ipc_driver *const *table, const char *scheme, size_t len)
{
	for (size_t i = 0; table[i] != NULL; i++) {
		const char *s = table[i]->scheme;
		if (strlen(s) == len && strncmp(s, scheme, len) == 0) {
			return table[i];
		}
	}
	return NULL;
}

const struct ipc_driver *
ipc__uri_driver(const char *text)
{
	const char *colon = text ? strchr(text, ':') : NULL;
	return colon ? find_in(ipc__drivers(), text, (size_t)(colon - text))
	             : NULL;
}

int
ipc__uri_parse(const char *text, int for_pair, struct ipc_uri **out,
               const struct ipc_driver **drvp)
{
	return ipc__uri_parse_in(ipc__drivers(), text, for_pair, out, drvp);
}

int
ipc__uri_parse_in(const struct ipc_driver *const *table, const char *text,
                  int for_pair, struct ipc_uri **out,
                  const struct ipc_driver **drvp)
{
	const struct ipc_driver *drv;
	struct ipc_uri *u;
	const char *s, *colon, *rest, *q, *end;
	int r;

	*out = NULL;
	if (text == NULL) {
		return ipc__err(-EINVAL, NULL, "URI is NULL");
	}
	size_t len = strnlen(text, URI_MAX + 1);
	if (len > URI_MAX) {
		return ipc__err(-EINVAL, NULL, "URI longer than %d bytes",
		                URI_MAX);
	}
	colon = memchr(text, ':', len);
	if (colon == NULL || colon == text) {
		return ipc__err(-EINVAL, text,
		                "not a URI: expected scheme:... such as "
		                "unix:///path or shm://name");
	}
	for (s = text; s < colon; s++) {
		char c = *s;
		int ok = (c >= 'a' && c <= 'z') ||
		         (s > text && ((c >= '0' && c <= '9') || c == '+' ||
		                       c == '-' || c == '.'));
		if (!ok) {
			return ipc__err(
			        -EINVAL, text,
			        "bad character '%c' in scheme (schemes "
			        "are lower case)",
			        (c > 0x20 && c < 0x7f) ? c : '?');
		}
	}
	drv = find_in(table, text, (size_t)(colon - text));
	if (drv == NULL) {
		char list[512];
		const struct ipc_driver *const *all = table;
		size_t n = 0;
		list[0] = '\0';
		for (size_t i = 0; all[i] != NULL; i++) {
			int k = snprintf(list + n, sizeof(list) - n, "%s%s",
			                 i ? ", " : "", all[i]->scheme);
			if (k < 0 || (size_t)k >= sizeof(list) - n) {
				break;
			}
			n += (size_t)k;
		}
		return ipc__err(-EPROTONOSUPPORT, text,
		                "unknown scheme '%.*s' (built in: %s)",
		                (int)(colon - text), text, list);
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL || (u->text = strdup(text)) == NULL ||
	    (u->scheme = strndup(text, (size_t)(colon - text))) == NULL) {
		ipc__uri_free(u);
		return ipc__err(-ENOMEM, text, "out of memory");
	}
	u->specs = drv->opts;
	rest = colon + 1;
	q = strchr(rest, '?');
	end = q ? q : text + len;
	if (end - rest >= 2 && rest[0] == '/' && rest[1] == '/') {
		const char *as = rest + 2;
		const char *ae = as;
		while (ae < end && *ae != '/') {
			ae++;
		}
		r = decode(text, "the address", as, (size_t)(ae - as),
		           &u->authority);
		if (r == 0) {
			r = decode(text, "the path", ae, (size_t)(end - ae),
			           &u->path);
		}
		if (r < 0) {
			goto fail;
		}
		u->has_addr = ae > as || end > ae;
	} else if (end > rest) {
		r = ipc__err(-EINVAL, text,
		             "expected %s:// or %s: followed by nothing but "
		             "options",
		             u->scheme, u->scheme);
		goto fail;
	}
	if (!for_pair && !u->has_addr && drv->addr != IPC_ADDR_NONE &&
	    drv->addr != IPC_ADDR_CUSTOM) {
		r = ipc__err(-EINVAL, text, "missing address after %s://",
		             u->scheme);
		goto fail;
	}
	r = check_address(u, drv, for_pair);
	if (r < 0) {
		goto fail;
	}
	if (q != NULL) {
		r = parse_options(u, q + 1);
		if (r < 0) {
			goto fail;
		}
	}
	*out = u;
	*drvp = drv;
	return 0;
fail:
	ipc__uri_free(u);
	return r;
}

static size_t
opt_index(const struct ipc_uri *u, const char *key)
{
	for (size_t i = 0; u->specs != NULL && u->specs[i].key != NULL; i++) {
		if (strcmp(u->specs[i].key, key) == 0) {
			return i;
		}
	}
	/* A driver asked for an option it does not declare: a bug. */
	abort();
}

unsigned long long
ipc__opt_num(const struct ipc_uri *u, const char *key, unsigned long long def)
{
	size_t i = opt_index(u, key);
	return u->opt[i].set ? u->opt[i].num : def;
}

const char *
ipc__opt_str(const struct ipc_uri *u, const char *key, const char *def)
{
	size_t i = opt_index(u, key);
	return u->opt[i].set ? u->opt[i].str : def;
}

int
ipc__opt_isset(const struct ipc_uri *u, const char *key)
{
	return u->opt[opt_index(u, key)].set;
}
