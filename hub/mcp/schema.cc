// hub/mcp/schema.cc
#include "hub/mcp/schema.h"

#include <string>

namespace llmbox::hub::mcp {
namespace {

using nlohmann::json;

std::string At(const std::string& path) { return path.empty() ? "arguments" : path; }

bool HasType(const json& value, const std::string& type) {
  if (type == "object") return value.is_object();
  if (type == "string") return value.is_string();
  if (type == "integer") {
    if (value.is_number_integer()) return true;
    // 3.0 is an integer in JSON Schema.
    return value.is_number_float() &&
           value.get<double>() == static_cast<double>(static_cast<long long>(value.get<double>()));
  }
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "array") return value.is_array();
  if (type == "null") return value.is_null();
  return false;
}

std::optional<std::string> Check(const json& schema, const json& value, const std::string& path) {
  if (!schema.is_object()) return std::nullopt;
  if (auto it = schema.find("type"); it != schema.end() && it->is_string()) {
    if (!HasType(value, it->get<std::string>())) {
      return At(path) + ": must be " +
             (it->get<std::string>() == "object" || it->get<std::string>() == "array" ||
                      it->get<std::string>() == "integer"
                  ? "an "
                  : "a ") +
             it->get<std::string>();
    }
  }
  if (auto it = schema.find("enum"); it != schema.end() && it->is_array()) {
    bool found = false;
    for (const auto& option : *it) found = found || option == value;
    if (!found) return At(path) + ": must be one of " + it->dump();
  }
  if (value.is_string()) {
    const auto size = value.get_ref<const std::string&>().size();
    if (auto it = schema.find("minLength");
        it != schema.end() && it->is_number_integer() && size < it->get<std::size_t>()) {
      return At(path) + ": must be at least " + it->dump() + " characters";
    }
    if (auto it = schema.find("maxLength");
        it != schema.end() && it->is_number_integer() && size > it->get<std::size_t>()) {
      return At(path) + ": must be at most " + it->dump() + " characters";
    }
  }
  if (value.is_number()) {
    const double number = value.get<double>();
    if (auto it = schema.find("minimum");
        it != schema.end() && it->is_number() && number < it->get<double>()) {
      return At(path) + ": must be at least " + it->dump();
    }
    if (auto it = schema.find("maximum");
        it != schema.end() && it->is_number() && number > it->get<double>()) {
      return At(path) + ": must be at most " + it->dump();
    }
  }
  if (value.is_array()) {
    if (auto it = schema.find("minItems");
        it != schema.end() && it->is_number_integer() && value.size() < it->get<std::size_t>()) {
      return At(path) + ": must have at least " + it->dump() + " items";
    }
    if (auto it = schema.find("maxItems");
        it != schema.end() && it->is_number_integer() && value.size() > it->get<std::size_t>()) {
      return At(path) + ": must have at most " + it->dump() + " items";
    }
    if (auto items = schema.find("items"); items != schema.end()) {
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (auto problem = Check(*items, value[i], At(path) + "[" + std::to_string(i) + "]")) {
          return problem;
        }
      }
    }
  }
  if (value.is_object()) {
    const auto properties = schema.find("properties");
    if (auto required = schema.find("required"); required != schema.end() && required->is_array()) {
      for (const auto& name : *required) {
        if (name.is_string() && !value.contains(name.get<std::string>())) {
          return (path.empty() ? "" : path + ".") + name.get<std::string>() + ": is required";
        }
      }
    }
    const auto additional = schema.find("additionalProperties");
    const bool closed =
        additional != schema.end() && additional->is_boolean() && !additional->get<bool>();
    for (const auto& [name, member] : value.items()) {
      const std::string member_path = path.empty() ? name : path + "." + name;
      if (properties != schema.end() && properties->is_object() && properties->contains(name)) {
        if (auto problem = Check((*properties)[name], member, member_path)) return problem;
      } else if (closed) {
        return member_path + ": is not a known argument";
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> SchemaProblem(const nlohmann::json& schema,
                                         const nlohmann::json& value) {
  return Check(schema, value, "");
}

}  // namespace llmbox::hub::mcp
