/*
 * The input of a script-driven fuzz target, read front to back.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_FUZZ_SCRIPT_H
#define IPC_FUZZ_SCRIPT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct script {
	const uint8_t *p;
	size_t n;
};

static inline int
take(struct script *s, void *out, size_t n)
{
	if (s->n < n) {
		return 0;
	}
	memcpy(out, s->p, n);
	s->p += n;
	s->n -= n;
	return 1;
}

/* A poke: off16, n = 1..8, then n bytes, written at off % span (moved
 * back to end within total).  Returns 0 when the script ran out. */
static inline int
poke(struct script *s, unsigned char *mem, size_t span, size_t total)
{
	uint16_t a = 0;
	uint8_t n = 0, buf[8];
	if (!take(s, &a, 2) || !take(s, &n, 1)) {
		return 0;
	}
	n = (uint8_t)(n % 8 + 1);
	if (!take(s, buf, n)) {
		return 0;
	}
	size_t off = a % span;
	if (off + n > total) {
		off = total - n;
	}
	memcpy(mem + off, buf, n);
	return 1;
}

#endif
