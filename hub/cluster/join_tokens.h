// hub/cluster/join_tokens.h
//
// Making join tokens (`llmbox-hub spoke token create`): a fresh 256-bit secret, of which the
// Store keeps only the SHA-256, plus the cluster CA's fingerprint (common/join_token.h).
//
//   LLMBOX_ASSIGN_OR_RETURN(std::string token,
//       IssueJoinToken(store, pki.ca_sha256, "worker-1", std::chrono::hours(1), now_ms));
//   // print `token` once; it cannot be shown again
//
// Thread-safe as the Store is.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "hub/store/store.h"

namespace llmbox::hub::cluster {

inline constexpr std::chrono::hours kMaxJoinTokenTtl{24 * 7};

// InvalidArgument for a bad name (see common::ValidateName; "local" is the hub's in-process
// spoke) or a ttl outside 1s..7 days; AlreadyExists when a spoke of that name has joined
// (remove it first to enroll it again).
[[nodiscard]] absl::StatusOr<std::string> IssueJoinToken(store::Store& store,
                                                         std::string_view ca_sha256,
                                                         std::string_view name,
                                                         std::chrono::milliseconds ttl,
                                                         std::int64_t now_ms);

}  // namespace llmbox::hub::cluster
