#define _GNU_SOURCE
#include "CAtriumProcess.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>

int atrium_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory, const char *log_path) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attributes);
    if (rc != 0) { posix_spawn_file_actions_destroy(&actions); return rc; }

    if ((rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)) != 0) goto done;
    if ((rc = posix_spawn_file_actions_addopen(&actions, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600)) != 0) goto done;
    if ((rc = posix_spawn_file_actions_adddup2(&actions, 1, 2)) != 0) goto done;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    if ((rc = posix_spawn_file_actions_addchdir_np(&actions, directory)) != 0) goto done;
#else
    (void)directory;
    rc = ENOSYS;
    goto done;
#endif
    // Nothing of the hub's leaks into the workspace: not its listening socket (which would keep
    // the port bound after the hub exits), not its pipes, not its database.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) != 0) goto done;
#endif
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if ((rc = posix_spawnattr_setsigmask(&attributes, &none)) != 0) goto done;
    if ((rc = posix_spawnattr_setsigdefault(&attributes, &all)) != 0) goto done;
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#ifdef POSIX_SPAWN_SETSID
    flags |= POSIX_SPAWN_SETSID;
#else
    flags |= POSIX_SPAWN_SETPGROUP;
#endif
    if ((rc = posix_spawnattr_setflags(&attributes, flags)) != 0) goto done;
    rc = posix_spawn(pid, path, &actions, &attributes, argv, envp);
done:
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return rc;
}

int atrium_limit_data(pid_t pid, long long bytes) {
    struct rlimit limit = { (rlim_t)bytes, (rlim_t)bytes };
    return prlimit(pid, RLIMIT_DATA, &limit, NULL) == 0 ? 0 : errno;
}
