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

#endif
