/* writeback.c — see writeback.h. */
#include "core/writeback.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rd_writeback {
    int fd;
    unsigned interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled by stop */
    int stopping;
};

int rd_writeback_now(const rd_writeback *w)
{
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)w;
    return 0;
#endif
}

static void *run(void *arg)
{
    rd_writeback *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += w->interval_ms / 1000;
        until.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!w->stopping && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
            ;
        if (w->stopping)
            break;
        pthread_mutex_unlock(&w->mu);
        rd_writeback_now(w); /* a failure only means the fsync will have more to do */
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

rd_status rd_writeback_start(const char *path, unsigned interval_ms, rd_writeback **out, rd_error *err)
{
    *out = NULL;
    rd_writeback *w = calloc(1, sizeof *w);
    if (!w)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    w->interval_ms = interval_ms ? interval_ms : RD_WRITEBACK_DEFAULT_INTERVAL_MS;
    w->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        free(w);
        return rd_error_set(err, RD_E_IO, "cannot open %s for its writeback: %s", path, strerror(e));
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&w->thread, NULL, run, w);
    if (e != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        close(w->fd);
        free(w);
        return rd_error_set(err, RD_E_INTERNAL, "cannot start the writeback thread: %s", strerror(e));
    }
    *out = w;
    return RD_OK;
}

void rd_writeback_stop(rd_writeback *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    close(w->fd);
    free(w);
}
