/* test_util.h — helpers the unit tests share (header-only; each test is its own executable). */
#ifndef RD_TEST_UTIL_H
#define RD_TEST_UTIL_H

#include <dirent.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `rm -rf dir` without a shell and without following links. */
static inline void rd_test_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= sizeof p)
            continue; /* deeper than any test makes */
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rd_test_rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Makes a fresh private directory $TMPDIR/PREFIX-XXXXXX (P_tmpdir without TMPDIR) into dir. 0, or -1. */
static inline int rd_test_mkdtemp(char *dir, size_t size, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    if ((size_t)snprintf(dir, size, "%s/%s-XXXXXX", tmp && *tmp ? tmp : P_tmpdir, prefix) >= size)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

#endif
