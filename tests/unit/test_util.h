/* test_util.h — helpers the unit tests share (header-only; each test is its own executable). */
#ifndef RD_TEST_UTIL_H
#define RD_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
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

#ifndef SYS_cachestat
#define SYS_cachestat 451 /* the same on every architecture */
#endif

/* The number of path's pages in the page cache that are dirty (written, not yet sent to the disk), from the
 * kernel's cachestat (Linux 6.5+); -1 with errno when the file cannot be opened or there is no cachestat. */
static inline long long rd_test_dirty_pages(const char *path)
{
    struct { uint64_t off, len; } range = { 0, 0 };
    struct { uint64_t cache, dirty, writeback, evicted, recently_evicted; } c = { 0, 0, 0, 0, 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long rc = syscall(SYS_cachestat, fd, &range, &c, 0);
    int e = errno;
    close(fd);
    errno = e;
    return rc == 0 ? (long long)c.dirty : -1;
}

/* Waits up to 10 s for path to have no dirty page: 1 when it has none, 0 when some stay (or -1 when it
 * cannot be told: see rd_test_dirty_pages). */
static inline int rd_test_clean_within_10s(const char *path)
{
    for (int i = 0; i < 500; i++) {
        long long d = rd_test_dirty_pages(path);
        if (d <= 0)
            return d == 0 ? 1 : -1;
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return 0;
}

#endif
