/*
 * fuzz_trust.c - libFuzzer entry point for the trust file parser; the body is
 * ap_fuzz_trust() in targets.c, which the regression replay test shares.
 */
#include <stddef.h>
#include <stdint.h>

#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)ap_fuzz_trust(data, size);
    return 0;
}
