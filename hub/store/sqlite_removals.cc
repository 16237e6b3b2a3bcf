// hub/store/sqlite_removals.cc
//
// Where the hub is in each spoke's removal journal, of SqliteStore (schema 10; the migration
// 9 -> 10 in sqlite_store.cc). One row per spoke name ever collected, a few bytes each.
#include <string>
#include <string_view>

#include "common/status.h"
#include "hub/store/sqlite.h"
#include "hub/store/sqlite_rows.h"
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {

using sqlite::Db;
using sqlite::Statement;

absl::StatusOr<RemovalCursor> SqliteStore::GetRemovalCursor(std::string_view spoke) {
  RemovalCursor cursor;
  LLMBOX_RETURN_IF_ERROR(Read("get removal cursor", spoke, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("SELECT name, journal_id, seq FROM spoke_removal_cursors WHERE name = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, spoke));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) {
      return absl::NotFoundError("store: spoke " + rows::Quoted(spoke) + " has no removal cursor");
    }
    cursor = {.spoke = s.ColumnText(0), .journal_id = s.ColumnText(1), .seq = s.ColumnInt64(2)};
    return absl::OkStatus();
  }));
  return cursor;
}

absl::Status SqliteStore::SetRemovalCursor(const RemovalCursor& cursor) {
  if (cursor.spoke.empty()) {
    return absl::InvalidArgumentError("store: set removal cursor: the spoke name is empty");
  }
  return Write("set removal cursor", cursor.spoke, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("INSERT OR REPLACE INTO spoke_removal_cursors (name, journal_id, "
                                "seq) VALUES (?1, ?2, ?3)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, cursor.spoke));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, cursor.journal_id));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, cursor.seq));
    return s.Run();
  });
}

}  // namespace llmbox::hub::store
