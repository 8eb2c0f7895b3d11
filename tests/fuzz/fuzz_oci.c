/*
 * fuzz_oci.c - libFuzzer entry point for the container image parsers (OCI
 * image index and manifest, docker-archive manifest.json); the body is
 * ap_fuzz_oci() in targets.c, which the regression replay test shares.
 */
#include <stddef.h>
#include <stdint.h>

#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)ap_fuzz_oci(data, size);
    return 0;
}
