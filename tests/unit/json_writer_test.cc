// The fast JSON writer must produce exactly what nlohmann's dump() with error_handler_t::replace
// produces, for every kind of value and every awkward byte.
#include "hub/mcp/json_writer.h"

#include <string>

#include <catch2/catch.hpp>

namespace llmbox::hub::mcp {
namespace {

using nlohmann::json;

std::string Reference(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

TEST_CASE("the JSON writer matches nlohmann's dump on ordinary values", "[json]") {
  const json value = {{"boxes", json::array({{{"box_id", "a"}, {"n", 1}, {"ok", true}},
                                             {{"box_id", "b"}, {"n", -7}, {"none", nullptr}}})},
                      {"big", std::uint64_t{18446744073709551615ull}},
                      {"small", std::int64_t{-9223372036854775807ll}},
                      {"float", 0.1},
                      {"empty_object", json::object()},
                      {"empty_array", json::array()},
                      {"text", "line 1\nline 2\t\"quoted\" \\ back"}};
  CHECK(WriteJson(value) == Reference(value));
}

TEST_CASE("the JSON writer escapes control bytes and keeps valid UTF-8", "[json]") {
  std::string all_ascii;
  for (int c = 0; c < 128; ++c) all_ascii.push_back(static_cast<char>(c));
  CHECK(WriteJson(all_ascii) == Reference(all_ascii));
  const std::string unicode = "caf\xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x93\xa6 \xef\xbf\xbd";
  CHECK(WriteJson(unicode) == Reference(unicode));
}

TEST_CASE("the JSON writer replaces invalid UTF-8 exactly as nlohmann does", "[json]") {
  const std::string cases[] = {
      "\xff",  // never valid
      "a\x80"
      "b",                 // lone continuation
      "\xc3",              // truncated at the end
      "\xc3(",             // bad continuation
      "\xe2\x80",          // truncated three-byte
      "\xc0\xaf",          // overlong
      "\xed\xa0\x80",      // surrogate
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "ok \xe2\x82\xac then \xfe\xfe end",
      "\xe2\x80(",         // truncated in the middle
      "\xf0\x9f\x93(x",    // four-byte missing its last byte
      "\xe0\x80\x80",      // overlong three-byte
      "\xf0\x80\x80\x80",  // overlong four-byte
  };
  for (const std::string& text : cases) {
    CHECK(WriteJson(text) == Reference(text));
  }
  // Every two-byte string: the whole neighbourhood of lead and continuation bytes.
  int mismatches = 0;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string text = {static_cast<char>(a), static_cast<char>(b), 'z'};
      if (WriteJson(text) != Reference(text)) ++mismatches;
    }
  }
  // Three- and four-byte leads with second and third bytes around the continuation range.
  for (int a = 0xe0; a <= 0xf5; ++a) {
    for (int b = 0x70; b <= 0xc0; ++b) {
      for (int c = 0x70; c <= 0xc0; ++c) {
        const std::string text = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                                  '\x80', 'z'};
        if (WriteJson(text) != Reference(text)) ++mismatches;
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("escaping a serialized value round-trips", "[json]") {
  const json value = {{"logs", "Opening browser\n\x1b[1mbold\x1b[0m \"q\""}, {"n", 3}};
  std::string escaped;
  AppendJsonString(escaped, WriteJson(value));
  CHECK(json::parse(json::parse(escaped).get<std::string>()) == value);
}

}  // namespace
}  // namespace llmbox::hub::mcp
