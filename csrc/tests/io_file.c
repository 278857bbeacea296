/* File I/O through the ring: openat relative to a directory fd, write and
 * read back (plain, vectored, registered buffers), fsync, fdatasync,
 * fallocate, sync_file_range, close; the same with O_DIRECT on a
 * filesystem that accepts it (tmpfs does not: other directories are
 * tried, and where none accepts it the test says so); and one task with
 * 32 reads in flight, reaped in completion order and checked byte for
 * byte. Header contract: io.h (files). */
#include "test_common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define BLOCK 4096
#define NBLOCKS 32

struct ctx
{
    int dirfd;
    char const *name;
    int direct;     /* open with O_DIRECT */
    int fixed;      /* use the registered buffers */
    unsigned char *bufs[2]; /* BLOCK * NBLOCKS each, BLOCK aligned */
    int done;
};

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)((i * 131u + seed * 7u + (i >> 12)) & 0xff);
    }
}

static monad_async_result file_fn(monad_async_task task)
{
    struct ctx *c = task->user_ptr;
    int const flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC |
                      (c->direct ? O_DIRECT : 0);
    monad_async_result r =
        monad_async_io_openat(task, NULL, c->dirfd, c->name, flags, 0600);
    CHECK_RESULT(r);
    int const fd = (int)r.value;
    size_t const total = BLOCK * NBLOCKS;
    CHECK_RESULT(monad_async_io_fallocate(task, NULL, fd, 0, 0, (int64_t)total));
    struct stat sb;
    CHECK_EQ(fstat(fd, &sb), 0);
    CHECK_EQ(sb.st_size, total);

    unsigned char *const out = c->bufs[0];
    unsigned char *const in = c->bufs[1];
    fill(out, total, 1);
    /* Whole-file write then read back. */
    r = c->fixed ? monad_async_io_write_fixed(task, NULL, fd, out, total, 0, 0)
                 : monad_async_io_write(task, NULL, fd, out, total, 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, total);
    CHECK_RESULT(monad_async_io_fsync(task, NULL, fd));
    memset(in, 0, total);
    r = c->fixed ? monad_async_io_read_fixed(task, NULL, fd, in, total, 0, 1)
                 : monad_async_io_read(task, NULL, fd, in, total, 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, total);
    test_kernel_wrote(in, total);
    CHECK(memcmp(in, out, total) == 0);

    /* Vectored: blocks 0..3 written from two iovecs, read into three. */
    fill(out, 4 * BLOCK, 2);
    struct iovec wv[2] = {{out, BLOCK}, {out + BLOCK, 3 * BLOCK}};
    r = monad_async_io_writev(task, NULL, fd, wv, 2, BLOCK);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 4 * BLOCK);
    CHECK_RESULT(monad_async_io_fdatasync(task, NULL, fd));
    CHECK_RESULT(monad_async_io_sync_file_range(task, NULL, fd, 0, (int64_t)total,
                                                SYNC_FILE_RANGE_WRITE));
    memset(in, 0, 4 * BLOCK);
    struct iovec rv[3] = {{in, 2 * BLOCK}, {in + 2 * BLOCK, BLOCK},
                          {in + 3 * BLOCK, BLOCK}};
    r = monad_async_io_readv(task, NULL, fd, rv, 3, BLOCK);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 4 * BLOCK);
    test_kernel_wrote(in, 4 * BLOCK);
    CHECK(memcmp(in, out, 4 * BLOCK) == 0);

    /* 32 reads in flight from one task, one block each, reaped in
     * completion order. */
    fill(out, total, 3);
    r = monad_async_io_write(task, NULL, fd, out, total, 0);
    CHECK_EQ(r.value, total);
    struct monad_async_io_status st[NBLOCKS];
    memset(st, 0, sizeof(st));
    memset(in, 0, total);
    for (int i = 0; i < NBLOCKS; i++) {
        /* Reverse order, so completion order need not be issue order. */
        int const b = NBLOCKS - 1 - i;
        r = c->fixed ? monad_async_io_read_fixed(task, &st[b], fd, in + b * BLOCK,
                                                 BLOCK, (int64_t)b * BLOCK, 1)
                     : monad_async_io_read(task, &st[b], fd, in + b * BLOCK, BLOCK,
                                           (int64_t)b * BLOCK);
        CHECK_RESULT(r);
    }
    int seen[NBLOCKS] = {0};
    for (int i = 0; i < NBLOCKS; i++) {
        struct monad_async_io_status *got;
        CHECK_RESULT(monad_async_io_reap(task, &got));
        int const b = (int)(got - st);
        CHECK(b >= 0 && b < NBLOCKS);
        CHECK_EQ(seen[b]++, 0);
        CHECK_RESULT(got->result);
        CHECK_EQ(got->result.value, BLOCK);
        test_kernel_wrote(in + b * BLOCK, BLOCK);
        CHECK(memcmp(in + b * BLOCK, out + b * BLOCK, BLOCK) == 0);
    }
    struct monad_async_io_status *got;
    CHECK_ERROR(monad_async_io_reap(task, &got), ENOENT);

    /* Reading past the end gives 0 bytes, not an error. */
    r = monad_async_io_read(task, NULL, fd, in, BLOCK, (int64_t)total);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    CHECK_RESULT(monad_async_io_close(task, NULL, fd));
    /* Closed: EBADF from the kernel. */
    CHECK_ERROR(monad_async_io_read(task, NULL, fd, in, BLOCK, 0), EBADF);
    /* Opening a missing file: ENOENT. */
    CHECK_ERROR(monad_async_io_openat(task, NULL, c->dirfd, "no/such/file",
                                      O_RDONLY, 0),
                ENOENT);
    c->done++;
    return monad_async_make_success(0);
}

static void run_case(monad_async_executor ex, monad_async_task t, struct ctx *c)
{
    t->user_code = file_fn;
    t->user_ptr = c;
    int const before = c->done;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 60000);
    CHECK_RESULT(t->result);
    CHECK_EQ(c->done, before + 1);
    CHECK_EQ(ex->io.submitted, ex->io.completed);
    CHECK_EQ(unlinkat(c->dirfd, c->name, 0), 0);
}

/* A directory whose filesystem accepts O_DIRECT, or -1 (with why). */
static int find_direct_dir(char *why, size_t whylen)
{
    char const *cands[] = {getenv("MONAD_ASYNC_TEST_DIRECT_DIR"), "/var/tmp",
                           ".", getenv("TMPDIR"), "/tmp"};
    why[0] = 0;
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        if (cands[i] == NULL || cands[i][0] == 0) {
            continue;
        }
        int const dfd = open(cands[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            continue;
        }
        int const fd = openat(dfd, "monad_async_direct_probe",
                              O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            unlinkat(dfd, "monad_async_direct_probe", 0);
            test_note("O_DIRECT tested in %s", cands[i]);
            return dfd;
        }
        size_t const n = strlen(why);
        snprintf(why + n, whylen - n, "%s: %s; ", cands[i], strerror(errno));
        close(dfd);
    }
    return -1;
}

int main(void)
{
    test_watchdog(200, "io_file");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_executor ex = test_make_ring_executor(64, 0);
    monad_async_task t = test_make_task(sw, 0);
    struct ctx c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(posix_memalign((void **)&c.bufs[i], BLOCK, BLOCK * NBLOCKS), 0);
    }
    struct iovec reg[2] = {{c.bufs[0], BLOCK * NBLOCKS}, {c.bufs[1], BLOCK * NBLOCKS}};
    CHECK_ERROR(monad_async_io_buffers_unregister(ex), ENOENT);
    CHECK_RESULT(monad_async_io_buffers_register(ex, reg, 2));
    CHECK_ERROR(monad_async_io_buffers_register(ex, reg, 2), EBUSY);

    char const *tmp = getenv("TMPDIR");
    c.dirfd = open(tmp && *tmp ? tmp : "/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(c.dirfd >= 0);
    char name[64];
    snprintf(name, sizeof(name), "monad_async_io_file.%d", (int)getpid());
    c.name = name;
    for (c.fixed = 0; c.fixed <= 1; c.fixed++) {
        run_case(ex, t, &c);
    }
    close(c.dirfd);

    char why[1024];
    c.dirfd = find_direct_dir(why, sizeof(why));
    if (c.dirfd >= 0) {
        c.direct = 1;
        for (c.fixed = 0; c.fixed <= 1; c.fixed++) {
            run_case(ex, t, &c);
        }
        close(c.dirfd);
    }
    else {
        test_note("O_DIRECT NOT tested: no candidate directory's filesystem "
                  "accepts it (%s); set MONAD_ASYNC_TEST_DIRECT_DIR to one "
                  "that does",
                  why);
    }
    CHECK_RESULT(monad_async_io_buffers_unregister(ex));
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    free(c.bufs[0]);
    free(c.bufs[1]);
    printf("io_file: ok\n");
    return 0;
}
