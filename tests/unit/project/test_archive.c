/* test_archive.c — project/archive.h: which files rd_archive_pack takes (built-in exclusions, .gitignore with
 * negation, dir-only, anchoring, `**`, classes, nested files; links and fifos skipped), deterministic bytes, a
 * pack → unpack round trip, pack limits, and rd_archive_unpack refusing hostile archives (built here as raw tar
 * bytes or with libarchive's writer) with a message naming the entry and the rule, and nothing new left in the
 * destination's parent or beyond. Folders are made under $TMPDIR (or /tmp) and removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "project/archive.h"

#define SECRET "TOPSECRET-CONTENT"

/* ---- folders ------------------------------------------------------------------------------------------ */

static char *make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/rd_test_archive_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *copy = strdup(d);
    assert_non_null(copy);
    return copy;
}

static void put_bytes(const char *dir, const char *rel, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *s = path + strlen(dir) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(path, 0755);
            *s = '/';
        }
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void put(const char *dir, const char *rel, const char *text)
{
    put_bytes(dir, rel, text, strlen(text));
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

static void rm_tree(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Every path under dir, sorted, one per line: "d NAME" for folders, "f NAME MODE CONTENT" for files. */
static size_t g_skip;
static char **g_lines;
static size_t g_nlines;

static int list_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (strlen(p) <= g_skip)
        return 0;
    rd_buf line = RD_BUF_INIT;
    const char *rel = p + g_skip + 1;
    if (flag == FTW_D || flag == FTW_DP) {
        rd_buf_printf(&line, "d %s %o", rel, (unsigned)(sb->st_mode & 07777));
    } else if (flag == FTW_SL) {
        rd_buf_printf(&line, "l %s", rel);
    } else {
        rd_buf_printf(&line, "f %s %o ", rel, (unsigned)(sb->st_mode & 07777));
        FILE *f = fopen(p, "rb");
        if (f) {
            char chunk[4096];
            size_t n;
            while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
                rd_buf_append(&line, chunk, n);
            fclose(f);
        }
    }
    g_lines = realloc(g_lines, (g_nlines + 1) * sizeof *g_lines);
    g_lines[g_nlines++] = rd_buf_detach(&line);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_tree(const char *dir, rd_buf *out)
{
    rd_buf_reset(out);
    g_skip = strlen(dir);
    g_lines = NULL;
    g_nlines = 0;
    nftw(dir, list_one, 16, FTW_PHYS);
    if (g_nlines)
        qsort(g_lines, g_nlines, sizeof *g_lines, cmp_str);
    for (size_t i = 0; i < g_nlines; i++) {
        rd_buf_printf(out, "%s\n", g_lines[i]);
        free(g_lines[i]);
    }
    free(g_lines);
    g_lines = NULL;
}

/* ---- raw tar ------------------------------------------------------------------------------------------ */

static void octal(char *field, size_t width, unsigned long long v)
{
    snprintf(field, width, "%0*llo", (int)width - 1, v);
}

/* One ustar header claiming `claimed` bytes, then `size` bytes of data padded to 512. */
static void tar_entry(rd_buf *b, const char *name, char type, const char *link, const void *data, size_t size,
                      size_t claimed)
{
    unsigned char h[512];
    memset(h, 0, sizeof h);
    memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
    octal((char *)h + 100, 8, 0644);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, claimed);
    octal((char *)h + 136, 12, 0);
    h[156] = (unsigned char)type;
    if (link)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    rd_buf_append(b, h, sizeof h);
    if (size) {
        rd_buf_append(b, data, size);
        static const char zeros[512];
        if (size % 512)
            rd_buf_append(b, zeros, 512 - size % 512);
    }
}

static void tar_file(rd_buf *b, const char *name, const char *text)
{
    tar_entry(b, name, '0', NULL, text, strlen(text), strlen(text));
}

/* A pax extended header with one record "key=value". */
static void tar_pax(rd_buf *b, const char *key, const char *value, size_t vlen)
{
    size_t body = strlen(key) + vlen + 3, len = body + 1;
    while (snprintf(NULL, 0, "%zu", len) + body != len)
        len++;
    rd_buf rec = RD_BUF_INIT;
    rd_buf_printf(&rec, "%zu %s=", len, key);
    rd_buf_append(&rec, value, vlen);
    rd_buf_putc(&rec, '\n');
    assert_int_equal(rec.len, len);
    tar_entry(b, "PaxHeader", 'x', NULL, rec.data, rec.len, rec.len);
    rd_buf_free(&rec);
}

static void tar_end(rd_buf *b)
{
    static const char zeros[1024];
    rd_buf_append(b, zeros, sizeof zeros);
}

static la_ssize_t to_buf(struct archive *a, void *ud, const void *p, size_t n)
{
    (void)a;
    rd_buf_append(ud, p, n);
    return (la_ssize_t)n;
}

/* b gzip-compressed (libarchive's writer, raw format). */
static void gzip_buf(const rd_buf *b, rd_buf *out)
{
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open2(a, out, NULL, to_buf, NULL, NULL), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "data");
    archive_entry_set_filetype(e, AE_IFREG);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    for (size_t off = 0; off < b->len; off += 1 << 20) {
        size_t n = b->len - off < (1u << 20) ? b->len - off : 1u << 20;
        assert_int_equal(archive_write_data(a, b->data + off, n), (la_ssize_t)n);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    archive_entry_free(e);
}

/* ---- unpack checks ------------------------------------------------------------------------------------ */

static rd_archive_limits small_limits(void)
{
    rd_archive_limits l;
    rd_archive_limits_default(&l);
    l.max_total_bytes = 1 << 20;
    l.max_file_bytes = 1 << 20;
    l.max_entries = 16;
    l.max_depth = 6;
    return l;
}

/* Unpacks data into JAIL/parent/dest: must fail RD_E_CONFIG with want (and "nothing was unpacked") in the
 * message, never a file's contents nor a control character, and leave JAIL holding only the empty parent. */
static void refused_with(const void *data, size_t len, const rd_archive_limits *lim, const char *want)
{
    char *jail = make_dir();
    char parent[4096], dest[4200];
    snprintf(parent, sizeof parent, "%s/parent", jail);
    assert_int_equal(mkdir(parent, 0755), 0);
    snprintf(dest, sizeof dest, "%s/dest", parent);
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_archive_unpack(data, len, dest, lim, &err);
    if (st != RD_E_CONFIG || !strstr(err.message, want) || !strstr(err.message, "nothing was unpacked"))
        fail_msg("want RD_E_CONFIG with '%s', got %d: %s", want, st, err.message);
    assert_null(strstr(err.message, SECRET));
    for (const char *p = err.message; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    rd_buf l = RD_BUF_INIT;
    list_tree(jail, &l);
    assert_string_equal(rd_buf_cstr(&l), "d parent 755\n");
    rd_buf_free(&l);
    rm_tree(jail);
}

static void refused(const rd_buf *b, const char *want)
{
    rd_archive_limits lim = small_limits();
    refused_with(b->data, b->len, &lim, want);
}

/* ---- pack ---------------------------------------------------------------------------------------------- */

static const char *const kept[] = {
    ".gitignore",   "a.csv.txt",    "d.csv",         "docs/x.md",      "keep.log",         "only_here.txt",
    "out/keep.txt", "redduck.yaml", "scratch12.txt", "sources/a.yaml", "sources/b.yaml",   "sub/.gitignore",
    "sub/b.log",    "sub/build",    "sub/tmp/t.txt", "x.tmp",          "caf\xc3\xa9.yaml",
};

static char *sample_project(void)
{
    char *d = make_dir();
    put(d, ".gitignore",
        "# comment\n"
        "\n"
        "*.log\n"
        "!keep.log\n"
        "/tmp/\n"
        "build/\n"
        "secret\n"
        "docs/**/draft.md\n"
        "scratch?.txt\n"
        "[abc].csv\n"
        "!.env\n"
        "!data/\n"
        "out/**\n"
        "!out/keep.txt\n"
        "trailing   \n"
        "\\#hash\n");
    put(d, "sub/.gitignore", "*.tmp\n!b.log\n/only_here.txt\n");
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (strcmp(kept[i], ".gitignore") != 0 && strcmp(kept[i], "sub/.gitignore") != 0)
            put(d, kept[i], kept[i]); /* each file holds its own name */
    static const char *const dropped[] = {
        ".env",
        ".env.local",
        "data/x.duckdb",
        "data/keep.txt",
        "other.duckdb",
        "other.duckdb.wal",
        "x.duckdb.redduck-ledger",
        ".git/config",
        "a.log",
        "sub/deeper/c.log",
        "tmp/t.txt",
        "build/x",
        "sub/build2/build/y",
        "secret",
        "sub/secret",
        "docs/draft.md",
        "docs/a/b/draft.md",
        "scratch1.txt",
        "a.csv",
        "out/drop.txt",
        "sub/x.tmp",
        "sub/only_here.txt",
        "sources/.env",
        "trailing",
        "#hash",
        ".redduck-tmp-1/part",
        "sources/.env.prod",
    };
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        put(d, dropped[i], SECRET);
    char p[4200], target[4200];
    snprintf(p, sizeof p, "%s/link.yaml", d);
    assert_int_equal(symlink("redduck.yaml", p), 0);
    snprintf(p, sizeof p, "%s/sources/outside", d);
    snprintf(target, sizeof target, "%s/..", d);
    assert_int_equal(symlink(target, p), 0);
    snprintf(p, sizeof p, "%s/sub/fifo", d);
    assert_int_equal(mkfifo(p, 0644), 0);
    return d;
}

static void pack_ok(const char *dir, const rd_archive_limits *lim, rd_buf *out, rd_archive_pack_result *res)
{
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_archive_pack(dir, lim, out, res, &err);
    if (st != RD_OK)
        fail_msg("pack failed: %s", err.message);
}

static void test_pack_selection(void **state)
{
    (void)state;
    char *d = sample_project();
    rd_buf a = RD_BUF_INIT;
    rd_archive_pack_result res;
    pack_ok(d, NULL, &a, &res);

    size_t nkept = sizeof kept / sizeof kept[0];
    const char *sorted[sizeof kept / sizeof kept[0]];
    memcpy(sorted, kept, sizeof kept);
    qsort(sorted, nkept, sizeof *sorted, cmp_str);
    for (size_t i = 0; i < res.nfiles && i < nkept; i++)
        if (strcmp(res.files[i], sorted[i]) != 0)
            fail_msg("file %zu: want '%s', got '%s'", i, sorted[i], res.files[i]);
    assert_int_equal(res.nfiles, nkept);
    assert_int_equal(res.nskipped, 3);
    assert_string_equal(res.skipped[0], "link.yaml: a symbolic link (not followed, not packed)");
    assert_string_equal(res.skipped[1], "sources/outside: a symbolic link (not followed, not packed)");
    assert_string_equal(res.skipped[2], "sub/fifo: a fifo (not followed, not packed)");

    /* what is in the archive, as libarchive reads it: the same names, in order, 0644, time 0, owner 0 */
    assert_true(a.len > 10 && (unsigned char)a.data[0] == 0x1f && (unsigned char)a.data[1] == 0x8b);
    assert_int_equal(a.data[4] | a.data[5] | a.data[6] | a.data[7], 0); /* no gzip time */
    struct archive *r = archive_read_new();
    archive_read_support_filter_gzip(r);
    archive_read_support_format_tar(r);
    assert_int_equal(archive_read_open_memory(r, a.data, a.len), ARCHIVE_OK);
    struct archive_entry *e;
    size_t i = 0;
    uint64_t total = 0;
    while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
        assert_true(i < res.nfiles);
        assert_string_equal(archive_entry_pathname(e), res.files[i]);
        assert_int_equal(archive_entry_filetype(e), AE_IFREG);
        assert_int_equal(archive_entry_perm(e), 0644);
        assert_int_equal(archive_entry_mtime(e), 0);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_gid(e), 0);
        char body[256];
        la_ssize_t n = archive_read_data(r, body, sizeof body);
        assert_true(n >= 0);
        total += (uint64_t)n;
        assert_null(memmem(body, (size_t)n, SECRET, strlen(SECRET)));
        i++;
    }
    assert_int_equal(i, res.nfiles);
    assert_int_equal(total, res.total_bytes);
    archive_read_free(r);
    assert_null(memmem(a.data, a.len, SECRET, strlen(SECRET))); /* (compressed, but short runs stay literal) */

    /* the same tree gives the same bytes, whatever the files' times */
    rd_buf b = RD_BUF_INIT;
    char p[4200];
    snprintf(p, sizeof p, "%s/redduck.yaml", d);
    struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    chmod(p, 0600);
    pack_ok(d, NULL, &b, NULL);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    /* and a changed file gives other bytes */
    put(d, "redduck.yaml", "redduck.yamL");
    rd_buf_reset(&b);
    pack_ok(d, NULL, &b, NULL);
    assert_true(a.len != b.len || memcmp(a.data, b.data, a.len) != 0);

    rd_archive_pack_result_free(&res);
    rd_archive_pack_result_free(NULL);
    rd_buf_free(&a);
    rd_buf_free(&b);
    rm_tree(d);
}

static void test_round_trip(void **state)
{
    (void)state;
    char *d = sample_project();
    char *p = make_dir();
    rd_buf a = RD_BUF_INIT;
    rd_archive_pack_result res;
    pack_ok(d, NULL, &a, &res);
    char dest[4200];
    snprintf(dest, sizeof dest, "%s/v1", p);
    rd_error err;
    rd_error_clear(&err);
    if (rd_archive_unpack(a.data, a.len, dest, NULL, &err) != RD_OK)
        fail_msg("unpack: %s", err.message);

    /* the unpacked tree is a copy of the packed files (contents, 0644 files in 0755 folders, umask aside) */
    char *e = make_dir();
    mode_t um = umask(0);
    umask(um);
    for (size_t i = 0; i < res.nfiles; i++) {
        char src[4200], copy[4200];
        snprintf(src, sizeof src, "%s/%s", d, res.files[i]);
        FILE *f = fopen(src, "rb");
        assert_non_null(f);
        char body[4096];
        size_t n = fread(body, 1, sizeof body, f);
        fclose(f);
        put_bytes(e, res.files[i], body, n);
        snprintf(copy, sizeof copy, "%s/%s", e, res.files[i]);
        chmod(copy, 0644 & ~um);
    }
    rd_buf want = RD_BUF_INIT, got = RD_BUF_INIT;
    list_tree(e, &want);
    list_tree(dest, &got);
    assert_non_null(strstr(rd_buf_cstr(&got), "f sub/.gitignore 644 *.tmp\n"));
    assert_string_equal(rd_buf_cstr(&got), rd_buf_cstr(&want));
    rm_tree(e);

    /* unpacking again into the same destination is refused; a new one is fine */
    rd_error_clear(&err);
    assert_int_equal(rd_archive_unpack(a.data, a.len, dest, NULL, &err), RD_E_IO);
    assert_non_null(strstr(err.message, "already exists"));
    snprintf(dest, sizeof dest, "%s/v2/", p);
    assert_int_equal(rd_archive_unpack(a.data, a.len, dest, NULL, &err), RD_OK);
    rd_buf l = RD_BUF_INIT;
    list_tree(p, &l);
    assert_non_null(strstr(rd_buf_cstr(&l), "d v2 700\n"));
    assert_null(strstr(rd_buf_cstr(&l), ".part-"));
    rd_buf_free(&l);

    rd_buf_free(&want);
    rd_buf_free(&got);
    rd_buf_free(&a);
    rd_archive_pack_result_free(&res);
    rm_tree(d);
    rm_tree(p);
}

static void pack_fails(const char *dir, const rd_archive_limits *lim, const char *want)
{
    rd_buf out = RD_BUF_INIT;
    rd_buf_puts(&out, "kept");
    rd_archive_pack_result res = { (char **)0x1, 7, 0, NULL, 0 };
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_archive_pack(dir, lim, &out, &res, &err);
    if (st != RD_E_CONFIG || !strstr(err.message, want))
        fail_msg("want '%s', got %d: %s", want, st, err.message);
    assert_int_equal(res.nfiles, 7);
    assert_string_equal(rd_buf_cstr(&out), "kept");
    rd_buf_free(&out);
}

static void test_pack_limits(void **state)
{
    (void)state;
    char *d = make_dir();
    static char big[3000];
    memset(big, 'x', sizeof big);
    put(d, "a.yaml", "a");
    put_bytes(d, "big.csv", big, sizeof big);
    put(d, "b.yaml", "b");
    rd_archive_limits lim;
    memset(&lim, 0, sizeof lim); /* zeros: the defaults */
    lim.max_file_bytes = 2000;
    pack_fails(d, &lim, "big.csv is larger than 2000 bytes");
    lim.max_file_bytes = 0;
    lim.max_total_bytes = 3001;
    pack_fails(d, &lim, "more than 3001 bytes");
    lim.max_total_bytes = 0;
    lim.max_entries = 2;
    pack_fails(d, &lim, "more than 2 files");
    lim.max_entries = 0;
    put(d, "x/y/z.yaml", "z");
    lim.max_depth = 2;
    pack_fails(d, &lim, "deeper than 2 components");
    lim.max_depth = 0;
    put(d, "bad\nname", "n");
    pack_fails(d, &lim, "cannot deploy 'bad?name': a control character");
    char p[4200];
    snprintf(p, sizeof p, "%s/bad\nname", d);
    unlink(p);
    rd_buf out = RD_BUF_INIT;
    rd_archive_pack_result res;
    lim.max_file_bytes = 3000;
    lim.max_total_bytes = 3003;
    lim.max_entries = 4;
    pack_ok(d, &lim, &out, &res); /* exactly at every limit */
    assert_int_equal(res.nfiles, 4);
    assert_int_equal(res.total_bytes, 3003);
    rd_archive_pack_result_free(&res);
    rd_buf_free(&out);

    rd_error err;
    rd_error_clear(&err);
    snprintf(p, sizeof p, "%s/missing", d);
    assert_int_equal(rd_archive_pack(p, NULL, &out, NULL, &err), RD_E_IO);
    assert_non_null(strstr(err.message, "cannot open project folder"));
    rm_tree(d);
}

/* ---- unpack: good archives ----------------------------------------------------------------------------- */

static void test_unpack_plain_tar(void **state)
{
    (void)state;
    rd_buf b = RD_BUF_INIT;
    tar_entry(&b, "./", '5', NULL, NULL, 0, 0);
    tar_entry(&b, "dir/", '5', NULL, NULL, 0, 0);
    tar_file(&b, "./a.yaml", "hello");
    tar_file(&b, "dir/sub/b.yaml", "world");
    tar_entry(&b, "dir/sub/", '5', NULL, NULL, 0, 0); /* after it was made for b.yaml: fine */
    tar_entry(&b, "empty", '0', NULL, NULL, 0, 0);
    tar_end(&b);
    char *p = make_dir();
    char dest[4200];
    snprintf(dest, sizeof dest, "%s/d", p);
    rd_error err;
    rd_error_clear(&err);
    if (rd_archive_unpack(b.data, b.len, dest, NULL, &err) != RD_OK)
        fail_msg("%s", err.message);
    mode_t um = umask(0);
    umask(um);
    char want[512];
    snprintf(want, sizeof want, "d dir %o\nd dir/sub %o\nf a.yaml %o hello\nf dir/sub/b.yaml %o world\nf empty %o \n",
             0755 & ~um, 0755 & ~um, 0644 & ~um, 0644 & ~um, 0644 & ~um);
    rd_buf l = RD_BUF_INIT;
    list_tree(dest, &l);
    assert_string_equal(rd_buf_cstr(&l), want);

    /* the same archive gzip-compressed */
    rd_buf z = RD_BUF_INIT;
    gzip_buf(&b, &z);
    snprintf(dest, sizeof dest, "%s/z", p);
    assert_int_equal(rd_archive_unpack(z.data, z.len, dest, NULL, &err), RD_OK);
    list_tree(dest, &l);
    assert_string_equal(rd_buf_cstr(&l), want);
    rd_buf_free(&l);
    rd_buf_free(&z);
    rd_buf_free(&b);
    rm_tree(p);
}

/* ---- unpack: hostile archives -------------------------------------------------------------------------- */

static void test_unpack_paths(void **state)
{
    (void)state;
    static const struct {
        const char *name, *want;
    } cases[] = {
        { "../x", "entry 2 '../x': a '..' component" },
        { "a/../../x", "entry 2 'a/../../x': a '..' component" },
        { "ok/..", "a '..' component" },
        { "/etc/x", "entry 2 '/etc/x': an absolute path" },
        { "a//b", "an empty component" },
        { "a\nb", "entry 2 'a?b': a control character" },
        { "\x1b[31mred", "'?[31mred': a control character" },
        { "a\\b", "a backslash" },
        { "caf\xe9", "'caf?': a name that is not UTF-8" },
        { "a/b/c/d/e/f/g", "a path deeper than 6 components" },
        { "f/", "after entry 2 'f/'" }, /* libarchive takes it for a folder with data: damaged */
        { ".", "an empty name" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rd_buf b = RD_BUF_INIT;
        tar_file(&b, "first.yaml", SECRET); /* written, then removed with the rest */
        tar_file(&b, cases[i].name, SECRET);
        tar_end(&b);
        refused(&b, cases[i].want);
        rd_buf_free(&b);
    }
    /* an absolute path into the test's own folder: refused, nothing there */
    char *jail = make_dir();
    char abs[4200];
    snprintf(abs, sizeof abs, "%s/escaped", jail);
    rd_buf b = RD_BUF_INIT;
    tar_pax(&b, "path", abs, strlen(abs));
    tar_file(&b, "placeholder", SECRET);
    tar_end(&b);
    refused(&b, "an absolute path");
    assert_int_equal(access(abs, F_OK), -1);
    rd_buf_free(&b);
    rm_tree(jail);

    /* names over the length limits, through pax */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    rd_buf_init(&b);
    tar_pax(&b, "path", longname, strlen(longname));
    tar_file(&b, "placeholder", SECRET);
    tar_end(&b);
    refused(&b, "a component longer than 255 bytes");
    rd_buf_free(&b);
    rd_buf lp = RD_BUF_INIT;
    for (int i = 0; i < 5; i++)
        rd_buf_printf(&lp, "%.250s/", longname);
    rd_buf_puts(&lp, "x");
    rd_buf_init(&b);
    tar_pax(&b, "path", lp.data, lp.len);
    tar_file(&b, "placeholder", SECRET);
    tar_end(&b);
    refused(&b, "a path longer than 1024 bytes");
    rd_buf_free(&b);
    rd_buf_free(&lp);
}

static void test_unpack_types(void **state)
{
    (void)state;
    static const struct {
        char type;
        const char *link, *want;
    } cases[] = {
        { '2', "/etc/passwd", "entry 2 'evil': a symbolic link" },
        { '2', "../../x", "a symbolic link" },
        { '1', "first.yaml", "entry 2 'evil': a hard link" },
        { '3', NULL, "a character device" },
        { '4', NULL, "a block device" },
        { '6', NULL, "a fifo" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rd_buf b = RD_BUF_INIT;
        tar_file(&b, "first.yaml", SECRET);
        tar_entry(&b, "evil", cases[i].type, cases[i].link, NULL, 0, 0);
        tar_end(&b);
        refused(&b, cases[i].want);
        rd_buf_free(&b);
    }
    rd_buf b = RD_BUF_INIT;
    tar_file(&b, "a", SECRET);
    tar_file(&b, "./a", SECRET);
    tar_end(&b);
    refused(&b, "entry 2 './a': a name that comes twice");
    rd_buf_free(&b);
    rd_buf_init(&b);
    tar_entry(&b, "d/", '5', NULL, NULL, 0, 0);
    tar_entry(&b, "d/", '5', NULL, NULL, 0, 0);
    tar_end(&b);
    refused(&b, "a name that comes twice");
    rd_buf_free(&b);
    rd_buf_init(&b);
    tar_file(&b, "a", SECRET);
    tar_file(&b, "a/b", SECRET);
    tar_end(&b);
    refused(&b, "entry 2 'a/b': a path whose folder is a file");
    rd_buf_free(&b);
    rd_buf_init(&b);
    tar_file(&b, "a/b", SECRET);
    tar_file(&b, "a", SECRET);
    tar_end(&b);
    refused(&b, "entry 2 'a': a file and a folder share this name");
    rd_buf_free(&b);
}

static void test_unpack_limits(void **state)
{
    (void)state;
    /* too many entries */
    rd_buf b = RD_BUF_INIT;
    for (int i = 0; i < 17; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%02d", i);
        tar_file(&b, name, "x");
    }
    tar_end(&b);
    refused(&b, "entry 17 'f16': more than 16 entries");
    rd_buf_free(&b);

    /* a file over the limit whose ustar header claims 512 bytes (the pax size says the truth) */
    size_t big = (1u << 20) + 1;
    char *data = calloc(1, big);
    memcpy(data, SECRET, strlen(SECRET));
    rd_buf_init(&b);
    tar_pax(&b, "size", "1048577", 7);
    tar_entry(&b, "big.csv", '0', NULL, data, big, 512);
    tar_end(&b);
    refused(&b, "entry 1 'big.csv': a file larger than 1048576 bytes");
    /* and exactly at the limit it is taken */
    rd_buf ok = RD_BUF_INIT;
    tar_entry(&ok, "big.csv", '0', NULL, data, big - 1, big - 1);
    tar_end(&ok);
    char *p = make_dir();
    char dest[4200];
    snprintf(dest, sizeof dest, "%s/d", p);
    rd_archive_limits lim = small_limits();
    rd_error err;
    assert_int_equal(rd_archive_unpack(ok.data, ok.len, dest, &lim, &err), RD_OK);
    rd_buf_free(&ok);
    rm_tree(p);
    rd_buf_free(&b);

    /* files each under the per-file limit, together over the total (counted as read) */
    rd_buf_init(&b);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "part%d", i);
        tar_entry(&b, name, '0', NULL, data, 400000, 400000);
    }
    tar_end(&b);
    refused(&b, "entry 3 'part2': the files come to more than 1048576 bytes");
    rd_buf_free(&b);
    free(data);

    /* a truncated archive: the header claims more than there is */
    rd_buf_init(&b);
    tar_file(&b, "first.yaml", SECRET);
    tar_entry(&b, "cut.yaml", '0', NULL, "abc", 3, 5000);
    refused(&b, "damaged or truncated in entry 2 'cut.yaml'");
    rd_buf_free(&b);

    /* not a tar at all; empty input */
    refused_with(SECRET, strlen(SECRET), NULL, "not a tar archive");
    refused_with(NULL, 0, NULL, "not a tar archive");
    rd_buf z = RD_BUF_INIT, raw = RD_BUF_INIT;
    rd_buf_puts(&raw, SECRET);
    gzip_buf(&raw, &z);
    refused_with(z.data, z.len, NULL, "not a tar archive");
    /* a gzip inside the gzip is not unwrapped */
    rd_buf_init(&b);
    tar_file(&b, "a", "x");
    tar_end(&b);
    rd_buf z1 = RD_BUF_INIT, z2 = RD_BUF_INIT;
    gzip_buf(&b, &z1);
    gzip_buf(&z1, &z2);
    refused_with(z2.data, z2.len, NULL, "compressed more than once");
    /* a damaged gzip stream */
    z1.data[12] ^= 0x55;
    z1.data[13] ^= 0x55;
    refused_with(z1.data, z1.len, NULL, "archive refused");
    rd_buf_free(&b);
    rd_buf_free(&z1);
    rd_buf_free(&z2);
    rd_buf_free(&z);
    rd_buf_free(&raw);
}

static void test_unpack_bombs(void **state)
{
    (void)state;
    /* 64 MiB of zeros in ~64 KiB of gzip, one entry */
    rd_buf b = RD_BUF_INIT;
    size_t n = 64u << 20;
    char *zeros = calloc(1, n);
    tar_entry(&b, "zeros", '0', NULL, zeros, n, n);
    tar_end(&b);
    rd_buf z = RD_BUF_INIT;
    gzip_buf(&b, &z);
    assert_true(z.len < n / 100);
    refused_with(z.data, z.len, NULL, "entry 1 'zeros': a file larger than 16777216 bytes");
    rd_buf_free(&b);
    rd_buf_free(&z);

    /* the same zeros as many files within the per-file limit: stopped by the total, as read */
    rd_archive_limits lim;
    rd_archive_limits_default(&lim);
    lim.max_total_bytes = 4u << 20;
    rd_buf_init(&b);
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "z%d", i);
        tar_entry(&b, name, '0', NULL, zeros, 1u << 20, 1u << 20);
    }
    tar_end(&b);
    rd_buf_init(&z);
    gzip_buf(&b, &z);
    refused_with(z.data, z.len, &lim, "entry 5 'z4': the files come to more than 4194304 bytes");
    rd_buf_free(&b);
    rd_buf_free(&z);

    /* a stream of nothing but headers: pax records of zeros' worth of padding, no file data at all; stopped
     * once the tar stream passes the total plus 4 KiB an entry */
    lim = small_limits();
    lim.max_total_bytes = 64u << 10;
    rd_buf_init(&b);
    memset(zeros, 'p', 512u << 10);
    for (int i = 0; i < 8; i++) {
        tar_pax(&b, "comment", zeros, 512u << 10);
        tar_entry(&b, "e", '5', NULL, NULL, 0, 0);
    }
    tar_end(&b);
    rd_buf_init(&z);
    gzip_buf(&b, &z);
    refused_with(z.data, z.len, &lim, "a decompression bomb");
    rd_buf_free(&b);
    rd_buf_free(&z);
    free(zeros);
}

static void test_unpack_destination(void **state)
{
    (void)state;
    rd_buf b = RD_BUF_INIT;
    tar_file(&b, "a", "x");
    tar_end(&b);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_archive_unpack(b.data, b.len, "/nonexistent-parent-rd/dest", NULL, &err), RD_E_IO);
    assert_non_null(strstr(err.message, "/nonexistent-parent-rd"));
    assert_int_equal(rd_archive_unpack(b.data, b.len, "", NULL, &err), RD_E_USAGE);
    char *p = make_dir();
    char dest[4200];
    snprintf(dest, sizeof dest, "%s/..", p);
    assert_int_equal(rd_archive_unpack(b.data, b.len, dest, NULL, &err), RD_E_USAGE);
    /* a symbolic link where the destination would go is not followed nor replaced */
    snprintf(dest, sizeof dest, "%s/v", p);
    assert_int_equal(symlink(p, dest), 0);
    assert_int_equal(rd_archive_unpack(b.data, b.len, dest, NULL, &err), RD_E_IO);
    rd_buf l = RD_BUF_INIT;
    list_tree(p, &l);
    assert_string_equal(rd_buf_cstr(&l), "l v\n");
    rd_buf_free(&l);
    rd_buf_free(&b);
    rm_tree(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_selection),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_pack_limits),        cmocka_unit_test(test_unpack_plain_tar),
        cmocka_unit_test(test_unpack_paths),       cmocka_unit_test(test_unpack_types),
        cmocka_unit_test(test_unpack_limits),      cmocka_unit_test(test_unpack_bombs),
        cmocka_unit_test(test_unpack_destination),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
