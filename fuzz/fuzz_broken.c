/*
 * A fuzz target that must fail: built only with -Dfuzz_broken=true, so
 * that tools/fuzz.sh can be shown to fail when a target finds a crash
 * (.ci/run and tests/test_fuzz_script.sh run it).  It aborts on any input
 * starting with "BUG", which libFuzzer finds in a few thousand runs.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 3 && data[0] == 'B' && data[1] == 'U' && data[2] == 'G') {
		abort();
	}
	return 0;
}
