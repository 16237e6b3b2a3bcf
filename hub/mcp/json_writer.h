// hub/mcp/json_writer.h
//
// A compact JSON writer for our replies, several times faster than nlohmann's dump() on large
// results (a list of 1,000 boxes is ~270 KB, written twice: as structuredContent and escaped
// inside the text block). Output is the same as
// `value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)`: bytes that are not
// valid UTF-8 become U+FFFD, so no input can make it throw or emit invalid JSON.
//
//   std::string text = WriteJson(result);
//   AppendJsonString(out, text);   // "..." with escapes
//
// Thread-safe (pure functions). Recursion follows the value's nesting: only for values we
// build ourselves, never for parsed client input.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace llmbox::hub::mcp {

void AppendJsonString(std::string& out, std::string_view text);
void AppendJson(std::string& out, const nlohmann::json& value);
std::string WriteJson(const nlohmann::json& value);

}  // namespace llmbox::hub::mcp
