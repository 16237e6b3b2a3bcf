#include "tests/support/regex_redact.h"

#include <regex>
#include <vector>

namespace llmbox::testing {
namespace {

struct Rule {
  std::regex pattern;
  std::string replacement;  // $1 etc. refer to the pattern's groups
};

// Verbatim from common/redact.cc before issue 13.
const std::vector<Rule>& Rules() {
  static const std::vector<Rule> rules = [] {
    const auto flags = std::regex::ECMAScript | std::regex::optimize;
    std::vector<Rule> r;
    r.push_back(
        {std::regex(R"re((https?://[^\s/?#]+/[^\s?#]*oauth/authorize)\?[^\s"'<>]*)re", flags),
         "$1?[REDACTED]"});
    r.push_back(
        {std::regex(R"re(([?&](?:code|state|token|access_token|refresh_token|id_token|)re"
                    R"re(client_secret|code_challenge|code_verifier|password)=)[^&\s"'<>#]+)re",
                    flags | std::regex::icase),
         "$1[REDACTED]"});
    r.push_back({std::regex(R"re((Bearer\s+)[A-Za-z0-9._~+/=-]+)re", flags | std::regex::icase),
                 "$1[REDACTED]"});
    r.push_back({std::regex(R"re(("(?:accessToken|refreshToken|idToken|access_token|)re"
                            R"re(refresh_token|id_token|client_secret|password)"\s*:\s*")[^"]*")re",
                            flags),
                 "$1[REDACTED]\""});
    r.push_back({std::regex(R"re(sk-ant-[A-Za-z0-9_-]+)re", flags), "[REDACTED]"});
    r.push_back({std::regex(R"re(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)re", flags),
                 "[REDACTED]"});
    r.push_back({std::regex(R"re(llmbox_[A-Za-z0-9_-]{16,})re", flags), "[REDACTED]"});
    r.push_back({std::regex(R"re([A-Za-z0-9_-]{16,}#[A-Za-z0-9_-]{16,})re", flags), "[REDACTED]"});
    // Added with issue 14: an activation link's token.
    r.push_back({std::regex(R"re(/auth/[A-Za-z0-9_-]{43})re", flags), "/auth/[REDACTED]"});
    return r;
  }();
  return rules;
}

}  // namespace

std::string RegexRedact(std::string_view text) {
  std::string out(text);
  for (const Rule& rule : Rules()) {
    out = std::regex_replace(out, rule.pattern, rule.replacement);
  }
  return out;
}

}  // namespace llmbox::testing
