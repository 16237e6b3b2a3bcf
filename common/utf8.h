// common/utf8.h
//
// Makes bytes we did not write (box output, a spoke's answer, an engine's message) into valid
// UTF-8 before they become a proto3 `string`, JSON or a log line: protobuf refuses to parse a
// `string` field that is not UTF-8 (the whole message is lost), and nlohmann's dump() throws on
// it. Invalid bytes become U+FFFD; everything valid stays, NUL and other control characters
// included (JSON escapes them; nothing here stops at a NUL).
//
//   std::string text = common::ToValidUtf8(exec_stdout);          // always valid UTF-8
//   std::string error = common::Utf8Prefix(box_error, 4096);      // valid and at most 4 KiB
//
// What is invalid (RFC 3629 and the Unicode standard's "maximal subpart" practice, the same as
// nlohmann's error_handler_t::replace and WHATWG's decoder): bytes 0x80-0xC1 and 0xF5-0xFF as a
// lead, overlong forms, UTF-16 surrogates (U+D800-U+DFFF) encoded in UTF-8, code points above
// U+10FFFF, and a sequence cut short. A lead byte and the continuation bytes that were still
// valid become one U+FFFD; decoding resumes at the byte that broke the sequence.
//
// Linear time, one pass; no allocation beyond the result. Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmbox::common {

// The UTF-8 encoding of U+FFFD REPLACEMENT CHARACTER.
inline constexpr std::string_view kReplacementCharacter = "\xef\xbf\xbd";

// At `text[i]`: the length (1-4) of the valid UTF-8 character that starts there, or 0 when the
// bytes there are not one; then `*invalid` is how many bytes (at least 1) make the broken
// sequence that one U+FFFD replaces. `i` must be < text.size().
std::size_t Utf8CharLength(std::string_view text, std::size_t i, std::size_t* invalid);

// True when all of `text` is valid UTF-8.
bool IsValidUtf8(std::string_view text);

// `text` with each broken sequence replaced by U+FFFD. The result is at most three times as
// long as `text` (each invalid byte can become three), and equals `text` when it was valid.
std::string ToValidUtf8(std::string_view text);

// ToValidUtf8(text) cut to at most `max_bytes` at a character boundary (never inside a
// character), keeping the start.
std::string Utf8Prefix(std::string_view text, std::size_t max_bytes);

}  // namespace llmbox::common
