#include "common/config.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::common {

struct ConfigNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  int line = 0;  // 1-based
  std::string scalar;
  bool quoted = false;                             // a scalar written in quotes is always a string
  std::vector<std::unique_ptr<ConfigNode>> items;  // sequence
  struct Entry {
    std::string key;
    int key_line = 0;
    std::unique_ptr<ConfigNode> value;
    bool read = false;
  };
  std::vector<Entry> entries;      // map, in file order
  std::vector<std::string> asked;  // keys the reader looked for, present or not
};

namespace {

using common::AsAbsl;
using Kind = ConfigNode::Kind;

constexpr size_t kMaxFileBytes = 1u << 20;
constexpr size_t kMaxSecretBytes = 64u << 10;
constexpr int kMaxDepth = 64;

std::string ErrorText(std::string_view source, std::string_view path, int line,
                      std::string_view message) {
  std::string where = path.empty() ? std::string(source) : std::string(path);
  if (line > 0) absl::StrAppend(&where, " (line ", line, ")");
  return absl::StrCat("config: ", AsAbsl(where), ": ", AsAbsl(message));
}

// Builds a ConfigNode tree from yaml-cpp's events, refusing what we do not support.
class TreeBuilder final : public YAML::EventHandler {
 public:
  explicit TreeBuilder(std::string source) : source_(std::move(source)) {}

  std::unique_ptr<ConfigNode> TakeRoot() { return std::move(root_); }
  const absl::Status& status() const { return status_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    CheckAnchor(mark, anchor);
    auto node = std::make_unique<ConfigNode>();
    node->line = mark.line + 1;
    Add(std::move(node));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    Fail(mark.line + 1, "aliases (*name) are not supported; write the value out");
  }
  void OnAnchor(const YAML::Mark& mark, const std::string&) override {
    Fail(mark.line + 1, "anchors (&name) are not supported; write the value out");
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    CheckAnchor(mark, anchor);
    auto node = std::make_unique<ConfigNode>();
    node->kind = Kind::kScalar;
    node->line = mark.line + 1;
    node->scalar = value;
    node->quoted = tag == "!";
    if (tag != "?" && tag != "!" && !tag.empty()) {
      Fail(node->line, absl::StrCat("tags (", tag, ") are not supported"));
    }
    Add(std::move(node));
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    CheckAnchor(mark, anchor);
    Open(Kind::kSequence, mark);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    CheckAnchor(mark, anchor);
    Open(Kind::kMap, mark);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    std::unique_ptr<ConfigNode> node;
    std::string path;
    bool expecting_key = true;  // maps only
    std::string key;
    int key_line = 0;
  };

  void Fail(int line, std::string_view message) {
    if (!status_.ok()) return;
    status_ = absl::InvalidArgumentError(ErrorText(source_, CurrentPath(), line, message));
  }
  void CheckAnchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) Fail(mark.line + 1, "anchors (&name) are not supported");
  }
  std::string CurrentPath() const {
    if (stack_.empty()) return "";
    const Frame& top = stack_.back();
    if (top.node->kind == Kind::kMap && !top.expecting_key) {
      return top.path.empty() ? top.key : top.path + "." + top.key;
    }
    return top.path;
  }
  std::string ChildPath() const {
    if (stack_.empty()) return "";
    const Frame& top = stack_.back();
    if (top.node->kind == Kind::kMap) {
      return top.path.empty() ? top.key : top.path + "." + top.key;
    }
    return absl::StrCat(top.path, "[", top.node->items.size(), "]");
  }
  void Open(Kind kind, const YAML::Mark& mark) {
    if (stack_.size() >= kMaxDepth) {
      Fail(mark.line + 1, absl::StrCat("nesting deeper than ", kMaxDepth, " levels"));
    }
    if (!stack_.empty() && stack_.back().node->kind == Kind::kMap && stack_.back().expecting_key) {
      Fail(mark.line + 1, "a key must be a plain value, not a list or a map");
    }
    Frame frame;
    frame.node = std::make_unique<ConfigNode>();
    frame.node->kind = kind;
    frame.node->line = mark.line + 1;
    frame.path = ChildPath();
    stack_.push_back(std::move(frame));
  }
  void Close() {
    if (stack_.empty()) return;
    auto node = std::move(stack_.back().node);
    stack_.pop_back();
    Add(std::move(node));
  }
  void Add(std::unique_ptr<ConfigNode> node) {
    if (stack_.empty()) {
      root_ = std::move(node);
      return;
    }
    Frame& top = stack_.back();
    if (top.node->kind == Kind::kSequence) {
      top.node->items.push_back(std::move(node));
      return;
    }
    if (top.expecting_key) {
      if (node->kind != Kind::kScalar) {
        Fail(node->line, "a key must be a plain value");
        return;
      }
      top.key = node->scalar;
      top.key_line = node->line;
      for (const auto& entry : top.node->entries) {
        if (entry.key == top.key) {
          top.expecting_key = false;
          Fail(node->line, absl::StrCat("duplicate key (first at line ", entry.key_line, ")"));
          break;
        }
      }
      top.expecting_key = false;
      return;
    }
    top.node->entries.push_back({top.key, top.key_line, std::move(node), false});
    top.expecting_key = true;
  }

  std::string source_;
  std::vector<Frame> stack_;
  std::unique_ptr<ConfigNode> root_;
  absl::Status status_;
};

std::string KindName(const ConfigNode& node) {
  switch (node.kind) {
    case Kind::kNull:
      return "nothing";
    case Kind::kScalar:
      return "a value";
    case Kind::kSequence:
      return "a list";
    case Kind::kMap:
      return "a map";
  }
  return "?";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

// ---- ConfigKeyRecorder -------------------------------------------------------------------

namespace {
thread_local ConfigKeyRecorder* recorder = nullptr;

// "hooks[3].name" -> "hooks[].name"
std::string WithoutPositions(std::string_view path) {
  std::string out;
  bool in_brackets = false;
  for (char ch : path) {
    if (ch == '[') in_brackets = true;
    if (!in_brackets) out += ch;
    if (ch == ']') {
      in_brackets = false;
      out += "[]";
    }
  }
  return out;
}
}  // namespace

ConfigKeyRecorder::ConfigKeyRecorder() {
  LLMBOX_CHECK(recorder == nullptr, "one ConfigKeyRecorder per thread at a time");
  recorder = this;
}

ConfigKeyRecorder::~ConfigKeyRecorder() { recorder = nullptr; }

// ---- ConfigMap ---------------------------------------------------------------------------

void ConfigMap::Record(std::string_view key) const {
  if (recorder != nullptr) recorder->keys_.insert(WithoutPositions(PathOf(key)));
}

std::string ConfigMap::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", AsAbsl(key));
}

bool ConfigMap::Has(std::string_view key) const {
  Record(key);
  for (const auto& entry : node_->entries) {
    if (entry.key == key) return true;
  }
  return false;
}

ConfigNode* ConfigMap::Find(std::string_view key) {
  node_->asked.emplace_back(key);
  Record(key);
  for (auto& entry : node_->entries) {
    if (entry.key == key) {
      entry.read = true;
      return entry.value.get();
    }
  }
  return nullptr;
}

absl::Status ConfigMap::Error(std::string_view key, std::string_view message) const {
  int line = node_->line;
  for (const auto& entry : node_->entries) {
    if (entry.key == key) line = entry.key_line;
  }
  return absl::InvalidArgumentError(ErrorText("", PathOf(key), line, message));
}

absl::StatusOr<std::string> ConfigMap::Scalar(std::string_view key, ConfigNode* value,
                                              std::string_view expected) {
  if (value->kind != Kind::kScalar) {
    return Error(key, absl::StrCat("must be ", AsAbsl(expected), ", got ", KindName(*value)));
  }
  return value->scalar;
}

absl::Status ConfigMap::Str(std::string_view key, std::string* out) {
  ConfigNode* value = Find(key);
  if (value == nullptr) return absl::OkStatus();
  auto text = Scalar(key, value, "a string");
  if (!text.ok()) return text.status();
  *out = *text;
  return absl::OkStatus();
}

absl::Status ConfigMap::Bool(std::string_view key, bool* out) {
  ConfigNode* value = Find(key);
  if (value == nullptr) return absl::OkStatus();
  auto text = Scalar(key, value, "true or false");
  if (!text.ok()) return text.status();
  if (!value->quoted && *text == "true") {
    *out = true;
  } else if (!value->quoted && *text == "false") {
    *out = false;
  } else {
    return Error(key, absl::StrCat("must be true or false, got ", QuoteForMessage(*text)));
  }
  return absl::OkStatus();
}

absl::Status ConfigMap::Int64(std::string_view key, int64_t* out, int64_t min, int64_t max) {
  ConfigNode* value = Find(key);
  if (value == nullptr) return absl::OkStatus();
  auto text = Scalar(key, value, "an integer");
  if (!text.ok()) return text.status();
  int64_t parsed = 0;
  if (value->quoted || !absl::SimpleAtoi(*text, &parsed)) {
    return Error(key, absl::StrCat("must be an integer, got ", QuoteForMessage(*text)));
  }
  if (parsed < min || parsed > max) {
    return Error(key, absl::StrCat("must be ", min, "..", max, ", got ", parsed));
  }
  *out = parsed;
  return absl::OkStatus();
}

absl::Status ConfigMap::Int(std::string_view key, int* out, int min, int max) {
  int64_t wide = *out;
  if (auto st = Int64(key, &wide, min, max); !st.ok()) return st;
  *out = static_cast<int>(wide);
  return absl::OkStatus();
}

absl::Status ConfigMap::Duration(std::string_view key, std::chrono::milliseconds* out) {
  ConfigNode* value = Find(key);
  if (value == nullptr) return absl::OkStatus();
  auto text = Scalar(key, value, "a duration");
  if (!text.ok()) return text.status();
  auto parsed = ParseDuration(*text);
  if (!parsed.has_value()) {
    return Error(key, absl::StrCat("must be a duration like 250ms, 30s, 15m or 2h, got ",
                                   QuoteForMessage(*text)));
  }
  *out = *parsed;
  return absl::OkStatus();
}

absl::Status ConfigMap::Size(std::string_view key, uint64_t* out) {
  ConfigNode* value = Find(key);
  if (value == nullptr) return absl::OkStatus();
  auto text = Scalar(key, value, "a size");
  if (!text.ok()) return text.status();
  auto parsed = ParseSize(*text);
  if (!parsed.has_value()) {
    return Error(key, absl::StrCat("must be a size like 512B, 64KiB, 4MiB or 2GiB, got ",
                                   QuoteForMessage(*text)));
  }
  *out = *parsed;
  return absl::OkStatus();
}

absl::Status ConfigMap::StrList(std::string_view key, std::vector<std::string>* out) {
  ConfigNode* value = Find(key);
  if (value == nullptr) return absl::OkStatus();
  if (value->kind != Kind::kSequence) {
    return Error(key, absl::StrCat("must be a list of strings, got ", KindName(*value)));
  }
  std::vector<std::string> items;
  for (size_t i = 0; i < value->items.size(); ++i) {
    const ConfigNode& item = *value->items[i];
    if (item.kind != Kind::kScalar) {
      return absl::InvalidArgumentError(
          ErrorText("", absl::StrCat(PathOf(key), "[", i, "]"), item.line,
                    absl::StrCat("must be a string, got ", KindName(item))));
    }
    items.push_back(item.scalar);
  }
  *out = std::move(items);
  return absl::OkStatus();
}

absl::Status ConfigMap::SecretFile(std::string_view key, std::string* secret) {
  if (Has(key)) {
    Find(key);
    return Error(key, absl::StrCat("secrets are read from files; use ", AsAbsl(key), "_file"));
  }
  const std::string file_key = absl::StrCat(AsAbsl(key), "_file");
  std::string path;
  if (auto st = Str(file_key, &path); !st.ok()) return st;
  if (path.empty()) return absl::OkStatus();
  // A secret is a token or a password: 64 KiB is far more than any needs.
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxSecretBytes);
  if (absl::IsFailedPrecondition(text.status())) {
    return Error(file_key, absl::StrCat(QuoteForMessage(path, 200), " is larger than ",
                                        kMaxSecretBytes, " bytes"));
  }
  if (!text.ok()) return Error(file_key, absl::StrCat("cannot read ", QuoteForMessage(path, 200)));
  std::string value = *std::move(text);
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  if (value.empty()) return Error(file_key, absl::StrCat(QuoteForMessage(path, 200), " is empty"));
  *secret = std::move(value);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ConfigMap>> ConfigMap::Map(std::string_view key) {
  if (recorder != nullptr) recorder->sections_.insert(WithoutPositions(PathOf(key)));
  ConfigNode* value = Find(key);
  if (value == nullptr || value->kind == Kind::kNull) return std::optional<ConfigMap>();
  if (value->kind != Kind::kMap) {
    return Error(key, absl::StrCat("must be a map of settings, got ", KindName(*value)));
  }
  return std::optional<ConfigMap>(ConfigMap(value, PathOf(key)));
}

absl::StatusOr<std::vector<ConfigMap>> ConfigMap::MapList(std::string_view key) {
  std::vector<ConfigMap> out;
  if (recorder != nullptr) recorder->lists_.insert(WithoutPositions(PathOf(key)));
  ConfigNode* value = Find(key);
  if (value == nullptr || value->kind == Kind::kNull) return out;
  if (value->kind != Kind::kSequence) {
    return Error(key, absl::StrCat("must be a list, got ", KindName(*value)));
  }
  for (size_t i = 0; i < value->items.size(); ++i) {
    ConfigNode* item = value->items[i].get();
    const std::string path = absl::StrCat(PathOf(key), "[", i, "]");
    if (item->kind != Kind::kMap) {
      return absl::InvalidArgumentError(ErrorText(
          "", path, item->line, absl::StrCat("must be a map of settings, got ", KindName(*item))));
    }
    out.push_back(ConfigMap(item, path));
  }
  return out;
}

absl::Status ConfigMap::Finish() const {
  const std::vector<std::string>& known = node_->asked;
  for (const auto& entry : node_->entries) {
    if (entry.read) continue;
    std::string message = "unknown key";
    std::string best;
    size_t best_distance = 3;
    for (const auto& candidate : known) {
      const size_t d = EditDistance(entry.key, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = candidate;
      }
    }
    if (!best.empty()) absl::StrAppend(&message, " (did you mean ", best, "?)");
    return absl::InvalidArgumentError(ErrorText("", PathOf(entry.key), entry.key_line, message));
  }
  return absl::OkStatus();
}

// ---- ConfigDocument ----------------------------------------------------------------------

ConfigDocument::ConfigDocument(std::unique_ptr<ConfigNode> root) : root_(std::move(root)) {}
ConfigDocument::ConfigDocument(ConfigDocument&&) noexcept = default;
ConfigDocument& ConfigDocument::operator=(ConfigDocument&&) noexcept = default;
ConfigDocument::~ConfigDocument() = default;

ConfigMap ConfigDocument::Root() { return ConfigMap(root_.get(), ""); }

[[nodiscard]] absl::StatusOr<ConfigDocument> ParseConfigText(std::string_view text,
                                                             std::string_view source) {
  if (text.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        ErrorText(source, "", 0, absl::StrCat("larger than ", kMaxFileBytes, " bytes")));
  }
  TreeBuilder builder{std::string(source)};
  std::istringstream in{std::string(text)};
  try {
    YAML::Parser parser(in);
    parser.HandleNextDocument(builder);
    if (builder.status().ok()) {
      TreeBuilder extra{std::string(source)};
      if (parser.HandleNextDocument(extra)) {
        return absl::InvalidArgumentError(
            ErrorText(source, "", 0, "holds more than one YAML document"));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(ErrorText(source, "", e.mark.line + 1, e.msg));
  }
  if (!builder.status().ok()) return builder.status();
  auto root = builder.TakeRoot();
  if (root == nullptr || root->kind == Kind::kNull) {
    root = std::make_unique<ConfigNode>();
    root->kind = Kind::kMap;
  }
  if (root->kind != Kind::kMap) {
    return absl::InvalidArgumentError(ErrorText(
        source, "", root->line, absl::StrCat("must be a map of settings, got ", KindName(*root))));
  }
  return ConfigDocument(std::move(root));
}

[[nodiscard]] absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxFileBytes);
  if (absl::IsFailedPrecondition(text.status())) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", text.status().message()));
  }
  if (!text.ok()) return absl::NotFoundError(absl::StrCat("config: ", text.status().message()));
  return text;
}

[[nodiscard]] absl::StatusOr<ConfigDocument> LoadConfigFile(const std::string& path) {
  LLMBOX_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  return ParseConfigText(text, path);
}

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 12) return std::nullopt;
  int64_t n = 0;
  if (!absl::SimpleAtoi(AsAbsl(text.substr(0, digits)), &n)) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s") return std::chrono::milliseconds(n * 1000);
  if (unit == "m") return std::chrono::milliseconds(n * 60'000);
  if (unit == "h") return std::chrono::milliseconds(n * 3'600'000);
  return std::nullopt;
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 12) return std::nullopt;
  uint64_t n = 0;
  if (!absl::SimpleAtoi(AsAbsl(text.substr(0, digits)), &n)) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  if (unit == "B") return n;
  if (unit == "KiB") return n << 10;
  if (unit == "MiB") return n << 20;
  if (unit == "GiB") return n << 30;
  return std::nullopt;
}

[[nodiscard]] absl::Status ReadLogConfig(ConfigMap& log, LogConfig* out) {
  if (auto st = log.Str("level", &out->level); !st.ok()) return st;
  if (auto st = log.Str("format", &out->format); !st.ok()) return st;
  if (auto st = log.Finish(); !st.ok()) return st;
  if (auto problem = out->Problem()) return log.Error(problem->first, problem->second);
  return absl::OkStatus();
}

}  // namespace llmbox::common
