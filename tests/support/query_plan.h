#pragma once

// The plan SQLite makes for a statement on a store's file: EXPLAIN QUERY PLAN's details, one a
// line, for tests that check a query reads an index ("SEARCH boxes USING INDEX ...") rather than
// every row or a sort ("SCAN", "USE TEMP B-TREE").
//
//   absl::StatusOr<std::string> plan = QueryPlan(path, "SELECT ... WHERE hash = ?1");
//   CHECK(plan->find("SCAN") == std::string::npos);

#include <string>

#include "absl/status/statusor.h"
#include <sqlite3.h>

namespace llmbox::testing {

inline absl::StatusOr<std::string> QueryPlan(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return absl::InternalError("cannot open " + path);
  }
  sqlite3_stmt* plan = nullptr;
  if (sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &plan, nullptr) !=
      SQLITE_OK) {
    std::string error = sqlite3_errmsg(db);
    sqlite3_close(db);
    return absl::InternalError("cannot explain: " + error);
  }
  std::string details;
  while (sqlite3_step(plan) == SQLITE_ROW) {
    details += reinterpret_cast<const char*>(sqlite3_column_text(plan, 3));
    details += "\n";
  }
  sqlite3_finalize(plan);
  sqlite3_close(db);
  return details;
}

}  // namespace llmbox::testing
