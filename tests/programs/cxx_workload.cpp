// cxx_workload.cpp: compiled and run by prog-gcc.sh (g++ under walloc, then
// the program it built under walloc). Containers, strings, exceptions,
// smart pointers and templates; prints deterministic results.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace {

std::uint64_t fnv(const std::string &s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

struct Lcg {
  std::uint64_t x;
  std::uint32_t next() {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(x >> 33);
  }
};

struct Shape {
  virtual ~Shape() = default;
  virtual double area() const = 0;
  virtual std::string name() const = 0;
};
struct Rect : Shape {
  double w, h;
  Rect(double w_, double h_) : w(w_), h(h_) {}
  double area() const override { return w * h; }
  std::string name() const override { return "rect" + std::to_string(static_cast<int>(w)); }
};
struct Circle : Shape {
  double r;
  explicit Circle(double r_) : r(r_) {}
  double area() const override { return 3 * r * r; }
  std::string name() const override { return "circle" + std::to_string(static_cast<int>(r)); }
};

class ParseError : public std::runtime_error {
 public:
  explicit ParseError(const std::string &what) : std::runtime_error(what) {}
};

int parse_checked(const std::string &s) {
  if (s.empty() || s.size() > 9) throw ParseError("bad length: '" + s + "'");
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') throw ParseError("not a digit in '" + s + "'");
    v = v * 10 + (c - '0');
  }
  return v;
}

template <typename Map>
std::uint64_t digest_map(const Map &m) {
  std::uint64_t h = 0;
  for (const auto &kv : m) h = h * 31 + fnv(kv.first) + static_cast<std::uint64_t>(kv.second);
  return h;
}

}  // namespace

int main() {
  Lcg rng{12345};

  // vectors of strings, sorted and deduplicated
  std::vector<std::string> words;
  for (int i = 0; i < 200000; i++) {
    std::string w;
    int len = 2 + static_cast<int>(rng.next() % 14);
    for (int k = 0; k < len; k++) w.push_back(static_cast<char>('a' + rng.next() % 26));
    words.push_back(std::move(w));
  }
  std::sort(words.begin(), words.end());
  auto last = std::unique(words.begin(), words.end());
  std::cout << "unique words " << (last - words.begin()) << "\n";
  words.erase(last, words.end());

  // ordered and unordered maps
  std::map<std::string, int> counts;
  std::unordered_map<std::string, int> ucounts;
  for (std::size_t i = 0; i < words.size(); i++) {
    counts[words[i].substr(0, 3)] += static_cast<int>(i % 7);
    ucounts[words[i].substr(1, 4)]++;
  }
  std::map<std::string, int> sorted_u(ucounts.begin(), ucounts.end());
  std::cout << "map " << counts.size() << " " << std::hex << digest_map(counts) << std::dec << "\n";
  std::cout << "unordered " << ucounts.size() << " " << std::hex << digest_map(sorted_u) << std::dec << "\n";

  // string building
  std::ostringstream os;
  for (int i = 0; i < 100000; i++) os << i << ':' << words[static_cast<std::size_t>(i) % words.size()] << ';';
  std::string big = os.str();
  std::string rev(big.rbegin(), big.rend());
  std::cout << "string " << big.size() << " " << std::hex << fnv(big) << " " << fnv(rev) << std::dec << "\n";

  // exceptions, thrown and caught many times
  int ok = 0, bad = 0;
  std::string last_error;
  for (int i = 0; i < 20000; i++) {
    std::string s = std::to_string(rng.next() % 100000);
    if (i % 3 == 0) s += "x";
    if (i % 11 == 0) s = std::string(12, '7');
    try {
      ok += parse_checked(s) % 7;
    } catch (const ParseError &e) {
      bad++;
      last_error = e.what();
    }
  }
  std::cout << "exceptions ok=" << ok << " bad=" << bad << " last=" << last_error << "\n";
  try {
    std::vector<int> v(10);
    (void)v.at(20);
  } catch (const std::out_of_range &) {
    std::cout << "out_of_range caught\n";
  }

  // polymorphism and smart pointers
  std::vector<std::unique_ptr<Shape>> shapes;
  std::vector<std::shared_ptr<Shape>> shared;
  for (int i = 0; i < 50000; i++) {
    if (i % 2) shapes.push_back(std::make_unique<Rect>(i % 17, i % 13));
    else shapes.push_back(std::make_unique<Circle>(i % 19));
    if (i % 5 == 0) shared.push_back(std::make_shared<Circle>(i % 23));
  }
  double area = 0;
  std::set<std::string> names;
  for (const auto &s : shapes) {
    area += s->area();
    names.insert(s->name());
  }
  auto copy = shared;
  shared.clear();
  std::cout << "shapes area=" << area << " names=" << names.size() << " shared=" << copy.size()
            << " use_count=" << copy.front().use_count() << "\n";

  // lists, variants, std::function
  std::list<std::variant<int, std::string, double>> items;
  for (int i = 0; i < 30000; i++) {
    if (i % 3 == 0) items.emplace_back(i);
    else if (i % 3 == 1) items.emplace_back(std::string(static_cast<std::size_t>(i % 40), 'q'));
    else items.emplace_back(i / 4.0);
  }
  items.remove_if([](const auto &v) { return v.index() == 0 && std::get<int>(v) % 2 == 0; });
  std::size_t strlen_sum = 0;
  for (const auto &v : items)
    if (const auto *s = std::get_if<std::string>(&v)) strlen_sum += s->size();
  std::vector<std::function<long(long)>> fns;
  for (int i = 0; i < 1000; i++) fns.emplace_back([i, tag = std::to_string(i)](long x) { return x * i + static_cast<long>(tag.size()); });
  long acc = 0;
  for (const auto &f : fns) acc = f(acc % 100003);
  std::cout << "list " << items.size() << " strlen " << strlen_sum << " fn " << acc << "\n";

  std::vector<std::vector<int>> grid(300, std::vector<int>(300));
  for (int i = 0; i < 300; i++)
    for (int j = 0; j < 300; j++) grid[i][j] = (i * 31 + j * 17) % 101;
  long sum = 0;
  for (auto &row : grid) sum += std::accumulate(row.begin(), row.end(), 0L);
  std::cout << "grid " << sum << "\n";
  return 0;
}
