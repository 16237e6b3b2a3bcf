// spoke/reaper/reaper.h
//
// Runs on the spoke, so boxes die on time even while the hub is down. Every `interval` it
// destroys pending boxes older than `auth_ttl` (nobody activated them) and removes managed
// networks whose box container is gone (through BoxManager::Destroy, so destroy hooks run
// too). Each action is logged.
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
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/periodic.h"
#include "spoke/box/manager.h"
#include "spoke/docker/engine.h"

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
  const ReaperOptions options_;
  // Last, so it stops before what its passes use goes away.
  common::PeriodicTask task_;
};

}  // namespace llmbox::spoke::reaper
