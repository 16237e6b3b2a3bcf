// hub/boxes/spoke_monitor.cc
// PLACEHOLDER (coordinator): implemented by the monitor helper, whose file replaces this one
// whole at the merge. Until then (store helper's branch), a minimal Poll/View/Find/
// IsUnreachable so that list_spokes and /readyz, which answer from View, can be tested: one
// Health call per spoke a round, unreachable after unreachable_after failures in a row,
// operator states and box counts read from the store. No degraded window, trials or Place.
#include "hub/boxes/spoke_monitor.h"

#include <map>
#include <memory>
#include <mutex>

#include "common/absl_compat.h"
#include "hub/boxes/registry.h"

namespace llmbox::hub::boxes {
namespace {

struct PlaceholderState {
  store::Store* store = nullptr;
  SpokeDirectory* directory = nullptr;
  common::Clock* clock = nullptr;
  MonitorOptions options;
  std::mutex mu;
  std::map<std::string, SpokeView> views;  // by name
  std::map<std::string, int> failures;     // health calls in a row that failed
};

// The header has no member for it (the monitor helper's adds its own).
std::mutex states_mu;
std::map<const SpokeMonitor*, std::unique_ptr<PlaceholderState>> states;

PlaceholderState& StateOf(const SpokeMonitor* monitor) {
  std::lock_guard lock(states_mu);
  return *states.at(monitor);
}

}  // namespace

CreateOutcome ClassifyCreateFailure(const absl::Status& status) {
  if (status.ok()) return CreateOutcome::kSucceeded;
  return CreateOutcome::kNotCounted;
}

SpokeMonitor::SpokeMonitor(store::Store& store, SpokeDirectory& directory, common::Clock& clock,
                           MonitorOptions options) {
  auto state = std::make_unique<PlaceholderState>();
  state->store = &store;
  state->directory = &directory;
  state->clock = &clock;
  state->options = options;
  std::lock_guard lock(states_mu);
  states[this] = std::move(state);
}

SpokeMonitor::~SpokeMonitor() {
  std::lock_guard lock(states_mu);
  states.erase(this);
}

void SpokeMonitor::SetReturnHook(std::function<void(const std::string&)>) {}

void SpokeMonitor::Poll() {
  PlaceholderState& s = StateOf(this);
  const std::int64_t now = common::ToUnixMillis(s.clock->Now());
  std::map<std::string, store::SpokeAdminRecord> admin;
  if (auto rows = s.store->ListSpokeAdmin(); rows.ok()) {
    for (auto& row : *rows) admin[row.name] = row;
  }
  std::map<std::string, store::SpokeBoxCount> counts;
  if (auto rows = s.store->CountBoxesBySpoke(); rows.ok()) counts = *std::move(rows);
  std::map<std::string, SpokeView> views;
  for (const auto& entry : s.directory->List()) {
    auto health = entry.client->Health(s.options.health_timeout);
    std::lock_guard lock(s.mu);
    SpokeView view;
    if (auto it = s.views.find(entry.name); it != s.views.end()) view = it->second;
    view.name = entry.name;
    view.local = entry.local;
    view.condition.name = entry.name;
    view.condition.checked_at_ms = now;
    if (health.ok()) {
      s.failures[entry.name] = 0;
      view.health = *health;
      if (view.condition.condition != store::SpokeCondition::kHealthy) {
        view.condition = {.name = entry.name, .since_ms = now, .checked_at_ms = now};
      }
    } else if (++s.failures[entry.name] >= s.options.unreachable_after &&
               view.condition.condition != store::SpokeCondition::kUnreachable) {
      view.condition = {.name = entry.name,
                        .condition = store::SpokeCondition::kUnreachable,
                        .reason = std::string(common::AsStd(health.status().message())),
                        .since_ms = now,
                        .checked_at_ms = now};
    }
    views[entry.name] = std::move(view);
  }
  for (const auto& [name, count] : counts) {
    if (!views.contains(name)) views[name] = {.name = name};
  }
  for (auto& [name, view] : views) {
    view.admin = admin.contains(name) ? admin[name] : store::SpokeAdminRecord{.name = name};
    view.registry_boxes = counts.contains(name) ? counts[name] : store::SpokeBoxCount{};
    const bool in_directory = s.directory->Find(name) != nullptr;
    if (!in_directory) view.health.reset();
    view.state = EffectiveSpokeState(view.admin, view.condition, in_directory);
  }
  std::lock_guard lock(s.mu);
  s.views = std::move(views);
}

std::vector<SpokeView> SpokeMonitor::View() const {
  PlaceholderState& s = StateOf(this);
  std::lock_guard lock(s.mu);
  std::vector<SpokeView> out;
  for (const auto& [name, view] : s.views) out.push_back(view);
  return out;
}

std::optional<SpokeView> SpokeMonitor::Find(std::string_view name) const {
  PlaceholderState& s = StateOf(this);
  std::lock_guard lock(s.mu);
  auto it = s.views.find(std::string(name));
  if (it == s.views.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> SpokeMonitor::Place(const std::string&, const std::set<std::string>&) {
  return absl::UnimplementedError("Place");
}
void SpokeMonitor::RecordCreate(std::string_view, CreateOutcome, std::string_view) {}
void SpokeMonitor::CancelPlacement(std::string_view) {}

bool SpokeMonitor::IsUnreachable(std::string_view spoke) const {
  auto view = Find(spoke);
  return view.has_value() && view->state == SpokeState::kUnreachable;
}

bool SpokeMonitor::IsTrialBox(std::string_view) const { return false; }

}  // namespace llmbox::hub::boxes
