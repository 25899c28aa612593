/* fuzz.h: what every fuzz harness (tests/fuzz_<name>.c) shares.
 *
 * A harness defines LLVMFuzzerTestOneInput, and optionally
 * LLVMFuzzerInitialize, and nothing else: no main. tests/meson.build links it
 * with libFuzzer (-fsanitize=fuzzer) where the compiler has it, and otherwise
 * with tests/fuzz_driver.c, which feeds it seeded random inputs.
 * A harness reads its input as a stream of operations through fuzz_take:
 * past the end every read gives zeros, so any input, even empty, is a valid
 * program. A broken invariant prints what broke and aborts: libFuzzer then
 * writes the input as a crash artifact, and the driver dies with SIGABRT.
 */
#ifndef WL_FUZZ_H
#define WL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

typedef struct fuzz_reader {
  const uint8_t *p;
  size_t n;
} fuzz_reader;

/* The next `bytes` bytes (at most 8) as a big-endian integer; zeros past the end. */
static inline uint64_t fuzz_take(fuzz_reader *r, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned i = 0; i < bytes; i++) {
    v = v << 8 | (r->n > 0 ? *r->p : 0);
    if (r->n > 0) {
      r->p++;
      r->n--;
    }
  }
  return v;
}

#endif
