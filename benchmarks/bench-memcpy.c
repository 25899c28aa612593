/* bench-memcpy: walloc_memcpy against glibc's memcpy and a byte loop.
 *
 *   bench-memcpy [--rounds N] [--csv FILE] [--sizes a,b,...] [--src-off N] [--dst-off N]
 *                [--warm-large] [--one-place] [--procs N] [--pin CPU]
 *
 * Variants: glibc memcpy (called through a volatile function pointer, so each
 * call is a real call to the ifunc-selected routine), walloc_memcpy as it
 * dispatches by default, walloc_memcpy with each available kernel forced
 * (wl_copy_force: the inline small path is shared, so below 129 bytes these
 * rows measure the same code as the default), and a byte loop (one byte per
 * iteration; -fno-builtin -fno-tree-loop-distribute-patterns and no
 * vectorisation keep the compiler from turning it into memcpy or SIMD).
 *
 * Method: sizes up to 64 KiB copy the same 64-byte aligned buffers over and
 * over (warm caches), at one of four page offsets in turn (see PLACES;
 * --one-place keeps offset 0); 1 MiB and larger copy between
 * 64 MiB source and destination buffers, each copy taking the next chunk (so
 * caches are cold: 128 MiB are cycled through); with --warm-large they too
 * repeat on the same buffers (how the non-temporal threshold was chosen:
 * docs/memcpy.md). --src-off and --dst-off add misalignment. One sample is
 * `reps` copies timed together, reps chosen so that a glibc sample lasts
 * about 2 ms (one copy at least). Every round takes one sample of every
 * (size, variant) pair, the variants in a rotated order; the rounds are
 * spread over --procs (3) fresh processes (see main). The table reports the
 * best sample of all rounds (the least disturbed by the other work of a
 * shared machine), the CSV also the median.
 * MB/s = 10^6 bytes per second. Each variant's result is checked against the
 * source after its samples.
 *
 * Links libwalloc.a (the walloc_ API without the malloc override), so malloc
 * stays glibc's.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "walloc.h"
#include "simd/copy.h"

typedef void *(*copy_fn)(void *, const void *, size_t);

/* glibc's memcpy, called for real every time. */
static void *(*volatile glibc_memcpy)(void *, const void *, size_t) = memcpy;

/* The byte loop: no memcpy idiom, no vectorisation, no inlining. */
#if defined(__clang__)
__attribute__((noinline)) static void *byte_loop(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
#pragma clang loop vectorize(disable) interleave(disable)
  for (size_t i = 0; i < n; i++) d[i] = s[i];
  return dst;
}
#else
__attribute__((noinline, optimize("no-tree-vectorize", "no-tree-loop-distribute-patterns")))
static void *byte_loop(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  for (size_t i = 0; i < n; i++) d[i] = s[i];
  return dst;
}
#endif

/* ---- variants ----------------------------------------------------------- */

enum { V_GLIBC, V_WALLOC, V_KERNEL0, V_BYTE = V_KERNEL0 + WL_COPY_KERNELS, V_COUNT };

static wl_copy_kernel_t default_kernel;

static bool variant_available(int v) {
  if (v >= V_KERNEL0 && v < V_BYTE) return wl_copy_available((wl_copy_kernel_t)(v - V_KERNEL0));
  return true;
}

static void variant_name(int v, char *buf, size_t len) {
  if (v == V_GLIBC) snprintf(buf, len, "glibc");
  else if (v == V_WALLOC) snprintf(buf, len, "walloc");
  else if (v == V_BYTE) snprintf(buf, len, "byte loop");
  else snprintf(buf, len, "walloc-%s", wl_copy_name((wl_copy_kernel_t)(v - V_KERNEL0)));
}

/* One timed run of reps copies: chunk i copies src + (i % chunks) * stride. */
#define RUN_LOOP(CALL)                                                   \
  do {                                                                   \
    if (chunks == 1) {                                                   \
      for (size_t i = 0; i < reps; i++) CALL(dst, src, n);               \
    } else {                                                             \
      for (size_t i = 0, c = 0; i < reps; i++) {                         \
        CALL(dst + c * stride, src + c * stride, n);                     \
        if (++c == chunks) c = 0;                                        \
      }                                                                  \
    }                                                                    \
  } while (0)

#define CALL_GLIBC(d, s, k) glibc_memcpy((d), (s), (k))
#define CALL_WALLOC(d, s, k) walloc_memcpy((d), (s), (k))
#define CALL_BYTE(d, s, k) byte_loop((d), (s), (k))

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

__attribute__((noinline)) static double run_glibc(unsigned char *dst, const unsigned char *src, size_t n,
                                                  size_t reps, size_t chunks, size_t stride) {
  double t0 = now_ns();
  RUN_LOOP(CALL_GLIBC);
  return now_ns() - t0;
}

__attribute__((noinline)) static double run_walloc(unsigned char *dst, const unsigned char *src, size_t n,
                                                   size_t reps, size_t chunks, size_t stride) {
  double t0 = now_ns();
  RUN_LOOP(CALL_WALLOC);
  return now_ns() - t0;
}

__attribute__((noinline)) static double run_byte(unsigned char *dst, const unsigned char *src, size_t n,
                                                 size_t reps, size_t chunks, size_t stride) {
  double t0 = now_ns();
  RUN_LOOP(CALL_BYTE);
  return now_ns() - t0;
}

static double run_variant(int v, unsigned char *dst, const unsigned char *src, size_t n, size_t reps,
                          size_t chunks, size_t stride) {
  switch (v) {
    case V_GLIBC: return run_glibc(dst, src, n, reps, chunks, stride);
    case V_BYTE: return run_byte(dst, src, n, reps, chunks, stride);
    case V_WALLOC: wl_copy_force(default_kernel); break;
    default: wl_copy_force((wl_copy_kernel_t)(v - V_KERNEL0)); break;
  }
  return run_walloc(dst, src, n, reps, chunks, stride);
}

/* ---- main --------------------------------------------------------------- */

/* The page offsets the warm buffers take in turn, round after round. A load
   that matches an in-flight store at the same address modulo 4 KiB may wait
   for it (4K aliasing). With one fixed placement, a destination whose range
   covered the page offset of the stack slot `ret` reads, or of the function
   pointer the call goes through, would slow every sample of that size, for
   glibc and walloc differently. Four offsets 1 KiB apart leave at least one
   clean placement for every size up to 1 KiB, and the best-of-rounds
   statistic picks it for each variant. */
static const size_t PLACES[4] = {0, 1024, 2048, 3072};

#define MAX_SIZES 64
#define MAX_ROUNDS 201
#define LARGE_MIN ((size_t)1 << 20)   /* from here: cold copies between the big buffers */
#define BIG_SIZE ((size_t)64 << 20)

static size_t sizes[MAX_SIZES] = {6, 8, 13, 14, 19, 27, 32, 64, 100, 256, 1024, 4096, 16384, 65536,
                                  (size_t)1 << 20, (size_t)64 << 20};
static size_t nsizes = 16;

static void *alloc_touched(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 4096, n) != 0) {
    fprintf(stderr, "bench-memcpy: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  memset(p, 0x5a, n);
  return p;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void usage(const char *argv0) {
  printf("usage: %s [--rounds N] [--csv FILE] [--sizes a,b,...] [--src-off N] [--dst-off N] [--warm-large]\n"
         "          [--one-place] [--procs N] [--pin CPU]\n"
         "  sizes accept suffixes k and m (KiB, MiB); default 6,8,13,14,19,27,32,64,100,256,1k,4k,16k,64k,1m,64m\n",
         argv0);
}

static size_t parse_size(const char *s) {
  char *end;
  unsigned long long v = strtoull(s, &end, 0);
  if (*end == 'k' || *end == 'K') v <<= 10, end++;
  else if (*end == 'm' || *end == 'M') v <<= 20, end++;
  if (*end != '\0' && *end != ',') {
    fprintf(stderr, "bench-memcpy: bad size '%s'\n", s);
    exit(64);
  }
  return (size_t)v;
}

static void size_label(size_t n, char *buf, size_t len) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) snprintf(buf, len, "%zu MiB", n >> 20);
  else if (n >= 1024 && n % 1024 == 0) snprintf(buf, len, "%zu KiB", n >> 10);
  else snprintf(buf, len, "%zu B", n);
}

int main(int argc, char **argv) {
  int rounds = 15;
  bool warm_large = false, one_place = false;
  int procs = 3;
  const char *csv_path = NULL;
  size_t src_off = 0, dst_off = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(argv[0]);
      return 0;
    } else if (!strcmp(a, "--rounds") && val) {
      rounds = atoi(val), i++;
    } else if (!strcmp(a, "--csv") && val) {
      csv_path = val, i++;
    } else if (!strcmp(a, "--src-off") && val) {
      src_off = parse_size(val), i++;
    } else if (!strcmp(a, "--dst-off") && val) {
      dst_off = parse_size(val), i++;
    } else if (!strcmp(a, "--warm-large")) {
      warm_large = true;
    } else if (!strcmp(a, "--one-place")) {
      one_place = true;
    } else if (!strcmp(a, "--procs") && val) {
      procs = atoi(val), i++;
    } else if (!strcmp(a, "--pin") && val) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(atoi(val), &set);
      if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
      i++;
    } else if (!strcmp(a, "--sizes") && val) {
      nsizes = 0;
      for (const char *p = val; *p && nsizes < MAX_SIZES; p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
        sizes[nsizes++] = parse_size(p);
      i++;
    } else {
      usage(argv[0]);
      return 64;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || src_off > 4095 || dst_off > 4095 || procs < 1 || procs > rounds) {
    usage(argv[0]);
    return 64;
  }
  for (size_t i = 0; i < nsizes; i++) {
    if (sizes[i] > BIG_SIZE) {
      fprintf(stderr, "bench-memcpy: sizes up to 64 MiB\n");
      return 64;
    }
  }

  default_kernel = wl_copy_active();

  /* Warm buffers for sizes below LARGE_MIN, big ones for the rest. The big
     buffers get one extra page so the offsets fit. */
  unsigned char *small_src = alloc_touched(LARGE_MIN + 8192);
  unsigned char *small_dst = alloc_touched(LARGE_MIN + 8192);
  unsigned char *big_src = alloc_touched(BIG_SIZE + 8192);
  unsigned char *big_dst = alloc_touched(BIG_SIZE + 8192);
  for (size_t i = 0; i < BIG_SIZE + 8192; i++) big_src[i] = (unsigned char)(i * 131 + (i >> 12));
  for (size_t i = 0; i < LARGE_MIN + 8192; i++) small_src[i] = (unsigned char)(i * 17 + (i >> 8));


  /* Per size: buffers, chunks, reps (about 2 ms of glibc copies per sample). */
  size_t reps[MAX_SIZES], chunks[MAX_SIZES];
  for (size_t z = 0; z < nsizes; z++) {
    size_t n = sizes[z];
    bool large = n >= LARGE_MIN;
    unsigned char *src = (large ? big_src : small_src) + src_off;
    unsigned char *dst = (large ? big_dst : small_dst) + dst_off;
    chunks[z] = large && !warm_large ? BIG_SIZE / n : 1;
    size_t r = 1;
    for (;;) {
      double t = run_glibc(dst, src, n == 0 ? 1 : n, r, chunks[z], n);
      if (t >= 2e6 || r >= ((size_t)1 << 30)) break;
      r = t < 1e3 ? r * 16 : (size_t)((double)r * 2.2e6 / t) + 1;
    }
    reps[z] = r;
  }

  /* The rounds run in `procs` child processes one after the other (round r
     in child r % procs), which write their samples here. Now and then a
     whole run was slow: every round measured 64-byte glibc copies at 7.4 ns
     instead of 2.2 and walloc's 100-byte ones at 6 instead of 2, on either
     CPU, with or without address randomisation. Whether that state belongs
     to a process or to a period of time on this shared VM could not be told
     without performance counters (it lacks them); spreading the rounds over
     fresh processes at least keeps one stuck process from deciding the best
     sample. Comparing two runs shows the other case. */
  double(*samples)[V_COUNT][MAX_ROUNDS] = mmap(NULL, sizeof(double) * MAX_SIZES * V_COUNT * MAX_ROUNDS,
                                                PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (samples == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (int p = 0; p < procs; p++) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid > 0) {
      int status = 0;
      if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench-memcpy: measuring process %d failed\n", p);
        return 2;
      }
      continue;
    }
    /* the child: own the destination pages before timing anything */
    memset(small_dst, 0, LARGE_MIN + 8192);
    memset(big_dst, 0, BIG_SIZE + 8192);
    for (int round = p; round < rounds; round += procs) {
      for (size_t z = 0; z < nsizes; z++) {
        size_t n = sizes[z];
        bool large = n >= LARGE_MIN;
        size_t place = large || one_place ? 0 : PLACES[(round / procs) % 4];
        unsigned char *src = (large ? big_src : small_src) + place + src_off;
        unsigned char *dst = (large ? big_dst : small_dst) + place + dst_off;
        for (int j = 0; j < V_COUNT; j++) {
          int v = (j + round + (int)z) % V_COUNT; /* rotate who goes first */
          if (!variant_available(v)) continue;
          samples[z][v][round] = run_variant(v, dst, src, n, reps[z], chunks[z], n) / (double)reps[z];
          if (round + procs >= rounds) { /* this process's last round: check what it wrote, clear it */
            size_t written = reps[z] < chunks[z] ? reps[z] : chunks[z];
            for (size_t c = 0; c < written; c++) {
              if (memcmp(dst + c * n, src + c * n, n) != 0) {
                char name[32];
                variant_name(v, name, sizeof name);
                fprintf(stderr, "BENCH FAILURE: %s copied %zu bytes wrongly\n", name, n);
                _exit(2);
              }
            }
            memset(dst, 0, written * n);
          }
        }
      }
    }
    _exit(0);
  }
  wl_copy_force(default_kernel);

  /* best and median ns per copy */
  static double best[MAX_SIZES][V_COUNT], median[MAX_SIZES][V_COUNT];
  for (size_t z = 0; z < nsizes; z++) {
    for (int v = 0; v < V_COUNT; v++) {
      if (!variant_available(v)) continue;
      qsort(samples[z][v], (size_t)rounds, sizeof(double), cmp_double);
      best[z][v] = samples[z][v][0];
      median[z][v] = samples[z][v][rounds / 2];
    }
  }

  FILE *csv = NULL;
  if (csv_path) {
    csv = fopen(csv_path, "w");
    if (!csv) {
      perror(csv_path);
      return 1;
    }
    fprintf(csv, "size,variant,best_ns,median_ns,best_mbps,median_mbps\n");
  }

  printf("walloc_memcpy vs glibc memcpy: best of %d rounds in %d processes, MB/s (10^6 bytes/s); default kernel: %s; "
         "src offset %zu, dst offset %zu; sizes from 1 MiB %s\n\n",
         rounds, procs, wl_copy_name(default_kernel), src_off, dst_off,
         warm_large ? "repeat on the same buffers" : "cycle through 64 MiB buffers (cold)");
  printf("| size | glibc | walloc | walloc/glibc |");
  for (int k = 0; k < WL_COPY_KERNELS; k++) {
    if (wl_copy_available((wl_copy_kernel_t)k)) printf(" %s | /glibc |", wl_copy_name((wl_copy_kernel_t)k));
  }
  printf(" byte loop | walloc/byte | glibc ns | walloc ns | bar |\n|---:|---:|---:|---:|");
  for (int k = 0; k < WL_COPY_KERNELS; k++) {
    if (wl_copy_available((wl_copy_kernel_t)k)) printf("---:|---:|");
  }
  printf("---:|---:|---:|---:|:---|\n");
  int misses = 0;
  for (size_t z = 0; z < nsizes; z++) {
    size_t n = sizes[z];
    char label[32];
    size_label(n, label, sizeof label);
    double mbps[V_COUNT];
    for (int v = 0; v < V_COUNT; v++) {
      if (!variant_available(v)) continue;
      mbps[v] = (double)n / best[z][v] * 1e3;
      if (csv) {
        char name[32];
        variant_name(v, name, sizeof name);
        fprintf(csv, "%zu,%s,%.4f,%.4f,%.1f,%.1f\n", n, name, best[z][v], median[z][v], mbps[v],
                (double)n / median[z][v] * 1e3);
      }
    }
    double ratio = mbps[V_WALLOC] / mbps[V_GLIBC];
    double vs_byte = mbps[V_WALLOC] / mbps[V_BYTE];
    bool ok = ratio >= 0.95 && vs_byte > 1.0;
    misses += !ok;
    printf("| %s | %.0f | %.0f | %.2f |", label, mbps[V_GLIBC], mbps[V_WALLOC], ratio);
    for (int k = 0; k < WL_COPY_KERNELS; k++) {
      int v = V_KERNEL0 + k;
      if (variant_available(v)) printf(" %.0f | %.2f |", mbps[v], mbps[v] / mbps[V_GLIBC]);
    }
    printf(" %.0f | %.1f | %.*f | %.*f | %s |\n", mbps[V_BYTE], vs_byte, best[z][V_GLIBC] < 100 ? 2 : 0,
           best[z][V_GLIBC], best[z][V_WALLOC] < 100 ? 2 : 0, best[z][V_WALLOC], ok ? "met" : "MISSED");
  }
  printf("\nbar: walloc >= 0.95 x glibc and faster than the byte loop; %d size(s) missed.\n", misses);
  if (csv) fclose(csv);
  free(small_src);
  free(small_dst);
  free(big_src);
  free(big_dst);
  return 0;
}
