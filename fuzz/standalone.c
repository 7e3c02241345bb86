/*
 * A main() for fuzz targets built without libFuzzer, so every build runs
 * them as regression tests: each file named on the command line is fed
 * once, then a fixed number of pseudo-random inputs (a fixed seed, so runs
 * are repeatable) mutated from those files and from nothing.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	size_t cap = 0, len = 0;

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			p = realloc(p, cap);
			if (p == NULL) {
				exit(2);
			}
		}
		size_t k = fread(p + len, 1, cap - len, f);
		if (k == 0) {
			break;
		}
		len += k;
	}
	fclose(f);
	*n = len;
	return p;
}

int
main(int argc, char **argv)
{
	static unsigned char buf[8192];
	long iters = 20000;
	const char *env = getenv("FUZZ_ITERATIONS");

	if (env != NULL) {
		iters = strtol(env, NULL, 10);
	}
	unsigned char *seeds[64];
	size_t seedlen[64];
	int nseeds = 0;
	for (int i = 1; i < argc && nseeds < 64; i++) {
		seeds[nseeds] = slurp(argv[i], &seedlen[nseeds]);
		LLVMFuzzerTestOneInput(seeds[nseeds], seedlen[nseeds]);
		nseeds++;
	}
	for (long it = 0; it < iters; it++) {
		size_t n;
		if (nseeds > 0 && (next() & 3) != 0) {
			int s = (int)(next() % (uint64_t)nseeds);
			n = seedlen[s] < sizeof(buf) ? seedlen[s]
			                             : sizeof(buf);
			memcpy(buf, seeds[s], n);
			int flips = 1 + (int)(next() % 8);
			for (int k = 0; k < flips && n > 0; k++) {
				size_t at = (size_t)(next() % n);
				switch (next() % 4) {
				case 0:
					buf[at] = (unsigned char)next();
					break;
				case 1:
					buf[at] ^=
					        (unsigned char)(1u << (next() %
					                               8));
					break;
				case 2:
					n = at; /* truncate */
					break;
				default:
					buf[at] = "\0/:?&=%@[]\n\xff"[next() %
					                              13];
					break;
				}
			}
		} else {
			n = (size_t)(next() % 300);
			for (size_t k = 0; k < n; k++) {
				buf[k] = (unsigned char)next();
			}
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	for (int i = 0; i < nseeds; i++) {
		free(seeds[i]);
	}
	printf("%ld inputs, %d seeds: no failure\n", iters + nseeds, nseeds);
	return 0;
}
