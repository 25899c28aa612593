/* check.h: a Check-compatible test runner of walloc's own, for the
 * WebAssembly build only (tests/meson.build uses it when is_wasm).
 *
 * The Check library (libcheck) is not built for Emscripten, so the unit
 * suites (tests/test_*.c) are compiled against this header on wasm: the part
 * of Check's API that they use, with the same names, the same assertion
 * messages ("Assertion 'x == y' failed: x == 1, y == 2", naming file:line)
 * and the same summary line ("NN%: Checks: N, Failures: F, Errors: E").
 * Written for walloc from Check's documented API; no code of Check's.
 *
 * How tests run (check.c): there is no fork() on wasm, and the suites expect
 * every test to start in a fresh process (each may configure the tiers once
 * with walloc_init). So by default the runner starts one fresh node process
 * per test (the same program, told which test to run), with the test case's
 * timeout, like Check's fork mode; a test that traps, aborts or exits counts
 * as an error and the run goes on. With CK_FORK=no every test runs in the
 * runner's own process instead. Either way a failing assertion ends its test
 * through longjmp and counts as a failure.
 *
 * Not supported on wasm: signals. Tests added with
 * tcase_add_test_raise_signal are reported as skipped. A test may skip
 * itself with wl_ck_skip(reason) ("skipped: ..." is printed); skipped tests
 * count as passed checks and are totalled in a "skipped on wasm: N" line.
 */
#ifndef WL_WASM_CHECK_H
#define WL_WASM_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CK_ATTRIBUTE_UNUSED __attribute__((unused))
#define CK_ATTRIBUTE_NORETURN __attribute__((noreturn))
#define CK_ATTRIBUTE_FORMAT(a, b, c) __attribute__((format(a, b, c)))

typedef struct TTest {
  const char *name;
  void (*fn)(int _i);
  const char *file;
  int line;
} TTest;

typedef struct TCase TCase;
typedef struct Suite Suite;
typedef struct SRunner SRunner;
typedef void (*SFun)(void);

enum print_output { CK_SILENT, CK_MINIMAL, CK_NORMAL, CK_VERBOSE, CK_ENV, CK_SUBUNIT, CK_LAST };
enum fork_status { CK_FORK_GETENV, CK_FORK, CK_NOFORK };

Suite *suite_create(const char *name);
void suite_add_tcase(Suite *s, TCase *tc);

TCase *tcase_create(const char *name);
void tcase_set_timeout(TCase *tc, double timeout);
void tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown);
void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown);
void _tcase_add_test(TCase *tc, const TTest *t, int signal, int allowed_exit_value, int start, int end);
#define tcase_add_test(tc, tf) tcase_add_test_raise_signal(tc, tf, 0)
#define tcase_add_test_raise_signal(tc, tf, signal) _tcase_add_test((tc), (tf), (signal), 0, 0, 1)
#define tcase_add_exit_test(tc, tf, value) _tcase_add_test((tc), (tf), 0, (value), 0, 1)
#define tcase_add_loop_test(tc, tf, s, e) _tcase_add_test((tc), (tf), 0, 0, (s), (e))

SRunner *srunner_create(Suite *s);
void srunner_add_suite(SRunner *sr, Suite *s);
void srunner_set_fork_status(SRunner *sr, enum fork_status fs);
void srunner_run_all(SRunner *sr, enum print_output mode);
int srunner_ntests_failed(SRunner *sr);
int srunner_ntests_run(SRunner *sr);
void srunner_free(SRunner *sr);

/* The running test's names (NULL outside a test). */
const char *tcase_name(void);

/* walloc's addition: ends the running test as skipped, printing
   "skipped: <case>:<test>:<i> (<reason>)". */
void wl_ck_skip(const char *reason) CK_ATTRIBUTE_NORETURN;

#define START_TEST(name)                                                        \
  static void name##_fn(int _i CK_ATTRIBUTE_UNUSED);                            \
  static const TTest name##_ttest = {"" #name, name##_fn, __FILE__, __LINE__}; \
  static const TTest *name = &name##_ttest;                                     \
  static void name##_fn(int _i CK_ATTRIBUTE_UNUSED)
#define END_TEST

void _mark_point(const char *file, int line);
/* msg is a printf format, or NULL for the expression text alone. */
void _ck_assert_failed(const char *file, int line, const char *expr, const char *msg, ...)
    CK_ATTRIBUTE_NORETURN CK_ATTRIBUTE_FORMAT(printf, 4, 5);
#define mark_point() _mark_point(__FILE__, __LINE__)

#define ck_assert_msg(expr, ...) \
  ((expr) ? _mark_point(__FILE__, __LINE__) \
          : _ck_assert_failed(__FILE__, __LINE__, "Assertion '" #expr "' failed", ##__VA_ARGS__))
#define ck_assert(expr) ck_assert_msg(expr, NULL)
#define ck_abort_msg(...) _ck_assert_failed(__FILE__, __LINE__, "Failed", ##__VA_ARGS__)
#define ck_abort() ck_abort_msg(NULL)

/* Integers: the operands are evaluated once, as type T, and printed with
   the printf length-and-conversion FMT. */
#define _ck_assert_num(T, FMT, X, OP, Y) do {                                                  \
    T _ck_x = (X);                                                                              \
    T _ck_y = (Y);                                                                              \
    ck_assert_msg(_ck_x OP _ck_y, "Assertion '%s' failed: %s == %" FMT ", %s == %" FMT,         \
                  #X " " #OP " " #Y, #X, _ck_x, #Y, _ck_y);                                     \
  } while (0)
#define _ck_assert_int(X, OP, Y) _ck_assert_num(intmax_t, "jd", X, OP, Y)
#define _ck_assert_uint(X, OP, Y) _ck_assert_num(uintmax_t, "ju", X, OP, Y)
#define ck_assert_int_eq(X, Y) _ck_assert_int(X, ==, Y)
#define ck_assert_int_ne(X, Y) _ck_assert_int(X, !=, Y)
#define ck_assert_int_lt(X, Y) _ck_assert_int(X, <, Y)
#define ck_assert_int_le(X, Y) _ck_assert_int(X, <=, Y)
#define ck_assert_int_gt(X, Y) _ck_assert_int(X, >, Y)
#define ck_assert_int_ge(X, Y) _ck_assert_int(X, >=, Y)
#define ck_assert_uint_eq(X, Y) _ck_assert_uint(X, ==, Y)
#define ck_assert_uint_ne(X, Y) _ck_assert_uint(X, !=, Y)
#define ck_assert_uint_lt(X, Y) _ck_assert_uint(X, <, Y)
#define ck_assert_uint_le(X, Y) _ck_assert_uint(X, <=, Y)
#define ck_assert_uint_gt(X, Y) _ck_assert_uint(X, >, Y)
#define ck_assert_uint_ge(X, Y) _ck_assert_uint(X, >=, Y)

/* Floating point: printed with 6 significant digits, as Check does. */
#define _ck_assert_floating(X, OP, Y, TP, TM) do {                                             \
    TP _ck_x = (X);                                                                             \
    TP _ck_y = (Y);                                                                             \
    ck_assert_msg(_ck_x OP _ck_y, "Assertion '%s' failed: %s == %.*" TM "g, %s == %.*" TM "g", \
                  #X " " #OP " " #Y, #X, 6, _ck_x, #Y, 6, _ck_y);                               \
  } while (0)
#define ck_assert_double_eq(X, Y) _ck_assert_floating(X, ==, Y, double, "")
#define ck_assert_double_ne(X, Y) _ck_assert_floating(X, !=, Y, double, "")
#define ck_assert_double_lt(X, Y) _ck_assert_floating(X, <, Y, double, "")
#define ck_assert_double_le(X, Y) _ck_assert_floating(X, <=, Y, double, "")
#define ck_assert_double_gt(X, Y) _ck_assert_floating(X, >, Y, double, "")
#define ck_assert_double_ge(X, Y) _ck_assert_floating(X, >=, Y, double, "")
#define ck_assert_float_eq(X, Y) _ck_assert_floating(X, ==, Y, float, "")
#define ck_assert_float_ne(X, Y) _ck_assert_floating(X, !=, Y, float, "")
#define ck_assert_float_lt(X, Y) _ck_assert_floating(X, <, Y, float, "")
#define ck_assert_float_le(X, Y) _ck_assert_floating(X, <=, Y, float, "")
#define ck_assert_float_gt(X, Y) _ck_assert_floating(X, >, Y, float, "")
#define ck_assert_float_ge(X, Y) _ck_assert_floating(X, >=, Y, float, "")

/* Strings: compared with strcmp; NULL never equals a string (nor NULL). */
#define _ck_assert_str(X, OP, Y) do {                                                          \
    const char *_ck_x = (X);                                                                    \
    const char *_ck_y = (Y);                                                                    \
    ck_assert_msg(_ck_x != NULL && _ck_y != NULL && 0 OP strcmp(_ck_y, _ck_x),                 \
                  "Assertion '%s' failed: %s == %s%s%s, %s == %s%s%s", #X " " #OP " " #Y,      \
                  #X, _ck_x ? "\"" : "", _ck_x ? _ck_x : "(null)", _ck_x ? "\"" : "",          \
                  #Y, _ck_y ? "\"" : "", _ck_y ? _ck_y : "(null)", _ck_y ? "\"" : "");         \
  } while (0)
#define ck_assert_str_eq(X, Y) _ck_assert_str(X, ==, Y)
#define ck_assert_str_ne(X, Y) _ck_assert_str(X, !=, Y)
#define ck_assert_str_lt(X, Y) _ck_assert_str(X, <, Y)
#define ck_assert_str_le(X, Y) _ck_assert_str(X, <=, Y)
#define ck_assert_str_gt(X, Y) _ck_assert_str(X, >, Y)
#define ck_assert_str_ge(X, Y) _ck_assert_str(X, >=, Y)

/* Memory: compared with memcmp, the first 64 bytes of each printed in hex. */
void _wl_ck_hex(char *out, const void *p, size_t n); /* out: 2 * 64 + 1 bytes */
#define _ck_assert_mem(X, OP, Y, L) do {                                                       \
    const void *_ck_x = (X);                                                                    \
    const void *_ck_y = (Y);                                                                    \
    size_t _ck_l = (L);                                                                         \
    if (!(0 OP memcmp(_ck_y, _ck_x, _ck_l))) {                                                  \
      char _ck_xs[129], _ck_ys[129];                                                            \
      _wl_ck_hex(_ck_xs, _ck_x, _ck_l);                                                         \
      _wl_ck_hex(_ck_ys, _ck_y, _ck_l);                                                         \
      _ck_assert_failed(__FILE__, __LINE__, "Assertion failed",                                 \
                        "Assertion '%s' failed: %s == \"%s\", %s == \"%s\"",                    \
                        #X " " #OP " " #Y, #X, _ck_xs, #Y, _ck_ys);                             \
    }                                                                                           \
    _mark_point(__FILE__, __LINE__);                                                            \
  } while (0)
#define ck_assert_mem_eq(X, Y, L) _ck_assert_mem(X, ==, Y, L)
#define ck_assert_mem_ne(X, Y, L) _ck_assert_mem(X, !=, Y, L)
#define ck_assert_mem_lt(X, Y, L) _ck_assert_mem(X, <, Y, L)
#define ck_assert_mem_le(X, Y, L) _ck_assert_mem(X, <=, Y, L)
#define ck_assert_mem_gt(X, Y, L) _ck_assert_mem(X, >, Y, L)
#define ck_assert_mem_ge(X, Y, L) _ck_assert_mem(X, >=, Y, L)

/* Pointers. */
#define _ck_assert_ptr(X, OP, Y) do {                                                          \
    const void *_ck_x = (X);                                                                    \
    const void *_ck_y = (Y);                                                                    \
    ck_assert_msg(_ck_x OP _ck_y, "Assertion '%s' failed: %s == %#lx, %s == %#lx",             \
                  #X " " #OP " " #Y, #X, (unsigned long)(uintptr_t)_ck_x, #Y,                   \
                  (unsigned long)(uintptr_t)_ck_y);                                             \
  } while (0)
#define ck_assert_ptr_eq(X, Y) _ck_assert_ptr(X, ==, Y)
#define ck_assert_ptr_ne(X, Y) _ck_assert_ptr(X, !=, Y)
#define _ck_assert_ptr_null(X, OP) do {                                                        \
    const void *_ck_x = (X);                                                                    \
    ck_assert_msg(_ck_x OP NULL, "Assertion '%s' failed: %s == %#lx", #X " " #OP " NULL", #X,  \
                  (unsigned long)(uintptr_t)_ck_x);                                             \
  } while (0)
#define ck_assert_ptr_null(X) _ck_assert_ptr_null(X, ==)
#define ck_assert_ptr_nonnull(X) _ck_assert_ptr_null(X, !=)

#endif
