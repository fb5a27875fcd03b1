/* policy.c — response helpers and authorisation entry points of the emulator. With no emulator context
 * (unit tests drive handlers directly with emu == NULL) everything is allowed. */
#include <stdlib.h>

#include "emulator/emulator.h"
#include "emulator/emulator_internal.h"

void rd_emu_response_init(rd_emu_response *r)
{
    rd_httpd_response_init(r);
}

void rd_emu_response_free(rd_emu_response *r)
{
    rd_httpd_response_free(r);
}

int rd_emu_policy_check(rd_emu *emu, const char *principal_arn, const char *action, const char *resource)
{
    return rd_emu_ids_allowed(emu->ids, principal_arn, action, resource);
}

int rd_emu_policy_role_check(rd_emu *emu, const char *role_arn, const char *action, const char *resource)
{
    if (!rd_emu_ids_role_arn(emu->ids, role_arn))
        return 0;
    return rd_emu_ids_allowed(emu->ids, rd_emu_ids_role_arn(emu->ids, role_arn), action, resource);
}

int rd_emu_allowed(rd_emu *emu, const rd_emu_request *req, const char *action, const char *resource)
{
    if (!emu)
        return 1;
    return rd_emu_policy_check(emu, req ? req->principal_arn : NULL, action, resource);
}

int rd_emu_role_allowed(rd_emu *emu, const char *role_arn, const char *action, const char *resource)
{
    if (!emu)
        return 1;
    return rd_emu_policy_role_check(emu, role_arn, action, resource);
}
