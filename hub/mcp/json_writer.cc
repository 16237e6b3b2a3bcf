// hub/mcp/json_writer.cc
#include "hub/mcp/json_writer.h"

#include <charconv>
#include <cstdint>

#include "common/utf8.h"

namespace llmbox::hub::mcp {
namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes copied as they are
  std::size_t i = 0;
  auto flush = [&] { out.append(text.data() + run, i - run); };
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      std::size_t invalid = 0;
      if (const std::size_t length = common::Utf8CharLength(text, i, &invalid); length > 0) {
        i += length;
        continue;
      }
      flush();
      out.append(common::kReplacementCharacter);  // as nlohmann's error_handler_t::replace
      i += invalid;
      run = i;
      continue;
    }
    flush();
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
    run = ++i;
  }
  flush();
  out.push_back('"');
}

void AppendJson(std::string& out, const nlohmann::json& value) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : value.items()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(out, key);
        out.push_back(':');
        AppendJson(out, member);
      }
      out.push_back('}');
      return;
    }
    case Type::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& element : value) {
        if (!first) out.push_back(',');
        first = false;
        AppendJson(out, element);
      }
      out.push_back(']');
      return;
    }
    case Type::string:
      AppendJsonString(out, value.get_ref<const std::string&>());
      return;
    case Type::boolean:
      out.append(value.get<bool>() ? "true" : "false");
      return;
    case Type::number_integer:
    case Type::number_unsigned: {
      char buffer[24];
      auto [end, ec] =
          value.is_number_unsigned()
              ? std::to_chars(buffer, buffer + sizeof buffer, value.get<std::uint64_t>())
              : std::to_chars(buffer, buffer + sizeof buffer, value.get<std::int64_t>());
      out.append(buffer, end);
      return;
    }
    default:
      // null, floats (nlohmann's shortest round-trip form), binary: rare in our replies.
      out.append(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

std::string WriteJson(const nlohmann::json& value) {
  std::string out;
  AppendJson(out, value);
  return out;
}

}  // namespace llmbox::hub::mcp
