// tests/support/regex_redact.h
//
// The redactor llmbox had before issue 13, on std::regex, kept only as a reference: unit
// tests compare common::Redact() with it on short inputs (the meaning of every pattern must
// not change), and the redaction bench times it. It backtracks recursively: never give it
// box output or anything long (a 40,000-character run overflows an 8 MiB stack).
//
//   CHECK(common::Redact(short_text) == testing::RegexRedact(short_text));
#pragma once

#include <string>
#include <string_view>

namespace llmbox::testing {

// The old common::Redact(): eight std::regex rules, each applied to the previous one's output.
// Thread-safe.
std::string RegexRedact(std::string_view text);

}  // namespace llmbox::testing
