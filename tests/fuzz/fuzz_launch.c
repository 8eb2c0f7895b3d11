/*
 * fuzz_launch.c - libFuzzer entry point for what the site derives from a
 * lock's launch specs (units, layouts, contradictions); the body is
 * ap_fuzz_launch() in targets.c, which the regression replay test shares.
 */
#include <stddef.h>
#include <stdint.h>

#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)ap_fuzz_launch(data, size);
    return 0;
}
