/* fuzz_driver.c: the standalone driver of the fuzz harnesses, for builds
 * whose compiler has no libFuzzer (gcc, or clang without libclang-rt-dev).
 *
 * Owns: main() of every fuzz-<name> executable built without libFuzzer (one
 * source, linked with each tests/fuzz_<name>.c). It feeds the harness's
 * LLVMFuzzerTestOneInput inputs of its own:
 *
 *   fuzz-<name> RUNS [SEED]   RUNS pseudo-random inputs of 1 to 4096 bytes
 *                             from SEED (decimal or 0x hex; default 0x5eed)
 *   fuzz-<name> FILE...       each file as one input (a libFuzzer crash
 *                             artifact, a crash-* file below), each file of
 *                             a directory (a corpus: tests/fuzz/corpus/<name>)
 *
 * Anything else is refused with exit status 2: a flag (libFuzzer's -runs=1,
 * -max_total_time=30, ...), a third number, a file that cannot be read. The
 * old driver read libFuzzer's flags as "0 inputs" and passed, so the fuzz
 * test ran nothing for as long as the libFuzzer probe was broken.
 * It is no fuzzer (no coverage guidance, no mutation), and says so on its
 * first line and on its summary line ("fuzz summary: ...", which
 * tools/walloc.sh prints in CI's output).
 * When the harness crashes or aborts, a signal handler writes the input being
 * run to ./crash-<name>-<n> (replay it with `fuzz-<name> FILE`) and re-raises.
 * Thread safety: single-threaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Harnesses may define it (libFuzzer calls it once before the first input). */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RANDOM_MAX 4096      /* random inputs: 1 to 4096 bytes, libFuzzer's -max_len in CI */
#define FILE_MAX (1 << 20)   /* replayed files */
#ifndef WL_FUZZ_ENGINE        /* why this build has no libFuzzer (tests/meson.build) */
#define WL_FUZZ_ENGINE "standalone driver"
#endif

static const char *name = "fuzz";
static const uint8_t *current;
static size_t current_size;
static long current_run;

static void write_str(int fd, const char *s) {
  for (size_t n = strlen(s); n > 0;) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

/* Async-signal-safe: open, write, signal and raise only. */
static void on_crash(int sig) {
  char path[256] = "crash-", num[24];
  size_t at = strlen(path);
  for (const char *s = name; *s && at < sizeof path - 30; s++) path[at++] = *s;
  path[at++] = '-';
  int len = 0;
  for (unsigned long v = (unsigned long)current_run;; v /= 10) {
    num[len++] = (char)('0' + v % 10);
    if (v < 10) break;
  }
  while (len > 0) path[at++] = num[--len];
  path[at] = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0 && current != NULL) {
    (void)!write(fd, current, current_size);
    close(fd);
  }
  write_str(2, "\nfuzz driver: the harness crashed on this input; it is written to ./");
  write_str(2, path);
  write_str(2, " (replay: the same program with that file as its argument)\n");
  signal(sig, SIG_DFL);
  raise(sig);
}

static int usage(const char *why, const char *arg) {
  fprintf(stderr,
          "%s: %s%s%s\n"
          "usage: %s RUNS [SEED]   RUNS random inputs from SEED (standalone driver: built without libFuzzer)\n"
          "       %s FILE|DIR...   each file (each file in DIR) as one input\n",
          name, why, arg ? ": " : "", arg ? arg : "", name, name);
  return 2;
}

/* Decimal, or hexadecimal with 0x when hex is allowed; nothing else. */
static int parse_number(const char *s, int hex, unsigned long long *out) {
  if (*s < '0' || *s > '9') return 0;
  if (!hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return 0;
  char *end;
  errno = 0;
  *out = strtoull(s, &end, hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10);
  return errno == 0 && *end == 0;
}

static void run_one(const uint8_t *data, size_t size, long run) {
  current = data;
  current_size = size;
  current_run = run;
  LLVMFuzzerTestOneInput(data, size);
}

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int run_random(unsigned long long runs, unsigned long long seed) {
  static uint8_t buf[RANDOM_MAX];
  uint64_t state = seed, bytes = 0;
  for (unsigned long long run = 0; run < runs; run++) {
    size_t n = 1 + (size_t)(splitmix64(&state) % RANDOM_MAX);
    for (size_t i = 0; i < n; i += 8) {
      uint64_t r = splitmix64(&state);
      memcpy(buf + i, &r, n - i < 8 ? n - i : 8);
    }
    run_one(buf, n, (long)run);
    bytes += n;
  }
  printf("fuzz summary: %s: standalone driver (NOT libFuzzer): %llu inputs (%llu bytes) from seed 0x%llx, "
         "invariants held\n", name, runs, (unsigned long long)bytes, seed);
  return 0;
}

static int run_file(const char *path, long run) {
  static uint8_t buf[FILE_MAX];
  FILE *f = fopen(path, "rb");
  if (f == NULL) return usage("cannot read", path);
  size_t n = fread(buf, 1, sizeof buf, f);
  int big = fgetc(f) != EOF;
  fclose(f);
  if (big) return usage("file larger than 1 MiB", path);
  run_one(buf, n, run);
  return 0;
}

/* Each file, or each file of a directory (a corpus), in name order. */
static int run_files(int count, char **paths) {
  long inputs = 0;
  for (int i = 0; i < count; i++) {
    struct dirent **names;
    int n = scandir(paths[i], &names, NULL, alphasort);
    if (n < 0) {
      if (run_file(paths[i], inputs++) != 0) return 2;
      continue;
    }
    int status = 0;
    for (int k = 0; k < n; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", paths[i], names[k]->d_name);
      struct stat st;
      if (status == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) status = run_file(path, inputs++);
      free(names[k]);
    }
    free(names);
    if (status != 0) return status;
  }
  printf("fuzz summary: %s: standalone driver (NOT libFuzzer): %ld input files, invariants held\n", name, inputs);
  return 0;
}

int main(int argc, char **argv) {
  const char *slash = strrchr(argv[0], '/');
  name = slash ? slash + 1 : argv[0];
  printf("%s: %s, NOT libFuzzer: random inputs without coverage guidance\n", name, WL_FUZZ_ENGINE);
  fflush(stdout);
  if (argc < 2) return usage("say how many inputs to run, or which files", NULL);
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') return usage("unknown flag (this is not libFuzzer)", argv[i]);
  }
  unsigned long long runs = 0, seed = 0x5eed;
  int numbers = parse_number(argv[1], 0, &runs);
  if (numbers && argc > 3) return usage("unexpected argument after RUNS SEED", argv[3]);
  if (numbers && argc == 3 && !parse_number(argv[2], 1, &seed)) return usage("SEED is not a number", argv[2]);
  int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_crash);
  if (LLVMFuzzerInitialize != NULL) LLVMFuzzerInitialize(&argc, &argv);
  return numbers ? run_random(runs, seed) : run_files(argc - 1, argv + 1);
}
