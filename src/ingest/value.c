/* value.c — DuckDB values as text and JSON for every reader of a result (`redduck query`, the server's query
 * API), and a copy of some tables of a file (`redduck pull --tables`). Reads vectors of the chunk API only (the
 * value-by-value API is scheduled for removal); temporal and huge types are printed through DuckDB's value API
 * so the text is DuckDB's own. */
#define DUCKDB_API_NO_DEPRECATED 1
#include "redduck/value.h"

#include <duckdb.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int row_is_valid(duckdb_vector vec, idx_t row)
{
    uint64_t *validity = duckdb_vector_get_validity(vec);
    return validity == NULL || duckdb_validity_row_is_valid(validity, row);
}

static int type_is_numeric(duckdb_type id)
{
    switch (id) {
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_DECIMAL:
        return 1;
    default:
        return 0;
    }
}

/* Appends DuckDB's text for a value built through the value API (temporal types, huge integers, ...). */
static void put_value(rd_buf *out, duckdb_value v)
{
    char *s = v ? duckdb_get_varchar(v) : NULL;
    rd_buf_puts(out, s ? s : "?");
    duckdb_free(s);
    duckdb_destroy_value(&v);
}

/* Shortest text that reads back as the same number, in DuckDB's style: 1.0, 0.1, 100.0, 1e+20, inf, nan. */
static void put_double(rd_buf *out, double d, int is_float)
{
    char tmp[64];
    if (isnan(d)) {
        rd_buf_puts(out, "nan");
        return;
    }
    if (isinf(d)) {
        rd_buf_puts(out, d < 0 ? "-inf" : "inf");
        return;
    }
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(tmp, sizeof tmp, "%.*e", digits - 1, d);
        if (is_float ? strtof(tmp, NULL) == (float)d : strtod(tmp, NULL) == d)
            break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", digits - 1, d);
    int exp10 = atoi(strchr(tmp, 'e') + 1);
    if (exp10 >= -4 && exp10 < 16) {
        int decimals = digits - 1 - exp10;
        snprintf(tmp, sizeof tmp, "%.*f%s", decimals > 0 ? decimals : 0, d, decimals > 0 ? "" : ".0");
    }
    rd_buf_puts(out, tmp);
}

static void put_hugeint(rd_buf *out, duckdb_hugeint h)
{
    put_value(out, duckdb_create_hugeint(h));
}

static void put_decimal(rd_buf *out, duckdb_logical_type type, const void *data, idx_t row)
{
    duckdb_decimal dec = { .width = duckdb_decimal_width(type), .scale = duckdb_decimal_scale(type) };
    int64_t small = 0;
    switch (duckdb_decimal_internal_type(type)) {
    case DUCKDB_TYPE_SMALLINT:
        small = ((const int16_t *)data)[row];
        break;
    case DUCKDB_TYPE_INTEGER:
        small = ((const int32_t *)data)[row];
        break;
    case DUCKDB_TYPE_BIGINT:
        small = ((const int64_t *)data)[row];
        break;
    default:
        dec.value = ((const duckdb_hugeint *)data)[row];
        put_value(out, duckdb_create_decimal(dec));
        return;
    }
    dec.value.lower = (uint64_t)small;
    dec.value.upper = small < 0 ? -1 : 0;
    put_value(out, duckdb_create_decimal(dec));
}

static void put_value_text(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, idx_t row);

/* A nested element: NULL when invalid, else its text (strings unquoted, as DuckDB casts them to VARCHAR). */
static void put_element(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, idx_t row)
{
    if (!row_is_valid(vec, row)) {
        rd_buf_puts(out, "NULL");
        return;
    }
    put_value_text(out, vec, type, row);
}

static void put_list(rd_buf *out, duckdb_vector child, duckdb_logical_type child_type, idx_t first, idx_t n)
{
    rd_buf_putc(out, '[');
    for (idx_t i = 0; i < n; i++) {
        if (i)
            rd_buf_puts(out, ", ");
        put_element(out, child, child_type, first + i);
    }
    rd_buf_putc(out, ']');
}

static void put_struct(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, idx_t row)
{
    idx_t n = duckdb_struct_type_child_count(type);
    rd_buf_putc(out, '{');
    for (idx_t i = 0; i < n; i++) {
        char *name = duckdb_struct_type_child_name(type, i);
        duckdb_logical_type ct = duckdb_struct_type_child_type(type, i);
        rd_buf_printf(out, "%s'%s': ", i ? ", " : "", name ? name : "");
        put_element(out, duckdb_struct_vector_get_child(vec, i), ct, row);
        duckdb_destroy_logical_type(&ct);
        duckdb_free(name);
    }
    rd_buf_putc(out, '}');
}

static void put_map(rd_buf *out, duckdb_vector vec, idx_t row)
{
    const duckdb_list_entry *e = (const duckdb_list_entry *)duckdb_vector_get_data(vec) + row;
    duckdb_vector entries = duckdb_list_vector_get_child(vec);
    duckdb_logical_type et = duckdb_vector_get_column_type(entries);
    duckdb_logical_type kt = duckdb_struct_type_child_type(et, 0), vt = duckdb_struct_type_child_type(et, 1);
    duckdb_vector keys = duckdb_struct_vector_get_child(entries, 0), vals = duckdb_struct_vector_get_child(entries, 1);
    rd_buf_putc(out, '{');
    for (idx_t i = 0; i < e->length; i++) {
        if (i)
            rd_buf_puts(out, ", ");
        put_element(out, keys, kt, e->offset + i);
        rd_buf_putc(out, '=');
        put_element(out, vals, vt, e->offset + i);
    }
    rd_buf_putc(out, '}');
    duckdb_destroy_logical_type(&kt);
    duckdb_destroy_logical_type(&vt);
    duckdb_destroy_logical_type(&et);
}

/* Appends the text of a valid value. Vectors from the C API are flat, so row indexes data directly. */
static void put_value_text(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, idx_t row)
{
    const void *data = duckdb_vector_get_data(vec);
    duckdb_type id = duckdb_get_type_id(type);
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
        rd_buf_puts(out, ((const bool *)data)[row] ? "true" : "false");
        break;
    case DUCKDB_TYPE_TINYINT:
        rd_buf_printf(out, "%d", (int)((const int8_t *)data)[row]);
        break;
    case DUCKDB_TYPE_SMALLINT:
        rd_buf_printf(out, "%d", (int)((const int16_t *)data)[row]);
        break;
    case DUCKDB_TYPE_INTEGER:
        rd_buf_printf(out, "%d", (int)((const int32_t *)data)[row]);
        break;
    case DUCKDB_TYPE_BIGINT:
        rd_buf_printf(out, "%lld", (long long)((const int64_t *)data)[row]);
        break;
    case DUCKDB_TYPE_UTINYINT:
        rd_buf_printf(out, "%u", (unsigned)((const uint8_t *)data)[row]);
        break;
    case DUCKDB_TYPE_USMALLINT:
        rd_buf_printf(out, "%u", (unsigned)((const uint16_t *)data)[row]);
        break;
    case DUCKDB_TYPE_UINTEGER:
        rd_buf_printf(out, "%lu", (unsigned long)((const uint32_t *)data)[row]);
        break;
    case DUCKDB_TYPE_UBIGINT:
        rd_buf_printf(out, "%llu", (unsigned long long)((const uint64_t *)data)[row]);
        break;
    case DUCKDB_TYPE_FLOAT:
        put_double(out, ((const float *)data)[row], 1);
        break;
    case DUCKDB_TYPE_DOUBLE:
        put_double(out, ((const double *)data)[row], 0);
        break;
    case DUCKDB_TYPE_HUGEINT:
        put_hugeint(out, ((const duckdb_hugeint *)data)[row]);
        break;
    case DUCKDB_TYPE_UHUGEINT:
        put_value(out, duckdb_create_uhugeint(((const duckdb_uhugeint *)data)[row]));
        break;
    case DUCKDB_TYPE_DECIMAL:
        put_decimal(out, type, data, row);
        break;
    case DUCKDB_TYPE_VARCHAR: {
        duckdb_string_t s = ((const duckdb_string_t *)data)[row];
        rd_buf_append(out, duckdb_string_t_data(&s), duckdb_string_t_length(s));
        break;
    }
    case DUCKDB_TYPE_BLOB: {
        duckdb_string_t s = ((const duckdb_string_t *)data)[row];
        put_value(out, duckdb_create_blob((const uint8_t *)duckdb_string_t_data(&s), duckdb_string_t_length(s)));
        break;
    }
    case DUCKDB_TYPE_BIT: {
        duckdb_string_t s = ((const duckdb_string_t *)data)[row];
        duckdb_bit bit = { (uint8_t *)duckdb_string_t_data(&s), duckdb_string_t_length(s) };
        put_value(out, duckdb_create_bit(bit));
        break;
    }
    case DUCKDB_TYPE_DATE:
        put_value(out, duckdb_create_date(((const duckdb_date *)data)[row]));
        break;
    case DUCKDB_TYPE_TIME:
        put_value(out, duckdb_create_time(((const duckdb_time *)data)[row]));
        break;
    case DUCKDB_TYPE_TIME_NS:
        put_value(out, duckdb_create_time_ns(((const duckdb_time_ns *)data)[row]));
        break;
    case DUCKDB_TYPE_TIME_TZ:
        put_value(out, duckdb_create_time_tz_value(((const duckdb_time_tz *)data)[row]));
        break;
    case DUCKDB_TYPE_TIMESTAMP:
        put_value(out, duckdb_create_timestamp(((const duckdb_timestamp *)data)[row]));
        break;
    case DUCKDB_TYPE_TIMESTAMP_TZ:
        put_value(out, duckdb_create_timestamp_tz(((const duckdb_timestamp *)data)[row]));
        break;
    case DUCKDB_TYPE_TIMESTAMP_S:
        put_value(out, duckdb_create_timestamp_s(((const duckdb_timestamp_s *)data)[row]));
        break;
    case DUCKDB_TYPE_TIMESTAMP_MS:
        put_value(out, duckdb_create_timestamp_ms(((const duckdb_timestamp_ms *)data)[row]));
        break;
    case DUCKDB_TYPE_TIMESTAMP_NS:
        put_value(out, duckdb_create_timestamp_ns(((const duckdb_timestamp_ns *)data)[row]));
        break;
    case DUCKDB_TYPE_INTERVAL:
        put_value(out, duckdb_create_interval(((const duckdb_interval *)data)[row]));
        break;
    case DUCKDB_TYPE_UUID: {
        /* stored as a hugeint with the top bit flipped (so that it sorts); the value API takes the raw 128 bits */
        duckdb_hugeint h = ((const duckdb_hugeint *)data)[row];
        duckdb_uhugeint u = { h.lower, (uint64_t)h.upper ^ (UINT64_C(1) << 63) };
        put_value(out, duckdb_create_uuid(u));
        break;
    }
    case DUCKDB_TYPE_ENUM: {
        uint64_t index;
        switch (duckdb_enum_internal_type(type)) {
        case DUCKDB_TYPE_UTINYINT:
            index = ((const uint8_t *)data)[row];
            break;
        case DUCKDB_TYPE_USMALLINT:
            index = ((const uint16_t *)data)[row];
            break;
        default:
            index = ((const uint32_t *)data)[row];
            break;
        }
        char *s = duckdb_enum_dictionary_value(type, index);
        rd_buf_puts(out, s ? s : "?");
        duckdb_free(s);
        break;
    }
    case DUCKDB_TYPE_LIST: {
        const duckdb_list_entry *e = (const duckdb_list_entry *)data + row;
        duckdb_logical_type ct = duckdb_list_type_child_type(type);
        put_list(out, duckdb_list_vector_get_child(vec), ct, e->offset, e->length);
        duckdb_destroy_logical_type(&ct);
        break;
    }
    case DUCKDB_TYPE_ARRAY: {
        idx_t n = duckdb_array_type_array_size(type);
        duckdb_logical_type ct = duckdb_array_type_child_type(type);
        put_list(out, duckdb_array_vector_get_child(vec), ct, row * n, n);
        duckdb_destroy_logical_type(&ct);
        break;
    }
    case DUCKDB_TYPE_STRUCT:
        put_struct(out, vec, type, row);
        break;
    case DUCKDB_TYPE_MAP:
        put_map(out, vec, row);
        break;
    case DUCKDB_TYPE_UNION: {
        /* a struct: child 0 is the tag, child 1 + tag the member */
        uint8_t tag = ((const uint8_t *)duckdb_vector_get_data(duckdb_struct_vector_get_child(vec, 0)))[row];
        duckdb_logical_type mt = duckdb_union_type_member_type(type, tag);
        put_element(out, duckdb_struct_vector_get_child(vec, (idx_t)tag + 1), mt, row);
        duckdb_destroy_logical_type(&mt);
        break;
    }
    default:
        rd_buf_printf(out, "(unsupported type %d)", (int)id);
        break;
    }
}

/* ---- the public text calls ---------------------------------------------------------------------------- */

int rd_value_is_valid(duckdb_vector vec, uint64_t row)
{
    return row_is_valid(vec, row);
}

int rd_value_type_is_numeric(duckdb_logical_type type)
{
    return type_is_numeric(duckdb_get_type_id(type));
}

void rd_value_text(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, uint64_t row)
{
    put_value_text(out, vec, type, row);
}

/* ---- JSON --------------------------------------------------------------------------------------------- */

rd_status rd_value_json_string(rd_buf *out, const char *s, size_t n, rd_error *err)
{
    json_t *str = json_stringn(s, n);
    if (!str)
        return rd_error_set(err, RD_E_CONFIG, "a text value is not valid UTF-8: JSON cannot carry it (cast it to "
                            "BLOB, or ask for CSV)");
    char *text = json_dumps(str, JSON_ENCODE_ANY);
    json_decref(str);
    if (!text)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_buf_puts(out, text);
    free(text);
    return rd_buf_failed(out) ? rd_error_set(err, RD_E_INTERNAL, "out of memory") : RD_OK;
}

#define JSON_SAFE_INT ((int64_t)1 << 53) /* integers a double holds exactly */

static int hugeint_in(duckdb_hugeint h, int64_t lo, int64_t hi)
{
    int64_t v;
    if (h.upper == 0 && h.lower <= (uint64_t)INT64_MAX)
        v = (int64_t)h.lower;
    else if (h.upper == -1 && h.lower > (uint64_t)INT64_MAX)
        v = (int64_t)h.lower;
    else
        return 0;
    return v >= lo && v <= hi;
}

/* 1 when the (valid) value is a JSON number in this style; the text is then the number. */
static int value_is_number(duckdb_type id, const void *data, idx_t row, rd_value_json_style style)
{
    int64_t lo = style == RD_VALUE_JSON_API ? -JSON_SAFE_INT : INT64_MIN;
    int64_t hi = style == RD_VALUE_JSON_API ? JSON_SAFE_INT : INT64_MAX;
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER: return 1;
    case DUCKDB_TYPE_BIGINT: {
        int64_t v = ((const int64_t *)data)[row];
        return v >= lo && v <= hi;
    }
    case DUCKDB_TYPE_UBIGINT: return ((const uint64_t *)data)[row] <= (uint64_t)hi;
    case DUCKDB_TYPE_HUGEINT: return hugeint_in(((const duckdb_hugeint *)data)[row], lo, hi);
    case DUCKDB_TYPE_FLOAT: return isfinite(((const float *)data)[row]);
    case DUCKDB_TYPE_DOUBLE: return isfinite(((const double *)data)[row]);
    default: return 0;
    }
}

static rd_status json_value(rd_buf *out, rd_buf *tmp, duckdb_vector vec, duckdb_logical_type type, idx_t row,
                            rd_value_json_style style, rd_error *err);

/* A nested value of the API style, with its own scratch buffer. */
static rd_status json_nested(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, idx_t row, rd_error *err)
{
    rd_buf tmp = RD_BUF_INIT;
    rd_status st = json_value(out, &tmp, vec, type, row, RD_VALUE_JSON_API, err);
    rd_buf_free(&tmp);
    return st;
}

static rd_status json_list(rd_buf *out, duckdb_vector child, duckdb_logical_type ct, idx_t first, idx_t n,
                           rd_error *err)
{
    rd_buf_putc(out, '[');
    for (idx_t i = 0; i < n; i++) {
        if (i)
            rd_buf_putc(out, ',');
        rd_status st = json_nested(out, child, ct, first + i, err);
        if (st != RD_OK)
            return st;
    }
    rd_buf_putc(out, ']');
    return RD_OK;
}

static rd_status json_struct(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, idx_t row, rd_error *err)
{
    idx_t n = duckdb_struct_type_child_count(type);
    rd_status st = RD_OK;
    rd_buf_putc(out, '{');
    for (idx_t i = 0; i < n && st == RD_OK; i++) {
        char *name = duckdb_struct_type_child_name(type, i);
        duckdb_logical_type ct = duckdb_struct_type_child_type(type, i);
        if (i)
            rd_buf_putc(out, ',');
        st = rd_value_json_string(out, name ? name : "", name ? strlen(name) : 0, err);
        rd_buf_putc(out, ':');
        if (st == RD_OK)
            st = json_nested(out, duckdb_struct_vector_get_child(vec, i), ct, row, err);
        duckdb_destroy_logical_type(&ct);
        duckdb_free(name);
    }
    rd_buf_putc(out, '}');
    return st;
}

static rd_status json_map(rd_buf *out, duckdb_vector vec, idx_t row, rd_error *err)
{
    const duckdb_list_entry *e = (const duckdb_list_entry *)duckdb_vector_get_data(vec) + row;
    duckdb_vector entries = duckdb_list_vector_get_child(vec);
    duckdb_logical_type et = duckdb_vector_get_column_type(entries);
    duckdb_logical_type kt = duckdb_struct_type_child_type(et, 0), vt = duckdb_struct_type_child_type(et, 1);
    duckdb_vector keys = duckdb_struct_vector_get_child(entries, 0), vals = duckdb_struct_vector_get_child(entries, 1);
    rd_buf key = RD_BUF_INIT;
    rd_status st = RD_OK;
    rd_buf_putc(out, '{');
    for (idx_t i = 0; i < e->length && st == RD_OK; i++) {
        rd_buf_reset(&key);
        if (row_is_valid(keys, e->offset + i))
            put_value_text(&key, keys, kt, e->offset + i);
        else
            rd_buf_puts(&key, "NULL");
        if (i)
            rd_buf_putc(out, ',');
        st = rd_value_json_string(out, key.data ? key.data : "", key.len, err);
        rd_buf_putc(out, ':');
        if (st == RD_OK)
            st = json_nested(out, vals, vt, e->offset + i, err);
    }
    rd_buf_putc(out, '}');
    rd_buf_free(&key);
    duckdb_destroy_logical_type(&kt);
    duckdb_destroy_logical_type(&vt);
    duckdb_destroy_logical_type(&et);
    return st;
}

static int is_temporal(duckdb_type id)
{
    switch (id) {
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS: return 1;
    default: return 0;
    }
}

/* The API style's types that are not plain text: blobs, timestamps, nested. -1 when the type is not one. */
static int json_api_special(rd_buf *out, rd_buf *tmp, duckdb_vector vec, duckdb_logical_type type, duckdb_type id,
                            idx_t row, rd_status *st, rd_error *err)
{
    const void *data = duckdb_vector_get_data(vec);
    switch (id) {
    case DUCKDB_TYPE_BLOB: {
        duckdb_string_t s = ((const duckdb_string_t *)data)[row];
        const unsigned char *p = (const unsigned char *)duckdb_string_t_data(&s);
        uint32_t n = duckdb_string_t_length(s);
        static const char hex[] = "0123456789abcdef";
        rd_buf_putc(out, '"');
        for (uint32_t i = 0; i < n; i++) {
            rd_buf_putc(out, hex[p[i] >> 4]);
            rd_buf_putc(out, hex[p[i] & 15]);
        }
        rd_buf_putc(out, '"');
        *st = RD_OK;
        return 0;
    }
    case DUCKDB_TYPE_LIST: {
        const duckdb_list_entry *e = (const duckdb_list_entry *)data + row;
        duckdb_logical_type ct = duckdb_list_type_child_type(type);
        *st = json_list(out, duckdb_list_vector_get_child(vec), ct, e->offset, e->length, err);
        duckdb_destroy_logical_type(&ct);
        return 0;
    }
    case DUCKDB_TYPE_ARRAY: {
        idx_t n = duckdb_array_type_array_size(type);
        duckdb_logical_type ct = duckdb_array_type_child_type(type);
        *st = json_list(out, duckdb_array_vector_get_child(vec), ct, row * n, n, err);
        duckdb_destroy_logical_type(&ct);
        return 0;
    }
    case DUCKDB_TYPE_STRUCT: *st = json_struct(out, vec, type, row, err); return 0;
    case DUCKDB_TYPE_MAP: *st = json_map(out, vec, row, err); return 0;
    case DUCKDB_TYPE_UNION: {
        uint8_t tag = ((const uint8_t *)duckdb_vector_get_data(duckdb_struct_vector_get_child(vec, 0)))[row];
        duckdb_logical_type mt = duckdb_union_type_member_type(type, tag);
        *st = json_nested(out, duckdb_struct_vector_get_child(vec, (idx_t)tag + 1), mt, row, err);
        duckdb_destroy_logical_type(&mt);
        return 0;
    }
    default:
        if (!is_temporal(id))
            return -1;
        /* DuckDB's '2024-01-02 03:04:05.123+00' with the ISO 8601 'T' (infinity and -infinity stay) */
        rd_buf_reset(tmp);
        put_value_text(tmp, vec, type, row);
        if (tmp->len > 10 && tmp->data[10] == ' ')
            tmp->data[10] = 'T';
        *st = rd_value_json_string(out, rd_buf_cstr(tmp), tmp->len, err);
        return 0;
    }
}

static rd_status json_value(rd_buf *out, rd_buf *tmp, duckdb_vector vec, duckdb_logical_type type, idx_t row,
                            rd_value_json_style style, rd_error *err)
{
    if (!row_is_valid(vec, row)) {
        rd_buf_puts(out, "null");
        return RD_OK;
    }
    duckdb_type id = duckdb_get_type_id(type);
    if (style == RD_VALUE_JSON_API) {
        rd_status st = RD_OK;
        if (json_api_special(out, tmp, vec, type, id, row, &st, err) == 0)
            return st;
    }
    rd_buf_reset(tmp);
    put_value_text(tmp, vec, type, row);
    if (rd_buf_failed(tmp))
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (value_is_number(id, duckdb_vector_get_data(vec), row, style)) {
        rd_buf_append(out, tmp->data, tmp->len); /* as text: 0.1 stays 0.1 (jansson would print %.17g) */
        return RD_OK;
    }
    return rd_value_json_string(out, rd_buf_cstr(tmp), tmp->len, err);
}

rd_status rd_value_json(rd_buf *out, duckdb_vector vec, duckdb_logical_type type, uint64_t row,
                        rd_value_json_style style, rd_error *err)
{
    rd_buf tmp = RD_BUF_INIT;
    rd_status st = json_value(out, &tmp, vec, type, row, style, err);
    rd_buf_free(&tmp);
    if (st == RD_OK && rd_buf_failed(out))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    return st;
}

/* ---- a copy of some tables ---------------------------------------------------------------------------- */

/* "name" with its quotes doubled, for SQL. */
static void put_ident(rd_buf *b, const char *s)
{
    rd_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"')
            rd_buf_putc(b, '"');
        rd_buf_putc(b, *s);
    }
    rd_buf_putc(b, '"');
}

/* 'text' with its quotes doubled, for SQL. */
static void put_literal(rd_buf *b, const char *s)
{
    rd_buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            rd_buf_putc(b, '\'');
        rd_buf_putc(b, *s);
    }
    rd_buf_putc(b, '\'');
}

static rd_status run_sql(duckdb_connection conn, const char *sql, const char *doing, rd_error *err)
{
    duckdb_result res;
    rd_status st = RD_OK;
    if (duckdb_query(conn, sql, &res) != DuckDBSuccess) {
        const char *m = duckdb_result_error(&res);
        st = rd_error_set(err, RD_E_IO, "%s: %s", doing, m ? m : "DuckDB failed");
    }
    duckdb_destroy_result(&res);
    return st;
}

/* The tables of the attached database src, comma-separated, into names; 1 in *found when table is one. */
static rd_status list_tables(duckdb_connection conn, const char *table, rd_buf *names, int *found, rd_error *err)
{
    duckdb_result res;
    const char *sql = "SELECT table_name FROM duckdb_tables() WHERE database_name = 'rd_src' AND schema_name = "
                      "'main' ORDER BY table_name";
    if (duckdb_query(conn, sql, &res) != DuckDBSuccess) {
        const char *m = duckdb_result_error(&res);
        rd_status st = rd_error_set(err, RD_E_IO, "listing the tables of the downloaded file: %s", m ? m : "failed");
        duckdb_destroy_result(&res);
        return st;
    }
    *found = 0;
    duckdb_data_chunk chunk;
    while ((chunk = duckdb_fetch_chunk(res)) != NULL) {
        duckdb_vector v = duckdb_data_chunk_get_vector(chunk, 0);
        duckdb_string_t *d = duckdb_vector_get_data(v);
        for (idx_t r = 0; r < duckdb_data_chunk_get_size(chunk); r++) {
            const char *s = duckdb_string_t_data(&d[r]);
            uint32_t n = duckdb_string_t_length(d[r]);
            if (strlen(table) == n && memcmp(s, table, n) == 0)
                *found = 1;
            if (names->len)
                rd_buf_puts(names, ", ");
            rd_buf_append(names, s, n);
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    duckdb_destroy_result(&res);
    return RD_OK;
}

rd_status rd_value_copy_tables(const char *src, const char *dest, const char *const *tables, size_t ntables,
                               rd_error *err)
{
    /* DuckDB creates the file and its WAL with the process umask: 077 for the copy (the CLI is single-threaded
     * here; the umask is process-wide) */
    unlink(dest);
    mode_t old = umask(077);
    duckdb_database db = NULL;
    duckdb_connection conn = NULL;
    char *open_err = NULL;
    rd_buf sql = RD_BUF_INIT, names = RD_BUF_INIT;
    rd_status st = RD_OK;
    if (duckdb_open_ext(dest, &db, NULL, &open_err) != DuckDBSuccess || duckdb_connect(db, &conn) != DuckDBSuccess) {
        st = rd_error_set(err, RD_E_IO, "creating %s: %s", dest, open_err ? open_err : "DuckDB cannot open it");
        goto out;
    }
    rd_buf_puts(&sql, "ATTACH ");
    put_literal(&sql, src);
    rd_buf_puts(&sql, " AS rd_src (READ_ONLY)");
    if (rd_buf_failed(&sql)) {
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        goto out;
    }
    if ((st = run_sql(conn, sql.data, "opening the downloaded file", err)) != RD_OK)
        goto out;
    if ((st = run_sql(conn, "BEGIN", "starting the copy", err)) != RD_OK)
        goto out;
    for (size_t i = 0; i < ntables; i++) {
        int found = 0;
        rd_buf_reset(&names);
        if ((st = list_tables(conn, tables[i], &names, &found, err)) != RD_OK)
            goto out;
        if (!found) {
            st = rd_error_set(err, RD_E_NOT_FOUND, "no table %.128s in the project's data (its tables: %.*s)", tables[i],
                              (int)(names.len > 1024 ? 1024 : names.len), names.len ? names.data : "none");
            goto out;
        }
        rd_buf_reset(&sql);
        rd_buf_puts(&sql, "CREATE TABLE main.");
        put_ident(&sql, tables[i]);
        rd_buf_puts(&sql, " AS SELECT * FROM rd_src.main.");
        put_ident(&sql, tables[i]);
        if (rd_buf_failed(&sql)) {
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            goto out;
        }
        if ((st = run_sql(conn, sql.data, "copying a table of the downloaded file", err)) != RD_OK)
            goto out;
    }
    if ((st = run_sql(conn, "COMMIT", "finishing the copy", err)) != RD_OK ||
        (st = run_sql(conn, "DETACH rd_src", "closing the downloaded file", err)) != RD_OK)
        goto out;
    st = run_sql(conn, "CHECKPOINT", "writing the copy", err);
out:
    duckdb_disconnect(&conn);
    duckdb_close(&db);
    duckdb_free(open_err);
    umask(old);
    rd_buf_free(&sql);
    rd_buf_free(&names);
    if (st != RD_OK) {
        unlink(dest);
        rd_buf wal = RD_BUF_INIT;
        rd_buf_printf(&wal, "%s.wal", dest);
        if (!rd_buf_failed(&wal))
            unlink(wal.data);
        rd_buf_free(&wal);
    }
    return st;
}

/* ---- a file's tables ------------------------------------------------------------------------------------ */

void rd_value_tables_free(rd_value_table *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i].name);
    free(t);
}

rd_status rd_value_file_tables(const char *path, rd_value_table **out, size_t *n, rd_error *err)
{
    duckdb_config cfg = NULL;
    duckdb_database db = NULL;
    duckdb_connection conn = NULL;
    char *open_err = NULL;
    rd_value_table *t = NULL;
    size_t count = 0;
    rd_status st = RD_OK;
    duckdb_result res;
    int have_res = 0;
    if (duckdb_create_config(&cfg) != DuckDBSuccess || duckdb_set_config(cfg, "access_mode", "READ_ONLY") != DuckDBSuccess)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (duckdb_open_ext(path, &db, cfg, &open_err) != DuckDBSuccess || duckdb_connect(db, &conn) != DuckDBSuccess) {
        st = rd_error_set(err, RD_E_IO, "opening %s: %s", path, open_err ? open_err : "DuckDB cannot open it");
        goto out;
    }
    have_res = 1;
    if (duckdb_query(conn, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT starts_with("
                           "table_name, '_redduck') ORDER BY table_name", &res) != DuckDBSuccess) {
        st = rd_error_set(err, RD_E_IO, "listing the tables of %s: %s", path, duckdb_result_error(&res));
        goto out;
    }
    duckdb_data_chunk chunk;
    while (st == RD_OK && (chunk = duckdb_fetch_chunk(res)) != NULL) {
        duckdb_string_t *d = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        rd_value_table *g = realloc(t, (count + rows + 1) * sizeof *t);
        if (!g) {
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        } else {
            t = g;
            for (idx_t r = 0; r < rows && st == RD_OK; r++) {
                t[count].rows = 0;
                if (!(t[count].name = strndup(duckdb_string_t_data(&d[r]), duckdb_string_t_length(d[r]))))
                    st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
                else
                    count++;
            }
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    for (size_t i = 0; st == RD_OK && i < count; i++) {
        rd_buf sql = RD_BUF_INIT;
        rd_buf_puts(&sql, "SELECT count(*) FROM main.");
        put_ident(&sql, t[i].name);
        duckdb_result cr;
        if (rd_buf_failed(&sql)) {
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        } else if (duckdb_query(conn, sql.data, &cr) != DuckDBSuccess) {
            st = rd_error_set(err, RD_E_IO, "counting the rows of %.128s in %s: %s", t[i].name, path,
                              duckdb_result_error(&cr));
        } else {
            duckdb_data_chunk c1 = duckdb_fetch_chunk(cr);
            if (c1 && duckdb_data_chunk_get_size(c1) == 1)
                t[i].rows = (uint64_t)((const int64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(c1, 0)))[0];
            duckdb_destroy_data_chunk(&c1);
        }
        duckdb_destroy_result(&cr);
        rd_buf_free(&sql);
    }
out:
    if (have_res)
        duckdb_destroy_result(&res);
    duckdb_disconnect(&conn);
    duckdb_close(&db);
    duckdb_free(open_err);
    duckdb_destroy_config(&cfg);
    if (st != RD_OK) {
        rd_value_tables_free(t, count);
        return st;
    }
    *out = t;
    *n = count;
    return RD_OK;
}
