/* parquet.c — see parquet.h. Layout: "PAR1", then per row group and column one column chunk of data pages
 * (a Thrift PageHeader, then the Snappy-compressed page: the definition levels' length and RLE runs, then the
 * PLAIN values), then the FileMetaData in Thrift's compact protocol, its length and "PAR1". */
#include "emulator/redshift/parquet.h"

#ifdef RD_HAVE_DUCKDB

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emulator/redshift/snappy.h"

#define RD_PQ_PAGE_BYTES (1024 * 1024) /* values per page, about */
#define RD_PQ_JULIAN_EPOCH 2440588      /* the Julian day of 1970-01-01 */

/* Parquet's enums (parquet.thrift) */
enum { PQ_BOOLEAN = 0, PQ_INT32 = 1, PQ_INT64 = 2, PQ_INT96 = 3, PQ_FLOAT = 4, PQ_DOUBLE = 5, PQ_BYTE_ARRAY = 6,
       PQ_FLBA = 7 };
enum { PQ_CT_UTF8 = 0, PQ_CT_DECIMAL = 5, PQ_CT_DATE = 6, PQ_CT_INT_16 = 16 };
enum { PQ_ENC_PLAIN = 0, PQ_ENC_RLE = 3 };
enum { PQ_CODEC_SNAPPY = 1 };
enum { PQ_OPTIONAL = 1 };
/* Thrift compact types */
enum { T_TRUE = 1, T_FALSE = 2, T_BYTE = 3, T_I32 = 5, T_I64 = 6, T_BINARY = 8, T_LIST = 9, T_STRUCT = 12 };

/* A growing byte buffer of the writer's own (the per-value appends are the hot path). */
typedef struct gbuf {
    uint8_t *p;
    size_t len, cap;
} gbuf;

static int gb_reserve(gbuf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

typedef struct pq_chunk_meta {
    int64_t offset, uncompressed, compressed, values;
    int64_t nulls;
    int has_range;     /* integer columns (INT32 without a decimal, INT64): min and max below */
    int64_t min, max;
} pq_chunk_meta;

typedef struct pq_col {
    rd_emu_pq_column c;
    int physical, type_length;
    gbuf vals;  /* PLAIN values of the row group (BOOLEAN: a byte each, packed when the page is written) */
    gbuf defs;  /* a byte per row: 1 valid, 0 NULL */
    int64_t nulls; /* NULLs among them */
    size_t page_rows, page_vals; /* where the open page starts in defs and vals */
    size_t npages;               /* pages of the row group handed to the compressor */
    /* the compressor's: the row group's pages, each a PageHeader and its compressed bytes; the bytes those
     * would take uncompressed. The main thread reads them only after pq_drain. */
    gbuf out;
    int64_t out_uncompressed;
    pq_chunk_meta *chunks;       /* one per row group written */
} pq_col;

struct rd_emu_pq_writer {
    int fd;
    uint64_t offset; /* bytes written */
    pq_col *cols;
    size_t ncols;
    uint64_t row_group_bytes;
    size_t rg_rows; /* rows held */
    int64_t rows;   /* rows written or held */
    struct { int64_t rows, bytes; } *rgs; /* the row groups written: rows, uncompressed bytes */
    size_t nrg;
    /* The compressor: a thread that Snappy-compresses each page, closed by the main thread, while the main
     * thread goes on appending rows (no thread: the main thread compresses). jobs/njobs/failed/stop under mu;
     * njobs counts the queued and the one being compressed. */
    pthread_t thread;
    int have_thread;
    pthread_mutex_t mu;
    pthread_cond_t more, done;
    struct pq_job *jobs, *jobs_tail;
    size_t njobs;
    int failed, stop;
    gbuf comp, head; /* the compressor's scratch */
};

/* A closed page, uncompressed: its definition levels and values. */
typedef struct pq_job {
    struct pq_job *next;
    pq_col *c;
    gbuf raw;
    size_t rows;
} pq_job;

#define RD_PQ_MAX_JOBS 4 /* pages queued before the main thread waits: about 4 MiB */

static void *compressor(void *arg);

int rd_emu_pq_supported(duckdb_type t)
{
    switch (t) {
    case DUCKDB_TYPE_BOOLEAN:
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_DECIMAL:
    case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_DATE:
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ: return 1;
    default: return 0;
    }
}

/* The fewest bytes of a two's complement integer that hold every number of p decimal digits. */
static int decimal_bytes(int p)
{
    double bits = p * 3.321928094887362 + 1; /* log2(10^p) and the sign */
    int n = (int)(bits / 8);
    return n * 8 < bits ? n + 1 : n;
}

/* --- Thrift's compact protocol, written --- */
typedef struct tw {
    gbuf *b;
    int bad;
    int depth;
    int16_t last[8]; /* the last field id of each open struct */
} tw;

static void tw_byte(tw *t, uint8_t v)
{
    if (gb_reserve(t->b, 1) != 0) {
        t->bad = 1;
        return;
    }
    t->b->p[t->b->len++] = v;
}

static void tw_varint(tw *t, uint64_t v)
{
    while (v >= 0x80) {
        tw_byte(t, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    tw_byte(t, (uint8_t)v);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void tw_field(tw *t, int16_t id, int type)
{
    int delta = id - t->last[t->depth];
    if (delta > 0 && delta <= 15) {
        tw_byte(t, (uint8_t)(delta << 4 | type));
    } else {
        tw_byte(t, (uint8_t)type);
        tw_varint(t, zigzag(id));
    }
    t->last[t->depth] = id;
}

static void tw_i32(tw *t, int16_t id, int32_t v)
{
    tw_field(t, id, T_I32);
    tw_varint(t, zigzag(v));
}

static void tw_i64(tw *t, int16_t id, int64_t v)
{
    tw_field(t, id, T_I64);
    tw_varint(t, zigzag(v));
}

static void tw_bytes_value(tw *t, const void *p, size_t n) /* a binary's length, then its bytes */
{
    tw_varint(t, n);
    if (gb_reserve(t->b, n) != 0) {
        t->bad = 1;
        return;
    }
    memcpy(t->b->p + t->b->len, p, n);
    t->b->len += n;
}

static void tw_string_value(tw *t, const char *s)
{
    tw_bytes_value(t, s, strlen(s));
}

static void tw_binary(tw *t, int16_t id, const uint8_t *p, size_t n)
{
    tw_field(t, id, T_BINARY);
    tw_bytes_value(t, p, n);
}

static void tw_string(tw *t, int16_t id, const char *s)
{
    tw_field(t, id, T_BINARY);
    tw_string_value(t, s);
}

static void tw_begin(tw *t) /* a struct: as a field's value (after tw_field) or a list's element */
{
    t->last[++t->depth] = 0;
}

static void tw_struct(tw *t, int16_t id)
{
    tw_field(t, id, T_STRUCT);
    tw_begin(t);
}

static void tw_end(tw *t)
{
    tw_byte(t, 0);
    t->depth--;
}

static void tw_list(tw *t, int16_t id, int elem, size_t n)
{
    tw_field(t, id, T_LIST);
    if (n < 15) {
        tw_byte(t, (uint8_t)(n << 4 | (size_t)elem));
    } else {
        tw_byte(t, (uint8_t)(0xF0 | elem));
        tw_varint(t, n);
    }
}

/* --- writing --- */
static rd_status write_all(rd_emu_pq_writer *w, const void *p, size_t n, rd_error *err)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return rd_error_set(err, RD_E_IO, "ERROR: UNLOAD could not write its temporary file: %s",
                                k < 0 ? strerror(errno) : "short write");
        b += k;
        n -= (size_t)k;
        w->offset += (uint64_t)k;
    }
    return RD_OK;
}

static void col_physical(pq_col *c)
{
    switch (c->c.type) {
    case DUCKDB_TYPE_BOOLEAN: c->physical = PQ_BOOLEAN; break;
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_DATE: c->physical = PQ_INT32; break;
    case DUCKDB_TYPE_BIGINT: c->physical = PQ_INT64; break;
    case DUCKDB_TYPE_FLOAT: c->physical = PQ_FLOAT; break;
    case DUCKDB_TYPE_DOUBLE: c->physical = PQ_DOUBLE; break;
    case DUCKDB_TYPE_DECIMAL:
        c->physical = PQ_FLBA;
        c->type_length = decimal_bytes(c->c.precision);
        break;
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ: c->physical = PQ_INT96; break;
    default: c->physical = PQ_BYTE_ARRAY; break;
    }
}

rd_status rd_emu_pq_open(rd_emu_pq_writer **out, const char *path, const rd_emu_pq_column *cols, size_t ncols,
                         uint64_t row_group_bytes, rd_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < ncols; i++)
        if (!rd_emu_pq_supported(cols[i].type))
            return rd_error_set(err, RD_E_INTERNAL, "ERROR: UNLOAD cannot write column \"%s\" to Parquet",
                                cols[i].name);
    rd_emu_pq_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->cols = calloc(ncols ? ncols : 1, sizeof *w->cols))) {
        free(w);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    w->ncols = ncols;
    w->fd = -1;
    w->row_group_bytes = row_group_bytes ? row_group_bytes : RD_EMU_PQ_ROW_GROUP_DEFAULT;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->more, NULL);
    pthread_cond_init(&w->done, NULL);
    w->have_thread = pthread_create(&w->thread, NULL, compressor, w) == 0; /* else: compressed inline */
    for (size_t i = 0; i < ncols; i++) {
        w->cols[i].c = cols[i];
        col_physical(&w->cols[i]);
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        rd_status st = rd_error_set(err, RD_E_IO, "ERROR: UNLOAD could not create its temporary file: %s",
                                    strerror(errno));
        rd_emu_pq_discard(w);
        return st;
    }
    rd_status st = write_all(w, "PAR1", 4, err);
    if (st != RD_OK) {
        rd_emu_pq_discard(w);
        return st;
    }
    *out = w;
    return RD_OK;
}

static size_t held_bytes(const rd_emu_pq_writer *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->ncols; i++)
        n += w->cols[i].vals.len + w->cols[i].defs.len / 4;
    return n;
}

uint64_t rd_emu_pq_size_bound(const rd_emu_pq_writer *w)
{
    size_t held = held_bytes(w);
    /* Snappy may grow a page by a sixth plus 32 bytes; each page has a header; the footer grows per column */
    return w->offset + held + held / 6 + (uint64_t)w->ncols * (64 + 32 * (held / RD_PQ_PAGE_BYTES + 1)) +
           (uint64_t)(w->nrg + 1) * w->ncols * 64 + 256;
}

int64_t rd_emu_pq_rows(const rd_emu_pq_writer *w)
{
    return w->rows;
}

static int store_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return n;
}

/* The definition levels of rows [r0, r1) as RLE runs (bit width 1), after their 4-byte length. */
static int put_levels(gbuf *page, const uint8_t *defs, size_t r0, size_t r1)
{
    if (gb_reserve(page, 4 + (r1 - r0) * 6 + 16) != 0)
        return -1;
    size_t at = page->len;
    page->len += 4;
    for (size_t r = r0; r < r1;) {
        size_t e = r + 1;
        while (e < r1 && defs[e] == defs[r])
            e++;
        uint64_t h = (uint64_t)(e - r) << 1;
        while (h >= 0x80) {
            page->p[page->len++] = (uint8_t)(h | 0x80);
            h >>= 7;
        }
        page->p[page->len++] = (uint8_t)h;
        page->p[page->len++] = defs[r];
        r = e;
    }
    store_le(page->p + at, page->len - at - 4, 4);
    return 0;
}

/* The min and max of an integer column's held values (the row group's statistics; signed order, as the
 * physical types sort). */
static void chunk_range(const pq_col *c, pq_chunk_meta *m)
{
    m->has_range = 0;
    size_t width = c->physical == PQ_INT64 ? 8 : c->physical == PQ_INT32 ? 4 : 0;
    if (!width || c->vals.len == 0)
        return;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t off = 0; off + width <= c->vals.len; off += width) {
        int64_t v;
        if (width == 8) {
            memcpy(&v, c->vals.p + off, 8);
        } else {
            int32_t v32;
            memcpy(&v32, c->vals.p + off, 4);
            v = v32;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    m->has_range = 1;
    m->min = lo;
    m->max = hi;
}

/* Compresses a page into its column's out: a PageHeader, then the Snappy bytes. -1 when out of memory. */
static int compress_job(rd_emu_pq_writer *w, pq_job *job)
{
    pq_col *c = job->c;
    w->comp.len = 0;
    if (gb_reserve(&w->comp, rd_emu_snappy_max_compressed(job->raw.len)) != 0)
        return -1;
    w->comp.len = rd_emu_snappy_compress(job->raw.p, job->raw.len, w->comp.p);
    w->head.len = 0;
    tw t = { .b = &w->head };
    tw_i32(&t, 1, 0); /* DATA_PAGE */
    tw_i32(&t, 2, (int32_t)job->raw.len);
    tw_i32(&t, 3, (int32_t)w->comp.len);
    tw_struct(&t, 5);
    tw_i32(&t, 1, (int32_t)job->rows);
    tw_i32(&t, 2, PQ_ENC_PLAIN);
    tw_i32(&t, 3, PQ_ENC_RLE);
    tw_i32(&t, 4, PQ_ENC_RLE);
    tw_end(&t);
    tw_byte(&t, 0);
    if (t.bad || gb_reserve(&c->out, w->head.len + w->comp.len) != 0)
        return -1;
    memcpy(c->out.p + c->out.len, w->head.p, w->head.len);
    memcpy(c->out.p + c->out.len + w->head.len, w->comp.p, w->comp.len);
    c->out.len += w->head.len + w->comp.len;
    c->out_uncompressed += (int64_t)(w->head.len + job->raw.len);
    return 0;
}

static void *compressor(void *arg)
{
    rd_emu_pq_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->jobs && !w->stop)
            pthread_cond_wait(&w->more, &w->mu);
        if (!w->jobs)
            break;
        pq_job *job = w->jobs;
        w->jobs = job->next;
        if (!w->jobs)
            w->jobs_tail = NULL;
        pthread_mutex_unlock(&w->mu);
        int bad = compress_job(w, job);
        free(job->raw.p);
        free(job);
        pthread_mutex_lock(&w->mu);
        if (bad)
            w->failed = 1;
        w->njobs--;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Hands a page to the compressor (waiting while RD_PQ_MAX_JOBS are queued), or compresses it here without
 * one. Takes job. -1 when out of memory. */
static int pq_submit(rd_emu_pq_writer *w, pq_job *job)
{
    if (!w->have_thread) {
        int bad = compress_job(w, job);
        free(job->raw.p);
        free(job);
        return bad;
    }
    pthread_mutex_lock(&w->mu);
    while (w->njobs >= RD_PQ_MAX_JOBS)
        pthread_cond_wait(&w->done, &w->mu);
    if (w->jobs_tail)
        w->jobs_tail->next = job;
    else
        w->jobs = job;
    w->jobs_tail = job;
    w->njobs++;
    pthread_cond_signal(&w->more);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Waits until every page handed over is compressed; -1 when one could not be. */
static int pq_drain(rd_emu_pq_writer *w)
{
    if (!w->have_thread)
        return 0;
    pthread_mutex_lock(&w->mu);
    while (w->njobs > 0)
        pthread_cond_wait(&w->done, &w->mu);
    int bad = w->failed;
    pthread_mutex_unlock(&w->mu);
    return bad ? -1 : 0;
}

/* Closes column c's open page (rows page_rows..rg_rows of the row group) and hands it over. */
static int close_page(rd_emu_pq_writer *w, pq_col *c)
{
    size_t r0 = c->page_rows, r1 = w->rg_rows, v0 = c->page_vals, v1 = c->vals.len;
    pq_job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->c = c;
    job->rows = r1 - r0;
    gbuf *pg = &job->raw;
    int bad = put_levels(pg, c->defs.p, r0, r1);
    if (!bad && c->physical == PQ_BOOLEAN) { /* bit-packed, first value in the lowest bit */
        size_t n = v1 - v0;
        bad = gb_reserve(pg, n / 8 + 1);
        if (!bad) {
            memset(pg->p + pg->len, 0, n / 8 + 1);
            for (size_t k = 0; k < n; k++)
                pg->p[pg->len + k / 8] |= (uint8_t)(c->vals.p[v0 + k] << (k % 8));
            pg->len += (n + 7) / 8;
        }
    } else if (!bad) {
        bad = gb_reserve(pg, v1 - v0 + 1);
        if (!bad && v1 > v0) { /* a page of NULLs only has no values (and vals may be unallocated) */
            memcpy(pg->p + pg->len, c->vals.p + v0, v1 - v0);
            pg->len += v1 - v0;
        }
    }
    if (bad) {
        free(pg->p);
        free(job);
        return -1;
    }
    c->page_rows = r1;
    c->page_vals = v1;
    c->npages++;
    return pq_submit(w, job);
}

/* Writes the held rows as one row group: the open pages closed, every page compressed, then each column's
 * chunk written. */
static rd_status flush_row_group(rd_emu_pq_writer *w, rd_error *err)
{
    if (w->rg_rows == 0)
        return RD_OK;
    for (size_t i = 0; i < w->ncols; i++) {
        pq_col *c = &w->cols[i];
        if ((c->page_rows < w->rg_rows || c->npages == 0) && close_page(w, c) != 0)
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    if (pq_drain(w) != 0)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    int64_t rg_total = 0;
    for (size_t i = 0; i < w->ncols; i++) {
        pq_col *c = &w->cols[i];
        pq_chunk_meta *nm = realloc(c->chunks, (w->nrg + 1) * sizeof *nm);
        if (!nm)
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        c->chunks = nm;
        pq_chunk_meta *m = &c->chunks[w->nrg];
        m->offset = (int64_t)w->offset;
        m->values = (int64_t)w->rg_rows;
        m->nulls = c->nulls;
        chunk_range(c, m);
        rd_status st = write_all(w, c->out.p, c->out.len, err);
        if (st != RD_OK)
            return st;
        m->uncompressed = c->out_uncompressed;
        m->compressed = (int64_t)c->out.len;
        rg_total += m->uncompressed;
        c->vals.len = c->defs.len = c->out.len = 0;
        c->nulls = 0;
        c->out_uncompressed = 0;
        c->npages = 0;
        c->page_rows = c->page_vals = 0;
    }
    void *nr = realloc(w->rgs, (w->nrg + 1) * sizeof *w->rgs);
    if (!nr)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    w->rgs = nr;
    w->rgs[w->nrg].rows = (int64_t)w->rg_rows;
    w->rgs[w->nrg].bytes = rg_total;
    w->nrg++;
    w->rg_rows = 0;
    return RD_OK;
}

static int valid_at(const uint64_t *mask, idx_t row) /* duckdb_validity_row_is_valid, inlined */
{
    return !mask || (int)((mask[row >> 6] >> (row & 63)) & 1);
}

/* Appends rows [from, from+count) of vector v to column c. */
static int append_column(pq_col *c, duckdb_vector v, idx_t from, idx_t count)
{
    const uint64_t *mask = duckdb_vector_get_validity(v);
    const void *data = duckdb_vector_get_data(v);
    if (gb_reserve(&c->defs, count) != 0)
        return -1;
    uint8_t *defs = c->defs.p + c->defs.len;
    size_t valid = 0;
    if (!mask) {
        memset(defs, 1, count);
        valid = count;
    } else {
        for (idx_t k = 0; k < count; k++) {
            defs[k] = (uint8_t)valid_at(mask, from + k);
            valid += defs[k];
        }
    }
    c->defs.len += count;
    c->nulls += (int64_t)(count - valid);
    size_t width = c->physical == PQ_BYTE_ARRAY ? 0
                   : c->physical == PQ_BOOLEAN  ? 1
                   : c->physical == PQ_FLBA     ? (size_t)c->type_length
                   : c->physical == PQ_INT96    ? 12
                   : c->physical == PQ_INT64 || c->physical == PQ_DOUBLE ? 8
                                                                         : 4;
    if (width && gb_reserve(&c->vals, valid * width) != 0)
        return -1;
    uint8_t *o = c->vals.p + c->vals.len;
    for (idx_t k = 0; k < count; k++) {
        if (!defs[k])
            continue;
        idx_t r = from + k;
        switch (c->c.type) {
        case DUCKDB_TYPE_BOOLEAN: *o++ = ((const bool *)data)[r] ? 1 : 0; break;
        case DUCKDB_TYPE_TINYINT: o += store_le(o, (uint32_t)(int32_t)((const int8_t *)data)[r], 4); break;
        case DUCKDB_TYPE_SMALLINT: o += store_le(o, (uint32_t)(int32_t)((const int16_t *)data)[r], 4); break;
        case DUCKDB_TYPE_INTEGER:
        case DUCKDB_TYPE_DATE:
        case DUCKDB_TYPE_FLOAT: memcpy(o, (const uint8_t *)data + r * 4, 4); o += 4; break;
        case DUCKDB_TYPE_BIGINT:
        case DUCKDB_TYPE_DOUBLE: memcpy(o, (const uint8_t *)data + r * 8, 8); o += 8; break;
        case DUCKDB_TYPE_TIMESTAMP:
        case DUCKDB_TYPE_TIMESTAMP_TZ: {
            int64_t us = ((const int64_t *)data)[r];
            int64_t day = us / 86400000000LL, rem = us % 86400000000LL;
            if (rem < 0) {
                rem += 86400000000LL;
                day--;
            }
            o += store_le(o, (uint64_t)(rem * 1000), 8);
            o += store_le(o, (uint32_t)(int32_t)(day + RD_PQ_JULIAN_EPOCH), 4);
            break;
        }
        case DUCKDB_TYPE_DECIMAL: {
            uint64_t lo = 0;
            int64_t hi = 0;
            if (c->c.storage == DUCKDB_TYPE_HUGEINT) {
                duckdb_hugeint h = ((const duckdb_hugeint *)data)[r];
                lo = h.lower;
                hi = h.upper;
            } else {
                int64_t x = c->c.storage == DUCKDB_TYPE_SMALLINT  ? ((const int16_t *)data)[r]
                            : c->c.storage == DUCKDB_TYPE_INTEGER ? ((const int32_t *)data)[r]
                                                                  : ((const int64_t *)data)[r];
                lo = (uint64_t)x;
                hi = x < 0 ? -1 : 0;
            }
            for (int b = c->type_length - 1; b >= 0; b--, o++) /* big-endian: the lowest byte last */
                *o = (uint8_t)(b >= 8 ? (uint64_t)hi >> (8 * (b - 8)) : lo >> (8 * b));
            break;
        }
        default: { /* VARCHAR */
            duckdb_string_t *s = (duckdb_string_t *)data + r;
            uint32_t n = duckdb_string_t_length(*s);
            if (gb_reserve(&c->vals, 4 + (size_t)n) != 0)
                return -1;
            o = c->vals.p + c->vals.len;
            store_le(o, n, 4);
            memcpy(o + 4, duckdb_string_t_data(s), n);
            c->vals.len += 4 + (size_t)n;
            continue;
        }
        }
    }
    if (width)
        c->vals.len = (size_t)(o - c->vals.p);
    return 0;
}

rd_status rd_emu_pq_write(rd_emu_pq_writer *w, duckdb_data_chunk chunk, idx_t from, idx_t count, rd_error *err)
{
    if (count == 0)
        return RD_OK;
    for (size_t i = 0; i < w->ncols; i++) {
        pq_col *c = &w->cols[i];
        if (append_column(c, duckdb_data_chunk_get_vector(chunk, (idx_t)i), from, count) != 0)
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    w->rg_rows += count;
    w->rows += (int64_t)count;
    for (size_t i = 0; i < w->ncols; i++) { /* a page closes at about RD_PQ_PAGE_BYTES of values */
        pq_col *c = &w->cols[i];
        if (c->vals.len - c->page_vals < RD_PQ_PAGE_BYTES && w->rg_rows - c->page_rows < 1000000)
            continue;
        if (close_page(w, c) != 0)
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    if (held_bytes(w) >= w->row_group_bytes)
        return flush_row_group(w, err);
    return RD_OK;
}

/* A schema element's converted type and its logical type of no fields (the union's member `member`). */
static void annotate(tw *t, int converted, int16_t member)
{
    tw_i32(t, 6, converted);
    tw_struct(t, 10);
    tw_struct(t, member);
    tw_end(t);
    tw_end(t);
}

/* The footer: FileMetaData. */
static int footer(rd_emu_pq_writer *w, gbuf *b)
{
    tw t = { .b = b };
    tw_i32(&t, 1, 1);
    tw_list(&t, 2, T_STRUCT, w->ncols + 1);
    tw_begin(&t); /* the root */
    tw_string(&t, 4, "schema");
    tw_i32(&t, 5, (int32_t)w->ncols);
    tw_end(&t);
    for (size_t i = 0; i < w->ncols; i++) {
        pq_col *c = &w->cols[i];
        tw_begin(&t);
        tw_i32(&t, 1, c->physical);
        if (c->physical == PQ_FLBA)
            tw_i32(&t, 2, c->type_length);
        tw_i32(&t, 3, PQ_OPTIONAL);
        tw_string(&t, 4, c->c.name);
        switch (c->c.type) {
        case DUCKDB_TYPE_TINYINT:
        case DUCKDB_TYPE_SMALLINT:
            tw_i32(&t, 6, PQ_CT_INT_16);
            tw_struct(&t, 10);
            tw_struct(&t, 10); /* INTEGER */
            tw_field(&t, 1, T_BYTE);
            tw_byte(&t, 16);
            tw_field(&t, 2, T_TRUE);
            tw_end(&t);
            tw_end(&t);
            break;
        case DUCKDB_TYPE_DECIMAL:
            tw_i32(&t, 6, PQ_CT_DECIMAL);
            tw_i32(&t, 7, c->c.scale);
            tw_i32(&t, 8, c->c.precision);
            tw_struct(&t, 10);
            tw_struct(&t, 5); /* DECIMAL */
            tw_i32(&t, 1, c->c.scale);
            tw_i32(&t, 2, c->c.precision);
            tw_end(&t);
            tw_end(&t);
            break;
        case DUCKDB_TYPE_DATE: annotate(&t, PQ_CT_DATE, 6); break;      /* LogicalType DATE */
        case DUCKDB_TYPE_VARCHAR: annotate(&t, PQ_CT_UTF8, 1); break;   /* LogicalType STRING */
        default: break;
        }
        tw_end(&t);
    }
    tw_i64(&t, 3, w->rows);
    tw_list(&t, 4, T_STRUCT, w->nrg);
    for (size_t g = 0; g < w->nrg; g++) {
        tw_begin(&t);
        tw_list(&t, 1, T_STRUCT, w->ncols);
        for (size_t i = 0; i < w->ncols; i++) {
            pq_col *c = &w->cols[i];
            pq_chunk_meta *m = &c->chunks[g];
            tw_begin(&t);
            tw_i64(&t, 2, m->offset);
            tw_struct(&t, 3);
            tw_i32(&t, 1, c->physical);
            tw_list(&t, 2, T_I32, 2);
            tw_varint(&t, zigzag(PQ_ENC_PLAIN));
            tw_varint(&t, zigzag(PQ_ENC_RLE));
            tw_list(&t, 3, T_BINARY, 1);
            tw_string_value(&t, c->c.name);
            tw_i32(&t, 4, PQ_CODEC_SNAPPY);
            tw_i64(&t, 5, m->values);
            tw_i64(&t, 6, m->uncompressed);
            tw_i64(&t, 7, m->compressed);
            tw_i64(&t, 9, m->offset);
            tw_struct(&t, 12); /* Statistics: null_count, and max_value and min_value of integers */
            tw_i64(&t, 3, m->nulls);
            if (m->has_range) {
                uint8_t lo[8], hi[8];
                int n = store_le(lo, (uint64_t)m->min, c->physical == PQ_INT64 ? 8 : 4);
                store_le(hi, (uint64_t)m->max, n);
                tw_binary(&t, 5, hi, (size_t)n);
                tw_binary(&t, 6, lo, (size_t)n);
            }
            tw_end(&t);
            tw_end(&t);
            tw_end(&t);
        }
        tw_i64(&t, 2, w->rgs[g].bytes);
        tw_i64(&t, 3, w->rgs[g].rows);
        tw_end(&t);
    }
    tw_string(&t, 6, "redduck emulator (Redshift UNLOAD)");
    tw_byte(&t, 0);
    return t.bad ? -1 : 0;
}

rd_status rd_emu_pq_close(rd_emu_pq_writer *w, uint64_t *size, rd_error *err)
{
    rd_status st = flush_row_group(w, err);
    gbuf f = { 0 };
    if (st == RD_OK && footer(w, &f) != 0)
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (st == RD_OK && gb_reserve(&f, 8) != 0)
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (st == RD_OK) {
        size_t n = f.len;
        store_le(f.p + f.len, n, 4);
        memcpy(f.p + f.len + 4, "PAR1", 4);
        f.len += 8;
        st = write_all(w, f.p, f.len, err);
    }
    free(f.p);
    if (st == RD_OK && close(w->fd) != 0)
        st = rd_error_set(err, RD_E_IO, "ERROR: UNLOAD could not write its temporary file: %s", strerror(errno));
    w->fd = -1;
    if (st == RD_OK)
        *size = w->offset;
    rd_emu_pq_discard(w);
    return st;
}

void rd_emu_pq_discard(rd_emu_pq_writer *w)
{
    if (!w)
        return;
    if (w->have_thread) { /* the queued pages are compressed, for nothing, before the thread ends */
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->more);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->more);
    pthread_cond_destroy(&w->done);
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->ncols; i++) {
        free(w->cols[i].vals.p);
        free(w->cols[i].defs.p);
        free(w->cols[i].out.p);
        free(w->cols[i].chunks);
    }
    free(w->cols);
    free(w->rgs);
    free(w->comp.p);
    free(w->head.p);
    free(w);
}

#endif
