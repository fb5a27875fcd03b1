/* parse.c — JSON and XML parsing whose errors never quote the input (see parse.h). */
#include "aws/parse.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>

/* jansson's strings hold the parsed secrets (SecretAccessKey, Token, accessToken): every block jansson
 * frees is overwritten first. Same malloc underneath, so blocks allocated before the switch are fine. */
static void cleansing_free(void *p)
{
    if (p) {
        OPENSSL_cleanse(p, malloc_usable_size(p));
        free(p);
    }
}

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;
static void use_cleansing_free(void)
{
    json_set_alloc_funcs(malloc, cleansing_free);
}

/* A fixed description of a jansson error; jerr.text is never used (it quotes the input). */
static const char *json_problem(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_out_of_memory: return "out of memory";
    case json_error_stack_overflow: return "nested too deeply";
    case json_error_invalid_utf8: return "invalid UTF-8";
    case json_error_premature_end_of_input: return "the text ends too early";
    case json_error_end_of_input_expected: return "unexpected text after the end";
    case json_error_invalid_syntax: return "invalid syntax";
    case json_error_null_character: return "a NUL byte";
    case json_error_null_byte_in_key: return "a NUL byte in a key";
    case json_error_duplicate_key: return "a key appears twice";
    case json_error_numeric_overflow: return "a number out of range";
    case json_error_wrong_type: return "not an object or array";
    default: return "malformed JSON";
    }
}

void rd_json_wipe_frees(void)
{
    pthread_once(&alloc_once, use_cleansing_free);
}

rd_status rd_json_parse_object(const char *data, size_t len, rd_status code, const char *what, json_t **out,
                               rd_error *err)
{
    rd_json_wipe_frees();
    json_error_t jerr;
    json_t *o = json_loadb(data ? data : "", data ? len : 0, 0, &jerr);
    if (!o) {
        rd_status st = rd_error_set(err, code, "%s is not valid JSON (line %d, column %d: %s)", what, jerr.line,
                                    jerr.column, json_problem(&jerr));
        /* jerr.text holds input near the error: do not leave it on the stack */
        OPENSSL_cleanse(&jerr, sizeof jerr);
        return st;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        return rd_error_set(err, code, "%s is JSON but not an object", what);
    }
    *out = o;
    return RD_OK;
}

static const char *xml_problem(int code)
{
    switch (code) {
    case XML_ERR_DOCUMENT_EMPTY: return "the document is empty";
    case XML_ERR_DOCUMENT_END: return "unexpected text after the root element";
    case XML_ERR_TAG_NAME_MISMATCH: return "an end tag does not match its start tag";
    case XML_ERR_TAG_NOT_FINISHED: return "the document ends inside an element";
    case XML_ERR_GT_REQUIRED: return "'>' expected";
    case XML_ERR_LT_IN_ATTRIBUTE: return "'<' in an attribute value";
    case XML_ERR_UNDECLARED_ENTITY: return "an undeclared entity";
    case XML_ERR_INVALID_CHAR:
    case XML_ERR_INVALID_ENCODING: return "an invalid character";
    case XML_ERR_DOCUMENT_START: return "no root element";
    default: return "malformed XML";
    }
}

rd_status rd_xml_parse(const char *data, size_t len, rd_status code, const char *what, xmlDocPtr *out,
                       rd_error *err)
{
    if (len > 64u * 1024 * 1024)
        return rd_error_set(err, code, "%s is larger than 64 MiB", what);
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    /* NOERROR/NOWARNING: libxml2 prints nothing (its messages quote the input); NONET: no external entities */
    xmlDocPtr doc = xmlCtxtReadMemory(ctxt, data ? data : "", data ? (int)len : 0, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    rd_status st = RD_OK;
    const xmlError *e = xmlCtxtGetLastError(ctxt);
    if (!doc || !ctxt->wellFormed) {
        if (doc)
            xmlFreeDoc(doc);
        doc = NULL;
        if (e && e->code)
            st = rd_error_set(err, code, "%s is not valid XML (line %d, column %d: %s)", what, e->line, e->int2,
                              xml_problem(e->code));
        else
            st = rd_error_set(err, code, "%s is not valid XML (%s)", what, len ? "malformed XML" : "it is empty");
    }
    xmlCtxtResetLastError(ctxt);
    xmlFreeParserCtxt(ctxt);
    xmlResetLastError(); /* the thread's copy of the message quotes the input too */
    if (st == RD_OK)
        *out = doc;
    return st;
}
