/*
 * data.h - data files shipped inside the binary (the .yaml files of data/, such as the
 * GPU catalogue gpus.yaml), embedded at build time by cmake/embed.cmake so
 * that airpack needs no files beside it inside an air-gapped site.
 */
#ifndef AIRPACK_DATA_H
#define AIRPACK_DATA_H

#include <stddef.h>

/* The bytes of data/NAME (NUL-terminated; *len excludes the NUL), or NULL. */
const char *ap_data_get(const char *name, size_t *len);

/* The name of the i-th embedded file that came from the source folder dir
 * ("data" or "policies"), in build order, or NULL past the last one. */
const char *ap_data_list(const char *dir, size_t i);

#endif
