// spoke/reaper/removal_journal.h
//
// The boxes a spoke removed on its own (its reaper), kept until the hub collects them for its
// audit log (ListRemovals in proto/llmbox/v1/box.proto). Each entry gets the next sequence
// number of the journal; the hub remembers the last one it recorded and asks for those after
// it. The journal has an id of its own, made when it is first made: a spoke whose state
// directory lost its journal starts another (another id), and the hub then reads it from its
// start instead of waiting for sequence numbers it has seen.
//
//   RemovalJournal journal({.path = state_dir + "/removals.json"}, clock);
//   (void)journal.Load();                 // a journal that cannot be read is started anew
//   journal.Add("b1", "expired", absl::OkStatus());
//   RemovalPage page = journal.After(hub_journal_id, hub_seq, 100);
//
// Bounded: at most `max_entries` entries (the oldest are dropped first; the hub learns of the
// gap from first_seq), box ids, reasons and errors cut to kMaxTextBytes. Persisted: every Add
// rewrites the file atomically (common/files.h, mode 0600) before it returns, so a spoke
// restart loses no entry the hub has not collected. Removals are rare (a reaper pass every
// interval), so a whole-file write per entry costs nothing that matters.
//
// Thread-safe: one mutex around the entries and the file.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "common/clock.h"

namespace llmbox::spoke::reaper {

// Why the spoke removed a box (Removal.reason).
inline constexpr std::string_view kReasonExpired = "expired";               // pending past auth_ttl
inline constexpr std::string_view kReasonContainerGone = "container_gone";  // its container gone

// One removal.
struct RemovalEntry {
  std::uint64_t seq = 0;
  std::string box_id;
  std::string reason;
  std::int64_t at_ms = 0;  // Unix milliseconds, the spoke's clock
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string error;  // the failure's message, when not removed
};

// What After returns.
struct RemovalPage {
  std::string journal_id;
  std::vector<RemovalEntry> entries;  // oldest first
  std::uint64_t first_seq = 0;        // the oldest held; 0 when none
  std::uint64_t last_seq = 0;         // the newest ever given; 0 when none
};

struct RemovalJournalOptions {
  std::string path;  // the file; empty: kept in memory only (tests)
  std::size_t max_entries = 1000;
};

class RemovalJournal {
 public:
  static constexpr std::size_t kMaxTextBytes = 512;
  static constexpr std::size_t kMaxPage = 100;

  // `clock` must outlive the journal. The journal is empty (with a new id) until Load().
  RemovalJournal(RemovalJournalOptions options, common::Clock& clock);

  // Reads the file. A missing file is a new journal (OK). A file that cannot be read or is
  // not what Save writes starts a new journal too (with a new id, so the hub reads it whole);
  // the error, naming the file, is returned for the caller to log.
  [[nodiscard]] absl::Status Load();

  // Appends an entry at the clock's now (dropping the oldest past max_entries) and saves the
  // file. The entry is kept in memory even when the file cannot be written (returned error,
  // naming the file): the hub still gets it unless the spoke restarts first.
  [[nodiscard]] absl::Status Add(std::string_view box_id, std::string_view reason,
                                 const absl::Status& outcome);

  // The entries after `after_seq` when `journal_id` is this journal's id, else all of them;
  // at most min(max, kMaxPage).
  RemovalPage After(std::string_view journal_id, std::uint64_t after_seq, std::size_t max) const;

  std::string id() const;

 private:
  [[nodiscard]] absl::Status SaveLocked() const;
  void StartNewLocked();

  const RemovalJournalOptions options_;
  common::Clock& clock_;
  mutable std::mutex mu_;
  std::string id_;                    // guarded by mu_
  std::uint64_t last_seq_ = 0;        // guarded by mu_
  std::deque<RemovalEntry> entries_;  // guarded by mu_; oldest first
};

}  // namespace llmbox::spoke::reaper
