// common/redact.h
//
// Keeps secrets out of text that leaves the process (logs, errors, tool output): OAuth
// authorize URLs, codes, tokens and credentials are replaced by "[REDACTED]". The log sink
// applies Redact() to every line, so a forgotten call cannot print a secret; code that puts
// text into an error or a response calls it too.
//
//   LOG_INFO("submitting {} for box {}", Secret(code), box_id);   // prints [REDACTED]
//   std::string safe = Redact(box_output);
//
// What counts as secret: authorize URLs (their query), the query parameters code, state,
// token, access_token, refresh_token, id_token, client_secret, code_challenge,
// code_verifier and password (names in any case); "Bearer <token>" (any case); JSON fields
// accessToken, refreshToken, idToken, access_token, refresh_token, id_token, client_secret,
// password; Anthropic keys (sk-ant-…); JWTs (eyJ….….…); llmbox API keys (llmbox_ and 16 or
// more characters); a pasted "code#state" pair (two runs of 16+ base64url characters joined
// by '#'); an activation link's token ("/auth/" and 43 base64url characters: the hub never
// logs one, this catches a slip). Remote-control session URLs (https://claude.ai/code/…) are
// not secret and stay.
//
// Redact() is linear in the length of its input and uses stack independent of it, so it is
// safe on hostile input of any size (box output: exec, logs): the patterns run on RE2, which
// matches with automata instead of backtracking. RE2 rather than a hand-written scanner
// because the eight patterns then stay readable as the patterns they are, and each keeps
// the exact meaning it had under libstdc++'s regex (whose recursive backtracking overflowed
// the stack on a 40,000-character line; a unit test compares the two on generated text).
// The rules apply in order, each to the previous one's output, as before. Bytes are bytes
// (Latin-1 matching): invalid UTF-8 and NUL pass through. Callers bound what they read;
// Redact() itself keeps no limit and copies its input once per rule that matches.
//
// Redaction is a second line of defence for logs and output: the first is that the secret
// never reaches the process whose output is read.
//
// Thread-safe; no state beyond the compiled patterns (built once, on first use).
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace llmbox::common {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Returns `text` with every secret above replaced by kRedacted.
std::string Redact(std::string_view text);

// A secret value that prints as [REDACTED] through fmt/spdlog and streams. Reveal() is the
// one explicit way to the bytes.
class Secret {
 public:
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& Reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};

inline std::ostream& operator<<(std::ostream& out, const Secret&) { return out << kRedacted; }

}  // namespace llmbox::common

template <>
struct fmt::formatter<llmbox::common::Secret> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const llmbox::common::Secret&, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(llmbox::common::kRedacted, ctx);
  }
};
