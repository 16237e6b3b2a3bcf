// hub/boxes/removal_audit.h
//
// Brings the boxes a spoke removed on its own (its reaper: pending boxes past auth_ttl, boxes
// whose container was gone) into the hub's audit log, once each. The spoke keeps them in its
// removal journal (spoke/reaper/removal_journal.h) until asked; the hub asks for those after
// the last one it recorded (store::RemovalCursor), writes a `box.reap` record for each, then
// moves its cursor on. The registry calls Collect from every reconcile of a spoke (the
// periodic one, and the monitor's return hook, which runs when a spoke's counts show a box
// changed by itself), so a reaped box reaches the log within a health round or two.
//
//   RemovalAudit removals(store, audit, {});
//   (void)removals.Collect("worker-1", *client);   // errors are logged too
//
// A record:
//   {"time":"...","event":"box.reap","principal":"spoke:worker-1","client":"","box_id":"b1",
//    "spoke":"worker-1","outcome":"ok","reason":"expired","removed_at":"2026-11-30T07:00:00Z",
//    "seq":"12"}
// `time` is when the hub wrote it; `removed_at` when the spoke removed the box, by its clock.
//
// Once: the cursor moves after each answer's records are written. A hub that dies between the
// two writes the records of that one answer again at its next collection (at most
// kMaxPerAnswer; `seq` tells them apart). A place the store could not keep is kept in memory
// (this run records nothing twice) and written before the next collection records more. A
// journal the spoke started anew (another id: its state directory was lost) is read from its
// start. Entries the spoke dropped before the hub asked (its journal is bounded) are logged as
// lost, never invented.
//
// Hostile spoke: everything in an answer is its word. At most kMaxPerAnswer entries of an
// answer are looked at and at most max_answers answers per collection, so a spoke that lies
// cannot flood the log; an entry must have a sequence number above the last one recorded and
// the entry before it (else the rest of the answer is refused), a valid box id, and a reason
// of [a-z_] (anything else: "unknown"); texts are cut to kMaxTextBytes (and redacted and cut
// again by the audit log). Entries refused for their content are counted in the hub's log,
// never written raw. A journal id that is not 1..64 of [A-Za-z0-9_-] refuses the answer.
//
// Thread-safe. Collections of one spoke run one at a time (a second one meanwhile returns at
// once: the first records what there is).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/status.h"

#include "hub/audit/audit_log.h"
#include "hub/cluster/spoke_client.h"
#include "hub/store/store.h"

namespace llmbox::hub::boxes {

struct RemovalAuditOptions {
  std::chrono::milliseconds call_timeout{15'000};  // one ListRemovals
  std::size_t max_answers = 10;                    // ListRemovals calls per collection
};

class RemovalAudit {
 public:
  static constexpr std::size_t kMaxPerAnswer = 100;
  static constexpr std::size_t kMaxTextBytes = 512;

  // `store` and `audit` must outlive this.
  RemovalAudit(store::Store& store, audit::AuditLog& audit, RemovalAuditOptions options);

  // Records the removals `spoke` made since the last collection (see the file comment). OK
  // when there was nothing new, and for a spoke that keeps no journal (Unimplemented: an older
  // spoke); the spoke's error (Unavailable, ...) or the store's otherwise, logged too.
  // InvalidArgument when the spoke's answer is refused.
  [[nodiscard]] absl::Status Collect(const std::string& spoke, cluster::SpokeClient& client);

 private:
  [[nodiscard]] absl::Status CollectLocked(const std::string& spoke, cluster::SpokeClient& client);
  // Writes `cursor` to the store and keeps it in cursors_ (saved or not); the store's error.
  [[nodiscard]] absl::Status Save(const store::RemovalCursor& cursor);

  struct Kept {
    store::RemovalCursor cursor;
    bool saved = true;  // false: the store refused it; written before the next collection
  };

  store::Store& store_;
  audit::AuditLog& audit_;
  const RemovalAuditOptions options_;
  std::mutex mu_;
  std::set<std::string> collecting_;  // spokes a Collect runs for; guarded by mu_
  // The cursors as last read or written (one store read per spoke per hub run, not one per
  // reconcile); guarded by mu_.
  std::map<std::string, Kept> cursors_;
};

}  // namespace llmbox::hub::boxes
