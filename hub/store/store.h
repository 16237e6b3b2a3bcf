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

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
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
  // The owner's verified email (auth::Principal::verified_email: people signed in through
  // OAuth), "" when it has none. With sign-in gating, only that person may activate the box.
  // Set at insert; UpdateBox leaves it alone.
  std::string owner_email;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // activation deadline (0: none)
  std::int64_t updated_at_ms = 0;
  std::uint32_t activation_attempts = 0;
  // Who signed in to activate it (the verified email, when the activation page is gated by
  // OIDC); "" until then. UpdateBox leaves it alone: only ClaimBox sets it.
  std::string activation_owner;
  // When a destroy was asked for while the box's spoke could not be reached (destroy_llmbox
  // then answers "queued"), or an operator's `spoke drain --destroy-pending` chose it: the hub
  // completes it when the spoke answers again. nullopt: none queued. UpdateBox leaves it
  // alone: only QueueDestroy sets it.
  std::optional<std::int64_t> destroy_queued_at_ms;
};

// The record a QueueDestroy was decided on.
struct QueueDestroyMatch {
  std::string token_hash;      // the record's (its identity); empty: any record under the id
  std::optional<Phase> phase;  // set: only while the box is in this phase
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

// A place in the list order (created_at_ms, then the box id lowercased): a page starts after
// it. The position of the last box of a page is where the next page starts.
struct BoxPosition {
  std::int64_t created_at_ms = 0;
  std::string box_key;  // the box id, ASCII-lowercased

  friend bool operator==(const BoxPosition&, const BoxPosition&) = default;
};

inline constexpr std::size_t kMaxBoxPage = 10'000;

// One page of ListBoxesPage: its boxes in list order, and where the next page starts (none
// when this is the last page).
struct BoxPage {
  std::vector<BoxRecord> boxes;
  std::optional<BoxPosition> next;
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

// What an operator set on a spoke (`llmbox-hub spoke cordon|uncordon|drain`), kept by spoke
// name (the in-process spoke "local" included) in the store, so that it holds across restarts
// and the command reaches a hub that is serving. A spoke never set is ready.
enum class SpokeAdminState {
  kReady,     // placement may choose it
  kCordoned,  // no new placements; its boxes live on
  kDraining,  // no new placements; the operator waits for its boxes to go
};
std::string_view SpokeAdminStateName(SpokeAdminState state);  // "ready", "cordoned", "draining"
std::optional<SpokeAdminState> ParseSpokeAdminState(std::string_view name);

struct SpokeAdminRecord {
  std::string name;  // the spoke's name
  SpokeAdminState state = SpokeAdminState::kReady;
  std::string reason;         // the operator's words (--reason); may be empty
  std::int64_t since_ms = 0;  // when this state was set
  // drain --destroy-pending: the hub queues a destroy for every box of the spoke that was
  // never activated (pending), now and as long as the spoke drains.
  bool destroy_pending = false;
};

// What the hub last observed of a spoke (hub/boxes/spoke_monitor.h writes it when it changes),
// kept in the store so that `llmbox-hub spoke list` shows it from another process and a
// degraded spoke stays out of placement across a hub restart.
enum class SpokeCondition {
  kHealthy,      // answers, and its recent creates succeed
  kDegraded,     // answers, but its recent creates fail over the threshold
  kUnreachable,  // its health calls fail to reach it
};
std::string_view SpokeConditionName(SpokeCondition c);  // "healthy", "degraded", "unreachable"
std::optional<SpokeCondition> ParseSpokeCondition(std::string_view name);

struct SpokeConditionRecord {
  std::string name;
  SpokeCondition condition = SpokeCondition::kHealthy;
  std::string reason;              // degraded: the failures; unreachable: the last error
  std::int64_t since_ms = 0;       // when it entered this condition
  std::int64_t checked_at_ms = 0;  // the last health answer (or attempt)
};

// A spoke's live boxes (every phase but gone), for placement and drain progress.
struct SpokeBoxCount {
  std::int64_t boxes = 0;    // creating, pending, activating, ready, error
  std::int64_t pending = 0;  // of which pending (never activated)
};

// How many live boxes one spoke has in one phase (Store::CountBoxesBySpokeAndPhase).
struct SpokePhaseCount {
  std::string spoke;
  Phase phase = Phase::kCreating;
  std::int64_t boxes = 0;
};

// Where the hub is in a spoke's removal journal (the boxes the spoke removed on its own,
// hub/boxes/removal_audit.h): the journal's id and the last sequence number recorded in the
// audit log. Kept by spoke name, so a hub restart records none twice and misses none.
struct RemovalCursor {
  std::string spoke;
  std::string journal_id;
  std::int64_t seq = 0;
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

// OAuth (hub/oauth): clients registered dynamically, grants (one consent each: a principal, a
// client, a scope, a resource), and the codes and tokens of each grant, by SHA-256 hex only.
struct OAuthClientRecord {
  std::string client_id;    // unique
  std::string secret_hash;  // "" for a public client
  std::string name;
  std::vector<std::string> redirect_uris;
  std::string auth_method;      // none | client_secret_post | client_secret_basic
  std::string registered_from;  // the registering client's address key (for operators)
  std::int64_t created_at_ms = 0;
  std::int64_t last_used_at_ms = 0;  // 0: never used
  std::int64_t expires_at_ms = 0;    // 0: never; a never-used client is pruned after this
};

struct OAuthGrantRecord {
  std::string grant_id;  // unique, random
  std::string client_id;
  std::string client_name;     // as shown at consent
  std::string principal_id;    // auth::Principal::id(): "key:alice", "oidc:<iss>#<sub>"
  std::string principal_kind;  // auth::PrincipalKindName
  std::string display_name;
  std::string email;  // the verified email ("" for API keys)
  std::string scope;
  std::string resource;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // the grant's end (options.grant_ttl after consent)
  std::int64_t last_used_at_ms = 0;
  std::optional<std::int64_t> revoked_at_ms;
  std::string revoked_reason;  // "revoked by the client", "code replayed", ...
};

struct OAuthCodeRecord {
  std::string hash;
  std::string grant_id;
  std::string redirect_uri;
  std::string code_challenge;
  std::int64_t expires_at_ms = 0;
  std::optional<std::int64_t> used_at_ms;
};

enum class OAuthTokenKind { kAccess, kRefresh };

struct OAuthTokenRecord {
  std::string hash;
  std::string grant_id;
  OAuthTokenKind kind = OAuthTokenKind::kAccess;
  std::int64_t issued_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::optional<std::int64_t> used_at_ms;  // a refresh token: when it was rotated
};

// A token with its grant, from one lookup.
struct OAuthTokenWithGrant {
  OAuthTokenRecord token;
  OAuthGrantRecord grant;
  // For a grant of an API-key principal: whether that key is live now. True for others.
  bool principal_live = true;
  bool principal_admin = false;  // the key's admin role
};

struct OAuthGrantFilter {
  std::optional<std::string> grant_id;
  std::optional<std::string> principal_id;
  std::optional<std::string> client_id;
  bool include_revoked = false;
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
  // At most `limit` boxes matching `filter` that come after `after` (none: from the start) in
  // ListBoxes' order, read by index (keyset paging): a page costs about the same however many
  // boxes there are, and boxes inserted between pages never make a page repeat or skip a box
  // that was there before. InvalidArgument when limit is not 1..kMaxBoxPage.
  [[nodiscard]] virtual absl::StatusOr<BoxPage> ListBoxesPage(
      const BoxFilter& filter, const std::optional<BoxPosition>& after, std::size_t limit) = 0;
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
  // Records that the box's destroy waits for its spoke (destroy_queued_at_ms = now_ms), unless
  // one is queued already (then the first time stays). Only the record `match` names is
  // queued: a destroy decided on one box never queues another that took its id since, nor (for
  // drain's pending boxes) a box that left the phase it was read in. NotFound when absent or
  // when the box there is not that record any more.
  [[nodiscard]] virtual absl::Status QueueDestroy(std::string_view box_id, std::int64_t now_ms,
                                                  const QueueDestroyMatch& match) = 0;
  // Any record under this id (tests, and tools that read no record first).
  [[nodiscard]] absl::Status QueueDestroy(std::string_view box_id, std::int64_t now_ms) {
    return QueueDestroy(box_id, now_ms, QueueDestroyMatch{});
  }
  // The boxes on `spoke` whose destroy is queued, oldest queued first, at most `limit` (1..
  // kMaxBoxPage), read by index (an indexed partial scan: cheap with none queued).
  [[nodiscard]] virtual absl::StatusOr<std::vector<BoxRecord>> ListQueuedDestroys(
      std::string_view spoke, std::size_t limit) = 0;
  // Live boxes by spoke name (spokes with none are absent): one grouped query on the spoke
  // index, for placement and drain progress at 100,000 boxes.
  [[nodiscard]] virtual absl::StatusOr<std::map<std::string, SpokeBoxCount>>
  CountBoxesBySpoke() = 0;
  // Metrics (/metrics): live boxes (every phase but gone) by spoke and phase, one grouped
  // query read from the (spoke, phase) index alone: cheap at 20,000 boxes.
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpokePhaseCount>>
  CountBoxesBySpokeAndPhase() = 0;

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

  // Spoke states an operator set. Sets (inserts or replaces) the record of spoke.name;
  // setting kReady keeps a row (so `since` says when it was uncordoned). InvalidArgument for
  // an empty name.
  [[nodiscard]] virtual absl::Status SetSpokeAdmin(const SpokeAdminRecord& spoke) = 0;
  // Every record set, ordered by name (spokes never set are absent: ready).
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpokeAdminRecord>> ListSpokeAdmin() = 0;
  // What the hub observed (inserts or replaces the record of condition.name). InvalidArgument
  // for an empty name.
  [[nodiscard]] virtual absl::Status SetSpokeCondition(const SpokeConditionRecord& condition) = 0;
  // Every record, ordered by name (spokes never observed are absent).
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpokeConditionRecord>> ListSpokeConditions() = 0;

  // Removal journals (hub/boxes/removal_audit.h). NotFound when the spoke has none yet.
  [[nodiscard]] virtual absl::StatusOr<RemovalCursor> GetRemovalCursor(std::string_view spoke) = 0;
  // Inserts or replaces the cursor of cursor.spoke. InvalidArgument for an empty name.
  [[nodiscard]] virtual absl::Status SetRemovalCursor(const RemovalCursor& cursor) = 0;

  // MCP sessions a client ended (DELETE), by the SHA-256 hex of the session id, kept until
  // `expires_at_ms` (when the id would be refused anyway), so an ended id stays ended across
  // a restart. Recording one twice is fine.
  [[nodiscard]] virtual absl::Status EndMcpSession(std::string_view id_hash,
                                                   std::int64_t expires_at_ms) = 0;
  // The hashes of ended sessions not expired at `now_ms`; expired ones are dropped.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> ListEndedMcpSessions(
      std::int64_t now_ms) = 0;

  // OAuth clients (dynamically registered). AlreadyExists when the id is taken.
  [[nodiscard]] virtual absl::Status InsertOAuthClient(const OAuthClientRecord& client) = 0;
  // NotFound when absent.
  [[nodiscard]] virtual absl::StatusOr<OAuthClientRecord> GetOAuthClient(
      std::string_view client_id) = 0;
  // Sets last_used_at_ms and clears expires_at_ms. NotFound when absent.
  [[nodiscard]] virtual absl::Status TouchOAuthClient(std::string_view client_id,
                                                      std::int64_t now_ms) = 0;
  // How many clients are registered (for the registration cap).
  [[nodiscard]] virtual absl::StatusOr<std::int64_t> CountOAuthClients() = 0;

  // OAuth grants, codes and tokens.
  // Inserts a new grant and its first code in one transaction.
  [[nodiscard]] virtual absl::Status InsertOAuthGrant(const OAuthGrantRecord& grant,
                                                      const OAuthCodeRecord& code) = 0;
  // In one transaction: the code with this hash, marked used, and `tokens` inserted into its
  // grant (their grant_id is ignored). NotFound for an unknown code; FailedPrecondition when
  // it was used before (then its grant is revoked, reason "authorization code used twice",
  // and nothing is inserted), expired at now_ms, or its grant is revoked or expired. Then
  // `check` sees the code and grant (the caller's client, redirect URI, PKCE and resource
  // checks, inside the transaction): when it fails, the code is spent and its grant revoked
  // (reason "authorization code presented with the wrong client, redirect URI, verifier or
  // resource"), nothing is inserted, and its status is returned. Returns the code and its
  // grant as they were before this call.
  using OAuthCodeCheck =
      absl::FunctionRef<absl::Status(const OAuthCodeRecord&, const OAuthGrantRecord&)>;
  [[nodiscard]] virtual absl::StatusOr<std::pair<OAuthCodeRecord, OAuthGrantRecord>>
  RedeemOAuthCode(std::string_view hash, std::int64_t now_ms, OAuthCodeCheck check,
                  const std::vector<OAuthTokenRecord>& tokens) = 0;
  // In one transaction: the refresh token with this hash, marked used, and `tokens` inserted
  // into its grant (their grant_id is ignored), only if it belongs to `client_id`. NotFound for an
  // unknown token or another client's; FailedPrecondition when it was rotated before (then its
  // grant is revoked, reason "refresh token reused", and nothing is inserted), expired, or its
  // grant is revoked or expired.
  [[nodiscard]] virtual absl::StatusOr<OAuthTokenWithGrant> RotateOAuthRefreshToken(
      std::string_view hash, std::string_view client_id, std::int64_t now_ms,
      const std::vector<OAuthTokenRecord>& tokens) = 0;
  // The access or refresh token with this hash and its grant (expired, used and revoked ones
  // included: the caller decides). NotFound when unknown. One indexed lookup: it runs on every
  // MCP request that carries an OAuth token.
  [[nodiscard]] virtual absl::StatusOr<OAuthTokenWithGrant> FindOAuthToken(
      std::string_view hash) = 0;
  // Best effort, may be coarse (at most one write a minute per grant is fine).
  [[nodiscard]] virtual absl::Status TouchOAuthGrant(std::string_view grant_id,
                                                     std::int64_t now_ms) = 0;
  // Ordered by created_at, then grant id.
  [[nodiscard]] virtual absl::StatusOr<std::vector<OAuthGrantRecord>> ListOAuthGrants(
      const OAuthGrantFilter& filter) = 0;
  // Revokes every live grant the filter selects (at least one of grant_id, principal_id,
  // client_id must be set: InvalidArgument otherwise); returns how many.
  [[nodiscard]] virtual absl::StatusOr<std::int64_t> RevokeOAuthGrants(
      const OAuthGrantFilter& filter, std::int64_t now_ms, std::string_view reason) = 0;
  // Deletes what can no longer be used at now_ms: expired tokens, codes expired more than a
  // day ago (kept so that a late replay still revokes its grant), grants revoked or expired more
  // than a day ago (with their codes and tokens), clients never used past their expiry, and
  // clients last used more than a day ago with no grant left. Returns how many rows went.
  [[nodiscard]] virtual absl::StatusOr<std::int64_t> PruneOAuth(std::int64_t now_ms) = 0;
};

}  // namespace llmbox::hub::store
