#include "common/validate.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "common/absl_compat.h"

namespace llmbox::common {
namespace {

constexpr size_t kMaxLabelLength = 63;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

std::string QuoteForMessage(std::string_view text, size_t max_chars) {
  std::string out = "\"";
  size_t shown = 0;
  for (unsigned char c : text) {
    if (shown == max_chars) {
      absl::StrAppend(&out, "...");
      break;
    }
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
    ++shown;
  }
  out.push_back('"');
  return out;
}

[[nodiscard]] absl::Status ValidateBoxId(std::string_view box_id) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid box id ", QuoteForMessage(box_id), ": ", AsAbsl(why),
        " (a box id is 1-63 lowercase letters, digits or hyphens, not starting or ending with "
        "a hyphen)"));
  };
  if (box_id.empty()) return invalid("it is empty");
  if (box_id.size() > kMaxLabelLength) {
    return invalid(absl::StrCat("it is ", box_id.size(), " characters long"));
  }
  for (size_t i = 0; i < box_id.size(); ++i) {
    const char c = box_id[i];
    if (c >= 'A' && c <= 'Z') return invalid("it has an uppercase letter");
    if (!IsLowerAlnum(c) && c != '-') {
      return invalid(absl::StrFormat("character %d is not allowed", static_cast<int>(i) + 1));
    }
  }
  if (box_id.front() == '-' || box_id.back() == '-') {
    return invalid("it starts or ends with a hyphen");
  }
  return absl::OkStatus();
}

std::string CanonicalBoxId(std::string_view box_id) {
  return absl::AsciiStrToLower(AsAbsl(box_id));
}

[[nodiscard]] absl::Status ValidateActivationCode(std::string_view code) {
  if (code.empty()) return absl::InvalidArgumentError("activation code is empty");
  if (code.size() > kMaxActivationCodeBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("activation code is longer than ", kMaxActivationCodeBytes, " bytes"));
  }
  for (char c : code) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("activation code contains control characters");
    }
  }
  for (char c : code) {
    if (c == ' ' || static_cast<unsigned char>(c) > 0x7f) {
      return absl::InvalidArgumentError(
          "activation code may only contain printable ASCII without spaces");
    }
  }
  // Claude's codes are base64url parts joined by '#'. Nothing else: the box echoes the code on
  // its console, so a code that could read as a URL (':' and '/') could pose as the login's
  // authorize URL or the session URL printed after it.
  for (char c : code) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != '~' && c != '#') {
      return absl::InvalidArgumentError(
          "activation code may only contain letters, digits and - _ . ~ # (paste the code the "
          "sign-in page shows)");
    }
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ValidateName(std::string_view name, std::string_view what) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid ", AsAbsl(what), " ", QuoteForMessage(name), ": ", AsAbsl(why), " (a ",
        AsAbsl(what),
        " is 1-63 of lowercase letters, digits, '-', '_' or '.', starting with a letter or "
        "digit)"));
  };
  if (name.empty()) return invalid("it is empty");
  if (name.size() > kMaxLabelLength) {
    return invalid(absl::StrCat("it is ", name.size(), " characters long"));
  }
  if (!IsLowerAlnum(name.front())) return invalid("it must start with a letter or digit");
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!IsLowerAlnum(c) && c != '-' && c != '_' && c != '.') {
      return invalid(absl::StrFormat("character %d is not allowed", static_cast<int>(i) + 1));
    }
  }
  return absl::OkStatus();
}

}  // namespace llmbox::common
