/* emulator_internal.h — the emulator's identity/policy store (implemented in identities.c, owned by the
 * server part). Principals are users (access keys) and roles (assumable via STS, usable by UNLOAD), each
 * with a list of allowed action patterns ("s3:*", "redshift-data:ExecuteStatement", "*"). */
#ifndef RD_EMULATOR_INTERNAL_H
#define RD_EMULATOR_INTERNAL_H

#include "emulator/emulator.h"

/* 1 if principal (user or assumed-role ARN) may do action on resource. */
int rd_emu_policy_check(rd_emu *emu, const char *principal_arn, const char *action, const char *resource);
/* 1 if the role exists and may do action on resource. */
int rd_emu_policy_role_check(rd_emu *emu, const char *role_arn, const char *action, const char *resource);

#endif
