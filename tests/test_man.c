/*
 * The man pages against the code: every function the public header
 * exports is in libipc(3); every registered scheme, and every option of
 * its table, is in libipc-uri(7); every long option of ipc-cat --help and
 * ipc-bench --help is in ipc-cat(1) and ipc-bench(1).
 *
 * usage: test_man IPC_H LIBIPC_3 LIBIPC_URI_7 IPC_CAT_1 IPC_CAT \
 *                 IPC_BENCH_1 IPC_BENCH
 *
 * SPDX-License-Identifier: MIT
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/driver.h"
#include "core/registry.h"

static int failures;

static char *
slurp(FILE *f)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	if (buf == NULL) {
		exit(2);
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL) {
				exit(2);
			}
		}
		size_t r = fread(buf + n, 1, 4096, f);
		if (r == 0) {
			break;
		}
		n += r;
	}
	buf[n] = '\0';
	return buf;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "test_man: cannot open %s\n", path);
		exit(2);
	}
	char *s = slurp(f);
	fclose(f);
	return s;
}

/* The page's text without roff's font changes ("\fB", "\fR"), "\&"
 * and with "\-" read as "-". */
static char *
read_page(const char *path)
{
	char *s = read_file(path);
	char *w = s;

	for (const char *r = s; *r != '\0'; r++) {
		if (r[0] == '\\' && r[1] == '-') {
			continue;
		}
		if (r[0] == '\\' && r[1] == 'f' && r[2] != '\0') {
			r += 2;
			continue;
		}
		if (r[0] == '\\' && r[1] == '&') {
			r++;
			continue;
		}
		*w++ = *r;
	}
	*w = '\0';
	return s;
}

static void
expect(const char *page, const char *pagename, const char *what,
       const char *word)
{
	const char *p = page;
	size_t n = strlen(word);

	while ((p = strstr(p, word)) != NULL) {
		char after = p[n];
		char before = p == page ? ' ' : p[-1];
		if (!isalnum((unsigned char)after) && after != '_' &&
		    !isalnum((unsigned char)before) && before != '_') {
			return;
		}
		p += n;
	}
	printf("FAIL: %s '%s' is not in %s\n", what, word, pagename);
	failures++;
}

/* Every "IPC_API ... name(" of the header. */
static int
check_functions(const char *hdr, const char *page)
{
	int n = 0;

	for (const char *p = hdr; (p = strstr(p, "IPC_API ")) != NULL; p++) {
		const char *paren = strchr(p, '(');
		const char *nl = strchr(p, '\n');
		if (paren == NULL || (nl != NULL && nl < paren) ||
		    (p - hdr >= 7 && strncmp(p - 7, "define ", 7) == 0)) {
			continue; /* the macro's own definitions */
		}
		const char *e = paren;
		const char *b = e;
		while (b > p &&
		       (isalnum((unsigned char)b[-1]) || b[-1] == '_')) {
			b--;
		}
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)(e - b), b);
		expect(page, "libipc(3)", "function", name);
		n++;
	}
	return n;
}

static int
check_schemes(const char *page)
{
	int n = 0;

	for (const struct ipc_driver *const *d = ipc__drivers(); *d != NULL;
	     d++) {
		expect(page, "libipc-uri(7)", "scheme", (*d)->scheme);
		for (const struct ipc_optspec *o = (*d)->opts;
		     o != NULL && o->key != NULL; o++) {
			char what[160];
			snprintf(what, sizeof what, "option of %s",
			         (*d)->scheme);
			expect(page, "libipc-uri(7)", what, o->key);
		}
		n++;
	}
	return n;
}

/* Every "--long" word of PROGRAM --help. */
static int
check_help(const char *program, const char *page, const char *pagename)
{
	char cmd[4096];
	int n = 0;

	snprintf(cmd, sizeof cmd, "'%s' --help 2>&1", program);
	FILE *f = popen(cmd, "r");
	if (f == NULL) {
		exit(2);
	}
	char *help = slurp(f);
	pclose(f);
	for (const char *p = help; (p = strstr(p, "--")) != NULL;) {
		const char *e = p + 2;
		while (isalnum((unsigned char)*e) || *e == '-') {
			e++;
		}
		if (e > p + 2 && (p == help || isspace((unsigned char)p[-1]) ||
		                  p[-1] == '[' || p[-1] == ',')) {
			char opt[64];
			snprintf(opt, sizeof opt, "%.*s", (int)(e - p), p);
			expect(page, pagename, "option", opt);
			n++;
		}
		p = e;
	}
	free(help);
	return n;
}

int
main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: test_man IPC_H LIBIPC_3 LIBIPC_URI_7 "
		                "IPC_CAT_1 IPC_CAT IPC_BENCH_1 IPC_BENCH\n");
		return 2;
	}
	char *hdr = read_file(argv[1]);
	char *lib3 = read_page(argv[2]);
	char *uri7 = read_page(argv[3]);
	char *cat1 = read_page(argv[4]);
	char *bench1 = read_page(argv[6]);

	int nf = check_functions(hdr, lib3);
	int ns = check_schemes(uri7);
	int nc = check_help(argv[5], cat1, "ipc-cat(1)");
	int nb = check_help(argv[7], bench1, "ipc-bench(1)");
	printf("checked %d functions, %d schemes with their options, "
	       "%d ipc-cat and %d ipc-bench options: %d missing\n",
	       nf, ns, nc, nb, failures);
	if (nf < 20 || ns < 10 || nc < 5 || nb < 3) {
		printf("FAIL: too few found to be a real check\n");
		failures++;
	}
	free(hdr);
	free(lib3);
	free(uri7);
	free(cat1);
	free(bench1);
	return failures ? 1 : 0;
}
