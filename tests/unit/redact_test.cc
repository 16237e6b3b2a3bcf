#include "common/redact.h"

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/regex_redact.h"

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

TEST_CASE("each kind of secret is redacted at the start, at the end and with text after it",
          "[redact]") {
  // The secret of each kind and what it becomes on its own.
  const std::pair<std::string, std::string> secrets[] = {
      {"https://claude.ai/oauth/authorize?code=true&state=abc",
       "https://claude.ai/oauth/authorize?[REDACTED]"},
      {"http://localhost:8080/cai/oauth/authorize?x=1",
       "http://localhost:8080/cai/oauth/authorize?[REDACTED]"},
      {"/cb?code=s3cr3t", "/cb?code=[REDACTED]"},
      {"&refresh_token=r3fr3sh", "&refresh_token=[REDACTED]"},
      {"?client_secret=cs", "?client_secret=[REDACTED]"},
      {"?code_verifier=v", "?code_verifier=[REDACTED]"},
      {"&code_challenge=ch", "&code_challenge=[REDACTED]"},
      {"?password=hunter2", "?password=[REDACTED]"},
      {"?id_token=idt", "?id_token=[REDACTED]"},
      {"&token=t", "&token=[REDACTED]"},
      {"Bearer abc.def~+/=-123", "Bearer [REDACTED]"},
      {R"("access_token":"a-t")", R"("access_token":"[REDACTED]")"},
      {R"("refresh_token":"r")", R"("refresh_token":"[REDACTED]")"},
      {R"("idToken":"i")", R"("idToken":"[REDACTED]")"},
      {R"("id_token":"i")", R"("id_token":"[REDACTED]")"},
      {R"("client_secret":"c")", R"("client_secret":"[REDACTED]")"},
      {R"("password":"p w")", R"("password":"[REDACTED]")"},
      {R"("accessToken":"")", R"("accessToken":"[REDACTED]")"},
      {"sk-ant-oat01-AbC_dEf-123", "[REDACTED]"},
      {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.", "[REDACTED]"},
      {"llmbox_0123456789abcdef", "[REDACTED]"},
      {"AbCdEfGhIjKlMnOp#QrStUvWxYz012345", "[REDACTED]"},
  };
  for (const auto& [secret, redacted] : secrets) {
    INFO(secret);
    CHECK(Redact(secret) == redacted);
    CHECK(Redact(secret + " and after") == redacted + " and after");
    CHECK(Redact("before " + secret) == "before " + redacted);
    CHECK(Redact("a " + secret + "\nb " + secret + "\tc") ==
          "a " + redacted + "\nb " + redacted + "\tc");
  }
}

TEST_CASE("several secrets of different kinds on one line are all redacted", "[redact]") {
  CHECK(Redact("GET /cb?code=c0de&state=st4te Authorization: Bearer t0k3n key sk-ant-k3y "
               "jwt eyJa.eyJb.c api llmbox_0123456789abcdefXYZ pasted "
               "0123456789abcdef#0123456789ABCDEF done") ==
        "GET /cb?code=[REDACTED]&state=[REDACTED] Authorization: Bearer [REDACTED] key "
        "[REDACTED] jwt [REDACTED] api [REDACTED] pasted [REDACTED] done");
}

TEST_CASE("secret query parameter names and Bearer are matched in any case", "[redact]") {
  CHECK(Redact("/cb?CODE=a&State=b&Access_Token=c&PASSWORD=d") ==
        "/cb?CODE=[REDACTED]&State=[REDACTED]&Access_Token=[REDACTED]&PASSWORD=[REDACTED]");
  CHECK(Redact("authorization: BEARER abc") == "authorization: BEARER [REDACTED]");
  CHECK(Redact("bearer\tabc") == "bearer\t[REDACTED]");
  // JSON field names are matched as written, like before.
  CHECK(Redact(R"({"AccessToken":"x"})") == R"({"AccessToken":"x"})");
}

TEST_CASE("JSON credential fields are redacted with any spaces around the colon", "[redact]") {
  CHECK(Redact("{\"accessToken\" : \"a\", \"refreshToken\"\t:\n \"b\", \"x\": \"c\"}") ==
        "{\"accessToken\" : \"[REDACTED]\", \"refreshToken\"\t:\n \"[REDACTED]\", \"x\": \"c\"}");
  CHECK(Redact("\"password\"\v:\f\"p\"") == "\"password\"\v:\f\"[REDACTED]\"");
}

TEST_CASE("what almost looks like a secret is kept", "[redact]") {
  const std::string keep[] = {
      "?codes=1&stated=2",                     // other parameter names
      "code=abc without a ? or &",             // not a query parameter
      "Bearer",                                // no token
      "sk-ant- alone",                         // no key after the prefix
      "eyJabc.def",                            // two parts only
      "llmbox_0123456789abcde",                // 15 characters only
      "0123456789abcde#0123456789abcdef",      // 15 before '#'
      "https://claude.ai/oauth/authorize",     // no query
      "https://claude.ai/code/session_01AbC",  // a session URL
  };
  for (const auto& text : keep) {
    INFO(text);
    CHECK(Redact(text) == text);
  }
}

// Random text built from the pieces the patterns are made of, so that near misses, overlaps
// and chains of rules come up often.
std::string Generated(std::mt19937& random) {
  static const std::vector<std::string> pieces = {"https://claude.ai/oauth/authorize",
                                                  "http://h/",
                                                  "oauth/authorize",
                                                  "https://",
                                                  "?",
                                                  "&",
                                                  "#",
                                                  "=",
                                                  "/",
                                                  "code",
                                                  "CODE",
                                                  "state",
                                                  "Access_Token",
                                                  "password",
                                                  "token",
                                                  "code_challenge",
                                                  "Bearer",
                                                  "bEaReR",
                                                  " ",
                                                  "\t",
                                                  "\n",
                                                  "\v",
                                                  "\"",
                                                  "'",
                                                  "<",
                                                  ">",
                                                  ":",
                                                  "\"accessToken\"",
                                                  "\"password\"",
                                                  "\"id_token\"",
                                                  "sk-ant-",
                                                  "eyJ",
                                                  ".",
                                                  "llmbox_",
                                                  "abcdefgh",
                                                  "0123456789ABCDEF",
                                                  "_-~+",
                                                  "a",
                                                  std::string(1, '\0'),
                                                  "\xff",
                                                  "\xc3\xa9",
                                                  "[REDACTED]"};
  std::string text;
  const size_t n = 1 + random() % 14;
  for (size_t i = 0; i < n; ++i) text += pieces[random() % pieces.size()];
  return text;
}

TEST_CASE("the redactor gives what the old std::regex one gave, on generated text", "[redact]") {
  std::mt19937 random(13);
  for (int i = 0; i < 3000; ++i) {
    const std::string text = Generated(random);
    INFO(text);
    REQUIRE(Redact(text) == testing::RegexRedact(text));
  }
}

constexpr size_t kMiB = 1u << 20;

std::string Repeated(std::string_view piece, size_t size = kMiB) {
  std::string out;
  out.reserve(size + piece.size());
  while (out.size() < size) out.append(piece);
  return out;
}

TEST_CASE("a 1 MiB line of one character, of spaces or of newlines comes through unchanged",
          "[redact]") {
  for (char c : {'a', ' ', '\n', '-', '#', '"'}) {
    const std::string text(kMiB, c);
    CHECK(Redact(text) == text);
  }
}

TEST_CASE("1 MiB of a pattern's beginning repeated finishes and comes through unchanged",
          "[redact]") {
  // Never a whole secret: no '?' or '&' before code=, no dots after eyJ, no space after
  // Bearer, no query after authorize, 15-character runs around '#', no quote closing the
  // JSON value.
  for (std::string_view piece : {"code=", "eyJ", "Bearer", "https://claude.ai/oauth/authorize",
                                 "sk-ant", "llmbox", "0123456789abcde#"}) {
    INFO(piece);
    const std::string text = Repeated(piece);
    CHECK(Redact(text) == text);
  }
  const std::string unterminated = "\"accessToken\": \"" + std::string(kMiB, 'a');
  CHECK(Redact(unterminated) == unterminated);
}

TEST_CASE("1 MiB of a secret repeated without a break is redacted whole", "[redact]") {
  // One match swallows the rest: the query, the value and the key run to the end.
  CHECK(Redact(Repeated("https://claude.ai/oauth/authorize?")) ==
        "https://claude.ai/oauth/authorize?[REDACTED]");
  CHECK(Redact(Repeated("?code=")) == "?code=[REDACTED]");
  CHECK(Redact(Repeated("sk-ant-")) == "[REDACTED]");
  CHECK(Redact(Repeated("llmbox_")) == "[REDACTED]");
  const std::string half(kMiB / 2, 'A');
  CHECK(Redact(half + "#" + half) == "[REDACTED]");
}

TEST_CASE("1 MiB of short secrets in a row redacts each of them", "[redact]") {
  const std::string params = Redact(Repeated("&state=x"));
  CHECK(params == Repeated("&state=[REDACTED]", params.size()));
  CHECK(params.size() == kMiB / 8 * 17);
  const std::string bearer = Redact(Repeated("Bearer "));
  CHECK(bearer.find("Bearer Bearer") == std::string::npos);
  const std::string pasted = Redact(Repeated("0123456789abcdefg#0123456789abcdefg#"));
  CHECK(pasted == Repeated("[REDACTED]#", pasted.size()));
  const std::string jwts = Redact(Repeated("eyJa.eyJb.eyJc."));
  CHECK(jwts == Repeated("[REDACTED].", jwts.size()));
  const std::string json = Redact(Repeated(R"("idToken" : "t",)"));
  CHECK(json == Repeated(R"("idToken" : "[REDACTED]",)", json.size()));
}

TEST_CASE(
    "NUL, invalid UTF-8 and control bytes pass through and secrets among them are "
    "redacted",
    "[redact]") {
  // Bytes no pattern uses, so the expected text is known exactly.
  std::mt19937 random(7);
  const auto noise = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t b = random() % 64;
      out.push_back(static_cast<char>(b < 32 ? b : 0x80 + b * 2));  // controls, 0x80-0xFF
    }
    return out;
  };
  std::string text, expected;
  while (text.size() < kMiB) {
    const std::string filler = noise(1 + random() % 4000);
    text += filler + " sk-ant-k3y ";
    expected += filler + " [REDACTED] ";
  }
  CHECK(Redact(text) == expected);
}

TEST_CASE("1 MiB of random bytes is redacted and a second pass changes nothing", "[redact]") {
  std::mt19937 random(42);
  std::string text(kMiB, '\0');
  for (char& c : text) c = static_cast<char>(random());
  const std::string once = Redact(text);
  CHECK(!once.empty());
  CHECK(Redact(once) == once);
}

}  // namespace
}  // namespace llmbox::common
