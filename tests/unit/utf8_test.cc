// common/utf8.h: what a box can print becomes valid UTF-8, the valid parts unchanged, in one
// linear pass.
#include "common/utf8.h"

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace llmbox::common {
namespace {

using namespace std::string_literals;

const std::string kFffd = "\xef\xbf\xbd";

std::string Repeat(const std::string& part, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += part;
  return out;
}

TEST_CASE("valid UTF-8 passes unchanged, NUL, control characters and escapes included", "[utf8]") {
  const std::string text =
      "plain ascii, caf\xc3\xa9, \xe2\x94\x80\xe2\x94\x80 box drawing, \xf0\x9f\x98\x80 emoji, "
      "U+10FFFF \xf4\x8f\xbf\xbf, U+FFFF \xef\xbf\xbf, NUL \0 inside, \x1b[31mred\x1b[0m, "
      "OSC \x1b]8;;https://x\x07, bell \x07, DEL \x7f, tab\t, CR\r\n"s;
  CHECK(IsValidUtf8(text));
  CHECK(ToValidUtf8(text) == text);
  CHECK(ToValidUtf8("") == "");
  CHECK(ToValidUtf8(std::string(5, '\0')) == std::string(5, '\0'));
}

TEST_CASE("each invalid byte or broken sequence becomes one U+FFFD and decoding goes on",
          "[utf8]") {
  struct Case {
    const char* what;
    std::string in;
    std::string out;
  };
  const std::vector<Case> cases = {
      {"a byte that is never UTF-8",
       "a\xff"
       "b",
       "a" + kFffd + "b"},
      {"FE and FF", "\xfe\xff", kFffd + kFffd},
      {"a lone continuation byte",
       "a\x80"
       "b",
       "a" + kFffd + "b"},
      {"continuation bytes in a row", "\x80\x81\xbf", kFffd + kFffd + kFffd},
      {"an overlong two-byte slash", "\xc0\xaf", kFffd + kFffd},
      {"an overlong two-byte NUL", "\xc0\x80", kFffd + kFffd},
      {"C1 is always overlong", "\xc1\xbf", kFffd + kFffd},
      {"an overlong three-byte form", "\xe0\x80\xaf", kFffd + kFffd + kFffd},
      {"an overlong four-byte form", "\xf0\x80\x80\xaf", kFffd + kFffd + kFffd + kFffd},
      {"a high surrogate encoded in UTF-8", "\xed\xa0\x80", kFffd + kFffd + kFffd},
      {"a low surrogate encoded in UTF-8", "\xed\xbf\xbf", kFffd + kFffd + kFffd},
      {"a surrogate pair encoded as two characters (CESU-8)", "\xed\xa0\xbd\xed\xb8\x80",
       Repeat(kFffd, 6)},
      {"a code point above U+10FFFF", "\xf4\x90\x80\x80", Repeat(kFffd, 4)},
      {"five- and six-byte forms", "\xf8\x88\x80\x80\x80", Repeat(kFffd, 5)},
      {"a lead byte and its valid continuation cut short go as one",
       "\xe2\x94"
       "x",
       kFffd + "x"},
      {"a four-byte lead cut short at the end", "ok\xf0\x9f\x98", "ok" + kFffd},
      {"a lead followed by a new character", "\xc3\xe2\x94\x80", kFffd + "\xe2\x94\x80"},
      {"a lead followed by NUL keeps the NUL", "\xc3\0x"s, kFffd + "\0x"s},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK_FALSE(IsValidUtf8(c.in));
    const std::string out = ToValidUtf8(c.in);
    CHECK(out == c.out);
    CHECK(IsValidUtf8(out));
  }
}

TEST_CASE("the result is what nlohmann's replace handler writes and a strict parser takes",
          "[utf8]") {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const std::string hostile = all_bytes + "\xe2\x94" + all_bytes + "\xf0\x9f\x98\x80\xed\xa0\x80";
  const std::string valid = ToValidUtf8(hostile);
  const nlohmann::json as_is = hostile;
  const nlohmann::json made_valid = valid;
  CHECK(as_is.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) == made_valid.dump());
  CHECK_THROWS(as_is.dump());
  CHECK_NOTHROW(nlohmann::json::parse(made_valid.dump()));
  CHECK(nlohmann::json::parse(made_valid.dump()).get<std::string>() == valid);
}

TEST_CASE("a MiB of random-looking bytes without a newline is made valid in one pass", "[utf8]") {
  std::string noise(1 << 20, '\0');
  uint32_t state = 12345;
  for (char& c : noise) {
    state = state * 1664525u + 1013904223u;  // a fixed LCG: the same bytes every run
    c = static_cast<char>(state >> 24);
  }
  const std::string valid = ToValidUtf8(noise);
  CHECK(IsValidUtf8(valid));
  CHECK(valid.size() >= noise.size());
  CHECK(valid.size() <= 3 * noise.size());
  // Valid input of the same size passes as it is.
  const std::string line = Repeat("\xe2\x94\x80", (1 << 20) / 3);
  CHECK(ToValidUtf8(line) == line);
  // The worst case grows three times, and no more.
  CHECK(ToValidUtf8(std::string(1 << 20, '\xff')).size() == 3u << 20);
}

TEST_CASE("a prefix is cut at a character boundary, never inside one", "[utf8]") {
  const std::string dashes = Repeat("\xe2\x94\x80", 10);  // 30 bytes
  CHECK(Utf8Prefix(dashes, 30) == dashes);
  CHECK(Utf8Prefix(dashes, 29) == Repeat("\xe2\x94\x80", 9));
  CHECK(Utf8Prefix(dashes, 28) == Repeat("\xe2\x94\x80", 9));
  CHECK(Utf8Prefix(dashes, 27) == Repeat("\xe2\x94\x80", 9));
  CHECK(Utf8Prefix(dashes, 2).empty());
  CHECK(Utf8Prefix(dashes, 0).empty());
  // Made valid first: the bound holds for the replacement characters too.
  CHECK(Utf8Prefix(std::string(100, '\xff'), 10) == Repeat(kFffd, 3));
  CHECK(Utf8Prefix("short", 100) == "short");
  CHECK(Utf8Prefix("a\0b"s, 2) == "a\0"s);
}

}  // namespace
}  // namespace llmbox::common
