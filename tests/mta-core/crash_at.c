/* A fault a real file system cannot produce on demand: the process dies
 * (SIGKILL, as kill -9) right after a chosen system call, loaded into
 * mta-core with LD_PRELOAD by the durability test. No code of mta-core
 * knows about it.
 *
 *   MTA_CRASH_AT=file-fsync:N   after the Nth fsync of a regular file
 *                               (a queue file written, before it is named)
 *   MTA_CRASH_AT=dir-fsync:N    after the Nth fsync of a directory (the
 *                               queue file named and durable, before the 250)
 *   MTA_CRASH_AT=unlink:N       before the Nth unlink of a file under active/
 *                               (a message delivered, before it is removed)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int calls;

static int armed(const char* what) {
    const char* spec = getenv("MTA_CRASH_AT");
    size_t n = strlen(what);
    if (!spec || strncmp(spec, what, n) != 0 || spec[n] != ':') return 0;
    return atoi(spec + n + 1);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) *(void**)(&real) = dlsym(RTLD_NEXT, "fsync");  /* as dlsym(3) shows */
    int rc = real(fd);
    struct stat st;
    if (fstat(fd, &st) == 0) {
        int target = armed(S_ISDIR(st.st_mode) ? "dir-fsync" : "file-fsync");
        if (target > 0 && atomic_fetch_add(&calls, 1) + 1 == target) kill(getpid(), SIGKILL);
    }
    return rc;
}

int unlink(const char* path) {
    static int (*real)(const char*);
    if (!real) *(void**)(&real) = dlsym(RTLD_NEXT, "unlink");
    int target = armed("unlink");
    if (target > 0 && strstr(path, "/active/") && atomic_fetch_add(&calls, 1) + 1 == target) kill(getpid(), SIGKILL);
    return real(path);
}
