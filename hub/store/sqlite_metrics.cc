// hub/store/sqlite_metrics.cc
//
// What /metrics reads of SqliteStore at every scrape: one grouped count, so a scrape costs a
// walk of one index whatever the number of boxes.
#include <string>
#include <vector>

#include "common/status.h"
#include "hub/store/sqlite.h"
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {

const char* SqliteStore::SpokePhaseCountsQuery() {
  // Read from boxes_by_spoke_phase alone (a covering index), already grouped.
  return "SELECT spoke, phase, COUNT(*) FROM boxes WHERE phase <> 'gone' GROUP BY spoke, phase";
}

absl::StatusOr<std::vector<SpokePhaseCount>> SqliteStore::CountBoxesBySpokeAndPhase() {
  std::vector<SpokePhaseCount> counts;
  LLMBOX_RETURN_IF_ERROR(
      Read("count boxes by spoke and phase", "", [&](sqlite::Db& db) -> absl::Status {
        LLMBOX_ASSIGN_OR_RETURN(sqlite::Statement s, db.Prepare(SpokePhaseCountsQuery()));
        while (true) {
          LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
          if (!row) return absl::OkStatus();
          const std::optional<Phase> phase = ParsePhase(s.ColumnText(1));
          if (!phase) continue;  // a phase this version does not know is not counted
          counts.push_back({.spoke = s.ColumnText(0), .phase = *phase, .boxes = s.ColumnInt64(2)});
        }
      }));
  return counts;
}

}  // namespace llmbox::hub::store
