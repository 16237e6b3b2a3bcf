// spoke/reaper/reaper.h
//
// Runs on the spoke, so boxes die on time even while the hub is down. Every `interval` it
// destroys pending boxes older than `auth_ttl` (nobody activated them) and removes managed
// networks whose box container is gone (through BoxManager::Destroy, so destroy hooks run
// too). Each action is logged, and each box removed (or a removal that failed, once per run of
// failures) is written to `journal` for the hub's audit log (removal_journal.h).
//
//   Reaper reaper(boxes, engine, clock, {.interval = 30s, .auth_ttl = 15min});
//   reaper.Start();   // a background thread (common::PeriodicTask); waits go through `clock`
//   ...
//   reaper.Stop();
//
// Thread-safe. Errors of a pass are logged and returned in its Sweep; a pass never stops the
// reaper.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/periodic.h"
#include "spoke/box/manager.h"
#include "spoke/docker/engine.h"
#include "spoke/reaper/removal_journal.h"

namespace llmbox::spoke::reaper {

struct Sweep {
  std::vector<std::string> expired_boxes;    // pending past auth_ttl, destroyed
  std::vector<std::string> orphan_networks;  // networks without their box, removed
  std::vector<std::string> errors;           // what could not be done (logged too)
};

struct ReaperOptions {
  std::chrono::milliseconds interval{30'000};
  std::chrono::milliseconds auth_ttl{15 * 60'000};
  std::chrono::seconds grace{10};
  // Told of each pass of the background thread (/metrics); may be empty.
  std::function<void(const Sweep&)> on_sweep;
  // Where removals are written for the hub's audit log; not owned, may be null (none).
  RemovalJournal* journal = nullptr;
};

class Reaper {
 public:
  // `boxes`, `engine` and `clock` must outlive the reaper; `options.interval` must be positive
  // (the config checks it is at least 1 s).
  Reaper(box::BoxManager& boxes, docker::DockerEngine& engine, common::Clock& clock,
         ReaperOptions options);
  ~Reaper();  // Stop()

  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // One pass, now.
  Sweep RunOnce();

  // A pass every interval on a background thread (the first one interval from now), until
  // Stop(). Stop waits for a pass in progress; a stopped reaper does not start again.
  void Start();
  void Stop();

  // Passes completed by the background thread (for tests).
  int Passes() const;

 private:
  box::BoxManager& boxes_;
  docker::DockerEngine& engine_;
  common::Clock& clock_;
  // Writes a removal of `box_id` to the journal: every success, and a failure only when the
  // box's last entry was no failure (a box that cannot be removed is tried every pass).
  void Journal(const std::string& box_id, std::string_view reason, const absl::Status& outcome);

  const ReaperOptions options_;
  std::mutex failing_mu_;
  std::set<std::string> failing_;  // boxes whose last journal entry is a failure; failing_mu_
  // Last, so it stops before what its passes use goes away.
  common::PeriodicTask task_;
};

}  // namespace llmbox::spoke::reaper
