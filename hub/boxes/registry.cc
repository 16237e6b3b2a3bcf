// hub/boxes/registry.cc
#include "hub/boxes/registry.h"

#include <algorithm>
#include <future>
#include <set>
#include <utility>

#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/grpc_status.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::hub::boxes {
namespace {

using store::BoxRecord;
using store::Phase;

store::Phase FromProto(v1::BoxPhase phase) {
  switch (phase) {
    case v1::BOX_PHASE_CREATING:
      return Phase::kCreating;
    case v1::BOX_PHASE_PENDING:
      return Phase::kPending;
    case v1::BOX_PHASE_ACTIVATING:
      return Phase::kActivating;
    case v1::BOX_PHASE_READY:
      return Phase::kReady;
    case v1::BOX_PHASE_ERROR:
      return Phase::kError;
    case v1::BOX_PHASE_DESTROYED:
      return Phase::kGone;
    default:
      return Phase::kError;
  }
}

std::int64_t ToMs(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1'000'000;
}

void SetDuration(google::protobuf::Duration* out, std::chrono::milliseconds d) {
  out->set_seconds(d.count() / 1000);
  out->set_nanos(static_cast<int>((d.count() % 1000) * 1'000'000));
}

// A deadline-bounded context for one call to a spoke.
std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

// A spoke's error with the spoke named, keeping its code.
absl::Status SpokeError(std::string_view spoke, const grpc::Status& status) {
  absl::Status converted = common::FromGrpcStatus(status);
  std::string message(common::AsStd(converted.message()));
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = "spoke \"" + std::string(spoke) + "\" cannot be reached: " + message;
  } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    message = "spoke \"" + std::string(spoke) + "\" did not answer in time";
  }
  return absl::Status(converted.code(), message);
}

absl::Status NoSuchBox(std::string_view box_id) {
  return absl::NotFoundError("no box " + common::QuoteForMessage(box_id) +
                             " (it may have been destroyed or reaped; list_llmboxes shows "
                             "the boxes there are)");
}

}  // namespace

void SpokeDirectory::Add(std::string name, std::shared_ptr<v1::BoxService::StubInterface> stub,
                         bool local) {
  std::lock_guard lock(mu_);
  Entry entry{.name = name, .local = local, .stub = std::move(stub)};
  spokes_[std::move(name)] = std::move(entry);
}

void SpokeDirectory::Remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = spokes_.find(name);
  if (it != spokes_.end()) spokes_.erase(it);
}

std::shared_ptr<v1::BoxService::StubInterface> SpokeDirectory::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = spokes_.find(name);
  return it == spokes_.end() ? nullptr : it->second.stub;
}

std::vector<SpokeDirectory::Entry> SpokeDirectory::List() const {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  for (const auto& [name, entry] : spokes_) out.push_back(entry);
  return out;
}

BoxRegistry::BoxRegistry(store::Store& store, SpokeDirectory& spokes, common::Clock& clock,
                         RegistryOptions options)
    : store_(store), spokes_(spokes), clock_(clock), options_(std::move(options)) {}

std::int64_t BoxRegistry::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

std::string BoxRegistry::AuthUrl(std::string_view token) const {
  std::lock_guard lock(options_mu_);
  return options_.public_url + "/auth/" + std::string(token);
}

void BoxRegistry::SetPublicUrl(std::string public_url) {
  std::lock_guard lock(options_mu_);
  options_.public_url = std::move(public_url);
}

absl::StatusOr<std::shared_ptr<v1::BoxService::StubInterface>> BoxRegistry::SpokeFor(
    const BoxRecord& record) const {
  auto stub = spokes_.Find(record.spoke);
  if (stub == nullptr) {
    return absl::UnavailableError("box \"" + record.box_id + "\" is on spoke \"" + record.spoke +
                                  "\", which this hub does not know (any more)");
  }
  return stub;
}

absl::StatusOr<CreatedBox> BoxRegistry::Create(const CreateRequest& request,
                                               const ProgressFn& progress) {
  std::string box_id = request.box_id;
  if (box_id.empty()) {
    LLMBOX_ASSIGN_OR_RETURN(std::string random, common::RandomToken(4));
    box_id = "box-" + common::HexEncode(random).substr(0, 8);
  }
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(box_id));
  if (request.description.size() > 1024) {
    return absl::InvalidArgumentError("description is longer than 1024 bytes");
  }
  std::string spoke = request.spoke.empty() ? options_.default_spoke : request.spoke;
  if (spoke.empty()) {
    LLMBOX_ASSIGN_OR_RETURN(spoke,
                            Place(request.image.empty() ? options_.default_image : request.image));
  }
  auto stub = spokes_.Find(spoke);
  if (stub == nullptr) {
    std::string known;
    for (const auto& entry : spokes_.List()) known += (known.empty() ? "" : ", ") + entry.name;
    return absl::InvalidArgumentError("unknown spoke " + common::QuoteForMessage(spoke) +
                                      "; this hub has: " + known);
  }

  // The token is shown once, in the auth URL; only its hash is kept.
  LLMBOX_ASSIGN_OR_RETURN(std::string token, common::RandomToken(32));
  BoxRecord record{.box_id = box_id,
                   .spoke = spoke,
                   .image = request.image.empty() ? options_.default_image : request.image,
                   .description = request.description,
                   .phase = Phase::kCreating,
                   .token_hash = common::Sha256Hex(token),
                   .created_by = request.created_by,
                   .created_at_ms = NowMs(),
                   .updated_at_ms = NowMs()};
  LLMBOX_RETURN_IF_ERROR(store_.InsertBox(record));
  if (progress) progress(1, 3, "creating the box on spoke " + spoke);

  v1::CreateBoxRequest create;
  create.set_box_id(box_id);
  create.set_image(record.image);
  create.set_description(request.description);
  create.set_owner(request.created_by);
  v1::CreateBoxResponse created;
  auto context = Context(options_.create_timeout);
  grpc::Status status = stub->CreateBox(context.get(), create, &created);
  if (!status.ok()) {
    // After a timeout or a lost connection the spoke may still finish the box; take it down so
    // no unreachable box is left behind.
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::CANCELLED) {
      (void)DestroyOnSpoke(*stub, box_id);
    }
    if (auto st = store_.DeleteBox(box_id); !st.ok()) {
      spdlog::warn("box {}: could not forget the failed create: {}", box_id,
                   common::AsStd(st.message()));
    }
    return SpokeError(spoke, status);
  }
  record.container_id = created.box().container_id();
  record.image = created.box().image();
  record.phase = Phase::kPending;
  record.authorize_url = created.authorize_url();
  record.expires_at_ms = ToMs(created.box().expires_at());
  record.updated_at_ms = NowMs();
  if (auto st = store_.UpdateBox(record); !st.ok()) {
    (void)DestroyOnSpoke(*stub, box_id);
    (void)store_.DeleteBox(box_id);
    return st;
  }
  if (progress) progress(3, 3, "the box waits for activation");
  spdlog::info("box {}: created on spoke {} by {}", box_id, spoke,
               request.created_by.empty() ? "(no auth)" : request.created_by);
  return CreatedBox{.record = std::move(record), .auth_url = AuthUrl(token)};
}

absl::StatusOr<BoxRecord> BoxRegistry::Get(std::string_view box_id) {
  auto record = store_.GetBox(box_id);
  if (absl::IsNotFound(record.status())) return NoSuchBox(box_id);
  return record;
}

absl::StatusOr<std::vector<BoxRecord>> BoxRegistry::List(const store::BoxFilter& filter) {
  return store_.ListBoxes(filter);
}

absl::Status BoxRegistry::Destroy(std::string_view box_id) {
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(box_id));
  LLMBOX_ASSIGN_OR_RETURN(auto stub, SpokeFor(record));
  grpc::Status status = DestroyOnSpoke(*stub, record.box_id);
  if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
    return SpokeError(record.spoke, status);
  }
  if (auto st = store_.DestroyBox(record.box_id, NowMs()); !st.ok() && !absl::IsNotFound(st)) {
    return st;
  }
  spdlog::info("box {}: destroyed on spoke {}", record.box_id, record.spoke);
  return absl::OkStatus();
}

absl::StatusOr<LogsResult> BoxRegistry::Logs(std::string_view box_id,
                                             std::optional<std::uint32_t> tail) {
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(box_id));
  LLMBOX_ASSIGN_OR_RETURN(auto stub, SpokeFor(record));
  const std::uint32_t lines = tail.value_or(options_.default_log_lines);
  if (lines < 1 || lines > options_.max_log_lines) {
    return absl::InvalidArgumentError("tail must be 1.." + std::to_string(options_.max_log_lines) +
                                      ", got " + std::to_string(lines));
  }
  v1::GetLogsRequest request;
  request.set_box_id(record.box_id);
  request.set_tail_lines(lines);
  request.set_max_bytes(options_.max_log_bytes);
  v1::GetLogsResponse response;
  auto context = Context(options_.call_timeout);
  grpc::Status status = stub->GetLogs(context.get(), request, &response);
  if (!status.ok()) return SpokeError(record.spoke, status);
  return LogsResult{.logs = response.logs(), .truncated = response.truncated()};
}

absl::StatusOr<ExecResult> BoxRegistry::Exec(
    std::string_view box_id, const std::vector<std::string>& argv,
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
  LLMBOX_ASSIGN_OR_RETURN(BoxRecord record, Get(box_id));
  LLMBOX_ASSIGN_OR_RETURN(auto stub, SpokeFor(record));
  v1::ExecRequest request;
  request.set_box_id(record.box_id);
  for (const auto& arg : argv) request.add_argv(arg);
  SetDuration(request.mutable_timeout(), limit);
  request.set_max_output_bytes(options_.max_exec_output_bytes);
  v1::ExecResponse response;
  // The spoke enforces `limit` itself; the margin covers the round trip.
  auto context = Context(limit + std::chrono::seconds(15));
  grpc::ClientContext* raw = context.get();
  if (on_cancel) on_cancel([raw] { raw->TryCancel(); });
  grpc::Status status = stub->Exec(raw, request, &response);
  if (status.error_code() == grpc::StatusCode::CANCELLED) {
    return absl::CancelledError("exec cancelled by the client");
  }
  if (!status.ok()) return SpokeError(record.spoke, status);
  return ExecResult{.exit_code = response.exit_code(),
                    .stdout_text = response.stdout(),
                    .stderr_text = response.stderr(),
                    .truncated = response.stdout_truncated() || response.stderr_truncated(),
                    .timed_out = response.timed_out()};
}

namespace {

struct SpokeHealth {
  SpokeDirectory::Entry entry;
  grpc::Status status;
  v1::HealthResponse health;
};

// Every spoke's health, asked at once (a slow spoke costs `timeout`, not a sum of them).
std::vector<SpokeHealth> HealthOfAll(std::vector<SpokeDirectory::Entry> spokes,
                                     std::chrono::milliseconds timeout) {
  std::vector<SpokeHealth> out;
  for (auto& entry : spokes) out.push_back({.entry = std::move(entry)});
  std::vector<std::future<void>> calls;
  for (auto& spoke : out) {
    calls.push_back(std::async(std::launch::async, [&spoke, timeout] {
      auto context = Context(timeout);
      spoke.status = spoke.entry.stub->Health(context.get(), v1::HealthRequest(), &spoke.health);
    }));
  }
  for (auto& call : calls) call.wait();
  return out;
}

std::uint32_t BoxesOf(const v1::Capacity& capacity) {
  return capacity.creating() + capacity.pending() + capacity.ready() + capacity.error();
}

}  // namespace

absl::StatusOr<std::string> BoxRegistry::Place(const std::string& image) {
  auto all = spokes_.List();
  if (all.empty()) return absl::UnavailableError("this hub has no spokes to place a box on");
  if (all.size() == 1) return all.front().name;
  const SpokeHealth* best = nullptr;
  std::vector<std::string> passed_over;
  const auto spokes = HealthOfAll(std::move(all), std::chrono::milliseconds(2000));
  for (const auto& spoke : spokes) {
    const std::string& name = spoke.entry.name;
    const auto& capacity = spoke.health.capacity();
    const auto& images = spoke.health.allowed_images();
    if (!spoke.status.ok()) {
      passed_over.push_back(name + " is unreachable (" + spoke.status.error_message() + ")");
    } else if (!spoke.health.engine().reachable()) {
      passed_over.push_back(name + "'s Docker engine is down (" + spoke.health.engine().error() +
                            ")");
    } else if (!image.empty() && std::find(images.begin(), images.end(), image) == images.end()) {
      passed_over.push_back(name + " does not allow image " + common::QuoteForMessage(image));
    } else if (BoxesOf(capacity) >= capacity.max_boxes()) {
      passed_over.push_back(name + " is full (" + std::to_string(BoxesOf(capacity)) + " of " +
                            std::to_string(capacity.max_boxes()) + " boxes)");
    } else {
      auto free = [](const SpokeHealth& s) {
        return s.health.capacity().max_boxes() - BoxesOf(s.health.capacity());
      };
      // Spokes come by name, so on a full tie the first name stays.
      if (best == nullptr || free(spoke) > free(*best) ||
          (free(spoke) == free(*best) && BoxesOf(capacity) < BoxesOf(best->health.capacity()))) {
        best = &spoke;
      }
    }
  }
  if (best == nullptr) {
    std::string why;
    for (const auto& reason : passed_over) why += (why.empty() ? "" : "; ") + reason;
    return absl::ResourceExhaustedError("no spoke can take the box: " + why +
                                        ". Destroy a box, or name a spoke with room");
  }
  return best->entry.name;
}

std::vector<SpokeStatus> BoxRegistry::Spokes() {
  std::vector<SpokeStatus> out;
  for (const auto& spoke : HealthOfAll(spokes_.List(), std::chrono::milliseconds(3000))) {
    SpokeStatus status{
        .name = spoke.entry.name, .local = spoke.entry.local, .connected = spoke.status.ok()};
    if (spoke.status.ok()) {
      status.max_boxes = spoke.health.capacity().max_boxes();
      status.boxes = BoxesOf(spoke.health.capacity());
    } else {
      status.error = spoke.status.error_message();
    }
    out.push_back(std::move(status));
  }
  return out;
}

absl::StatusOr<BoxRecord> BoxRegistry::FindByToken(std::string_view token) {
  auto record = store_.GetBoxByTokenHash(common::Sha256Hex(token));
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError("this activation link is unknown or its box is gone");
  }
  return record;
}

absl::StatusOr<std::string> BoxRegistry::ClaimActivation(std::string_view box_id,
                                                         std::string_view email) {
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
  if (record.phase != Phase::kPending && record.phase != Phase::kError) {
    return absl::FailedPreconditionError("box \"" + record.box_id + "\" is " +
                                         std::string(store::PhaseName(record.phase)) +
                                         " and cannot take a code now");
  }
  LLMBOX_ASSIGN_OR_RETURN(auto stub, SpokeFor(record));
  record.phase = Phase::kActivating;
  record.updated_at_ms = NowMs();
  LLMBOX_RETURN_IF_ERROR(store_.UpdateBox(record));

  v1::SubmitCodeRequest request;
  request.set_box_id(record.box_id);
  request.set_code(std::string(code));
  SetDuration(request.mutable_timeout(), options_.submit_timeout);
  v1::SubmitCodeResponse response;
  auto context = Context(options_.submit_timeout + std::chrono::seconds(15));
  grpc::Status status = stub->SubmitCode(context.get(), request, &response);
  SubmitResult result;
  if (!status.ok()) {
    record.phase = Phase::kPending;
    record.last_error = common::AsStd(SpokeError(record.spoke, status).message());
    record.updated_at_ms = NowMs();
    if (auto st = store_.UpdateBox(record); !st.ok()) {
      spdlog::warn("box {}: could not record the failed activation: {}", record.box_id,
                   common::AsStd(st.message()));
    }
    return SpokeError(record.spoke, status);
  }
  result.activated = response.activated();
  result.attempts_remaining = response.attempts_remaining();
  if (response.activated()) {
    record.phase = Phase::kReady;
    record.session_url = response.session_url();
    record.last_error.clear();
    result.session_url = response.session_url();
  } else {
    result.box_error = response.box_error();
    record.last_error = response.box_error();
    if (!response.authorize_url().empty()) record.authorize_url = response.authorize_url();
    record.phase = response.attempts_remaining() == 0 ? Phase::kError : Phase::kPending;
  }
  record.activation_attempts += 1;
  record.updated_at_ms = NowMs();
  LLMBOX_RETURN_IF_ERROR(store_.UpdateBox(record));
  result.record = record;
  spdlog::info("box {}: activation {}", record.box_id,
               response.activated() ? "succeeded" : "refused by the box");
  return result;
}

grpc::Status BoxRegistry::DestroyOnSpoke(v1::BoxService::StubInterface& stub,
                                         const std::string& box_id) {
  v1::DestroyBoxRequest destroy;
  destroy.set_box_id(box_id);
  v1::DestroyBoxResponse destroyed;
  auto context = Context(options_.call_timeout);
  return stub.DestroyBox(context.get(), destroy, &destroyed);
}

bool BoxRegistry::InterruptedCreate(const BoxRecord& record) {
  const std::int64_t limit_ms = (options_.create_timeout + options_.call_timeout).count();
  return NowMs() - record.created_at_ms > limit_ms;
}

std::vector<std::string> BoxRegistry::Reconcile() {
  std::vector<std::string> unknown;
  for (const auto& entry : spokes_.List()) {
    v1::ListBoxesResponse listed;
    auto context = Context(options_.call_timeout);
    grpc::Status status = entry.stub->ListBoxes(context.get(), v1::ListBoxesRequest(), &listed);
    if (!status.ok()) {
      spdlog::warn("reconcile: spoke {} cannot be listed: {}", entry.name, status.error_message());
      continue;
    }
    std::map<std::string, const v1::Box*> on_spoke;
    for (const auto& box : listed.boxes()) on_spoke[common::CanonicalBoxId(box.box_id())] = &box;
    auto records = store_.ListBoxes({.spoke = entry.name});
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
          grpc::Status gone = DestroyOnSpoke(*entry.stub, record.box_id);
          if (!gone.ok() && gone.error_code() != grpc::StatusCode::NOT_FOUND) {
            spdlog::warn(
                "reconcile: box {}: its interrupted create could not be undone on spoke "
                "{} (tried again later): {}",
                record.box_id, entry.name, gone.error_message());
            continue;
          }
        }
        if (auto st = store_.DeleteBox(record.box_id); !st.ok()) {
          spdlog::warn("reconcile: box {}: {}", record.box_id, common::AsStd(st.message()));
        } else {
          spdlog::info(
              "reconcile: box {} on spoke {} was left creating by an interrupted "
              "create; removed",
              record.box_id, entry.name);
        }
        known.erase(common::CanonicalBoxId(record.box_id));
        on_spoke.erase(common::CanonicalBoxId(record.box_id));
        continue;
      }
      BoxRecord updated = record;
      if (it == on_spoke.end()) {
        if (record.phase == Phase::kGone || record.phase == Phase::kCreating) continue;
        updated.phase = Phase::kGone;
        updated.last_error = "the box is no longer on spoke " + entry.name +
                             " (reaped after its activation deadline, or removed)";
      } else {
        const Phase phase = FromProto(it->second->phase());
        if (phase == Phase::kActivating || record.phase == Phase::kActivating) continue;
        updated.phase = phase;
        if (!it->second->session_url().empty()) updated.session_url = it->second->session_url();
        if (!it->second->last_error().empty()) updated.last_error = it->second->last_error();
        if (updated.container_id.empty()) updated.container_id = it->second->container_id();
      }
      if (updated.phase != record.phase || updated.session_url != record.session_url ||
          updated.last_error != record.last_error) {
        updated.updated_at_ms = NowMs();
        if (auto st = store_.UpdateBox(updated); !st.ok()) {
          spdlog::warn("reconcile: box {}: {}", record.box_id, common::AsStd(st.message()));
        } else {
          spdlog::info("reconcile: box {} on spoke {} is now {}", record.box_id, entry.name,
                       store::PhaseName(updated.phase));
        }
      }
    }
    for (const auto& [id, box] : on_spoke) {
      if (!known.contains(id)) {
        spdlog::warn(
            "reconcile: spoke {} has managed box {} that this hub does not know "
            "(made by another hub, or its record was lost); the spoke's reaper removes "
            "it if it was never activated",
            entry.name, box->box_id());
        unknown.push_back(entry.name + "/" + box->box_id());
      }
    }
  }
  return unknown;
}

}  // namespace llmbox::hub::boxes
