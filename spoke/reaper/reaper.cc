#include "spoke/reaper/reaper.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"

namespace llmbox::spoke::reaper {

Reaper::Reaper(box::BoxManager& boxes, docker::DockerEngine& engine, common::Clock& clock,
               ReaperOptions options)
    : boxes_(boxes),
      engine_(engine),
      clock_(clock),
      options_(options),
      task_(clock, options.interval, [this] {
        const Sweep sweep = RunOnce();
        if (options_.on_sweep) options_.on_sweep(sweep);
      }) {}

Reaper::~Reaper() { Stop(); }

Sweep Reaper::RunOnce() {
  Sweep sweep;
  auto note_error = [&](std::string text) {
    spdlog::warn("reaper: {}", text);
    sweep.errors.push_back(std::move(text));
  };
  auto boxes = boxes_.List();
  if (!boxes.ok()) {
    note_error(absl::StrCat("listing boxes: ", boxes.status().message()));
    return sweep;
  }
  const auto now = clock_.Now();
  std::set<std::string> with_container;
  for (const auto& box : *boxes) {
    with_container.insert(box.box_id);
    if (box.phase != box::BoxPhase::kPending || now - box.created <= options_.auth_ttl) continue;
    auto destroyed = boxes_.Destroy(box.box_id, options_.grace);
    // A box some other call removed meanwhile (Destroy found nothing) is not the reaper's.
    if (!destroyed.ok() || *destroyed) Journal(box.box_id, kReasonExpired, destroyed.status());
    if (!destroyed.ok()) {
      note_error(
          absl::StrCat("destroying expired box ", box.box_id, ": ", destroyed.status().message()));
      continue;
    }
    spdlog::info("reaper: destroyed box {}: pending for longer than auth_ttl ({} s)", box.box_id,
                 options_.auth_ttl.count() / 1000);
    sweep.expired_boxes.push_back(box.box_id);
  }
  auto networks = engine_.ListNetworks({{box::BoxManager::kManagedLabel, "true"}});
  if (!networks.ok()) {
    note_error(absl::StrCat("listing networks: ", networks.status().message()));
    return sweep;
  }
  for (const auto& network : *networks) {
    auto it = network.labels.find(box::BoxManager::kBoxIdLabel);
    if (it == network.labels.end()) continue;
    const std::string& box_id = it->second;
    // Another spoke's network on a shared engine (perhaps of a box that spoke is creating
    // right now, whose container does not exist yet) is not this reaper's.
    if (!boxes_.Owns(network.labels)) continue;
    // A box being created has its network before its container.
    if (with_container.count(box_id) != 0 || boxes_.IsBeingCreated(box_id)) continue;
    auto destroyed = boxes_.Destroy(box_id, options_.grace);
    if (!destroyed.ok() || *destroyed) Journal(box_id, kReasonContainerGone, destroyed.status());
    if (!destroyed.ok()) {
      note_error(
          absl::StrCat("removing network ", network.name, ": ", destroyed.status().message()));
      continue;
    }
    spdlog::info("reaper: removed network {}: its box {} is gone", network.name, box_id);
    sweep.orphan_networks.push_back(network.name);
  }
  return sweep;
}

void Reaper::Journal(const std::string& box_id, std::string_view reason,
                     const absl::Status& outcome) {
  if (options_.journal == nullptr) return;
  {
    std::lock_guard lock(failing_mu_);
    if (outcome.ok()) {
      failing_.erase(box_id);
    } else if (!failing_.insert(box_id).second) {
      return;
    }
  }
  if (absl::Status st = options_.journal->Add(box_id, reason, outcome); !st.ok()) {
    spdlog::warn("reaper: the removal of box {} is kept in memory only: {}", box_id,
                 common::AsStd(st.message()));
  }
}

void Reaper::Start() { task_.Start(); }

void Reaper::Stop() { task_.Stop(); }

int Reaper::Passes() const { return task_.runs(); }

}  // namespace llmbox::spoke::reaper
