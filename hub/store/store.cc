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

std::string_view SpokeAdminStateName(SpokeAdminState state) {
  switch (state) {
    case SpokeAdminState::kReady:
      return "ready";
    case SpokeAdminState::kCordoned:
      return "cordoned";
    case SpokeAdminState::kDraining:
      return "draining";
  }
  return "unknown";
}

std::optional<SpokeAdminState> ParseSpokeAdminState(std::string_view name) {
  for (SpokeAdminState s :
       {SpokeAdminState::kReady, SpokeAdminState::kCordoned, SpokeAdminState::kDraining}) {
    if (SpokeAdminStateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view SpokeConditionName(SpokeCondition c) {
  switch (c) {
    case SpokeCondition::kHealthy:
      return "healthy";
    case SpokeCondition::kDegraded:
      return "degraded";
    case SpokeCondition::kUnreachable:
      return "unreachable";
  }
  return "unknown";
}

std::optional<SpokeCondition> ParseSpokeCondition(std::string_view name) {
  for (SpokeCondition c :
       {SpokeCondition::kHealthy, SpokeCondition::kDegraded, SpokeCondition::kUnreachable}) {
    if (SpokeConditionName(c) == name) return c;
  }
  return std::nullopt;
}

}  // namespace llmbox::hub::store
