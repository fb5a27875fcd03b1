/* faults.h — seeded fault injection for the emulator: a spec such as
 * "s3.get.reset=0.05,s3.get.slowdown=0.02,s3.get.truncate=0.01,data.describe.throttle=0.1,
 *  data.execute.fail=0,latency.ms=20" gives each named fault a probability (latency.ms a delay).
 * Draws are reproducible: the n-th draw of a fault name depends only on (seed, name, n).
 * The same spec carries network shaping, so that loopback behaves like a real S3 and Redshift:
 *   s3.get.bandwidth=50MB  each connection's GetObject body paced to this many bytes per second (B, KB, MB, GB
 *                          in steps of 10^3, KiB, MiB, GiB; an optional "/s"; 1KB to 100GB)
 *   s3.get.latency.ms=30   a delay before each GetObject answer's first byte (0 to 60000)
 *   unload.mbps=200        UNLOAD's output in MB (10^6 bytes) per second over the statement: a part file
 *                          appears no sooner than its cumulative bytes / rate after the UNLOAD began (0.01 to
 *                          100000)
 * Thread-safe (atomic counters; the settings are read-only after parse). */
#ifndef RD_EMULATOR_FAULTS_H
#define RD_EMULATOR_FAULTS_H

#include <stdint.h>

#include "redduck/error.h"

typedef struct rd_emu_faults rd_emu_faults;

/* spec NULL or "" → no faults. Unknown names, bad numbers and values out of bounds → RD_E_USAGE naming the
 * entry. */
rd_status rd_emu_faults_parse(const char *spec, uint64_t seed, rd_emu_faults **out, rd_error *err);
void rd_emu_faults_free(rd_emu_faults *f);
/* 1 if this draw of the named fault fires. f may be NULL (never). */
int rd_emu_faults_draw(rd_emu_faults *f, const char *name);
/* Added latency in ms (0 when none). */
int rd_emu_faults_latency_ms(const rd_emu_faults *f);
/* s3.get.bandwidth in bytes per second (0: unpaced). */
uint64_t rd_emu_faults_get_bandwidth(const rd_emu_faults *f);
/* s3.get.latency.ms (0 when none). */
int rd_emu_faults_get_latency_ms(const rd_emu_faults *f);
/* unload.mbps in bytes per second (0: UNLOAD unpaced). */
double rd_emu_faults_unload_bytes_per_second(const rd_emu_faults *f);
/* 1 when GetObject answers are shaped (bandwidth or first-byte latency): the server must then run a thread
 * per connection, since a paced answer sleeps on its connection's thread. */
int rd_emu_faults_shaping(const rd_emu_faults *f);
/* A reproducible number in [0, bound) for fault details (where to cut a body). */
uint64_t rd_emu_faults_uniform(rd_emu_faults *f, const char *name, uint64_t bound);

#endif
