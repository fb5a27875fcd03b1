/* parse.h — the one way redduck parses JSON and XML that may hold secrets (credential_process output,
 * container / IMDS / SSO / STS replies, token cache files, AWS replies). Parser errors say where the input
 * is broken (line, column) and what kind of mistake it is, never what the input says: jansson's and
 * libxml2's own messages quote the text around the error, which can be a secret key or token.
 * The JSON values' memory is overwritten when jansson frees it (from the first call on, process-wide).
 * Does not own what the documents mean (the callers check fields). */
#ifndef RD_AWS_PARSE_H
#define RD_AWS_PARSE_H

#include <jansson.h>
#include <libxml/tree.h>
#include <stddef.h>

#include "redduck/error.h"

/* Parses len bytes of JSON that must be an object. On success *out is a new reference (json_decref).
 * On failure code (RD_E_AUTH, RD_E_REMOTE, ...) is set in err with "WHAT is not valid JSON (line L, column
 * C: DESCRIPTION)" or "WHAT is JSON but not an object"; the input is never quoted. err may be NULL. */
/* From the call on, every block jansson frees in this process is wiped first (jansson's strings hold secrets:
 * AWS replies' keys, the server's variable values). Idempotent, thread-safe; the parse functions call it. */
void rd_json_wipe_frees(void);

rd_status rd_json_parse_object(const char *data, size_t len, rd_status code, const char *what, json_t **out,
                               rd_error *err);

/* Parses len bytes of XML without network access and without libxml2 printing anything. On success *out is
 * the document (xmlFreeDoc). On failure as rd_json_parse_object: "WHAT is not valid XML (line L, column C:
 * DESCRIPTION)", nothing of the input quoted. err may be NULL. */
rd_status rd_xml_parse(const char *data, size_t len, rd_status code, const char *what, xmlDocPtr *out,
                       rd_error *err);

#endif
