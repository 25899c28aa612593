// override_new.cpp: C++ operator new and delete, every variant, served by walloc.
//
// The throwing forms call the installed new_handler and retry, then throw
// std::bad_alloc, as the standard says; the nothrow forms return nullptr
// instead. Sized and aligned deletes ignore the size: walloc knows it.
#include <cstddef>
#include <new>

extern "C" {
void *wl_malloc(std::size_t size);
void wl_free(void *p);
void *wl_aligned(std::size_t align, std::size_t size, bool zero);
}

#define WL_CXX_API __attribute__((visibility("default")))

namespace {

void *alloc_or_handle(std::size_t size, std::size_t align, bool nothrow) {
  for (;;) {
    void *p = align <= alignof(std::max_align_t) ? wl_malloc(size) : wl_aligned(align, size, false);
    if (__builtin_expect(p != nullptr, 1)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (const std::bad_alloc &) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

inline void *new_fast(std::size_t size) {
  void *p = wl_malloc(size);
  return __builtin_expect(p != nullptr, 1) ? p : alloc_or_handle(size, 0, false);
}

}  // namespace

WL_CXX_API void *operator new(std::size_t n) { return new_fast(n); }
WL_CXX_API void *operator new[](std::size_t n) { return new_fast(n); }
WL_CXX_API void *operator new(std::size_t n, const std::nothrow_t &) noexcept {
  void *p = wl_malloc(n);
  return p != nullptr ? p : alloc_or_handle(n, 0, true);
}
WL_CXX_API void *operator new[](std::size_t n, const std::nothrow_t &t) noexcept { return operator new(n, t); }

WL_CXX_API void operator delete(void *p) noexcept { wl_free(p); }
WL_CXX_API void operator delete[](void *p) noexcept { wl_free(p); }
WL_CXX_API void operator delete(void *p, const std::nothrow_t &) noexcept { wl_free(p); }
WL_CXX_API void operator delete[](void *p, const std::nothrow_t &) noexcept { wl_free(p); }
WL_CXX_API void operator delete(void *p, std::size_t) noexcept { wl_free(p); }
WL_CXX_API void operator delete[](void *p, std::size_t) noexcept { wl_free(p); }

#if __cpp_aligned_new
WL_CXX_API void *operator new(std::size_t n, std::align_val_t a) {
  return alloc_or_handle(n, static_cast<std::size_t>(a), false);
}
WL_CXX_API void *operator new[](std::size_t n, std::align_val_t a) {
  return alloc_or_handle(n, static_cast<std::size_t>(a), false);
}
WL_CXX_API void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return alloc_or_handle(n, static_cast<std::size_t>(a), true);
}
WL_CXX_API void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return alloc_or_handle(n, static_cast<std::size_t>(a), true);
}
WL_CXX_API void operator delete(void *p, std::align_val_t) noexcept { wl_free(p); }
WL_CXX_API void operator delete[](void *p, std::align_val_t) noexcept { wl_free(p); }
WL_CXX_API void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { wl_free(p); }
WL_CXX_API void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { wl_free(p); }
WL_CXX_API void operator delete(void *p, std::size_t, std::align_val_t) noexcept { wl_free(p); }
WL_CXX_API void operator delete[](void *p, std::size_t, std::align_val_t) noexcept { wl_free(p); }
#endif
