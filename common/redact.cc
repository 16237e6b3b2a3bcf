#include "common/redact.h"

#include <array>
#include <memory>

#include <re2/re2.h>

#include "common/status.h"

namespace llmbox::common {
namespace {

struct Rule {
  std::string_view pattern;
  std::string_view rewrite;  // \1 refers to the pattern's first group
};

// Each pattern is the ECMAScript one (libstdc++ regex) it replaces. Where that had \s (space, \t,
// \n, \v, \f, \r in the C locale) these have \s\v, as RE2's \s lacks \v.
constexpr std::array<Rule, 9> kRules = {{
    // The query of any OAuth authorize URL.
    {R"re((https?://[^\s\v/?#]+/[^\s\v?#]*oauth/authorize)\?[^\s\v"'<>]*)re",
     R"re(\1?[REDACTED])re"},
    // Secret query parameters anywhere, their names in any case.
    {R"re((?i)([?&](?:code|state|token|access_token|refresh_token|id_token|client_secret|)re"
     R"re(code_challenge|code_verifier|password)=)[^&\s\v"'<>#]+)re",
     R"re(\1[REDACTED])re"},
    {R"re((?i)(Bearer[\s\v]+)[A-Za-z0-9._~+/=-]+)re", R"re(\1[REDACTED])re"},
    // JSON string fields that hold credentials.
    {R"re(("(?:accessToken|refreshToken|idToken|access_token|refresh_token|id_token|)re"
     R"re(client_secret|password)"[\s\v]*:[\s\v]*")[^"]*")re",
     R"re(\1[REDACTED]")re"},
    {R"re(sk-ant-[A-Za-z0-9_-]+)re", "[REDACTED]"},
    {R"re(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)re", "[REDACTED]"},
    {R"re(llmbox_[A-Za-z0-9_-]{16,})re", "[REDACTED]"},
    // A pasted code: two long base64url runs joined by '#'.
    {R"re([A-Za-z0-9_-]{16,}#[A-Za-z0-9_-]{16,})re", "[REDACTED]"},
    // An activation link's token (43 base64url characters after /auth/).
    {R"re(/auth/[A-Za-z0-9_-]{43})re", "/auth/[REDACTED]"},
}};

// The patterns of kRules, compiled once and never destroyed.
const std::array<std::unique_ptr<RE2>, kRules.size()>& Patterns() {
  static const auto* patterns = [] {
    RE2::Options options;
    // Bytes, not UTF-8: box output may be anything, and the patterns are ASCII.
    options.set_encoding(RE2::Options::EncodingLatin1);
    options.set_log_errors(false);
    auto* out = new std::array<std::unique_ptr<RE2>, kRules.size()>();
    for (size_t i = 0; i < kRules.size(); ++i) {
      (*out)[i] = std::make_unique<RE2>(kRules[i].pattern, options);
      LLMBOX_CHECK((*out)[i]->ok(), "redact: a built-in pattern does not compile");
    }
    return out;
  }();
  return *patterns;
}

}  // namespace

std::string Redact(std::string_view text) {
  std::string out(text);
  for (size_t i = 0; i < kRules.size(); ++i) {
    RE2::GlobalReplace(&out, *Patterns()[i], kRules[i].rewrite);
  }
  return out;
}

}  // namespace llmbox::common
