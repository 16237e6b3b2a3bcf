// common/log.h
//
// Logging on spdlog: text or JSON lines, a level from config, and redaction of every line
// in the sink (common/redact.h), so nothing secret is printed even by a careless caller.
//
//   InitLogging({.level = "info", .format = "json"});
//   spdlog::info("box {} is ready", box_id);
//   spdlog::info("code {}", Secret(code));                 // prints [REDACTED]
//
// Text:  2026-11-23T05:00:00.123Z info  box b1 is ready
// JSON:  {"ts":"2026-11-23T05:00:00.123Z","level":"info","msg":"box b1 is ready"}
//
// Either way a record is one line of valid UTF-8, whatever the message quotes: text lines
// write control characters as escapes (\n, \r, \x1b) and bytes that are not UTF-8 as U+FFFD.
//
// Thread-safe (spdlog's).
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "spdlog/spdlog.h"

namespace llmbox::common {

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text or json
  // One Validate(): InvalidArgument naming the key ("log.level") and the allowed values.
  [[nodiscard]] absl::Status Validate() const;
  // What Validate() finds wrong: the key ("level" or "format") and the message; or nothing.
  std::optional<std::pair<std::string, std::string>> Problem() const;
};

// Makes the default spdlog logger write `config`'s format to `out` (stderr when null),
// redacted, and sends gRPC's own log lines through it ("grpc: ..."; its errors as warnings,
// the rest at debug). `out` must outlive the logger.
[[nodiscard]] absl::Status InitLogging(const LogConfig& config, std::ostream* out = nullptr);

// A logger with the same sink, for tests that read what was logged.
std::shared_ptr<spdlog::logger> MakeLogger(const LogConfig& config, std::ostream& out);

}  // namespace llmbox::common
