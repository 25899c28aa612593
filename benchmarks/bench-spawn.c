/* bench-spawn: run one benchmark process and report its wall time and peak RSS.
 *
 *   bench-spawn [-t TIMEOUT_S] [-p PRELOAD] [-o REPORT] -- PROGRAM [ARGS...]
 *
 * run.py starts every workload through this small helper rather than forking
 * it from Python. The reason is ru_maxrss: Linux records the resident size of
 * the memory image a process had *before* exec into the process's maximum, so
 * a child forked from the Python driver starts with a floor of ~10 MiB (with
 * vfork/posix_spawn: the driver's whole peak). Forked from this helper, the
 * floor is this helper's size (~1 MiB).
 *
 * The helper forks, sets LD_PRELOAD=PRELOAD in the child only (the helper
 * itself runs on the C library's malloc), execs PROGRAM, waits for it with
 * wait4() and writes one line to REPORT (default: stderr):
 *
 *   exit=<code|-1> signal=<n|0> timeout=<0|1> wall_s=<s> maxrss_kib=<n> utime_s=<s> stime_s=<s>
 *
 * A child still running after TIMEOUT_S seconds is killed with SIGKILL. The
 * helper exits with the child's status (128 + signal number when it was
 * killed by a signal, 124 on timeout, 127 when PROGRAM could not be run). The
 * child gets PR_SET_PDEATHSIG so that it dies with the helper. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static volatile pid_t child;

static void on_alarm(int sig)
{
  (void)sig;
  timed_out = 1;
  if (child > 0)
    kill(child, SIGKILL);
}

static void on_term(int sig)
{
  if (child > 0)
    kill(child, SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

static double ts_diff(struct timespec a, struct timespec b)
{
  return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

int main(int argc, char **argv)
{
  long timeout = 0;
  const char *preload = NULL, *report = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
      timeout = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
      preload = argv[++i];
    } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      report = argv[++i];
    } else {
      break;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "usage: %s [-t TIMEOUT_S] [-p PRELOAD] [-o REPORT] -- PROGRAM [ARGS...]\n",
            argv[0]);
    return 64;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("bench-spawn: fork");
    return 127;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGALRM, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (preload != NULL && preload[0] != '\0')
      setenv("LD_PRELOAD", preload, 1);
    else
      unsetenv("LD_PRELOAD");
    execv(argv[i], &argv[i]);
    fprintf(stderr, "bench-spawn: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  child = pid;
  if (timeout > 0)
    alarm((unsigned)timeout);

  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("bench-spawn: wait4");
      return 127;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  alarm(0);

  int code = -1, sig = 0;
  if (WIFEXITED(status))
    code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    sig = WTERMSIG(status);

  FILE *out = stderr;
  if (report != NULL) {
    out = fopen(report, "w");
    if (out == NULL) {
      perror("bench-spawn: report");
      out = stderr;
    }
  }
  fprintf(out,
          "exit=%d signal=%d timeout=%d wall_s=%.6f maxrss_kib=%ld utime_s=%.6f stime_s=%.6f\n",
          code, sig, (int)timed_out, ts_diff(t0, t1), ru.ru_maxrss,
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);
  if (out != stderr)
    fclose(out);

  if (timed_out)
    return 124;
  if (sig != 0)
    return 128 + sig;
  return code;
}
