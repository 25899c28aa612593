/* test_main.c: runs the suite of one test executable. */
#include "test_common.h"

int main(void) {
  SRunner *sr = srunner_create(wl_test_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
