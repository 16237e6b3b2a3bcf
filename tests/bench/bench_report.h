// tests/bench/bench_report.h
//
// What a benchmark prints: each line goes to stdout at once (a long bench shows progress) and
// is kept, so that WriteReport can leave the whole of it in $LLMBOX_BENCH_OUT, where the test
// script collects every bench's numbers.
//
//   Say("p50 %.3f ms\n", p50);
//   ...
//   llmbox::bench::WriteReport();   // at the end of main
//
// Single-threaded use (the benches' main threads).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace llmbox::bench {

inline std::string& Report() {
  static std::string report;
  return report;
}

template <typename... Args>
void Say(const char* format, Args... args) {
  char line[512];
  std::snprintf(line, sizeof(line), format, args...);
  Report() += line;
  std::fputs(line, stdout);
  std::fflush(stdout);
}

// The `p` quantile (0..1) of `values` (nearest rank, from below); `values` must not be empty.
inline double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const std::size_t index =
      std::min(values.size() - 1, static_cast<std::size_t>(p * static_cast<double>(values.size())));
  return values[index];
}

// Writes what was said to $LLMBOX_BENCH_OUT, when it is set.
inline void WriteReport() {
  const char* out = std::getenv("LLMBOX_BENCH_OUT");
  if (out == nullptr || *out == '\0') return;
  if (std::FILE* file = std::fopen(out, "w")) {
    std::fputs(Report().c_str(), file);
    std::fclose(file);
  }
}

}  // namespace llmbox::bench
