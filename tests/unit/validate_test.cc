#include "common/validate.h"

#include <string>

#include <catch2/catch.hpp>

namespace llmbox::common {
namespace {

TEST_CASE("valid box ids are DNS labels of lowercase letters, digits and inner hyphens") {
  for (const char* id : {"a", "0", "refactor-auth-service", "a-b-c", "box1", "9lives", "a--b"}) {
    INFO(id);
    REQUIRE(ValidateBoxId(id).ok());
  }
  REQUIRE(ValidateBoxId(std::string(63, 'a')).ok());
}

TEST_CASE("invalid box ids are refused with a message naming the id and the broken rule") {
  struct Case {
    std::string id;
    std::string why;
  };
  const Case cases[] = {
      {"", "it is empty"},
      {std::string(64, 'a'), "it is 64 characters long"},
      {"Box", "it has an uppercase letter"},
      {"my_box", "character 3 is not allowed"},
      {"my box", "character 3 is not allowed"},
      {"a/b", "character 2 is not allowed"},
      {"a;rm", "character 2 is not allowed"},
      {"-box", "it starts or ends with a hyphen"},
      {"box-", "it starts or ends with a hyphen"},
      {"b\xc3\xa9", "character 2 is not allowed"},
  };
  for (const Case& c : cases) {
    INFO(c.id);
    absl::Status s = ValidateBoxId(c.id);
    REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
    REQUIRE_THAT(std::string(s.message()), Catch::Contains(c.why));
    REQUIRE_THAT(std::string(s.message()), Catch::StartsWith("invalid box id \""));
  }
}

TEST_CASE("box id errors quote the id safely so it cannot forge a log line") {
  absl::Status s = ValidateBoxId("a\nERROR fake\x1b[31m");
  REQUIRE_THAT(std::string(s.message()), Catch::Contains("\"a\\x0aERROR fake\\x1b[31m\""));
  REQUIRE(std::string(s.message()).find('\n') == std::string::npos);
}

TEST_CASE("canonical box ids compare case-insensitively") {
  REQUIRE(CanonicalBoxId("My-Box") == CanonicalBoxId("my-box"));
  REQUIRE(CanonicalBoxId("my-box") == "my-box");
}

TEST_CASE("names allow dots and underscores and must start with a letter or digit") {
  REQUIRE(ValidateName("worker-1", "spoke name").ok());
  REQUIRE(ValidateName("ci_bot.v2", "API key name").ok());
  absl::Status s = ValidateName("_hidden", "spoke name");
  REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
  REQUIRE_THAT(std::string(s.message()),
               Catch::StartsWith("invalid spoke name \"_hidden\": it must start with"));
  REQUIRE_FALSE(ValidateName("", "spoke name").ok());
  REQUIRE_FALSE(ValidateName("Worker", "spoke name").ok());
  REQUIRE_FALSE(ValidateName(std::string(64, 'w'), "spoke name").ok());
}

TEST_CASE("quoting shortens long text") {
  REQUIRE(QuoteForMessage(std::string(100, 'x'), 4) == "\"xxxx...\"");
  REQUIRE(QuoteForMessage("say \"hi\"") == "\"say \\\"hi\\\"\"");
}

}  // namespace
}  // namespace llmbox::common
