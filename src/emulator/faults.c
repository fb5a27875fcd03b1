/* faults.c — seeded fault injection and network shaping settings (see faults.h). */
#include "emulator/faults.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_faults[] = {
    "s3.get.reset",         "s3.get.slowdown", "s3.get.truncate",  "s3.put.slowdown", "s3.list.slowdown",
    "data.describe.throttle", "data.execute.throttle", "data.execute.fail", "data.result.throttle",
    "sts.throttle",
};
#define NFAULTS (sizeof known_faults / sizeof known_faults[0])

struct rd_emu_faults {
    uint64_t seed;
    double prob[NFAULTS];
    atomic_uint_fast64_t counter[NFAULTS];
    atomic_uint_fast64_t detail_counter;
    int latency_ms;
    uint64_t get_bandwidth;  /* bytes per second per connection; 0: unpaced */
    int get_latency_ms;      /* before each GetObject answer */
    double unload_bps;       /* UNLOAD output, bytes per second; 0: as fast as it writes */
};

#define BANDWIDTH_MIN 1e3  /* 1 KB/s */
#define BANDWIDTH_MAX 1e11 /* 100 GB/s */
#define GET_LATENCY_MAX_MS 60000
#define UNLOAD_MBPS_MIN 0.01
#define UNLOAD_MBPS_MAX 100000.0

/* A plain decimal number ("50", "1.5"; no sign, exponent, hex, inf or nan) at the start of s: *end after it.
 * -1 when there is none. */
static double plain_number(const char *s, const char **end)
{
    const char *p = s;
    int digits = 0, dot = 0;
    for (; (*p >= '0' && *p <= '9') || (*p == '.' && !dot); p++) {
        if (*p == '.')
            dot = 1;
        else
            digits++;
    }
    if (!digits || p - s > 24)
        return -1;
    char num[32];
    memcpy(num, s, (size_t)(p - s));
    num[p - s] = 0;
    *end = p;
    return strtod(num, NULL);
}

/* "50MB", "1.5GiB", "800KB/s", "2000" (bytes): bytes per second, or -1 when malformed. */
static double parse_rate(const char *v)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = { { "", 1 },     { "B", 1 },     { "KB", 1e3 },          { "kB", 1e3 },
                  { "MB", 1e6 }, { "GB", 1e9 },  { "KiB", 1024.0 },      { "MiB", 1048576.0 },
                  { "GiB", 1073741824.0 } };
    const char *unit = NULL;
    double n = plain_number(v, &unit);
    if (n < 0)
        return -1;
    size_t ulen = strlen(unit);
    if (ulen >= 2 && strcmp(unit + ulen - 2, "/s") == 0)
        ulen -= 2;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].unit) == ulen && strncmp(units[i].unit, unit, ulen) == 0)
            return n * units[i].scale;
    return -1;
}

/* The shaping entries: 1 when name is one (then *err is set on a bad value and *bad is 1). */
static int parse_shaping(rd_emu_faults *f, const char *name, const char *value, int *bad, rd_error *err)
{
    const char *end = NULL;
    if (strcmp(name, "s3.get.bandwidth") == 0) {
        double r = parse_rate(value);
        if (r < BANDWIDTH_MIN || r > BANDWIDTH_MAX) {
            *bad = 1;
            rd_error_set(err, RD_E_USAGE,
                         "--faults: '%s=%s' is not a rate from 1KB to 100GB per second (a number with B, KB, MB, "
                         "GB, KiB, MiB or GiB, e.g. s3.get.bandwidth=50MB)",
                         name, value);
        } else {
            f->get_bandwidth = (uint64_t)(r + 0.5);
        }
        return 1;
    }
    if (strcmp(name, "s3.get.latency.ms") == 0) {
        double ms = plain_number(value, &end);
        if (ms < 0 || *end || ms != (double)(long)ms || ms > GET_LATENCY_MAX_MS) {
            *bad = 1;
            rd_error_set(err, RD_E_USAGE, "--faults: '%s=%s' is not a whole number of milliseconds from 0 to %d",
                         name, value, GET_LATENCY_MAX_MS);
        } else {
            f->get_latency_ms = (int)ms;
        }
        return 1;
    }
    if (strcmp(name, "unload.mbps") == 0) {
        double mbps = plain_number(value, &end);
        if (mbps < 0 || *end || mbps < UNLOAD_MBPS_MIN || mbps > UNLOAD_MBPS_MAX) {
            *bad = 1;
            rd_error_set(err, RD_E_USAGE, "--faults: '%s=%s' is not a number of MB (10^6 bytes) per second from "
                         "0.01 to 100000",
                         name, value);
        } else {
            f->unload_bps = mbps * 1e6;
        }
        return 1;
    }
    return 0;
}

static int fault_index(const char *name)
{
    for (size_t i = 0; i < NFAULTS; i++)
        if (strcmp(known_faults[i], name) == 0)
            return (int)i;
    return -1;
}

rd_status rd_emu_faults_parse(const char *spec, uint64_t seed, rd_emu_faults **out, rd_error *err)
{
    rd_emu_faults *f = calloc(1, sizeof *f);
    if (!f)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    f->seed = seed;
    for (size_t i = 0; i < NFAULTS; i++)
        atomic_init(&f->counter[i], 0);
    atomic_init(&f->detail_counter, 0);
    char *copy = strdup(spec ? spec : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        char *eq = strchr(tok, '=');
        if (!eq) {
            rd_error_set(err, RD_E_USAGE, "--faults: '%s' needs =VALUE (e.g. s3.get.reset=0.05)", tok);
            goto bad;
        }
        *eq = '\0';
        int bad = 0;
        if (parse_shaping(f, tok, eq + 1, &bad, err)) {
            if (bad)
                goto bad;
            continue;
        }
        int idx = fault_index(tok), is_latency = strcmp(tok, "latency.ms") == 0;
        if (idx < 0 && !is_latency) {
            rd_error_set(err, RD_E_USAGE,
                         "--faults: unknown fault '%s' (known: s3.get.reset, s3.get.slowdown, s3.get.truncate, "
                         "s3.put.slowdown, s3.list.slowdown, data.describe.throttle, data.execute.throttle, "
                         "data.execute.fail, data.result.throttle, sts.throttle, latency.ms, s3.get.bandwidth, "
                         "s3.get.latency.ms, unload.mbps)",
                         tok);
            goto bad;
        }
        /* plain decimals only: strtod's "nan", "inf" and exponents would slip past the bounds (or overflow
         * the int a delay becomes) */
        const char *end = NULL;
        double v = plain_number(eq + 1, &end);
        if (is_latency) {
            if (v < 0 || *end || v != (double)(long)v || v > GET_LATENCY_MAX_MS) {
                rd_error_set(err, RD_E_USAGE, "--faults: 'latency.ms=%s' is not a whole number of milliseconds "
                             "from 0 to %d", eq + 1, GET_LATENCY_MAX_MS);
                goto bad;
            }
            f->latency_ms = (int)v;
            continue;
        }
        if (v < 0 || *end || v > 1) {
            rd_error_set(err, RD_E_USAGE, "--faults: '%s=%s' is not a probability between 0 and 1 (e.g. %s=0.1)", tok,
                         eq + 1, tok);
            goto bad;
        }
        f->prob[idx] = v;
    }
    free(copy);
    *out = f;
    return RD_OK;
bad:
    free(copy);
    free(f);
    return RD_E_USAGE;
}

void rd_emu_faults_free(rd_emu_faults *f)
{
    free(f);
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int rd_emu_faults_draw(rd_emu_faults *f, const char *name)
{
    if (!f)
        return 0;
    int idx = fault_index(name);
    if (idx < 0 || f->prob[idx] <= 0)
        return 0;
    uint64_t n = atomic_fetch_add(&f->counter[idx], 1);
    uint64_t r = splitmix64(f->seed ^ name_hash(name) ^ splitmix64(n));
    double u = (double)(r >> 11) / (double)(1ULL << 53);
    return u < f->prob[idx];
}

int rd_emu_faults_latency_ms(const rd_emu_faults *f)
{
    return f ? f->latency_ms : 0;
}

uint64_t rd_emu_faults_get_bandwidth(const rd_emu_faults *f)
{
    return f ? f->get_bandwidth : 0;
}

int rd_emu_faults_get_latency_ms(const rd_emu_faults *f)
{
    return f ? f->get_latency_ms : 0;
}

double rd_emu_faults_unload_bytes_per_second(const rd_emu_faults *f)
{
    return f ? f->unload_bps : 0;
}

int rd_emu_faults_shaping(const rd_emu_faults *f)
{
    return f && (f->get_bandwidth > 0 || f->get_latency_ms > 0);
}

uint64_t rd_emu_faults_uniform(rd_emu_faults *f, const char *name, uint64_t bound)
{
    if (!f || bound == 0)
        return 0;
    uint64_t n = atomic_fetch_add(&f->detail_counter, 1);
    return splitmix64(f->seed ^ name_hash(name) ^ splitmix64(n + 0x5151)) % bound;
}
