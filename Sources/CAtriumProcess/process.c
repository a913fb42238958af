#define _GNU_SOURCE
#include "CAtriumProcess.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <grp.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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


// What the child reports through its error pipe when a step before exec fails.
struct atrium_child_error { int stage; int error; };

static void atrium_child_fail(int pipe_fd, int stage) {
    struct atrium_child_error report = { stage, errno };
    ssize_t ignored = write(pipe_fd, &report, sizeof report);
    (void)ignored;
    _exit(127);
}

static void atrium_close_from(int first, int keep) {
    // close_range(2) where the kernel has it, else one close per possible descriptor.
#ifdef SYS_close_range
    if (keep >= first) {
        if (keep > first && syscall(SYS_close_range, (unsigned)first, (unsigned)(keep - 1), 0) != 0) goto fallback;
        if (syscall(SYS_close_range, (unsigned)(keep + 1), ~0U, 0) != 0) goto fallback;
    } else if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) != 0) {
        goto fallback;
    }
    return;
fallback:
#endif
    {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 1048576) max = 1048576;
        for (int fd = first; fd < max; fd++) if (fd != keep) close(fd);
    }
}

int atrium_spawn_as(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory,
                    const char *log_path, uid_t uid, gid_t gid, const gid_t *groups, int group_count,
                    const int *cgroup_fds, int cgroup_fd_count, int *failed_stage) {
    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) return errno;
    sigset_t all, old;
    sigfillset(&all);
    // No signal handler of the hub may run in the child between fork and exec.
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = fork();
    if (child < 0) {
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(error_pipe[0]);
        close(error_pipe[1]);
        return saved;
    }
    if (child == 0) {
        // Only async-signal-safe calls from here to exec.
        int report = error_pipe[1];
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigaction(sig, &dfl, NULL);
        }
        if (setsid() < 0) atrium_child_fail(report, 1);
        // Into the server's cgroups while still privileged, before anything of the program runs.
        for (int i = 0; i < cgroup_fd_count; i++) {
            if (write(cgroup_fds[i], "0\n", 2) != 2) atrium_child_fail(report, 2);
        }
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0) atrium_child_fail(report, 3);
        int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) atrium_child_fail(report, 4);
        if (uid != (uid_t)-1) {
            if (setgroups((size_t)group_count, groups) != 0) atrium_child_fail(report, 5);
            if (setresgid(gid, gid, gid) != 0) atrium_child_fail(report, 6);
            if (setresuid(uid, uid, uid) != 0) atrium_child_fail(report, 7);
            // Never run on as root by mistake.
            if (uid != 0 && (setuid(0) == 0 || geteuid() == 0)) { errno = EPERM; atrium_child_fail(report, 7); }
            umask(077);
        }
        if (chdir(directory) != 0) atrium_child_fail(report, 8);
        atrium_close_from(3, report);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        atrium_child_fail(report, 9);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(error_pipe[1]);
    struct atrium_child_error report;
    ssize_t got;
    do { got = read(error_pipe[0], &report, sizeof report); } while (got < 0 && errno == EINTR);
    close(error_pipe[0]);
    if (got == (ssize_t)sizeof report) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        if (failed_stage) *failed_stage = report.stage;
        return report.error ? report.error : EIO;
    }
    *pid = child;
    return 0;
}
