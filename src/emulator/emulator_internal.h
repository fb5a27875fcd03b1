/* emulator_internal.h — the emulator object shared by its parts (server.c owns its life cycle), and the
 * entry points of the parts the server routes to. */
#ifndef RD_EMULATOR_INTERNAL_H
#define RD_EMULATOR_INTERNAL_H

#include <stdatomic.h>

#include "core/log.h"
#include "emulator/emulator.h"
#include "emulator/faults.h"
#include "emulator/form.h"
#include "emulator/iam/identities.h"

struct rd_httpd;
struct rd_s3_store;
struct rd_emu_engine;

struct rd_emu {
    rd_log log;
    rd_emu_ids *ids;
    rd_emu_faults *faults;
    struct rd_s3_store *store;
    struct rd_emu_engine *engine;
    struct rd_httpd *httpd;
    int port;
    char *data_dir;
    atomic_ulong request_counter;
};

/* 1 if principal (user or assumed-role ARN) may do action on resource. */
int rd_emu_policy_check(rd_emu *emu, const char *principal_arn, const char *action, const char *resource);
/* 1 if the role exists and may do action on resource. */
int rd_emu_policy_role_check(rd_emu *emu, const char *role_arn, const char *action, const char *resource);

/* Query protocol (form body): service "sts" or "redshift". */
void rd_emu_query_api_handle(rd_emu *emu, const char *service, const rd_form *form, const rd_emu_request *req,
                             rd_emu_response *resp);
/* Redshift Serverless JSON 1.1 (operation after "RedshiftServerless."). */
void rd_emu_serverless_handle(rd_emu *emu, const char *operation, const rd_emu_request *req, rd_emu_response *resp);
/* The Redshift engine's part of start/stop (engine_glue.c): opens the warehouses, registers the
 * workgroups and clusters from the config, creates the sample tables; teardown waits for statements. */
struct rd_emulator_options;
rd_status rd_emu_engine_setup(rd_emu *emu, const struct rd_emulator_options *opts, rd_error *err);
void rd_emu_engine_teardown(rd_emu *emu);

/* SSO portal GET /federation/credentials (unsigned; bearer token header). */
void rd_emu_sso_handle(rd_emu *emu, const rd_form *query, const rd_emu_request *req, rd_emu_response *resp);

#endif
