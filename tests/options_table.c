/* options_table.c: prints walloc's option table (lib/core/core.h), one
 * option a line, fields separated by tabs: name, kind, default, wasm
 * default, min, max, group, run-time settable, extra, description.
 * tests/options_check.py reads it to check docs/options.md and the reports
 * of bad settings against the table itself.
 */
#include "core/core.h"

#include <stdio.h>

int main(void) {
  static const char *const kinds[] = {"bool", "int", "size", "choice", "text", "tiers"};
  static const char *const groups[] = {"start", "tiers", "assets"};
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    const wl_option_info_t *o = &wl_option_info[i];
    printf("%s\t%s\t%lld\t%lld\t%lld\t%lld\t%s\t%d\t%s\t%s\n", o->name, kinds[o->kind], (long long)o->def,
           (long long)o->wasm_def, (long long)o->min, (long long)o->max, groups[o->group], o->runtime ? 1 : 0,
           o->extra != NULL ? o->extra : "", o->doc);
  }
  return 0;
}
