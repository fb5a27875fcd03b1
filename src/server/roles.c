/* roles.c — the role table (roles.h). */
#include "server/roles.h"

#include <string.h>

int rd_role_can(rd_role role, int prod_access, rd_action action, rd_env environment)
{
    if (role != RD_ROLE_VIEWER && role != RD_ROLE_EDITOR && role != RD_ROLE_ADMIN)
        return 0;
    switch (action) {
    case RD_ACTION_STATUS:
    case RD_ACTION_READ_DATA:
        return 1;
    case RD_ACTION_DEPLOY: /* a deployment that runs in prod (deployed or rolled back to) needs prod access */
        if (environment == RD_ENV_PROD)
            return role == RD_ROLE_ADMIN || (role == RD_ROLE_EDITOR && prod_access == 1);
        return role >= RD_ROLE_EDITOR;
    case RD_ACTION_REFRESH:
        return role >= RD_ROLE_EDITOR;
    case RD_ACTION_VARIABLES_LIST:
    case RD_ACTION_VARIABLES_READ:
    case RD_ACTION_VARIABLES_WRITE:
        if (role < RD_ROLE_EDITOR)
            return 0;
        switch (environment) {
        case RD_ENV_DEV:
        case RD_ENV_SHARED:
            return 1;
        case RD_ENV_PROD:
            return role == RD_ROLE_ADMIN || prod_access == 1;
        case RD_ENV_NONE:
        default:
            return 0;
        }
    case RD_ACTION_MANAGE_MEMBERS:
    case RD_ACTION_AUDIT_READ:
        return role == RD_ROLE_ADMIN;
    default:
        return 0;
    }
}

rd_role rd_role_parse(const char *s)
{
    if (!s)
        return RD_ROLE_NONE;
    if (strcmp(s, "admin") == 0)
        return RD_ROLE_ADMIN;
    if (strcmp(s, "editor") == 0)
        return RD_ROLE_EDITOR;
    if (strcmp(s, "viewer") == 0)
        return RD_ROLE_VIEWER;
    return RD_ROLE_NONE;
}

const char *rd_role_name(rd_role role)
{
    switch (role) {
    case RD_ROLE_ADMIN:
        return "admin";
    case RD_ROLE_EDITOR:
        return "editor";
    case RD_ROLE_VIEWER:
        return "viewer";
    case RD_ROLE_NONE:
    default:
        return "none";
    }
}

rd_env rd_env_parse(const char *s)
{
    if (!s)
        return RD_ENV_NONE;
    if (strcmp(s, "dev") == 0)
        return RD_ENV_DEV;
    if (strcmp(s, "prod") == 0)
        return RD_ENV_PROD;
    if (strcmp(s, "shared") == 0)
        return RD_ENV_SHARED;
    return RD_ENV_NONE;
}

const char *rd_env_name(rd_env env)
{
    switch (env) {
    case RD_ENV_DEV:
        return "dev";
    case RD_ENV_PROD:
        return "prod";
    case RD_ENV_SHARED:
        return "shared";
    case RD_ENV_NONE:
    default:
        return "";
    }
}
