#pragma once

// Captures what spdlog's default logger writes while it lives, raw: without the redaction the
// hub's own sink adds (common/log.h), so a test of what code logs sees exactly what the code
// handed to spdlog, not what the second line of defence made of it.
//
//   LogCapture logs;
//   DoSomething();
//   CHECK(logs.Text().find(secret) == std::string::npos);
//
// Not for tests that run in parallel with others that log (Catch2 runs one at a time).

#include <memory>
#include <sstream>
#include <string>

#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace llmbox::testing {

class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_, /*force_flush=*/true);
    sink->set_pattern("%l %v");
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Everything logged so far, one line per record.
  std::string Text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace llmbox::testing
