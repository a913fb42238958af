#ifndef CATRIUM_PROCESS_H
#define CATRIUM_PROCESS_H
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in a new session (its own process group), working
/// directory `directory`, stdin from /dev/null, stdout and stderr appended to `log_path`
/// (created with mode 0600), every other descriptor closed, signal mask and dispositions reset. Returns 0 or an errno value.
int atrium_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory, const char *log_path);

/// Sets RLIMIT_DATA of a running process. Returns 0 or an errno value.
int atrium_limit_data(pid_t pid, long long bytes);

/// Starts `path` like `atrium_spawn`, but with fork and exec so the child can, before exec:
/// join the cgroups whose `cgroup.procs` files are open as `cgroup_fds` (writing "0"), and drop
/// to `uid`, `gid` and the supplementary `groups` with umask 077 (`uid` (uid_t)-1 keeps the
/// hub's identity and umask). Reports a failing step through `failed_stage` (1 setsid, 2 cgroup,
/// 3-4 descriptors, 5-7 identity, 8 chdir, 9 exec) with its errno as the result; 0 on success.
int atrium_spawn_as(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory,
                    const char *log_path, uid_t uid, gid_t gid, const gid_t *groups, int group_count,
                    const int *cgroup_fds, int cgroup_fd_count, int *failed_stage);

#endif
