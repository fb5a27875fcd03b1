/* engine_glue.c — the engine's part of the emulator's start and stop: opens the warehouses, registers
 * the workgroups and clusters the identities config names, sets the role `IAM_ROLE default` stands for and
 * UNLOAD's pace (the unload.mbps fault), and creates the requested sample tables. */
#include "emulator/emulator_internal.h"
#include "emulator/redshift/engine.h"
#include "redduck/emulator.h"

rd_status rd_emu_engine_setup(rd_emu *emu, const struct rd_emulator_options *opts, rd_error *err)
{
    rd_status st = rd_emu_engine_open(emu->data_dir, opts->slices, emu->store, emu, &emu->log, &emu->engine, err);
    if (st != RD_OK)
        return st;
    size_t n;
    const char *const *wgs = rd_emu_ids_workgroups(emu->ids, &n);
    for (size_t i = 0; i < n; i++)
        if ((st = rd_emu_engine_add_workgroup(emu->engine, wgs[i], err)) != RD_OK)
            return st;
    const char *const *clusters = rd_emu_ids_clusters(emu->ids, &n);
    for (size_t i = 0; i < n; i++)
        if ((st = rd_emu_engine_add_cluster(emu->engine, clusters[i], err)) != RD_OK)
            return st;
    rd_emu_engine_set_unload_pace(emu->engine, rd_emu_faults_unload_bytes_per_second(emu->faults));
    const char *role = rd_emu_ids_role_arn(emu->ids, "default");
    if (role && (st = rd_emu_engine_set_default_role(emu->engine, role, err)) != RD_OK)
        return st;
    for (size_t i = 0; i < opts->sample_count; i++) {
        rd_log_write(&emu->log, RD_LOG_INFO, "creating sample %s", opts->samples[i]);
        if ((st = rd_emu_engine_load_sample(emu->engine, opts->samples[i], opts->seed, err)) != RD_OK)
            return rd_error_prefix(err, "--sample %s: ", opts->samples[i]);
    }
    return RD_OK;
}

void rd_emu_engine_teardown(rd_emu *emu)
{
    rd_emu_engine_close(emu->engine);
    emu->engine = NULL;
}
