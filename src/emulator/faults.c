/* faults.c — seeded fault injection (see faults.h). */
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
};

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
        char *end = NULL;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1 || *end || v < 0) {
            rd_error_set(err, RD_E_USAGE, "--faults: '%s' has a bad value '%s'", tok, eq + 1);
            goto bad;
        }
        if (strcmp(tok, "latency.ms") == 0) {
            f->latency_ms = (int)v;
            continue;
        }
        int idx = fault_index(tok);
        if (idx < 0 || v > 1) {
            rd_error_set(err, RD_E_USAGE,
                         idx < 0 ? "--faults: unknown fault '%s' (known: s3.get.reset, s3.get.slowdown, "
                                   "s3.get.truncate, s3.put.slowdown, s3.list.slowdown, data.describe.throttle, "
                                   "data.execute.throttle, data.execute.fail, data.result.throttle, sts.throttle, "
                                   "latency.ms)"
                                 : "--faults: '%s' is a probability between 0 and 1",
                         tok);
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

uint64_t rd_emu_faults_uniform(rd_emu_faults *f, const char *name, uint64_t bound)
{
    if (!f || bound == 0)
        return 0;
    uint64_t n = atomic_fetch_add(&f->detail_counter, 1);
    return splitmix64(f->seed ^ name_hash(name) ^ splitmix64(n + 0x5151)) % bound;
}
