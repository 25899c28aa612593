/* check.c: the runner behind tests/wasm_check/check.h (WebAssembly only).
 *
 * Runs under node (the cross file's exe_wrapper). The runner process starts
 * one child per test: the same node command line, with WL_CHECK_ONLY=<k> in
 * the environment, run by node's child_process.spawnSync with the test case's
 * timeout (times CK_TIMEOUT_MULTIPLIER). The child runs test k alone and
 * exits with WL_CK_EXIT_PASS, _FAIL or _SKIP; anything else (a wasm trap,
 * abort, exit from the test, timeout) is an error. Output goes straight to
 * the runner's stdout and stderr (stdio inherited).
 *
 * CK_FORK=no runs every test in the runner's process instead (faster, but
 * tests then see each other's allocator state). CK_VERBOSITY (silent,
 * minimal, normal, verbose) and CK_RUN_CASE (one test case by name) are read
 * from node's environment, as Check reads them.
 */
#include "check.h"

#include <emscripten.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

enum { WL_CK_EXIT_PASS = 0, WL_CK_EXIT_FAIL = 70, WL_CK_EXIT_SKIP = 71 };
enum { WL_CK_SPAWN_TIMEOUT = -2, WL_CK_SPAWN_SIGNAL = -3, WL_CK_SPAWN_FAILED = -4 };

typedef struct entry_s {
  const TTest *test;
  int signal, start, end;
} entry_t;

struct TCase {
  const char *name;
  double timeout;
  entry_t *tests;
  size_t ntests, cap;
  SFun setup, teardown;   /* unchecked fixture: around the case (in each child) */
  SFun csetup, cteardown; /* checked fixture: around each test */
  TCase *next;
};

struct Suite {
  const char *name;
  TCase *first, *last;
  Suite *next;
};

struct SRunner {
  Suite *first, *last;
  enum fork_status fork;
  int checks, failures, errors, skipped;
};

/* The test running in this process. */
static struct {
  const TCase *tc;
  const TTest *test;
  int i;
  jmp_buf *jump;
  int outcome; /* WL_CK_EXIT_* once the test ended early */
  enum print_output mode;
} cur;

/* ---- node's environment and child processes ---------------------------- */

/* process.env[name] into buf (truncated); -1 if unset. */
EM_JS(int, wl_ck_getenv_js, (const char *name, char *buf, int cap), {
  var v = process.env[UTF8ToString(name)];
  if (v === undefined) return -1;
  stringToUTF8(v, buf, cap);
  return 0;
});

/* Runs this same program again with WL_CHECK_ONLY=index; its exit status, or
   a WL_CK_SPAWN_* code. */
EM_JS(int, wl_ck_spawn_js, (int index, double timeout_s), {
  var cp = require('child_process');
  var env = Object.assign({}, process.env, {WL_CHECK_ONLY: String(index)});
  var opts = {stdio: 'inherit', env: env};
  if (timeout_s > 0) { opts.timeout = Math.ceil(timeout_s * 1000); opts.killSignal = 'SIGKILL'; }
  var r = cp.spawnSync(process.execPath, process.execArgv.concat(process.argv.slice(1)), opts);
  if (r.error && r.error.code === 'ETIMEDOUT') return -2;
  if (r.error) return -4;
  if (r.status === null) return -3;
  return r.status;
});

/* Ends this process with `status` at once (exit() in a build without
   EXIT_RUNTIME prints a warning on every call). */
EM_JS(void, wl_ck_exit_js, (int status), { process.exit(status); });

static void child_exit(int status) {
  fflush(stdout);
  fflush(stderr);
  wl_ck_exit_js(status);
  exit(status); /* not reached */
}

static const char *env_get(const char *name, char *buf, int cap) {
  return wl_ck_getenv_js(name, buf, cap) == 0 ? buf : NULL;
}

/* ---- building suites ---------------------------------------------------- */

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p == NULL) {
    fprintf(stderr, "check (wasm): out of memory\n");
    abort();
  }
  return p;
}

Suite *suite_create(const char *name) {
  Suite *s = xcalloc(1, sizeof *s);
  s->name = name;
  return s;
}

void suite_add_tcase(Suite *s, TCase *tc) {
  for (TCase *t = s->first; t != NULL; t = t->next) {
    if (t == tc) return; /* added once only, as in Check */
  }
  if (s->last != NULL) s->last->next = tc;
  else s->first = tc;
  s->last = tc;
}

TCase *tcase_create(const char *name) {
  TCase *tc = xcalloc(1, sizeof *tc);
  tc->name = name;
  tc->timeout = 4; /* Check's default */
  return tc;
}

void tcase_set_timeout(TCase *tc, double timeout) {
  if (timeout >= 0) tc->timeout = timeout;
}

void tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown) {
  tc->setup = setup;
  tc->teardown = teardown;
}

void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown) {
  tc->csetup = setup;
  tc->cteardown = teardown;
}

void _tcase_add_test(TCase *tc, const TTest *t, int signal, int allowed_exit_value, int start, int end) {
  (void)allowed_exit_value;
  if (tc->ntests == tc->cap) {
    tc->cap = tc->cap ? 2 * tc->cap : 16;
    entry_t *grown = realloc(tc->tests, tc->cap * sizeof *grown);
    if (grown == NULL) abort();
    tc->tests = grown;
  }
  tc->tests[tc->ntests++] = (entry_t){t, signal, start, end};
}

SRunner *srunner_create(Suite *s) {
  SRunner *sr = xcalloc(1, sizeof *sr);
  sr->fork = CK_FORK_GETENV;
  if (s != NULL) srunner_add_suite(sr, s);
  return sr;
}

void srunner_add_suite(SRunner *sr, Suite *s) {
  if (sr->last != NULL) sr->last->next = s;
  else sr->first = s;
  sr->last = s;
}

void srunner_set_fork_status(SRunner *sr, enum fork_status fs) { sr->fork = fs; }
int srunner_ntests_failed(SRunner *sr) { return sr->failures + sr->errors; }
int srunner_ntests_run(SRunner *sr) { return sr->checks; }

void srunner_free(SRunner *sr) {
  for (Suite *s = sr->first, *sn; s != NULL; s = sn) {
    sn = s->next;
    for (TCase *t = s->first, *tn; t != NULL; t = tn) {
      tn = t->next;
      free(t->tests);
      free(t);
    }
    free(s);
  }
  free(sr);
}

const char *tcase_name(void) { return cur.tc != NULL ? cur.tc->name : NULL; }

/* ---- assertions ----------------------------------------------------------- */

void _mark_point(const char *file, int line) {
  (void)file;
  (void)line;
}

static void report(const char *file, int line, char kind, const char *msg) {
  printf("%s:%d:%c:%s:%s:%d: %s\n", file, line, kind, cur.tc ? cur.tc->name : "?",
         cur.test ? cur.test->name : "?", cur.i, msg);
  fflush(stdout);
}

void _ck_assert_failed(const char *file, int line, const char *expr, const char *msg, ...) {
  char buf[4096];
  if (msg != NULL) {
    va_list ap;
    va_start(ap, msg);
    vsnprintf(buf, sizeof buf, msg, ap);
    va_end(ap);
  } else {
    snprintf(buf, sizeof buf, "%s", expr);
  }
  if (cur.mode != CK_SILENT && cur.mode != CK_MINIMAL) report(file, line, 'F', buf);
  if (cur.jump == NULL) { /* outside a test: nothing to return to */
    fprintf(stderr, "check (wasm): assertion outside a test: %s\n", buf);
    child_exit(WL_CK_EXIT_FAIL);
  }
  cur.outcome = WL_CK_EXIT_FAIL;
  longjmp(*cur.jump, 1);
}

void wl_ck_skip(const char *reason) {
  printf("skipped: %s:%s:%d (%s)\n", cur.tc ? cur.tc->name : "?", cur.test ? cur.test->name : "?", cur.i,
         reason);
  fflush(stdout);
  if (cur.jump == NULL) child_exit(WL_CK_EXIT_SKIP);
  cur.outcome = WL_CK_EXIT_SKIP;
  longjmp(*cur.jump, 1);
}

void _wl_ck_hex(char *out, const void *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  const uint8_t *b = p;
  size_t m = n > 64 ? 64 : n;
  for (size_t k = 0; k < m; k++) {
    out[2 * k] = digits[b[k] >> 4];
    out[2 * k + 1] = digits[b[k] & 15];
  }
  if (m < n) out[2 * m - 2] = out[2 * m - 1] = '.';
  out[2 * m] = 0;
}

/* ---- running ---------------------------------------------------------------- */

/* Runs one test here; returns a WL_CK_EXIT_* outcome. */
static int run_here(const TCase *tc, const entry_t *e, int i) {
  cur.tc = tc;
  cur.test = e->test;
  cur.i = i;
  cur.outcome = WL_CK_EXIT_PASS;
  if (e->signal != 0) {
    char why[96];
    snprintf(why, sizeof why, "expects signal %d: no signals on wasm", e->signal);
    printf("skipped: %s:%s:%d (%s)\n", tc->name, e->test->name, i, why);
    fflush(stdout);
    return WL_CK_EXIT_SKIP;
  }
  jmp_buf jb;
  cur.jump = &jb;
  if (setjmp(jb) == 0) {
    if (tc->csetup != NULL) tc->csetup();
    e->test->fn(i);
    if (tc->cteardown != NULL) tc->cteardown();
  }
  cur.jump = NULL;
  cur.tc = NULL;
  cur.test = NULL;
  fflush(stdout);
  fflush(stderr);
  return cur.outcome;
}

static enum print_output verbosity(enum print_output mode) {
  if (mode != CK_ENV) return mode;
  char buf[32];
  const char *v = env_get("CK_VERBOSITY", buf, sizeof buf);
  if (v == NULL) return CK_NORMAL;
  if (strcmp(v, "silent") == 0) return CK_SILENT;
  if (strcmp(v, "minimal") == 0) return CK_MINIMAL;
  if (strcmp(v, "verbose") == 0) return CK_VERBOSE;
  return CK_NORMAL;
}

static double env_double(const char *name, double dflt) {
  char buf[32];
  const char *v = env_get(name, buf, sizeof buf);
  if (v == NULL) return dflt;
  char *end;
  double d = strtod(v, &end);
  return end != v && d > 0 ? d : dflt;
}

void srunner_run_all(SRunner *sr, enum print_output mode) {
  cur.mode = verbosity(mode);
  char buf[256];
  const char *only_s = env_get("WL_CHECK_ONLY", buf, sizeof buf);
  int only = only_s != NULL ? atoi(only_s) : -1;
  bool fork = sr->fork == CK_FORK || (sr->fork == CK_FORK_GETENV && !(env_get("CK_FORK", buf, sizeof buf) &&
                                                                     strcmp(buf, "no") == 0));
  char case_buf[128];
  const char *run_case = env_get("CK_RUN_CASE", case_buf, sizeof case_buf);
  double multiplier = env_double("CK_TIMEOUT_MULTIPLIER", 1);

  if (only < 0 && cur.mode != CK_SILENT) {
    printf("Running suite(s):");
    for (Suite *s = sr->first; s != NULL; s = s->next) printf(" %s", s->name);
    printf("\n");
    fflush(stdout);
  }
  int index = 0; /* numbers every (test, i) in order, the same in every process */
  for (Suite *s = sr->first; s != NULL; s = s->next) {
    for (TCase *tc = s->first; tc != NULL; tc = tc->next) {
      if (run_case != NULL && strcmp(run_case, tc->name) != 0) {
        for (size_t k = 0; k < tc->ntests; k++) index += tc->tests[k].end - tc->tests[k].start;
        continue;
      }
      bool in_case = false; /* unchecked fixture set up in this process */
      for (size_t k = 0; k < tc->ntests; k++) {
        const entry_t *e = &tc->tests[k];
        for (int i = e->start; i < e->end; i++, index++) {
          if (only >= 0) {
            if (index != only) continue;
            /* the child: this one test, and its case's fixture around it */
            if (tc->setup != NULL) tc->setup();
            int outcome = run_here(tc, e, i);
            if (tc->teardown != NULL) tc->teardown();
            child_exit(outcome);
          }
          int outcome;
          if (fork) {
            outcome = wl_ck_spawn_js(index, tc->timeout * multiplier);
          } else {
            if (!in_case && tc->setup != NULL) tc->setup();
            in_case = true;
            outcome = run_here(tc, e, i);
          }
          sr->checks++;
          if (outcome == WL_CK_EXIT_PASS) {
            if (cur.mode == CK_VERBOSE) {
              cur.tc = tc, cur.test = e->test, cur.i = i;
              report(e->test->file, e->test->line, 'P', "Passed");
              cur.tc = NULL, cur.test = NULL;
            }
          } else if (outcome == WL_CK_EXIT_SKIP) {
            sr->skipped++;
          } else if (outcome == WL_CK_EXIT_FAIL) {
            sr->failures++;
          } else {
            sr->errors++;
            char why[96];
            if (outcome == WL_CK_SPAWN_TIMEOUT) snprintf(why, sizeof why, "Test timeout expired");
            else if (outcome == WL_CK_SPAWN_SIGNAL) snprintf(why, sizeof why, "Killed by a signal");
            else if (outcome == WL_CK_SPAWN_FAILED) snprintf(why, sizeof why, "Could not start node");
            else snprintf(why, sizeof why, "(after this point) Early exit with return value %d (a trap or abort)", outcome);
            if (cur.mode != CK_SILENT && cur.mode != CK_MINIMAL) {
              cur.tc = tc, cur.test = e->test, cur.i = i;
              report(e->test->file, e->test->line, 'E', why);
              cur.tc = NULL, cur.test = NULL;
            }
          }
        }
      }
      if (in_case && tc->teardown != NULL) tc->teardown();
    }
  }
  if (only >= 0) {
    fprintf(stderr, "check (wasm): no test number %d\n", only);
    child_exit(WL_CK_EXIT_FAIL);
  }
  if (cur.mode != CK_SILENT) {
    int bad = sr->failures + sr->errors;
    int pct = sr->checks ? (int)((sr->checks - bad) * 100.0 / sr->checks) : 0;
    printf("%d%%: Checks: %d, Failures: %d, Errors: %d\n", pct, sr->checks, sr->failures, sr->errors);
    if (sr->skipped != 0) printf("skipped on wasm: %d of the checks (counted as passed)\n", sr->skipped);
    fflush(stdout);
  }
}
