/* test_writeback.c — early writeback of a file's dirty pages (core/writeback.h), seen through the kernel's
 * own count of the file's dirty pages (cachestat, Linux 6.5+): written pages stay dirty for half a minute if
 * left to the kernel, and the writeback thread (or rd_writeback_now) makes them go within seconds; stop
 * returns at once even with a long interval; a file that cannot be opened is an error naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "core/writeback.h"
#include "test_util.h"

#define FILE_BYTES (16u << 20)

static char dir[256], path[300];

static int setup(void **state)
{
    (void)state;
    assert_int_equal(rd_test_mkdtemp(dir, sizeof dir, "rd-writeback"), 0);
    snprintf(path, sizeof path, "%s/file", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_test_rm_tree(dir);
    return 0;
}

/* Writes FILE_BYTES of fresh data (dirty pages, not written back yet). */
static void write_file(void)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    char *b = malloc(1u << 20);
    assert_non_null(b);
    for (unsigned i = 0; i < FILE_BYTES >> 20; i++) {
        memset(b, (int)i + 1, 1u << 20);
        assert_int_equal(write(fd, b, 1u << 20), 1 << 20);
    }
    free(b);
    close(fd);
    assert_true(rd_test_dirty_pages(path) > 0); /* needs Linux 6.5+ (cachestat) */
}

static void test_the_thread_writes_dirty_pages(void **state)
{
    (void)state;
    write_file();
    rd_writeback *w = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_writeback_start(path, 10, &w, &err), RD_OK);
    assert_non_null(w);
    assert_int_equal(rd_test_clean_within_10s(path), 1);
    /* pages dirtied later are written too: the thread goes on */
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    char b[65536];
    memset(b, 'x', sizeof b);
    for (int i = 0; i < 64; i++)
        assert_int_equal(write(fd, b, sizeof b), (ssize_t)sizeof b);
    close(fd);
    assert_int_equal(rd_test_clean_within_10s(path), 1);
    rd_writeback_stop(w);
}

static void test_now_writes_them_on_the_callers_thread(void **state)
{
    (void)state;
    write_file();
    rd_writeback *w = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_writeback_start(path, 600000, &w, &err), RD_OK); /* the thread waits 10 minutes */
    assert_int_equal(rd_writeback_now(w), 0);
    assert_int_equal(rd_test_clean_within_10s(path), 1);
    double t0 = rd_monotonic_seconds();
    rd_writeback_stop(w); /* wakes the thread: no waiting out its interval */
    assert_true(rd_monotonic_seconds() - t0 < 30);
}

static void test_a_file_that_cannot_be_opened(void **state)
{
    (void)state;
    rd_writeback *w = (rd_writeback *)&w;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_writeback_start(path, 0, &w, &err), RD_E_IO); /* the file was never made */
    assert_null(w);
    assert_non_null(strstr(err.message, path));
    rd_writeback_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_the_thread_writes_dirty_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_now_writes_them_on_the_callers_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_that_cannot_be_opened, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
