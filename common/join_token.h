// common/join_token.h
//
// The one-time join token a spoke enrolls with. It carries a 256-bit secret (the hub keeps
// only its SHA-256) and the SHA-256 fingerprint of the cluster CA's certificate, so the spoke
// can pin the hub's CA without trusting anything else (like kubeadm's discovery hash):
//
//   llmboxjoin1.<secret: 43 chars base64url>.<CA fingerprint: 64 lowercase hex>
//
//   LLMBOX_ASSIGN_OR_RETURN(JoinToken token, ParseJoinToken(flag_value));
//   LLMBOX_RETURN_IF_ERROR(CheckCaFingerprint(ca_pem_from_the_hub, token.ca_sha256));
//
// The secret never goes to a log; error messages here never quote the token. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace llmbox::common {

inline constexpr std::string_view kJoinTokenPrefix = "llmboxjoin1.";

struct JoinToken {
  std::string secret;     // base64url, 43 characters
  std::string ca_sha256;  // lowercase hex SHA-256 of the CA certificate's DER
};

std::string FormatJoinToken(const JoinToken& token);

// InvalidArgument (saying what is malformed, never quoting the token) for anything that is
// not a join token as printed by `llmbox-hub spoke token create`.
[[nodiscard]] absl::StatusOr<JoinToken> ParseJoinToken(std::string_view text);

// OK when `ca_pem` is one CA certificate whose SHA-256 fingerprint is `expected_sha256`
// (compared in constant time). PermissionDenied naming both fingerprints otherwise:
// whoever answered is not the hub the token came from.
[[nodiscard]] absl::Status CheckCaFingerprint(std::string_view ca_pem,
                                              std::string_view expected_sha256);

}  // namespace llmbox::common
