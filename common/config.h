// common/config.h
//
// Strict YAML configuration: YAML -> a plain struct -> one Validate(). The loader builds its
// own tree (yaml-cpp 0.7 silently accepts duplicate keys), so duplicate keys, anchors and
// aliases are errors, and every error names the key path and the 1-based line:
//
//   config: spoke.max_boxes (line 12): must be 1..1000, got 0
//
//   LLMBOX_ASSIGN_OR_RETURN(ConfigDocument doc, LoadConfigFile("/etc/llmbox/spoke.yaml"));
//   ConfigMap root = doc.Root();
//   LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> spoke, root.Map("spoke"));
//   if (spoke) {
//     LLMBOX_RETURN_IF_ERROR(spoke->Int("max_boxes", &config.max_boxes, 1, 1000));
//     LLMBOX_RETURN_IF_ERROR(spoke->Duration("auth_ttl", &config.auth_ttl));
//     LLMBOX_RETURN_IF_ERROR(spoke->SecretFile("join_token", &config.join_token));
//     LLMBOX_RETURN_IF_ERROR(spoke->Finish());     // any key not read is "unknown key"
//   }
//   LLMBOX_RETURN_IF_ERROR(root.Finish());
//
// Getters leave the output untouched when the key is absent (so defaults stay), and mark the
// key as known. Durations are `\d+(ms|s|m|h)` only; sizes `\d+(B|KiB|MiB|GiB)`. Secrets are
// read only from files named by `<key>_file`; an inline `<key>` is refused.
//
// A ConfigMap is a view into its ConfigDocument, which must outlive it. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/log.h"

namespace llmbox::common {

struct ConfigNode;

class ConfigMap {
 public:
  [[nodiscard]] absl::Status Str(std::string_view key, std::string* out);
  [[nodiscard]] absl::Status Bool(std::string_view key, bool* out);
  [[nodiscard]] absl::Status Int(std::string_view key, int* out, int min, int max);
  [[nodiscard]] absl::Status Int64(std::string_view key, int64_t* out, int64_t min, int64_t max);
  [[nodiscard]] absl::Status Duration(std::string_view key, std::chrono::milliseconds* out);
  [[nodiscard]] absl::Status Size(std::string_view key, uint64_t* out);
  [[nodiscard]] absl::Status StrList(std::string_view key, std::vector<std::string>* out);
  // Reads the secret from the file named at `<key>_file` (one trailing newline dropped).
  [[nodiscard]] absl::Status SecretFile(std::string_view key, std::string* secret);
  // A sub-section, when present.
  [[nodiscard]] absl::StatusOr<std::optional<ConfigMap>> Map(std::string_view key);
  // A list of sections (e.g. hooks), empty when absent.
  [[nodiscard]] absl::StatusOr<std::vector<ConfigMap>> MapList(std::string_view key);

  bool Has(std::string_view key) const;
  // "spoke.max_boxes"
  std::string PathOf(std::string_view key) const;
  // An error for `key` in the standard form ("config: <path> (line N): <message>").
  [[nodiscard]] absl::Status Error(std::string_view key, std::string_view message) const;
  // Unknown keys (not read by any getter) are errors, with a suggestion for a near miss.
  [[nodiscard]] absl::Status Finish() const;

 private:
  friend class ConfigDocument;
  ConfigMap(ConfigNode* node, std::string path) : node_(node), path_(std::move(path)) {}
  // The value node of `key` (marking it read), or nullptr.
  ConfigNode* Find(std::string_view key);
  // Tells this thread's ConfigKeyRecorder, if any, that `key` was asked for.
  void Record(std::string_view key) const;
  [[nodiscard]] absl::StatusOr<std::string> Scalar(std::string_view key, ConfigNode* value,
                                                   std::string_view expected);

  ConfigNode* node_;
  std::string path_;
};

class ConfigDocument {
 public:
  ConfigDocument(ConfigDocument&&) noexcept;
  ConfigDocument& operator=(ConfigDocument&&) noexcept;
  ~ConfigDocument();
  // The top-level map (an empty document is an empty map).
  ConfigMap Root();

 private:
  friend absl::StatusOr<ConfigDocument> ParseConfigText(std::string_view, std::string_view);
  explicit ConfigDocument(std::unique_ptr<ConfigNode> root);
  std::unique_ptr<ConfigNode> root_;
};

// Records, on this thread and while it lives, every key a reader asks for (present in the
// file or not), by its path with list positions left out: "boxes.exec.uid", "hooks[].name".
// Sections (Map) and lists of sections (MapList) are recorded as such too. This is how the
// configuration reference test enumerates the keys the loaders know (docs/configuration.md):
// it feeds a loader documents with every section present until no new one turns up.
//
// One recorder per thread at a time; not thread-safe.
class ConfigKeyRecorder {
 public:
  ConfigKeyRecorder();
  ~ConfigKeyRecorder();
  ConfigKeyRecorder(const ConfigKeyRecorder&) = delete;
  ConfigKeyRecorder& operator=(const ConfigKeyRecorder&) = delete;

  const std::set<std::string>& keys() const { return keys_; }          // every key asked for
  const std::set<std::string>& sections() const { return sections_; }  // read as a map
  const std::set<std::string>& lists() const { return lists_; }        // read as a map list

 private:
  friend class ConfigMap;
  std::set<std::string> keys_;
  std::set<std::string> sections_;
  std::set<std::string> lists_;
};

// Parses YAML text; `source` names it in errors.
[[nodiscard]] absl::StatusOr<ConfigDocument> ParseConfigText(std::string_view text,
                                                             std::string_view source);

// The text of a config file (at most 1 MiB). NotFound naming the path and the reason when it
// cannot be read, InvalidArgument when it is larger; both messages start "config: ".
[[nodiscard]] absl::StatusOr<std::string> ReadConfigFile(const std::string& path);

// Reads (ReadConfigFile) and parses a file.
[[nodiscard]] absl::StatusOr<ConfigDocument> LoadConfigFile(const std::string& path);

// "250ms", "30s", "15m", "2h" -> milliseconds; nullopt for anything else.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "512B", "64KiB", "4MiB", "2GiB" -> bytes; nullopt for anything else.
std::optional<uint64_t> ParseSize(std::string_view text);

// The `log:` section (level, format) into `out`, validated.
[[nodiscard]] absl::Status ReadLogConfig(ConfigMap& log, LogConfig* out);

}  // namespace llmbox::common
