/* libempty-preload.so: a shared library that replaces nothing. Preloaded,
 * it measures what LD_PRELOAD itself costs a program (the dynamic loader
 * opens, maps and relocates one more library in every process it starts),
 * the floor under any preloaded allocator: the "empty" column of
 * run_programs.py --also empty=build/benchmarks/libempty-preload.so. */
int walloc_empty_preload_marker(void);
int walloc_empty_preload_marker(void) { return 0; }
