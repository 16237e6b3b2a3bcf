// hub/store/sqlite.cc
#include "hub/store/sqlite.h"

#include <string>
#include <utility>

#include <sqlite3.h>

#include "common/status.h"

namespace llmbox::hub::store::sqlite {
namespace {

absl::StatusCode CodeFor(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return absl::StatusCode::kAlreadyExists;
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kInvalidArgument;
    // Conditions an operator or a retry can fix: another process holds the lock, the disk
    // is full or failing, the file or its folder is not writable.
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

[[nodiscard]] absl::Status MakeError(sqlite3* db, std::string_view what, int rc) {
  // sqlite3_errmsg describes the latest failure on the connection; without a connection
  // (open failed to allocate one) only the generic text for the code is known.
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string text = "sqlite: ";
  text.append(what);
  text.append(": ");
  text.append(message);
  return absl::Status(CodeFor(rc), text);
}

// Names a statement in an error message: the start of its SQL, on one line. Whole queries
// (or a migration's schema) would drown the error itself.
std::string Abbreviated(std::string_view sql) {
  constexpr std::size_t kMaxChars = 60;
  std::string text;
  for (char c : sql) {
    if (text.size() == kMaxChars) {
      text += "...";
      break;
    }
    const bool space = c == ' ' || c == '\n' || c == '\t';
    if (space && (text.empty() || text.back() == ' ')) continue;
    text += space ? ' ' : c;
  }
  return "\"" + text + "\"";
}

}  // namespace

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    in_use_ = std::exchange(other.in_use_, nullptr);
  }
  return *this;
}

Statement::~Statement() { Release(); }

void Statement::Release() {
  if (stmt_ == nullptr) return;
  // sqlite3_reset repeats the latest step's error, which the caller already got from Step.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
  stmt_ = nullptr;
  db_ = nullptr;
  in_use_ = nullptr;
}

absl::Status Statement::Bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so callers may bind temporaries.
  const int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return db_->Error("bind ?" + std::to_string(index), rc);
  return absl::OkStatus();
}

absl::Status Statement::Bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) return db_->Error("bind ?" + std::to_string(index), rc);
  return absl::OkStatus();
}

absl::Status Statement::Bind(int index, std::optional<std::int64_t> value) {
  return value.has_value() ? Bind(index, *value) : BindNull(index);
}

absl::Status Statement::BindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) return db_->Error("bind ?" + std::to_string(index), rc);
  return absl::OkStatus();
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error("step " + Abbreviated(sqlite3_sql(stmt_)), rc);
}

absl::Status Statement::Run() {
  while (true) {
    LLMBOX_ASSIGN_OR_RETURN(const bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

std::string Statement::ColumnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index)));
}

std::int64_t Statement::ColumnInt64(int index) const { return sqlite3_column_int64(stmt_, index); }

std::optional<std::int64_t> Statement::ColumnOptionalInt64(int index) const {
  if (sqlite3_column_type(stmt_, index) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(stmt_, index);
}

// ---- Db ----

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, Mode mode,
                                             int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used by one thread at a time (the store's pool guarantees
  // it), so SQLite's per-connection mutex would be pure overhead.
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status error = MakeError(raw, "open " + path, rc);
    sqlite3_close(raw);  // a failed open may still have allocated a handle
    return error;
  }
  std::unique_ptr<Db> db(new Db(path, raw));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  if (mode == Mode::kReadOnlyQueries) LLMBOX_RETURN_IF_ERROR(db->Exec("PRAGMA query_only = ON"));
  return db;
}

Db::~Db() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  sqlite3_close(db_);
}

absl::Status Db::Exec(std::string_view sql) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error("exec " + Abbreviated(sql), rc);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Db::QueryText(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error("prepare " + Abbreviated(sql), rc);
  rc = sqlite3_step(stmt);
  std::string value;
  if (rc == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) value = reinterpret_cast<const char*>(text);
  }
  absl::Status status =
      (rc == SQLITE_ROW || rc == SQLITE_DONE) ? absl::OkStatus() : Error(Abbreviated(sql), rc);
  sqlite3_finalize(stmt);
  LLMBOX_RETURN_IF_ERROR(status);
  return value;
}

absl::StatusOr<Statement> Db::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    // PERSISTENT: the statement lives as long as the connection, so SQLite may allocate it
    // outside its short-lived lookaside memory.
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Error("prepare " + Abbreviated(sql), rc);
    it = cache_.emplace(std::string(sql), CachedStatement{.stmt = stmt}).first;
  }
  LLMBOX_CHECK(!it->second.in_use, "a cached SQLite statement was borrowed twice at once");
  it->second.in_use = true;
  return Statement(this, it->second.stmt, &it->second.in_use);
}

std::int64_t Db::Changes() const { return sqlite3_changes64(db_); }

absl::Status Db::Error(std::string_view what, int rc) const { return MakeError(db_, what, rc); }

// ---- Transaction ----

absl::StatusOr<Transaction> Transaction::Begin(Db& db) {
  LLMBOX_ASSIGN_OR_RETURN(Statement begin, db.Prepare("BEGIN IMMEDIATE"));
  LLMBOX_RETURN_IF_ERROR(begin.Run());
  return Transaction(&db);
}

absl::Status Transaction::Commit() {
  LLMBOX_ASSIGN_OR_RETURN(Statement commit, db_->Prepare("COMMIT"));
  LLMBOX_RETURN_IF_ERROR(commit.Run());  // on failure the destructor rolls back
  db_ = nullptr;
  return absl::OkStatus();
}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  // Some errors (a full disk, an I/O error) already rolled the transaction back; a ROLLBACK
  // then fails harmlessly, and there is nobody to report a failure to here anyway.
  absl::StatusOr<Statement> rollback = db_->Prepare("ROLLBACK");
  if (rollback.ok()) rollback->Run().IgnoreError();
}

}  // namespace llmbox::hub::store::sqlite
