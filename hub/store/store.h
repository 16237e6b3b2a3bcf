// hub/store/store.h
//
// The hub's durable registry: boxes (with their activation token, by hash only, and the
// authorize URL, which never leaves the hub), MCP API keys (by hash only), spoke join tokens
// (by hash only) and the spokes that joined. SqliteStore is
// the implementation; a PostgreSQL one can fill the same interface later.
//
//   LLMBOX_ASSIGN_OR_RETURN(auto store, SqliteStore::Open("/var/lib/llmbox-hub/hub.db"));
//   LLMBOX_RETURN_IF_ERROR(store->InsertBox(record));   // AlreadyExists: box id taken
//
// Box ids are unique case-insensitively ("Demo" and "demo" are the same box); lookups by box id
// are case-insensitive too. Timestamps are Unix milliseconds.
//
// Thread-safe: any method may be called from many threads. Several processes may open the
// same file (the CLI revokes a key while the hub serves); a committed change is visible to
// the other process's next call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmbox::hub::store {

// Phases as the hub reports them (the MCP field `status`).
enum class Phase { kCreating, kPending, kActivating, kReady, kError, kGone };
std::string_view PhaseName(Phase phase);  // "creating", "pending", ..., "gone"
std::optional<Phase> ParsePhase(std::string_view name);

struct BoxRecord {
  std::string box_id;        // as the creator wrote it
  std::string spoke;         // spoke name ("local" for the in-process one)
  std::string container_id;  // empty until the spoke made it
  std::string image;
  std::string description;
  Phase phase = Phase::kCreating;
  std::string session_url;    // once ready
  std::string last_error;     // the latest failure, human-readable
  std::string authorize_url;  // secret-ish: server-side only, never in MCP output
  std::string token_hash;     // lowercase hex SHA-256 of the activation token; unique
  std::string created_by;     // the creator's display name (API key name), "" when auth is off
  // The id of the principal the box belongs to (auth::Principal::id(): "key:alice",
  // "anonymous"); only it, and admins, see and act on the box. Set at insert; UpdateBox
  // leaves it alone.
  std::string owner;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // activation deadline (0: none)
  std::int64_t updated_at_ms = 0;
  std::uint32_t activation_attempts = 0;
  // Who signed in to activate it (the verified email, when the activation page is gated by
  // OIDC); "" until then. UpdateBox leaves it alone: only ClaimBox sets it.
  std::string activation_owner;
};

// What is remembered of a destroyed box: enough for its activation link to say so.
struct DestroyedBox {
  std::string box_id;
  std::int64_t destroyed_at_ms = 0;
};
inline constexpr std::int64_t kDestroyedRetentionMs = 30LL * 24 * 3600 * 1000;

struct BoxFilter {
  std::optional<Phase> phase;
  std::optional<std::string> spoke;
  std::optional<std::string> owner;  // a principal id: only its boxes (filtered by an index)
};

struct ApiKeyRecord {
  std::string name;  // unique, [a-z0-9][a-z0-9-_.]{0,63}
  std::string hash;  // lowercase hex SHA-256 of the key; unique
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> revoked_at_ms;
  std::optional<std::int64_t> last_used_at_ms;
  bool admin = false;  // the admin role (apikey create --admin): acts on every box
};

struct JoinTokenRecord {
  std::string hash;  // lowercase hex SHA-256 of the token's secret; unique
  std::string name;  // the spoke name it enrolls
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::optional<std::int64_t> used_at_ms;
};

// A spoke that joined through the enrollment service.
struct SpokeRecord {
  std::string name;               // unique; its identity is spiffe://llmbox/spoke/<name>
  std::string advertise_address;  // host:port the hub dials
  std::string cert_sha256;        // fingerprint of its current certificate (Renew needs it)
  std::int64_t not_after_ms = 0;  // when that certificate expires
  std::map<std::string, std::string> labels;
  std::string version;  // llmbox version the spoke reported
  std::int64_t joined_at_ms = 0;
  std::int64_t renewed_at_ms = 0;  // = joined_at_ms until the first Renew
};

class Store {
 public:
  virtual ~Store() = default;

  // Boxes.
  // AlreadyExists (naming the existing box id) when the id is taken case-insensitively or the
  // token hash is reused.
  [[nodiscard]] virtual absl::Status InsertBox(const BoxRecord& box) = 0;
  // Replaces every field of the box with this id (case-insensitive). NotFound when absent.
  [[nodiscard]] virtual absl::Status UpdateBox(const BoxRecord& box) = 0;
  [[nodiscard]] virtual absl::StatusOr<BoxRecord> GetBox(std::string_view box_id) = 0;
  [[nodiscard]] virtual absl::StatusOr<BoxRecord> GetBoxByTokenHash(std::string_view hash) = 0;
  // Ordered by created_at, then box id. With filter.owner, only that owner's rows are read.
  [[nodiscard]] virtual absl::StatusOr<std::vector<BoxRecord>> ListBoxes(
      const BoxFilter& filter) = 0;
  // How many boxes `owner` has in any phase but gone (the quota's boxes alive; by the owner
  // index, without reading the rows out).
  [[nodiscard]] virtual absl::StatusOr<std::int64_t> CountLiveBoxes(std::string_view owner) = 0;
  // NotFound when absent.
  [[nodiscard]] virtual absl::Status DeleteBox(std::string_view box_id) = 0;
  // Deletes the box (NotFound when absent) and, in the same transaction, remembers its
  // activation token as destroyed at `now_ms`, so its link can say so rather than look
  // unknown. Remembered tokens older than kDestroyedRetentionMs are pruned here.
  [[nodiscard]] virtual absl::Status DestroyBox(std::string_view box_id, std::int64_t now_ms) = 0;
  // Makes `owner` the box's activation owner unless it has one; returns the owner it has
  // now (`owner`, or whoever claimed it first). NotFound when absent.
  [[nodiscard]] virtual absl::StatusOr<std::string> ClaimBox(std::string_view box_id,
                                                             std::string_view owner) = 0;
  // The destroyed box that held this token hash; NotFound when none (or pruned).
  [[nodiscard]] virtual absl::StatusOr<DestroyedBox> FindDestroyedBox(std::string_view hash) = 0;

  // API keys.
  // AlreadyExists when the name (or hash) is taken, even by a revoked key.
  [[nodiscard]] virtual absl::Status InsertApiKey(const ApiKeyRecord& key) = 0;
  // Ordered by name, revoked keys included.
  [[nodiscard]] virtual absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() = 0;
  // Sets revoked_at_ms. NotFound when no key has this name; revoking twice is OK.
  [[nodiscard]] virtual absl::Status RevokeApiKey(std::string_view name, std::int64_t now_ms) = 0;
  // The live (not revoked) key with this hash; NotFound otherwise.
  [[nodiscard]] virtual absl::StatusOr<ApiKeyRecord> FindLiveApiKey(std::string_view hash) = 0;
  // Best effort, may be coarse (at most one write a minute per key is fine).
  [[nodiscard]] virtual absl::Status TouchApiKey(std::string_view name, std::int64_t now_ms) = 0;

  // Join tokens.
  // AlreadyExists when the hash is taken.
  [[nodiscard]] virtual absl::Status InsertJoinToken(const JoinTokenRecord& token) = 0;
  // NotFound when no token has this hash.
  [[nodiscard]] virtual absl::StatusOr<JoinTokenRecord> GetJoinToken(std::string_view hash) = 0;
  // Ordered by created_at; used and expired tokens included.
  [[nodiscard]] virtual absl::StatusOr<std::vector<JoinTokenRecord>> ListJoinTokens() = 0;
  // In one transaction: marks the token with this hash used and stores `spoke` (replacing a
  // spoke of the same name, for a re-join). Unauthenticated, saying which, when the token is
  // unknown, already used or expired at `now_ms`, or enrolls another name than spoke.name;
  // then nothing changes. Two concurrent calls with one token: exactly one succeeds.
  [[nodiscard]] virtual absl::Status ConsumeJoinToken(std::string_view hash, std::int64_t now_ms,
                                                      const SpokeRecord& spoke) = 0;

  // Spokes.
  // NotFound when absent.
  [[nodiscard]] virtual absl::StatusOr<SpokeRecord> GetSpoke(std::string_view name) = 0;
  // Ordered by name.
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpokeRecord>> ListSpokes() = 0;
  // Replaces the certificate fields (cert_sha256, not_after_ms, renewed_at_ms) of the spoke
  // `spoke.name`, only if its current fingerprint is still `previous_sha256`. NotFound when
  // the spoke is absent, FailedPrecondition when its certificate changed meanwhile.
  [[nodiscard]] virtual absl::Status RenewSpoke(const SpokeRecord& spoke,
                                                std::string_view previous_sha256) = 0;
  // Forgets the spoke (its certificate can no longer be renewed). NotFound when absent.
  [[nodiscard]] virtual absl::Status DeleteSpoke(std::string_view name) = 0;

  // MCP sessions a client ended (DELETE), by the SHA-256 hex of the session id, kept until
  // `expires_at_ms` (when the id would be refused anyway), so an ended id stays ended across
  // a restart. Recording one twice is fine.
  [[nodiscard]] virtual absl::Status EndMcpSession(std::string_view id_hash,
                                                   std::int64_t expires_at_ms) = 0;
  // The hashes of ended sessions not expired at `now_ms`; expired ones are dropped.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> ListEndedMcpSessions(
      std::int64_t now_ms) = 0;
};

}  // namespace llmbox::hub::store
