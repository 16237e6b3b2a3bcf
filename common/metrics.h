// common/metrics.h
//
// Counters, gauges and histograms for /metrics, rendered in the Prometheus text exposition
// format 0.0.4. Label sets are bounded by construction: a family declares each label with the
// closed list of values it may take, and every series exists (at zero) from the start; a value
// outside the list is counted under "other". Gauges whose labels are known only when scraped
// (boxes by spoke) come from a callback, capped at a number of series.
//
//   common::MetricsRegistry metrics;
//   auto& creates = metrics.AddCounter("llmbox_hub_box_creates_total", "Box creates.",
//                                      {{"outcome", {"created", "unavailable"}}});
//   creates.With({"created"}).Increment();
//   auto& latency = metrics.AddHistogram("llmbox_hub_box_create_duration_seconds", "...",
//                                        {0.5, 1, 5}, {});
//   latency.With({}).Observe(0.7);
//   std::string text = metrics.Render();   // serve with kMetricsContentType
//
// Never make a label of a box id, principal, code, token or URL: label values are for closed
// sets (phases, outcomes, operations) and small bounded ones (spoke names).
//
// Thread-safety: Add* before rendering starts (they are not meant for the hot path; the
// registry's mutex makes them safe anyway); With, Increment, Set and Observe from any thread
// at any time, lock-free; Render from any thread. Misuse (a malformed name, a counter without
// _total, a label value list that is not one) is a programming error: LLMBOX_CHECK aborts.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace llmbox::common {

// What /metrics answers with in its Content-Type.
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The value a label takes for anything outside its declared list.
inline constexpr char kOtherLabelValue[] = "other";

// A label of a family: its name and every value it may take ("other" is added when missing).
struct MetricLabel {
  std::string name;
  std::vector<std::string> values;
};

// One series of a counter family: only goes up.
class Counter {
 public:
  void Increment(double by = 1.0);  // `by` < 0 or NaN is ignored
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// One series of a gauge family: set to anything.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// One series of a histogram family, with its family's fixed buckets.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  // Counts `value` in the first bucket whose upper bound is >= value (NaN is ignored).
  void Observe(double value);
  // Cumulative counts per bucket (bounds' order, then +Inf), the sum and count as now.
  struct Snapshot {
    std::vector<std::uint64_t> cumulative;
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* bounds_;  // the family's
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

// A gauge sample from a scrape-time callback: label values in the family's label order.
struct GaugeSample {
  std::vector<std::string> labels;
  double value = 0;
};

// The label bookkeeping every family with declared labels shares.
class LabeledFamily {
 public:
  LabeledFamily(std::string name, std::string help, std::vector<MetricLabel> labels);
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<MetricLabel>& labels() const { return labels_; }
  // How many series the family has (the product of its labels' value counts).
  std::size_t size() const { return size_; }

 protected:
  // The series index of `values` (one per label, in order; unknown ones count as "other").
  std::size_t IndexOf(const std::vector<std::string_view>& values) const;
  // `{a="x",b="y"}` for series `index` (empty when the family has no labels), with `extra`
  // (an already rendered `le="..."`) appended inside the braces when not empty.
  void AppendLabels(std::string& out, std::size_t index, std::string_view extra) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<MetricLabel> labels_;
  std::size_t size_ = 1;
};

// Series of one metric with declared labels; `Series` is Counter, Gauge or Histogram.
template <typename Series>
class Family : public LabeledFamily {
 public:
  using LabeledFamily::LabeledFamily;
  // The series for these label values (one per declared label, in order).
  Series& With(const std::vector<std::string_view>& values) { return *series_[IndexOf(values)]; }
  // Read access for rendering: series `i` of size().
  const Series& at(std::size_t i) const { return *series_[i]; }

 protected:
  std::vector<std::unique_ptr<Series>> series_;
  friend class MetricsRegistry;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;

class HistogramFamily : public Family<Histogram> {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<double> bounds,
                  std::vector<MetricLabel> labels);
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::unique_ptr<std::vector<double>> bounds_;  // stable: every series points at it
};

class MetricsRegistry {
 public:
  // At most this many series a family declares (the product of its labels' value counts).
  static constexpr std::size_t kMaxSeriesPerFamily = 4096;
  // At most this many samples a gauge callback contributes per scrape; the rest are dropped.
  static constexpr std::size_t kMaxCallbackSamples = 4096;

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // `name` must end in _total. The family lives as long as the registry.
  CounterFamily& AddCounter(std::string name, std::string help, std::vector<MetricLabel> labels);
  GaugeFamily& AddGauge(std::string name, std::string help, std::vector<MetricLabel> labels);
  // `bounds`: the buckets' upper bounds, strictly increasing and finite (+Inf is implied).
  HistogramFamily& AddHistogram(std::string name, std::string help, std::vector<double> bounds,
                                std::vector<MetricLabel> labels);
  // A gauge computed at each Render by `collect`, which runs on the rendering thread and must
  // be cheap; its samples' label values (any text, escaped when rendered) must each have one
  // value per name in `label_names`. Samples beyond kMaxCallbackSamples are dropped.
  void AddGaugeCallback(std::string name, std::string help, std::vector<std::string> label_names,
                        std::function<std::vector<GaugeSample>()> collect);

  // Every family in the order added, in the text format (linear in the output's size).
  std::string Render() const;

 private:
  struct CallbackFamily {
    std::string name;
    std::string help;
    std::vector<std::string> label_names;
    std::function<std::vector<GaugeSample>()> collect;
  };
  void CheckNewName(const std::string& name);
  // AddCounter and AddGauge: a family of `Series` with a Value(), rendered as `type`.
  template <typename Series>
  Family<Series>& AddValueFamily(std::vector<std::unique_ptr<Family<Series>>>& families,
                                 std::string name, std::string help,
                                 std::vector<MetricLabel> labels, const char* type);

  mutable std::mutex mu_;  // guards the lists (not the series, which are atomic)
  // Each entry renders one family; kept in the order added.
  std::vector<std::function<void(std::string&)>> renderers_;
  std::vector<std::unique_ptr<CounterFamily>> counters_;
  std::vector<std::unique_ptr<GaugeFamily>> gauges_;
  std::vector<std::unique_ptr<HistogramFamily>> histograms_;
  std::vector<std::unique_ptr<CallbackFamily>> callbacks_;
  std::vector<std::string> names_;
};

// An outcome label for a status: "ok", or its code's name in lower case ("unavailable",
// "deadline_exceeded"); and every value it gives, for the label's declaration.
std::string StatusOutcome(const absl::Status& status);
const std::vector<std::string>& StatusOutcomes();

// The text format's pieces, for tests and for callers assembling output from several
// registries. A label value with \, " and newline escaped; HELP text with \ and newline
// escaped; a sample value ("3", "0.25", "+Inf", "NaN").
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
std::string FormatMetricValue(double value);

}  // namespace llmbox::common
