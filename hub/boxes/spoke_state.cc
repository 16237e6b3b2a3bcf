// hub/boxes/spoke_state.cc
#include "hub/boxes/spoke_state.h"

#include "common/clock.h"

namespace llmbox::hub::boxes {

std::string_view SpokeStateName(SpokeState state) {
  switch (state) {
    case SpokeState::kReady:
      return "ready";
    case SpokeState::kCordoned:
      return "cordoned";
    case SpokeState::kDraining:
      return "draining";
    case SpokeState::kDegraded:
      return "degraded";
    case SpokeState::kUnreachable:
      return "unreachable";
    case SpokeState::kRemoved:
      return "removed";
  }
  return "unknown";
}

SpokeState EffectiveSpokeState(const store::SpokeAdminRecord& admin,
                               const store::SpokeConditionRecord& condition, bool in_directory) {
  if (!in_directory) return SpokeState::kRemoved;
  switch (condition.condition) {
    case store::SpokeCondition::kUnreachable:
      return SpokeState::kUnreachable;
    case store::SpokeCondition::kDegraded:
      return SpokeState::kDegraded;
    case store::SpokeCondition::kHealthy:
      break;
  }
  switch (admin.state) {
    case store::SpokeAdminState::kDraining:
      return SpokeState::kDraining;
    case store::SpokeAdminState::kCordoned:
      return SpokeState::kCordoned;
    case store::SpokeAdminState::kReady:
      break;
  }
  return SpokeState::kReady;
}

std::string DescribeSpokeState(SpokeState state, const store::SpokeAdminRecord& admin,
                               const store::SpokeConditionRecord& condition) {
  std::string out(SpokeStateName(state));
  const auto since = [&out](std::int64_t ms) {
    if (ms > 0) out += " since " + common::FormatUtcSeconds(ms);
  };
  switch (state) {
    case SpokeState::kUnreachable:
    case SpokeState::kDegraded:
      since(condition.since_ms);
      if (!condition.reason.empty()) out += ": " + condition.reason;
      break;
    case SpokeState::kDraining:
    case SpokeState::kCordoned:
      since(admin.since_ms);
      out += " by the operator";
      if (!admin.reason.empty()) out += ": " + admin.reason;
      break;
    case SpokeState::kReady:
    case SpokeState::kRemoved:
      break;
  }
  return out;
}

std::string DescribeSpokeStateBrief(SpokeState state, const store::SpokeAdminRecord& admin,
                                    const store::SpokeConditionRecord& condition) {
  if (state != SpokeState::kUnreachable) return DescribeSpokeState(state, admin, condition);
  store::SpokeConditionRecord brief = condition;
  brief.reason.clear();
  return DescribeSpokeState(state, admin, brief);
}

}  // namespace llmbox::hub::boxes
