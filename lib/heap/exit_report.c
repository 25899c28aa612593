/* exit_report.c: the report WALLOC_STATS asks for when the process exits.
 *
 * Owns: where the report goes and in which form. WALLOC_STATS=1 prints the
 * table (stats.c), WALLOC_STATS=json the JSON document of every layer, which
 * the layer on top composes and hands in as a writer (the heap cannot call
 * up); without one (a static link that left it out) the table is printed.
 * The report goes to stderr, or to WALLOC_STATS_FILE with %p replaced by
 * the process id, opened at exit, so that each process a program forks
 * writes its own file; a file that cannot be opened is said so in one line
 * on stderr, and the report goes there instead.
 * Thread safety: set up under the process init lock; the report runs once,
 * from the library's destructor. Nothing here allocates.
 */
#include "heap.h"

/* Programs such as coreutils close stderr before exiting, and the report
   is written after that, from the library's destructor: so when statistics
   are asked for, walloc keeps its own copy of stderr from start-up. */
static int stats_fd = -1;
static char stats_file[1024];           /* WALLOC_STATS_FILE (at most 1023 bytes, core.h), "" if unset */
static void (*_Atomic json_writer)(int fd);

/* A copy of the stats_file option (core.h) taken at start: the program may
   change its environment before it exits. */
static void stats_file_read(void) {
  const char *s = wl_option_text(WL_OPT_STATS_FILE);
  size_t n = 0;
  for (; s != NULL && s[n] != 0 && n + 1 < sizeof stats_file; n++) stats_file[n] = s[n];
  stats_file[n] = 0;
}

void wl_stats_init(void) {
  if (wl_option(WL_OPT_STATS) <= 0) return;
  if (stats_fd < 0) stats_fd = wl_os_dup(2, 64);
  stats_file_read();
}

void wl_stats_exit_json_set(void (*write_json)(int fd)) { wl_store_release(&json_writer, write_json); }

/* The file's name with each %p replaced by the process id (and %% by %);
   false when it does not fit. */
static bool file_name(char *out, size_t len) {
  wl_out_t o;
  wl_out_init_mem(&o, out, len);
  for (const char *s = stats_file; *s != 0; s++) {
    if (s[0] == '%' && s[1] == 'p') wl_out_u64(&o, (uint64_t)wl_os_pid(), 0);
    else if (s[0] == '%' && s[1] == '%') wl_out_char(&o, '%');
    else {
      wl_out_char(&o, *s);
      continue;
    }
    s++;
  }
  return wl_out_end_mem(&o) < len;
}

/* The descriptor the report goes to, opened now; *opened says to close it. */
static int report_fd(bool *opened) {
  int err = stats_fd >= 0 ? stats_fd : 2;
  *opened = false;
  if (stats_file[0] == 0) return err;
  char path[sizeof stats_file + 32];
  int fd = file_name(path, sizeof path) ? wl_os_open_write(path) : -1;
  if (fd >= 0) {
    *opened = true;
    return fd;
  }
  wl_out_t o;
  wl_report_begin(&o, err, "warning");
  wl_out_str(&o, "cannot open WALLOC_STATS_FILE ");
  wl_out_str(&o, path);
  wl_out_str(&o, "; the statistics follow on stderr\n");
  wl_out_flush(&o);
  return err;
}

void wl_stats_print_at_exit(void) {
  long form = wl_option(WL_OPT_STATS);
  if (form <= 0) return;
  bool opened;
  int fd = report_fd(&opened);
  void (*json)(int) = wl_load_acquire(&json_writer);
  if (form == WL_STATS_JSON && json != NULL) json(fd);
  else wl_stats_print(fd);
  if (opened) wl_os_close(fd);
}
