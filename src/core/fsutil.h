/* fsutil.h — small filesystem helpers shared by library modules. Owns nothing. */
#ifndef RD_CORE_FSUTIL_H
#define RD_CORE_FSUTIL_H

#include <sys/types.h>

#include "redduck/error.h"

/* `mkdir -p path` with mode for the directories it creates. RD_E_IO naming the directory that could not be
 * created, or that exists as something other than a directory. */
rd_status rd_mkdirs(const char *path, mode_t mode, rd_error *err);

/* The directory holding path, malloc'd: "." when path has no slash, "/" for a file in the root. NULL when
 * out of memory. */
char *rd_path_dirname(const char *path);

#endif
