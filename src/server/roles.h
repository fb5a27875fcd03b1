/* roles.h — who may do what on a project: the role table of the server in one place, and the names of
 * roles and environments as they are stored and typed. Owns no state; thread-safe.
 *
 *   action                         viewer   editor                    admin
 *   status, read data              yes      yes                       yes
 *   deploy, rollback, refresh      no       yes                       yes
 *   variables of dev and shared    no       read, write, list         read, write, list
 *   variables of prod              no       only with prod access     yes (admin implies prod access)
 *   members and roles, audit log   no       no                        yes
 *
 * A server-wide admin (rd_store_user.admin) counts as admin of every project; resolve that before asking. */
#ifndef RD_SERVER_ROLES_H
#define RD_SERVER_ROLES_H

typedef enum rd_role {
    RD_ROLE_NONE = 0, /* not a member: may do nothing */
    RD_ROLE_VIEWER = 1,
    RD_ROLE_EDITOR = 2,
    RD_ROLE_ADMIN = 3
} rd_role;

typedef enum rd_env {
    RD_ENV_NONE = 0, /* not a variable action, or not a valid environment */
    RD_ENV_DEV,
    RD_ENV_PROD,
    RD_ENV_SHARED
} rd_env;

typedef enum rd_action {
    RD_ACTION_STATUS,          /* project status, deployments list */
    RD_ACTION_READ_DATA,       /* query the project's data */
    RD_ACTION_DEPLOY,          /* upload a version, roll back to one (RD_ENV_PROD: one that runs in prod) */
    RD_ACTION_REFRESH,         /* trigger a refresh */
    RD_ACTION_VARIABLES_LIST,  /* names of an environment's variables */
    RD_ACTION_VARIABLES_READ,  /* values */
    RD_ACTION_VARIABLES_WRITE, /* set, delete */
    RD_ACTION_MANAGE_MEMBERS,  /* grant and revoke roles, manage users and their tokens */
    RD_ACTION_AUDIT_READ       /* the project's audit log */
} rd_action;

/* 1 when a member with role (and prod_access, 0 or 1) may do action; environment matters for the
 * variable actions only (RD_ENV_NONE there: 0). Unknown roles or actions: 0. */
int rd_role_can(rd_role role, int prod_access, rd_action action, rd_env environment);

/* "admin", "editor", "viewer" → the role; anything else (NULL too) → RD_ROLE_NONE. */
rd_role rd_role_parse(const char *s);
/* The stored name of a role; "none" for RD_ROLE_NONE. */
const char *rd_role_name(rd_role role);

/* "dev", "prod", "shared" → the environment; anything else (NULL too) → RD_ENV_NONE. */
rd_env rd_env_parse(const char *s);
/* The name of an environment; "" for RD_ENV_NONE. */
const char *rd_env_name(rd_env env);

#endif
