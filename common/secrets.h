// common/secrets.h
//
// Secret tokens and the hashing around them: activation tokens, join tokens, API keys, CSRF
// tokens and session-id signatures all come from here.
//
//   absl::StatusOr<std::string> token = RandomToken(32);   // 43 chars of base64url
//   std::string stored = Sha256Hex(*token);                // keep only the hash
//   if (ConstantTimeEquals(Sha256Hex(presented), stored)) { ... }
//   std::string mac = HmacSha256Hex(key, "session:" + id);
//
// Thread-safe: every function may be called from any thread. Tokens come from OpenSSL's
// CSPRNG (RAND_bytes); a CSPRNG failure is an Internal error, never a weaker token.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace llmbox::common {

// `num_bytes` random bytes from the CSPRNG, encoded as unpadded base64url. 32 bytes gives
// the 256-bit tokens llmbox uses everywhere (43 characters). Errors: InvalidArgument for
// 0 or more than 1024 bytes; Internal when the CSPRNG fails.
[[nodiscard]] absl::StatusOr<std::string> RandomToken(size_t num_bytes);

// Unpadded base64url (RFC 4648 §5) of arbitrary bytes, and its inverse. Decoding rejects
// padding, whitespace and characters outside the alphabet.
[[nodiscard]] std::string Base64UrlEncode(std::string_view bytes);
[[nodiscard]] absl::StatusOr<std::string> Base64UrlDecode(std::string_view text);

// Lowercase hex of bytes.
[[nodiscard]] std::string HexEncode(std::string_view bytes);

// SHA-256 of `data`: raw 32 bytes, or 64 lowercase hex characters.
[[nodiscard]] std::string Sha256(std::string_view data);
[[nodiscard]] std::string Sha256Hex(std::string_view data);

// HMAC-SHA-256 of `data` under `key`: raw 32 bytes, or 64 lowercase hex characters.
[[nodiscard]] std::string HmacSha256(std::string_view key, std::string_view data);
[[nodiscard]] std::string HmacSha256Hex(std::string_view key, std::string_view data);

// The credential of an Authorization header value "Bearer <credential>" (the scheme in any
// case, one space, at least one byte after it); nullopt for anything else.
[[nodiscard]] std::optional<std::string_view> BearerCredential(std::string_view authorization);

// Compares two strings in time that depends only on their lengths, never on where they
// first differ. Use it for every comparison that involves a secret or its hash.
[[nodiscard]] bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace llmbox::common
