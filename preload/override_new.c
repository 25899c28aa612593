/* override_new.c: C++ operator new and delete, every variant, served by walloc.
 *
 * Written in C under the Itanium C++ ABI's names so that libwalloc.so does
 * not depend on libstdc++: a C program preloading walloc would otherwise map
 * all of libstdc++ (about 1.2 MiB of resident pages) for nothing.
 *
 * When allocation fails, the throwing forms do what the standard says: call
 * the installed new_handler and retry, and with no handler throw
 * std::bad_alloc. Both are reached through the C++ runtime the program
 * itself loaded (std::get_new_handler and std::__throw_bad_alloc of
 * libstdc++, looked up only on this failure path); the exception unwinds
 * through these frames, which carry unwind tables (-fexceptions). A process
 * without a C++ runtime cannot catch an exception, so there it aborts. The
 * nothrow forms return NULL when there is no handler; with a handler they
 * hand over to the C++ runtime's own nothrow operator new (the next
 * definition after walloc's), which calls walloc's throwing form inside its
 * try block and turns a std::bad_alloc from the handler into NULL.
 * Sized and aligned deletes ignore the size: walloc knows it.
 */
#define _GNU_SOURCE
#include "../lib/heap/heap.h"

#include <dlfcn.h>
#include <stdlib.h>

typedef void (*wl_new_handler_t)(void);

static void *cxx_alloc(size_t size, size_t align) {
  return align <= WL_MIN_ALIGN ? wl_malloc_fast(size) : wl_aligned(align, size, false);
}

static wl_new_handler_t new_handler(void) {
  wl_new_handler_t (*get_handler)(void) = (wl_new_handler_t (*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
  return get_handler != NULL ? get_handler() : NULL;
}

WL_COLD static void *cxx_new_failed(size_t size, size_t align, bool nothrow) {
  if (nothrow && new_handler() != NULL) {
    static const char nothrow_tag = 0;
    if (align > WL_MIN_ALIGN) {
      void *(*next)(size_t, size_t, const void *) =
          (void *(*)(size_t, size_t, const void *))dlsym(RTLD_NEXT, "_ZnwmSt11align_val_tRKSt9nothrow_t");
      if (next != NULL) return next(size, align, &nothrow_tag);
    } else {
      void *(*next)(size_t, const void *) = (void *(*)(size_t, const void *))dlsym(RTLD_NEXT, "_ZnwmRKSt9nothrow_t");
      if (next != NULL) return next(size, &nothrow_tag);
    }
  }
  for (;;) {
    wl_new_handler_t handler = new_handler();
    if (handler == NULL) {
      if (nothrow) return NULL;
      void (*throw_bad_alloc)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
      if (throw_bad_alloc != NULL) throw_bad_alloc();
      wl_fatal("operator new: out of memory and no C++ runtime to throw std::bad_alloc", NULL);
      abort();
    }
    handler();
    void *p = cxx_alloc(size, align);
    if (p != NULL) return p;
  }
}

static void *cxx_new(size_t size) {
  void *p = wl_malloc_fast(size);
  return WL_LIKELY(p != NULL) ? p : cxx_new_failed(size, 0, false);
}
static void *cxx_new_nothrow(size_t size, const void *tag) {
  WL_UNUSED(tag);
  void *p = wl_malloc_fast(size);
  return WL_LIKELY(p != NULL) ? p : cxx_new_failed(size, 0, true);
}
static void *cxx_new_aligned(size_t size, size_t align) {
  void *p = cxx_alloc(size, align);
  return WL_LIKELY(p != NULL) ? p : cxx_new_failed(size, align, false);
}
static void *cxx_new_aligned_nothrow(size_t size, size_t align, const void *tag) {
  WL_UNUSED(tag);
  void *p = cxx_alloc(size, align);
  return WL_LIKELY(p != NULL) ? p : cxx_new_failed(size, align, true);
}
static void cxx_delete(void *p) { wl_free_fast(p); }
static void cxx_delete_2(void *p, size_t ignored) { WL_UNUSED(ignored); wl_free_fast(p); }
static void cxx_delete_3(void *p, size_t a, size_t b) { WL_UNUSED(a); WL_UNUSED(b); wl_free_fast(p); }

#define WL_CXX(name, target) __typeof__(target) name __attribute__((alias(#target), used, visibility("default")))

/* new, new[] */
WL_CXX(_Znwm, cxx_new);
WL_CXX(_Znam, cxx_new);
WL_CXX(_ZnwmRKSt9nothrow_t, cxx_new_nothrow);
WL_CXX(_ZnamRKSt9nothrow_t, cxx_new_nothrow);
WL_CXX(_ZnwmSt11align_val_t, cxx_new_aligned);
WL_CXX(_ZnamSt11align_val_t, cxx_new_aligned);
WL_CXX(_ZnwmSt11align_val_tRKSt9nothrow_t, cxx_new_aligned_nothrow);
WL_CXX(_ZnamSt11align_val_tRKSt9nothrow_t, cxx_new_aligned_nothrow);
/* delete, delete[]: plain, nothrow, sized, aligned, sized and aligned */
WL_CXX(_ZdlPv, cxx_delete);
WL_CXX(_ZdaPv, cxx_delete);
WL_CXX(_ZdlPvRKSt9nothrow_t, cxx_delete_2);
WL_CXX(_ZdaPvRKSt9nothrow_t, cxx_delete_2);
WL_CXX(_ZdlPvm, cxx_delete_2);
WL_CXX(_ZdaPvm, cxx_delete_2);
WL_CXX(_ZdlPvSt11align_val_t, cxx_delete_2);
WL_CXX(_ZdaPvSt11align_val_t, cxx_delete_2);
WL_CXX(_ZdlPvSt11align_val_tRKSt9nothrow_t, cxx_delete_3);
WL_CXX(_ZdaPvSt11align_val_tRKSt9nothrow_t, cxx_delete_3);
WL_CXX(_ZdlPvmSt11align_val_t, cxx_delete_3);
WL_CXX(_ZdaPvmSt11align_val_t, cxx_delete_3);
