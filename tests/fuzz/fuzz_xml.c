/* fuzz_xml.c — libFuzzer target: arbitrary bytes as AWS XML replies — the error parser (query and S3
 * shapes), the JSON error parser, and STS's credentials parser. */
#include <libxml/parser.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"
#include "services/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_buf_append(&resp.body, data, size);
    resp.status = 400;
    char code[96], msg[512];
    rd_aws_parse_error(&rd_svc_sts, &resp, code, sizeof code, msg, sizeof msg);
    rd_aws_parse_error(&rd_svc_s3, &resp, code, sizeof code, msg, sizeof msg);
    rd_aws_parse_error(&rd_svc_redshift_data, &resp, code, sizeof code, msg, sizeof msg);
    rd_http_response_free(&resp);
    if (size < (1 << 20)) {
        xmlDocPtr doc = xmlReadMemory((const char *)data, (int)size, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (doc) {
            rd_credentials c;
            rd_credentials_init(&c);
            rd_error err;
            rd_sts_parse_credentials(doc, "fuzz", &c, &err);
            rd_credentials_free(&c);
            xmlFreeDoc(doc);
        }
    }
    return 0;
}
