/* bench-frame: frame-style work. Each frame every thread allocates N small
 * objects (16 to 256 bytes, a fixed pseudo-random sequence) and the frame
 * ends by throwing them all away:
 *
 *   tier          walloc_allocate(size, WALLOC_TIER_ENTITY) for each, then
 *                 one walloc_reset_tier per frame (by one thread, between
 *                 barriers); the objects are never touched
 *   tier-resolve  the same, and each object is used the way an engine uses
 *                 the API: right after walloc_allocate, walloc_handle_to_ptr
 *                 resolves the handle and one byte, the object's first, is
 *                 written through the pointer
 *   tier-unchecked  the same with walloc_handle_ptr_unchecked (no check:
 *                 for loops over blocks the code knows are live)
 *   malloc        malloc(size) for each, its first byte written right away
 *                 (the same one-byte store as tier-resolve), then free of
 *                 each at the frame's end: run it under LD_PRELOAD of the
 *                 allocator to compare (benchmarks/run_tiers.py)
 *
 * Prints ns per object (allocation and its share of the release) of the
 * slowest thread, over FRAMES frames after one untimed warm-up frame. Linked with libwalloc.a, which does not replace malloc.
 *
 * usage: bench-frame tier|tier-resolve|tier-unchecked|malloc [N=10000] [FRAMES=300] [THREADS=1]
 */
#include "bench_common.h"
#include "walloc.h"

enum { MODE_TIER, MODE_TIER_RESOLVE, MODE_TIER_UNCHECKED, MODE_MALLOC, MODES };
static const char *const mode_names[] = {"tier", "tier-resolve", "tier-unchecked", "malloc"};

typedef struct {
  long id, n, frames, threads;
  int mode, tier_mode;
  double seconds;
} frame_arg_t;

static pthread_barrier_t frame_barrier;

static void *frame_worker(void *arg) {
  frame_arg_t *a = (frame_arg_t *)arg;
  size_t *sizes = (size_t *)malloc((size_t)a->n * sizeof *sizes);
  void **ptrs = (void **)malloc((size_t)a->n * sizeof *ptrs);
  walloc_handle *handles = (walloc_handle *)malloc((size_t)a->n * sizeof *handles);
  rng_t r;
  rng_seed(&r, 9000 + (uint64_t)a->id);
  for (long i = 0; i < a->n; i++) sizes[i] = (size_t)rng_range(&r, 16, 256);
  double t0 = 0;
  for (long f = 0; f <= a->frames; f++) {
    if (f == 1) { /* frame 0 is not timed: the tiers' and heaps' first use (about 15 ms) is no per-object cost */
      pthread_barrier_wait(&frame_barrier);
      t0 = now_s();
    }
    if (a->mode == MODE_TIER_RESOLVE) {
      for (long i = 0; i < a->n; i++) {
        unsigned char *p = (unsigned char *)walloc_handle_to_ptr(walloc_allocate(sizes[i], WALLOC_TIER_ENTITY));
        if (p == NULL) bench_fail("frame %ld: tier allocation %ld failed", f, i);
        p[0] = (unsigned char)i;
      }
    } else if (a->mode == MODE_TIER_UNCHECKED) {
      for (long i = 0; i < a->n; i++) {
        unsigned char *p =
            (unsigned char *)walloc_handle_ptr_unchecked(walloc_allocate(sizes[i], WALLOC_TIER_ENTITY));
        if (p == NULL) bench_fail("frame %ld: tier allocation %ld failed", f, i);
        p[0] = (unsigned char)i;
      }
    } else if (a->tier_mode) {
      for (long i = 0; i < a->n; i++) {
        handles[i] = walloc_allocate(sizes[i], WALLOC_TIER_ENTITY);
        if (handles[i] == WALLOC_NULL_HANDLE) bench_fail("frame %ld: tier allocation %ld failed", f, i);
      }
    }
    if (a->tier_mode) {
      pthread_barrier_wait(&frame_barrier);
      if (a->id == 0 && walloc_reset_tier(WALLOC_TIER_ENTITY) != WALLOC_OK) bench_fail("reset failed");
      pthread_barrier_wait(&frame_barrier);
    } else {
      for (long i = 0; i < a->n; i++) {
        ptrs[i] = malloc(sizes[i]);
        if (ptrs[i] == NULL) bench_fail("frame %ld: malloc %ld failed", f, i);
        ((unsigned char *)ptrs[i])[0] = (unsigned char)i;
      }
      for (long i = 0; i < a->n; i++) free(ptrs[i]);
      pthread_barrier_wait(&frame_barrier);
      pthread_barrier_wait(&frame_barrier);
    }
  }
  a->seconds = now_s() - t0;
  /* a last frame, checked: every object is usable and distinct */
  for (long i = 0; i < a->n; i++) {
    void *p;
    if (a->tier_mode) {
      handles[i] = walloc_allocate(sizes[i], WALLOC_TIER_ENTITY);
      p = walloc_handle_to_ptr(handles[i]);
    } else {
      p = ptrs[i] = malloc(sizes[i]);
    }
    if (p == NULL) bench_fail("check frame: allocation %ld failed", i);
    memset(p, (int)(i & 0xff), sizes[i]);
  }
  for (long i = 0; i < a->n; i++) {
    unsigned char *p = a->tier_mode ? (unsigned char *)walloc_handle_to_ptr(handles[i]) : (unsigned char *)ptrs[i];
    if (p[0] != (unsigned char)(i & 0xff) || p[sizes[i] - 1] != (unsigned char)(i & 0xff)) {
      bench_fail("check frame: object %ld overwritten", i);
    }
    if (!a->tier_mode) free(p);
  }
  free(sizes);
  free(ptrs);
  free(handles);
  return NULL;
}

int main(int argc, char **argv) {
  const char *usage = "tier|tier-resolve|tier-unchecked|malloc [N=10000] [FRAMES=300] [THREADS=1]";
  int mode = mode_arg(argc, argv, mode_names, MODES, usage);
  long n = arg_long(argc, argv, 2, 10000, "N");
  long frames = arg_long(argc, argv, 3, 300, "FRAMES");
  long threads = arg_long(argc, argv, 4, 1, "THREADS");
  pthread_barrier_init(&frame_barrier, NULL, (unsigned)threads);
  frame_arg_t *args = (frame_arg_t *)calloc((size_t)threads, sizeof *args);
  for (long i = 0; i < threads; i++) args[i] = (frame_arg_t){i, n, frames, threads, mode, mode != MODE_MALLOC, 0};
  double t0 = now_s();
  run_threads(threads, frame_worker, args, sizeof *args);
  double wall = now_s() - t0;
  double worst = 0;
  for (long i = 0; i < threads; i++) worst = args[i].seconds > worst ? args[i].seconds : worst;
  double objects = (double)n * (double)frames * (double)threads;
  printf("bench-frame: mode=%s n=%ld frames=%ld threads=%ld time=%.3fs ns_per_object=%.2f "
         "objects_per_second=%.0f ok\n",
         argv[1], n, frames, threads, wall, worst * 1e9 / ((double)n * (double)frames), objects / worst);
  free(args);
  return 0;
}
