# gen_c.awk: write a C program of N generated functions (awk -v N=300).
# Loops, switches, structs, recursion, function pointers and string handling,
# so the compiler's optimiser has real work; main prints a checksum per group.
BEGIN {
  if (N == 0) N = 300
  print "#include <stdio.h>"
  print "#include <stdlib.h>"
  print "#include <string.h>"
  print "#include <stdint.h>"
  print ""
  print "struct rec { int32_t a, b; uint64_t h; char name[24]; };"
  print "typedef uint64_t (*fn_t)(uint64_t);"
  print ""
  for (i = 0; i < N; i++) {
    printf "static uint64_t f%d(uint64_t x) {\n", i
    printf "  struct rec r[%d];\n", 4 + i % 13
    printf "  uint64_t acc = x ^ %du;\n", i * 2654435761 % 4294967296
    printf "  for (int k = 0; k < %d; k++) {\n", 4 + i % 13
    printf "    r[k].a = (int32_t)(acc >> (k %% 17)) + k * %d;\n", i + 1
    printf "    r[k].b = r[k].a ^ (int32_t)(acc * %du);\n", 31 + i
    printf "    r[k].h = acc * 6364136223846793005ull + %du;\n", i
    printf "    snprintf(r[k].name, sizeof r[k].name, \"n%d-%%d\", r[k].a & 0xffff);\n", i
    printf "    acc += r[k].h ^ (uint64_t)strlen(r[k].name);\n"
    printf "    switch ((acc >> 7) %% %d) {\n", 3 + i % 5
    for (c = 0; c < 3 + i % 5; c++)
      printf "    case %d: acc = (acc << %d) | (acc >> %d); acc ^= %du; break;\n", c, 1 + c, 63 - c, c * 7919 + i
    print "    default: acc += 1; break;"
    print "    }"
    print "  }"
    if (i > 0) printf "  if ((acc & 3) == 0) acc ^= f%d(x >> 1);\n", int(i / 2)
    printf "  for (int k = 0; k < %d; k++) acc += (uint64_t)r[k].b * (uint64_t)(k + 1);\n", 4 + i % 13
    print "  return acc;"
    print "}"
    print ""
  }
  printf "static const fn_t table[%d] = {", N
  for (i = 0; i < N; i++) printf "%sf%d", (i ? ", " : ""), i
  print "};"
  print ""
  print "int main(void) {"
  print "  uint64_t total = 0;"
  print "  char *log = malloc(1);"
  print "  size_t len = 0;"
  printf "  for (int i = 0; i < %d; i++) {\n", N
  print "    uint64_t v = table[i]((uint64_t)i * 1000003u);"
  print "    total = total * 31 + v;"
  print "    char buf[64];"
  print "    int n = snprintf(buf, sizeof buf, \"%d:%016llx\\n\", i, (unsigned long long)v);"
  print "    log = realloc(log, len + (size_t)n + 1);"
  print "    memcpy(log + len, buf, (size_t)n + 1);"
  print "    len += (size_t)n;"
  printf "    if (i %% 50 == 49) printf(\"group %%d: %%016llx\\n\", i / 50, (unsigned long long)total);\n"
  print "  }"
  print "  printf(\"log %zu bytes, total %016llx\\n\", len, (unsigned long long)total);"
  print "  free(log);"
  print "  return 0;"
  print "}"
}
