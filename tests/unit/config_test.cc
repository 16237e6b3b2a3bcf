#include "common/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

namespace llmbox::common {
namespace {

using namespace std::chrono_literals;

// The status of reading spoke.max_boxes (1..1000) from `yaml`.
[[nodiscard]] absl::Status ReadMaxBoxes(const std::string& yaml, int* max_boxes) {
  auto doc = ParseConfigText(yaml, "test.yaml");
  if (!doc.ok()) return doc.status();
  ConfigMap root = doc->Root();
  auto spoke = root.Map("spoke");
  if (!spoke.ok()) return spoke.status();
  if (*spoke) {
    if (auto st = (*spoke)->Int("max_boxes", max_boxes, 1, 1000); !st.ok()) return st;
    if (auto st = (*spoke)->Finish(); !st.ok()) return st;
  }
  return root.Finish();
}

TEST_CASE("a range error names the key path and the 1-based line", "[config]") {
  int max_boxes = 20;
  std::string yaml = "# spoke settings\n";
  for (int i = 2; i < 11; ++i) yaml += "# line " + std::to_string(i) + "\n";
  yaml += "spoke:\n  max_boxes: 0\n";  // lines 11 and 12
  auto st = ReadMaxBoxes(yaml, &max_boxes);
  CHECK(st.message() == "config: spoke.max_boxes (line 12): must be 1..1000, got 0");
  CHECK(max_boxes == 20);
  CHECK(ReadMaxBoxes("spoke:\n  max_boxes: ten\n", &max_boxes).message() ==
        "config: spoke.max_boxes (line 2): must be an integer, got \"ten\"");
  CHECK(ReadMaxBoxes("spoke:\n  max_boxes: 7\n", &max_boxes).ok());
  CHECK(max_boxes == 7);
}

TEST_CASE("unknown keys are refused, with a suggestion for a near miss", "[config]") {
  int max_boxes = 20;
  CHECK(ReadMaxBoxes("spoke:\n  max_boxs: 3\n", &max_boxes).message() ==
        "config: spoke.max_boxs (line 2): unknown key (did you mean max_boxes?)");
  CHECK(ReadMaxBoxes("spoke:\n  colour: blue\n", &max_boxes).message() ==
        "config: spoke.colour (line 2): unknown key");
  // With the intended key also present (and read), the typo gets a suggestion.
  CHECK(ReadMaxBoxes("spoke:\n  max_boxes: 3\n  max_boxs: 4\n", &max_boxes).message() ==
        "config: spoke.max_boxs (line 3): unknown key (did you mean max_boxes?)");
}

TEST_CASE("duplicate keys are refused at any depth", "[config]") {
  auto top = ParseConfigText("a: 1\nb: 2\na: 3\n", "t.yaml");
  CHECK(top.status().message() == "config: a (line 3): duplicate key (first at line 1)");
  auto nested = ParseConfigText("spoke:\n  name: x\n  other: 1\n  name: y\n", "t.yaml");
  CHECK(nested.status().message() ==
        "config: spoke.name (line 4): duplicate key (first at line 2)");
}

TEST_CASE("durations take only ms, s, m and h", "[config]") {
  CHECK(ParseDuration("250ms") == 250ms);
  CHECK(ParseDuration("30s") == 30s);
  CHECK(ParseDuration("15m") == 15min);
  CHECK(ParseDuration("2h") == 2h);
  CHECK(ParseDuration("0s") == 0s);
  for (const char* bad : {"", "30", "1.5s", "-1s", "1d", "s", "30 s", "30S", "1h30m", "ms"}) {
    INFO(bad);
    CHECK_FALSE(ParseDuration(bad).has_value());
  }
  auto doc = ParseConfigText("ttl: 1.5s\n", "t");
  REQUIRE(doc.ok());
  std::chrono::milliseconds ttl{0};
  CHECK(doc->Root().Duration("ttl", &ttl).message() ==
        "config: ttl (line 1): must be a duration like 250ms, 30s, 15m or 2h, got \"1.5s\"");
}

TEST_CASE("sizes take only B, KiB, MiB and GiB", "[config]") {
  CHECK(ParseSize("512B") == 512u);
  CHECK(ParseSize("64KiB") == 64u << 10);
  CHECK(ParseSize("4MiB") == 4u << 20);
  CHECK(ParseSize("2GiB") == uint64_t{2} << 30);
  for (const char* bad : {"", "1", "1KB", "1k", "1.5MiB", "-1B", "1 MiB", "1TiB"}) {
    INFO(bad);
    CHECK_FALSE(ParseSize(bad).has_value());
  }
}

TEST_CASE("secrets come from *_file keys only", "[config]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("llmbox-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto secret = dir / "secret";
  std::ofstream(secret) << "s3cr3t\n";
  const auto empty = dir / "empty";
  std::ofstream(empty) << "";

  auto doc = ParseConfigText("hub:\n  session_secret_file: " + secret.string() + "\n", "t");
  REQUIRE(doc.ok());
  auto hub = doc->Root().Map("hub");
  REQUIRE(hub.ok());
  std::string value;
  REQUIRE((*hub)->SecretFile("session_secret", &value).ok());
  CHECK(value == "s3cr3t");

  auto inline_doc = ParseConfigText("hub:\n  session_secret: hunter2\n", "t");
  REQUIRE(inline_doc.ok());
  auto inline_hub = inline_doc->Root().Map("hub");
  REQUIRE(inline_hub.ok());
  auto refused = (*inline_hub)->SecretFile("session_secret", &value);
  CHECK(refused.message() ==
        "config: hub.session_secret (line 2): secrets are read from files; use "
        "session_secret_file");
  CHECK(refused.message().find("hunter2") == std::string::npos);

  auto empty_doc = ParseConfigText("k_file: " + empty.string() + "\n", "t");
  REQUIRE(empty_doc.ok());
  CHECK(empty_doc->Root().SecretFile("k", &value).message().find("is empty") != std::string::npos);
  auto missing_doc = ParseConfigText("k_file: /no/such/file\n", "t");
  REQUIRE(missing_doc.ok());
  CHECK(missing_doc->Root().SecretFile("k", &value).message() ==
        "config: k_file (line 1): cannot read \"/no/such/file\"");
  std::filesystem::remove_all(dir);
}

TEST_CASE("lists of sections, strings and booleans are read with their paths", "[config]") {
  auto doc = ParseConfigText(
      "hooks:\n"
      "  - event: box.create\n"
      "    command: [/bin/hook, --json]\n"
      "  - event: box.destroy\n"
      "    timeout: 5s\n"
      "    enabled: maybe\n",
      "t");
  REQUIRE(doc.ok());
  auto root = doc->Root();
  auto hooks = root.MapList("hooks");
  REQUIRE(hooks.ok());
  REQUIRE(hooks->size() == 2);
  std::string event;
  std::vector<std::string> command;
  REQUIRE((*hooks)[0].Str("event", &event).ok());
  REQUIRE((*hooks)[0].StrList("command", &command).ok());
  CHECK(event == "box.create");
  CHECK(command == std::vector<std::string>{"/bin/hook", "--json"});
  bool enabled = true;
  CHECK((*hooks)[1].Bool("enabled", &enabled).message() ==
        "config: hooks[1].enabled (line 6): must be true or false, got \"maybe\"");
  std::chrono::milliseconds timeout{0};
  REQUIRE((*hooks)[1].Duration("timeout", &timeout).ok());
  CHECK(timeout == 5s);
  CHECK((*hooks)[1].Finish().message() == "config: hooks[1].event (line 4): unknown key");
}

TEST_CASE("bad documents are refused clearly", "[config]") {
  CHECK(ParseConfigText("", "t").ok());  // empty: all defaults
  CHECK(ParseConfigText("- a\n- b\n", "t.yaml").status().message() ==
        "config: t.yaml (line 1): must be a map of settings, got a list");
  CHECK(ParseConfigText("a: &x 1\nb: *x\n", "t")
            .status()
            .message()
            .find("anchors (&name) are not supported") != std::string::npos);
  CHECK(ParseConfigText("a: [1, 2\n", "t.yaml").status().message().find("config: t.yaml (line") ==
        0);
  CHECK(ParseConfigText("a: 1\n---\nb: 2\n", "t")
            .status()
            .message()
            .find("more than one YAML document") != std::string::npos);
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += std::string(i * 2, ' ') + "k" + std::to_string(i) + ":\n";
  CHECK(ParseConfigText(deep, "t").status().message().find("nesting deeper than 64") !=
        std::string::npos);
  CHECK(absl::IsNotFound(LoadConfigFile("/no/such/llmbox.yaml").status()));
}

TEST_CASE("the log section becomes a validated LogConfig", "[config]") {
  auto doc = ParseConfigText("log:\n  level: debug\n  format: json\n", "t");
  REQUIRE(doc.ok());
  auto root = doc->Root();
  auto log = root.Map("log");
  REQUIRE(log.ok());
  LogConfig config;
  REQUIRE(ReadLogConfig(**log, &config).ok());
  CHECK(config.level == "debug");
  CHECK(config.format == "json");

  auto bad = ParseConfigText("log:\n  level: debug\n  format: xml\n", "t");
  REQUIRE(bad.ok());
  auto bad_root = bad->Root();
  auto bad_log = bad_root.Map("log");
  REQUIRE(bad_log.ok());
  CHECK(ReadLogConfig(**bad_log, &config).message() ==
        "config: log.format (line 3): must be text or json, got \"xml\"");
}

}  // namespace
}  // namespace llmbox::common
