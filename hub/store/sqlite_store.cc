// hub/store/sqlite_store.cc
#include "hub/store/sqlite_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "common/status.h"
#include "hub/store/sqlite.h"
#include "hub/store/sqlite_rows.h"

namespace llmbox::hub::store {
namespace rows {

std::string BoxKey(std::string_view box_id) { return absl::AsciiStrToLower(std::string(box_id)); }

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  out.append(text);
  out.append("\"");
  return out;
}

absl::StatusOr<BoxRecord> ReadBox(const sqlite::Statement& s) {
  BoxRecord box;
  box.box_id = s.ColumnText(0);
  box.spoke = s.ColumnText(1);
  box.container_id = s.ColumnText(2);
  box.image = s.ColumnText(3);
  box.description = s.ColumnText(4);
  const std::string phase = s.ColumnText(5);
  std::optional<Phase> parsed = ParsePhase(phase);
  if (!parsed.has_value()) {
    // The CHECK constraint admits only known phases, so this is a file written by a newer
    // schema we failed to refuse, or a bug.
    return absl::InternalError("store: box " + Quoted(box.box_id) + " has unknown phase " +
                               Quoted(phase));
  }
  box.phase = *parsed;
  box.session_url = s.ColumnText(6);
  box.last_error = s.ColumnText(7);
  box.authorize_url = s.ColumnText(8);
  box.token_hash = s.ColumnText(9);
  box.created_by = s.ColumnText(10);
  box.created_at_ms = s.ColumnInt64(11);
  box.expires_at_ms = s.ColumnInt64(12);
  box.updated_at_ms = s.ColumnInt64(13);
  box.activation_attempts = static_cast<std::uint32_t>(s.ColumnInt64(14));
  box.activation_owner = s.ColumnText(15);
  box.owner = s.ColumnText(16);
  box.owner_email = s.ColumnText(17);
  box.destroy_queued_at_ms = s.ColumnOptionalInt64(18);
  return box;
}

}  // namespace rows

namespace {

using rows::BoxKey;
using rows::Quoted;
using rows::ReadBox;

using sqlite::Db;
using sqlite::Statement;
using sqlite::Transaction;

// The schema, one step per version: kMigrations[i] takes user_version i to i + 1. Append
// only; a released step never changes, since files in the field already ran it.
//
// Box ids are unique case-insensitively through box_key, the ASCII-lowercased id (ids are
// ASCII; SQLite's lower() folds ASCII only, the same as absl::AsciiStrToLower, and the CHECK
// keeps the two in step). token_hash is NULL until the box has a token, so many token-less
// boxes do not collide on the UNIQUE constraint.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE boxes (
  box_key TEXT PRIMARY KEY NOT NULL CHECK (box_key = lower(box_id)),
  box_id TEXT NOT NULL,
  spoke TEXT NOT NULL,
  container_id TEXT NOT NULL,
  image TEXT NOT NULL,
  description TEXT NOT NULL,
  phase TEXT NOT NULL
    CHECK (phase IN ('creating', 'pending', 'activating', 'ready', 'error', 'gone')),
  session_url TEXT NOT NULL,
  last_error TEXT NOT NULL,
  authorize_url TEXT NOT NULL,
  token_hash TEXT UNIQUE CHECK (token_hash <> ''),
  created_by TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  activation_attempts INTEGER NOT NULL CHECK (activation_attempts >= 0)
) STRICT;
CREATE INDEX boxes_by_phase ON boxes (phase);
CREATE INDEX boxes_by_spoke ON boxes (spoke);
CREATE INDEX boxes_by_created_at ON boxes (created_at_ms, box_key);

CREATE TABLE api_keys (
  name TEXT PRIMARY KEY NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER,
  last_used_at_ms INTEGER
) STRICT;
)sql",
    // 1 -> 2: destroyed boxes' activation tokens, so a link to a destroyed box says so.
    R"sql(
CREATE TABLE destroyed_boxes (
  token_hash TEXT PRIMARY KEY NOT NULL CHECK (token_hash <> ''),
  box_id TEXT NOT NULL,
  destroyed_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX destroyed_boxes_by_time ON destroyed_boxes (destroyed_at_ms);
)sql",
    // 2 -> 3: spoke enrollment. A join token is kept by the hash of its secret only; a spoke
    // by the fingerprint of its current certificate, which Renew must present. labels is a
    // JSON object of strings.
    R"sql(
CREATE TABLE join_tokens (
  hash TEXT PRIMARY KEY NOT NULL CHECK (hash <> ''),
  name TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  used_at_ms INTEGER
) STRICT;
CREATE INDEX join_tokens_by_created_at ON join_tokens (created_at_ms);

CREATE TABLE spokes (
  name TEXT PRIMARY KEY NOT NULL,
  advertise_address TEXT NOT NULL,
  cert_sha256 TEXT NOT NULL,
  not_after_ms INTEGER NOT NULL,
  labels TEXT NOT NULL,
  version TEXT NOT NULL,
  joined_at_ms INTEGER NOT NULL,
  renewed_at_ms INTEGER NOT NULL
) STRICT;
)sql",
    // 3 -> 4: who signed in to activate a box, when the activation page is gated by OIDC.
    R"sql(
ALTER TABLE boxes ADD COLUMN activation_owner TEXT NOT NULL DEFAULT '';
)sql",
    // 4 -> 5: MCP sessions ended by their clients, until they would expire anyway.
    R"sql(
CREATE TABLE ended_mcp_sessions (
  id_hash TEXT PRIMARY KEY,
  expires_at_ms INTEGER NOT NULL
) STRICT;
)sql",
    // 5 -> 6: principals and ownership. A box belongs to the principal that made it (its
    // auth::Principal id); boxes made before owners existed belong to their created_by: the
    // API key of that name ("key:<name>", as auth::ApiKeyPrincipalId writes it), or the
    // anonymous principal when keys were off. The index serves a principal's list_llmboxes.
    // An API key may carry the admin role.
    R"sql(
ALTER TABLE boxes ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE boxes SET owner = CASE created_by WHEN '' THEN 'anonymous' ELSE 'key:' || created_by END;
CREATE INDEX boxes_by_owner ON boxes (owner, created_at_ms, box_key);
ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));
)sql",
    // 6 -> 7: OAuth (hub/oauth). Clients registered dynamically; grants, one per consent, and
    // their codes and tokens, by SHA-256 hex only. redirect_uris is a JSON array of strings.
    // A code or token row names its grant; deleting a grant deletes them (foreign keys). And a
    // box's owner_email: the verified email of the principal that made it (OAuth sign-in),
    // the one person who may activate it; '' for principals without one.
    R"sql(
ALTER TABLE boxes ADD COLUMN owner_email TEXT NOT NULL DEFAULT '';

CREATE TABLE oauth_clients (
  client_id TEXT PRIMARY KEY NOT NULL CHECK (client_id <> ''),
  secret_hash TEXT NOT NULL,
  name TEXT NOT NULL,
  redirect_uris TEXT NOT NULL,
  auth_method TEXT NOT NULL
    CHECK (auth_method IN ('none', 'client_secret_post', 'client_secret_basic')),
  registered_from TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  last_used_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX oauth_clients_by_expiry ON oauth_clients (expires_at_ms);

CREATE TABLE oauth_grants (
  grant_id TEXT PRIMARY KEY NOT NULL CHECK (grant_id <> ''),
  client_id TEXT NOT NULL,
  client_name TEXT NOT NULL,
  principal_id TEXT NOT NULL,
  principal_kind TEXT NOT NULL,
  display_name TEXT NOT NULL,
  email TEXT NOT NULL,
  scope TEXT NOT NULL,
  resource TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  last_used_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER,
  revoked_reason TEXT NOT NULL
) STRICT;
CREATE INDEX oauth_grants_by_principal ON oauth_grants (principal_id, created_at_ms);
CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id, created_at_ms);
CREATE INDEX oauth_grants_by_created_at ON oauth_grants (created_at_ms, grant_id);

CREATE TABLE oauth_codes (
  hash TEXT PRIMARY KEY NOT NULL CHECK (hash <> ''),
  grant_id TEXT NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  used_at_ms INTEGER
) STRICT;
CREATE INDEX oauth_codes_by_grant ON oauth_codes (grant_id);
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at_ms);

CREATE TABLE oauth_tokens (
  hash TEXT PRIMARY KEY NOT NULL CHECK (hash <> ''),
  grant_id TEXT NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  issued_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  used_at_ms INTEGER
) STRICT;
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at_ms);
)sql",
    // 7 -> 8: list_llmboxes pages (keyset on created_at_ms, box_key). A page filtered by phase,
    // spoke or both reads its rows from an index already in list order, from the cursor on,
    // instead of every row of that phase or spoke then a sort; the one-column indexes were
    // prefixes of these.
    R"sql(
DROP INDEX boxes_by_phase;
DROP INDEX boxes_by_spoke;
CREATE INDEX boxes_by_phase ON boxes (phase, created_at_ms, box_key);
CREATE INDEX boxes_by_spoke ON boxes (spoke, created_at_ms, box_key);
CREATE INDEX boxes_by_spoke_phase ON boxes (spoke, phase, created_at_ms, box_key);
)sql",
    // 8 -> 9: spoke states (hub/boxes/spoke_state.h). What an operator set (cordon, drain) and
    // what the hub observed (degraded, unreachable), by spoke name, so that the CLI reaches a
    // serving hub and both survive a restart. A box's queued destroy (its spoke was
    // unreachable, or a drain --destroy-pending chose it): the partial index holds only queued
    // boxes, so finding a spoke's costs nothing while none are queued, and reads them in
    // ListQueuedDestroys' order (box_key breaks ties without a sort).
    R"sql(
CREATE TABLE spoke_admin (
  name TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
  state TEXT NOT NULL CHECK (state IN ('ready', 'cordoned', 'draining')),
  reason TEXT NOT NULL,
  since_ms INTEGER NOT NULL,
  destroy_pending INTEGER NOT NULL CHECK (destroy_pending IN (0, 1))
) STRICT;

CREATE TABLE spoke_conditions (
  name TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
  condition TEXT NOT NULL CHECK (condition IN ('healthy', 'degraded', 'unreachable')),
  reason TEXT NOT NULL,
  since_ms INTEGER NOT NULL,
  checked_at_ms INTEGER NOT NULL
) STRICT;

ALTER TABLE boxes ADD COLUMN destroy_queued_at_ms INTEGER;
CREATE INDEX boxes_destroy_queued ON boxes (spoke, destroy_queued_at_ms, box_key)
  WHERE destroy_queued_at_ms IS NOT NULL;
)sql",
    // 9 -> 10: where the hub is in each spoke's removal journal (the boxes a spoke removed on
    // its own, recorded in the audit log: hub/boxes/removal_audit.h).
    R"sql(
CREATE TABLE spoke_removal_cursors (
  name TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
  journal_id TEXT NOT NULL,
  seq INTEGER NOT NULL CHECK (seq >= 0)
) STRICT;
)sql",
};

#define LLMBOX_BOX_ORDER " ORDER BY created_at_ms, box_key"
#define LLMBOX_KEY_COLUMNS "name, hash, created_at_ms, revoked_at_ms, last_used_at_ms, admin"
#define LLMBOX_JOIN_TOKEN_COLUMNS "hash, name, created_at_ms, expires_at_ms, used_at_ms"
#define LLMBOX_SPOKE_COLUMNS                                                            \
  "name, advertise_address, cert_sha256, not_after_ms, labels, version, joined_at_ms, " \
  "renewed_at_ms"

// Prefixes SQLite's own errors (all "sqlite: ...", see sqlite.h) with the store operation,
// leaving the store's messages (NotFound, AlreadyExists) as written.
[[nodiscard]] absl::Status WithOperation(const absl::Status& status, std::string_view operation) {
  if (status.ok() || !absl::StartsWith(status.message(), "sqlite: ")) return status;
  std::string message = "store: ";
  message.append(operation);
  message.append(": ");
  message.append(status.message().data(), status.message().size());
  return absl::Status(status.code(), message);
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<Db>> OpenConnection(const std::string& path,
                                                                 Db::Mode mode) {
  LLMBOX_ASSIGN_OR_RETURN(std::unique_ptr<Db> db,
                          Db::Open(path, mode, SqliteStore::kBusyTimeoutMs));
  // synchronous=FULL: a commit is on disk before it returns. NORMAL would be safe against
  // corruption in WAL mode but may lose the last commits on power loss, and a lost commit
  // here is a revoked API key coming back or a box the hub forgot; the hub writes a few
  // rows a second at most, so the fsync per commit costs nothing that matters.
  LLMBOX_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL"));
  return db;
}

// Binds ?1..?18 in LLMBOX_BOX_COLUMNS order and ?19 to the box key.
[[nodiscard]] absl::Status BindBox(Statement& s, const BoxRecord& box) {
  LLMBOX_RETURN_IF_ERROR(s.Bind(1, box.box_id));
  LLMBOX_RETURN_IF_ERROR(s.Bind(2, box.spoke));
  LLMBOX_RETURN_IF_ERROR(s.Bind(3, box.container_id));
  LLMBOX_RETURN_IF_ERROR(s.Bind(4, box.image));
  LLMBOX_RETURN_IF_ERROR(s.Bind(5, box.description));
  LLMBOX_RETURN_IF_ERROR(s.Bind(6, PhaseName(box.phase)));
  LLMBOX_RETURN_IF_ERROR(s.Bind(7, box.session_url));
  LLMBOX_RETURN_IF_ERROR(s.Bind(8, box.last_error));
  LLMBOX_RETURN_IF_ERROR(s.Bind(9, box.authorize_url));
  if (box.token_hash.empty()) {
    LLMBOX_RETURN_IF_ERROR(s.BindNull(10));
  } else {
    LLMBOX_RETURN_IF_ERROR(s.Bind(10, box.token_hash));
  }
  LLMBOX_RETURN_IF_ERROR(s.Bind(11, box.created_by));
  LLMBOX_RETURN_IF_ERROR(s.Bind(12, box.created_at_ms));
  LLMBOX_RETURN_IF_ERROR(s.Bind(13, box.expires_at_ms));
  LLMBOX_RETURN_IF_ERROR(s.Bind(14, box.updated_at_ms));
  LLMBOX_RETURN_IF_ERROR(s.Bind(15, static_cast<std::int64_t>(box.activation_attempts)));
  LLMBOX_RETURN_IF_ERROR(s.Bind(16, box.activation_owner));
  LLMBOX_RETURN_IF_ERROR(s.Bind(17, box.owner));
  LLMBOX_RETURN_IF_ERROR(s.Bind(18, box.owner_email));
  return s.Bind(19, BoxKey(box.box_id));
}

ApiKeyRecord ReadApiKey(const Statement& s) {
  ApiKeyRecord key;
  key.name = s.ColumnText(0);
  key.hash = s.ColumnText(1);
  key.created_at_ms = s.ColumnInt64(2);
  key.revoked_at_ms = s.ColumnOptionalInt64(3);
  key.last_used_at_ms = s.ColumnOptionalInt64(4);
  key.admin = s.ColumnInt64(5) != 0;
  return key;
}

JoinTokenRecord ReadJoinToken(const Statement& s) {
  JoinTokenRecord token;
  token.hash = s.ColumnText(0);
  token.name = s.ColumnText(1);
  token.created_at_ms = s.ColumnInt64(2);
  token.expires_at_ms = s.ColumnInt64(3);
  token.used_at_ms = s.ColumnOptionalInt64(4);
  return token;
}

std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [key, value] : labels) object[key] = value;
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

SpokeRecord ReadSpoke(const Statement& s) {
  SpokeRecord spoke;
  spoke.name = s.ColumnText(0);
  spoke.advertise_address = s.ColumnText(1);
  spoke.cert_sha256 = s.ColumnText(2);
  spoke.not_after_ms = s.ColumnInt64(3);
  // Written by LabelsJson only; anything unreadable reads as no labels.
  const nlohmann::json labels = nlohmann::json::parse(s.ColumnText(4), nullptr, false);
  if (labels.is_object()) {
    for (const auto& [key, value] : labels.items()) {
      if (value.is_string()) spoke.labels[key] = value.get<std::string>();
    }
  }
  spoke.version = s.ColumnText(5);
  spoke.joined_at_ms = s.ColumnInt64(6);
  spoke.renewed_at_ms = s.ColumnInt64(7);
  return spoke;
}

// Steps `s` to its end, reading each row with `read` into `out`.
template <typename Record>
[[nodiscard]] absl::Status CollectRows(Statement& s, Record (*read)(const Statement&),
                                       std::vector<Record>* out) {
  while (true) {
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return absl::OkStatus();
    out->push_back(read(s));
  }
}

// The first column of the first row of `sql` with ?1 bound to `value`, or nullopt.
[[nodiscard]] absl::StatusOr<std::optional<std::string>> LookUpText(Db& db, std::string_view sql,
                                                                    std::string_view value) {
  LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(sql));
  LLMBOX_RETURN_IF_ERROR(s.Bind(1, value));
  LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
  if (!row) return std::nullopt;
  return s.ColumnText(0);
}

// After a UNIQUE violation writing `box`: the message naming the box that holds its id or
// its token hash. An update hits its own row by key, so only an insert checks the id.
[[nodiscard]] absl::Status BoxConflict(Db& db, const BoxRecord& box, bool inserting,
                                       const absl::Status& violation) {
  const std::string key = BoxKey(box.box_id);
  if (inserting) {
    LLMBOX_ASSIGN_OR_RETURN(std::optional<std::string> holder,
                            LookUpText(db, "SELECT box_id FROM boxes WHERE box_key = ?1", key));
    if (holder.has_value()) {
      return absl::AlreadyExistsError("box id " + Quoted(box.box_id) + " is taken (by box " +
                                      Quoted(*holder) + ")");
    }
  }
  if (!box.token_hash.empty()) {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("SELECT box_id FROM boxes WHERE token_hash = ?1 AND box_key <> ?2"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, box.token_hash));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, key));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (row) {
      return absl::AlreadyExistsError("box " + Quoted(box.box_id) +
                                      ": its activation token hash is already used by box " +
                                      Quoted(s.ColumnText(0)));
    }
  }
  return violation;
}

}  // namespace

// ---- Reader pool ----

class SqliteStore::Reader {
 public:
  Reader(SqliteStore* store, std::unique_ptr<Db> db) : store_(store), db_(std::move(db)) {}
  Reader(Reader&& other) noexcept = default;
  Reader& operator=(Reader&&) = delete;
  ~Reader() {
    if (db_ != nullptr) store_->ReturnReader(std::move(db_));
  }
  Db& db() { return *db_; }

 private:
  SqliteStore* store_;
  std::unique_ptr<Db> db_;
};

absl::StatusOr<SqliteStore::Reader> SqliteStore::BorrowReader() {
  {
    std::unique_lock<std::mutex> lock(readers_mu_);
    reader_returned_.wait(lock,
                          [&] { return !idle_readers_.empty() || open_readers_ < kMaxReaders; });
    if (!idle_readers_.empty()) {
      std::unique_ptr<Db> db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Reader(this, std::move(db));
    }
    ++open_readers_;  // reserve the slot, then open without holding the lock
  }
  absl::StatusOr<std::unique_ptr<Db>> db = OpenConnection(path_, Db::Mode::kReadOnlyQueries);
  if (!db.ok()) {
    std::lock_guard<std::mutex> lock(readers_mu_);
    --open_readers_;
    reader_returned_.notify_one();
    return db.status();
  }
  return Reader(this, *std::move(db));
}

void SqliteStore::ReturnReader(std::unique_ptr<Db> db) {
  std::lock_guard<std::mutex> lock(readers_mu_);
  idle_readers_.push_back(std::move(db));
  reader_returned_.notify_one();
}

// ---- Opening and migrating ----

int SqliteStore::SchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

SqliteStore::SqliteStore(std::string path, std::unique_ptr<Db> writer)
    : path_(std::move(path)), writer_(std::move(writer)) {}

SqliteStore::~SqliteStore() = default;

namespace {

[[nodiscard]] absl::StatusOr<int> UserVersion(Db& db) {
  LLMBOX_ASSIGN_OR_RETURN(std::string text, db.QueryText("PRAGMA user_version"));
  return std::atoi(text.c_str());
}

// Brings the file up to SchemaVersion(), one transaction per step. The version is read
// again inside each transaction because another process (the CLI) may be migrating the
// same file at the same moment; BEGIN IMMEDIATE makes the two take turns.
[[nodiscard]] absl::Status Migrate(Db& db) {
  const int known = SqliteStore::SchemaVersion();
  while (true) {
    LLMBOX_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    LLMBOX_ASSIGN_OR_RETURN(const int version, UserVersion(db));
    if (version > known) {
      const std::string name = std::filesystem::path(db.path()).filename().string();
      return absl::FailedPreconditionError(name + " has schema version " + std::to_string(version) +
                                           "; this llmbox-hub knows up to " +
                                           std::to_string(known) +
                                           ": upgrade llmbox-hub (file: " + db.path() + ")");
    }
    if (version == known) return tx.Commit();
    LLMBOX_RETURN_IF_ERROR(db.Exec(kMigrations[version]));
    LLMBOX_RETURN_IF_ERROR(db.Exec("PRAGMA user_version = " + std::to_string(version + 1)));
    LLMBOX_RETURN_IF_ERROR(tx.Commit());
  }
}

// Creates the file with mode 0600 unless it exists: it holds token hashes and authorize
// URLs. SQLite gives the -wal and -shm files the database file's mode, so they follow.
[[nodiscard]] absl::Status CreateFile(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  struct stat st {};
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError("store: cannot open " + path + ": the folder " +
                                         parent.string() + " does not exist (create it first)");
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError("store: cannot create " + path + ": " +
                                         std::strerror(errno));
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  LLMBOX_RETURN_IF_ERROR(CreateFile(path));
  absl::StatusOr<std::unique_ptr<Db>> writer = OpenConnection(path, Db::Mode::kReadWrite);
  if (!writer.ok()) return WithOperation(writer.status(), "open " + path);
  absl::StatusOr<std::string> mode = (*writer)->QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return WithOperation(mode.status(), "open " + path);
  if (*mode != "wal") {
    return absl::UnavailableError("store: open " + path +
                                  ": could not switch to WAL mode (journal_mode is " + *mode + ")");
  }
  LLMBOX_RETURN_IF_ERROR(WithOperation(Migrate(**writer), "migrate " + path));
  return std::unique_ptr<SqliteStore>(new SqliteStore(path, *std::move(writer)));
}

// ---- Running operations ----

namespace {

// "store: <what> <subject>: sqlite: ..." for SQLite's errors; see WithOperation.
[[nodiscard]] absl::Status Annotate(const absl::Status& status, std::string_view what,
                                    std::string_view subject) {
  if (status.ok() || !absl::StartsWith(status.message(), "sqlite: ")) return status;
  std::string operation(what);
  if (!subject.empty()) {
    operation += ' ';
    operation += Quoted(subject);
  }
  return WithOperation(status, operation);
}

}  // namespace

absl::Status SqliteStore::Write(std::string_view what, std::string_view subject,
                                absl::FunctionRef<absl::Status(Db&)> fn) {
  std::lock_guard<std::mutex> lock(writer_mu_);
  absl::Status status = [&]() -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*writer_));
    LLMBOX_RETURN_IF_ERROR(fn(*writer_));
    return tx.Commit();
  }();
  return Annotate(status, what, subject);
}

absl::Status SqliteStore::Read(std::string_view what, std::string_view subject,
                               absl::FunctionRef<absl::Status(Db&)> fn) {
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return Annotate(reader.status(), what, subject);
  return Annotate(fn(reader->db()), what, subject);
}

// ---- Boxes ----

absl::Status SqliteStore::InsertBox(const BoxRecord& box) {
  return Write("insert box", box.box_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("INSERT INTO boxes (" LLMBOX_BOX_COLUMNS ", box_key) VALUES "
                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                   "?18, ?19)"));
    LLMBOX_RETURN_IF_ERROR(BindBox(s, box));
    absl::Status status = s.Run();
    if (absl::IsAlreadyExists(status)) return BoxConflict(db, box, /*inserting=*/true, status);
    return status;
  });
}

absl::Status SqliteStore::UpdateBox(const BoxRecord& box) {
  return Write("update box", box.box_id, [&](Db& db) -> absl::Status {
    // ?1 (box_id) is bound but unused: the creator's spelling of the id stays. So is ?16: the
    // activation owner changes only through ClaimBox, so a read-modify-write cannot undo it.
    // And ?17 and ?18: a box never changes hands.
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("UPDATE boxes SET spoke = ?2, container_id = ?3, image = ?4, "
                                "description = ?5, phase = ?6, session_url = ?7, last_error = ?8, "
                                "authorize_url = ?9, token_hash = ?10, created_by = ?11, "
                                "created_at_ms = ?12, expires_at_ms = ?13, updated_at_ms = ?14, "
                                "activation_attempts = ?15 WHERE box_key = ?19"));
    LLMBOX_RETURN_IF_ERROR(BindBox(s, box));
    absl::Status status = s.Run();
    if (absl::IsAlreadyExists(status)) return BoxConflict(db, box, /*inserting=*/false, status);
    LLMBOX_RETURN_IF_ERROR(status);
    if (db.Changes() == 0) return absl::NotFoundError("no box " + Quoted(box.box_id));
    return absl::OkStatus();
  });
}

absl::StatusOr<BoxRecord> SqliteStore::GetBox(std::string_view box_id) {
  BoxRecord box;
  LLMBOX_RETURN_IF_ERROR(Read("get box", box_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(LLMBOX_SELECT_BOXES " WHERE box_key = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, BoxKey(box_id)));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return absl::NotFoundError("no box " + Quoted(box_id));
    LLMBOX_ASSIGN_OR_RETURN(box, ReadBox(s));
    return absl::OkStatus();
  }));
  return box;
}

absl::StatusOr<BoxRecord> SqliteStore::GetBoxByTokenHash(std::string_view hash) {
  // Not echoing the hash: it identifies an activation link.
  absl::Status not_found = absl::NotFoundError("no box has this activation token");
  if (hash.empty()) return not_found;
  BoxRecord box;
  LLMBOX_RETURN_IF_ERROR(Read("get box by token hash", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(LLMBOX_SELECT_BOXES " WHERE token_hash = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return not_found;
    LLMBOX_ASSIGN_OR_RETURN(box, ReadBox(s));
    return absl::OkStatus();
  }));
  return box;
}

absl::StatusOr<std::vector<BoxRecord>> SqliteStore::ListBoxes(const BoxFilter& filter) {
  // One literal per filter combination, so each is a plain indexed query with its own
  // cached statement (an "?1 IS NULL OR phase = ?1" form would defeat the indexes). An owner
  // comes first: boxes_by_owner then reads that owner's rows only, already in list order.
  static constexpr const char* kQueries[8] = {
      LLMBOX_SELECT_BOXES LLMBOX_BOX_ORDER,
      LLMBOX_SELECT_BOXES " WHERE phase = ?1" LLMBOX_BOX_ORDER,
      LLMBOX_SELECT_BOXES " WHERE spoke = ?2" LLMBOX_BOX_ORDER,
      LLMBOX_SELECT_BOXES " WHERE phase = ?1 AND spoke = ?2" LLMBOX_BOX_ORDER,
      LLMBOX_SELECT_BOXES " WHERE owner = ?3" LLMBOX_BOX_ORDER,
      LLMBOX_SELECT_BOXES " WHERE owner = ?3 AND phase = ?1" LLMBOX_BOX_ORDER,
      LLMBOX_SELECT_BOXES " WHERE owner = ?3 AND spoke = ?2" LLMBOX_BOX_ORDER,
      LLMBOX_SELECT_BOXES " WHERE owner = ?3 AND phase = ?1 AND spoke = ?2" LLMBOX_BOX_ORDER,
  };
  const char* sql =
      kQueries[(filter.phase.has_value() ? 1 : 0) | (filter.spoke.has_value() ? 2 : 0) |
               (filter.owner.has_value() ? 4 : 0)];
  std::vector<BoxRecord> boxes;
  LLMBOX_RETURN_IF_ERROR(Read("list boxes", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(sql));
    if (filter.phase.has_value()) LLMBOX_RETURN_IF_ERROR(s.Bind(1, PhaseName(*filter.phase)));
    if (filter.spoke.has_value()) LLMBOX_RETURN_IF_ERROR(s.Bind(2, *filter.spoke));
    if (filter.owner.has_value()) LLMBOX_RETURN_IF_ERROR(s.Bind(3, *filter.owner));
    while (true) {
      LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
      if (!row) return absl::OkStatus();
      LLMBOX_ASSIGN_OR_RETURN(BoxRecord box, ReadBox(s));
      boxes.push_back(std::move(box));
    }
  }));
  return boxes;
}

// A page: ListBoxes' queries from a position on, one row more than asked for to know whether
// another page follows. The row value compares as the index orders its entries.
#define LLMBOX_BOX_PAGE(where) LLMBOX_SELECT_BOXES where LLMBOX_BOX_ORDER " LIMIT ?6"
#define LLMBOX_BOX_AFTER "(created_at_ms, box_key) > (?4, ?5)"

const char* SqliteStore::BoxPageQuery(const BoxFilter& filter, bool after) {
  static constexpr const char* kQueries[2][8] = {
      {
          LLMBOX_BOX_PAGE(""),
          LLMBOX_BOX_PAGE(" WHERE phase = ?1"),
          LLMBOX_BOX_PAGE(" WHERE spoke = ?2"),
          LLMBOX_BOX_PAGE(" WHERE phase = ?1 AND spoke = ?2"),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3"),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3 AND phase = ?1"),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3 AND spoke = ?2"),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3 AND phase = ?1 AND spoke = ?2"),
      },
      {
          LLMBOX_BOX_PAGE(" WHERE " LLMBOX_BOX_AFTER),
          LLMBOX_BOX_PAGE(" WHERE phase = ?1 AND " LLMBOX_BOX_AFTER),
          LLMBOX_BOX_PAGE(" WHERE spoke = ?2 AND " LLMBOX_BOX_AFTER),
          LLMBOX_BOX_PAGE(" WHERE phase = ?1 AND spoke = ?2 AND " LLMBOX_BOX_AFTER),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3 AND " LLMBOX_BOX_AFTER),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3 AND phase = ?1 AND " LLMBOX_BOX_AFTER),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3 AND spoke = ?2 AND " LLMBOX_BOX_AFTER),
          LLMBOX_BOX_PAGE(" WHERE owner = ?3 AND phase = ?1 AND spoke = ?2 AND " LLMBOX_BOX_AFTER),
      },
  };
  return kQueries[after ? 1 : 0][(filter.phase.has_value() ? 1 : 0) |
                                 (filter.spoke.has_value() ? 2 : 0) |
                                 (filter.owner.has_value() ? 4 : 0)];
}

absl::StatusOr<BoxPage> SqliteStore::ListBoxesPage(const BoxFilter& filter,
                                                   const std::optional<BoxPosition>& after,
                                                   std::size_t limit) {
  if (limit == 0 || limit > kMaxBoxPage) {
    return absl::InvalidArgumentError("store: list boxes page: limit must be 1.." +
                                      std::to_string(kMaxBoxPage) + ", got " +
                                      std::to_string(limit));
  }
  BoxPage page;
  LLMBOX_RETURN_IF_ERROR(Read("list boxes page", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(BoxPageQuery(filter, after.has_value())));
    if (filter.phase.has_value()) LLMBOX_RETURN_IF_ERROR(s.Bind(1, PhaseName(*filter.phase)));
    if (filter.spoke.has_value()) LLMBOX_RETURN_IF_ERROR(s.Bind(2, *filter.spoke));
    if (filter.owner.has_value()) LLMBOX_RETURN_IF_ERROR(s.Bind(3, *filter.owner));
    if (after.has_value()) {
      LLMBOX_RETURN_IF_ERROR(s.Bind(4, after->created_at_ms));
      LLMBOX_RETURN_IF_ERROR(s.Bind(5, after->box_key));
    }
    LLMBOX_RETURN_IF_ERROR(s.Bind(6, static_cast<std::int64_t>(limit) + 1));
    page.boxes.clear();
    page.next.reset();
    while (true) {
      LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
      if (!row) return absl::OkStatus();
      if (page.boxes.size() == limit) {
        const BoxRecord& last = page.boxes.back();
        page.next =
            BoxPosition{.created_at_ms = last.created_at_ms, .box_key = BoxKey(last.box_id)};
        return absl::OkStatus();
      }
      LLMBOX_ASSIGN_OR_RETURN(BoxRecord box, ReadBox(s));
      page.boxes.push_back(std::move(box));
    }
  }));
  return page;
}

absl::StatusOr<std::int64_t> SqliteStore::CountLiveBoxes(std::string_view owner) {
  std::int64_t count = 0;
  LLMBOX_RETURN_IF_ERROR(Read("count boxes", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("SELECT COUNT(*) FROM boxes WHERE owner = ?1 AND phase != ?2"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, owner));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, PhaseName(Phase::kGone)));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (row) count = s.ColumnInt64(0);
    return absl::OkStatus();
  }));
  return count;
}

absl::Status SqliteStore::DeleteBox(std::string_view box_id) {
  return Write("delete box", box_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("DELETE FROM boxes WHERE box_key = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, BoxKey(box_id)));
    LLMBOX_RETURN_IF_ERROR(s.Run());
    if (db.Changes() == 0) return absl::NotFoundError("no box " + Quoted(box_id));
    return absl::OkStatus();
  });
}

absl::Status SqliteStore::DestroyBox(std::string_view box_id, std::int64_t now_ms) {
  return Write("destroy box", box_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement remember,
        db.Prepare("INSERT OR REPLACE INTO destroyed_boxes (token_hash, box_id, destroyed_at_ms) "
                   "SELECT token_hash, box_id, ?2 FROM boxes "
                   "WHERE box_key = ?1 AND token_hash IS NOT NULL"));
    LLMBOX_RETURN_IF_ERROR(remember.Bind(1, BoxKey(box_id)));
    LLMBOX_RETURN_IF_ERROR(remember.Bind(2, now_ms));
    LLMBOX_RETURN_IF_ERROR(remember.Run());
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("DELETE FROM boxes WHERE box_key = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, BoxKey(box_id)));
    LLMBOX_RETURN_IF_ERROR(s.Run());
    if (db.Changes() == 0) return absl::NotFoundError("no box " + Quoted(box_id));
    LLMBOX_ASSIGN_OR_RETURN(Statement prune,
                            db.Prepare("DELETE FROM destroyed_boxes WHERE destroyed_at_ms < ?1"));
    LLMBOX_RETURN_IF_ERROR(prune.Bind(1, now_ms - kDestroyedRetentionMs));
    return prune.Run();
  });
}

absl::StatusOr<std::string> SqliteStore::ClaimBox(std::string_view box_id, std::string_view owner) {
  if (owner.empty()) return absl::InvalidArgumentError("store: a box's owner cannot be empty");
  std::string result;
  LLMBOX_RETURN_IF_ERROR(Write("claim box", box_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement claim,
                            db.Prepare("UPDATE boxes SET activation_owner = ?2 "
                                       "WHERE box_key = ?1 AND activation_owner = ''"));
    LLMBOX_RETURN_IF_ERROR(claim.Bind(1, BoxKey(box_id)));
    LLMBOX_RETURN_IF_ERROR(claim.Bind(2, owner));
    LLMBOX_RETURN_IF_ERROR(claim.Run());
    LLMBOX_ASSIGN_OR_RETURN(
        std::optional<std::string> now_owner,
        LookUpText(db, "SELECT activation_owner FROM boxes WHERE box_key = ?1", BoxKey(box_id)));
    if (!now_owner.has_value()) return absl::NotFoundError("no box " + Quoted(box_id));
    result = *std::move(now_owner);
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<DestroyedBox> SqliteStore::FindDestroyedBox(std::string_view hash) {
  // Not echoing the hash: it identifies an activation link.
  absl::Status not_found = absl::NotFoundError("no destroyed box had this activation token");
  if (hash.empty()) return not_found;
  DestroyedBox box;
  LLMBOX_RETURN_IF_ERROR(Read("find destroyed box", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("SELECT box_id, destroyed_at_ms FROM destroyed_boxes WHERE token_hash = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return not_found;
    box.box_id = s.ColumnText(0);
    box.destroyed_at_ms = s.ColumnInt64(1);
    return absl::OkStatus();
  }));
  return box;
}

// ---- API keys ----

absl::Status SqliteStore::InsertApiKey(const ApiKeyRecord& key) {
  return Write("insert API key", key.name, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("INSERT INTO api_keys (" LLMBOX_KEY_COLUMNS
                                                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, key.name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, key.hash));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, key.created_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, key.revoked_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, key.last_used_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(6, static_cast<std::int64_t>(key.admin ? 1 : 0)));
    absl::Status status = s.Run();
    if (!absl::IsAlreadyExists(status)) return status;
    LLMBOX_ASSIGN_OR_RETURN(std::optional<std::string> same_name,
                            LookUpText(db, "SELECT name FROM api_keys WHERE name = ?1", key.name));
    if (same_name.has_value()) {
      return absl::AlreadyExistsError("API key name " + Quoted(key.name) +
                                      " is taken (revoked keys keep their names)");
    }
    LLMBOX_ASSIGN_OR_RETURN(std::optional<std::string> same_hash,
                            LookUpText(db, "SELECT name FROM api_keys WHERE hash = ?1", key.hash));
    if (same_hash.has_value()) {
      return absl::AlreadyExistsError("API key " + Quoted(key.name) +
                                      ": the same key is already registered as " +
                                      Quoted(*same_hash));
    }
    return status;
  });
}

absl::StatusOr<std::vector<ApiKeyRecord>> SqliteStore::ListApiKeys() {
  std::vector<ApiKeyRecord> keys;
  LLMBOX_RETURN_IF_ERROR(Read("list API keys", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("SELECT " LLMBOX_KEY_COLUMNS " FROM api_keys ORDER BY name"));
    return CollectRows(s, ReadApiKey, &keys);
  }));
  return keys;
}

absl::Status SqliteStore::RevokeApiKey(std::string_view name, std::int64_t now_ms) {
  return Write("revoke API key", name, [&](Db& db) -> absl::Status {
    // coalesce: revoking again keeps the first revocation time. SQLite counts a matched row
    // as changed even when its value stays, so Changes() tells "unknown" from "again".
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("UPDATE api_keys SET revoked_at_ms = coalesce(revoked_at_ms, ?2) "
                                "WHERE name = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
    LLMBOX_RETURN_IF_ERROR(s.Run());
    if (db.Changes() == 0) return absl::NotFoundError("no API key " + Quoted(name));
    return absl::OkStatus();
  });
}

absl::StatusOr<ApiKeyRecord> SqliteStore::FindLiveApiKey(std::string_view hash) {
  ApiKeyRecord key;
  LLMBOX_RETURN_IF_ERROR(Read("find API key", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("SELECT " LLMBOX_KEY_COLUMNS
                                       " FROM api_keys WHERE hash = ?1 AND revoked_at_ms IS NULL"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return absl::NotFoundError("no live API key has this hash");
    key = ReadApiKey(s);
    return absl::OkStatus();
  }));
  return key;
}

absl::Status SqliteStore::TouchApiKey(std::string_view name, std::int64_t now_ms) {
  {
    // Every authenticated request touches its key; a write (and an fsync) each time would
    // put the writer lock on the request path. At most one write per key per interval.
    std::lock_guard<std::mutex> lock(touch_mu_);
    auto [it, inserted] = last_touch_ms_.try_emplace(std::string(name), now_ms);
    if (!inserted) {
      if (now_ms - it->second < kTouchIntervalMs) return absl::OkStatus();
      it->second = now_ms;
    }
  }
  absl::Status status = Write("touch API key", name, [&](Db& db) -> absl::Status {
    // Unknown names match nothing: touching is best effort, not a lookup.
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("UPDATE api_keys SET last_used_at_ms = ?2 WHERE name = ?1 AND "
                                "(last_used_at_ms IS NULL OR last_used_at_ms < ?2)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
    return s.Run();
  });
  if (!status.ok()) {
    // Let the next request try again rather than waiting out the interval.
    std::lock_guard<std::mutex> lock(touch_mu_);
    last_touch_ms_.erase(std::string(name));
  }
  return status;
}

// ---- Join tokens ----

absl::Status SqliteStore::InsertJoinToken(const JoinTokenRecord& token) {
  return Write("insert join token", token.name, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("INSERT INTO join_tokens (" LLMBOX_JOIN_TOKEN_COLUMNS
                                       ") VALUES (?1, ?2, ?3, ?4, ?5)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, token.hash));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, token.name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, token.created_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, token.expires_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, token.used_at_ms));
    absl::Status status = s.Run();
    if (absl::IsAlreadyExists(status)) {
      return absl::AlreadyExistsError("join token for " + Quoted(token.name) +
                                      ": the same token is already registered");
    }
    return status;
  });
}

absl::StatusOr<JoinTokenRecord> SqliteStore::GetJoinToken(std::string_view hash) {
  JoinTokenRecord token;
  LLMBOX_RETURN_IF_ERROR(Read("get join token", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT " LLMBOX_JOIN_TOKEN_COLUMNS
                                                    " FROM join_tokens WHERE hash = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return absl::NotFoundError("no join token has this hash");
    token = ReadJoinToken(s);
    return absl::OkStatus();
  }));
  return token;
}

absl::StatusOr<std::vector<JoinTokenRecord>> SqliteStore::ListJoinTokens() {
  std::vector<JoinTokenRecord> tokens;
  LLMBOX_RETURN_IF_ERROR(Read("list join tokens", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("SELECT " LLMBOX_JOIN_TOKEN_COLUMNS
                                       " FROM join_tokens ORDER BY created_at_ms, hash"));
    return CollectRows(s, ReadJoinToken, &tokens);
  }));
  return tokens;
}

absl::Status SqliteStore::ConsumeJoinToken(std::string_view hash, std::int64_t now_ms,
                                           const SpokeRecord& spoke) {
  return Write("consume join token for", spoke.name, [&](Db& db) -> absl::Status {
    // Read and mark inside one BEGIN IMMEDIATE transaction: a second caller with the same
    // token waits for the write lock and then sees used_at_ms set.
    JoinTokenRecord token;
    {
      LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT " LLMBOX_JOIN_TOKEN_COLUMNS
                                                      " FROM join_tokens WHERE hash = ?1"));
      LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
      LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
      if (!row) {
        return absl::UnauthenticatedError(
            "this join token is unknown to the hub (a typo, or a token of another hub): create "
            "a new one with `llmbox-hub spoke token create`");
      }
      token = ReadJoinToken(s);
    }
    if (token.used_at_ms.has_value()) {
      return absl::UnauthenticatedError(
          "this join token was already used (tokens work once): create a new one with "
          "`llmbox-hub spoke token create --name " +
          token.name + "`");
    }
    if (now_ms >= token.expires_at_ms) {
      return absl::UnauthenticatedError(
          "this join token has expired: create a new one with `llmbox-hub spoke token create "
          "--name " +
          token.name + "` (--ttl sets how long it lasts)");
    }
    if (token.name != spoke.name) {
      return absl::UnauthenticatedError("this join token enrolls spoke " + Quoted(token.name) +
                                        ", not " + Quoted(spoke.name));
    }
    {
      LLMBOX_ASSIGN_OR_RETURN(
          Statement s, db.Prepare("UPDATE join_tokens SET used_at_ms = ?2 WHERE hash = ?1 AND "
                                  "used_at_ms IS NULL"));
      LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
      LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
      LLMBOX_RETURN_IF_ERROR(s.Run());
      LLMBOX_CHECK(db.Changes() == 1, "the token was read unused in this same transaction");
    }
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("INSERT OR REPLACE INTO spokes (" LLMBOX_SPOKE_COLUMNS
                                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, spoke.name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, spoke.advertise_address));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, spoke.cert_sha256));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, spoke.not_after_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, LabelsJson(spoke.labels)));
    LLMBOX_RETURN_IF_ERROR(s.Bind(6, spoke.version));
    LLMBOX_RETURN_IF_ERROR(s.Bind(7, spoke.joined_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(8, spoke.renewed_at_ms));
    return s.Run();
  });
}

// ---- Spokes ----

absl::StatusOr<SpokeRecord> SqliteStore::GetSpoke(std::string_view name) {
  SpokeRecord spoke;
  LLMBOX_RETURN_IF_ERROR(Read("get spoke", name, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("SELECT " LLMBOX_SPOKE_COLUMNS " FROM spokes WHERE name = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, name));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return absl::NotFoundError("no spoke " + Quoted(name));
    spoke = ReadSpoke(s);
    return absl::OkStatus();
  }));
  return spoke;
}

absl::StatusOr<std::vector<SpokeRecord>> SqliteStore::ListSpokes() {
  std::vector<SpokeRecord> spokes;
  LLMBOX_RETURN_IF_ERROR(Read("list spokes", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("SELECT " LLMBOX_SPOKE_COLUMNS " FROM spokes ORDER BY name"));
    return CollectRows(s, ReadSpoke, &spokes);
  }));
  return spokes;
}

absl::Status SqliteStore::RenewSpoke(const SpokeRecord& spoke, std::string_view previous_sha256) {
  return Write("renew spoke", spoke.name, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        std::optional<std::string> current,
        LookUpText(db, "SELECT cert_sha256 FROM spokes WHERE name = ?1", spoke.name));
    if (!current.has_value()) return absl::NotFoundError("no spoke " + Quoted(spoke.name));
    if (*current != previous_sha256) {
      return absl::FailedPreconditionError("spoke " + Quoted(spoke.name) +
                                           ": its certificate was replaced meanwhile");
    }
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("UPDATE spokes SET cert_sha256 = ?2, not_after_ms = ?3, "
                                       "renewed_at_ms = ?4 WHERE name = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, spoke.name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, spoke.cert_sha256));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, spoke.not_after_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, spoke.renewed_at_ms));
    return s.Run();
  });
}

absl::Status SqliteStore::DeleteSpoke(std::string_view name) {
  return Write("delete spoke", name, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("DELETE FROM spokes WHERE name = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, name));
    LLMBOX_RETURN_IF_ERROR(s.Run());
    if (db.Changes() == 0) return absl::NotFoundError("no spoke " + Quoted(name));
    return absl::OkStatus();
  });
}

absl::Status SqliteStore::EndMcpSession(std::string_view id_hash, std::int64_t expires_at_ms) {
  return Write("end MCP session", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("INSERT INTO ended_mcp_sessions (id_hash, expires_at_ms) "
                                       "VALUES (?1, ?2) ON CONFLICT (id_hash) DO NOTHING"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, id_hash));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, expires_at_ms));
    return s.Run();
  });
}

absl::StatusOr<std::vector<std::string>> SqliteStore::ListEndedMcpSessions(std::int64_t now_ms) {
  std::vector<std::string> out;
  LLMBOX_RETURN_IF_ERROR(Write("list ended MCP sessions", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement prune,
                            db.Prepare("DELETE FROM ended_mcp_sessions WHERE expires_at_ms <= ?1"));
    LLMBOX_RETURN_IF_ERROR(prune.Bind(1, now_ms));
    LLMBOX_RETURN_IF_ERROR(prune.Run());
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("SELECT id_hash FROM ended_mcp_sessions ORDER BY id_hash"));
    while (true) {
      LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
      if (!row) break;
      out.push_back(s.ColumnText(0));
    }
    return absl::OkStatus();
  }));
  return out;
}

#undef LLMBOX_JOIN_TOKEN_COLUMNS
#undef LLMBOX_SPOKE_COLUMNS
#undef LLMBOX_BOX_ORDER
#undef LLMBOX_KEY_COLUMNS

}  // namespace llmbox::hub::store
