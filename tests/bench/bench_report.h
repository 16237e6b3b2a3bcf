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
// Say and WriteReport: single-threaded use (the benches' main threads).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
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

// What RunConcurrently measured: every call's milliseconds and the wall time of them all.
struct Timed {
  std::vector<double> ms;
  double seconds = 0;
};

// `total` calls shared by `workers` threads: `call(worker, i)` for i in 0..total-1, each on
// the first worker free, returning the milliseconds to record for it (so a caller can leave
// its own checking of a reply out of the time). Returns when every call is done.
template <typename Call>
Timed RunConcurrently(int workers, int total, Call call) {
  std::vector<std::vector<double>> per_worker(workers);
  std::atomic<int> next{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = next++; i < total; i = next++) per_worker[w].push_back(call(w, i));
    });
  }
  for (auto& thread : threads) thread.join();
  Timed out{.seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  for (const auto& values : per_worker) out.ms.insert(out.ms.end(), values.begin(), values.end());
  return out;
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
