/*
 * fuzz_preflight.c - libFuzzer entry point for the preflight (a lock document read back into the planner); the body is
 * ap_fuzz_preflight() in targets.c, which the regression replay test shares.
 */
#include <stddef.h>
#include <stdint.h>

#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)ap_fuzz_preflight(data, size);
    return 0;
}
