/*
 * signame.c - the names of signature entries (see cosign.h). Apart from
 * cosign.c so that the static verifier does not pull in the head writer.
 */
#include <stdio.h>
#include <string.h>

#include "lock.h"
#include "trust/cosign.h"

void ap_sig_entry_name(const uint8_t keyid[AP_KEYID_LEN], char out[AP_SIG_ENTRY_NAME_MAX])
{
    char hex[17];
    ap_keyid_hex(keyid, hex);
    snprintf(out, AP_SIG_ENTRY_NAME_MAX, "%s%s%s", AP_SIG_ENTRY_PREFIX, hex, AP_SIG_ENTRY_SUFFIX);
}

int ap_sig_entry_like(const char *name)
{
    size_t n = strlen(name), pl = strlen(AP_SIG_ENTRY_PREFIX), sl = strlen(AP_SIG_ENTRY_SUFFIX);
    if (strcmp(name, AP_LOCK_SIG_NAME) == 0)
        return 1;
    return n > pl + sl && strncmp(name, AP_SIG_ENTRY_PREFIX, pl) == 0 &&
           strcmp(name + n - sl, AP_SIG_ENTRY_SUFFIX) == 0;
}

int ap_sig_entry_keyid(const char *name, uint8_t keyid[AP_KEYID_LEN])
{
    size_t pl = strlen(AP_SIG_ENTRY_PREFIX);
    const char *h = name + pl;
    uint64_t v = 0;
    if (strncmp(name, AP_SIG_ENTRY_PREFIX, pl) != 0 || strlen(name) != pl + 16 + strlen(AP_SIG_ENTRY_SUFFIX) ||
        strcmp(name + pl + 16, AP_SIG_ENTRY_SUFFIX) != 0)
        return 0;
    for (int i = 0; i < 16; i++) {
        char c = h[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0; /* uppercase only: one spelling per key */
        v = (v << 4) | (uint64_t)d;
    }
    for (int i = 0; i < AP_KEYID_LEN; i++) {
        keyid[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    return 1;
}

