/* s3.c — S3 REST calls for ingest (see s3.h). Replies are parsed with libxml2; request bodies are built
 * with it too, so keys are always escaped correctly. */
#include "services/s3.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "aws/parse.h"
#include "core/timeutil.h"
#include "redduck/sigv4.h"

rd_status rd_s3_parse_url(const char *url, char **bucket, char **prefix, rd_error *err)
{
    *bucket = *prefix = NULL;
    if (!url || strncmp(url, "s3://", 5) != 0)
        return rd_error_set(err, RD_E_USAGE, "'%s' is not an S3 location: write s3://bucket/prefix",
                            url ? url : "");
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return rd_error_set(err, RD_E_USAGE, "the S3 location holds a control character: write s3://bucket/prefix");
    const char *b = url + 5;
    size_t blen = strcspn(b, "/");
    /* S3's bucket naming rules: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit, no ".." */
    int bucket_ok = blen >= 3 && blen <= 63;
    for (size_t i = 0; bucket_ok && i < blen; i++) {
        char ch = b[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        bucket_ok = alnum || ((ch == '.' || ch == '-') && i > 0 && i + 1 < blen && !(ch == '.' && b[i + 1] == '.'));
    }
    if (!bucket_ok)
        return rd_error_set(err, RD_E_USAGE, "'%s' has no valid bucket name (3-63 characters: lowercase letters, "
                            "digits, '.' and '-', starting and ending with a letter or digit): write "
                            "s3://bucket/prefix", url);
    /* "." and ".." segments would be resolved away by HTTP clients and servers, so the signed path would not be
     * the requested one (SignatureDoesNotMatch) or the files would land elsewhere */
    for (const char *seg = b + blen; *seg == '/';) {
        seg++;
        size_t slen = strcspn(seg, "/");
        if ((slen == 1 && seg[0] == '.') || (slen == 2 && seg[0] == '.' && seg[1] == '.'))
            return rd_error_set(err, RD_E_USAGE, "'%s' has a '%.*s' segment in its prefix: write the prefix "
                                "without '.' and '..' (s3://bucket/some/prefix)", url, (int)slen, seg);
        seg += slen;
    }
    *bucket = strndup(b, blen);
    *prefix = strdup(b[blen] == '/' ? b + blen + 1 : "");
    if (!*bucket || !*prefix) {
        free(*bucket);
        free(*prefix);
        *bucket = *prefix = NULL;
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    return RD_OK;
}

/* A denial that does not name the IAM action gets it, with the resource, so the user knows what to grant. */
static rd_status name_action(rd_status st, rd_error *err, const char *action, const char *bucket, const char *key)
{
    if (st != RD_E_DENIED || !err || strstr(err->message, action))
        return st;
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s", err->message);
    char aws_code[sizeof err->aws_code];
    snprintf(aws_code, sizeof aws_code, "%s", err->aws_code);
    int http = err->http_status;
    rd_error_set(err, st, "%s (%s on arn:aws:s3:::%s%s%s is needed)", msg, action, bucket, key ? "/" : "",
                 key ? key : "");
    rd_error_set_aws_code(err, aws_code);
    err->http_status = http;
    return st;
}

rd_status rd_s3_key_path(rd_buf *out, const char *key)
{
    rd_buf_putc(out, '/');
    return rd_sigv4_uri_encode(out, key, strlen(key), 1);
}

/* The fields every S3 request of this module shares: service, method, bucket, path; replayable bodies. */
static rd_aws_request s3_request(const char *method, const char *bucket, const char *path)
{
    rd_aws_request req = { 0 };
    req.svc = &rd_svc_s3;
    req.method = method;
    req.path = path;
    req.bucket = bucket;
    req.body_replayable = 1;
    return req;
}

rd_status rd_s3_head_bucket(rd_aws_client *c, const char *bucket, char *region, size_t region_len, rd_error *err)
{
    rd_aws_request req = s3_request("HEAD", bucket, "/");
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = name_action(rd_aws_send(c, &req, &resp, err), err, "s3:ListBucket", bucket, NULL);
    const char *r = rd_headers_get(&resp.headers, "x-amz-bucket-region");
    if (r && (st == RD_OK || resp.status == 301 || resp.status == 400)) {
        snprintf(region, region_len, "%s", r);
        st = RD_OK;
        /* the reply's region becomes a hostname (the S3 endpoint) and UNLOAD's REGION AS */
        char what[320];
        snprintf(what, sizeof what, "S3 HeadBucket's x-amz-bucket-region for bucket '%s'", bucket);
        if (rd_aws_region_check(r, what, err) != RD_OK) {
            region[0] = '\0';
            st = err ? (err->code = RD_E_REMOTE) : RD_E_REMOTE;
        }
    } else if (st == RD_OK) {
        snprintf(region, region_len, "%s", c->region);
    } else if (st == RD_E_NOT_FOUND) {
        rd_error_set(err, RD_E_NOT_FOUND, "S3 bucket '%s' does not exist (HeadBucket: 404)", bucket);
        rd_error_set_aws_code(err, "NoSuchBucket");
    }
    rd_http_response_free(&resp);
    return st;
}

void rd_s3_object_list_free(rd_s3_object_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].key);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* NULL when unreadable: rd_xml_parse prints nothing and keeps no message quoting the body. */
static xmlDocPtr parse_xml(const rd_buf *body)
{
    xmlDocPtr doc = NULL;
    return rd_xml_parse(body->data, body->len, RD_E_REMOTE, "the S3 reply", &doc, NULL) == RD_OK ? doc : NULL;
}

static const char *node_text(xmlNodePtr n)
{
    return n && n->children && n->children->content ? (const char *)n->children->content : "";
}

static int named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static rd_status parse_list_page(const rd_buf *body, rd_s3_object_list *out, char **token, rd_error *err)
{
    xmlDocPtr doc = parse_xml(body);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || !named(root, "ListBucketResult")) {
        xmlFreeDoc(doc);
        return rd_error_set(err, RD_E_REMOTE, "S3 ListObjectsV2 returned an unreadable reply");
    }
    int truncated = 0;
    rd_status st = RD_OK;
    for (xmlNodePtr n = root->children; n && st == RD_OK; n = n->next) {
        if (named(n, "IsTruncated")) {
            truncated = strcmp(node_text(n), "true") == 0;
        } else if (named(n, "NextContinuationToken")) {
            free(*token);
            *token = strdup(node_text(n));
        } else if (named(n, "Contents")) {
            const char *key = NULL, *etag = "";
            uint64_t size = 0;
            time_t modified = 0;
            for (xmlNodePtr k = n->children; k; k = k->next) {
                if (named(k, "Key"))
                    key = node_text(k);
                else if (named(k, "ETag"))
                    etag = node_text(k);
                else if (named(k, "Size"))
                    size = strtoull(node_text(k), NULL, 10);
                else if (named(k, "LastModified") && rd_time_parse_iso8601(node_text(k), &modified) != 0)
                    modified = 0;
            }
            if (!key || !*key)
                continue;
            rd_s3_object *items = realloc(out->items, (out->count + 1) * sizeof *items);
            if (!items) {
                st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
                break;
            }
            out->items = items;
            items[out->count].key = strdup(key);
            items[out->count].size = size;
            items[out->count].last_modified = (int64_t)modified;
            /* S3 writes the ETag quoted, as &quot;...&quot; in XML: libxml2 gives back the quotes */
            if (rd_header_value_is_token(etag, sizeof items[out->count].etag - 1))
                snprintf(items[out->count].etag, sizeof items[out->count].etag, "%s", etag);
            else
                items[out->count].etag[0] = '\0';
            out->count++;
        }
    }
    xmlFreeDoc(doc);
    if (st == RD_OK && !truncated) {
        free(*token);
        *token = NULL;
    } else if (st == RD_OK && !*token) {
        st = rd_error_set(err, RD_E_REMOTE, "S3 ListObjectsV2 reply is truncated but has no continuation token");
    }
    return st;
}

rd_status rd_s3_list(rd_aws_client *c, const char *bucket, const char *prefix, rd_s3_object_list *out,
                     rd_error *err)
{
    char *token = NULL;
    rd_status st = RD_OK;
    do {
        rd_buf q = RD_BUF_INIT;
        rd_buf_puts(&q, "list-type=2");
        if (token) {
            rd_buf_puts(&q, "&continuation-token=");
            rd_sigv4_uri_encode(&q, token, strlen(token), 0);
        }
        if (prefix && *prefix) {
            rd_buf_puts(&q, "&prefix=");
            rd_sigv4_uri_encode(&q, prefix, strlen(prefix), 0);
        }
        if (rd_buf_failed(&q)) {
            rd_buf_free(&q);
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            break;
        }
        rd_aws_request req = s3_request("GET", bucket, "/");
        req.query = rd_buf_cstr(&q);
        rd_http_response resp;
        rd_http_response_init(&resp);
        st = name_action(rd_aws_send(c, &req, &resp, err), err, "s3:ListBucket", bucket, NULL);
        if (st == RD_OK)
            st = parse_list_page(&resp.body, out, &token, err);
        rd_http_response_free(&resp);
        rd_buf_free(&q);
    } while (st == RD_OK && token);
    free(token);
    return st;
}

rd_status rd_s3_get(rd_aws_client *c, const char *bucket, const char *key, size_t max_bytes, rd_buf *out,
                    rd_error *err)
{
    rd_buf path = RD_BUF_INIT;
    rd_s3_key_path(&path, key);
    if (rd_buf_failed(&path)) {
        rd_buf_free(&path);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    rd_aws_request req = s3_request("GET", bucket, rd_buf_cstr(&path));
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = name_action(rd_aws_send(c, &req, &resp, err), err, "s3:GetObject", bucket, key);
    rd_buf_free(&path);
    if (st == RD_OK) {
        if (resp.body.len > max_bytes)
            st = rd_error_set(err, RD_E_REMOTE, "s3://%s/%s is larger than %zu bytes", bucket, key, max_bytes);
        else if (resp.body.len && rd_buf_append(out, resp.body.data, resp.body.len) != RD_OK)
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    rd_http_response_free(&resp);
    return st;
}

static rd_status delete_batch(rd_aws_client *c, const char *bucket, const char *const *keys, size_t n,
                              size_t *deleted, rd_error *err)
{
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr root = xmlNewNode(NULL, (const xmlChar *)"Delete");
    xmlDocSetRootElement(doc, root);
    xmlNewNs(root, (const xmlChar *)"http://s3.amazonaws.com/doc/2006-03-01/", NULL);
    xmlNewTextChild(root, NULL, (const xmlChar *)"Quiet", (const xmlChar *)"true");
    for (size_t i = 0; i < n; i++) {
        xmlNodePtr o = xmlNewChild(root, NULL, (const xmlChar *)"Object", NULL);
        xmlNewTextChild(o, NULL, (const xmlChar *)"Key", (const xmlChar *)keys[i]);
    }
    xmlChar *body = NULL;
    int body_len = 0;
    xmlDocDumpMemoryEnc(doc, &body, &body_len, "UTF-8");
    xmlFreeDoc(doc);
    if (!body)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");

    unsigned char md[16];
    unsigned int mdlen = sizeof md;
    EVP_Digest(body, (size_t)body_len, md, &mdlen, EVP_md5(), NULL);
    char md64[32];
    EVP_EncodeBlock((unsigned char *)md64, md, 16);

    rd_headers h = RD_HEADERS_INIT;
    rd_headers_set(&h, "Content-Type", "application/xml");
    rd_headers_set(&h, "Content-MD5", md64);
    rd_aws_request req = s3_request("POST", bucket, "/");
    req.query = "delete=";
    req.headers = &h;
    req.body = body;
    req.body_len = (size_t)body_len;
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = name_action(rd_aws_send(c, &req, &resp, err), err, "s3:DeleteObject", bucket, "*");
    rd_headers_free(&h);
    xmlFree(body);
    size_t failed = 0;
    if (st == RD_OK) {
        xmlDocPtr r = parse_xml(&resp.body);
        xmlNodePtr rr = r ? xmlDocGetRootElement(r) : NULL;
        if (!rr || !named(rr, "DeleteResult")) {
            st = rd_error_set(err, RD_E_REMOTE, "S3 DeleteObjects returned an unreadable reply");
        } else {
            for (xmlNodePtr e = rr->children; e; e = e->next) {
                if (!named(e, "Error"))
                    continue;
                const char *key = "", *code = "", *msg = "";
                for (xmlNodePtr k = e->children; k; k = k->next) {
                    if (named(k, "Key"))
                        key = node_text(k);
                    else if (named(k, "Code"))
                        code = node_text(k);
                    else if (named(k, "Message"))
                        msg = node_text(k);
                }
                if (!failed) {
                    rd_status code_st = strstr(code, "AccessDenied") ? RD_E_DENIED : RD_E_REMOTE;
                    st = rd_error_set(err, code_st, "S3 DeleteObjects could not delete s3://%s/%s: %s: %s%s", bucket,
                                      key, code, msg,
                                      code_st == RD_E_DENIED ? " (the caller needs s3:DeleteObject on the "
                                                               "staging prefix)"
                                                             : "");
                    rd_error_set_aws_code(err, code);
                }
                failed++;
            }
        }
        xmlFreeDoc(r);
    }
    rd_http_response_free(&resp);
    if (st == RD_OK || failed)
        *deleted += n - failed;
    return st;
}

rd_status rd_s3_delete_keys(rd_aws_client *c, const char *bucket, const char *const *keys, size_t count,
                            size_t *deleted, rd_error *err)
{
    *deleted = 0;
    for (size_t off = 0; off < count; off += RD_S3_DELETE_BATCH) {
        size_t n = count - off < RD_S3_DELETE_BATCH ? count - off : RD_S3_DELETE_BATCH;
        rd_status st = delete_batch(c, bucket, keys + off, n, deleted, err);
        if (st != RD_OK)
            return st;
    }
    return RD_OK;
}

rd_status rd_s3_prepare_get(rd_aws_client *c, const char *bucket, const char *key, uint64_t offset, uint64_t length,
                            const char *if_match, char **url, rd_headers *headers, rd_error *err)
{
    if (length == 0 || (length != UINT64_MAX && length - 1 > UINT64_MAX - offset))
        return rd_error_set(err, RD_E_USAGE, "cannot ask for %llu bytes of s3://%s/%s from byte %llu",
                            (unsigned long long)length, bucket, key, (unsigned long long)offset);
    if (if_match && !rd_header_value_is_token(if_match, 1024))
        return rd_error_set(err, RD_E_USAGE, "the ETag to match for s3://%s/%s is not printable ASCII", bucket, key);
    rd_buf path = RD_BUF_INIT, u = RD_BUF_INIT;
    rd_s3_key_path(&path, key);
    if (rd_buf_failed(&path)) {
        rd_buf_free(&path);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    rd_headers h = RD_HEADERS_INIT;
    char range[48] = "";
    if (length != UINT64_MAX)
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)offset,
                 (unsigned long long)(offset + (length - 1)));
    else if (offset > 0)
        snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)offset);
    if (range[0])
        rd_headers_set(&h, "Range", range);
    if (if_match)
        rd_headers_set(&h, "If-Match", if_match);
    rd_aws_request req = s3_request("GET", bucket, rd_buf_cstr(&path));
    req.headers = &h;
    rd_status st = rd_aws_prepare(c, &req, &u, headers, err);
    rd_headers_free(&h);
    rd_buf_free(&path);
    if (st == RD_OK)
        *url = rd_buf_detach(&u);
    rd_buf_free(&u);
    return st;
}

rd_status rd_s3_delete_prefix(rd_aws_client *c, const char *bucket, const char *prefix, size_t *objects,
                              uint64_t *bytes, rd_error *err)
{
    rd_s3_object_list l = { 0 };
    rd_status st = rd_s3_list(c, bucket, prefix, &l, err);
    if (st != RD_OK)
        rd_error_prefix(err, "listing s3://%s/%s: ", bucket, prefix);
    if (st == RD_OK && l.count) {
        const char **keys = calloc(l.count, sizeof *keys);
        uint64_t total = 0;
        for (size_t i = 0; keys && i < l.count; i++) {
            keys[i] = l.items[i].key;
            total += l.items[i].size;
        }
        size_t deleted = 0;
        st = keys ? rd_s3_delete_keys(c, bucket, keys, l.count, &deleted, err)
                  : rd_error_set(err, RD_E_INTERNAL, "out of memory");
        free(keys);
        if (objects)
            *objects += deleted;
        if (bytes && st == RD_OK)
            *bytes += total;
    }
    rd_s3_object_list_free(&l);
    return st;
}
