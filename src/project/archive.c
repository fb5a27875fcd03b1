/* archive.c — rd_archive_pack and rd_archive_unpack (see archive.h): the project's file selection (built-in
 * exclusions, .gitignore), the deterministic tar writer, and the reader that treats every archive as hostile
 * (names, types, sizes, counts, a decompression bomb) and writes only beneath one directory descriptor. */
#include "project/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/utf8.h"

#define IO_CHUNK 65536
#define SHOW_MAX 96                  /* characters of a name quoted in a message */
#define ENTRY_STREAM_ALLOWANCE 4096u /* tar stream bytes allowed per entry beyond the contents (headers) */
#define STREAM_SLACK (64u << 10)     /* end-of-archive blocks and record padding */

void rd_archive_limits_default(rd_archive_limits *l)
{
    l->max_total_bytes = RD_ARCHIVE_MAX_TOTAL_BYTES;
    l->max_entries = RD_ARCHIVE_MAX_ENTRIES;
    l->max_file_bytes = RD_ARCHIVE_MAX_FILE_BYTES;
    l->max_depth = RD_ARCHIVE_MAX_DEPTH;
    l->max_name = RD_ARCHIVE_MAX_NAME;
    l->max_path = RD_ARCHIVE_MAX_PATH;
}

static rd_archive_limits limits_of(const rd_archive_limits *in)
{
    rd_archive_limits l;
    rd_archive_limits_default(&l);
    if (in) {
        if (in->max_total_bytes)
            l.max_total_bytes = in->max_total_bytes;
        if (in->max_entries)
            l.max_entries = in->max_entries;
        if (in->max_file_bytes)
            l.max_file_bytes = in->max_file_bytes;
        if (in->max_depth)
            l.max_depth = in->max_depth;
        if (in->max_name)
            l.max_name = in->max_name;
        if (in->max_path)
            l.max_path = in->max_path;
    }
    if (l.max_name > RD_ARCHIVE_MAX_NAME)
        l.max_name = RD_ARCHIVE_MAX_NAME; /* NAME_MAX: no file system takes more */
    if (l.max_depth > 256)
        l.max_depth = 256;
    if (l.max_path > 4 * RD_ARCHIVE_MAX_PATH)
        l.max_path = 4 * RD_ARCHIVE_MAX_PATH;
    return l;
}

/* ---- names -------------------------------------------------------------------------------------------- */

/* name for a message: printable ASCII kept, any other byte '?', at most SHOW_MAX characters then "...". */
static void show_name(char *out, size_t n, const char *name)
{
    size_t o = 0, i = 0;
    for (; name[i] && o + 1 < n && i < SHOW_MAX; i++) {
        unsigned char c = (unsigned char)name[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (name[i] && o + 4 < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Checks a relative path against the rules both sides apply and writes its normal form (`.` components
 * dropped, no trailing '/') to norm. *trailing_slash says whether name ended in '/'. NULL when it passes,
 * else the rule it breaks (a static string). */
static const char *check_path(const char *name, const rd_archive_limits *lim, rd_buf *norm, int *trailing_slash,
                              char *why, size_t why_len)
{
    size_t len = strlen(name);
    rd_buf_reset(norm);
    *trailing_slash = len > 0 && name[len - 1] == '/';
    if (len == 0)
        return "an empty name";
    if (name[0] == '/')
        return "an absolute path";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return "a control character in the name";
        if (c == '\\')
            return "a backslash in the name";
    }
    if (rd_utf8_invalid_at(name, len) != len)
        return "a name that is not UTF-8";
    if (len > lim->max_path) {
        snprintf(why, why_len, "a path longer than %zu bytes", lim->max_path);
        return why;
    }
    size_t depth = 0;
    for (const char *p = name; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0)
            return "an empty component ('//')";
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "a '..' component";
        if (n > lim->max_name) {
            snprintf(why, why_len, "a component longer than %zu bytes", lim->max_name);
            return why;
        }
        if (!(n == 1 && p[0] == '.')) {
            if (++depth > lim->max_depth) {
                snprintf(why, why_len, "a path deeper than %zu components", lim->max_depth);
                return why;
            }
            if (norm->len)
                rd_buf_putc(norm, '/');
            rd_buf_append(norm, p, n);
        }
        if (!slash)
            break;
        p = slash + 1;
        if (!*p)
            break; /* the one trailing '/' of a directory */
    }
    return NULL;
}

/* ---- small helpers ------------------------------------------------------------------------------------ */

static int push_str(char ***v, size_t *n, size_t *cap, char *s)
{
    if (!s)
        return -1;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, nc * sizeof *nv);
        if (!nv) {
            free(s);
            return -1;
        }
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = s;
    return 0;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Opens the directory holding the last component of rel (a normalized relative path) beneath rootfd, one
 * component at a time with O_NOFOLLOW, creating missing ones (0755) when create is set. Returns the
 * descriptor (rootfd itself, not a copy, for a top-level name; the caller closes any other) and points *last
 * at the final component; -1 with errno set on failure. */
static int open_parent(int rootfd, const char *rel, int create, const char **last)
{
    int cur = rootfd;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            break;
        char comp[RD_ARCHIVE_MAX_NAME + 1];
        size_t n = (size_t)(slash - p);
        if (n >= sizeof comp) {
            errno = ENAMETOOLONG;
            goto fail;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (create && mkdirat(cur, comp, 0755) != 0 && errno != EEXIST)
            goto fail;
        int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0)
            goto fail;
        if (cur != rootfd)
            close(cur);
        cur = next;
        p = slash + 1;
    }
    *last = p;
    return cur;
fail:;
    int saved = errno;
    if (cur != rootfd)
        close(cur);
    errno = saved;
    return -1;
}

/* ---- .gitignore --------------------------------------------------------------------------------------- */

typedef struct ig_rule {
    char **segs; /* the pattern split at '/', runs of "**" collapsed */
    size_t nsegs;
    int negate, dir_only, anchored;
} ig_rule;

typedef struct ig_file {
    size_t depth; /* components of its folder below the project */
    ig_rule *rules;
    size_t nrules;
} ig_file;

static void ig_file_free(ig_file *f)
{
    for (size_t i = 0; i < f->nrules; i++)
        free_strs(f->rules[i].segs, f->rules[i].nsegs);
    free(f->rules);
    memset(f, 0, sizeof *f);
}

/* One .gitignore line (NUL-terminated, no newline) into a rule; 0 when it is blank or a comment, -1 on out of
 * memory. */
static int ig_parse_line(char *line, ig_rule *r)
{
    memset(r, 0, sizeof *r);
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 0;
    while (len && line[len - 1] == ' ' && !(len >= 2 && line[len - 2] == '\\'))
        line[--len] = '\0'; /* trailing spaces, unless the last is escaped */
    char *p = line;
    if (*p == '!') {
        r->negate = 1;
        p++;
        len--;
    }
    while (len && p[len - 1] == '/') {
        r->dir_only = 1;
        p[--len] = '\0';
    }
    if (len == 0)
        return 0;
    r->anchored = strchr(p, '/') != NULL;
    size_t cap = 0;
    for (char *s = p;;) {
        char *slash = strchr(s, '/');
        if (slash)
            *slash = '\0';
        int dup_star = r->nsegs && strcmp(s, "**") == 0 && strcmp(r->segs[r->nsegs - 1], "**") == 0;
        if (*s && !dup_star && push_str(&r->segs, &r->nsegs, &cap, strdup(s)) != 0) {
            free_strs(r->segs, r->nsegs);
            return -1;
        }
        if (!slash)
            break;
        s = slash + 1;
    }
    if (r->nsegs == 0)
        return 0;
    return 1;
}

/* Reads dfd's .gitignore (not followed if a link; none is no rules). */
static rd_status ig_load(int dfd, const char *rel_dir, size_t depth, ig_file *out, rd_error *err)
{
    memset(out, 0, sizeof *out);
    out->depth = depth;
    int fd = openat(dfd, ".gitignore", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return RD_OK; /* missing, or a link: walked (and reported) like any other entry */
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return RD_OK;
    }
    if (st.st_size > (off_t)RD_ARCHIVE_GITIGNORE_MAX_BYTES) {
        close(fd);
        return rd_error_set(err, RD_E_CONFIG, "%s%s.gitignore is larger than %u bytes (is it really a .gitignore?)",
                            rel_dir, *rel_dir ? "/" : "", RD_ARCHIVE_GITIGNORE_MAX_BYTES);
    }
    rd_buf text = RD_BUF_INIT;
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0 && text.len <= RD_ARCHIVE_GITIGNORE_MAX_BYTES)
        rd_buf_append(&text, chunk, (size_t)n);
    int rerr = n < 0 ? errno : 0;
    close(fd);
    if (rerr) {
        rd_buf_free(&text);
        return rd_error_set(err, RD_E_IO, "cannot read %s%s.gitignore: %s", rel_dir, *rel_dir ? "/" : "",
                            strerror(rerr));
    }
    if (rd_buf_failed(&text))
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    size_t cap = 0;
    char *s = text.data;
    for (size_t off = 0; s && off < text.len;) {
        char *line = s + off;
        char *nl = memchr(line, '\n', text.len - off);
        size_t llen = nl ? (size_t)(nl - line) : text.len - off;
        line[llen] = '\0';
        off += llen + 1;
        if (memchr(line, '\0', llen))
            continue; /* a NUL inside: not a pattern git would read either */
        ig_rule r;
        int got = ig_parse_line(line, &r);
        if (got < 0)
            goto oom;
        if (got == 0)
            continue;
        if (out->nrules == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ig_rule *nv = realloc(out->rules, nc * sizeof *nv);
            if (!nv) {
                free_strs(r.segs, r.nsegs);
                goto oom;
            }
            out->rules = nv;
            cap = nc;
        }
        out->rules[out->nrules++] = r;
    }
    rd_buf_free(&text);
    return RD_OK;
oom:
    rd_buf_free(&text);
    ig_file_free(out);
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

/* Pattern segments against path components: "**" is any number of components, one or more when last. */
static int segs_match(char *const *s, size_t ns, char *const *c, size_t nc)
{
    if (ns == 0)
        return nc == 0;
    if (strcmp(s[0], "**") == 0) {
        if (ns == 1)
            return nc >= 1;
        for (size_t k = 0; k <= nc; k++)
            if (segs_match(s + 1, ns - 1, c + k, nc - k))
                return 1;
        return 0;
    }
    if (nc == 0 || fnmatch(s[0], c[0], FNM_PATHNAME) != 0)
        return 0;
    return segs_match(s + 1, ns - 1, c + 1, nc - 1);
}

/* Never packed, at any depth (archive.h). */
static int builtin_excluded(const char *base, int is_dir)
{
    static const char *const any[] = { ".env",
                                       ".env.*",
                                       ".git",
                                       "*.duckdb",
                                       "*.duckdb.wal",
                                       "*.duckdb.tmp",
                                       "*.redduck-ledger",
                                       "*.redduck-ledger.*",
                                       ".redduck-tmp-*" };
    for (size_t i = 0; i < sizeof any / sizeof any[0]; i++)
        if (fnmatch(any[i], base, 0) == 0)
            return 1;
    return is_dir && strcmp(base, "data") == 0;
}

/* ---- pack: the walk ----------------------------------------------------------------------------------- */

typedef struct walker {
    rd_archive_limits lim;
    char *comps[RD_ARCHIVE_MAX_PATH]; /* the current path's components (borrowed) */
    size_t ncomps;
    ig_file *igs; /* the .gitignore files from the project down to the current folder */
    size_t nigs, capigs;
    char **files;
    size_t nfiles, capfiles;
    char **skipped;
    size_t nskipped, capskipped;
    uint64_t total;
    rd_buf rel, norm;
    rd_error *err;
} walker;

/* The current path (comps) ignored by the .gitignore files? Last match wins, the deepest file last. */
static int ig_ignored(const walker *w, int is_dir)
{
    int ignored = 0;
    for (size_t f = 0; f < w->nigs; f++) {
        const ig_file *g = &w->igs[f];
        char *const *c = w->comps + g->depth;
        size_t nc = w->ncomps - g->depth;
        for (size_t i = 0; i < g->nrules; i++) {
            const ig_rule *r = &g->rules[i];
            if (r->dir_only && !is_dir)
                continue;
            int m = r->anchored ? segs_match(r->segs, r->nsegs, c, nc)
                                : fnmatch(r->segs[0], c[nc - 1], FNM_PATHNAME) == 0;
            if (m)
                ignored = !r->negate;
        }
    }
    return ignored;
}

static const char *rel_path(walker *w)
{
    rd_buf_reset(&w->rel);
    for (size_t i = 0; i < w->ncomps; i++) {
        if (i)
            rd_buf_putc(&w->rel, '/');
        rd_buf_puts(&w->rel, w->comps[i]);
    }
    return rd_buf_cstr(&w->rel);
}

static rd_status skip(walker *w, const char *what)
{
    rd_buf b = RD_BUF_INIT;
    char shown[SHOW_MAX + 8];
    show_name(shown, sizeof shown, rel_path(w));
    rd_buf_printf(&b, "%s: %s (not followed, not packed)", shown, what);
    if (rd_buf_failed(&b) || push_str(&w->skipped, &w->nskipped, &w->capskipped, rd_buf_detach(&b)) != 0)
        return rd_error_set(w->err, RD_E_INTERNAL, "out of memory");
    return RD_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static rd_status walk_dir(walker *w, int dfd);

static rd_status walk_entry(walker *w, int dfd, const char *name)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return rd_error_set(w->err, RD_E_IO, "cannot read %s: %s", rel_path(w), strerror(errno));
    int is_dir = S_ISDIR(st.st_mode);
    if (builtin_excluded(name, is_dir) || ig_ignored(w, is_dir))
        return RD_OK;
    if (S_ISLNK(st.st_mode))
        return skip(w, "a symbolic link");
    if (!is_dir && !S_ISREG(st.st_mode))
        return skip(w, S_ISFIFO(st.st_mode) ? "a fifo" : S_ISSOCK(st.st_mode) ? "a socket" : "a device");
    const char *rel = rel_path(w);
    char why[96], shown[SHOW_MAX + 8];
    int slash;
    const char *bad = check_path(rel, &w->lim, &w->norm, &slash, why, sizeof why);
    if (bad) {
        show_name(shown, sizeof shown, rel);
        return rd_error_set(w->err, RD_E_CONFIG,
                            "cannot deploy '%s': %s, which the server refuses (rename it, or add it to .gitignore)",
                            shown, bad);
    }
    if (is_dir) {
        int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            return rd_error_set(w->err, RD_E_IO, "cannot open %s: %s", rel, strerror(errno));
        rd_status st2 = walk_dir(w, sub);
        close(sub);
        return st2;
    }
    if (w->nfiles + 1 > w->lim.max_entries)
        return rd_error_set(w->err, RD_E_CONFIG,
                            "the project has more than %zu files to deploy (add what the server does not need to "
                            ".gitignore)",
                            w->lim.max_entries);
    if ((uint64_t)st.st_size > w->lim.max_file_bytes)
        return rd_error_set(w->err, RD_E_CONFIG,
                            "%s is larger than %llu bytes, the most one deployed file may hold (add it to .gitignore)",
                            rel, (unsigned long long)w->lim.max_file_bytes);
    w->total += (uint64_t)st.st_size;
    if (w->total > w->lim.max_total_bytes)
        return rd_error_set(w->err, RD_E_CONFIG,
                            "the project's files come to more than %llu bytes, the most a deployment may hold (the "
                            "limit was passed at %s; add large files to .gitignore)",
                            (unsigned long long)w->lim.max_total_bytes, rel);
    if (push_str(&w->files, &w->nfiles, &w->capfiles, strdup(rel)) != 0)
        return rd_error_set(w->err, RD_E_INTERNAL, "out of memory");
    return RD_OK;
}

static rd_status walk_dir(walker *w, int dfd)
{
    if (w->ncomps >= sizeof w->comps / sizeof w->comps[0])
        return rd_error_set(w->err, RD_E_CONFIG, "%s: folders nested too deep", rel_path(w));
    rd_status st = RD_OK;
    int pushed = 0;
    if (w->nigs == w->capigs) {
        size_t nc = w->capigs ? w->capigs * 2 : 8;
        ig_file *nv = realloc(w->igs, nc * sizeof *nv);
        if (!nv)
            return rd_error_set(w->err, RD_E_INTERNAL, "out of memory");
        w->igs = nv;
        w->capigs = nc;
    }
    st = ig_load(dfd, rel_path(w), w->ncomps, &w->igs[w->nigs], w->err);
    if (st != RD_OK)
        return st;
    w->nigs++;
    pushed = 1;

    char **names = NULL;
    size_t nnames = 0, cap = 0;
    int listfd = dup(dfd);
    DIR *d = listfd >= 0 ? fdopendir(listfd) : NULL;
    if (!d) {
        if (listfd >= 0)
            close(listfd);
        st = rd_error_set(w->err, RD_E_IO, "cannot list %s: %s", w->ncomps ? rel_path(w) : "the project folder",
                          strerror(errno));
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (push_str(&names, &nnames, &cap, strdup(de->d_name)) != 0) {
            st = rd_error_set(w->err, RD_E_INTERNAL, "out of memory");
            break;
        }
    }
    closedir(d);
    if (st == RD_OK && nnames)
        qsort(names, nnames, sizeof *names, cmp_names);
    for (size_t i = 0; st == RD_OK && i < nnames; i++) {
        w->comps[w->ncomps++] = names[i];
        st = walk_entry(w, dfd, names[i]);
        w->ncomps--;
    }
    free_strs(names, nnames);
done:
    if (pushed)
        ig_file_free(&w->igs[--w->nigs]);
    return st;
}

/* ---- pack: the writer --------------------------------------------------------------------------------- */

static la_ssize_t write_to_buf(struct archive *a, void *ud, const void *p, size_t n)
{
    (void)a;
    return rd_buf_append(ud, p, n) == RD_OK ? (la_ssize_t)n : -1;
}

/* Appends the file rel (beneath rootfd) to the archive: header from fstat, then exactly that many bytes. */
static rd_status pack_file(struct archive *a, struct archive_entry *e, int rootfd, const char *rel, uint64_t *total,
                           char *chunk, rd_error *err)
{
    const char *last;
    int pfd = open_parent(rootfd, rel, 0, &last);
    int fd = pfd < 0 ? -1 : openat(pfd, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int oerr = errno;
    if (pfd >= 0 && pfd != rootfd)
        close(pfd);
    if (fd < 0)
        return rd_error_set(err, RD_E_IO, "cannot read %s: %s (did it change while packing?)", rel, strerror(oerr));
    struct stat st;
    rd_status rs = RD_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rs = rd_error_set(err, RD_E_IO, "%s changed while packing (deploy again)", rel);
        goto out;
    }
    *total += (uint64_t)st.st_size;
    archive_entry_clear(e);
    archive_entry_copy_pathname(e, rel);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, st.st_size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (archive_write_header(a, e) != ARCHIVE_OK) {
        rs = rd_error_set(err, RD_E_INTERNAL, "cannot pack %s: %s", rel, archive_error_string(a));
        goto out;
    }
    uint64_t left = (uint64_t)st.st_size;
    for (;;) {
        ssize_t n = read(fd, chunk, IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rs = rd_error_set(err, RD_E_IO, "cannot read %s: %s", rel, strerror(errno));
            goto out;
        }
        if ((uint64_t)n > left || (n == 0 && left > 0)) {
            rs = rd_error_set(err, RD_E_IO, "%s changed size while packing (deploy again)", rel);
            goto out;
        }
        if (n == 0)
            break;
        if (archive_write_data(a, chunk, (size_t)n) != n) {
            rs = rd_error_set(err, RD_E_INTERNAL, "cannot pack %s: %s", rel, archive_error_string(a));
            goto out;
        }
        left -= (uint64_t)n;
    }
out:
    close(fd);
    return rs;
}

rd_status rd_archive_pack(const char *project_dir, const rd_archive_limits *limits, rd_buf *out,
                          rd_archive_pack_result *res, rd_error *err)
{
    if (!project_dir || !*project_dir || !out)
        return rd_error_set(err, RD_E_USAGE, "no project folder given");
    int rootfd = open(project_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return rd_error_set(err, RD_E_IO, "cannot open project folder %s: %s", project_dir, strerror(errno));
    walker w;
    memset(&w, 0, sizeof w);
    w.lim = limits_of(limits);
    w.err = err;
    rd_buf_init(&w.rel);
    rd_buf_init(&w.norm);
    rd_status st = walk_dir(&w, rootfd);
    rd_buf_free(&w.rel);
    rd_buf_free(&w.norm);
    free(w.igs);
    if (st == RD_OK && w.nfiles)
        qsort(w.files, w.nfiles, sizeof *w.files, cmp_names);

    size_t old_len = out->len;
    struct archive *a = NULL;
    struct archive_entry *e = NULL;
    char *chunk = NULL;
    uint64_t total = 0;
    if (st == RD_OK) {
        a = archive_write_new();
        e = archive_entry_new();
        chunk = malloc(IO_CHUNK);
        if (!a || !e || !chunk)
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    if (st == RD_OK && (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
                        archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
                        archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
                        archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
                        archive_write_set_filter_option(a, "gzip", "compression-level", "6") != ARCHIVE_OK ||
                        archive_write_open2(a, out, NULL, write_to_buf, NULL, NULL) != ARCHIVE_OK))
        st = rd_error_set(err, RD_E_INTERNAL, "cannot start the archive: %s", archive_error_string(a));
    for (size_t i = 0; st == RD_OK && i < w.nfiles; i++) {
        st = pack_file(a, e, rootfd, w.files[i], &total, chunk, err);
        if (st == RD_OK && total > w.lim.max_total_bytes)
            st = rd_error_set(err, RD_E_IO, "%s grew while packing past the deployment limit (deploy again)",
                              w.files[i]);
    }
    if (st == RD_OK && archive_write_close(a) != ARCHIVE_OK)
        st = rd_error_set(err, RD_E_INTERNAL, "cannot finish the archive: %s", archive_error_string(a));
    if (st == RD_OK && rd_buf_failed(out))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (a)
        archive_write_free(a);
    archive_entry_free(e);
    free(chunk);
    close(rootfd);
    if (st != RD_OK) {
        if (!rd_buf_failed(out) && out->data) {
            out->len = old_len;
            out->data[old_len] = '\0';
        }
        free_strs(w.files, w.nfiles);
        free_strs(w.skipped, w.nskipped);
        return st;
    }
    if (res) {
        res->files = w.files;
        res->nfiles = w.nfiles;
        res->total_bytes = total;
        res->skipped = w.skipped;
        res->nskipped = w.nskipped;
    } else {
        free_strs(w.files, w.nfiles);
        free_strs(w.skipped, w.nskipped);
    }
    return RD_OK;
}

void rd_archive_pack_result_free(rd_archive_pack_result *res)
{
    if (!res)
        return;
    free_strs(res->files, res->nfiles);
    free_strs(res->skipped, res->nskipped);
    memset(res, 0, sizeof *res);
}

/* ---- unpack ------------------------------------------------------------------------------------------- */

/* The set of names seen: open addressing, FNV-1a. */
typedef struct name_set {
    char **slots;
    size_t cap, n;
} name_set;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* 1 when added, 0 when already there, -1 on out of memory. */
static int name_set_add(name_set *set, const char *name)
{
    if ((set->n + 1) * 2 > set->cap) {
        size_t nc = set->cap ? set->cap * 2 : 64;
        char **ns = calloc(nc, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i])
                continue;
            size_t j = (size_t)fnv1a(set->slots[i]) & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = set->slots[i];
        }
        free(set->slots);
        set->slots = ns;
        set->cap = nc;
    }
    size_t j = (size_t)fnv1a(name) & (set->cap - 1);
    for (; set->slots[j]; j = (j + 1) & (set->cap - 1))
        if (strcmp(set->slots[j], name) == 0)
            return 0;
    if (!(set->slots[j] = strdup(name)))
        return -1;
    set->n++;
    return 1;
}

static void name_set_free(name_set *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slots[i]);
    free(set->slots);
}

typedef struct unpacker {
    rd_archive_limits lim;
    struct archive *outer; /* gzip → the tar stream, when the input is compressed */
    struct archive *in;    /* the tar reader */
    unsigned char *block;  /* outer's output, fed to in */
    uint64_t stream_bytes, stream_cap;
    int bomb, outer_failed;
    char outer_error[200];
    name_set names;
    rd_buf norm;
} unpacker;

static la_ssize_t read_decompressed(struct archive *a, void *ud, const void **buf)
{
    (void)a;
    unpacker *u = ud;
    la_ssize_t n = archive_read_data(u->outer, u->block, IO_CHUNK);
    if (n < 0) {
        u->outer_failed = 1;
        snprintf(u->outer_error, sizeof u->outer_error, "%s", archive_error_string(u->outer));
        return -1;
    }
    u->stream_bytes += (uint64_t)n;
    if (u->stream_bytes > u->stream_cap) {
        u->bomb = 1;
        return -1;
    }
    *buf = u->block;
    return n;
}

/* The refusal message: "archive refused: entry N 'NAME': RULE (HINT); nothing was unpacked". */
#define HINT_SHAPE "redduck deploy packs only a project's regular files: deploy with it"
#define HINT_LIMIT "deploy a smaller project (.gitignore what the server does not need) or raise the server's limit"

static rd_status refuse(rd_error *err, size_t idx, const char *name, const char *rule, const char *hint)
{
    char shown[SHOW_MAX + 8];
    show_name(shown, sizeof shown, name ? name : "");
    return rd_error_set(err, RD_E_CONFIG, "archive refused: entry %zu '%s': %s (%s); nothing was unpacked", idx, shown,
                        rule, hint);
}

static rd_status stream_error(unpacker *u, rd_error *err, size_t idx, const char *last, int in_data)
{
    if (u->bomb)
        return rd_error_set(err, RD_E_CONFIG,
                            "archive refused: it expands to more than %llu bytes of tar (a decompression bomb?) after "
                            "%zu entries (" HINT_LIMIT "); nothing was unpacked",
                            (unsigned long long)u->stream_cap, idx);
    char shown[SHOW_MAX + 8];
    show_name(shown, sizeof shown, last ? last : "");
    const char *why = u->outer_failed ? u->outer_error : archive_error_string(u->in);
    char why_shown[SHOW_MAX + 8];
    show_name(why_shown, sizeof why_shown, why ? why : "unreadable");
    if (idx == 0)
        return rd_error_set(err, RD_E_CONFIG,
                            "archive refused: not a tar archive, plain or gzip-compressed (%s; " HINT_SHAPE
                            "); nothing was unpacked",
                            why_shown);
    return rd_error_set(err, RD_E_CONFIG,
                        "archive refused: damaged or truncated %s entry %zu '%s' (%s; " HINT_SHAPE
                        "); nothing was unpacked",
                        in_data ? "in" : "after", idx, shown, why_shown);
}

static const char *type_rule(struct archive_entry *e)
{
    if (archive_entry_hardlink(e))
        return "a hard link";
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
        return archive_entry_symlink(e)            ? "a symbolic link"
               : archive_entry_sparse_count(e) > 0 ? "a sparse file"
                                                   : NULL;
    case AE_IFDIR:
        return archive_entry_symlink(e) ? "a symbolic link" : NULL;
    case AE_IFLNK:
        return "a symbolic link";
    case AE_IFCHR:
        return "a character device";
    case AE_IFBLK:
        return "a block device";
    case AE_IFIFO:
        return "a fifo";
    case AE_IFSOCK:
        return "a socket";
    default:
        return "an entry that is neither a file nor a folder";
    }
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Extracts every entry beneath rootfd. */
static rd_status extract(unpacker *u, int rootfd, rd_error *err)
{
    struct archive_entry *e;
    size_t idx = 0;
    uint64_t total = 0;
    char last[SHOW_MAX + 8] = "";
    for (;;) {
        int r = archive_read_next_header(u->in, &e);
        if (r == ARCHIVE_EOF)
            return RD_OK;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return stream_error(u, err, idx, last, 0);
        idx++;
        const char *name = archive_entry_pathname(e);
        if (!name)
            return refuse(err, idx, "", "an entry without a name", HINT_SHAPE);
        snprintf(last, sizeof last, "%s", name);
        if (idx > u->lim.max_entries) {
            char why[96];
            snprintf(why, sizeof why, "more than %zu entries", u->lim.max_entries);
            return refuse(err, idx, name, why, HINT_LIMIT);
        }
        const char *rule = type_rule(e);
        if (rule)
            return refuse(err, idx, name, rule, HINT_SHAPE);
        int is_dir = archive_entry_filetype(e) == AE_IFDIR, slash;
        char why[96];
        rule = check_path(name, &u->lim, &u->norm, &slash, why, sizeof why);
        if (rule)
            return refuse(err, idx, name, rule, HINT_SHAPE);
        if (rd_buf_failed(&u->norm))
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        if (slash && !is_dir)
            return refuse(err, idx, name, "a file whose name ends in '/'", HINT_SHAPE);
        const char *norm = rd_buf_cstr(&u->norm);
        if (!*norm) {
            if (is_dir)
                continue; /* "./": the deployment's own folder */
            return refuse(err, idx, name, "an empty name", HINT_SHAPE);
        }
        int added = name_set_add(&u->names, norm);
        if (added < 0)
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        if (added == 0)
            return refuse(err, idx, name, "a name that comes twice", HINT_SHAPE);
        if (!is_dir && archive_entry_size_is_set(e) &&
            (archive_entry_size(e) < 0 || (uint64_t)archive_entry_size(e) > u->lim.max_file_bytes)) {
            snprintf(why, sizeof why, "a file larger than %llu bytes", (unsigned long long)u->lim.max_file_bytes);
            return refuse(err, idx, name, why, HINT_LIMIT);
        }

        const char *base;
        int pfd = open_parent(rootfd, norm, 1, &base);
        if (pfd < 0)
            return refuse(err, idx, name,
                          errno == ENOTDIR || errno == EEXIST || errno == ELOOP ? "a path whose folder is a file"
                                                                                : strerror(errno),
                          HINT_SHAPE);
        rd_status st = RD_OK;
        if (is_dir) {
            struct stat sb;
            if (mkdirat(pfd, base, 0755) != 0 &&
                (errno != EEXIST || fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode)))
                st = refuse(err, idx, name, errno == EEXIST ? "a folder and a file share this name" : strerror(errno),
                            HINT_SHAPE);
        } else {
            int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (fd < 0) {
                st = refuse(err, idx, name, errno == EEXIST ? "a file and a folder share this name" : strerror(errno),
                            HINT_SHAPE);
            } else {
                uint64_t bytes = 0;
                for (;;) {
                    la_ssize_t n = archive_read_data(u->in, u->block + IO_CHUNK, IO_CHUNK);
                    if (n == 0)
                        break;
                    if (n < 0) {
                        st = stream_error(u, err, idx, name, 1);
                        break;
                    }
                    bytes += (uint64_t)n;
                    total += (uint64_t)n;
                    if (bytes > u->lim.max_file_bytes) {
                        snprintf(why, sizeof why, "a file larger than %llu bytes",
                                 (unsigned long long)u->lim.max_file_bytes);
                        st = refuse(err, idx, name, why, HINT_LIMIT);
                        break;
                    }
                    if (total > u->lim.max_total_bytes) {
                        snprintf(why, sizeof why, "the files come to more than %llu bytes",
                                 (unsigned long long)u->lim.max_total_bytes);
                        st = refuse(err, idx, name, why, HINT_LIMIT);
                        break;
                    }
                    if (write_all(fd, u->block + IO_CHUNK, (size_t)n) != 0) {
                        st = rd_error_set(err, RD_E_IO, "cannot write entry %zu of the archive: %s", idx,
                                          strerror(errno));
                        break;
                    }
                }
                if (close(fd) != 0 && st == RD_OK)
                    st = rd_error_set(err, RD_E_IO, "cannot write entry %zu of the archive: %s", idx, strerror(errno));
            }
        }
        if (pfd != rootfd)
            close(pfd);
        if (st != RD_OK)
            return st;
    }
}

/* Removes name beneath dfd and everything in it, never following a link. */
static void remove_tree(int dfd, const char *name, int depth)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        unlinkat(dfd, name, 0);
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            push_str(&names, &n, &cap, strdup(de->d_name));
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (depth < 300 && fstatat(dirfd(d), names[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(dirfd(d), names[i], depth + 1);
        else
            unlinkat(dirfd(d), names[i], 0);
    }
    free_strs(names, n);
    closedir(d);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

static int rename_noreplace(int dfd, const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
#endif
    struct stat sb;
    if (fstatat(dfd, to, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(dfd, from, dfd, to);
}

rd_status rd_archive_unpack(const void *data, size_t len, const char *dest_dir, const rd_archive_limits *limits,
                            rd_error *err)
{
    if (!dest_dir || !*dest_dir || (!data && len))
        return rd_error_set(err, RD_E_USAGE, "no archive or destination given");
    /* dest_dir as parent + base */
    char *parent = strdup(dest_dir);
    if (!parent)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    size_t dl = strlen(parent);
    while (dl > 1 && parent[dl - 1] == '/')
        parent[--dl] = '\0';
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    const char *pdir = slash ? (slash == parent ? "/" : parent) : ".";
    if (slash)
        *slash = '\0';
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        free(parent);
        return rd_error_set(err, RD_E_USAGE, "destination %s must name a new folder", dest_dir);
    }
    rd_status st = RD_OK;
    unpacker u;
    memset(&u, 0, sizeof u);
    rd_buf_init(&u.norm);
    u.lim = limits_of(limits);
    u.stream_cap = u.lim.max_total_bytes + (uint64_t)u.lim.max_entries * ENTRY_STREAM_ALLOWANCE + STREAM_SLACK;
    int pfd = -1, rootfd = -1;
    char tmpname[256] = "";
    struct stat sb;

    pfd = open(pdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        st = rd_error_set(err, RD_E_IO, "cannot open %s: %s", pdir, strerror(errno));
        goto done;
    }
    if (fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        st = rd_error_set(err, RD_E_IO, "%s already exists (a deployment is unpacked into a new folder)", dest_dir);
        goto done;
    }
    for (int attempt = 0; attempt < 100 && rootfd < 0; attempt++) {
        unsigned char rnd[6];
        int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ssize_t got = rfd >= 0 ? read(rfd, rnd, sizeof rnd) : -1;
        if (rfd >= 0)
            close(rfd);
        if (got != (ssize_t)sizeof rnd) {
            st = rd_error_set(err, RD_E_IO, "cannot read /dev/urandom");
            goto done;
        }
        snprintf(tmpname, sizeof tmpname, ".%.200s.part-%02x%02x%02x%02x%02x%02x", base, rnd[0], rnd[1], rnd[2], rnd[3],
                 rnd[4], rnd[5]);
        if (mkdirat(pfd, tmpname, 0700) != 0) {
            if (errno == EEXIST)
                continue;
            st = rd_error_set(err, RD_E_IO, "cannot create a folder in %s: %s", pdir, strerror(errno));
            tmpname[0] = '\0';
            goto done;
        }
        rootfd = openat(pfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rootfd < 0) {
            st = rd_error_set(err, RD_E_IO, "cannot open the folder it made in %s: %s", pdir, strerror(errno));
            goto done;
        }
    }
    if (rootfd < 0) {
        st = rd_error_set(err, RD_E_IO, "cannot create a unique folder in %s", pdir);
        tmpname[0] = '\0';
        goto done;
    }

    u.block = malloc(2 * IO_CHUNK);
    u.in = archive_read_new();
    if (!u.block || !u.in) {
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        goto done;
    }
    archive_read_support_format_tar(u.in);
    const unsigned char *bytes = data;
    int opened;
    if (len >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
        /* gzip: decompressed by a raw reader whose output is counted before the tar reader sees it, and that
         * output gets no filter of its own (a gzip inside the gzip is not a tar) */
        u.outer = archive_read_new();
        if (!u.outer) {
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            goto done;
        }
        archive_read_support_filter_gzip(u.outer);
        archive_read_support_format_raw(u.outer);
        struct archive_entry *raw;
        if (archive_read_open_memory(u.outer, data, len) != ARCHIVE_OK ||
            archive_read_next_header(u.outer, &raw) != ARCHIVE_OK) {
            u.outer_failed = 1;
            snprintf(u.outer_error, sizeof u.outer_error, "%s", archive_error_string(u.outer));
            st = stream_error(&u, err, 0, NULL, 0);
            goto done;
        }
        if (archive_filter_count(u.outer) > 2) { /* gzip and the memory reader: one layer only */
            st = rd_error_set(err, RD_E_CONFIG,
                              "archive refused: compressed more than once (" HINT_SHAPE "); nothing was unpacked");
            goto done;
        }
        opened = archive_read_open(u.in, &u, NULL, read_decompressed, NULL);
    } else {
        opened = archive_read_open_memory(u.in, data, len);
    }
    if (opened != ARCHIVE_OK) {
        st = stream_error(&u, err, 0, NULL, 0);
        goto done;
    }
    st = extract(&u, rootfd, err);
    if (st == RD_OK && rename_noreplace(pfd, tmpname, base) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot move the unpacked deployment to %s: %s", dest_dir, strerror(errno));
    if (st == RD_OK)
        tmpname[0] = '\0';
done:
    if (u.in)
        archive_read_free(u.in);
    if (u.outer)
        archive_read_free(u.outer);
    free(u.block);
    name_set_free(&u.names);
    rd_buf_free(&u.norm);
    if (rootfd >= 0)
        close(rootfd);
    if (pfd >= 0) {
        if (tmpname[0])
            remove_tree(pfd, tmpname, 0);
        close(pfd);
    }
    free(parent);
    return st;
}
