// common/validate.h
//
// Validation of the identifiers that cross trust boundaries: box ids (which become
// hostnames, labels and container names), names (spokes, API keys, join tokens) and
// activation codes.
//
//   LLMBOX_RETURN_IF_ERROR(ValidateBoxId(request.box_id()));
//   std::string key = CanonicalBoxId(request.box_id());  // for case-insensitive uniqueness
//
// Thread-safe; no state.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace llmbox::common {

// A box id is one DNS label: 1-63 characters of [a-z0-9-], not starting or ending with '-'.
// Returns InvalidArgument with a message that quotes the (escaped, shortened) id and says
// which rule it broke.
[[nodiscard]] absl::Status ValidateBoxId(std::string_view box_id);

// The form of a box id under which uniqueness is checked: ASCII lowercase. Callers compare
// ids case-insensitively even though valid ids are lowercase, so ids stored by older or
// foreign code (labels on existing containers) cannot collide with a new one.
[[nodiscard]] std::string CanonicalBoxId(std::string_view box_id);

// A name (spoke, API key, join token): 1-63 characters of [a-z0-9-_.], starting with a
// letter or digit. `what` names the kind in the error ("spoke name").
[[nodiscard]] absl::Status ValidateName(std::string_view name, std::string_view what);

// The longest activation code accepted anywhere (Claude's codes are about 100 bytes).
inline constexpr size_t kMaxActivationCodeBytes = 4096;

// Checks the shape of an activation code: 1-4096 bytes of letters, digits and - _ . ~ #
// (Claude's codes are base64url parts joined by '#'; nothing that could read as a URL when the
// box echoes it). The error says which rule the code broke and never contains the code.
[[nodiscard]] absl::Status ValidateActivationCode(std::string_view code);

// Quotes `text` for an error message: at most `max_chars` characters, control and non-ASCII
// bytes shown as \xNN, so no input can forge or hide parts of a message or a log line.
[[nodiscard]] std::string QuoteForMessage(std::string_view text, size_t max_chars = 64);

}  // namespace llmbox::common
