/* data_api_internal.h — what the Data API's handlers share (data_api.c, data_catalog.c): the JSON 1.1 error
 * reply, reading a request's target, and the authorisation of a call and of the database credentials it
 * implies. Every function replies to the client itself when it returns 0; strings stay owned by the body. */
#ifndef RD_EMULATOR_DATA_API_INTERNAL_H
#define RD_EMULATOR_DATA_API_INTERNAL_H

#include <jansson.h>

#include "emulator/emulator.h"

struct rd_emu_engine;

/* The target members of a request (borrowed from its JSON body). */
typedef struct rd_emu_data_target {
    int is_cluster;
    const char *name, *database, *db_user, *secret_arn;
} rd_emu_data_target;

/* A 400 reply of the given __type; resource_id, when given, adds ResourceId (ResourceNotFoundException) or
 * StatementId. */
void rd_emu_data_reply_error(rd_emu_response *resp, const rd_emu_request *req, const char *type, const char *msg,
                             const char *resource_id);
/* The string member key of body, or NULL. */
const char *rd_emu_data_jstr(json_t *body, const char *key);
/* WorkgroupName | ClusterIdentifier, Database, DbUser, SecretArn, validated. 0 after replying. */
int rd_emu_data_read_target(json_t *body, const rd_emu_request *req, rd_emu_response *resp, rd_emu_data_target *t);
/* redshift-data:<op> on the workgroup / cluster (name NULL: "*"). 0 after replying AccessDeniedException. */
int rd_emu_data_authorise(rd_emu *emu, const rd_emu_request *req, rd_emu_response *resp, const char *op,
                          int is_cluster, const char *name);
/* The database-credentials action the Data API performs as the caller (GetCredentials, GetClusterCredentials
 * [WithIAM], GetSecretValue). 0 after replying AccessDeniedException. */
int rd_emu_data_authorise_db(rd_emu *emu, const rd_emu_request *req, rd_emu_response *resp,
                             const rd_emu_data_target *t);

/* The catalog calls (data_catalog.c): ListDatabases, ListSchemas, ListTables, DescribeTable. 1 if op is one
 * of them (the reply is written), 0 otherwise. */
int rd_emu_data_catalog_handle(rd_emu *emu, struct rd_emu_engine *eng, const char *op, json_t *body,
                               const rd_emu_request *req, rd_emu_response *resp);

#endif
