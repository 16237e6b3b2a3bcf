#pragma once

// An in-memory hub::cluster::SpokeClient: no gRPC, no threads. Tests set what the "spoke"
// answers and read each call it was asked, with the timeout it was given.
//
//   auto spoke = std::make_shared<FakeSpokeClient>();
//   spokes.Add("local", spoke, true);
//   spoke->create_status = absl::UnavailableError("connection reset");
//   registry.Create(...);   // -> Unavailable; spoke->Timeouts("DestroyBox") shows the undo

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "hub/cluster/spoke_client.h"

namespace llmbox::testing {

class FakeSpokeClient final : public hub::cluster::SpokeClient {
 public:
  [[nodiscard]] absl::StatusOr<hub::cluster::CreatedOnSpoke> CreateBox(
      const hub::cluster::CreateBoxArgs& args, std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::StatusOr<hub::cluster::SpokeBox> GetBox(
      const std::string& box_id, std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::StatusOr<std::vector<hub::cluster::SpokeBox>> ListBoxes(
      std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::StatusOr<hub::cluster::SpokeBox> SetBoxNetwork(
      const std::string& box_id, const hub::cluster::NetworkChange& change,
      std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::Status DestroyBox(const std::string& box_id,
                                        std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::StatusOr<hub::cluster::SpokeLogs> GetLogs(
      const hub::cluster::LogsArgs& args, std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::StatusOr<hub::cluster::ExecOutput> Exec(
      const hub::cluster::ExecArgs& args, std::chrono::milliseconds timeout,
      const hub::cluster::CancelHook& on_cancel) override;
  [[nodiscard]] absl::StatusOr<hub::cluster::SubmitOutcome> SubmitCode(
      const hub::cluster::SubmitCodeArgs& args, std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::StatusOr<hub::cluster::SpokeHealth> HealthSince(
      std::chrono::milliseconds timeout, const hub::cluster::FeedPosition& since) override;
  [[nodiscard]] absl::StatusOr<hub::cluster::SpokeRemovals> ListRemovals(
      const std::string& journal_id, std::uint64_t after_seq,
      std::chrono::milliseconds timeout) override;

  // The feed notes a change of the box (locks mu).
  void Change(const std::string& box_id);

  // Every call answers `status` from now on (a partition: Unavailable); OkStatus heals.
  void FailEveryCall(const absl::Status& status);

  // The timeouts `method` ("CreateBox", "Exec", ...) was called with, in order.
  std::vector<std::chrono::milliseconds> Timeouts(const std::string& method);

  std::mutex mu;
  // What the fake answers (guarded by mu). A create makes a pending box in `boxes` (its
  // network the policy asked for, allowlist by default, with `network_base`); a get, a
  // network change or a destroy of a box it does not have is NotFound; a network change
  // applies to the box in `boxes` (a set_network_status error applies nothing); an Exec whose
  // hook cancels it at once (as a gRPC call cancelled before it started) is Cancelled.
  absl::Status create_status;
  absl::Status get_status;
  absl::Status set_network_status;
  absl::Status list_status;
  absl::Status destroy_status;
  absl::Status logs_status;
  absl::Status exec_status;
  absl::Status submit_status;
  absl::Status health_status;
  // ListRemovals answers `removals`' journal id and sequence numbers, and its entries after
  // the caller's sequence number when the caller names that journal (all of them otherwise),
  // at most removals_page; with removals_verbatim, every entry as set, whatever was asked (a
  // lying spoke). removals_asked: each call's (journal id, after).
  absl::Status removals_status;
  hub::cluster::SpokeRemovals removals;
  std::size_t removals_page = 100;
  bool removals_verbatim = false;
  std::vector<std::pair<std::string, std::uint64_t>> removals_asked;
  std::string authorize_url = "https://claude.ai/oauth/authorize?fake=1";
  std::vector<std::string> network_base = {"api.anthropic.com:443"};
  hub::cluster::SpokeLogs logs;
  hub::cluster::ExecOutput exec_output;
  hub::cluster::SubmitOutcome submit_outcome;
  hub::cluster::SpokeHealth health{
      .max_boxes = 20, .engine_reachable = true, .allowed_images = {"llmbox-box:dev"}};
  // Runs inside Exec (without mu held), after the cancel hook and before the answer: while
  // the exec is in flight. A test advances a fake clock here (the exec's duration), or makes
  // another call that must meet this exec running.
  std::function<void()> during_exec;
  // Runs inside a successful CreateBox (without mu held), after the box is in `boxes` and
  // before the answer: while the create is in flight.
  std::function<void(const hub::cluster::CreateBoxArgs&)> during_create;
  // Runs inside ListBoxes (without mu held) after the list is taken, before it answers: what
  // happens on the spoke while the answer is on its way.
  std::function<void()> during_list;
  // Runs inside Health (without mu held) before it answers.
  std::function<void()> during_health;
  // Runs inside DestroyBox (without mu held) before it answers; an error it returns is the
  // answer (nothing destroyed).
  std::function<absl::Status(const std::string& box_id)> during_destroy;
  // State and what it was asked.
  std::map<std::string, hub::cluster::SpokeBox> boxes;  // by box id
  std::vector<hub::cluster::CreateBoxArgs> creates;
  std::vector<std::string> got;                              // GetBox's box ids
  std::vector<hub::cluster::FeedPosition> health_positions;  // Health's `since`, in order
  // A change feed like a spoke's (spoke/service/change_feed.h), off while feed_epoch is 0:
  // answers that show a box carry {feed_epoch, feed_seq}, and Health lists the boxes Changed
  // after the position it was given (all of them for another epoch).
  std::uint64_t feed_epoch = 0;
  std::uint64_t feed_seq = 0;
  std::map<std::string, std::uint64_t> feed_changes;  // box id -> its latest change's number
  std::vector<std::pair<std::string, hub::cluster::NetworkChange>> network_changes;
  std::vector<std::string> destroyed;
  std::vector<hub::cluster::LogsArgs> logs_asked;
  std::vector<hub::cluster::ExecArgs> execs;
  std::vector<hub::cluster::SubmitCodeArgs> submissions;

 private:
  // Where an answer that shows a box was taken in the feed (mu held).
  hub::cluster::FeedPosition AnswerPosition() const;
  // CreateBox under mu.
  [[nodiscard]] absl::StatusOr<hub::cluster::CreatedOnSpoke> MakeBox(
      const hub::cluster::CreateBoxArgs& args, std::chrono::milliseconds timeout);

  std::multimap<std::string, std::chrono::milliseconds> timeouts_;  // by method, in call order
};

}  // namespace llmbox::testing
