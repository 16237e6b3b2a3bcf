// hub/store/sqlite_spokes.cc
//
// Spoke states (what an operator set, what the hub observed), queued destroys and box counts
// by spoke of SqliteStore (schema 9; the migration 8 -> 9 in sqlite_store.cc).
//
// DeleteSpoke (`spoke remove`) leaves a spoke's admin and condition rows alone: a removed
// spoke that still holds registry boxes is shown (removed, with its boxes) and drained like
// any other, and a spoke that rejoins under the same name keeps what its operator set
// (cordoned stays cordoned until uncordoned). The rows are a few bytes per name ever used.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "hub/store/sqlite.h"
#include "hub/store/sqlite_rows.h"
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {
namespace {

using sqlite::Db;
using sqlite::Statement;

#define LLMBOX_SPOKE_ADMIN_COLUMNS "name, state, reason, since_ms, destroy_pending"
#define LLMBOX_SPOKE_CONDITION_COLUMNS "name, condition, reason, since_ms, checked_at_ms"

// The CHECK constraints admit known names only; anything else is a file a newer schema wrote
// that we failed to refuse, or a bug.
[[nodiscard]] absl::Status UnknownName(std::string_view what, std::string_view spoke,
                                       std::string_view value) {
  return absl::InternalError("store: spoke " + rows::Quoted(spoke) + " has unknown " +
                             std::string(what) + " " + rows::Quoted(value));
}

[[nodiscard]] absl::StatusOr<SpokeAdminRecord> ReadAdmin(const Statement& s) {
  SpokeAdminRecord record;
  record.name = s.ColumnText(0);
  const std::string state = s.ColumnText(1);
  std::optional<SpokeAdminState> parsed = ParseSpokeAdminState(state);
  if (!parsed.has_value()) return UnknownName("state", record.name, state);
  record.state = *parsed;
  record.reason = s.ColumnText(2);
  record.since_ms = s.ColumnInt64(3);
  record.destroy_pending = s.ColumnInt64(4) != 0;
  return record;
}

[[nodiscard]] absl::StatusOr<SpokeConditionRecord> ReadCondition(const Statement& s) {
  SpokeConditionRecord record;
  record.name = s.ColumnText(0);
  const std::string condition = s.ColumnText(1);
  std::optional<SpokeCondition> parsed = ParseSpokeCondition(condition);
  if (!parsed.has_value()) return UnknownName("condition", record.name, condition);
  record.condition = *parsed;
  record.reason = s.ColumnText(2);
  record.since_ms = s.ColumnInt64(3);
  record.checked_at_ms = s.ColumnInt64(4);
  return record;
}

// Steps `s` to its end, reading each row with `read` into `out`.
template <typename Record>
[[nodiscard]] absl::Status CollectRecords(Statement& s,
                                          absl::StatusOr<Record> (*read)(const Statement&),
                                          std::vector<Record>* out) {
  while (true) {
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return absl::OkStatus();
    LLMBOX_ASSIGN_OR_RETURN(Record record, read(s));
    out->push_back(std::move(record));
  }
}

[[nodiscard]] absl::Status RequireName(std::string_view what, std::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("store: " + std::string(what) + ": the spoke name is empty");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SqliteStore::SetSpokeAdmin(const SpokeAdminRecord& spoke) {
  LLMBOX_RETURN_IF_ERROR(RequireName("set spoke state", spoke.name));
  return Write("set spoke state", spoke.name, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("INSERT OR REPLACE INTO spoke_admin (" LLMBOX_SPOKE_ADMIN_COLUMNS
                                ") VALUES (?1, ?2, ?3, ?4, ?5)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, spoke.name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, SpokeAdminStateName(spoke.state)));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, spoke.reason));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, spoke.since_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, static_cast<std::int64_t>(spoke.destroy_pending ? 1 : 0)));
    return s.Run();
  });
}

absl::StatusOr<std::vector<SpokeAdminRecord>> SqliteStore::ListSpokeAdmin() {
  std::vector<SpokeAdminRecord> out;
  LLMBOX_RETURN_IF_ERROR(Read("list spoke states", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT " LLMBOX_SPOKE_ADMIN_COLUMNS
                                                    " FROM spoke_admin ORDER BY name"));
    return CollectRecords(s, ReadAdmin, &out);
  }));
  return out;
}

absl::Status SqliteStore::SetSpokeCondition(const SpokeConditionRecord& condition) {
  LLMBOX_RETURN_IF_ERROR(RequireName("set spoke condition", condition.name));
  return Write("set spoke condition", condition.name, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("INSERT OR REPLACE INTO spoke_conditions (" LLMBOX_SPOKE_CONDITION_COLUMNS
                   ") VALUES (?1, ?2, ?3, ?4, ?5)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, condition.name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, SpokeConditionName(condition.condition)));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, condition.reason));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, condition.since_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, condition.checked_at_ms));
    return s.Run();
  });
}

absl::StatusOr<std::vector<SpokeConditionRecord>> SqliteStore::ListSpokeConditions() {
  std::vector<SpokeConditionRecord> out;
  LLMBOX_RETURN_IF_ERROR(Read("list spoke conditions", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT " LLMBOX_SPOKE_CONDITION_COLUMNS
                                                    " FROM spoke_conditions ORDER BY name"));
    return CollectRecords(s, ReadCondition, &out);
  }));
  return out;
}

absl::Status SqliteStore::QueueDestroy(std::string_view box_id, std::int64_t now_ms,
                                       const QueueDestroyMatch& match) {
  return Write("queue destroy of box", box_id, [&](Db& db) -> absl::Status {
    // coalesce: queueing again keeps the first time. A matched row counts as changed even when
    // its value stays, so Changes() tells an unknown box from a second queueing. The match is
    // part of the same statement: nothing can take the id or change the phase in between.
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("UPDATE boxes SET destroy_queued_at_ms = coalesce(destroy_queued_at_ms, ?2) "
                   "WHERE box_key = ?1 AND (?3 = '' OR token_hash = ?3) "
                   "AND (?4 = '' OR phase = ?4)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, rows::BoxKey(box_id)));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, match.token_hash));
    // "" (not a null view, which binds as NULL): no phase asked for.
    LLMBOX_RETURN_IF_ERROR(
        s.Bind(4, match.phase.has_value() ? PhaseName(*match.phase) : std::string_view("")));
    LLMBOX_RETURN_IF_ERROR(s.Run());
    if (db.Changes() == 0) {
      return absl::NotFoundError(
          "no box " + rows::Quoted(box_id) +
          (match.token_hash.empty() && !match.phase.has_value()
               ? ""
               : " as it was read (destroyed, its id taken again, or its phase changed)"));
    }
    return absl::OkStatus();
  });
}

const char* SqliteStore::QueuedDestroysQuery() {
  return LLMBOX_SELECT_BOXES
      " WHERE spoke = ?1 AND destroy_queued_at_ms IS NOT NULL"
      " ORDER BY destroy_queued_at_ms, box_key LIMIT ?2";
}

absl::StatusOr<std::vector<BoxRecord>> SqliteStore::ListQueuedDestroys(std::string_view spoke,
                                                                       std::size_t limit) {
  if (limit == 0 || limit > kMaxBoxPage) {
    return absl::InvalidArgumentError("store: list queued destroys: limit must be 1.." +
                                      std::to_string(kMaxBoxPage) + ", got " +
                                      std::to_string(limit));
  }
  std::vector<BoxRecord> boxes;
  LLMBOX_RETURN_IF_ERROR(Read("list queued destroys on", spoke, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(QueuedDestroysQuery()));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, spoke));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, static_cast<std::int64_t>(limit)));
    return CollectRecords(s, rows::ReadBox, &boxes);
  }));
  return boxes;
}

const char* SqliteStore::BoxCountsQuery() {
  // Read from boxes_by_spoke_phase alone (it holds both columns), already grouped by spoke.
  return "SELECT spoke, COUNT(*), SUM(phase = 'pending') FROM boxes WHERE phase <> 'gone' "
         "GROUP BY spoke";
}

absl::StatusOr<std::map<std::string, SpokeBoxCount>> SqliteStore::CountBoxesBySpoke() {
  std::map<std::string, SpokeBoxCount> counts;
  LLMBOX_RETURN_IF_ERROR(Read("count boxes by spoke", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(BoxCountsQuery()));
    while (true) {
      LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
      if (!row) return absl::OkStatus();
      counts[s.ColumnText(0)] = {.boxes = s.ColumnInt64(1), .pending = s.ColumnInt64(2)};
    }
  }));
  return counts;
}

#undef LLMBOX_SPOKE_ADMIN_COLUMNS
#undef LLMBOX_SPOKE_CONDITION_COLUMNS

}  // namespace llmbox::hub::store
