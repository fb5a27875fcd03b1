/* writeback.h — a file's dirty pages sent to the disk as they are made, not all at its fsync: a thread of
 * the caller's asks the kernel every interval to start writing what is dirty (Linux sync_file_range with
 * SYNC_FILE_RANGE_WRITE: it starts the writes and does not wait for them). For a file that grows for a long
 * time and is then made durable in one go (DuckDB's database file, whose COMMIT fsyncs a whole load's
 * blocks), the disk then works while the caller computes, and the fsync finds little left.
 * It changes no content and no durability: the fsync still decides. Elsewhere than Linux it does nothing.
 * Owns its descriptor and thread; stop frees both. Start and stop from one thread; the writer itself takes no
 * lock of the caller's. */
#ifndef RD_CORE_WRITEBACK_H
#define RD_CORE_WRITEBACK_H

#include "redduck/error.h"

typedef struct rd_writeback rd_writeback;

#define RD_WRITEBACK_DEFAULT_INTERVAL_MS 100u

/* Opens path read-only and starts the thread (interval_ms 0: the default). RD_E_IO naming the file when it
 * cannot be opened, RD_E_INTERNAL when no thread can start; *out is then NULL and nothing is left open. */
rd_status rd_writeback_start(const char *path, unsigned interval_ms, rd_writeback **out, rd_error *err);

/* Starts the writeback of the file's dirty pages now, on the caller's thread (the thread does it every
 * interval). 0, or -1 with errno. */
int rd_writeback_now(const rd_writeback *w);

/* Stops the thread (waking it), closes the descriptor, frees. NULL is a no-op. */
void rd_writeback_stop(rd_writeback *w);

#endif
