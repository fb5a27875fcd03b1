/* replies.c — AWS-shaped replies (see replies.h). */
#include "emulator/replies.h"

#include <jansson.h>
#include <libxml/xmlwriter.h>
#include <stdlib.h>

static void put_xml(rd_emu_response *resp, xmlBufferPtr buf)
{
    rd_buf_reset(&resp->body);
    rd_buf_append(&resp->body, xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
    rd_headers_set(&resp->headers, "Content-Type", "application/xml");
}

void rd_emu_reply_s3_error(rd_emu_response *resp, int status, const char *code, const char *message,
                           const char *resource, const char *request_id)
{
    resp->status = status;
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = xmlNewTextWriterMemory(buf, 0);
    xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL);
    xmlTextWriterStartElement(w, BAD_CAST "Error");
    xmlTextWriterWriteElement(w, BAD_CAST "Code", BAD_CAST code);
    xmlTextWriterWriteElement(w, BAD_CAST "Message", BAD_CAST(message ? message : ""));
    if (resource)
        xmlTextWriterWriteElement(w, BAD_CAST "Resource", BAD_CAST resource);
    xmlTextWriterWriteElement(w, BAD_CAST "RequestId", BAD_CAST(request_id ? request_id : ""));
    xmlTextWriterEndElement(w);
    xmlTextWriterEndDocument(w);
    xmlFreeTextWriter(w);
    put_xml(resp, buf);
    xmlBufferFree(buf);
    if (request_id)
        rd_headers_set(&resp->headers, "x-amz-request-id", request_id);
}

void rd_emu_reply_query_error(rd_emu_response *resp, int status, const char *xmlns, const char *code,
                              const char *message, const char *request_id)
{
    resp->status = status;
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = xmlNewTextWriterMemory(buf, 0);
    xmlTextWriterStartDocument(w, NULL, NULL, NULL);
    xmlTextWriterStartElement(w, BAD_CAST "ErrorResponse");
    if (xmlns)
        xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST xmlns);
    xmlTextWriterStartElement(w, BAD_CAST "Error");
    xmlTextWriterWriteElement(w, BAD_CAST "Type", BAD_CAST(status >= 500 ? "Receiver" : "Sender"));
    xmlTextWriterWriteElement(w, BAD_CAST "Code", BAD_CAST code);
    xmlTextWriterWriteElement(w, BAD_CAST "Message", BAD_CAST(message ? message : ""));
    xmlTextWriterEndElement(w);
    xmlTextWriterWriteElement(w, BAD_CAST "RequestId", BAD_CAST(request_id ? request_id : ""));
    xmlTextWriterEndElement(w);
    xmlTextWriterEndDocument(w);
    xmlFreeTextWriter(w);
    put_xml(resp, buf);
    rd_headers_set(&resp->headers, "Content-Type", "text/xml");
    xmlBufferFree(buf);
    if (request_id)
        rd_headers_set(&resp->headers, "x-amzn-RequestId", request_id);
}

void rd_emu_reply_json(rd_emu_response *resp, json_t *obj, const char *request_id)
{
    resp->status = resp->status ? resp->status : 200;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    rd_buf_reset(&resp->body);
    if (text)
        rd_buf_puts(&resp->body, text);
    free(text);
    rd_headers_set(&resp->headers, "Content-Type", "application/x-amz-json-1.1");
    if (request_id)
        rd_headers_set(&resp->headers, "x-amzn-RequestId", request_id);
}

void rd_emu_reply_json_error(rd_emu_response *resp, int status, const char *type, const char *message,
                             const char *request_id)
{
    json_t *o = json_object();
    json_object_set_new(o, "__type", json_string(type));
    json_object_set_new(o, "message", json_string(message ? message : ""));
    resp->status = status;
    rd_emu_reply_json(resp, o, request_id);
    rd_headers_set(&resp->headers, "x-amzn-ErrorType", type);
}
