/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * file:// records: crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_CRC32C_H
#define IPC_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc over buf[0..n) (start with 0). */
uint32_t ipc__crc32c(uint32_t crc, const void *buf, size_t n);

#endif
