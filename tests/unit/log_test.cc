#include "common/log.h"

#include <algorithm>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/redact.h"
#include "common/utf8.h"

namespace llmbox::common {
namespace {

TEST_CASE("a token in a log line is redacted in text and in JSON", "[log]") {
  for (const char* format : {"text", "json"}) {
    std::ostringstream out;
    auto logger = MakeLogger({.level = "info", .format = format}, out);
    logger->info("callback {} with {}", "/cb?code=s3cr3t-code&state=x", Secret("p@ss"));
    INFO(out.str());
    CHECK(out.str().find("s3cr3t-code") == std::string::npos);
    CHECK(out.str().find("p@ss") == std::string::npos);
    CHECK(out.str().find("[REDACTED]") != std::string::npos);
  }
}

TEST_CASE("lines below the configured level are not written", "[log]") {
  std::ostringstream out;
  auto logger = MakeLogger({.level = "warn"}, out);
  logger->info("quiet");
  logger->warn("loud");
  CHECK(out.str().find("quiet") == std::string::npos);
  CHECK(out.str().find(" warn  loud\n") != std::string::npos);
}

TEST_CASE("a text log line stays one line of valid UTF-8 whatever its message quotes", "[log]") {
  std::ostringstream out;
  auto logger = MakeLogger({.level = "info"}, out);
  using namespace std::string_literals;
  logger->warn("the box said: a\nforged warn line\r\x1b[2J\x07\0 \xff\xc0\xaf caf\xc3\xa9\tok"s);
  const std::string line = out.str();
  INFO(line);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  CHECK(line.back() == '\n');
  CHECK(IsValidUtf8(line));
  CHECK(line.find("a\\nforged warn line\\r\\x1b[2J\\x07\\x00 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                  "caf\xc3\xa9\tok\n") != std::string::npos);
}

TEST_CASE("JSON lines parse and carry ts, level and msg", "[log]") {
  std::ostringstream out;
  auto logger = MakeLogger({.level = "debug", .format = "json"}, out);
  logger->debug("box {} ready", "b1");
  logger->error("bad byte \xff here");
  std::istringstream lines(out.str());
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    auto parsed = nlohmann::json::parse(line);
    CHECK(parsed["ts"].get<std::string>().size() == 24);  // 2026-11-23T05:00:00.123Z
    CHECK(parsed.contains("level"));
    CHECK(parsed.contains("msg"));
    ++count;
  }
  CHECK(count == 2);
}

TEST_CASE("log config is validated with the key named", "[log]") {
  CHECK(LogConfig{.level = "info", .format = "json"}.Validate().ok());
  auto bad_level = LogConfig{.level = "loud"}.Validate();
  CHECK(bad_level.message() ==
        "config: log.level: must be one of trace, debug, info, warn, error, got \"loud\"");
  auto bad_format = LogConfig{.format = "xml"}.Validate();
  CHECK(bad_format.message() == "config: log.format: must be text or json, got \"xml\"");
}

}  // namespace
}  // namespace llmbox::common
