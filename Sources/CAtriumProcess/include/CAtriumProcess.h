#ifndef CATRIUM_PROCESS_H
#define CATRIUM_PROCESS_H
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in a new session (its own process group), working
/// directory `directory`, stdin from /dev/null, stdout and stderr appended to `log_path`
/// (created with mode 0600), every other descriptor closed, signal mask and dispositions reset. Returns 0 or an errno value.
int atrium_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory, const char *log_path);

/// Sets RLIMIT_DATA of a running process. Returns 0 or an errno value.
int atrium_limit_data(pid_t pid, long long bytes);

#endif
