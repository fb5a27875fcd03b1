/* config.h — the AWS shared config and credentials files (~/.aws/config, ~/.aws/credentials), read as
 * botocore reads them. Owns: file locations (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, ~ expansion),
 * profile selection, key lookup with provenance. Parsing itself lives in aws/ini.h.
 * An rd_aws_config is immutable after load and safe to share between threads. */
#ifndef RD_AWS_CONFIG_H
#define RD_AWS_CONFIG_H

#include "redduck/error.h"

typedef struct rd_aws_config rd_aws_config;

/* Loads both files. A missing file is not an error (it is just empty); an unreadable or malformed one is
 * RD_E_CONFIG with "file:line: what is wrong, what to do". */
rd_status rd_aws_config_load(rd_aws_config **out, rd_error *err);
/* Same with explicit paths (NULL = that file absent). For tests and the project runner. */
rd_status rd_aws_config_load_paths(const char *config_path, const char *credentials_path, rd_aws_config **out,
                                   rd_error *err);
void rd_aws_config_free(rd_aws_config *cfg);

/* The profile to use: flag if set, else AWS_DEFAULT_PROFILE, else AWS_PROFILE (botocore's order), else "default". Borrowed
 * (from flag or the environment or a literal). */
const char *rd_aws_profile_name(const char *flag);

/* 1 if a profile of that name exists in either file ("[profile x]"/"[x]" in config, "[x]" in credentials). */
int rd_aws_config_has_profile(const rd_aws_config *cfg, const char *profile);

/* A key of a profile from the config file (NULL if unset). Borrowed; valid while cfg lives. */
const char *rd_aws_config_profile_get(const rd_aws_config *cfg, const char *profile, const char *key);
/* A key of a profile from the credentials file (NULL if unset). */
const char *rd_aws_config_credentials_get(const rd_aws_config *cfg, const char *profile, const char *key);
/* Either file, credentials file first (botocore's merged view). */
const char *rd_aws_config_get(const rd_aws_config *cfg, const char *profile, const char *key);
/* A key in another section kind: kind "sso-session" or "services", name as written. */
const char *rd_aws_config_section_get(const rd_aws_config *cfg, const char *kind, const char *name,
                                      const char *key);
/* Nested key of a section, e.g. [services dev] s3 =\n  endpoint_url = … → (…, "services", "dev", "s3",
 * "endpoint_url"). Also used for a profile's nested keys with kind "profile". */
const char *rd_aws_config_nested_get(const rd_aws_config *cfg, const char *kind, const char *name,
                                     const char *parent_key, const char *key);
/* "path [section]" describing where profile's key came from, for whoami and errors; NULL if unset.
 * Returns a malloc'd string. */
char *rd_aws_config_describe(const rd_aws_config *cfg, const char *profile, const char *key);

/* The CA bundle to trust, as botocore finds it: AWS_CA_BUNDLE, else the profile's ca_bundle ("~" expanded;
 * empty counts as unset). *path is malloc'd (NULL when neither is set: the system's CAs). A file that does
 * not exist or cannot be read is RD_E_CONFIG naming the file and where it came from. */
rd_status rd_aws_ca_bundle(const rd_aws_config *cfg, const char *profile, char **path, rd_error *err);

/* Paths actually used (for messages). Borrowed; may be NULL. */
const char *rd_aws_config_config_path(const rd_aws_config *cfg);
const char *rd_aws_config_credentials_path(const rd_aws_config *cfg);

#endif
