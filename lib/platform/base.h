/* base.h: compiler helpers, bit tricks and atomics shared by every layer.
 *
 * Nothing here touches the operating system; it is the vocabulary the rest of
 * walloc is written in. Included (through platform.h) by every source file.
 */
#ifndef WL_BASE_H
#define WL_BASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
   Compiler helpers
   ------------------------------------------------------------------------ */
#define WL_LIKELY(x)    __builtin_expect(!!(x), 1)
#define WL_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define WL_INLINE       static inline __attribute__((always_inline))
#define WL_NOINLINE     __attribute__((noinline))
#define WL_COLD         __attribute__((cold, noinline))
#define WL_API          __attribute__((visibility("default")))
#define WL_CACHE_LINE   64
#define WL_UNUSED(x)    ((void)(x))

/* ------------------------------------------------------------------------
   Assertions in three levels (compiled out unless WL_DEBUG is high enough):
   1 = cheap checks on slow paths, 2 = internal consistency, 3 = whole-heap walks.
   ------------------------------------------------------------------------ */
#ifndef WL_DEBUG
#define WL_DEBUG 0
#endif
void wl_assert_fail(const char *expr, const char *file, int line);
#define WL_ASSERT_AT(level, e) \
  ((WL_DEBUG >= (level) && !(e)) ? wl_assert_fail(#e, __FILE__, __LINE__) : (void)0)
#define wl_assert(e)          WL_ASSERT_AT(1, e)
#define wl_assert_internal(e) WL_ASSERT_AT(2, e)
#define wl_assert_expensive(e) WL_ASSERT_AT(3, e)

/* ------------------------------------------------------------------------
   Bits and alignment
   ------------------------------------------------------------------------ */
WL_INLINE size_t wl_bsr(size_t x) { return (size_t)(63 - __builtin_clzll((unsigned long long)x)); } /* x != 0 */
WL_INLINE size_t wl_ctz64(uint64_t x) { return (size_t)__builtin_ctzll(x); }                       /* x != 0 */
WL_INLINE bool wl_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }
WL_INLINE uintptr_t wl_align_up(uintptr_t x, size_t a) { return (x + (a - 1)) & ~(uintptr_t)(a - 1); } /* a pow2 */
WL_INLINE uintptr_t wl_align_down(uintptr_t x, size_t a) { return x & ~(uintptr_t)(a - 1); }
WL_INLINE bool wl_mul_overflow(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
WL_INLINE size_t wl_min(size_t a, size_t b) { return a < b ? a : b; }
WL_INLINE size_t wl_max(size_t a, size_t b) { return a > b ? a : b; }

/* ------------------------------------------------------------------------
   Atomics: short names for the orders walloc uses.
   ------------------------------------------------------------------------ */
#define wl_load_relaxed(p)       atomic_load_explicit((p), memory_order_relaxed)
#define wl_load_acquire(p)       atomic_load_explicit((p), memory_order_acquire)
#define wl_store_relaxed(p, v)   atomic_store_explicit((p), (v), memory_order_relaxed)
#define wl_store_release(p, v)   atomic_store_explicit((p), (v), memory_order_release)
#define wl_cas_weak(p, exp, des) \
  atomic_compare_exchange_weak_explicit((p), (exp), (des), memory_order_acq_rel, memory_order_acquire)
#define wl_cas_strong(p, exp, des) \
  atomic_compare_exchange_strong_explicit((p), (exp), (des), memory_order_acq_rel, memory_order_acquire)
#define wl_exchange(p, v)        atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define wl_fetch_add(p, v)       atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define wl_fetch_sub(p, v)       atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)

/* Raise *peak to value if value is higher (a statistics peak: relaxed). */
WL_INLINE void wl_peak_raise(_Atomic(uint64_t) *peak, uint64_t value) {
  uint64_t p = wl_load_relaxed(peak);
  while (value > p && !wl_cas_weak(peak, &p, value)) {}
}

/* A relaxed load that the compiler may fold into the compare using it: the
   fast paths test several atomics once each (the segment map, a page's owner
   and limit, a block's tag), and a relaxed atomic load is always a separate
   move. On every machine walloc targets an aligned load of these sizes is
   atomic either way. ThreadSanitizer builds keep the atomic load, so races
   on these words stay visible to it. */
#if defined(__SANITIZE_THREAD__)
#define WL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WL_TSAN 1
#endif
#endif
#if defined(WL_TSAN)
#define wl_load_racy(p)          wl_load_relaxed(p)
#else
#define wl_load_racy(p)          (*(const __typeof__(wl_load_relaxed(p)) *)(p))
#endif


#endif
