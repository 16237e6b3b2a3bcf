// hub/store/store.cc
#include "hub/store/store.h"

namespace llmbox::hub::store {

std::string_view PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kCreating:
      return "creating";
    case Phase::kPending:
      return "pending";
    case Phase::kActivating:
      return "activating";
    case Phase::kReady:
      return "ready";
    case Phase::kError:
      return "error";
    case Phase::kGone:
      return "gone";
  }
  return "unknown";
}

std::optional<Phase> ParsePhase(std::string_view name) {
  for (Phase p : {Phase::kCreating, Phase::kPending, Phase::kActivating, Phase::kReady,
                  Phase::kError, Phase::kGone}) {
    if (PhaseName(p) == name) return p;
  }
  return std::nullopt;
}

}  // namespace llmbox::hub::store
