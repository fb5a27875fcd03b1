/* archive.h — a project folder as a tar archive: rd_archive_pack on the client (`redduck deploy`) and the
 * hostile-safe rd_archive_unpack on the server. Owns the file selection (built-in exclusions and .gitignore),
 * the deterministic tar layout and the checks an uploaded archive must pass; does not own HTTP, versions or
 * where deployments live (the server does).
 *
 * The archive: a gzip-compressed pax tar (libarchive's "pax restricted": plain ustar headers, a pax header
 * only for a long or non-ASCII name, written as bytes) of the project's regular files, no directory entries,
 * paths relative and sorted bytewise, each entry mode 0644, mtime 0, uid/gid 0, no user/group names, and a
 * gzip header without name or time. So the same tree gives the same bytes (with the same zlib), and the
 * SHA-256 of the archive identifies a version. Gzip because project files are text (YAML, SQL) that shrinks
 * several times over the network, and the server must bound decompression anyway.
 *
 * Thread safety: no global state; calls on different arguments may run at once. Not async-signal-safe. */
#ifndef RD_PROJECT_ARCHIVE_H
#define RD_PROJECT_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"

/* Defaults of rd_archive_limits (a zero field takes its default). */
#define RD_ARCHIVE_MAX_TOTAL_BYTES ((uint64_t)64 << 20) /* file contents, all entries */
#define RD_ARCHIVE_MAX_ENTRIES 10000u                   /* files and directories */
#define RD_ARCHIVE_MAX_FILE_BYTES ((uint64_t)16 << 20)  /* one file */
#define RD_ARCHIVE_MAX_DEPTH 16u                        /* path components, the file's name included (at most 256) */
#define RD_ARCHIVE_MAX_NAME 255u                        /* bytes in one component (also the most allowed) */
#define RD_ARCHIVE_MAX_PATH 1024u                       /* bytes in a whole path (at most 4 times this) */
#define RD_ARCHIVE_GITIGNORE_MAX_BYTES (1u << 20)       /* one .gitignore file */

typedef struct rd_archive_limits {
    uint64_t max_total_bytes;
    size_t max_entries;
    uint64_t max_file_bytes;
    size_t max_depth;
    size_t max_name;
    size_t max_path;
} rd_archive_limits;

/* The defaults above. */
void rd_archive_limits_default(rd_archive_limits *limits);

/* What rd_archive_pack did. Owns every string; free with rd_archive_pack_result_free. */
typedef struct rd_archive_pack_result {
    char **files; /* the packed paths, relative, sorted */
    size_t nfiles;
    uint64_t total_bytes; /* their contents */
    char **skipped;       /* warnings: "PATH: a symbolic link (not followed, not packed)", a fifo, ... */
    size_t nskipped;
} rd_archive_pack_result;

/* Packs the regular files of project_dir into out (appended; out is the caller's). Never packed, whatever
 * .gitignore says (a `!` cannot bring them back), at any depth: `.env` and `.env.*`, directories `data/` and
 * `.git`, `*.duckdb`, `*.duckdb.wal`, `*.duckdb.tmp`, `*.redduck-ledger*`, `.redduck-tmp-*`. Then the
 * .gitignore of the project and of each subfolder, as git reads them: blank lines and `#` comments, `\`
 * escapes, trailing spaces, `!` negation (a file under an excluded directory stays out), a trailing `/` for
 * directories only, a `/` at the start or in the middle anchoring the pattern to its .gitignore's folder,
 * `*`, `?`, `[...]` (fnmatch(3), never across `/`), `**` for any number of folders; the deepest file and the
 * last matching line win. Not read: .git/info/exclude and the global excludes file.
 * Symbolic links, fifos, sockets and devices are never followed nor read: they are left out and listed in
 * res->skipped. Empty folders and the executable bit are not kept. Limits (NULL: defaults) apply as the
 * server applies them, so what packs also unpacks: RD_E_CONFIG naming the file and the limit when a file,
 * the total, the count, a name, a path or the depth is over, or a name holds a control character or is not
 * UTF-8; RD_E_IO naming the file when it cannot be read or changes while packed; RD_E_CONFIG for a
 * .gitignore over RD_ARCHIVE_GITIGNORE_MAX_BYTES. On failure out keeps its old length and res is untouched;
 * res may be NULL. */
rd_status rd_archive_pack(const char *project_dir, const rd_archive_limits *limits, rd_buf *out,
                          rd_archive_pack_result *res, rd_error *err);
void rd_archive_pack_result_free(rd_archive_pack_result *res);

/* Unpacks a tar archive (plain or gzip-compressed; the caller keeps data) into dest_dir, which must not exist
 * and whose parent must: entries go into a new 0700 folder `.NAME.part-XXXXXX` beside it, renamed to dest_dir
 * (never over an existing one) only when the whole archive passed; on any failure that folder is removed
 * and nothing else has been touched. Every file is created 0644 and every folder 0755 (less what the umask
 * takes), each opened relative to its parent's descriptor with O_NOFOLLOW and O_EXCL, so nothing is written
 * outside even if the tree changes meanwhile. Limits: NULL for the defaults.
 * The archive is refused, RD_E_CONFIG, with a message naming the entry (printable characters only,
 * truncated) and the rule, never a file's contents, when: it is not a tar (or gzip tar) or is damaged or
 * truncated; an entry is not a regular file or a directory (symbolic or hard link, device, fifo, socket,
 * sparse file); a name is empty, absolute, has a `..` component or an empty one (`a//b`), a control character,
 * a backslash or bytes that are not UTF-8 (`.` components are dropped: `./a` is `a`); a name comes twice or
 * a file and a folder share a path; a component is longer than max_name, a path than max_path, or deeper than
 * max_depth; there are more than max_entries entries; a file holds more than max_file_bytes or all files more
 * than max_total_bytes (counted as read, whatever the headers claim); the decompressed stream grows past
 * max_total_bytes plus 4 KiB per entry allowed (a decompression bomb stops there, in bounded time and memory).
 * RD_E_IO when dest_dir exists or its parent cannot be written, naming the path; RD_E_INTERNAL on out of
 * memory. */
rd_status rd_archive_unpack(const void *data, size_t len, const char *dest_dir, const rd_archive_limits *limits,
                            rd_error *err);

#endif
