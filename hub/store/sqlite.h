// hub/store/sqlite.h
//
// A small RAII layer over SQLite's C API that speaks absl::Status. Only hub/store/*.cc
// includes it; sqlite3.h stays out of every other header.
//
//   LLMBOX_ASSIGN_OR_RETURN(std::unique_ptr<Db> db, Db::Open(path, Db::Mode::kReadWrite));
//   LLMBOX_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db));     // BEGIN IMMEDIATE
//   LLMBOX_ASSIGN_OR_RETURN(Statement insert, db->Prepare("INSERT INTO t VALUES (?1, ?2)"));
//   LLMBOX_RETURN_IF_ERROR(insert.Bind(1, "a"));
//   LLMBOX_RETURN_IF_ERROR(insert.Bind(2, std::int64_t{7}));
//   LLMBOX_RETURN_IF_ERROR(insert.Run());
//   LLMBOX_RETURN_IF_ERROR(tx.Commit());   // a Transaction not committed rolls back
//
// Thread-safety: none. A Db and everything prepared on it belong to one thread at a time
// (SqliteStore hands connections out under a mutex); different Db objects may be used from
// different threads at once.
//
// Errors: every failure is "sqlite: <what we did>: <sqlite3_errmsg>" with a code chosen from
// SQLite's extended result code: AlreadyExists for a UNIQUE or PRIMARY KEY violation,
// InvalidArgument for a CHECK or NOT NULL violation, Unavailable when the file is busy,
// locked, unreadable or the disk is full, Internal otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace llmbox::hub::store::sqlite {

class Db;

// A prepared statement borrowed from its Db's cache. Destroying (or moving from) the handle
// resets the statement and clears its bindings, which also ends the implicit read
// transaction a half-read SELECT would otherwise hold open (a connection stuck in an old
// transaction would not see other processes' commits and would block WAL checkpoints).
// Bind indexes are 1-based, column indexes 0-based, as in SQLite.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  [[nodiscard]] absl::Status Bind(int index, std::string_view value);
  [[nodiscard]] absl::Status Bind(int index, const char* value) {
    return Bind(index, std::string_view(value));
  }
  [[nodiscard]] absl::Status Bind(int index, std::int64_t value);
  // Binds NULL when `value` is empty.
  [[nodiscard]] absl::Status Bind(int index, std::optional<std::int64_t> value);
  [[nodiscard]] absl::Status BindNull(int index);

  // Advances to the next row: true when a row is ready to read, false when done.
  [[nodiscard]] absl::StatusOr<bool> Step();
  // Steps to the end, for statements that return no rows (or whose rows do not matter).
  [[nodiscard]] absl::Status Run();

  // The current row's columns. NULL reads as "" / 0 / nullopt.
  std::string ColumnText(int index) const;
  std::int64_t ColumnInt64(int index) const;
  std::optional<std::int64_t> ColumnOptionalInt64(int index) const;

 private:
  friend class Db;
  Statement(Db* db, sqlite3_stmt* stmt, bool* in_use) : db_(db), stmt_(stmt), in_use_(in_use) {}
  void Release();

  Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  bool* in_use_ = nullptr;  // the cache slot's flag, so one statement is not borrowed twice
};

// One SQLite connection. Owns its prepared-statement cache; finalizes it and closes the
// connection on destruction (outstanding Statement handles must be gone by then).
class Db {
 public:
  enum class Mode {
    kReadWrite,        // the file must exist (SqliteStore creates it itself, to choose its mode)
    kReadOnlyQueries,  // opened read-write (WAL readers write the -shm index) but with
                       // PRAGMA query_only, so a bug cannot write through a reader
  };

  // Opens `path` with extended result codes on and `busy_timeout_ms` as the busy timeout.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path, Mode mode,
                                                                int busy_timeout_ms);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return nothing (schema, PRAGMA settings).
  [[nodiscard]] absl::Status Exec(std::string_view sql);
  // Runs a single-value query such as "PRAGMA user_version" and returns the value as text.
  [[nodiscard]] absl::StatusOr<std::string> QueryText(std::string_view sql);

  // Returns the cached statement for `sql`, preparing it the first time. The same SQL may
  // not be borrowed twice at once (LLMBOX_CHECK): nothing in the store nests them.
  [[nodiscard]] absl::StatusOr<Statement> Prepare(std::string_view sql);

  // Rows changed by the latest INSERT/UPDATE/DELETE on this connection.
  std::int64_t Changes() const;

  // "sqlite: <what>: <errmsg>" with the code mapped from `rc` (see the file comment).
  [[nodiscard]] absl::Status Error(std::string_view what, int rc) const;

  const std::string& path() const { return path_; }

 private:
  struct CachedStatement {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  // Lets the cache be searched with a string_view, so a lookup does not allocate.
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const {
      return std::hash<std::string_view>{}(sql);
    }
  };

  Db(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  std::string path_;
  sqlite3* db_;
  std::unordered_map<std::string, CachedStatement, SqlHash, std::equal_to<>> cache_;
};

// A write transaction begun with BEGIN IMMEDIATE: it takes the write lock up front (waiting
// up to the busy timeout for another connection or process), so a transaction never has to
// upgrade a read lock, which in WAL mode fails with SQLITE_BUSY instead of waiting.
// Destroying it without Commit() rolls back.
class Transaction {
 public:
  [[nodiscard]] static absl::StatusOr<Transaction> Begin(Db& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  [[nodiscard]] absl::Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;  // null once committed or rolled back
};

}  // namespace llmbox::hub::store::sqlite
