#include "common/redact.h"

#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace llmbox::common {
namespace {

TEST_CASE("every kind of secret is redacted", "[redact]") {
  const std::pair<std::string, std::string> cases[] = {
      {"visit https://claude.ai/oauth/authorize?z-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdefg "
       "now",
       "visit https://claude.ai/oauth/authorize?[REDACTED] now"},
      {"https://claude.com/cai/oauth/authorize?code=true&client_id=x&state=abc",
       "https://claude.com/cai/oauth/authorize?[REDACTED]"},
      {"GET /cb?code=s3cr3t&state=xyz HTTP/1.1",
       "GET /cb?code=[REDACTED]&state=[REDACTED] HTTP/1.1"},
      {"url?access_token=abc&x=1", "url?access_token=[REDACTED]&x=1"},
      {"Authorization: Bearer abc.def-123", "Authorization: Bearer [REDACTED]"},
      {R"({"accessToken":"sk-x","refreshToken": "r-y","ok":1})",
       R"({"accessToken":"[REDACTED]","refreshToken": "[REDACTED]","ok":1})"},
      {"key sk-ant-api03-AbC_dEf-123 used", "key [REDACTED] used"},
      {"token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln end", "token [REDACTED] end"},
      {"api key llmbox_0123456789abcdefABCDEF", "api key [REDACTED]"},
      {"pasted AbCdEfGhIjKlMnOpQr#StUvWxYz01234567_- here", "pasted [REDACTED] here"},
  };
  for (const auto& [input, expected] : cases) {
    INFO(input);
    CHECK(Redact(input) == expected);
  }
}

TEST_CASE("ordinary text, box ids and session URLs come through unchanged", "[redact]") {
  const std::string keep[] = {
      "box my-box-1 is ready",
      "open https://claude.ai/code/session_01AbCdEfGhIjKlMnOpQrStUv to continue",
      "container 4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0 started",
      "Couldn't log in: getaddrinfo ENOTFOUND platform.claude.com",
      "issue #42 and a-b#c",
      "",
  };
  for (const auto& text : keep) CHECK(Redact(text) == text);
}

TEST_CASE("a Secret prints as [REDACTED] through fmt and streams", "[redact]") {
  Secret code("AbCdEfGhIjKlMnOp#state");
  CHECK(fmt::format("code {}", code) == "code [REDACTED]");
  std::ostringstream out;
  out << code;
  CHECK(out.str() == "[REDACTED]");
  CHECK(code.Reveal() == "AbCdEfGhIjKlMnOp#state");
}

}  // namespace
}  // namespace llmbox::common
