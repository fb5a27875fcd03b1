/* fuzz_archive.c — libFuzzer target over rd_archive_unpack: the input is an uploaded archive (plain or gzip
 * tar), unpacked with small limits into a new folder of a temporary directory. Must never crash, leak, read out
 * of bounds or blow past the memory or time limits scripts/fuzz.sh sets; a refusal must say why and leave the
 * temporary directory exactly as it was (empty), and an accepted archive gives one folder, removed afterwards. */
#include <dirent.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "project/archive.h"

static char root[4096], dest[4200];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(p) != 0)
        abort();
    return 0;
}

/* Number of entries in root (not . and ..); the name of one in *one. */
static int root_entries(char *one, size_t n)
{
    DIR *d = opendir(root);
    if (!d)
        abort();
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(one, n, "%s", de->d_name);
        count++;
    }
    closedir(d);
    return count;
}

static void remove_root(void)
{
    rmdir(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(root, sizeof root, "%s/rd_fuzz_archive_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(root))
            abort();
        snprintf(dest, sizeof dest, "%s/out", root);
        atexit(remove_root);
    }
    rd_archive_limits lim;
    rd_archive_limits_default(&lim);
    lim.max_total_bytes = 256u << 10;
    lim.max_file_bytes = 64u << 10;
    lim.max_entries = 64;
    lim.max_depth = 8;
    lim.max_path = 256;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_archive_unpack(data, size, dest, &lim, &err);
    char one[512] = "";
    int n = root_entries(one, sizeof one);
    if (st == RD_OK) {
        if (n != 1 || strcmp(one, "out") != 0)
            abort(); /* exactly the new folder */
        if (nftw(dest, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
            abort();
    } else if (!err.message[0] || n != 0) {
        abort(); /* a refusal says why and leaves nothing behind */
    }
    return 0;
}
