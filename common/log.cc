#include "common/log.h"

#include <chrono>
#include <iostream>
#include <mutex>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "spdlog/sinks/base_sink.h"
#include <grpc/support/log.h>
#include <nlohmann/json.hpp>

#include "common/redact.h"
#include "common/utf8.h"

namespace llmbox::common {
namespace {

std::string Timestamp(spdlog::log_clock::time_point t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(t), absl::UTCTimeZone());
}

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "fatal";
    default:
      return "off";
  }
}

// A text log line is one line a terminal shows as it is, whatever the message quotes (a box's
// words reach errors): valid UTF-8, with control characters written as escapes (\n, \r, \xNN)
// so that none can start a forged line or drive the operator's terminal.
std::string OneLine(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string valid = ToValidUtf8(text);
  std::string out;
  out.reserve(valid.size());
  for (const char c : valid) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 0x20 && byte != 0x7f) || c == '\t') {
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else {
      out.append("\\x");
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  return out;
}

// Formats each record itself (text or one JSON object per line) and redacts it.
class RedactingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  RedactingSink(std::ostream& out, bool json) : out_(out), json_(json) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text = Redact(std::string_view(msg.payload.data(), msg.payload.size()));
    const std::string_view level = LevelName(msg.level);
    const std::string ts = Timestamp(msg.time);
    if (json_) {
      nlohmann::json line = {
          {"ts", ts}, {"level", std::string(level.data(), level.size())}, {"msg", text}};
      if (msg.logger_name.size() > 0) {
        line["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
      }
      out_ << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else {
      out_ << ts << ' ' << std::string(level.data(), level.size());
      for (size_t pad = level.size(); pad < 5; ++pad) out_ << ' ';
      out_ << ' ' << OneLine(text) << '\n';
    }
  }
  void flush_() override { out_.flush(); }

 private:
  std::ostream& out_;
  const bool json_;
};

}  // namespace

std::optional<std::pair<std::string, std::string>> LogConfig::Problem() const {
  if (level != "trace" && level != "debug" && level != "info" && level != "warn" &&
      level != "error") {
    return std::make_pair(
        "level",
        absl::StrCat("must be one of trace, debug, info, warn, error, got \"", level, "\""));
  }
  if (format != "text" && format != "json") {
    return std::make_pair("format", absl::StrCat("must be text or json, got \"", format, "\""));
  }
  return std::nullopt;
}

absl::Status LogConfig::Validate() const {
  auto problem = Problem();
  if (!problem.has_value()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("config: log.", problem->first, ": ", problem->second));
}

std::shared_ptr<spdlog::logger> MakeLogger(const LogConfig& config, std::ostream& out) {
  auto sink = std::make_shared<RedactingSink>(out, config.format == "json");
  auto logger = std::make_shared<spdlog::logger>("", sink);
  logger->set_level(spdlog::level::from_str(config.level));
  logger->flush_on(spdlog::level::trace);
  return logger;
}

namespace {

// gRPC's own log lines (gpr_log) through ours: the same format, redacted, one line each.
void LogFromGrpc(gpr_log_func_args* args) {
  const std::string_view message = args->message == nullptr ? "" : args->message;
  // The hub serves one certificate per listener. A client that names the hub by its address
  // sends that as the TLS server name, which matches none of the certificate's names, and
  // gRPC says so as an error, then goes on with that one certificate: the handshake is not
  // affected (every successful join printed this), so it is not an operator's business.
  if (message.starts_with("No match found for server name")) {
    spdlog::debug("grpc: {}", message);
    return;
  }
  if (args->severity == GPR_LOG_SEVERITY_ERROR) {
    spdlog::warn("grpc: {} ({}:{})", message, args->file == nullptr ? "" : args->file, args->line);
  } else {
    spdlog::debug("grpc: {}", message);
  }
}

}  // namespace

[[nodiscard]] absl::Status InitLogging(const LogConfig& config, std::ostream* out) {
  if (auto st = config.Validate(); !st.ok()) return st;
  spdlog::set_default_logger(MakeLogger(config, out == nullptr ? std::cerr : *out));
  gpr_set_log_function(LogFromGrpc);
  return absl::OkStatus();
}

}  // namespace llmbox::common
