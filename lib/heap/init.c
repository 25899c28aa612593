/* init.c: process start and end, and the misuse of the malloc family.
 *
 * Initialisation is lazy and allocation-free: the first allocation of any
 * thread (possibly from the dynamic loader, before constructors run) calls
 * wl_process_init, which reads the platform facts and the options once (a
 * wl_once). The library constructor calls it too, so options are read early;
 * the destructor prints statistics when WALLOC_STATS asks for them. The
 * misuse of the malloc family is reported here (the rest of the reports:
 * lib/core/report.c).
 */
#include "heap.h"

static void process_setup(void) {
  wl_os_init(&wl_os);
  wl_options_read(WL_OPTG_HEAP);
  wl_stats_init();
}
WL_ONCE_STATIC(process_once, WL_LEVEL_HEAP_INIT);

void wl_process_init(void) { wl_once(&process_once, process_setup); }

__attribute__((constructor)) static void wl_init_at_load(void) { wl_process_init(); }

__attribute__((destructor)) static void wl_done_at_exit(void) { wl_stats_print_at_exit(); }

#if WL_REPORTS
/* Misuse: what the program did, the pointer, and the block it falls in. */
static const char *const misuse_what[] = {
  [WL_MISUSE_DOUBLE_FREE] = "double free of ",
  [WL_MISUSE_INTERIOR] = "pointer into the middle of a block: ",
  [WL_MISUSE_NOT_ALLOCATED] = "pointer walloc never handed out (or freed long ago): ",
  [WL_MISUSE_FOREIGN] = "pointer that is not walloc's memory: ",
  [WL_MISUSE_CORRUPT] = "a free list is damaged (a write into freed memory?) at ",
};

void wl_misuse(wl_misuse_t what, const char *call, const void *p, const void *block, size_t size) {
  wl_process_init();
  wl_fetch_add(what == WL_MISUSE_DOUBLE_FREE ? &wl_stats.double_frees : &wl_stats.invalid_frees, 1);
  bool abort = what == WL_MISUSE_CORRUPT || wl_option(WL_OPT_MISUSE_ABORT) != 0;
  wl_out_t o;
  wl_report_begin(&o, 2, "error");
  wl_out_str(&o, call);
  wl_out_str(&o, "(): ");
  wl_out_str(&o, misuse_what[what]);
  wl_out_hex(&o, (uintptr_t)p);
  if (block != NULL) {
    wl_out_str(&o, " (block of ");
    wl_out_u64(&o, size, 0);
    wl_out_str(&o, " bytes at ");
    wl_out_hex(&o, (uintptr_t)block);
    wl_out_char(&o, ')');
  }
  wl_out_str(&o, abort ? "; aborting\n" : "; ignored (WALLOC_MISUSE_ABORT=0)\n");
  wl_out_flush(&o);
  if (abort) wl_os_abort();
}

#endif
