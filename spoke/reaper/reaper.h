// spoke/reaper/reaper.h
//
// Runs on the spoke, so boxes die on time even while the hub is down. Every `interval` it
// destroys pending boxes older than `auth_ttl` (nobody activated them) and removes managed
// networks whose box container is gone (through BoxManager::Destroy, so destroy hooks run
// too). Each action is logged.
//
//   Reaper reaper(boxes, engine, clock, {.interval = 30s, .auth_ttl = 15min});
//   reaper.Start();   // a background thread; waits go through `clock`
//   ...
//   reaper.Stop();
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "spoke/box/manager.h"
#include "spoke/docker/engine.h"

namespace llmbox::spoke::reaper {

struct ReaperOptions {
  std::chrono::milliseconds interval{30'000};
  std::chrono::milliseconds auth_ttl{15 * 60'000};
  std::chrono::seconds grace{10};
};

struct Sweep {
  std::vector<std::string> expired_boxes;    // pending past auth_ttl, destroyed
  std::vector<std::string> orphan_networks;  // networks without their box, removed
  std::vector<std::string> errors;           // what could not be done (logged too)
};

class Reaper {
 public:
  Reaper(box::BoxManager& boxes, docker::DockerEngine& engine, common::Clock& clock,
         ReaperOptions options);
  ~Reaper();

  // One pass, now.
  Sweep RunOnce();

  // A pass every interval on a background thread, until Stop().
  void Start();
  void Stop();

  // Passes completed by the background thread (for tests).
  int Passes();

 private:
  box::BoxManager& boxes_;
  docker::DockerEngine& engine_;
  common::Clock& clock_;
  const ReaperOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int passes_ = 0;
  std::thread thread_;
};

}  // namespace llmbox::spoke::reaper
