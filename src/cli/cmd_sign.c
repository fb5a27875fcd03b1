/* cmd_sign.c — `redduck sign`: shows how redduck signs a request (canonical request, string to sign,
 * signature, signed headers), for users whose requests AWS refuses. Credentials come from the same chain
 * as every other command. The secret key is never printed; a session token is shown as <redacted>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "redduck/buf.h"
#include "redduck/creds.h"
#include "redduck/headers.h"
#include "redduck/session.h"
#include "redduck/sigv4.h"

static const char sign_help[] =
    "usage: redduck sign --method M --url URL --service S --region R [--header 'Name: value']...\n"
    "                    [--body-file F | --unsigned-payload] [--date YYYYMMDDTHHMMSSZ] [--presign SECONDS]\n"
    "                    [--profile P]\n"
    "\n"
    "Prints how redduck signs a request with AWS Signature Version 4: the canonical request, the string to\n"
    "sign, the signature and the signed request headers (or, with --presign, the presigned URL). Compare\n"
    "them with what AWS reports in a SignatureDoesNotMatch error to find the difference.\n"
    "\n"
    "  --method M          HTTP method (GET, PUT, POST, ...)\n"
    "  --url URL           full URL as sent, path and query already percent-encoded\n"
    "  --service S         signing name: s3, sts, redshift-data, redshift, redshift-serverless, ...\n"
    "                      (s3 uses S3's rules: path not re-encoded, x-amz-content-sha256 header)\n"
    "  --region R          region of the credential scope\n"
    "  --header 'K: V'     a request header (repeatable)\n"
    "  --body-file F       the request body (its SHA-256 is signed)\n"
    "  --unsigned-payload  sign UNSIGNED-PAYLOAD instead of the body hash (S3)\n"
    "  --date D            signing time (default: now), e.g. 20150830T123600Z\n"
    "  --presign SECONDS   produce a presigned URL valid that long instead of an Authorization header\n"
    "  --profile P         credentials of this profile (default: the usual chain)\n"
    "\n"
    "The secret access key is never printed; X-Amz-Security-Token is shown as <redacted>.\n";

static int read_file(const char *path, rd_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rd_buf_append(out, chunk, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

/* Prints text with every occurrence of the session token (raw or URI-encoded) replaced by <redacted>. */
static void print_redacted(const char *text, const char *token)
{
    if (!token || !*token) {
        fputs(text, stdout);
        return;
    }
    rd_buf enc = RD_BUF_INIT;
    rd_sigv4_uri_encode(&enc, token, strlen(token), 0);
    const char *p = text;
    while (*p) {
        const char *a = strstr(p, token), *b = strstr(p, rd_buf_cstr(&enc));
        const char *hit = a && (!b || a <= b) ? a : b;
        if (!hit) {
            fputs(p, stdout);
            break;
        }
        fwrite(p, 1, (size_t)(hit - p), stdout);
        fputs("<redacted>", stdout);
        p = hit + (hit == a ? strlen(token) : enc.len);
    }
    rd_buf_free_secure(&enc);
}

static int parse_presign(const char *value, void *dest)
{
    char *end = NULL;
    long s = strtol(value, &end, 10);
    if (!*value || *end || s < 1 || s > 604800)
        return rd_cli_usage_error("sign", "--presign takes seconds from 1 to 604800, not '%s'", value);
    *(int *)dest = (int)s;
    return 0;
}

static int parse_header(const char *value, void *dest)
{
    const char *colon = strchr(value, ':');
    if (!colon || colon == value)
        return rd_cli_usage_error("sign", "--header takes 'Name: value', not '%s'", value);
    char *name = strndup(value, (size_t)(colon - value));
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    rd_headers_add(dest, name, v);
    free(name);
    return 0;
}

int rd_cmd_sign(int argc, char **argv)
{
    const char *method = NULL, *url = NULL, *service = NULL, *region = NULL, *body_file = NULL, *date = NULL;
    int unsigned_payload = 0, presign = 0;
    rd_session_options sopts = { 0 };
    rd_headers headers = RD_HEADERS_INIT;
    rd_buf body = RD_BUF_INIT;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_AWS(&sopts),
        RD_CLI_OPT_STRING("--method", &method),
        RD_CLI_OPT_STRING("--url", &url),
        RD_CLI_OPT_STRING("--service", &service),
        RD_CLI_OPT_STRING("--body-file", &body_file),
        RD_CLI_OPT_STRING("--date", &date),
        RD_CLI_OPT_PARSE("--presign", &presign, parse_presign),
        RD_CLI_OPT_PARSE("--header", &headers, parse_header),
        RD_CLI_OPT_FLAG("--unsigned-payload", &unsigned_payload),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "sign", sign_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        goto out;
    rc = 2;
    /* --region is one of the shared AWS options */
    region = sopts.region;
    if (!method || !url || !service || !region) {
        rd_cli_usage_error("sign", "--method, --url, --service and --region are required");
        goto out;
    }
    if (body_file && unsigned_payload) {
        rd_cli_usage_error("sign", "--body-file and --unsigned-payload exclude each other");
        goto out;
    }
    if (body_file && read_file(body_file, &body) != 0) {
        fprintf(stderr, "redduck: cannot read --body-file %s\n", body_file);
        rc = 1;
        goto out;
    }
    time_t when = time(NULL);
    if (date && rd_sigv4_parse_amz_date(date, &when) != 0) {
        rd_cli_usage_error("sign", "--date takes YYYYMMDDTHHMMSSZ, e.g. 20150830T123600Z, not '%s'", date);
        goto out;
    }

    rd_error err;
    rd_error_clear(&err);
    rd_session *s = NULL;
    rd_credentials creds;
    rd_credentials_init(&creds);
    rd_status st = rd_session_new(&sopts, &s, &err);
    if (st == RD_OK)
        st = rd_session_credentials(s, &creds, &err);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        rc = rd_cli_exit_code(st);
        rd_session_free(s);
        goto out;
    }
    rd_sigv4_params p = { service, region, when, creds.access_key_id, creds.secret_access_key, creds.session_token,
                          strcmp(service, "s3") == 0, 0, 0, 0 };
    rd_sigv4_request req = { method, url, &headers, body.data, body.len,
                             unsigned_payload ? RD_SIGV4_UNSIGNED_PAYLOAD : NULL };
    rd_sigv4_debug dbg;
    rd_sigv4_debug_init(&dbg);
    char *presigned = NULL;
    st = presign ? rd_sigv4_presign_url(&p, &req, presign, &presigned, &dbg, &err)
                 : rd_sigv4_sign_headers(&p, &req, &dbg, &err);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        rc = rd_cli_exit_code(st);
    } else {
        printf("# canonical request\n");
        print_redacted(rd_buf_cstr(&dbg.canonical_request), creds.session_token);
        printf("\n\n");
        printf("# string to sign\n%s\n\n", rd_buf_cstr(&dbg.string_to_sign));
        printf("# signature\n%s\n\n", dbg.signature);
        if (presigned) {
            printf("# presigned url\n");
            print_redacted(presigned, creds.session_token);
            putchar('\n');
        } else {
            printf("# signed request headers\n");
            for (size_t i = 0; i < headers.count; i++)
                printf("%s: %s\n", headers.items[i].name,
                       strcasecmp(headers.items[i].name, "X-Amz-Security-Token") == 0 ? "<redacted>"
                                                                                       : headers.items[i].value);
        }
        rc = 0;
    }
    if (presigned)
        OPENSSL_cleanse(presigned, strlen(presigned)); /* carries X-Amz-Security-Token */
    free(presigned);
    rd_sigv4_debug_free(&dbg);
    rd_credentials_free(&creds);
    rd_session_free(s);
out:
    rd_headers_free(&headers);
    rd_buf_free(&body);
    return rc;
}
