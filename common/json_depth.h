// common/json_depth.h
//
// How deep a JSON text nests, found by a linear scan before anything parses it, so a hostile
// body of 100,000 '[' is refused in one pass without recursion (nlohmann's parser and
// destructor, and every recursive walk of the result, would otherwise pay for each level).
//
//   if (common::JsonDeeperThan(body, 16)) return InvalidArgument("JSON nested too deep");
//   nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
//
// Thread-safe (a pure function).
#pragma once

#include <cstddef>
#include <string_view>

namespace llmbox::common {

// Whether `text` nests arrays and objects deeper than `limit` levels, counting brackets
// outside strings. Linear; stops at the first level past `limit`. Invalid JSON is counted as
// far as it goes (the parser refuses it afterwards).
bool JsonDeeperThan(std::string_view text, std::size_t limit);

}  // namespace llmbox::common
