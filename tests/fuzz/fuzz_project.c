/* fuzz_project.c — libFuzzer target over the whole project loader: one input, split at 0xFF bytes into
 * redduck.yaml, connectors/c.yaml, sources/s.yaml and .env (a missing part: no such file), written into a
 * temporary folder, then rd_project_load and rd_project_env_keys. Must never crash, leak, read out of bounds
 * or blow past the memory limit scripts/fuzz.sh sets (an alias bomb did); errors are fine, and a loaded
 * project must be consistent. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "redduck/project.h"

#define SEPARATOR 0xFF

static const char *const parts[] = { "redduck.yaml", "connectors/c.yaml", "sources/s.yaml", ".env" };
#define NPARTS (sizeof parts / sizeof parts[0])

static char root[4096];

static void path_of(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", root, rel);
}

static int setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/rd_fuzz_project_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        return -1;
    char p[4200];
    path_of(p, sizeof p, "connectors");
    mkdir(p, 0700);
    path_of(p, sizeof p, "sources");
    mkdir(p, 0700);
    return 0;
}

static void put(const char *rel, const uint8_t *data, size_t len)
{
    char p[4200];
    path_of(p, sizeof p, rel);
    FILE *f = fopen(p, "wb");
    if (!f)
        abort();
    if (len && fwrite(data, 1, len, f) != len)
        abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (setup() != 0)
            abort();
        ready = 1;
    }
    size_t start = 0;
    for (size_t i = 0; i < NPARTS; i++) {
        if (start > size) {
            char p[4200];
            path_of(p, sizeof p, parts[i]);
            unlink(p);
            continue;
        }
        const uint8_t *sep = i + 1 < NPARTS ? memchr(data + start, SEPARATOR, size - start) : NULL;
        size_t end = sep ? (size_t)(sep - data) : size;
        put(parts[i], data + start, end - start);
        start = sep ? end + 1 : size + 1;
    }

    rd_project p;
    rd_error err;
    rd_error_clear(&err);
    if (rd_project_load(root, &p, &err) == RD_OK) {
        if (!p.name || !p.duckdb_path || p.parallel < 1 || p.parallel > 32)
            abort();
        for (size_t i = 0; i < p.nsources; i++) {
            const rd_source *s = &p.sources[i];
            rd_connector c;
            if ((!s->sql) == (!s->table) || !s->table_name || !rd_project_source(&p, s->name) ||
                rd_project_effective_connector(&p, s, &c, &err) != RD_OK)
                abort();
        }
        rd_project_free(&p);
    } else if (!err.message[0]) {
        abort(); /* a failure always says why */
    }
    char **keys = NULL;
    size_t n = 0;
    rd_error_clear(&err);
    if (rd_project_env_keys(root, &keys, &n, &err) == RD_OK)
        rd_project_keys_free(keys, n);
    return 0;
}
