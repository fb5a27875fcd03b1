/* cmd_query.c — `redduck query FILE 'SQL'`: runs one SQL text on a local DuckDB file opened read-only and
 * prints the result as an aligned table (terminal), CSV or JSON; with --cloud P, the same on a deployed
 * project's data through the server's query API. Values become text and JSON in redduck/value.h (shared with
 * the server); this file owns the layouts. It never creates or writes a database (ingest does that). */
#define DUCKDB_API_NO_DEPRECATED 1 /* only the chunk API: the value-by-value one is scheduled for removal */
#include <duckdb.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "redduck/buf.h"
#include "redduck/pull.h"
#include "redduck/value.h"
#include "core/parse.h"

static const char query_help[] =
    "usage: redduck query FILE.duckdb 'SQL' [--csv | --json] [--max-rows N]\n"
    "       redduck query --cloud PROJECT 'SQL' [--csv | --json] [--max-rows N] [--server URL] [--ca-cert FILE]\n"
    "\n"
    "Runs SQL on a local DuckDB file (opened read-only; a missing file is an error, never created) and\n"
    "prints the result of its last statement.\n"
    "\n"
    "Output:\n"
    "  (default)     on a terminal: an aligned table with a \"(N rows)\" footer, numbers right-aligned,\n"
    "                NULL shown as NULL, newlines/tabs in values shown as \\n, \\r, \\t; otherwise CSV\n"
    "  --csv         RFC 4180 CSV with a header row, lines ending in LF; fields containing , \" CR or LF\n"
    "                are quoted (quotes doubled); NULL is an empty field, an empty string is \"\"\n"
    "  --json        one JSON array of objects (column name -> value): integer types that fit in 64 bits\n"
    "                and finite FLOAT/DOUBLE as JSON numbers, BOOLEAN as true/false, NULL as null;\n"
    "                DECIMAL (kept exact), larger integers, inf/nan and every other type as strings\n"
    "  --max-rows N  print at most N rows (default: 1000 for the table, unlimited for CSV and JSON);\n"
    "                when rows are left out, \"(showing first N of M rows)\" goes to stderr\n"
    "\n"
    "With --cloud PROJECT the SQL runs on the redduck server, on the project's latest data (one read-only\n"
    "SELECT; the server refuses anything else, and files or the network): the same output, and\n"
    "\"(truncated at N rows)\" on stderr when the server's row limit left rows out.\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok, 2 usage, 4 role not enough (--cloud), 1 other failure (missing file, SQL error, refused).\n";

enum query_format { FORMAT_AUTO, FORMAT_TABLE, FORMAT_CSV, FORMAT_JSON };

#define TABLE_DEFAULT_MAX_ROWS 1000

typedef struct query_column {
    const char *name; /* owned by the duckdb_result */
    duckdb_logical_type type;
    duckdb_type id;
    int numeric; /* right-aligned in the table */
} query_column;

/* One cell kept for the table: text is NULL for SQL NULL. */
typedef struct table_cell {
    char *text;
    size_t width;
} table_cell;

typedef struct table_rows {
    table_cell *cells; /* rows * ncols */
    size_t rows, cap;
} table_rows;

/* ---- CSV ---------------------------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s, size_t n, int is_null)
{
    if (is_null)
        return;
    if (n > 0 && !memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\r', n) && !memchr(s, '\n', n)) {
        fwrite(s, 1, n, f);
        return;
    }
    /* quoted: fields with separators, and the empty string (so that it differs from NULL) */
    putc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            putc('"', f);
        putc(s[i], f);
    }
    putc('"', f);
}

static void csv_header(FILE *f, const query_column *cols, idx_t ncols)
{
    for (idx_t c = 0; c < ncols; c++) {
        if (c)
            putc(',', f);
        csv_field(f, cols[c].name, strlen(cols[c].name), 0);
    }
    putc('\n', f);
}

static void csv_row(FILE *f, rd_buf *tmp, const query_column *cols, idx_t ncols, duckdb_data_chunk chunk, idx_t row)
{
    for (idx_t c = 0; c < ncols; c++) {
        duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
        if (c)
            putc(',', f);
        if (!rd_value_is_valid(vec, row)) {
            csv_field(f, "", 0, 1);
            continue;
        }
        rd_buf_reset(tmp);
        rd_value_text(tmp, vec, cols[c].type, row);
        csv_field(f, rd_buf_cstr(tmp), tmp->len, 0);
    }
    putc('\n', f);
}

/* ---- JSON --------------------------------------------------------------------------------------------- */

/* One object per line inside one array, written as rows arrive (no whole-result tree in memory).
 * Returns -1 when a string is not valid UTF-8 (JSON cannot carry it) or on out of memory. */
static int json_row(FILE *f, rd_buf *line, const query_column *cols, idx_t ncols,
                    duckdb_data_chunk chunk, idx_t row, int first)
{
    rd_buf_reset(line);
    rd_buf_puts(line, first ? "\n{" : ",\n{");
    for (idx_t c = 0; c < ncols; c++) {
        if (c)
            rd_buf_putc(line, ',');
        if (rd_value_json_string(line, cols[c].name, strlen(cols[c].name), NULL) != RD_OK)
            return -1;
        rd_buf_putc(line, ':');
        if (rd_value_json(line, duckdb_data_chunk_get_vector(chunk, c), cols[c].type, row, RD_VALUE_JSON_LOCAL,
                          NULL) != RD_OK)
            return -1;
    }
    if (rd_buf_putc(line, '}') != RD_OK)
        return -1;
    fwrite(line->data, 1, line->len, f);
    return 0;
}

/* ---- table -------------------------------------------------------------------------------------------- */

/* Display width: UTF-8 code points (continuation bytes do not count). */
static size_t utf8_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Control characters would break the alignment: shown escaped. */
static char *table_text(const rd_buf *b)
{
    rd_buf out = RD_BUF_INIT;
    for (size_t i = 0; i < b->len; i++) {
        char ch = b->data[i];
        if (ch == '\n')
            rd_buf_puts(&out, "\\n");
        else if (ch == '\r')
            rd_buf_puts(&out, "\\r");
        else if (ch == '\t')
            rd_buf_puts(&out, "\\t");
        else if (ch == '\0')
            rd_buf_puts(&out, "\\0");
        else
            rd_buf_putc(&out, ch);
    }
    return rd_buf_detach(&out);
}

static int table_add_row(table_rows *t, rd_buf *tmp, const query_column *cols, idx_t ncols, duckdb_data_chunk chunk,
                         idx_t row)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        table_cell *cells = realloc(t->cells, cap * (ncols ? ncols : 1) * sizeof *cells);
        if (!cells)
            return -1;
        t->cells = cells;
        t->cap = cap;
    }
    table_cell *cells = t->cells + t->rows * ncols;
    for (idx_t c = 0; c < ncols; c++) {
        duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
        cells[c].text = NULL;
        cells[c].width = 4; /* NULL */
        if (!rd_value_is_valid(vec, row))
            continue;
        rd_buf_reset(tmp);
        rd_value_text(tmp, vec, cols[c].type, row);
        cells[c].text = table_text(tmp);
        if (!cells[c].text) {
            for (idx_t k = 0; k < c; k++)
                free(cells[k].text);
            return -1;
        }
        cells[c].width = utf8_width(cells[c].text);
    }
    t->rows++;
    return 0;
}

static void table_pad(FILE *f, size_t n)
{
    while (n-- > 0)
        putc(' ', f);
}

static void table_cell_print(FILE *f, const char *s, size_t width, size_t col_width, int right)
{
    if (right)
        table_pad(f, col_width - width);
    fputs(s, f);
    if (!right)
        table_pad(f, col_width - width);
}

static int table_print(FILE *f, const table_rows *t, const query_column *cols, idx_t ncols, uint64_t total)
{
    size_t *widths = calloc(ncols ? ncols : 1, sizeof *widths);
    char **names = calloc(ncols ? ncols : 1, sizeof *names);
    int rc = -1;
    if (!widths || !names)
        goto out;
    for (idx_t c = 0; c < ncols; c++) {
        rd_buf b = RD_BUF_INIT;
        rd_buf_puts(&b, cols[c].name);
        names[c] = table_text(&b);
        rd_buf_free(&b);
        if (!names[c])
            goto out;
        widths[c] = utf8_width(names[c]);
        for (size_t r = 0; r < t->rows; r++)
            if (t->cells[r * ncols + c].width > widths[c])
                widths[c] = t->cells[r * ncols + c].width;
    }
    for (idx_t c = 0; c < ncols; c++) {
        fputs(c ? " | " : "", f);
        if (c + 1 == ncols && !cols[c].numeric)
            fputs(names[c], f);
        else
            table_cell_print(f, names[c], utf8_width(names[c]), widths[c], cols[c].numeric);
    }
    putc('\n', f);
    for (idx_t c = 0; c < ncols; c++) {
        fputs(c ? "-+-" : "", f);
        for (size_t k = 0; k < widths[c]; k++)
            putc('-', f);
    }
    putc('\n', f);
    for (size_t r = 0; r < t->rows; r++) {
        for (idx_t c = 0; c < ncols; c++) {
            const table_cell *cell = &t->cells[r * ncols + c];
            fputs(c ? " | " : "", f);
            /* the last column is not padded on the left-aligned side: no trailing blanks */
            if (c + 1 == ncols && !cols[c].numeric)
                fputs(cell->text ? cell->text : "NULL", f);
            else
                table_cell_print(f, cell->text ? cell->text : "NULL", cell->width, widths[c], cols[c].numeric);
        }
        putc('\n', f);
    }
    fprintf(f, "(%llu row%s)\n", (unsigned long long)total, total == 1 ? "" : "s");
    rc = 0;
out:
    for (idx_t c = 0; names && c < ncols; c++)
        free(names[c]);
    free(names);
    free(widths);
    return rc;
}

static void table_free(table_rows *t, idx_t ncols)
{
    for (size_t i = 0; i < t->rows * ncols; i++)
        free(t->cells[i].text);
    free(t->cells);
}

/* ---- command ------------------------------------------------------------------------------------------ */

/* Prints the result; returns 0 or 1 (out of memory / write error, message printed). */
static int print_result(duckdb_result *res, enum query_format format, uint64_t max_rows)
{
    idx_t ncols = duckdb_column_count(res);
    query_column *cols = calloc(ncols ? ncols : 1, sizeof *cols);
    if (!cols) {
        fprintf(stderr, "redduck query: out of memory\n");
        return 1;
    }
    for (idx_t c = 0; c < ncols; c++) {
        const char *name = duckdb_column_name(res, c);
        cols[c].name = name ? name : "";
        cols[c].type = duckdb_column_logical_type(res, c);
        cols[c].id = duckdb_get_type_id(cols[c].type);
        cols[c].numeric = rd_value_type_is_numeric(cols[c].type);
    }

    FILE *f = stdout;
    rd_buf tmp = RD_BUF_INIT, line = RD_BUF_INIT;
    table_rows table = { 0 };
    uint64_t shown = 0, total = 0;
    int failed = 0;

    if (format == FORMAT_CSV && ncols > 0)
        csv_header(f, cols, ncols);
    if (format == FORMAT_JSON)
        putc('[', f);
    duckdb_data_chunk chunk;
    while ((chunk = duckdb_fetch_chunk(*res)) != NULL) {
        idx_t n = duckdb_data_chunk_get_size(chunk);
        for (idx_t r = 0; r < n && !failed; r++, total++) {
            if (shown >= max_rows)
                continue; /* keep counting for the note */
            if (format == FORMAT_CSV)
                csv_row(f, &tmp, cols, ncols, chunk, r);
            else if (format == FORMAT_JSON)
                failed = json_row(f, &line, cols, ncols, chunk, r, shown == 0) != 0;
            else
                failed = table_add_row(&table, &tmp, cols, ncols, chunk, r) != 0;
            shown++;
        }
        duckdb_destroy_data_chunk(&chunk);
        if (failed)
            break;
    }
    if (!failed && format == FORMAT_JSON)
        fputs(shown ? "\n]\n" : "]\n", f);
    if (!failed && format == FORMAT_TABLE)
        failed = table_print(f, &table, cols, ncols, shown) != 0;
    if (failed)
        fprintf(stderr, "redduck query: out of memory\n");
    else if (shown < total)
        fprintf(stderr, "(showing first %llu of %llu rows)\n", (unsigned long long)shown, (unsigned long long)total);
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "redduck query: writing the result: %s\n", strerror(errno));
        failed = 1;
    }

    table_free(&table, ncols);
    rd_buf_free(&tmp);
    rd_buf_free(&line);
    for (idx_t c = 0; c < ncols; c++)
        duckdb_destroy_logical_type(&cols[c].type);
    free(cols);
    return failed ? 1 : 0;
}

/* The two positional arguments, FILE and SQL. */
typedef struct query_args {
    const char *path, *sql;
} query_args;

static int add_arg(const char *value, void *dest)
{
    query_args *qa = dest;
    if (!qa->path)
        qa->path = value;
    else if (!qa->sql)
        qa->sql = value;
    else
        return rd_cli_usage_error("query", "unexpected argument '%s'", value);
    return 0;
}

static int want_format(enum query_format *format, enum query_format want)
{
    if (*format != FORMAT_AUTO && *format != want)
        return rd_cli_usage_error("query", "--csv and --json cannot be combined");
    *format = want;
    return 0;
}

static int want_csv(const char *unused, void *dest)
{
    return want_format(dest, FORMAT_CSV);
}

static int want_json(const char *unused, void *dest)
{
    return want_format(dest, FORMAT_JSON);
}

typedef struct max_rows_opt {
    uint64_t value;
    int given;
} max_rows_opt;

static int parse_max_rows(const char *value, void *dest)
{
    max_rows_opt *m = dest;
    if (rd_parse_uint(value, 0, UINT64_MAX, &m->value) != 0)
        return rd_cli_usage_error("query", "--max-rows: '%s' is not a row count", value);
    m->given = 1;
    return 0;
}

/* --cloud: the server's answer printed as the local query prints a result. */
static int query_cloud(const rd_cli_cloud_flags *flags, const char *project, const char *sql,
                       enum query_format format, uint64_t max_rows)
{
    int rc = 1;
    rd_cloud *c = rd_cli_cloud_open(flags, &rc);
    if (!c)
        return rc;
    rd_cloud_query_result r;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_cloud_query(c, project, sql, format == FORMAT_CSV, &r, &err);
    rd_cloud_free(c);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        return rd_cli_exit_code(st);
    }
    FILE *f = stdout;
    rc = 0;
    if (format == FORMAT_CSV) {
        fwrite(r.body, 1, r.body_len, f);
    } else if (format == FORMAT_JSON) {
        fputs(r.objects_json, f);
    } else {
        query_column *cols = calloc(r.ncols ? r.ncols : 1, sizeof *cols);
        table_rows t = { 0 };
        size_t shown = r.nrows < max_rows ? r.nrows : (size_t)max_rows;
        t.cells = calloc((shown ? shown : 1) * (r.ncols ? r.ncols : 1), sizeof *t.cells);
        if (!cols || !t.cells) {
            rc = 1;
        } else {
            for (size_t i = 0; i < r.ncols; i++) {
                cols[i].name = r.names[i];
                cols[i].numeric = r.numeric[i];
            }
            for (size_t y = 0; y < shown && rc == 0; y++, t.rows++) {
                for (size_t x = 0; x < r.ncols; x++) {
                    table_cell *cell = &t.cells[y * r.ncols + x];
                    const char *v = r.cells[y * r.ncols + x];
                    cell->width = 4; /* NULL */
                    if (!v)
                        continue;
                    rd_buf b = RD_BUF_INIT;
                    rd_buf_puts(&b, v);
                    cell->text = table_text(&b);
                    rd_buf_free(&b);
                    if (!cell->text)
                        rc = 1;
                    else
                        cell->width = utf8_width(cell->text);
                }
            }
            if (rc == 0)
                rc = table_print(f, &t, cols, r.ncols, shown) != 0;
            if (shown < r.nrows)
                fprintf(stderr, "(showing first %zu of %zu rows)\n", shown, r.nrows);
        }
        if (rc)
            fprintf(stderr, "redduck query: out of memory\n");
        table_free(&t, r.ncols);
        free(cols);
    }
    if (r.truncated)
        fprintf(stderr, "(truncated at %llu rows)\n", (unsigned long long)r.row_count);
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "redduck query: writing the result: %s\n", strerror(errno));
        rc = 1;
    }
    rd_cloud_query_result_free(&r);
    return rc;
}

int rd_cmd_query(int argc, char **argv)
{
    query_args qa = { NULL, NULL };
    enum query_format format = FORMAT_AUTO;
    max_rows_opt max = { 0, 0 };
    const char *cloud = NULL;
    rd_cli_cloud_flags cf = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_ARGS(&qa, add_arg),
        RD_CLI_OPT_STRING("--cloud", &cloud),
        RD_CLI_OPT_CLOUD(&cf),
        RD_CLI_OPT_CALL("--csv", &format, want_csv),
        RD_CLI_OPT_CALL("--json", &format, want_json),
        RD_CLI_OPT_PARSE("--max-rows", &max, parse_max_rows),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "query", query_help, opts, RD_CLI_DASH_IS_ARG | RD_CLI_DASH_DASH, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    const char *path = qa.path, *sql = qa.sql;
    uint64_t max_rows = max.value;
    int have_max = max.given;
    if (cloud) {
        if (!path || sql)
            return rd_cli_usage_error("query", "--cloud PROJECT takes one SQL text (no DuckDB file)");
        if (format == FORMAT_AUTO)
            format = isatty(STDOUT_FILENO) ? FORMAT_TABLE : FORMAT_CSV;
        if (!have_max)
            max_rows = format == FORMAT_TABLE ? TABLE_DEFAULT_MAX_ROWS : UINT64_MAX;
        return query_cloud(&cf, cloud, path, format, max_rows);
    }
    if (cf.server || cf.ca_cert || cf.insecure_http)
        return rd_cli_usage_error("query", "--server, --ca-cert and --insecure-http go with --cloud PROJECT");
    if (!path || !sql)
        return rd_cli_usage_error("query", "needs a DuckDB file and a SQL text");
    if (format == FORMAT_AUTO)
        format = isatty(STDOUT_FILENO) ? FORMAT_TABLE : FORMAT_CSV;
    if (!have_max)
        max_rows = format == FORMAT_TABLE ? TABLE_DEFAULT_MAX_ROWS : UINT64_MAX;

    /* DuckDB would refuse a missing file in read-only mode too; checking first gives the clearer message */
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            fprintf(stderr, "redduck: %s: no such DuckDB file\n", path);
        else
            fprintf(stderr, "redduck: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "redduck: %s: is a directory, not a DuckDB file\n", path);
        return 1;
    }

    duckdb_config config = NULL;
    duckdb_database db = NULL;
    duckdb_connection conn = NULL;
    duckdb_result res;
    int have_res = 0;
    rc = 1;
    char *open_err = NULL;
    if (duckdb_create_config(&config) != DuckDBSuccess ||
        duckdb_set_config(config, "access_mode", "READ_ONLY") != DuckDBSuccess) {
        fprintf(stderr, "redduck query: cannot configure DuckDB\n");
        goto out;
    }
    if (duckdb_open_ext(path, &db, config, &open_err) != DuckDBSuccess) {
        fprintf(stderr, "redduck: %s: %s\n", path, open_err ? open_err : "cannot open the DuckDB file");
        goto out;
    }
    if (duckdb_connect(db, &conn) != DuckDBSuccess) {
        fprintf(stderr, "redduck: %s: cannot connect to the database\n", path);
        goto out;
    }
    have_res = 1;
    if (duckdb_query(conn, sql, &res) != DuckDBSuccess) {
        const char *msg = duckdb_result_error(&res);
        fprintf(stderr, "redduck query: %s\n", msg ? msg : "the query failed");
        goto out;
    }
    rc = print_result(&res, format, max_rows);
out:
    if (have_res)
        duckdb_destroy_result(&res);
    duckdb_disconnect(&conn);
    duckdb_close(&db);
    duckdb_free(open_err);
    duckdb_destroy_config(&config);
    return rc;
}
