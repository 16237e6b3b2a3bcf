#include "common/metrics.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace llmbox::testing {
namespace {

using common::GaugeSample;
using common::MetricsRegistry;

TEST_CASE("a counter renders with HELP and TYPE lines and every declared series at zero",
          "[metrics]") {
  MetricsRegistry metrics;
  auto& creates = metrics.AddCounter("llmbox_test_creates_total", "Box creates.",
                                     {{"outcome", {"created", "unavailable"}}});
  creates.With({"created"}).Increment();
  creates.With({"created"}).Increment(2);
  CHECK(metrics.Render() ==
        "# HELP llmbox_test_creates_total Box creates.\n"
        "# TYPE llmbox_test_creates_total counter\n"
        "llmbox_test_creates_total{outcome=\"created\"} 3\n"
        "llmbox_test_creates_total{outcome=\"unavailable\"} 0\n"
        "llmbox_test_creates_total{outcome=\"other\"} 0\n");
}

TEST_CASE("a label value outside its declared list is counted as other", "[metrics]") {
  MetricsRegistry metrics;
  auto& calls = metrics.AddCounter("llmbox_test_calls_total", "Calls.",
                                   {{"method", {"ping"}}, {"outcome", {"ok", "error"}}});
  calls.With({"box-4f2a9c", "ok"}).Increment();
  calls.With({"https://evil.example/?code=secret", "ok"}).Increment();
  calls.With({"ping", "weird"}).Increment();
  const std::string text = metrics.Render();
  CHECK(text.find("box-4f2a9c") == std::string::npos);
  CHECK(text.find("secret") == std::string::npos);
  CHECK(text.find("llmbox_test_calls_total{method=\"other\",outcome=\"ok\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("llmbox_test_calls_total{method=\"ping\",outcome=\"other\"} 1\n") !=
        std::string::npos);
  // 2 methods (ping, other) times 3 outcomes: six series, no more.
  CHECK(std::count(text.begin(), text.end(), '\n') == 2 + 6);
}

TEST_CASE("a counter ignores negative and NaN increments", "[metrics]") {
  MetricsRegistry metrics;
  auto& counter = metrics.AddCounter("llmbox_test_total", "T.", {});
  counter.With({}).Increment(-5);
  counter.With({}).Increment(std::numeric_limits<double>::quiet_NaN());
  counter.With({}).Increment(0.5);
  CHECK(counter.With({}).Value() == 0.5);
  CHECK(metrics.Render().ends_with("llmbox_test_total 0.5\n"));
}

TEST_CASE("a histogram renders cumulative buckets with le then sum and count", "[metrics]") {
  MetricsRegistry metrics;
  auto& latency = metrics.AddHistogram("llmbox_test_duration_seconds", "How long.", {0.5, 1, 2.5},
                                       {{"op", {"create"}}});
  auto& create = latency.With({"create"});
  create.Observe(0.25);
  create.Observe(0.5);  // a bound is in its own bucket (le means <=)
  create.Observe(2);
  create.Observe(100);
  const std::string text = metrics.Render();
  const std::string expected =
      "# HELP llmbox_test_duration_seconds How long.\n"
      "# TYPE llmbox_test_duration_seconds histogram\n"
      "llmbox_test_duration_seconds_bucket{op=\"create\",le=\"0.5\"} 2\n"
      "llmbox_test_duration_seconds_bucket{op=\"create\",le=\"1\"} 2\n"
      "llmbox_test_duration_seconds_bucket{op=\"create\",le=\"2.5\"} 3\n"
      "llmbox_test_duration_seconds_bucket{op=\"create\",le=\"+Inf\"} 4\n"
      "llmbox_test_duration_seconds_sum{op=\"create\"} 102.75\n"
      "llmbox_test_duration_seconds_count{op=\"create\"} 4\n";
  CHECK(text.substr(0, expected.size()) == expected);
}

TEST_CASE("a histogram without labels puts only le in its bucket braces", "[metrics]") {
  MetricsRegistry metrics;
  auto& latency = metrics.AddHistogram("llmbox_test_seconds", "S.", {1}, {});
  latency.With({}).Observe(3);
  CHECK(metrics.Render() ==
        "# HELP llmbox_test_seconds S.\n# TYPE llmbox_test_seconds histogram\n"
        "llmbox_test_seconds_bucket{le=\"1\"} 0\nllmbox_test_seconds_bucket{le=\"+Inf\"} 1\n"
        "llmbox_test_seconds_sum 3\nllmbox_test_seconds_count 1\n");
}

TEST_CASE("label values and HELP text are escaped as the text format requires", "[metrics]") {
  CHECK(common::EscapeLabelValue("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(common::EscapeHelp("a\\b\"c\nd") == "a\\\\b\"c\\nd");
  MetricsRegistry metrics;
  metrics.AddGaugeCallback("llmbox_test_boxes", "Boxes\nby \\ spoke.", {"spoke"}, [] {
    return std::vector<GaugeSample>{{{"we\"ird\\name\n"}, 2}};
  });
  CHECK(metrics.Render() ==
        "# HELP llmbox_test_boxes Boxes\\nby \\\\ spoke.\n"
        "# TYPE llmbox_test_boxes gauge\n"
        "llmbox_test_boxes{spoke=\"we\\\"ird\\\\name\\n\"} 2\n");
}

TEST_CASE("sample values render as integers decimals and special floats", "[metrics]") {
  CHECK(common::FormatMetricValue(0) == "0");
  CHECK(common::FormatMetricValue(42) == "42");
  CHECK(common::FormatMetricValue(0.25) == "0.25");
  CHECK(common::FormatMetricValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(common::FormatMetricValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(common::FormatMetricValue(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("a gauge family keeps the value it was set to", "[metrics]") {
  MetricsRegistry metrics;
  auto& spokes = metrics.AddGauge("llmbox_test_spokes", "Spokes.", {{"state", {"ready"}}});
  spokes.With({"ready"}).Set(3);
  spokes.With({"ready"}).Add(-1);
  CHECK(metrics.Render().find("llmbox_test_spokes{state=\"ready\"} 2\n") != std::string::npos);
}

TEST_CASE("a gauge callback contributes at most the cap of samples per scrape", "[metrics]") {
  MetricsRegistry metrics;
  metrics.AddGaugeCallback("llmbox_test_many", "Many.", {"spoke"}, [] {
    std::vector<GaugeSample> samples;
    for (std::size_t i = 0; i < MetricsRegistry::kMaxCallbackSamples + 10; ++i) {
      samples.push_back({{"s" + std::to_string(i)}, 1});
    }
    return samples;
  });
  const std::string text = metrics.Render();
  CHECK(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) ==
        2 + MetricsRegistry::kMaxCallbackSamples);
}

TEST_CASE("families render in the order they were added", "[metrics]") {
  MetricsRegistry metrics;
  metrics.AddGauge("llmbox_test_b", "B.", {});
  metrics.AddCounter("llmbox_test_a_total", "A.", {});
  const std::string text = metrics.Render();
  CHECK(text.find("llmbox_test_b") < text.find("llmbox_test_a_total"));
}

TEST_CASE("counters and histograms stay exact under concurrent updates", "[metrics]") {
  MetricsRegistry metrics;
  auto& counter = metrics.AddCounter("llmbox_test_total", "T.", {});
  auto& histogram = metrics.AddHistogram("llmbox_test_seconds", "S.", {1}, {});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) {
        counter.With({}).Increment();
        histogram.With({}).Observe(0.5);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(counter.With({}).Value() == 40'000);
  const auto snapshot = histogram.With({}).Read();
  CHECK(snapshot.count == 40'000);
  CHECK(snapshot.sum == 20'000);
}

// A registry whose one gauge has `samples` label values of `length` quotes (each escaped).
struct BigRegistry {
  BigRegistry(std::size_t samples, std::size_t length) {
    metrics.AddGaugeCallback("llmbox_test_big", "Big.", {"spoke"}, [samples, length] {
      std::vector<GaugeSample> out;
      const std::string value(length, '"');
      for (std::size_t i = 0; i < samples; ++i) out.push_back({{value}, 1});
      return out;
    });
  }
  // How long one Render took; `bytes` gets its size.
  std::chrono::nanoseconds Time(std::size_t& bytes) const {
    const auto start = std::chrono::steady_clock::now();
    bytes = metrics.Render().size();
    return std::chrono::steady_clock::now() - start;
  }
  MetricsRegistry metrics;
};

// How long appending `bytes` characters one at a time to a string takes: linear work with the
// same memory traffic as a render of that size, the yardstick.
std::chrono::nanoseconds AppendTime(std::size_t bytes) {
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) out += static_cast<char>('a' + i % 26);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(out.size() == bytes);
  return took;
}

TEST_CASE("rendering is linear in the size of the output", "[metrics]") {
  // Twenty times the escaped bytes. Against linear work of the same sizes (which pays the same
  // caches and page faults), a linear renderer grows alike and a quadratic one twenty times
  // faster. The runs alternate and the best of five counts, so a busy machine slows all alike.
  const BigRegistry small(15, 20'000);
  const BigRegistry large(300, 20'000);
  std::size_t small_bytes = 0;
  std::size_t large_bytes = 0;
  auto best = [](auto& slot, std::chrono::nanoseconds took) { slot = std::min(slot, took); };
  auto small_render = std::chrono::nanoseconds::max();
  auto large_render = small_render;
  auto small_append = small_render;
  auto large_append = small_render;
  for (int run = 0; run < 5; ++run) {
    best(small_render, small.Time(small_bytes));
    best(large_render, large.Time(large_bytes));
    best(small_append, AppendTime(small_bytes));
    best(large_append, AppendTime(large_bytes));
  }
  CHECK(large_bytes > 19 * small_bytes);
  CHECK(large_bytes < 21 * small_bytes);
  const double render_growth = static_cast<double>(large_render.count()) /
                               static_cast<double>(std::max<std::int64_t>(small_render.count(), 1));
  const double append_growth = static_cast<double>(large_append.count()) /
                               static_cast<double>(std::max<std::int64_t>(small_append.count(), 1));
  INFO("render grew " << render_growth << " times, linear work " << append_growth << " times");
  CHECK(render_growth < 5 * append_growth);
}

}  // namespace
}  // namespace llmbox::testing
