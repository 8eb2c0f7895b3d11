/*
 * sbom.h - the CycloneDX 1.6 SBOM of a deployment (docs/reports.md):
 * the models as machine-learning-model components (SHA-256 hashes, licence
 * id or expression, model card parameters from the model facts, origin as
 * properties), the runtimes as application components, the configuration
 * files as file components, and their dependencies on the deployment.
 *
 * Built from the analysis document alone, or from a bundle's lock (the
 * lock's analysis plus its artifacts' hashes and its created time). The
 * output is deterministic: the serial number is a name-based (v5) UUID of
 * the deployment and the content hashes, and the timestamp comes from the
 * lock, else SOURCE_DATE_EPOCH, else is left out.
 */
#ifndef AIRPACK_SBOM_H
#define AIRPACK_SBOM_H

#include <jansson.h>

#include "error.h"

/* *out is a new CycloneDX 1.6 JSON document (the caller's).
 * lock_or_null: the parsed airpack.lock.json, or NULL.
 * Errors: AP_ERR_INPUT when analysis has no manifest, AP_ERR_NOMEM. */
int ap_sbom_build(const json_t *analysis, const json_t *lock_or_null, json_t **out,
                  ap_error *err) AP_WUR;

#endif
