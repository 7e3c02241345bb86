/*
 * gen-uri-page: write libipc-uri(7)'s scdoc source from a template,
 * replacing the line "@SCHEMES@" with one section per driver compiled
 * into this build, read from the registry itself: its address form,
 * capabilities and every option of its table with type, range and help.
 * So the page lists exactly the schemes and options the library accepts.
 *
 * usage: gen-uri-page TEMPLATE > libipc-uri.7.scd
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include "core/driver.h"
#include "core/registry.h"

/* Text from the registry, with scdoc's markup characters escaped. */
static void
put(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '*' || *s == '_' || *s == '\\') {
			putchar('\\');
		}
		putchar(*s);
	}
}

static const char *
form(enum ipc_addr_form f)
{
	switch (f) {
	case IPC_ADDR_NONE:
		return "nothing after the scheme (_SCHEME_:); with ipc_pair()";
	case IPC_ADDR_NAME:
		return "_SCHEME_://NAME, NAME of 1 to 200 characters "
		       "[A-Za-z0-9.\\_-]";
	case IPC_ADDR_PATH:
		return "_SCHEME_:///ABSOLUTE/PATH";
	case IPC_ADDR_UNIXPATH:
		return "_SCHEME_:///ABSOLUTE/PATH or _SCHEME_://@ABSTRACT";
	case IPC_ADDR_HOSTPORT:
		return "_SCHEME_://HOST:PORT, _SCHEME_://[IPV6]:PORT";
	case IPC_ADDR_CUSTOM:
		return "see the driver's page in docs/";
	}
	return "?";
}

/* The form with _SCHEME_ replaced, in bold. */
static void
print_form(const char *scheme, const char *f)
{
	const char *p;

	while ((p = strstr(f, "_SCHEME_")) != NULL) {
		printf("%.*s*", (int)(p - f), f);
		put(scheme);
		putchar('*');
		f = p + strlen("_SCHEME_");
	}
	printf("%s", f);
}

static void
print_caps(unsigned caps)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
	        {IPC_CAP_RELIABLE, "reliable"},
	        {IPC_CAP_ORDERED, "ordered"},
	        {IPC_CAP_ZEROCOPY, "zero-copy"},
	        {IPC_CAP_LISTEN, "listener"},
	        {IPC_CAP_PEERCLOSE, "peer close and death reported"},
	        {IPC_CAP_CROSSHOST, "across hosts"},
	        {IPC_CAP_PUBSUB, "publish/subscribe"},
	};
	int n = 0;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (caps & names[i].bit) {
			printf("%s%s", n++ ? ", " : "", names[i].name);
		}
	}
	if (n == 0) {
		printf("none");
	}
}

static void
print_opt(const struct ipc_optspec *o)
{
	printf("\t*");
	put(o->key);
	printf("*=");
	switch (o->type) {
	case IPC_OPT_UINT:
		printf("_N_ (%llu to %llu)", o->min, o->max);
		break;
	case IPC_OPT_SIZE:
		printf("_SIZE_ (%llu to %llu; k, M, G suffixes)", o->min,
		       o->max);
		break;
	case IPC_OPT_BOOL:
		printf("0|1");
		break;
	case IPC_OPT_ENUM:
		for (const char *const *c = o->choices; *c != NULL; c++) {
			printf("%s", c == o->choices ? "" : "|");
			put(*c);
		}
		break;
	case IPC_OPT_MODE:
		printf("_OCTAL_ (permission bits)");
		break;
	case IPC_OPT_STR:
		printf("_TEXT_");
		break;
	}
	printf("\n\t\t");
	put(o->help != NULL ? o->help : "");
	printf("\n\n");
}

static void
print_schemes(void)
{
	for (const struct ipc_driver *const *d = ipc__drivers(); *d != NULL;
	     d++) {
		const struct ipc_driver *drv = *d;
		printf("## ");
		put(drv->scheme);
		printf("\n\n");
		print_form(drv->scheme, form(drv->addr));
		printf("\n\nCapabilities: ");
		print_caps(drv->caps);
		printf(".\n\n");
		if (drv->opts == NULL || drv->opts[0].key == NULL) {
			printf("No options.\n\n");
			continue;
		}
		printf("Options:\n\n");
		for (const struct ipc_optspec *o = drv->opts; o->key != NULL;
		     o++) {
			print_opt(o);
		}
	}
}

int
main(int argc, char **argv)
{
	char line[4096];
	FILE *f;

	if (argc != 2 || (f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "usage: gen-uri-page TEMPLATE\n");
		return 2;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		if (strcmp(line, "@SCHEMES@\n") == 0) {
			print_schemes();
		} else {
			fputs(line, stdout);
		}
	}
	fclose(f);
	return 0;
}
