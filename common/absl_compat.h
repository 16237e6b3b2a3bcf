// common/absl_compat.h
//
// Debian 12's Abseil is built without aliasing absl::string_view to std::string_view, so our
// std::string_view APIs need an explicit conversion at Abseil calls:
//
//   absl::StrCat("invalid ", AsAbsl(what), ": ", AsAbsl(why));
//
// Header-only; no state.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace llmbox::common {

inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view AsStd(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace llmbox::common
