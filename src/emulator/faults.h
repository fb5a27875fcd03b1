/* faults.h — seeded fault injection for the emulator: a spec such as
 * "s3.get.reset=0.05,s3.get.slowdown=0.02,s3.get.truncate=0.01,data.describe.throttle=0.1,
 *  data.execute.fail=0,latency.ms=20" gives each named fault a probability (latency.ms a delay).
 * Draws are reproducible: the n-th draw of a fault name depends only on (seed, name, n).
 * Thread-safe (atomic counters). */
#ifndef RD_EMULATOR_FAULTS_H
#define RD_EMULATOR_FAULTS_H

#include <stdint.h>

#include "redduck/error.h"

typedef struct rd_emu_faults rd_emu_faults;

/* spec NULL or "" → no faults. Unknown names or bad numbers → RD_E_USAGE naming the entry. */
rd_status rd_emu_faults_parse(const char *spec, uint64_t seed, rd_emu_faults **out, rd_error *err);
void rd_emu_faults_free(rd_emu_faults *f);
/* 1 if this draw of the named fault fires. f may be NULL (never). */
int rd_emu_faults_draw(rd_emu_faults *f, const char *name);
/* Added latency in ms (0 when none). */
int rd_emu_faults_latency_ms(const rd_emu_faults *f);
/* A reproducible number in [0, bound) for fault details (where to cut a body). */
uint64_t rd_emu_faults_uniform(rd_emu_faults *f, const char *name, uint64_t bound);

#endif
