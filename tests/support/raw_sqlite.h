#pragma once

// SQLite itself on a store's file, the way an older llmbox-hub (or a hand) left it: for tests
// that build a file of an older schema and check what the migration makes of it.
//
//   RawExec(path, "DROP TABLE spoke_admin; PRAGMA user_version = 8;");
//   CHECK(RawQuery(path, "PRAGMA user_version") == "8|\n");

#include <string>

#include <catch2/catch.hpp>
#include <sqlite3.h>

namespace llmbox::testing {

// Runs `sql` (one or more statements); REQUIREs that it succeeds.
inline void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &error);
  INFO((error != nullptr ? error : ""));
  sqlite3_free(error);
  sqlite3_close(raw);
  REQUIRE(rc == SQLITE_OK);
}

// The rows of `sql`, each value followed by '|' (NULL as "NULL"), one row a line.
inline std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  std::string out;
  auto append = [](void* text, int columns, char** values, char**) {
    auto* s = static_cast<std::string*>(text);
    for (int i = 0; i < columns; ++i) {
      *s += values[i] != nullptr ? values[i] : "NULL";
      *s += '|';
    }
    *s += '\n';
    return 0;
  };
  REQUIRE(sqlite3_exec(raw, sql.c_str(), append, &out, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  return out;
}

}  // namespace llmbox::testing
