#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "spdlog/spdlog.h"

#include "common/status.h"

namespace llmbox::common {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool ValidMetricName(std::string_view name) {
  if (name.empty() || !(IsNameStart(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return IsNameChar(c) || c == ':'; });
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0]) || name.starts_with("__")) return false;
  return std::all_of(name.begin(), name.end(), IsNameChar);
}

void AppendEscapedLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void AppendHeader(std::string& out, const std::string& name, const std::string& help,
                  std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += EscapeHelp(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void AppendValue(std::string& out, double value) {
  out += ' ';
  out += FormatMetricValue(value);
  out += '\n';
}

}  // namespace

std::string StatusOutcome(const absl::Status& status) {
  return status.ok() ? "ok" : absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
}

const std::vector<std::string>& StatusOutcomes() {
  static const auto* outcomes = new std::vector<std::string>{"ok",
                                                             "cancelled",
                                                             "unknown",
                                                             "invalid_argument",
                                                             "deadline_exceeded",
                                                             "not_found",
                                                             "already_exists",
                                                             "permission_denied",
                                                             "resource_exhausted",
                                                             "failed_precondition",
                                                             "aborted",
                                                             "out_of_range",
                                                             "unimplemented",
                                                             "internal",
                                                             "unavailable",
                                                             "data_loss",
                                                             "unauthenticated"};
  return *outcomes;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  AppendEscapedLabelValue(out, value);
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  // Shortest text that reads back as the same double; integers print without a fraction.
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  LLMBOX_CHECK(error == std::errc(), "a double did not fit 64 characters");
  return std::string(buffer, end);
}

void Counter::Increment(double by) {
  if (!(by >= 0)) return;
  value_.fetch_add(by, std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds->size() + 1]) {
  for (std::size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), value);
  buckets_[it - bounds_->begin()].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.cumulative.reserve(bounds_->size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  // _count is the +Inf bucket, so the two always agree even while others observe.
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

LabeledFamily::LabeledFamily(std::string name, std::string help, std::vector<MetricLabel> labels)
    : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)) {
  std::set<std::string_view> names;
  for (MetricLabel& label : labels_) {
    LLMBOX_CHECK(ValidLabelName(label.name), "a metric label name is not [a-zA-Z_][a-zA-Z0-9_]*");
    LLMBOX_CHECK(names.insert(label.name).second, "a metric declares a label twice");
    LLMBOX_CHECK(!label.values.empty(), "a metric label needs its values declared");
    std::set<std::string_view> values(label.values.begin(), label.values.end());
    LLMBOX_CHECK(values.size() == label.values.size(), "a metric label repeats a value");
    if (!values.contains(kOtherLabelValue)) label.values.emplace_back(kOtherLabelValue);
    size_ *= label.values.size();
    LLMBOX_CHECK(size_ <= MetricsRegistry::kMaxSeriesPerFamily,
                 "a metric family declares too many series");
  }
}

std::size_t LabeledFamily::IndexOf(const std::vector<std::string_view>& values) const {
  LLMBOX_CHECK(values.size() == labels_.size(), "a metric series needs one value per label");
  std::size_t index = 0;
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    const std::vector<std::string>& allowed = labels_[i].values;
    auto it = std::find(allowed.begin(), allowed.end(), values[i]);
    if (it == allowed.end()) it = std::find(allowed.begin(), allowed.end(), kOtherLabelValue);
    index = index * allowed.size() + static_cast<std::size_t>(it - allowed.begin());
  }
  return index;
}

void LabeledFamily::AppendLabels(std::string& out, std::size_t index,
                                 std::string_view extra) const {
  if (labels_.empty() && extra.empty()) return;
  // The last label varies fastest (IndexOf's order): peel positions from the right.
  std::vector<std::size_t> positions(labels_.size());
  for (std::size_t i = labels_.size(); i-- > 0;) {
    positions[i] = index % labels_[i].values.size();
    index /= labels_[i].values.size();
  }
  out += '{';
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    if (i > 0) out += ',';
    out += labels_[i].name;
    out += "=\"";
    AppendEscapedLabelValue(out, labels_[i].values[positions[i]]);
    out += '"';
  }
  if (!extra.empty()) {
    if (!labels_.empty()) out += ',';
    out += extra;
  }
  out += '}';
}

HistogramFamily::HistogramFamily(std::string name, std::string help, std::vector<double> bounds,
                                 std::vector<MetricLabel> labels)
    : Family<Histogram>(std::move(name), std::move(help), std::move(labels)),
      bounds_(std::make_unique<std::vector<double>>(std::move(bounds))) {
  LLMBOX_CHECK(!bounds_->empty(), "a histogram needs buckets");
  for (std::size_t i = 0; i < bounds_->size(); ++i) {
    LLMBOX_CHECK(std::isfinite((*bounds_)[i]), "a histogram bucket bound must be finite");
    LLMBOX_CHECK(i == 0 || (*bounds_)[i - 1] < (*bounds_)[i],
                 "histogram bucket bounds must increase");
  }
  for (const MetricLabel& label : this->labels()) {
    LLMBOX_CHECK(label.name != "le", "a histogram may not have a label named le");
  }
}

void MetricsRegistry::CheckNewName(const std::string& name) {
  LLMBOX_CHECK(ValidMetricName(name), "a metric name is not [a-zA-Z_:][a-zA-Z0-9_:]*");
  LLMBOX_CHECK(std::find(names_.begin(), names_.end(), name) == names_.end(),
               "a metric name is registered twice");
  names_.push_back(name);
}

template <typename Series>
Family<Series>& MetricsRegistry::AddValueFamily(
    std::vector<std::unique_ptr<Family<Series>>>& families, std::string name, std::string help,
    std::vector<MetricLabel> labels, const char* type) {
  std::lock_guard lock(mu_);
  CheckNewName(name);
  auto family =
      std::make_unique<Family<Series>>(std::move(name), std::move(help), std::move(labels));
  for (std::size_t i = 0; i < family->size(); ++i) {
    family->series_.push_back(std::make_unique<Series>());
  }
  Family<Series>* f = family.get();
  families.push_back(std::move(family));
  renderers_.push_back([f, type](std::string& out) {
    AppendHeader(out, f->name(), f->help(), type);
    for (std::size_t i = 0; i < f->size(); ++i) {
      out += f->name();
      f->AppendLabels(out, i, "");
      AppendValue(out, f->at(i).Value());
    }
  });
  return *f;
}

CounterFamily& MetricsRegistry::AddCounter(std::string name, std::string help,
                                           std::vector<MetricLabel> labels) {
  LLMBOX_CHECK(name.ends_with("_total"), "a counter's name must end in _total");
  return AddValueFamily(counters_, std::move(name), std::move(help), std::move(labels), "counter");
}

GaugeFamily& MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::vector<MetricLabel> labels) {
  return AddValueFamily(gauges_, std::move(name), std::move(help), std::move(labels), "gauge");
}

HistogramFamily& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<double> bounds,
                                               std::vector<MetricLabel> labels) {
  std::lock_guard lock(mu_);
  CheckNewName(name);
  auto family = std::make_unique<HistogramFamily>(std::move(name), std::move(help),
                                                  std::move(bounds), std::move(labels));
  for (std::size_t i = 0; i < family->size(); ++i) {
    family->series_.push_back(std::make_unique<Histogram>(&family->bounds()));
  }
  HistogramFamily* f = family.get();
  histograms_.push_back(std::move(family));
  // The `le` labels never change: rendered once.
  std::vector<std::string> les;
  for (double bound : f->bounds()) les.push_back("le=\"" + FormatMetricValue(bound) + "\"");
  les.emplace_back("le=\"+Inf\"");
  renderers_.push_back([f, les = std::move(les)](std::string& out) {
    AppendHeader(out, f->name(), f->help(), "histogram");
    for (std::size_t i = 0; i < f->size(); ++i) {
      const Histogram::Snapshot snapshot = f->at(i).Read();
      for (std::size_t b = 0; b < les.size(); ++b) {
        out += f->name();
        out += "_bucket";
        f->AppendLabels(out, i, les[b]);
        AppendValue(out, static_cast<double>(snapshot.cumulative[b]));
      }
      out += f->name();
      out += "_sum";
      f->AppendLabels(out, i, "");
      AppendValue(out, snapshot.sum);
      out += f->name();
      out += "_count";
      f->AppendLabels(out, i, "");
      AppendValue(out, static_cast<double>(snapshot.count));
    }
  });
  return *f;
}

void MetricsRegistry::AddGaugeCallback(std::string name, std::string help,
                                       std::vector<std::string> label_names,
                                       std::function<std::vector<GaugeSample>()> collect) {
  std::lock_guard lock(mu_);
  CheckNewName(name);
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    LLMBOX_CHECK(ValidLabelName(label), "a metric label name is not [a-zA-Z_][a-zA-Z0-9_]*");
    LLMBOX_CHECK(seen.insert(label).second, "a metric declares a label twice");
  }
  auto family = std::make_unique<CallbackFamily>(
      CallbackFamily{std::move(name), std::move(help), std::move(label_names), std::move(collect)});
  CallbackFamily* f = family.get();
  callbacks_.push_back(std::move(family));
  renderers_.push_back([f](std::string& out) {
    AppendHeader(out, f->name, f->help, "gauge");
    std::vector<GaugeSample> samples = f->collect();
    if (samples.size() > kMaxCallbackSamples) {
      spdlog::warn("metrics: {} has {} series; only the first {} are shown", f->name,
                   samples.size(), kMaxCallbackSamples);
      samples.resize(kMaxCallbackSamples);
    }
    for (const GaugeSample& sample : samples) {
      LLMBOX_CHECK(sample.labels.size() == f->label_names.size(),
                   "a gauge callback's sample needs one value per label");
      out += f->name;
      if (!f->label_names.empty()) {
        out += '{';
        for (std::size_t i = 0; i < f->label_names.size(); ++i) {
          if (i > 0) out += ',';
          out += f->label_names[i];
          out += "=\"";
          AppendEscapedLabelValue(out, sample.labels[i]);
          out += '"';
        }
        out += '}';
      }
      AppendValue(out, sample.value);
    }
  });
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& render : renderers_) render(out);
  return out;
}

}  // namespace llmbox::common
