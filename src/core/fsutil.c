/* fsutil.c — filesystem helpers (see fsutil.h). */
#include "core/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

rd_status rd_mkdirs(const char *path, mode_t mode, rd_error *err)
{
    char *p = strdup(path);
    if (!p)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_status st = RD_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            st = rd_error_set(err, RD_E_IO, "cannot create %s: %s", p, strerror(errno));
        else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = rd_error_set(err, RD_E_IO, "cannot create %s: a file of that name exists", p);
        *s = saved;
        if (st != RD_OK || saved == '\0')
            break;
    }
    free(p);
    return st;
}

char *rd_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}
