#include "common/join_token.h"

#include "common/pki.h"
#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::common {
namespace {

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string FormatJoinToken(const JoinToken& token) {
  return std::string(kJoinTokenPrefix) + token.secret + "." + token.ca_sha256;
}

[[nodiscard]] absl::StatusOr<JoinToken> ParseJoinToken(std::string_view text) {
  const absl::Status malformed = absl::InvalidArgumentError(
      "the join token is malformed: expected llmboxjoin1.<secret>.<CA fingerprint> as printed "
      "by `llmbox-hub spoke token create` (copy it whole)");
  if (text.substr(0, kJoinTokenPrefix.size()) != kJoinTokenPrefix) return malformed;
  text.remove_prefix(kJoinTokenPrefix.size());
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) return malformed;
  JoinToken token{.secret = std::string(text.substr(0, dot)),
                  .ca_sha256 = std::string(text.substr(dot + 1))};
  auto decoded = Base64UrlDecode(token.secret);
  if (!decoded.ok() || decoded->size() != 32) return malformed;
  if (token.ca_sha256.size() != 64 || !IsLowerHex(token.ca_sha256)) return malformed;
  return token;
}

[[nodiscard]] absl::Status CheckCaFingerprint(std::string_view ca_pem,
                                              std::string_view expected_sha256) {
  LLMBOX_ASSIGN_OR_RETURN(CertInfo info, InspectCert(ca_pem));
  if (!ConstantTimeEquals(info.sha256_fingerprint, expected_sha256)) {
    return absl::PermissionDeniedError(
        "the hub's cluster CA has fingerprint sha256:" + info.sha256_fingerprint +
        " but the join token pins sha256:" + std::string(expected_sha256) +
        ": this is not the hub that made the token (wrong address, or someone in between); "
        "nothing was sent");
  }
  if (!info.is_ca) {
    return absl::PermissionDeniedError("the certificate the hub sent is not a CA certificate");
  }
  return absl::OkStatus();
}

}  // namespace llmbox::common
