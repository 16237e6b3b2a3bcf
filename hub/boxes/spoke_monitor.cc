// hub/boxes/spoke_monitor.cc
// PLACEHOLDER (coordinator): implemented by the monitor helper.
#include "hub/boxes/spoke_monitor.h"

#include "hub/boxes/registry.h"

namespace llmbox::hub::boxes {

CreateOutcome ClassifyCreateFailure(const absl::Status& status) {
  if (status.ok()) return CreateOutcome::kSucceeded;
  return CreateOutcome::kNotCounted;
}

SpokeMonitor::SpokeMonitor(store::Store&, SpokeDirectory&, common::Clock&, MonitorOptions) {}
SpokeMonitor::~SpokeMonitor() = default;
void SpokeMonitor::SetReturnHook(std::function<void(const std::string&)>) {}
void SpokeMonitor::Poll() {}
std::vector<SpokeView> SpokeMonitor::View() const { return {}; }
std::optional<SpokeView> SpokeMonitor::Find(std::string_view) const { return std::nullopt; }
absl::StatusOr<std::string> SpokeMonitor::Place(const std::string&, const std::set<std::string>&) {
  return absl::UnimplementedError("Place");
}
void SpokeMonitor::RecordCreate(std::string_view, CreateOutcome, std::string_view) {}
void SpokeMonitor::CancelPlacement(std::string_view) {}
bool SpokeMonitor::IsUnreachable(std::string_view) const { return false; }
bool SpokeMonitor::IsTrialBox(std::string_view) const { return false; }

}  // namespace llmbox::hub::boxes
