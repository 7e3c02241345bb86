/*
 * Fuzz target: the URI parser, over the real driver table and in both
 * open and pair mode.  Any input must give 0 or a negative errno with a
 * message, never a crash, leak or out-of-bounds access.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct ipc_uri *u;
	const struct ipc_driver *d;

	if (s == NULL) {
		return 0;
	}
	memcpy(s, data, size);
	s[size] = '\0';
	for (int pair = 0; pair < 2; pair++) {
		int r = ipc__uri_parse(s, pair, &u, &d);
		if (r == 0) {
			/* Touch every option the driver declares. */
			for (size_t i = 0; d->opts && d->opts[i].key; i++) {
				(void)ipc__opt_num(u, d->opts[i].key, 0);
				(void)ipc__opt_str(u, d->opts[i].key, "");
			}
			ipc__uri_free(u);
		} else if (r > 0 || ipc_last_error()[0] == '\0') {
			abort(); /* errors are negative and explained */
		}
	}
	free(s);
	return 0;
}
