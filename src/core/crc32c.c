/*
 * CRC-32C, table-driven (one table, built once).
 *
 * SPDX-License-Identifier: MIT
 */
#include <pthread.h>

#include "crc32c.h"

static uint32_t table[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++) {
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		}
		table[i] = c;
	}
}

uint32_t
ipc__crc32c(uint32_t crc, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	pthread_once(&once, build);
	crc = ~crc;
	while (n-- > 0) {
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	}
	return ~crc;
}
