// hub/boxes/registry.cc
#include "hub/boxes/registry.h"

#include <algorithm>
#include <future>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"
#include "hub/metrics/hub_metrics.h"

namespace llmbox::hub::boxes {
namespace {

using store::BoxRecord;
using store::Phase;

// A spoke's error with the spoke named, keeping its code.
[[nodiscard]] absl::Status SpokeError(std::string_view spoke, const absl::Status& status) {
  std::string message(common::AsStd(status.message()));
  if (absl::IsUnavailable(status)) {
    message = "spoke \"" + std::string(spoke) + "\" cannot be reached: " + message;
  } else if (absl::IsDeadlineExceeded(status)) {
    message = "spoke \"" + std::string(spoke) + "\" did not answer in time";
  }
  return absl::Status(status.code(), message);
}

// A call that could not reach the spoke (as opposed to an answer refusing it).
bool CannotReach(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

// Queued destroys a ReconcileSpoke completes per store read.
constexpr std::size_t kQueuedDestroyBatch = 100;
// What a spoke answers a code sent to a pending box that restarted and printed a new sign-in
// link (spoke/box/manager.cc, BoxManager::RestartedLogin): no attempt was made.
constexpr std::string_view kNewSignInAnswer =
    "the box restarted (its engine or its container did) and began a new sign-in, so the code "
    "was not used; sign in again from the new link";

// A queued destroy the spoke refused waits this long before the next try, doubling each time.
constexpr std::chrono::milliseconds kQueuedRetryMin{30'000};
constexpr std::chrono::milliseconds kQueuedRetryMax{600'000};

[[nodiscard]] absl::Status NoSuchBox(std::string_view box_id) {
  return absl::NotFoundError("no box " + common::QuoteForMessage(box_id) +
                             " (it may have been destroyed or reaped; list_llmboxes shows "
                             "the boxes there are)");
}

}  // namespace

void SpokeDirectory::Add(std::string name, std::shared_ptr<cluster::SpokeClient> client,
                         bool local) {
  std::lock_guard lock(mu_);
  Entry entry{.name = name, .local = local, .client = std::move(client)};
  spokes_[std::move(name)] = std::move(entry);
}

void SpokeDirectory::Remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = spokes_.find(name);
  if (it != spokes_.end()) spokes_.erase(it);
}

std::shared_ptr<cluster::SpokeClient> SpokeDirectory::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = spokes_.find(name);
  return it == spokes_.end() ? nullptr : it->second.client;
}

std::vector<SpokeDirectory::Entry> SpokeDirectory::List() const {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  for (const auto& [name, entry] : spokes_) out.push_back(entry);
  return out;
}

BoxRegistry::BoxRegistry(store::Store& store, SpokeDirectory& spokes, common::Clock& clock,
                         RegistryOptions options, QuotaBook* quotas)
    : store_(store),
      spokes_(spokes),
      clock_(clock),
      options_(std::move(options)),
      quotas_(quotas),
      live_(clock, {.max_age = options_.live_ttl, .max_age_tracked = options_.live_tracked_ttl}),
      monitor_(store, spokes, clock, options_.monitor) {
  monitor_.SetReturnHook([this](const std::string& spoke) { (void)ReconcileSpoke(spoke); });
  monitor_.SetLiveViews(&live_);
}

std::int64_t BoxRegistry::NowMs() { return common::ToUnixMillis(clock_.Now()); }

std::string BoxRegistry::AuthUrl(std::string_view token) const {
  std::lock_guard lock(options_mu_);
  return options_.public_url + "/auth/" + std::string(token);
}

void BoxRegistry::SetPublicUrl(std::string public_url) {
  std::lock_guard lock(options_mu_);
  options_.public_url = std::move(public_url);
}

absl::StatusOr<std::shared_ptr<cluster::SpokeClient>> BoxRegistry::SpokeFor(
    const BoxRecord& record) const {
  auto client = spokes_.Find(record.spoke);
  if (client == nullptr) {
    return absl::UnavailableError("box \"" + record.box_id + "\" is on spoke \"" + record.spoke +
                                  "\", which this hub does not know (any more)");
  }
  return client;
}

std::optional<std::string> BoxRegistry::UnreachableWhy(std::string_view spoke) const {
  if (!monitor_.IsUnreachable(spoke)) return std::nullopt;
  std::optional<SpokeView> view = monitor_.Find(spoke);
  if (!view.has_value()) return "unreachable";
  return DescribeSpokeStateBrief(SpokeState::kUnreachable, view->admin, view->condition);
}

absl::StatusOr<std::shared_ptr<cluster::SpokeClient>> BoxRegistry::ReachableSpokeFor(
    const BoxRecord& record) const {
  if (std::optional<std::string> why = UnreachableWhy(record.spoke)) {
    return absl::UnavailableError("box \"" + record.box_id + "\" is on spoke \"" + record.spoke +
                                  "\", which is " + *why +
                                  "; try again when list_spokes shows it ready");
  }
  return SpokeFor(record);
}

absl::StatusOr<CreatedBox> BoxRegistry::Create(const CreateRequest& request,
                                               const ProgressFn& progress) {
  const common::Clock::SteadyTime start = clock_.SteadyNow();
  absl::StatusOr<CreatedBox> created = CreateUnmetered(request, progress);
  if (options_.metrics != nullptr) {
    options_.metrics->RecordCreate(created.status(), clock_.SteadyNow() - start);
  }
  return created;
}

absl::StatusOr<CreatedBox> BoxRegistry::CreateUnmetered(const CreateRequest& request,
                                                        const ProgressFn& progress) {
  std::string box_id = request.box_id;
  if (box_id.empty()) {
    LLMBOX_ASSIGN_OR_RETURN(std::string random, common::RandomToken(4));
    box_id = "box-" + common::HexEncode(random).substr(0, 8);
  }
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(box_id));
  if (common::CanonicalBoxId(box_id).starts_with(kTrialBoxPrefix)) {
    return absl::InvalidArgumentError("box ids starting with \"" + std::string(kTrialBoxPrefix) +
                                      "\" are the hub's own trial creates: pick another");
  }
  if (request.description.size() > 1024) {
    return absl::InvalidArgumentError("description is longer than 1024 bytes");
  }
  // While this runs, a record of this id still creating is this create's, not one a hub that
  // stopped mid-create left behind (InterruptedCreate). Taken before the record is inserted,
  // given back after its last write.
  const std::string creating_key = common::CanonicalBoxId(box_id);
  {
    std::lock_guard lock(creating_mu_);
    creating_.insert(creating_key);
  }
  struct CreatingRelease {
    BoxRegistry* registry;
    const std::string& key;
    ~CreatingRelease() {
      std::lock_guard lock(registry->creating_mu_);
      registry->creating_.erase(registry->creating_.find(key));
    }
  } creating_release{this, creating_key};
  const auto count_alive = [&] { return store_.CountLiveBoxes(request.owner.id()); };
  if (quotas_ != nullptr) {
    // Refused before placement reserves a place; AdmitCreate decides below.
    if (absl::Status allowed = quotas_->CheckCreate(request.owner, count_alive); !allowed.ok()) {
      spdlog::info("box {}: create refused: {}", box_id, common::AsStd(allowed.message()));
      return allowed;
    }
  }
  const std::string image = request.image.empty() ? options_.default_image : request.image;
  std::string spoke = request.spoke.empty() ? options_.default_spoke : request.spoke;
  // Only a box placed by the hub moves to another spoke when its spoke fails it.
  const bool placed = spoke.empty();
  if (placed) {
    LLMBOX_ASSIGN_OR_RETURN(spoke, monitor_.Place(image, {}));
  }
  auto client = spokes_.Find(spoke);
  if (client == nullptr) {
    if (placed) monitor_.CancelPlacement(spoke);
    std::string known;
    for (const auto& entry : spokes_.List()) known += (known.empty() ? "" : ", ") + entry.name;
    return absl::InvalidArgumentError("unknown spoke " + common::QuoteForMessage(spoke) +
                                      "; this hub has: " + known);
  }
  if (!placed) {
    // A named spoke must be ready too: an operator's cordon or drain, and a spoke the hub
    // holds degraded or unreachable, take no new box, named or not.
    if (auto view = monitor_.Find(spoke); view.has_value() && view->state != SpokeState::kReady) {
      return absl::FailedPreconditionError(
          "spoke " + common::QuoteForMessage(spoke) + " takes no new boxes: it is " +
          DescribeSpokeStateBrief(view->state, view->admin, view->condition) +
          ". Name another spoke (list_spokes shows them), or leave spoke out");
    }
    monitor_.Reserve(spoke);
  }

  // The token is shown once, in the auth URL; only its hash is kept.
  auto token = common::RandomToken(32);
  if (!token.ok()) {
    monitor_.CancelPlacement(spoke);
    return token.status();
  }
  BoxRecord record{.box_id = box_id,
                   .spoke = spoke,
                   .image = image,
                   .description = request.description,
                   .phase = Phase::kCreating,
                   .token_hash = common::Sha256Hex(*token),
                   .created_by = request.owner.display_name(),
                   .owner = request.owner.id(),
                   .owner_email = request.owner.verified_email(),
                   .created_at_ms = NowMs(),
                   .updated_at_ms = NowMs()};
  // The record counts as alive from its insert on, so the quota's admission wraps it.
  const auto insert = [&] { return store_.InsertBox(record); };
  if (absl::Status inserted =
          quotas_ == nullptr ? insert() : quotas_->AdmitCreate(request.owner, count_alive, insert);
      !inserted.ok()) {
    monitor_.CancelPlacement(spoke);
    // Ids are unique across the hub (they name containers), whoever holds one: say it is
    // taken, never by whom.
    if (absl::IsAlreadyExists(inserted)) {
      return absl::AlreadyExistsError("box id " + common::QuoteForMessage(box_id) +
                                      " is taken on this hub: pick another");
    }
    return inserted;
  }
  if (progress) progress(1, 3, "creating the box on spoke " + spoke);

  absl::StatusOr<cluster::CreatedOnSpoke> created;
  LiveViews::Ticket ticket = 0;
  for (bool retried = false;; retried = true) {
    ticket = live_.Begin(spoke);
    created = client->CreateBox({.box_id = box_id,
                                 .image = record.image,
                                 .description = request.description,
                                 .owner = record.created_by,
                                 .network = request.network},
                                options_.create_timeout);
    if (created.ok()) {
      monitor_.RecordCreate(spoke, CreateOutcome::kSucceeded, "");
      break;
    }
    // After a timeout or a lost connection the spoke may still finish the box; take it down so
    // no unreachable box is left behind (one that cannot be is reconcile's to take down).
    const absl::Status& status = created.status();
    if (absl::IsDeadlineExceeded(status) || absl::IsUnavailable(status) ||
        absl::IsCancelled(status)) {
      (void)DestroyOnSpoke(*client, box_id);
    }
    const absl::Status error = SpokeError(spoke, status);
    const CreateOutcome outcome = ClassifyCreateFailure(status);
    monitor_.RecordCreate(spoke, outcome, common::AsStd(error.message()));
    // A spoke's own failure, for a box the hub placed: once more, on another spoke.
    std::optional<std::string> next;
    if (placed && !retried && outcome == CreateOutcome::kSpokeFault) {
      if (auto other = monitor_.Place(image, {spoke}); other.ok()) {
        next = *std::move(other);
      } else {
        spdlog::info("box {}: no other spoke to retry on: {}", box_id,
                     common::AsStd(other.status().message()));
      }
    }
    std::shared_ptr<cluster::SpokeClient> next_client;
    if (next.has_value()) {
      next_client = spokes_.Find(*next);
      if (next_client == nullptr) monitor_.CancelPlacement(*next);
    }
    if (next_client != nullptr) {
      record.spoke = *next;
      record.updated_at_ms = NowMs();
      if (absl::Status moved = store_.UpdateBox(record); !moved.ok()) {
        monitor_.CancelPlacement(*next);
        (void)store_.DeleteBox(box_id);
        return moved;
      }
      spdlog::info("box {}: create failed on spoke {} ({}); trying spoke {}", box_id, spoke,
                   common::AsStd(error.message()), *next);
      if (progress) {
        progress(2, 3, "spoke " + spoke + " could not create the box; trying spoke " + *next);
      }
      spoke = *next;
      client = std::move(next_client);
      continue;
    }
    if (auto st = store_.DeleteBox(box_id); !st.ok()) {
      spdlog::warn("box {}: could not forget the failed create: {}", box_id,
                   common::AsStd(st.message()));
    }
    return error;
  }
  record.container_id = created->box.container_id;
  record.image = created->box.image;
  record.phase = Phase::kPending;
  record.authorize_url = created->authorize_url;
  record.expires_at_ms = created->box.expires_at.time_since_epoch().count();
  record.updated_at_ms = NowMs();
  if (auto st = store_.UpdateBox(record); !st.ok()) {
    (void)DestroyOnSpoke(*client, box_id);
    (void)store_.DeleteBox(box_id);
    return st;
  }
  live_.Put(box_id, record.token_hash, spoke, created->box.at, created->box.network, ticket);
  if (progress) progress(3, 3, "the box waits for activation");
  spdlog::info("box {}: created on spoke {} by {}", box_id, spoke, request.owner.id());
  return CreatedBox{.record = std::move(record),
                    .auth_url = AuthUrl(*token),
                    .network = std::move(created->box.network)};
}

absl::StatusOr<BoxRecord> BoxRegistry::Get(const auth::Principal& caller, std::string_view box_id) {
  auto record = store_.GetBox(box_id);
  // Another principal's box takes the same path out as a missing one, with the same message
  // built from the caller's own words: nothing tells the two apart.
  if (absl::IsNotFound(record.status()) || (record.ok() && !caller.MayActOn(record->owner))) {
    return NoSuchBox(box_id);
  }
  return record;
}

absl::StatusOr<BoxDetails> BoxRegistry::GetDetails(const auth::Principal& caller,
                                                   std::string_view box_id) {
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(caller, box_id));
  BoxDetails details{.record = record};
  // A gone box has nothing on its spoke, and a creating one not yet.
  if (record.phase == Phase::kGone || record.phase == Phase::kCreating) return details;
  // The monitor knows already: the record is the answer, without a call that would only
  // wait out live_timeout.
  if (std::optional<std::string> why = UnreachableWhy(record.spoke)) {
    details.spoke_unreachable = "spoke " + record.spoke + " " + *why;
    return details;
  }
  // What the spoke said lately: no call (a call per get is what a get costs most, and on a
  // real engine it lists the spoke's containers).
  if (std::optional<cluster::BoxNetwork> network = live_.Fresh(record.box_id, record.token_hash)) {
    if (options_.metrics != nullptr) options_.metrics->RecordBoxView(true);
    details.network = *std::move(network);
    return details;
  }
  if (options_.metrics != nullptr) options_.metrics->RecordBoxView(false);
  auto client = SpokeFor(record);
  if (!client.ok()) {
    details.network = client.status();
    return details;
  }
  const LiveViews::Ticket ticket = live_.Begin(record.spoke);
  auto box = (*client)->GetBox(record.box_id, options_.live_timeout);
  if (box.ok()) {
    // The box stopped, or restarted with a new session: the get says so now, not at the next
    // reconcile.
    if (std::optional<BoxRecord> updated = Observed(record, *box)) {
      if (auto st = store_.UpdateBox(*updated); st.ok()) {
        spdlog::info("box {} on spoke {} is now {} (its spoke's answer to a get)", record.box_id,
                     record.spoke, store::PhaseName(updated->phase));
        details.record = *std::move(updated);
      } else if (!absl::IsNotFound(st)) {
        spdlog::warn("box {}: {}", record.box_id, common::AsStd(st.message()));
      }
    }
    live_.Put(record.box_id, record.token_hash, record.spoke, box->at, box->network, ticket);
    details.network = std::move(box->network);
  } else {
    details.network = SpokeError(record.spoke, box.status());
    if (CannotReach(box.status())) {
      // The transport's words (internal addresses) stay in the hub's log.
      details.spoke_unreachable = "spoke " + record.spoke + " did not answer in time";
    }
  }
  return details;
}

absl::StatusOr<cluster::BoxNetwork> BoxRegistry::SetNetwork(const auth::Principal& caller,
                                                            std::string_view box_id,
                                                            const cluster::NetworkChange& change) {
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(caller, box_id));
  LLMBOX_ASSIGN_OR_RETURN(auto client, ReachableSpokeFor(record));
  auto box = client->SetBoxNetwork(record.box_id, change, options_.call_timeout);
  // Whatever the answer, the spoke may have changed the policy (a call that timed out after
  // it did): what the hub kept goes, and so does a get's answer still on its way (read before
  // the change). The change's own answer is what the next gets show.
  live_.Forget(record.box_id, record.spoke);
  if (!box.ok()) {
    spdlog::info("box {}: network change refused by spoke {}: {}", record.box_id, record.spoke,
                 common::AsStd(box.status().message()));
    return SpokeError(record.spoke, box.status());
  }
  live_.Put(record.box_id, record.token_hash, record.spoke, box->at, box->network,
            live_.Begin(record.spoke));
  spdlog::info("box {}: network changed by {} ({} added, {} removed, mode {}): now {}",
               record.box_id, caller.id(), change.add.size(), change.remove.size(),
               cluster::NetworkModeName(change.mode), cluster::NetworkModeName(box->network.mode));
  return std::move(box->network);
}

absl::StatusOr<store::BoxPage> BoxRegistry::ListPage(const auth::Principal& caller,
                                                     store::BoxFilter filter,
                                                     const std::optional<store::BoxPosition>& after,
                                                     std::size_t limit) {
  if (!caller.IsAdmin()) {
    if (filter.owner.has_value() && *filter.owner != caller.id()) {
      return absl::PermissionDeniedError(
          "only an admin key may list another owner's boxes; leave owner out to list yours");
    }
    filter.owner = caller.id();
  }
  return store_.ListBoxesPage(filter, after, limit);
}

absl::StatusOr<DestroyOutcome> BoxRegistry::Destroy(const auth::Principal& caller,
                                                    std::string_view box_id) {
  // Ownership first: another principal's box is NotFound before anything is queued.
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(caller, box_id));
  // A create of this process still runs for it: destroying it now would fail that create as
  // if its spoke had (a chatbot could knock healthy spokes out of placement that way) and
  // free the id while the create still writes to it.
  if (record.phase == Phase::kCreating) {
    std::lock_guard lock(creating_mu_);
    if (creating_.contains(common::CanonicalBoxId(record.box_id))) {
      return absl::FailedPreconditionError(
          "box " + common::QuoteForMessage(record.box_id) +
          " is being created; destroy it once create_llmbox has answered");
    }
  }
  // A gone box is no longer on its spoke, and a box of a spoke an operator removed has no
  // spoke to ask: forgetting either needs no answer.
  const bool removed = spokes_.Find(record.spoke) == nullptr;
  const bool gone = record.phase == Phase::kGone || removed;
  std::optional<std::string> why = UnreachableWhy(record.spoke);
  if (why.has_value() && !gone) return QueueDestroy(record, "is " + *why);
  if (removed) {
    spdlog::info("box {}: its spoke {} was removed from this hub; the box is forgotten",
                 record.box_id, record.spoke);
  } else if (!why.has_value()) {
    LLMBOX_ASSIGN_OR_RETURN(auto client, SpokeFor(record));
    absl::Status status = DestroyOnSpoke(*client, record.box_id);
    if (CannotReach(status) && !gone) {
      spdlog::info("box {}: spoke {} did not answer its destroy: {}", record.box_id, record.spoke,
                   common::AsStd(status.message()));
      return QueueDestroy(record, "did not answer");
    }
    if (!status.ok() && !absl::IsNotFound(status) && !CannotReach(status)) {
      return SpokeError(record.spoke, status);
    }
  }
  if (auto st = store_.DestroyBox(record.box_id, NowMs()); !st.ok() && !absl::IsNotFound(st)) {
    return st;
  }
  live_.Forget(record.box_id, record.spoke);
  spdlog::info("box {}: destroyed on spoke {}", record.box_id, record.spoke);
  return DestroyOutcome{};
}

absl::StatusOr<DestroyOutcome> BoxRegistry::QueueDestroy(const BoxRecord& record,
                                                         const std::string& why) {
  if (absl::Status queued =
          store_.QueueDestroy(record.box_id, NowMs(), {.token_hash = record.token_hash});
      !queued.ok()) {
    // Forgotten meanwhile: another destroy finished it (and a box that took its id since is
    // not this one).
    if (absl::IsNotFound(queued)) return DestroyOutcome{};
    return absl::Status(queued.code(), "spoke " + record.spoke + " " + why +
                                           ", and the destroy could not be recorded: " +
                                           std::string(common::AsStd(queued.message())));
  }
  spdlog::info("box {}: destroy queued: spoke {} {}", record.box_id, record.spoke, why);
  return DestroyOutcome{.queued = true,
                        .note = "spoke " + record.spoke + " " + why +
                                "; the destroy is queued and completes when it answers "
                                "again (get_llmbox shows it)"};
}

absl::StatusOr<LogsResult> BoxRegistry::Logs(const auth::Principal& caller, std::string_view box_id,
                                             std::optional<std::uint32_t> tail) {
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(caller, box_id));
  LLMBOX_ASSIGN_OR_RETURN(auto client, ReachableSpokeFor(record));
  const std::uint32_t lines = tail.value_or(options_.default_log_lines);
  if (lines < 1 || lines > options_.max_log_lines) {
    return absl::InvalidArgumentError("tail must be 1.." + std::to_string(options_.max_log_lines) +
                                      ", got " + std::to_string(lines));
  }
  auto logs = client->GetLogs(
      {.box_id = record.box_id, .tail_lines = lines, .max_bytes = options_.max_log_bytes},
      options_.call_timeout);
  if (!logs.ok()) return SpokeError(record.spoke, logs.status());
  return LogsResult{.logs = std::move(logs->logs), .truncated = logs->truncated};
}

absl::StatusOr<ExecResult> BoxRegistry::Exec(
    const auth::Principal& caller, std::string_view box_id, const std::vector<std::string>& argv,
    std::optional<std::chrono::seconds> timeout,
    const std::function<void(std::function<void()>)>& on_cancel) {
  if (argv.empty() || argv[0].empty()) {
    return absl::InvalidArgumentError("command must name a program: [\"ls\", \"-la\"]");
  }
  const std::chrono::seconds limit = timeout.value_or(options_.default_exec_timeout);
  if (limit.count() < 1 || limit > options_.max_exec_timeout) {
    return absl::InvalidArgumentError("timeout_s must be 1.." +
                                      std::to_string(options_.max_exec_timeout.count()) + ", got " +
                                      std::to_string(limit.count()));
  }
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(caller, box_id));
  LLMBOX_ASSIGN_OR_RETURN(auto client, ReachableSpokeFor(record));
  // Held to the end of this call: its destructor frees the place and charges the time on
  // every way out (an error, a timeout, a cancellation).
  QuotaBook::ExecTicket ticket;
  if (quotas_ != nullptr) {
    auto admitted = quotas_->AdmitExec(caller);
    if (!admitted.ok()) {
      spdlog::info("box {}: exec refused: {}", record.box_id,
                   common::AsStd(admitted.status().message()));
      return admitted.status();
    }
    ticket = *std::move(admitted);
  }
  // The spoke enforces `limit` itself; the margin covers the round trip.
  auto ran = client->Exec({.box_id = record.box_id,
                           .argv = argv,
                           .timeout = limit,
                           .max_output_bytes = options_.max_exec_output_bytes},
                          limit + std::chrono::seconds(15), on_cancel);
  // What the command reached may have been refused: the next get asks the spoke.
  live_.Forget(record.box_id, record.spoke);
  if (absl::IsCancelled(ran.status())) return absl::CancelledError("exec cancelled by the client");
  if (!ran.ok()) return SpokeError(record.spoke, ran.status());
  return ExecResult{.exit_code = ran->exit_code,
                    .stdout_text = std::move(ran->stdout_text),
                    .stderr_text = std::move(ran->stderr_text),
                    .truncated = ran->stdout_truncated || ran->stderr_truncated,
                    .timed_out = ran->timed_out};
}

absl::StatusOr<BoxRecord> BoxRegistry::FindByToken(std::string_view token) {
  auto record = store_.GetBoxByTokenHash(common::Sha256Hex(token));
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError("this activation link is unknown or its box is gone");
  }
  return record;
}

std::optional<std::string> BoxRegistry::RequiredActivator(const BoxRecord& record) {
  if (record.owner_email.empty()) return std::nullopt;
  return absl::AsciiStrToLower(record.owner_email);
}

absl::StatusOr<std::string> BoxRegistry::ClaimActivation(std::string_view box_id,
                                                         std::string_view email) {
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, store_.GetBox(box_id));
  if (std::optional<std::string> required = RequiredActivator(record);
      required.has_value() && *required != email) {
    spdlog::warn("box {}: {} was refused: only its creator may activate it", box_id, email);
    return *required;
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string owner, store_.ClaimBox(box_id, email));
  if (owner != email)
    spdlog::warn("box {}: {} was refused: another person owns its activation", box_id, email);
  return owner;
}

absl::StatusOr<store::DestroyedBox> BoxRegistry::FindDestroyedByToken(std::string_view token) {
  return store_.FindDestroyedBox(common::Sha256Hex(token));
}

absl::StatusOr<SubmitResult> BoxRegistry::SubmitCode(std::string_view token,
                                                     std::string_view code) {
  const common::Clock::SteadyTime start = clock_.SteadyNow();
  absl::StatusOr<SubmitResult> result = SubmitCodeUnmetered(token, code);
  if (options_.metrics != nullptr) {
    using metrics::ActivationOutcome;
    const ActivationOutcome outcome =
        !result.ok() ? (absl::IsFailedPrecondition(result.status()) ? ActivationOutcome::kBusy
                                                                    : ActivationOutcome::kError)
        : result->activated ? ActivationOutcome::kActivated
                            : ActivationOutcome::kRefused;
    options_.metrics->RecordActivation(outcome, clock_.SteadyNow() - start);
  }
  return result;
}

absl::StatusOr<SubmitResult> BoxRegistry::SubmitCodeUnmetered(std::string_view token,
                                                              std::string_view code) {
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord found, FindByToken(token));
  // A box has one stdin: one code at a time per box, while other boxes go on in parallel.
  const std::string key = common::CanonicalBoxId(found.box_id);
  {
    std::lock_guard lock(submit_mu_);
    if (!submitting_.insert(key).second) {
      return absl::FailedPreconditionError("a code for box \"" + found.box_id +
                                           "\" is being checked already; wait for its answer");
    }
  }
  struct Release {
    BoxRegistry* registry;
    const std::string& key;
    ~Release() {
      std::lock_guard lock(registry->submit_mu_);
      registry->submitting_.erase(key);
    }
  } release{this, key};
  // Read again now that no other submission can change it.
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, FindByToken(token));
  if (record.phase == Phase::kReady) {
    return absl::FailedPreconditionError("box \"" + record.box_id + "\" is already active");
  }
  if (record.destroy_queued_at_ms.has_value()) {
    // Its destroy waits for its spoke (a caller asked for it, or an operator drains the spoke
    // with --destroy-pending): an activation now would be destroyed with it.
    return absl::FailedPreconditionError("box \"" + record.box_id +
                                         "\" is being destroyed and cannot take a code");
  }
  if (record.phase != Phase::kPending && record.phase != Phase::kError) {
    return absl::FailedPreconditionError("box \"" + record.box_id + "\" is " +
                                         std::string(store::PhaseName(record.phase)) +
                                         " and cannot take a code now");
  }
  LLMBOX_ASSIGN_OR_RETURN(auto client, ReachableSpokeFor(record));
  record.phase = Phase::kActivating;
  record.updated_at_ms = NowMs();
  LLMBOX_RETURN_IF_ERROR(store_.UpdateBox(record));

  auto outcome = client->SubmitCode(
      {.box_id = record.box_id, .code = std::string(code), .timeout = options_.submit_timeout},
      options_.submit_timeout + std::chrono::seconds(15));
  live_.Forget(record.box_id, record.spoke);
  SubmitResult result;
  if (!outcome.ok()) {
    const absl::Status error = SpokeError(record.spoke, outcome.status());
    record.phase = Phase::kPending;
    record.last_error = common::AsStd(error.message());
    record.updated_at_ms = NowMs();
    if (auto st = store_.UpdateBox(record); !st.ok()) {
      spdlog::warn("box {}: could not record the failed activation: {}", record.box_id,
                   common::AsStd(st.message()));
    }
    return error;
  }
  result.activated = outcome->activated;
  result.attempts_remaining = outcome->attempts_remaining;
  if (outcome->activated) {
    record.phase = Phase::kReady;
    record.session_url = outcome->session_url;
    record.last_error.clear();
    result.session_url = outcome->session_url;
  } else {
    result.box_error = outcome->box_error;
    record.last_error = outcome->box_error;
    if (!outcome->authorize_url.empty()) record.authorize_url = outcome->authorize_url;
    record.phase = outcome->attempts_remaining == 0 ? Phase::kError : Phase::kPending;
  }
  // A box that restarted while pending (its engine or container did) answers with its new
  // sign-in link and does not use the code: the spoke counts no attempt, and neither does the
  // hub. Its words are the spoke's own fixed message (spoke/box/manager.cc, RestartedLogin),
  // matched whole.
  if (outcome->activated || outcome->authorize_url.empty() ||
      outcome->box_error != kNewSignInAnswer) {
    record.activation_attempts += 1;
  }
  record.updated_at_ms = NowMs();
  LLMBOX_RETURN_IF_ERROR(store_.UpdateBox(record));
  result.record = record;
  spdlog::info("box {}: activation {}", record.box_id,
               outcome->activated ? "succeeded" : "refused by the box");
  return result;
}

absl::Status BoxRegistry::DestroyOnSpoke(cluster::SpokeClient& spoke, const std::string& box_id) {
  return spoke.DestroyBox(box_id, options_.call_timeout);
}

std::optional<BoxRecord> BoxRegistry::Observed(const BoxRecord& record,
                                               const cluster::SpokeBox& box) {
  // A code in flight (on the spoke, or a submission of this process) decides the phase. A
  // record left activating by a hub that stopped mid-submission takes the spoke's.
  if (box.phase == Phase::kActivating) return std::nullopt;
  // A create in flight on the spoke: its answer writes the record (with what only it has).
  if (box.phase == Phase::kCreating) return std::nullopt;
  if (record.phase == Phase::kActivating) {
    std::lock_guard lock(submit_mu_);
    if (submitting_.contains(common::CanonicalBoxId(record.box_id))) return std::nullopt;
  }
  BoxRecord updated = record;
  updated.phase = box.phase;
  if (!box.session_url.empty()) updated.session_url = box.session_url;
  if (!box.last_error.empty()) updated.last_error = box.last_error;
  if (updated.container_id.empty()) updated.container_id = box.container_id;
  if (updated.phase == record.phase && updated.session_url == record.session_url &&
      updated.last_error == record.last_error) {
    return std::nullopt;
  }
  updated.updated_at_ms = NowMs();
  return updated;
}

bool BoxRegistry::InterruptedCreate(const BoxRecord& record) {
  // A create of this process is still running: not interrupted. Otherwise the record is read
  // again under the same lock (the list it came from may predate the create's last write): a
  // record still creating with no create running for it was left by a hub that stopped
  // mid-create, however young it is.
  std::lock_guard lock(creating_mu_);
  if (creating_.contains(common::CanonicalBoxId(record.box_id))) return false;
  auto now = store_.GetBox(record.box_id);
  return now.ok() && now->phase == Phase::kCreating;
}

void BoxRegistry::QueueDrainingPending(const std::string& spoke) {
  std::optional<SpokeView> view = monitor_.Find(spoke);
  if (!view.has_value() || view->admin.state != store::SpokeAdminState::kDraining ||
      !view->admin.destroy_pending) {
    return;
  }
  std::optional<store::BoxPosition> after;
  do {
    auto page = store_.ListBoxesPage({.phase = Phase::kPending, .spoke = spoke}, after,
                                     kQueuedDestroyBatch);
    if (!page.ok()) {
      spdlog::warn(
          "reconcile: spoke {} drains with --destroy-pending, but its pending boxes "
          "cannot be read: {}",
          spoke, common::AsStd(page.status().message()));
      return;
    }
    for (const BoxRecord& record : page->boxes) {
      if (record.destroy_queued_at_ms.has_value()) continue;
      // Only this record while it is still pending: one activated since the page was read is
      // someone's session now.
      if (auto st = store_.QueueDestroy(
              record.box_id, NowMs(), {.token_hash = record.token_hash, .phase = Phase::kPending});
          !st.ok()) {
        if (!absl::IsNotFound(st)) {
          spdlog::warn("reconcile: box {}: {}", record.box_id, common::AsStd(st.message()));
        }
        continue;
      }
      spdlog::info("box {}: destroy queued: spoke {} drains with --destroy-pending", record.box_id,
                   spoke);
    }
    after = page->next;
  } while (after.has_value());
}

bool BoxRegistry::CompleteQueuedDestroys(const std::string& spoke, cluster::SpokeClient& client,
                                         common::Clock::SteadyTime deadline) {
  // Oldest first, a batch at a time. A destroy that fails waits out its back-off while the
  // rest go on; a batch that completed none ends the run (what is left is failing or waiting).
  for (;;) {
    auto queued = store_.ListQueuedDestroys(spoke, kQueuedDestroyBatch);
    if (!queued.ok()) {
      spdlog::warn("reconcile: the destroys queued for spoke {} cannot be read: {}", spoke,
                   common::AsStd(queued.status().message()));
      return true;
    }
    std::size_t completed = 0;
    for (const BoxRecord& record : *queued) {
      if (clock_.SteadyNow() >= deadline) return false;
      const std::string key = common::CanonicalBoxId(record.box_id) + "/" + record.token_hash;
      {
        std::lock_guard lock(retry_mu_);
        if (auto it = destroy_retries_.find(key);
            it != destroy_retries_.end() && clock_.SteadyNow() < it->second.next) {
          continue;
        }
      }
      // Read again just before: the batch may be old, and a box that took this id since (a
      // destroy finished it, and a create took the id again) is not the one queued.
      if (!StillQueued(record)) continue;
      absl::Status gone = DestroyOnSpoke(client, record.box_id);
      if (!gone.ok() && !absl::IsNotFound(gone)) {
        if (CannotReach(gone)) {
          spdlog::warn("reconcile: box {}: spoke {} did not answer its queued destroy: {}",
                       record.box_id, spoke, common::AsStd(gone.message()));
          return false;
        }
        std::lock_guard lock(retry_mu_);
        // Bounded: entries of boxes forgotten by other paths are dropped with the rest.
        if (destroy_retries_.size() >= 10'000) destroy_retries_.clear();
        DestroyRetry& retry = destroy_retries_[key];
        retry.wait = std::clamp(retry.wait * 2, kQueuedRetryMin, kQueuedRetryMax);
        retry.next = clock_.SteadyNow() + retry.wait;
        spdlog::warn(
            "reconcile: box {}: the destroy queued for spoke {} failed (kept queued, tried again "
            "in {} s; the others go on): {}",
            record.box_id, spoke,
            std::chrono::duration_cast<std::chrono::seconds>(retry.wait).count(),
            common::AsStd(gone.message()));
        continue;
      }
      {
        std::lock_guard lock(retry_mu_);
        destroy_retries_.erase(key);
      }
      if (!StillQueued(record)) continue;
      if (auto st = store_.DestroyBox(record.box_id, NowMs()); !st.ok() && !absl::IsNotFound(st)) {
        spdlog::warn(
            "reconcile: box {}: destroyed on spoke {}, but not forgotten (kept "
            "queued): {}",
            record.box_id, spoke, common::AsStd(st.message()));
        return true;
      }
      live_.Forget(record.box_id, record.spoke);
      ++completed;
      spdlog::info("reconcile: box {}: the destroy queued for spoke {} is complete", record.box_id,
                   spoke);
    }
    if (queued->size() < kQueuedDestroyBatch || completed == 0) return true;
  }
}

bool BoxRegistry::StillQueued(const BoxRecord& record) {
  {
    std::lock_guard lock(creating_mu_);
    if (creating_.contains(common::CanonicalBoxId(record.box_id))) return false;
  }
  auto now = store_.GetBox(record.box_id);
  if (!now.ok()) return false;
  if (now->token_hash != record.token_hash || !now->destroy_queued_at_ms.has_value()) {
    spdlog::info(
        "reconcile: box {}: its id belongs to another box now; the destroy queued for the old "
        "one is dropped",
        record.box_id);
    return false;
  }
  return true;
}

std::vector<std::string> BoxRegistry::ReconcileSpoke(const std::string& spoke) {
  std::vector<std::string> unknown;
  auto client = spokes_.Find(spoke);
  if (client == nullptr) return unknown;
  // One reconcile of a spoke at a time (the monitor's return hook and the periodic one may
  // meet): the other would only repeat its calls.
  {
    std::lock_guard lock(reconciling_mu_);
    if (!reconciling_.insert(spoke).second) return unknown;
  }
  struct Release {
    BoxRegistry* registry;
    const std::string& spoke;
    ~Release() {
      std::lock_guard lock(registry->reconciling_mu_);
      registry->reconciling_.erase(spoke);
    }
  } release{this, spoke};

  // Time-boxed: the monitor's pool runs this for many spokes, and a spoke that answers each
  // call just within call_timeout must not hold a worker for hours.
  const common::Clock::SteadyTime deadline = clock_.SteadyNow() + options_.reconcile_budget;
  const auto out_of_time = [&] {
    if (clock_.SteadyNow() < deadline) return false;
    spdlog::warn("reconcile: spoke {}: out of time ({} ms); the rest at the next reconcile", spoke,
                 options_.reconcile_budget.count());
    return true;
  };
  QueueDrainingPending(spoke);
  if (!CompleteQueuedDestroys(spoke, *client, deadline)) {
    (void)out_of_time();
    return unknown;
  }
  if (out_of_time()) return unknown;

  // The spoke's boxes first, then the records: a create inserts its record before it asks the
  // spoke, so a box listed here has its record read below. A record written since the list
  // was asked for (a create or a code that finished meanwhile) is newer than the list, which
  // cannot judge it: left to the next reconcile.
  const std::int64_t listed_at_ms = NowMs();
  auto listed = client->ListBoxes(options_.call_timeout);
  if (!listed.ok()) {
    spdlog::warn("reconcile: spoke {} cannot be listed: {}", spoke,
                 common::AsStd(listed.status().message()));
    return unknown;
  }
  // The boxes it removed on its own reach the audit log with the records they leave below.
  if (options_.removal_audit != nullptr) (void)options_.removal_audit->Collect(spoke, *client);
  std::map<std::string, const cluster::SpokeBox*> on_spoke;
  for (const auto& box : *listed) on_spoke[common::CanonicalBoxId(box.box_id)] = &box;
  auto records = store_.ListBoxes({.spoke = spoke});
  if (!records.ok()) {
    spdlog::warn("reconcile: registry cannot be read: {}",
                 common::AsStd(records.status().message()));
    return unknown;
  }
  std::set<std::string> known;
  for (BoxRecord& record : *records) {
    known.insert(common::CanonicalBoxId(record.box_id));
    auto it = on_spoke.find(common::CanonicalBoxId(record.box_id));
    if (record.phase == Phase::kCreating && InterruptedCreate(record)) {
      // Create answers within create_timeout; a record still creating long after was left
      // by a hub that stopped mid-create. Nobody got its activation link and the hub never
      // got its authorize URL, so the box is of no use: take it down and free the id.
      if (it != on_spoke.end()) {
        if (out_of_time()) return unknown;
        absl::Status gone = DestroyOnSpoke(*client, record.box_id);
        if (!gone.ok() && !absl::IsNotFound(gone)) {
          spdlog::warn(
              "reconcile: box {}: its interrupted create could not be undone on spoke "
              "{} (tried again later): {}",
              record.box_id, spoke, common::AsStd(gone.message()));
          continue;
        }
      }
      if (auto st = store_.DeleteBox(record.box_id); !st.ok()) {
        spdlog::warn("reconcile: box {}: {}", record.box_id, common::AsStd(st.message()));
      } else {
        spdlog::info(
            "reconcile: box {} on spoke {} was left creating by an interrupted "
            "create; removed",
            record.box_id, spoke);
      }
      known.erase(common::CanonicalBoxId(record.box_id));
      on_spoke.erase(common::CanonicalBoxId(record.box_id));
      continue;
    }
    // A create of this process is running: it writes the record when the spoke answers (with
    // the authorize URL this list does not have), so a write from here could only undo it.
    if (record.phase == Phase::kCreating) continue;
    if (record.updated_at_ms >= listed_at_ms) continue;
    BoxRecord updated = record;
    if (it == on_spoke.end()) {
      if (record.phase == Phase::kGone || record.phase == Phase::kCreating) continue;
      updated.phase = Phase::kGone;
      updated.last_error = "the box is no longer on spoke " + spoke +
                           " (reaped after its activation deadline, or removed)";
      updated.updated_at_ms = NowMs();
    } else if (std::optional<BoxRecord> observed = Observed(record, *it->second)) {
      updated = *std::move(observed);
    }
    if (updated.phase != record.phase || updated.session_url != record.session_url ||
        updated.last_error != record.last_error) {
      live_.Forget(record.box_id, record.spoke);
      if (auto st = store_.UpdateBox(updated); !st.ok()) {
        spdlog::warn("reconcile: box {}: {}", record.box_id, common::AsStd(st.message()));
      } else {
        spdlog::info("reconcile: box {} on spoke {} is now {}", record.box_id, spoke,
                     store::PhaseName(updated.phase));
      }
    }
  }
  for (const auto& [id, box] : on_spoke) {
    if (known.contains(id) || monitor_.IsTrialBox(box->box_id)) continue;
    // Read again: a create that began after the list above has its record now (still
    // creating), and is left to finish. A box the hub knows on another spoke is left alone
    // too: two spokes on one engine list each other's boxes, and it is not this spoke's.
    if (auto record = store_.GetBox(box->box_id); record.ok()) {
      if (record->spoke != spoke && record->phase != Phase::kCreating) {
        spdlog::debug(
            "reconcile: spoke {} lists box {}, which this hub has on spoke {}; left alone", spoke,
            box->box_id, record->spoke);
      }
      continue;
    } else if (!absl::IsNotFound(record.status())) {
      spdlog::warn("reconcile: box {}: {}", box->box_id, common::AsStd(record.status().message()));
      continue;
    }
    // The id comes from the spoke: a valid one is logged and acted on, anything else only
    // counted (never written raw into the log).
    if (!common::ValidateBoxId(box->box_id).ok()) {
      spdlog::warn("reconcile: spoke {} lists a box whose id is not valid; left alone", spoke);
      continue;
    }
    unknown.push_back(spoke + "/" + box->box_id);
    if (box->phase == Phase::kReady) {
      // Someone's signed-in session (a hub restored from an older backup does not know it):
      // never destroyed behind its user's back; the operator decides.
      spdlog::warn(
          "reconcile: spoke {} has ready box {} that this hub does not know (its record was "
          "lost, or the state directory restored from a backup); left running: remove it on "
          "the spoke's engine if it is not wanted",
          spoke, box->box_id);
      continue;
    }
    if (out_of_time()) return unknown;
    absl::Status gone = DestroyOnSpoke(*client, box->box_id);
    if (gone.ok() || absl::IsNotFound(gone)) {
      spdlog::warn("reconcile: spoke {} had box {} that this hub does not know; destroyed", spoke,
                   box->box_id);
    } else {
      spdlog::warn(
          "reconcile: spoke {} has box {} that this hub does not know; its destroy failed "
          "(tried again later): {}",
          spoke, box->box_id, common::AsStd(gone.message()));
    }
  }
  return unknown;
}

void BoxRegistry::Start() { monitor_.Poll(); }

std::vector<std::string> BoxRegistry::Reconcile() {
  std::vector<std::string> unknown;
  for (const auto& entry : spokes_.List()) {
    // The monitor's return hook reconciles it when it answers again.
    if (monitor_.IsUnreachable(entry.name)) continue;
    std::vector<std::string> found = ReconcileSpoke(entry.name);
    unknown.insert(unknown.end(), found.begin(), found.end());
  }
  return unknown;
}

}  // namespace llmbox::hub::boxes
