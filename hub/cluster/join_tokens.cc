// hub/cluster/join_tokens.cc
#include "hub/cluster/join_tokens.h"

#include "common/join_token.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::hub::cluster {

[[nodiscard]] absl::StatusOr<std::string> IssueJoinToken(store::Store& store,
                                                         std::string_view ca_sha256,
                                                         std::string_view name,
                                                         std::chrono::milliseconds ttl,
                                                         std::int64_t now_ms) {
  LLMBOX_RETURN_IF_ERROR(common::ValidateName(name, "spoke name"));
  if (name == "local") {
    return absl::InvalidArgumentError(
        "spoke name \"local\" is the hub's in-process spoke: choose another name");
  }
  if (ttl < std::chrono::seconds(1) || ttl > kMaxJoinTokenTtl) {
    return absl::InvalidArgumentError("--ttl must be 1s..168h (a join token is short-lived)");
  }
  if (store.GetSpoke(name).ok()) {
    return absl::AlreadyExistsError("spoke " + common::QuoteForMessage(name) +
                                    " has already joined: `llmbox-hub spoke remove --name " +
                                    std::string(name) + "` first to enroll it again");
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string secret, common::RandomToken(32));
  LLMBOX_RETURN_IF_ERROR(store.InsertJoinToken({.hash = common::Sha256Hex(secret),
                                                .name = std::string(name),
                                                .created_at_ms = now_ms,
                                                .expires_at_ms = now_ms + ttl.count()}));
  return common::FormatJoinToken({.secret = secret, .ca_sha256 = std::string(ca_sha256)});
}

}  // namespace llmbox::hub::cluster
