// hub/admin/spoke_state_commands.cc
#include "hub/admin/spoke_state_commands.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/config.h"
#include "common/status.h"
#include "hub/boxes/spoke_state.h"

namespace llmbox::hub::admin {
namespace {

constexpr std::string_view kLocal = "local";

std::string Quoted(std::string_view name) { return "\"" + Printable(name) + "\""; }

std::string Boxes(std::int64_t n) {
  return std::to_string(n) + (n == 1 ? " live box" : " live boxes");
}

[[nodiscard]] absl::Status ValidateReason(std::string_view reason) {
  if (reason.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError("--reason: at most " + std::to_string(kMaxReasonBytes) +
                                      " bytes, got " + std::to_string(reason.size()));
  }
  for (std::size_t i = 0; i < reason.size(); ++i) {
    const auto c = static_cast<unsigned char>(reason[i]);
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("--reason: control characters are not allowed (byte " +
                                        std::to_string(c) + " at offset " + std::to_string(i) +
                                        ")");
    }
  }
  return absl::OkStatus();
}

// What the CLI knows of the spokes: the joined ones, the local one when configured, and the
// names that still hold live registry boxes; with what an operator set and the hub observed.
struct Spokes {
  std::map<std::string, store::SpokeRecord> joined;
  bool local = false;
  std::map<std::string, store::SpokeBoxCount> boxes;
  std::map<std::string, store::SpokeAdminRecord> admin;
  std::map<std::string, store::SpokeConditionRecord> conditions;

  bool InDirectory(const std::string& name) const {
    return joined.contains(name) || (local && name == kLocal);
  }
  std::set<std::string> Names() const {
    std::set<std::string> names;
    for (const auto& [name, record] : joined) names.insert(name);
    if (local) names.insert(std::string(kLocal));
    for (const auto& [name, count] : boxes) names.insert(name);
    return names;
  }
  store::SpokeAdminRecord Admin(const std::string& name) const {
    auto it = admin.find(name);
    return it != admin.end() ? it->second : store::SpokeAdminRecord{.name = name};
  }
  store::SpokeConditionRecord Condition(const std::string& name) const {
    auto it = conditions.find(name);
    return it != conditions.end() ? it->second : store::SpokeConditionRecord{.name = name};
  }
  std::int64_t LiveBoxes(const std::string& name) const {
    auto it = boxes.find(name);
    return it != boxes.end() ? it->second.boxes : 0;
  }
};

[[nodiscard]] absl::StatusOr<Spokes> ReadSpokes(const config::HubConfig& config,
                                                store::Store& store) {
  Spokes spokes;
  spokes.local = config.local_spoke;
  LLMBOX_ASSIGN_OR_RETURN(std::vector<store::SpokeRecord> joined, store.ListSpokes());
  for (auto& spoke : joined) spokes.joined[spoke.name] = std::move(spoke);
  LLMBOX_ASSIGN_OR_RETURN(spokes.boxes, store.CountBoxesBySpoke());
  LLMBOX_ASSIGN_OR_RETURN(std::vector<store::SpokeAdminRecord> admin, store.ListSpokeAdmin());
  for (auto& record : admin) spokes.admin[record.name] = std::move(record);
  LLMBOX_ASSIGN_OR_RETURN(std::vector<store::SpokeConditionRecord> conditions,
                          store.ListSpokeConditions());
  for (auto& record : conditions) spokes.conditions[record.name] = std::move(record);
  return spokes;
}

[[nodiscard]] absl::Status RequireKnown(const Spokes& spokes, const std::string& name) {
  const std::set<std::string> names = spokes.Names();
  if (names.contains(name)) return absl::OkStatus();
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  // A name typed is bounded before it is echoed.
  const std::string shown = Quoted(name.substr(0, 80));
  if (known.empty()) {
    return absl::NotFoundError("no spoke " + shown +
                               ": this hub knows no spoke (none joined, no local spoke, none "
                               "holds boxes)");
  }
  return absl::NotFoundError("no spoke " + shown + ": the known spokes are " + known +
                             " (joined, local, or holding boxes; `llmbox-hub spoke list` shows "
                             "them)");
}

// Queues a destroy for each pending box of `spoke` (drain --destroy-pending); returns how many
// were not queued before.
[[nodiscard]] absl::StatusOr<std::int64_t> QueuePendingDestroys(store::Store& store,
                                                                const std::string& spoke,
                                                                std::int64_t now_ms) {
  const store::BoxFilter pending{.phase = store::Phase::kPending, .spoke = spoke};
  std::optional<store::BoxPosition> after;
  std::int64_t queued = 0;
  do {
    LLMBOX_ASSIGN_OR_RETURN(store::BoxPage page, store.ListBoxesPage(pending, after, 500));
    for (const store::BoxRecord& box : page.boxes) {
      if (box.destroy_queued_at_ms.has_value()) continue;
      // Only this record, and only while it is still pending: a box activated since the page
      // was read is someone's session now.
      absl::Status st = store.QueueDestroy(
          box.box_id, now_ms, {.token_hash = box.token_hash, .phase = store::Phase::kPending});
      if (absl::IsNotFound(st)) continue;  // destroyed, taken again or activated meanwhile
      LLMBOX_RETURN_IF_ERROR(st);
      ++queued;
    }
    after = page.next;
  } while (after.has_value());
  return queued;
}

// Polls the store until `spoke` holds no live box or `timeout` passes, printing the count when
// it changes.
int WaitForDrain(store::Store& store, const std::string& spoke, std::chrono::milliseconds timeout,
                 const std::string& timeout_text, common::Clock& clock) {
  const auto deadline = clock.SteadyNow() + timeout;
  std::optional<std::int64_t> last;
  while (true) {
    auto counts = store.CountBoxesBySpoke();
    if (!counts.ok()) return Fail(counts.status());
    const auto it = counts->find(spoke);
    const std::int64_t left = it == counts->end() ? 0 : it->second.boxes;
    if (left == 0) {
      std::fprintf(stderr, "llmbox-hub: spoke %s drained: it holds no live box\n",
                   Quoted(spoke).c_str());
      return 0;
    }
    if (left != last) {
      std::fprintf(stderr, "llmbox-hub: spoke %s: %s left\n", Quoted(spoke).c_str(),
                   Boxes(left).c_str());
      last = left;
    }
    const auto now = clock.SteadyNow();
    if (now >= deadline) {
      return Fail(absl::DeadlineExceededError("spoke " + Quoted(spoke) + " still holds " +
                                              Boxes(left) + " after " + timeout_text +
                                              "; it stays draining (run `llmbox-hub spoke drain " +
                                              Printable(spoke) + " --wait` to wait again)"));
    }
    clock.SleepFor(std::min<std::chrono::nanoseconds>(kDrainPollInterval, deadline - now));
  }
}

}  // namespace

int SpokeStateCommand(const CommandArgs& args, const config::HubConfig& config, store::Store& store,
                      common::Clock& clock) {
  const std::string& name = args.name;
  if (auto st = ValidateReason(args.reason); !st.ok()) return Fail(st);
  std::optional<std::chrono::milliseconds> timeout = kDefaultDrainTimeout;
  const std::string timeout_text = args.timeout.empty() ? "10m" : args.timeout;
  if (!args.timeout.empty()) {
    timeout = common::ParseDuration(args.timeout);
    if (!timeout)
      return Fail(absl::InvalidArgumentError("--timeout must look like 30s, 10m or 1h"));
  }
  auto spokes = ReadSpokes(config, store);
  if (!spokes.ok()) return Fail(spokes.status());
  if (auto st = RequireKnown(*spokes, name); !st.ok()) return Fail(st);

  const std::int64_t now = common::ToUnixMillis(clock.Now());
  const store::SpokeAdminRecord before = spokes->Admin(name);
  store::SpokeAdminRecord after = before;
  after.state = args.verb == "cordon"  ? store::SpokeAdminState::kCordoned
                : args.verb == "drain" ? store::SpokeAdminState::kDraining
                                       : store::SpokeAdminState::kReady;
  const bool same = before.state == after.state;
  // Running a command again keeps its time (and its reason, unless a new one is given), so a
  // second `drain --wait` does not restart the clock; uncordon forgets both.
  if (!same) after.since_ms = now;
  if (after.state == store::SpokeAdminState::kReady) {
    after.reason.clear();
  } else if (!args.reason.empty() || !same) {
    after.reason = args.reason;
  }
  after.destroy_pending = after.state == store::SpokeAdminState::kDraining &&
                          (args.destroy_pending || (same && before.destroy_pending));
  if (auto st = store.SetSpokeAdmin(after); !st.ok()) return Fail(st);

  const std::string quoted = Quoted(name);
  const std::int64_t live = spokes->LiveBoxes(name);
  if (args.verb == "uncordon") {
    std::fprintf(stderr,
                 "llmbox-hub: spoke %s %s: placement may choose it again from the serving hub's "
                 "next health round (it holds %s)\n",
                 quoted.c_str(), same ? "was not cordoned or draining" : "uncordoned",
                 Boxes(live).c_str());
    return 0;
  }
  if (args.verb == "cordon") {
    std::fprintf(stderr,
                 "llmbox-hub: spoke %s cordoned: placement passes it over from the serving "
                 "hub's next health round; its %s keep running (`llmbox-hub spoke uncordon %s` "
                 "puts it back)\n",
                 quoted.c_str(), Boxes(live).c_str(), Printable(name).c_str());
    return 0;
  }
  std::fprintf(
      stderr,
      "llmbox-hub: spoke %s draining: placement passes it over from the serving hub's "
      "next health round; its %s (%lld pending) are not destroyed by the drain: they "
      "go when their owners destroy them%s\n",
      quoted.c_str(), Boxes(live).c_str(),
      static_cast<long long>(spokes->boxes.contains(name) ? spokes->boxes[name].pending : 0),
      after.destroy_pending ? "" : " (--destroy-pending destroys the pending ones)");
  if (after.destroy_pending) {
    auto queued = QueuePendingDestroys(store, name, now);
    if (!queued.ok()) return Fail(queued.status());
    // A drain run again without the flag keeps it (see above) and says so only when it did
    // something.
    if (args.destroy_pending || *queued > 0) {
      std::fprintf(stderr,
                   "llmbox-hub: queued the destroy of %lld pending box(es) of spoke %s: the "
                   "serving hub destroys them, and every box of it still pending later, while it "
                   "drains\n",
                   static_cast<long long>(*queued), quoted.c_str());
    }
  }
  if (!args.wait) return 0;
  return WaitForDrain(store, name, *timeout, timeout_text, clock);
}

int SpokeListCommand(const config::HubConfig& config, store::Store& store) {
  auto spokes = ReadSpokes(config, store);
  if (!spokes.ok()) return Fail(spokes.status());
  std::printf("%-32s %-28s %-11s %6s %-22s %-22s %-24s %s\n", "NAME", "ADDRESS", "STATE", "BOXES",
              "JOINED", "CERT UNTIL", "LABELS", "DETAIL");
  for (const std::string& name : spokes->Names()) {
    const store::SpokeAdminRecord admin = spokes->Admin(name);
    const store::SpokeConditionRecord condition = spokes->Condition(name);
    const boxes::SpokeState state =
        boxes::EffectiveSpokeState(admin, condition, spokes->InDirectory(name));
    const std::int64_t live = spokes->LiveBoxes(name);
    std::string detail = state == boxes::SpokeState::kReady
                             ? std::string("-")
                             : boxes::DescribeSpokeState(state, admin, condition);
    if (admin.state == store::SpokeAdminState::kDraining) {
      if (state != boxes::SpokeState::kDraining) detail += "; draining";
      detail += live == 0 ? "; drained" : "; " + std::to_string(live) + " boxes left";
    }
    std::string address = "-", joined = "-", until = "-", labels;
    if (auto it = spokes->joined.find(name); it != spokes->joined.end()) {
      address = it->second.advertise_address;
      joined = common::FormatUtcSeconds(it->second.joined_at_ms);
      until = common::FormatUtcSeconds(it->second.not_after_ms);
      for (const auto& [key, value] : it->second.labels) {
        labels += (labels.empty() ? "" : ",") + key + "=" + value;
      }
    } else if (spokes->local && name == kLocal) {
      address = "(in-process)";
    }
    if (labels.empty()) labels = "-";
    std::printf("%-32s %-28s %-11s %6lld %-22s %-22s %-24s %s\n", Printable(name).c_str(),
                Printable(address).c_str(), std::string(boxes::SpokeStateName(state)).c_str(),
                static_cast<long long>(live), joined.c_str(), until.c_str(),
                Printable(labels).c_str(), Printable(detail).c_str());
  }
  return 0;
}

}  // namespace llmbox::hub::admin
