#include "tests/fakes/fake_spoke_client.h"

#include <algorithm>
#include <atomic>
#include <memory>

namespace llmbox::testing {

using hub::cluster::CancelHook;
using hub::cluster::CreateBoxArgs;
using hub::cluster::CreatedOnSpoke;
using hub::cluster::ExecArgs;
using hub::cluster::ExecOutput;
using hub::cluster::LogsArgs;
using hub::cluster::NetworkChange;
using hub::cluster::NetworkMode;
using hub::cluster::SpokeBox;
using hub::cluster::SpokeHealth;
using hub::cluster::SpokeLogs;
using hub::cluster::SubmitCodeArgs;
using hub::cluster::SubmitOutcome;

absl::StatusOr<CreatedOnSpoke> FakeSpokeClient::CreateBox(const CreateBoxArgs& args,
                                                          std::chrono::milliseconds timeout) {
  auto created = MakeBox(args, timeout);
  std::function<void(const CreateBoxArgs&)> during;
  {
    std::lock_guard lock(mu);
    during = during_create;
  }
  if (created.ok() && during) during(args);
  return created;
}

absl::StatusOr<CreatedOnSpoke> FakeSpokeClient::MakeBox(const CreateBoxArgs& args,
                                                        std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu);
  timeouts_.emplace("CreateBox", timeout);
  creates.push_back(args);
  if (!create_status.ok()) return create_status;
  SpokeBox& box = boxes[args.box_id];
  box = SpokeBox{.box_id = args.box_id,
                 .container_id = "c0ffee" + args.box_id,
                 .phase = hub::store::Phase::kPending,
                 .image = args.image.empty() ? "llmbox-box:dev" : args.image,
                 .expires_at = std::chrono::sys_time<std::chrono::milliseconds>(
                     std::chrono::milliseconds(4'000'000'000'000))};
  box.network.mode = NetworkMode::kAllowlist;
  if (args.network.has_value()) {
    if (args.network->mode != NetworkMode::kDefault) box.network.mode = args.network->mode;
    box.network.allow = args.network->allow;
  }
  if (box.network.mode == NetworkMode::kAllowlist) box.network.base = network_base;
  if (box.network.mode != NetworkMode::kNone) box.network.proxy = "http://10.200.0.1:3128";
  SpokeBox answered = box;
  answered.at = AnswerPosition();
  return CreatedOnSpoke{.box = answered, .authorize_url = authorize_url};
}

absl::StatusOr<SpokeBox> FakeSpokeClient::GetBox(const std::string& box_id,
                                                 std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu);
  timeouts_.emplace("GetBox", timeout);
  got.push_back(box_id);
  if (!get_status.ok()) return get_status;
  auto it = boxes.find(box_id);
  if (it == boxes.end()) return absl::NotFoundError("no such box");
  SpokeBox answered = it->second;
  answered.at = AnswerPosition();
  return answered;
}

absl::StatusOr<SpokeBox> FakeSpokeClient::SetBoxNetwork(const std::string& box_id,
                                                        const NetworkChange& change,
                                                        std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu);
  timeouts_.emplace("SetBoxNetwork", timeout);
  network_changes.emplace_back(box_id, change);
  if (!set_network_status.ok()) return set_network_status;
  auto it = boxes.find(box_id);
  if (it == boxes.end()) return absl::NotFoundError("no such box");
  auto& network = it->second.network;
  for (const auto& entry : change.remove) std::erase(network.allow, entry);
  for (const auto& entry : change.add) {
    if (std::find(network.allow.begin(), network.allow.end(), entry) == network.allow.end()) {
      network.allow.push_back(entry);
    }
  }
  if (change.mode != NetworkMode::kDefault) network.mode = change.mode;
  SpokeBox answered = it->second;
  answered.at = AnswerPosition();
  return answered;
}

hub::cluster::FeedPosition FakeSpokeClient::AnswerPosition() const {
  if (feed_epoch == 0) return {};
  return {.epoch = feed_epoch, .seq = feed_seq};
}

void FakeSpokeClient::Change(const std::string& box_id) {
  std::lock_guard lock(mu);
  feed_changes[box_id] = ++feed_seq;
}

absl::StatusOr<std::vector<SpokeBox>> FakeSpokeClient::ListBoxes(
    std::chrono::milliseconds timeout) {
  std::vector<SpokeBox> out;
  std::function<void()> hook;
  {
    std::lock_guard lock(mu);
    timeouts_.emplace("ListBoxes", timeout);
    if (!list_status.ok()) return list_status;
    for (const auto& [id, box] : boxes) out.push_back(box);
    hook = during_list;
  }
  if (hook) hook();
  return out;
}

absl::Status FakeSpokeClient::DestroyBox(const std::string& box_id,
                                         std::chrono::milliseconds timeout) {
  std::function<absl::Status(const std::string&)> hook;
  {
    std::lock_guard lock(mu);
    timeouts_.emplace("DestroyBox", timeout);
    destroyed.push_back(box_id);
    hook = during_destroy;
  }
  if (hook) {
    if (absl::Status answer = hook(box_id); !answer.ok()) return answer;
  }
  std::lock_guard lock(mu);
  if (!destroy_status.ok()) return destroy_status;
  if (boxes.erase(box_id) == 0) return absl::NotFoundError("no such box");
  return absl::OkStatus();
}

absl::StatusOr<SpokeLogs> FakeSpokeClient::GetLogs(const LogsArgs& args,
                                                   std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu);
  timeouts_.emplace("GetLogs", timeout);
  logs_asked.push_back(args);
  if (!logs_status.ok()) return logs_status;
  return logs;
}

absl::StatusOr<ExecOutput> FakeSpokeClient::Exec(const ExecArgs& args,
                                                 std::chrono::milliseconds timeout,
                                                 const CancelHook& on_cancel) {
  {
    std::lock_guard lock(mu);
    timeouts_.emplace("Exec", timeout);
    execs.push_back(args);
  }
  // Shared: the hook may keep the function past this call.
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  if (on_cancel) on_cancel([cancelled] { *cancelled = true; });
  std::function<void()> during;
  {
    std::lock_guard lock(mu);
    during = during_exec;
  }
  if (during) during();
  if (*cancelled) return absl::CancelledError("Cancelled");
  std::lock_guard lock(mu);
  if (!exec_status.ok()) return exec_status;
  return exec_output;
}

absl::StatusOr<SubmitOutcome> FakeSpokeClient::SubmitCode(const SubmitCodeArgs& args,
                                                          std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu);
  timeouts_.emplace("SubmitCode", timeout);
  submissions.push_back(args);
  if (!submit_status.ok()) return submit_status;
  return submit_outcome;
}

absl::StatusOr<SpokeHealth> FakeSpokeClient::HealthSince(std::chrono::milliseconds timeout,
                                                         const hub::cluster::FeedPosition& since) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu);
    hook = during_health;
  }
  if (hook) hook();
  std::lock_guard lock(mu);
  timeouts_.emplace("Health", timeout);
  health_positions.push_back(since);
  if (!health_status.ok()) return health_status;
  SpokeHealth answer = health;
  if (feed_epoch != 0) {
    answer.changes_at = {.epoch = feed_epoch, .seq = feed_seq};
    answer.changes_all = since.epoch != feed_epoch || since.seq > feed_seq;
    answer.changes.clear();
    if (!answer.changes_all) {
      for (const auto& [id, seq] : feed_changes) {
        if (seq > since.seq) answer.changes.emplace_back(id, seq);
      }
    }
  }
  return answer;
}

absl::StatusOr<hub::cluster::SpokeRemovals> FakeSpokeClient::ListRemovals(
    const std::string& journal_id, std::uint64_t after_seq, std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu);
  timeouts_.emplace("ListRemovals", timeout);
  removals_asked.emplace_back(journal_id, after_seq);
  if (!removals_status.ok()) return removals_status;
  if (removals_verbatim) return removals;
  hub::cluster::SpokeRemovals out = removals;
  out.removals.clear();
  const std::uint64_t after = journal_id == removals.journal_id ? after_seq : 0;
  for (const auto& removal : removals.removals) {
    if (removal.seq > after && out.removals.size() < removals_page) out.removals.push_back(removal);
  }
  return out;
}

void FakeSpokeClient::FailEveryCall(const absl::Status& status) {
  std::lock_guard lock(mu);
  for (absl::Status* each :
       {&create_status, &get_status, &set_network_status, &list_status, &destroy_status,
        &logs_status, &exec_status, &submit_status, &health_status, &removals_status}) {
    *each = status;
  }
}

std::vector<std::chrono::milliseconds> FakeSpokeClient::Timeouts(const std::string& method) {
  std::lock_guard lock(mu);
  std::vector<std::chrono::milliseconds> out;
  auto [begin, end] = timeouts_.equal_range(method);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

}  // namespace llmbox::testing
