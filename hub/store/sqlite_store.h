// hub/store/sqlite_store.h
//
// The Store on a local SQLite file (WAL mode). See store.h for the contract.
//
//   LLMBOX_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store,
//                           SqliteStore::Open("/var/lib/llmbox-hub/hub.db"));
//   LLMBOX_ASSIGN_OR_RETURN(BoxRecord box, store->GetBox("demo"));
//
// Connections: one writer connection behind a mutex (SQLite admits one writer at a time
// anyway, and every write runs in a BEGIN IMMEDIATE transaction), plus a pool of up to
// kMaxReaders reader connections handed out one per call. In WAL mode readers never wait for
// the writer, so a slow write does not hold up lookups. Each connection caches its prepared
// statements.
//
// Thread-safe. Other processes (the CLI) may open the same file: a write waits up to
// kBusyTimeoutMs for their write lock, then fails with Unavailable.
//
// Errors: as in store.h; SQLite failures are Unavailable (busy, I/O, disk full) or Internal,
// prefixed with the operation ("store: insert box \"demo\": sqlite: step: disk I/O error").
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hub/store/store.h"

namespace llmbox::hub::store {

namespace sqlite {
class Db;
}  // namespace sqlite

class SqliteStore : public Store {
 public:
  // The newest schema version this code knows (PRAGMA user_version after migrating).
  static int SchemaVersion();
  static constexpr int kMaxReaders = 8;
  static constexpr int kBusyTimeoutMs = 5000;
  // TouchApiKey writes a key's last_used_at at most this often.
  static constexpr std::int64_t kTouchIntervalMs = 60'000;

  // Opens `path`, creating it with mode 0600 when absent, and migrates its schema.
  // FailedPrecondition when the parent folder does not exist, or when the file's schema is
  // newer than this code knows (the message says to upgrade llmbox-hub); Unavailable or
  // Internal for SQLite failures (not a database, not writable, locked for too long).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // UpdateBox keeps the box id as first stored (the creator's spelling); every other field
  // is replaced.
  [[nodiscard]] absl::Status InsertBox(const BoxRecord& box) override;
  [[nodiscard]] absl::Status UpdateBox(const BoxRecord& box) override;
  [[nodiscard]] absl::StatusOr<BoxRecord> GetBox(std::string_view box_id) override;
  [[nodiscard]] absl::StatusOr<BoxRecord> GetBoxByTokenHash(std::string_view hash) override;
  [[nodiscard]] absl::StatusOr<std::vector<BoxRecord>> ListBoxes(const BoxFilter& filter) override;
  [[nodiscard]] absl::StatusOr<BoxPage> ListBoxesPage(const BoxFilter& filter,
                                                      const std::optional<BoxPosition>& after,
                                                      std::size_t limit) override;
  // The SQL ListBoxesPage runs for this filter, first page or not (?1 phase, ?2 spoke, ?3
  // owner, ?4 ?5 the position, ?6 the row limit): for tests to EXPLAIN its plan.
  static const char* BoxPageQuery(const BoxFilter& filter, bool after);
  [[nodiscard]] absl::StatusOr<std::int64_t> CountLiveBoxes(std::string_view owner) override;
  [[nodiscard]] absl::Status DeleteBox(std::string_view box_id) override;
  [[nodiscard]] absl::Status DestroyBox(std::string_view box_id, std::int64_t now_ms) override;
  [[nodiscard]] absl::StatusOr<DestroyedBox> FindDestroyedBox(std::string_view hash) override;
  [[nodiscard]] absl::StatusOr<std::string> ClaimBox(std::string_view box_id,
                                                     std::string_view owner) override;

  [[nodiscard]] absl::Status InsertApiKey(const ApiKeyRecord& key) override;
  [[nodiscard]] absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() override;
  [[nodiscard]] absl::Status RevokeApiKey(std::string_view name, std::int64_t now_ms) override;
  [[nodiscard]] absl::StatusOr<ApiKeyRecord> FindLiveApiKey(std::string_view hash) override;
  [[nodiscard]] absl::Status TouchApiKey(std::string_view name, std::int64_t now_ms) override;

  [[nodiscard]] absl::Status InsertJoinToken(const JoinTokenRecord& token) override;
  [[nodiscard]] absl::StatusOr<JoinTokenRecord> GetJoinToken(std::string_view hash) override;
  [[nodiscard]] absl::StatusOr<std::vector<JoinTokenRecord>> ListJoinTokens() override;
  [[nodiscard]] absl::Status ConsumeJoinToken(std::string_view hash, std::int64_t now_ms,
                                              const SpokeRecord& spoke) override;
  [[nodiscard]] absl::StatusOr<SpokeRecord> GetSpoke(std::string_view name) override;
  [[nodiscard]] absl::StatusOr<std::vector<SpokeRecord>> ListSpokes() override;
  [[nodiscard]] absl::Status RenewSpoke(const SpokeRecord& spoke,
                                        std::string_view previous_sha256) override;
  [[nodiscard]] absl::Status DeleteSpoke(std::string_view name) override;
  // Spoke states and queued destroys (hub/store/sqlite_spokes.cc, schema 9).
  [[nodiscard]] absl::Status SetSpokeAdmin(const SpokeAdminRecord& spoke) override;
  [[nodiscard]] absl::StatusOr<std::vector<SpokeAdminRecord>> ListSpokeAdmin() override;
  [[nodiscard]] absl::Status SetSpokeCondition(const SpokeConditionRecord& condition) override;
  [[nodiscard]] absl::StatusOr<std::vector<SpokeConditionRecord>> ListSpokeConditions() override;
  using Store::QueueDestroy;
  [[nodiscard]] absl::Status QueueDestroy(std::string_view box_id, std::int64_t now_ms,
                                          const QueueDestroyMatch& match) override;
  [[nodiscard]] absl::StatusOr<std::vector<BoxRecord>> ListQueuedDestroys(
      std::string_view spoke, std::size_t limit) override;
  [[nodiscard]] absl::StatusOr<std::map<std::string, SpokeBoxCount>> CountBoxesBySpoke() override;
  // The SQL ListQueuedDestroys (?1 spoke, ?2 limit) and CountBoxesBySpoke run: for tests to
  // EXPLAIN their plans.
  static const char* QueuedDestroysQuery();
  static const char* BoxCountsQuery();
  // Metrics (hub/store/sqlite_metrics.cc); the query is exposed for tests to EXPLAIN.
  [[nodiscard]] absl::StatusOr<std::vector<SpokePhaseCount>> CountBoxesBySpokeAndPhase() override;
  static const char* SpokePhaseCountsQuery();
  // Removal journals' cursors (hub/store/sqlite_removals.cc, schema 10).
  [[nodiscard]] absl::StatusOr<RemovalCursor> GetRemovalCursor(std::string_view spoke) override;
  [[nodiscard]] absl::Status SetRemovalCursor(const RemovalCursor& cursor) override;
  [[nodiscard]] absl::Status EndMcpSession(std::string_view id_hash,
                                           std::int64_t expires_at_ms) override;
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> ListEndedMcpSessions(
      std::int64_t now_ms) override;

  // OAuth (hub/store/sqlite_oauth_clients.cc, sqlite_oauth.cc). TouchOAuthGrant writes at most
  // once per kTouchIntervalMs per grant, as TouchApiKey does.
  [[nodiscard]] absl::Status InsertOAuthClient(const OAuthClientRecord& client) override;
  [[nodiscard]] absl::StatusOr<OAuthClientRecord> GetOAuthClient(
      std::string_view client_id) override;
  [[nodiscard]] absl::Status TouchOAuthClient(std::string_view client_id,
                                              std::int64_t now_ms) override;
  [[nodiscard]] absl::StatusOr<std::int64_t> CountOAuthClients() override;
  [[nodiscard]] absl::Status InsertOAuthGrant(const OAuthGrantRecord& grant,
                                              const OAuthCodeRecord& code) override;
  [[nodiscard]] absl::StatusOr<std::pair<OAuthCodeRecord, OAuthGrantRecord>> RedeemOAuthCode(
      std::string_view hash, std::int64_t now_ms, OAuthCodeCheck check,
      const std::vector<OAuthTokenRecord>& tokens) override;
  [[nodiscard]] absl::StatusOr<OAuthTokenWithGrant> RotateOAuthRefreshToken(
      std::string_view hash, std::string_view client_id, std::int64_t now_ms,
      const std::vector<OAuthTokenRecord>& tokens) override;
  [[nodiscard]] absl::StatusOr<OAuthTokenWithGrant> FindOAuthToken(std::string_view hash) override;
  [[nodiscard]] absl::Status TouchOAuthGrant(std::string_view grant_id,
                                             std::int64_t now_ms) override;
  [[nodiscard]] absl::StatusOr<std::vector<OAuthGrantRecord>> ListOAuthGrants(
      const OAuthGrantFilter& filter) override;
  [[nodiscard]] absl::StatusOr<std::int64_t> RevokeOAuthGrants(const OAuthGrantFilter& filter,
                                                               std::int64_t now_ms,
                                                               std::string_view reason) override;
  [[nodiscard]] absl::StatusOr<std::int64_t> PruneOAuth(std::int64_t now_ms) override;

 private:
  class Reader;  // a reader connection borrowed from the pool for one call

  SqliteStore(std::string path, std::unique_ptr<sqlite::Db> writer);

  [[nodiscard]] absl::StatusOr<Reader> BorrowReader();
  void ReturnReader(std::unique_ptr<sqlite::Db> db);

  // Runs `fn` in a BEGIN IMMEDIATE transaction on the writer connection, committing when it
  // returns OK. SQLite errors come back prefixed "store: <what> <subject>: ".
  [[nodiscard]] absl::Status Write(std::string_view what, std::string_view subject,
                                   absl::FunctionRef<absl::Status(sqlite::Db&)> fn);
  // Runs `fn` on a borrowed reader connection (autocommit, so each statement reads the
  // latest committed state, other processes' commits included).
  [[nodiscard]] absl::Status Read(std::string_view what, std::string_view subject,
                                  absl::FunctionRef<absl::Status(sqlite::Db&)> fn);

  const std::string path_;

  std::mutex writer_mu_;  // held for the whole of each write transaction
  std::unique_ptr<sqlite::Db> writer_;

  std::mutex readers_mu_;
  std::condition_variable reader_returned_;
  std::vector<std::unique_ptr<sqlite::Db>> idle_readers_;
  int open_readers_ = 0;  // idle and borrowed

  std::mutex touch_mu_;
  std::unordered_map<std::string, std::int64_t> last_touch_ms_;  // by key name
};

}  // namespace llmbox::hub::store
