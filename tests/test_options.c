/* test_options.c: the option table (lib/core/options.c) through its three
 * doors: the variable WALLOC_<NAME>, an item of WALLOC_OPTIONS, and
 * walloc_option_set, for every option of the table (white box: the table
 * itself says which values to try). The reports of bad settings, and the
 * table against docs/options.md, are checked by tests/options_check.py.
 */
#include "test_common.h"
#include "core/core.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>

/* A value of the option other than its default, as a user writes it, and
   what walloc_option_get (or walloc_option_text) then answers. */
static void other_value(const wl_option_info_t *info, char *text, size_t len, long *want) {
  switch (info->kind) {
    case WL_OPTK_BOOL:
      snprintf(text, len, "%s", info->def ? "off" : "yes");
      *want = !info->def;
      return;
    case WL_OPTK_INT:
      *want = (long)(info->def == info->max ? info->min : info->max);
      snprintf(text, len, "%ld", *want);
      return;
    case WL_OPTK_SIZE:
      *want = (long)(info->def == 2 << 20 ? 3 << 20 : 2 << 20);
      snprintf(text, len, "%ldM", *want >> 20);
      return;
    case WL_OPTK_CHOICE: { /* the next name of the list */
      *want = (long)((info->def + 1) % (info->max + 1));
      const char *c = info->extra;
      for (long i = 0; i < *want; i++) c += strcspn(c, ",") + 1;
      snprintf(text, len, "%.*s", (int)strcspn(c, ","), c);
      return;
    }
    case WL_OPTK_TEXT:
      snprintf(text, len, "walloc-test-%s", info->name);
      *want = 0;
      return;
    case WL_OPTK_TIERS:
      snprintf(text, len, "64M:10,20,70");
      *want = 0;
      return;
  }
}

static void variable_name(const wl_option_info_t *info, char *var, size_t len) {
  snprintf(var, len, "WALLOC_%s", info->name);
  for (char *c = var; *c != 0; c++) *c = (char)toupper((unsigned char)*c);
}

/* The value in force is `text` (want for numbers). */
static void assert_taken(const wl_option_info_t *info, const char *text, long want, const char *door) {
  if (info->kind >= WL_OPTK_TEXT) {
    long v;
    ck_assert_int_eq(walloc_option_get(info->name, &v), WALLOC_ERR_UNSUPPORTED);
    const char *got = walloc_option_text(info->name);
    ck_assert_msg(got != NULL && strcmp(got, text) == 0, "%s through %s: %s, not %s", info->name, door,
                  got == NULL ? "unset" : got, text);
  } else {
    long v = -12345;
    ck_assert_int_eq(walloc_option_get(info->name, &v), WALLOC_OK);
    ck_assert_msg(v == want, "%s through %s (%s): %ld, not %ld", info->name, door, text, v, want);
  }
}

static void assert_default(const wl_option_info_t *info) {
  if (info->kind >= WL_OPTK_TEXT) {
    ck_assert_ptr_null(walloc_option_text(info->name));
  } else {
    long v = -12345;
    ck_assert_int_eq(walloc_option_get(info->name, &v), WALLOC_OK);
    ck_assert_int_eq(v, (long)(WL_OPTIONS_FIXED ? info->wasm_def : info->def));
  }
}

static void clear_environment(void) {
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    char var[64];
    variable_name(&wl_option_info[i], var, sizeof var);
    unsetenv(var);
  }
  unsetenv("WALLOC_OPTIONS");
}

START_TEST(the_table_is_well_formed) {
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    const wl_option_info_t *info = &wl_option_info[i];
    ck_assert_uint_lt(strlen(info->name), 56); /* options.c builds WALLOC_<NAME> in 64 bytes */
    if (!WL_OPTIONS_FIXED) ck_assert_ptr_nonnull(info->doc); /* wasm modules leave the descriptions out */
    ck_assert_int_le(info->min, info->max);
    if (info->kind < WL_OPTK_TEXT) {
      ck_assert_int_ge(info->def, info->min);
      ck_assert_int_le(info->def, info->max);
      ck_assert_int_ge(info->wasm_def, info->min);
      ck_assert_int_le(info->wasm_def, info->max);
    } else {
      ck_assert_ptr_nonnull(info->extra); /* the default as the documentation shows it */
      ck_assert(!info->runtime);
    }
    for (int k = 0; k < i; k++) ck_assert_str_ne(info->name, wl_option_info[k].name);
  }
}
END_TEST

START_TEST(every_option_through_its_variable) {
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    const wl_option_info_t *info = &wl_option_info[i];
    if (WL_OPTIONS_FIXED) { /* wasm: fixed at compile time (core.h) */
      printf("skipped: WALLOC_%s through its variable (fixed at compile time on wasm)\n", info->name);
      continue;
    }
    char var[64], text[80];
    long want;
    variable_name(info, var, sizeof var);
    other_value(info, text, sizeof text, &want);
    clear_environment();
    wl_options_reread();
    assert_default(info);
    setenv(var, text, 1);
    wl_options_reread();
    assert_taken(info, text, want, var);
  }
  clear_environment();
  wl_options_reread();
}
END_TEST

START_TEST(every_option_through_walloc_options) {
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    const wl_option_info_t *info = &wl_option_info[i];
    if (WL_OPTIONS_FIXED) { /* wasm: fixed at compile time (core.h) */
      printf("skipped: %s through WALLOC_OPTIONS (fixed at compile time on wasm)\n", info->name);
      continue;
    }
    char var[64], text[80], items[256];
    long want;
    variable_name(info, var, sizeof var);
    other_value(info, text, sizeof text, &want);
    clear_environment();
    /* between two other items, so the split is tested on each */
    snprintf(items, sizeof items, "verbose=%s,%s=%s,purge_delay=%s", i == WL_OPT_VERBOSE ? text : "0",
             info->name, text, i == WL_OPT_PURGE_DELAY ? text : "7");
    setenv("WALLOC_OPTIONS", items, 1);
    wl_options_reread();
    assert_taken(info, text, want, items);
    /* the variable wins over the item */
    if (info->kind < WL_OPTK_TEXT) {
      char def[32];
      snprintf(def, sizeof def, "%ld", (long)info->def);
      if (info->kind == WL_OPTK_BOOL) snprintf(def, sizeof def, "%s", info->def ? "yes" : "no");
      setenv(var, def, 1);
      wl_options_reread();
      assert_default(info);
    }
  }
  clear_environment();
  wl_options_reread();
}
END_TEST

START_TEST(every_option_through_walloc_option_set) {
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    const wl_option_info_t *info = &wl_option_info[i];
    char text[80];
    long want, before;
    other_value(info, text, sizeof text, &want);
    if (WL_OPTIONS_FIXED || !info->runtime) { /* refused, and nothing changes */
      ck_assert_int_eq(walloc_option_set(info->name, want), WALLOC_ERR_UNSUPPORTED);
      if (info->kind < WL_OPTK_TEXT) assert_default(info);
      continue;
    }
    ck_assert_int_eq(walloc_option_get(info->name, &before), WALLOC_OK);
    ck_assert_int_eq(walloc_option_set(info->name, want), WALLOC_OK);
    assert_taken(info, text, want, "walloc_option_set");
    if (info->max < LONG_MAX) ck_assert_int_eq(walloc_option_set(info->name, (long)info->max + 1), WALLOC_ERR_INVALID);
    if (info->min > LONG_MIN) ck_assert_int_eq(walloc_option_set(info->name, (long)info->min - 1), WALLOC_ERR_INVALID);
    assert_taken(info, text, want, "walloc_option_set after refusals");
    ck_assert_int_eq(walloc_option_set(info->name, before), WALLOC_OK);
  }
}
END_TEST

START_TEST(names_in_any_case_and_unknown_names) {
  long v;
  ck_assert_int_eq(walloc_option_get("WALLOC_MISUSE_ABORT", &v), WALLOC_OK);
  ck_assert_int_eq(walloc_option_get("Misuse_Abort", &v), WALLOC_OK);
  ck_assert_int_eq(walloc_option_get("misuse_abort_", &v), WALLOC_ERR_NOT_FOUND);
  ck_assert_int_eq(walloc_option_get("stat", &v), WALLOC_ERR_NOT_FOUND);
  ck_assert_int_eq(walloc_option_get(NULL, &v), WALLOC_ERR_NOT_FOUND);
  ck_assert_int_eq(walloc_option_get("stats", NULL), WALLOC_ERR_INVALID);
  ck_assert_int_eq(walloc_option_set("no_such_option", 1), WALLOC_ERR_NOT_FOUND);
  ck_assert_ptr_null(walloc_option_text("stats")); /* not a text option */
}
END_TEST

/* A value set at run time is what the heap then uses: with purge_delay 0
   a freed page goes back to the system at once. */
START_TEST(a_value_set_at_run_time_is_used) {
  if (WL_OPTIONS_FIXED) {
    ck_assert_int_eq(walloc_option_set("purge_delay", 0), WALLOC_ERR_UNSUPPORTED);
    ck_assert_int_eq(walloc_option_set("tier_decommit", 1), WALLOC_ERR_UNSUPPORTED);
    return;
  }
  ck_assert_int_eq(walloc_option_set("purge_delay", 1234), WALLOC_OK);
  ck_assert_int_eq(wl_option(WL_OPT_PURGE_DELAY), 1234);
  ck_assert_int_eq(walloc_option_set("tier_decommit", 1), WALLOC_OK);
  ck_assert_int_eq(wl_option(WL_OPT_TIER_DECOMMIT), 1);
}
END_TEST

/* The tiers option's form and limits (also what a bad WALLOC_TIERS reports). */
START_TEST(tiers_option_form) {
  wl_tiers_option_t t;
  ck_assert_ptr_null(wl_option_tiers("2G:60,30,10", &t));
  ck_assert_uint_eq(t.memory, (uint64_t)2 << 30);
  ck_assert_uint_eq(t.percent[0], 60);
  ck_assert_uint_eq(t.percent[2], 10);
  ck_assert_ptr_null(wl_option_tiers("64m", &t));
  ck_assert_uint_eq(t.memory, (uint64_t)64 << 20);
  ck_assert_uint_eq(t.percent[0] + t.percent[1] + t.percent[2], 0);
  ck_assert_ptr_nonnull(wl_option_tiers("64K", &t));    /* below 1M */
  ck_assert_ptr_nonnull(wl_option_tiers("1G:60,60,60", &t));
  ck_assert_ptr_nonnull(wl_option_tiers("1G:60,30", &t));
  ck_assert_ptr_nonnull(wl_option_tiers("1G:60,30,10,", &t));
  ck_assert_ptr_nonnull(wl_option_tiers("1M:1,0,0", &t)); /* 10K for the render tier */
  ck_assert_ptr_nonnull(wl_option_tiers("-1G", &t));
  ck_assert_ptr_nonnull(wl_option_tiers("", &t));
}
END_TEST

/* ------------------------------------------------------------------------
   The one error path (lib/core/report.c): every layer's failures leave the
   thread's status and a message naming the call; with verbose on, one line
   with the error prefix and no pointer where there is none.
   ------------------------------------------------------------------------ */
static void failing_calls(void) {
  ck_assert_ptr_null(walloc_scope_enter((walloc_tier)7, 0));
}

START_TEST(failures_name_the_call_in_every_layer) {
  ck_assert_ptr_null(walloc_scope_enter((walloc_tier)7, 0)); /* lifetimes */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  ck_assert_msg(strncmp(walloc_last_error(), "walloc_scope_enter: ", 20) == 0, "%s", walloc_last_error());
  ck_assert_int_eq(walloc_pool_stats_get(NULL, NULL), WALLOC_ERR_INVALID); /* pools */
  ck_assert_msg(strstr(walloc_last_error(), "walloc_pool_stats_get") != NULL, "%s", walloc_last_error());
  walloc_asset_options bad;
  memset(&bad, 0, sizeof bad);
  bad.connections = 100000;
  ck_assert_int_eq(walloc_set_asset_options(&bad), WALLOC_ERR_INVALID); /* assets: the same message */
  ck_assert_msg(strstr(walloc_last_error(), "walloc_set_asset_options") != NULL, "%s", walloc_last_error());
  ck_assert_str_eq(walloc_asset_last_error(), walloc_last_error());
  ck_assert_str_eq(walloc_status_str(WALLOC_ERR_STALE),
                   "WALLOC_ERR_STALE: the handle's block was reclaimed (reset, compaction or deallocation)");
}
END_TEST

START_TEST(reports_have_one_prefix_and_no_null_pointer) {
  if (WL_OPTIONS_FIXED && WL_DEBUG == 0) {
    printf("skipped: reports_have_one_prefix_and_no_null_pointer (a wasm release build prints nothing)\n");
    return;
  }
  if (!WL_OPTIONS_FIXED) ck_assert_int_eq(walloc_option_set("verbose", 1), WALLOC_OK);
  ck_assert(wl_test_stderr_has(failing_calls, "walloc: error: walloc_scope_enter: "));
  ck_assert(!wl_test_stderr_has(failing_calls, "0x0000000000000000"));
  ck_assert(!wl_test_stderr_has(failing_calls, "walloc: error: walloc: "));
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("options");
  WL_TCASE(s, "table", 30, the_table_is_well_formed, every_option_through_its_variable,
           every_option_through_walloc_options, every_option_through_walloc_option_set,
           names_in_any_case_and_unknown_names, a_value_set_at_run_time_is_used, tiers_option_form);
  WL_TCASE(s, "errors", 30, failures_name_the_call_in_every_layer, reports_have_one_prefix_and_no_null_pointer);
  return s;
}
