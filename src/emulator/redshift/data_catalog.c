/* data_catalog.c — the Data API's catalog calls (ListDatabases, ListSchemas, ListTables, DescribeTable),
 * answered from the warehouse's own DuckDB catalog (duckdb_schemas(), duckdb_tables(), duckdb_views(),
 * duckdb_columns()) with Redshift's type names; their LIKE patterns and NextToken paging. Statements, results
 * and sessions are data_api.c's and engine.c's. */
#include "emulator/redshift/data_catalog.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/redshift/data_api_internal.h"
#include "emulator/redshift/engine_internal.h"
#include "emulator/replies.h"

/* Byte length of the UTF-8 sequence s starts (1 for a stray continuation byte). */
static size_t utf8_len(const char *s)
{
    unsigned char c = (unsigned char)*s;
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            return i;
    return n;
}

int rd_emu_like_match(const char *p, const char *s)
{
    if (!p)
        return 1;
    if (!s)
        return 0;
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '%') {
            while (*p == '%')
                p++;
            if (!*p)
                return 1;
            star_p = p;
            star_s = s;
            continue;
        }
        if (*p == '_') {
            p++;
            s += utf8_len(s);
            continue;
        }
        const char *lit = p;
        if (*p == '\\' && p[1])
            lit = p + 1;
        if (*lit && *lit == *s) {
            p = lit + 1;
            s++;
            continue;
        }
        if (!star_p)
            return 0;
        p = star_p; /* the last '%' takes one more byte */
        s = ++star_s;
    }
    while (*p == '%')
        p++;
    return !*p;
}

#ifdef RD_HAVE_DUCKDB

#define PAGE_MAX 1000
#define TOKEN_PREFIX "rdc1-"

/* MaxResults (0..1000; 0 or none: 1000) and NextToken. 0 after replying. */
static int read_page(json_t *body, const rd_emu_request *req, rd_emu_response *resp, size_t *offset, size_t *max)
{
    json_t *mr = json_object_get(body, "MaxResults");
    json_int_t m = json_is_integer(mr) ? json_integer_value(mr) : 0;
    if ((mr && !json_is_null(mr) && !json_is_integer(mr)) || m < 0 || m > PAGE_MAX) {
        rd_emu_data_reply_error(resp, req, "ValidationException",
                                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: "
                                "Member must have value between 0 and 1000",
                                NULL);
        return 0;
    }
    *max = m ? (size_t)m : PAGE_MAX;
    *offset = 0;
    const char *token = rd_emu_data_jstr(body, "NextToken");
    if (token) {
        char *end = NULL;
        unsigned long long v = 0;
        if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0)
            v = strtoull(token + strlen(TOKEN_PREFIX), &end, 10);
        if (!end || end == token + strlen(TOKEN_PREFIX) || *end) {
            rd_emu_data_reply_error(resp, req, "ValidationException", "The NextToken is not valid.", NULL);
            return 0;
        }
        *offset = (size_t)v;
    }
    return 1;
}

/* Replies {key: all[offset, offset+max), NextToken?} plus the members of extra (consumed; may be NULL). */
static void reply_page(rd_emu_response *resp, const rd_emu_request *req, const char *key, json_t *all,
                       size_t offset, size_t max, json_t *extra)
{
    size_t n = json_array_size(all);
    if (offset > n) {
        json_decref(all);
        json_decref(extra);
        rd_emu_data_reply_error(resp, req, "ValidationException", "The NextToken is not valid.", NULL);
        return;
    }
    json_t *page = json_array();
    for (size_t i = offset; i < n && i < offset + max; i++)
        json_array_append(page, json_array_get(all, i));
    json_t *o = extra ? extra : json_object();
    json_object_set_new(o, key, page);
    if (offset + max < n) {
        char next[48];
        snprintf(next, sizeof next, TOKEN_PREFIX "%zu", offset + max);
        json_object_set_new(o, "NextToken", json_string(next));
    }
    json_decref(all);
    rd_emu_reply_json(resp, o, req ? req->request_id : NULL);
}

/* The request's target, known and authorised (the call and the database credentials of the database the
 * caller connects to: ConnectedDatabase, else Database). 0 after replying. */
static int catalog_target(rd_emu *emu, rd_emu_engine *eng, const char *op, json_t *body, const rd_emu_request *req,
                          rd_emu_response *resp, rd_emu_data_target *t)
{
    if (!rd_emu_data_read_target(body, req, resp, t))
        return 0;
    if (!rd_emu_engine_has_target(eng, t->is_cluster, t->name)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s %.200s not found.", t->is_cluster ? "Cluster" : "Workgroup", t->name);
        rd_emu_data_reply_error(resp, req, t->is_cluster ? "ValidationException" : "ResourceNotFoundException", msg,
                                t->is_cluster ? NULL : t->name);
        return 0;
    }
    rd_emu_data_target conn = *t;
    const char *connected = rd_emu_data_jstr(body, "ConnectedDatabase");
    if (connected)
        conn.database = connected;
    return rd_emu_data_authorise(emu, req, resp, op, t->is_cluster, t->name) &&
           rd_emu_data_authorise_db(emu, req, resp, &conn);
}

/* A connection to the target's database. 0 after replying. */
static int open_database(rd_emu_engine *eng, const rd_emu_data_target *t, const char *database,
                         const rd_emu_request *req, rd_emu_response *resp, duckdb_connection *out)
{
    rd_error err;
    rd_error_clear(&err);
    rd_emu_warehouse *wh = NULL;
    rd_status st = rd_emu_engine_warehouse(eng, t->is_cluster, t->name, database, &wh, &err);
    if (st == RD_OK)
        st = rd_emu_engine_connect(wh, out, &err);
    if (st == RD_E_USAGE) {
        rd_emu_data_reply_error(resp, req, "ValidationException", "Database name is not valid.", NULL);
        return 0;
    }
    if (st != RD_OK) {
        rd_emu_reply_json_error(resp, 500, "DatabaseConnectionException", err.message, req ? req->request_id : NULL);
        return 0;
    }
    return 1;
}

/* Runs a catalog query; 0 after replying InternalServerException. */
static int catalog_query(duckdb_connection c, const char *sql, duckdb_result *r, const rd_emu_request *req,
                         rd_emu_response *resp)
{
    if (duckdb_query(c, sql, r) == DuckDBSuccess)
        return 1;
    char msg[512];
    snprintf(msg, sizeof msg, "The catalog query failed: %.400s", duckdb_result_error(r));
    duckdb_destroy_result(r);
    rd_emu_reply_json_error(resp, 500, "InternalServerException", msg, req ? req->request_id : NULL);
    return 0;
}

static json_t *value_json(duckdb_result *r, idx_t col, idx_t row)
{
    char *v = duckdb_value_varchar(r, col, row);
    json_t *s = json_string(v ? v : "");
    duckdb_free(v);
    return s;
}

typedef struct name_list {
    char **items;
    size_t count, cap;
} name_list;

/* Appends a copy of name[0, len); dropped when out of memory (the list stays valid). */
static void name_push(name_list *l, const char *name, size_t len)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->items, cap * sizeof *nv);
        if (!nv)
            return;
        l->items = nv;
        l->cap = cap;
    }
    char *copy = strndup(name, len);
    if (copy)
        l->items[l->count++] = copy;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ListDatabases: the target's databases (the DuckDB files under its directory, the connected one and "dev",
 * which every Redshift warehouse has), sorted. */
static void list_databases(rd_emu *emu, rd_emu_engine *eng, json_t *body, const rd_emu_request *req,
                           rd_emu_response *resp)
{
    rd_emu_data_target t;
    size_t offset, max;
    if (!catalog_target(emu, eng, "ListDatabases", body, req, resp, &t) || !read_page(body, req, resp, &offset, &max))
        return;
    duckdb_connection c;
    if (!open_database(eng, &t, t.database, req, resp, &c)) /* the connection creates it, as Redshift has it */
        return;
    duckdb_disconnect(&c);
    name_list names = { 0 };
    rd_buf dir = RD_BUF_INIT;
    rd_buf_printf(&dir, "%s/warehouses/%s-%s", eng->data_dir, t.is_cluster ? "cluster" : "workgroup", t.name);
    DIR *d = opendir(rd_buf_cstr(&dir));
    name_push(&names, "dev", 3);
    name_push(&names, t.database, strlen(t.database));
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 7 && strcmp(e->d_name + len - 7, ".duckdb") == 0)
            name_push(&names, e->d_name, len - 7);
    }
    if (d)
        closedir(d);
    rd_buf_free(&dir);
    json_t *all = json_array();
    if (names.count)
        qsort(names.items, names.count, sizeof *names.items, name_cmp);
    for (size_t i = 0; i < names.count; i++)
        if (i == 0 || strcmp(names.items[i], names.items[i - 1]) != 0)
            json_array_append_new(all, json_string(names.items[i]));
    for (size_t i = 0; i < names.count; i++)
        free(names.items[i]);
    free(names.items);
    reply_page(resp, req, "Databases", all, offset, max, NULL);
}

/* DuckDB's own default schema is listed only when it holds something of the user's; Redshift's two system
 * schemas always are. */
static const char SCHEMAS_SQL[] =
    "SELECT schema_name FROM duckdb_schemas() s WHERE database_name = current_database() AND "
    "(schema_name <> 'main' OR EXISTS (SELECT 1 FROM duckdb_tables() t WHERE t.database_name = s.database_name "
    "AND t.schema_name = 'main') OR EXISTS (SELECT 1 FROM duckdb_views() v WHERE NOT v.internal AND "
    "v.database_name = s.database_name AND v.schema_name = 'main')) "
    "UNION SELECT unnest(['information_schema', 'pg_catalog']) ORDER BY 1";

static const char TABLES_SQL[] =
    "SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = current_database() "
    "UNION ALL SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE database_name = current_database() "
    "AND NOT internal ORDER BY 1, 2";

/* ListSchemas / ListTables: SchemaPattern (and TablePattern) as LIKE patterns. */
static void list_schemas_or_tables(rd_emu *emu, rd_emu_engine *eng, int tables, json_t *body,
                                   const rd_emu_request *req, rd_emu_response *resp)
{
    rd_emu_data_target t;
    size_t offset, max;
    if (!catalog_target(emu, eng, tables ? "ListTables" : "ListSchemas", body, req, resp, &t) ||
        !read_page(body, req, resp, &offset, &max))
        return;
    const char *schema_pat = rd_emu_data_jstr(body, "SchemaPattern");
    const char *table_pat = tables ? rd_emu_data_jstr(body, "TablePattern") : NULL;
    duckdb_connection c;
    if (!open_database(eng, &t, t.database, req, resp, &c))
        return;
    duckdb_result r;
    if (!catalog_query(c, tables ? TABLES_SQL : SCHEMAS_SQL, &r, req, resp)) {
        duckdb_disconnect(&c);
        return;
    }
    json_t *all = json_array();
    idx_t rows = duckdb_row_count(&r);
    for (idx_t i = 0; i < rows; i++) {
        char *schema = duckdb_value_varchar(&r, 0, i);
        char *name = tables ? duckdb_value_varchar(&r, 1, i) : NULL;
        if (schema && rd_emu_like_match(schema_pat, schema) && (!tables || rd_emu_like_match(table_pat, name))) {
            if (tables)
                json_array_append_new(all, json_pack("{s:s, s:s, s:o}", "name", name ? name : "", "schema", schema,
                                                     "type", value_json(&r, 2, i)));
            else
                json_array_append_new(all, json_string(schema));
        }
        duckdb_free(schema);
        duckdb_free(name);
    }
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    reply_page(resp, req, tables ? "Tables" : "Schemas", all, offset, max, NULL);
}

/* "name" with embedded quotes doubled. */
static void quote_ident(rd_buf *b, const char *name)
{
    rd_buf_putc(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            rd_buf_putc(b, '"');
        rd_buf_putc(b, *p);
    }
    rd_buf_putc(b, '"');
}

/* The columns of one table, appended to cols as ColumnMetadata (Redshift's type names). */
static int describe_one(duckdb_connection c, const char *schema, const char *table, json_t *cols)
{
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "SELECT * FROM ");
    quote_ident(&sql, schema);
    rd_buf_putc(&sql, '.');
    quote_ident(&sql, table);
    rd_buf_puts(&sql, " LIMIT 0");
    duckdb_result shape;
    int ok = duckdb_query(c, rd_buf_cstr(&sql), &shape) == DuckDBSuccess;
    rd_buf_free(&sql);
    if (!ok) {
        duckdb_destroy_result(&shape);
        return 0;
    }
    duckdb_prepared_statement ps = NULL;
    duckdb_result meta;
    int have_meta = 0;
    if (duckdb_prepare(c,
                       "SELECT column_name, is_nullable, column_default FROM duckdb_columns() WHERE database_name = "
                       "current_database() AND schema_name = $1 AND table_name = $2 ORDER BY column_index",
                       &ps) == DuckDBSuccess &&
        duckdb_bind_varchar(ps, 1, schema) == DuckDBSuccess && duckdb_bind_varchar(ps, 2, table) == DuckDBSuccess)
        have_meta = duckdb_execute_prepared(ps, &meta) == DuckDBSuccess;
    duckdb_destroy_prepare(&ps);
    idx_t n = duckdb_column_count(&shape);
    idx_t meta_rows = have_meta ? duckdb_row_count(&meta) : 0;
    for (idx_t i = 0; i < n; i++) {
        duckdb_logical_type lt = duckdb_column_logical_type(&shape, i);
        rd_emu_column col;
        memset(&col, 0, sizeof col);
        rd_emu_column_describe(lt, &col);
        duckdb_destroy_logical_type(&lt);
        const char *name = duckdb_column_name(&shape, i);
        int nullable = 1;
        char *def = NULL;
        if (i < meta_rows) {
            nullable = duckdb_value_boolean(&meta, 1, i) ? 1 : 0;
            if (!duckdb_value_is_null(&meta, 2, i))
                def = duckdb_value_varchar(&meta, 2, i);
        }
        json_t *o = json_pack("{s:b, s:b, s:b, s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:s, s:i}", "isCaseSensitive",
                              col.is_case_sensitive, "isCurrency", 0, "isSigned", col.is_signed, "label",
                              name ? name : "", "name", name ? name : "", "nullable", nullable, "precision",
                              col.precision, "scale", col.scale, "schemaName", schema, "tableName", table, "typeName",
                              col.type_name ? col.type_name : "varchar", "length", col.precision);
        if (def)
            json_object_set_new(o, "columnDefault", json_string(def));
        duckdb_free(def);
        json_array_append_new(cols, o);
    }
    if (have_meta)
        duckdb_destroy_result(&meta);
    duckdb_destroy_result(&shape);
    return 1;
}

/* DescribeTable: Schema and Table select the tables (as patterns; none: all); the columns are paged. */
static void describe_table(rd_emu *emu, rd_emu_engine *eng, json_t *body, const rd_emu_request *req,
                           rd_emu_response *resp)
{
    rd_emu_data_target t;
    size_t offset, max;
    if (!catalog_target(emu, eng, "DescribeTable", body, req, resp, &t) || !read_page(body, req, resp, &offset, &max))
        return;
    const char *schema_pat = rd_emu_data_jstr(body, "Schema"), *table_pat = rd_emu_data_jstr(body, "Table");
    duckdb_connection c;
    if (!open_database(eng, &t, t.database, req, resp, &c))
        return;
    duckdb_result r;
    if (!catalog_query(c, TABLES_SQL, &r, req, resp)) {
        duckdb_disconnect(&c);
        return;
    }
    json_t *cols = json_array();
    char *only = NULL;
    size_t matched = 0;
    idx_t rows = duckdb_row_count(&r);
    for (idx_t i = 0; i < rows; i++) {
        char *schema = duckdb_value_varchar(&r, 0, i), *name = duckdb_value_varchar(&r, 1, i);
        if (schema && name && rd_emu_like_match(schema_pat, schema) && rd_emu_like_match(table_pat, name) &&
            describe_one(c, schema, name, cols)) {
            if (matched++ == 0)
                only = strdup(name);
        }
        duckdb_free(schema);
        duckdb_free(name);
    }
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    json_t *extra = json_object();
    if (matched == 1 && only)
        json_object_set_new(extra, "TableName", json_string(only));
    else if (table_pat)
        json_object_set_new(extra, "TableName", json_string(table_pat));
    free(only);
    reply_page(resp, req, "ColumnList", cols, offset, max, extra);
}

int rd_emu_data_catalog_handle(rd_emu *emu, rd_emu_engine *eng, const char *op, json_t *body,
                               const rd_emu_request *req, rd_emu_response *resp)
{
    if (strcmp(op, "ListDatabases") == 0)
        list_databases(emu, eng, body, req, resp);
    else if (strcmp(op, "ListSchemas") == 0)
        list_schemas_or_tables(emu, eng, 0, body, req, resp);
    else if (strcmp(op, "ListTables") == 0)
        list_schemas_or_tables(emu, eng, 1, body, req, resp);
    else if (strcmp(op, "DescribeTable") == 0)
        describe_table(emu, eng, body, req, resp);
    else
        return 0;
    return 1;
}

#endif
