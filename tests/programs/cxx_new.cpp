// cxx_new.cpp: every C++ operator new and delete, run preloaded with walloc.
//
// Linked normally (not with walloc): under LD_PRELOAD=libwalloc.so the
// operators resolve to walloc's. Checks alignment, usability, sized and
// aligned deletes, the nothrow forms, new_handler retries, and that an
// impossible size throws std::bad_alloc (nullptr from the nothrow forms).
//
// With --expect-walloc, walloc_owns (looked up with dlsym, since the program
// does not link walloc) must exist and own every block the operators return.
// Without it the program also passes under the C library's allocator.
#include <dlfcn.h>

#include <cinttypes>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

int failures = 0;
int checks = 0;
bool (*owns)(const void *) = nullptr;

#define CHECK(cond)                                                          \
  do {                                                                       \
    checks++;                                                                \
    if (!(cond)) {                                                           \
      failures++;                                                            \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

// A block from an operator: non-null, aligned, writable over its whole size,
// and (under walloc) walloc's.
void check_block(void *p, std::size_t size, std::size_t align, const char *what) {
  checks++;
  if (p == nullptr) {
    failures++;
    std::fprintf(stderr, "%s(%zu): returned nullptr\n", what, size);
    return;
  }
  if (reinterpret_cast<std::uintptr_t>(p) % align != 0) {
    failures++;
    std::fprintf(stderr, "%s(%zu): %p is not %zu-aligned\n", what, size, p, align);
  }
  if (owns != nullptr && !owns(p)) {
    failures++;
    std::fprintf(stderr, "%s(%zu): %p is not a walloc block\n", what, size, p);
  }
  if (size > 0) {
    std::memset(p, 0xA5, size);
    auto *b = static_cast<volatile unsigned char *>(p);
    if (b[0] != 0xA5 || b[size - 1] != 0xA5) {
      failures++;
      std::fprintf(stderr, "%s(%zu): memory not writable\n", what, size);
    }
  }
}

const std::size_t sizes[] = {0, 1, 7, 16, 24, 100, 1000, 4096, 10000, 65536, 100000, 1 << 20, 3 << 20};
const std::size_t aligns[] = {64, 256, 4096};

void plain_operators() {
  const std::size_t fund = alignof(std::max_align_t);
  for (std::size_t n : sizes) {
    void *p = ::operator new(n);
    check_block(p, n, fund, "operator new");
    ::operator delete(p);
    p = ::operator new(n);
    check_block(p, n, fund, "operator new");
    ::operator delete(p, n);  // sized
    p = ::operator new[](n);
    check_block(p, n, fund, "operator new[]");
    ::operator delete[](p);
    p = ::operator new[](n);
    check_block(p, n, fund, "operator new[]");
    ::operator delete[](p, n);  // sized
    p = ::operator new(n, std::nothrow);
    check_block(p, n, fund, "operator new nothrow");
    ::operator delete(p, std::nothrow);
    p = ::operator new[](n, std::nothrow);
    check_block(p, n, fund, "operator new[] nothrow");
    ::operator delete[](p, std::nothrow);
  }
}

void aligned_operators() {
  for (std::size_t a : aligns) {
    std::align_val_t al{a};
    for (std::size_t n : sizes) {
      void *p = ::operator new(n, al);
      check_block(p, n, a, "operator new aligned");
      ::operator delete(p, al);
      p = ::operator new(n, al);
      check_block(p, n, a, "operator new aligned");
      ::operator delete(p, n, al);  // sized and aligned
      p = ::operator new[](n, al);
      check_block(p, n, a, "operator new[] aligned");
      ::operator delete[](p, al);
      p = ::operator new[](n, al);
      check_block(p, n, a, "operator new[] aligned");
      ::operator delete[](p, n, al);
      p = ::operator new(n, al, std::nothrow);
      check_block(p, n, a, "operator new aligned nothrow");
      ::operator delete(p, al, std::nothrow);
      p = ::operator new[](n, al, std::nothrow);
      check_block(p, n, a, "operator new[] aligned nothrow");
      ::operator delete[](p, al, std::nothrow);
    }
  }
}

struct alignas(64) A64 { char c[64]; };
struct alignas(256) A256 { char c[100]; };
struct alignas(4096) A4096 { int x; };

// new-expressions: the compiler picks the operator (sized deletes, aligned
// forms for over-aligned types, array cookies for types with destructors).
struct Tracked {
  static int live;
  std::string s;
  Tracked() : s(40, 'x') { live++; }
  ~Tracked() { live--; }
};
int Tracked::live = 0;

void new_expressions() {
  for (int round = 0; round < 50; round++) {
    auto *a = new A64;
    check_block(a, sizeof *a, 64, "new A64");
    delete a;
    auto *b = new A256[7];
    check_block(b, 7 * sizeof *b, 256, "new A256[]");
    delete[] b;
    auto *c = new A4096;
    check_block(c, sizeof *c, 4096, "new A4096");
    delete c;
    auto *d = new (std::nothrow) A4096[3];
    check_block(d, 3 * sizeof *d, 4096, "new nothrow A4096[]");
    delete[] d;
    auto *t = new Tracked[10 + round];
    CHECK(Tracked::live == 10 + round);
    delete[] t;
    CHECK(Tracked::live == 0);
    auto u = std::make_unique<A256>();
    check_block(u.get(), sizeof(A256), 256, "make_unique<A256>");
  }
  std::vector<std::unique_ptr<int>> v;
  std::map<int, std::string> m;
  for (int i = 0; i < 100000; i++) {
    v.push_back(std::make_unique<int>(i));
    m[i % 5000] += static_cast<char>('a' + i % 26);
  }
  long sum = 0;
  for (auto &p : v) sum += *p;
  CHECK(sum == 100000L * 99999 / 2);
  CHECK(m.size() == 5000 && m[0].size() == 20);
  std::vector<A64> va(1000);
  check_block(va.data(), va.size() * sizeof(A64), 64, "vector<A64>");
}

struct Big64 { char c[64]; };
volatile std::size_t impossible = SIZE_MAX / 2;  // volatile: no folding
volatile std::size_t impossible_count = SIZE_MAX / 4;
// Results of new-expressions go through here, so the compiler cannot elide
// the allocation (C++14 lets it drop an unobserved new/delete pair).
void *volatile sink;

// True when f() throws std::bad_alloc (or a type derived from it).
template <class F> bool throws_bad_alloc(F f) {
  try {
    f();
  } catch (const std::bad_alloc &) {
    return true;
  }
  return false;
}

void impossible_sizes() {
  CHECK(throws_bad_alloc([&] {
    char *p = new char[impossible];
    sink = p;
    std::fprintf(stderr, "new char[SIZE_MAX / 2] returned %p\n", sink);
    delete[] p;
  }));

  CHECK(throws_bad_alloc([&] {
    void *p = ::operator new(impossible);
    ::operator delete(p);
  }));

  CHECK(throws_bad_alloc([&] {
    void *p = ::operator new[](impossible, std::align_val_t{4096});
    ::operator delete[](p, std::align_val_t{4096});
  }));

  // count * sizeof overflows: bad_array_new_length (a bad_alloc) from g++;
  // clang++ asks operator new[] for SIZE_MAX instead, which must fail too.
  // (Not with an over-aligned type: libstdc++'s own aligned operator new
  // rounds SIZE_MAX up to 0 and succeeds, so that is checked for walloc only.)
  CHECK(throws_bad_alloc([&] {
    auto *p = new Big64[impossible_count];
    sink = p;
    std::fprintf(stderr, "new A64[SIZE_MAX / 4] returned %p\n", sink);
    delete[] p;
  }));

  CHECK(::operator new(impossible, std::nothrow) == nullptr);
  CHECK(::operator new[](impossible, std::nothrow) == nullptr);
  CHECK(::operator new(impossible, std::align_val_t{64}, std::nothrow) == nullptr);
  CHECK(::operator new[](impossible, std::align_val_t{256}, std::nothrow) == nullptr);
  sink = new (std::nothrow) char[impossible];
  CHECK(sink == nullptr);
  // An invalid array length throws even in a nothrow new-expression (the
  // check comes before any allocation function); either outcome is fine here.
  try {
    sink = new (std::nothrow) Big64[impossible_count];
    CHECK(sink == nullptr);
  } catch (const std::bad_array_new_length &) {
  }
}

// The throwing forms call the new_handler until it gives up.
int handler_calls = 0;
void give_up_handler() {
  if (++handler_calls >= 3) std::set_new_handler(nullptr);
}
void throwing_handler() {
  handler_calls++;
  throw std::bad_alloc();
}

// Sizes near SIZE_MAX with every alignment: no rounding may wrap around.
// Under walloc only (see above).
void impossible_aligned_sizes() {
  const std::size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX / 2 + 1};
  for (std::size_t a : {std::size_t{16}, std::size_t{64}, std::size_t{256}, std::size_t{4096}}) {
    for (std::size_t n : huge) {
      volatile std::size_t vn = n;
      CHECK(throws_bad_alloc([&] {
        sink = ::operator new[](vn, std::align_val_t{a});
        std::fprintf(stderr, "operator new[](%zu, align %zu) returned %p\n", n, a, sink);
      }));
      CHECK(throws_bad_alloc([&] {
        sink = ::operator new(vn, std::align_val_t{a});
        std::fprintf(stderr, "operator new(%zu, align %zu) returned %p\n", n, a, sink);
      }));
      sink = ::operator new(vn, std::align_val_t{a}, std::nothrow);
      CHECK(sink == nullptr);
      sink = ::operator new[](vn, std::align_val_t{a}, std::nothrow);
      CHECK(sink == nullptr);
    }
    CHECK(throws_bad_alloc([&] {
      sink = ::operator new(SIZE_MAX, std::align_val_t{a});
    }));
  }
  CHECK(throws_bad_alloc([&] {
    sink = new A64[impossible_count];
  }));
}

void new_handler() {
  handler_calls = 0;
  std::set_new_handler(give_up_handler);
  CHECK(throws_bad_alloc([&] {
    void *p = ::operator new(impossible);
    ::operator delete(p);
  }));
  CHECK(handler_calls == 3);

  handler_calls = 0;
  std::set_new_handler(give_up_handler);
  CHECK(throws_bad_alloc([&] {
    void *p = ::operator new(impossible, std::align_val_t{4096});
    ::operator delete(p, std::align_val_t{4096});
  }));
  CHECK(handler_calls == 3);

  // nothrow forms with a throwing handler: nullptr, no exception escapes
  handler_calls = 0;
  std::set_new_handler(throwing_handler);
  CHECK(::operator new(impossible, std::nothrow) == nullptr);
  CHECK(handler_calls == 1);
  std::set_new_handler(nullptr);
}

}  // namespace

int main(int argc, char **argv) {
  bool expect_walloc = argc > 1 && std::strcmp(argv[1], "--expect-walloc") == 0;
  owns = reinterpret_cast<bool (*)(const void *)>(dlsym(RTLD_DEFAULT, "walloc_owns"));
  if (expect_walloc && owns == nullptr) {
    std::fprintf(stderr, "walloc_owns not found: libwalloc is not loaded\n");
    return 1;
  }
  if (!expect_walloc) owns = nullptr;

  plain_operators();
  aligned_operators();
  new_expressions();
  impossible_sizes();
  if (expect_walloc) impossible_aligned_sizes();
  new_handler();

  std::printf("%d checks, %d failures%s\n", checks, failures, owns ? " (walloc_owns verified)" : "");
  return failures == 0 ? 0 : 1;
}
