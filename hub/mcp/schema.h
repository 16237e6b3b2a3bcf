// hub/mcp/schema.h
//
// Checks tool arguments against the small JSON Schema subset our tools use, so a tool never
// sees arguments of the wrong shape:
//   type (object, string, integer, number, boolean, array), properties, required,
//   additionalProperties: false, items, enum, minLength, maxLength, minimum, maximum,
//   minItems, maxItems.
// Other keywords (description, title, default, examples, pattern, ...) are ignored.
//
//   std::optional<std::string> problem = SchemaProblem(tool.input_schema, arguments);
//   if (problem) return ToolResult::Error("invalid arguments: " + *problem);
//
// Thread-safe (pure function).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace llmbox::hub::mcp {

// nullopt when `value` conforms; otherwise the first problem, naming the path
// ("command[2]: must be a string").
std::optional<std::string> SchemaProblem(const nlohmann::json& schema, const nlohmann::json& value);

}  // namespace llmbox::hub::mcp
