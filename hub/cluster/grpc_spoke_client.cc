// hub/cluster/grpc_spoke_client.cc
#include "hub/cluster/grpc_spoke_client.h"

#include <algorithm>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "common/grpc_status.h"
#include "common/redact.h"
#include "common/utf8.h"
#include "common/validate.h"
#include "llmbox/v1/box.grpc.pb.h"

namespace llmbox::hub::cluster {
namespace {

using store::Phase;

Phase FromProto(v1::BoxPhase phase) {
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

std::chrono::sys_time<std::chrono::milliseconds> FromProto(const google::protobuf::Timestamp& t) {
  return std::chrono::sys_time<std::chrono::milliseconds>(
      std::chrono::milliseconds(t.seconds() * 1000 + t.nanos() / 1'000'000));
}

NetworkMode FromProto(v1::NetworkMode mode) {
  switch (mode) {
    case v1::NETWORK_MODE_NONE:
      return NetworkMode::kNone;
    case v1::NETWORK_MODE_ALLOWLIST:
      return NetworkMode::kAllowlist;
    case v1::NETWORK_MODE_OPEN:
      return NetworkMode::kOpen;
    default:
      return NetworkMode::kDefault;
  }
}

v1::NetworkMode ToProto(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kNone:
      return v1::NETWORK_MODE_NONE;
    case NetworkMode::kAllowlist:
      return v1::NETWORK_MODE_ALLOWLIST;
    case NetworkMode::kOpen:
      return v1::NETWORK_MODE_OPEN;
    case NetworkMode::kDefault:
      break;
  }
  return v1::NETWORK_MODE_UNSPECIFIED;
}

// Entries and the proxy address: the spoke's own text, bounded all the same.
constexpr std::size_t kMaxEntryBytes = 255;
// A refusal names what the box asked for: the box's words, whatever the spoke promised.
constexpr std::size_t kMaxDestinationBytes = 255;
constexpr std::size_t kMaxProtocolBytes = 16;
constexpr std::size_t kMaxRuleBytes = 256;

std::vector<std::string> BoundedList(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<std::string> out;
  const int n = std::min<int>(in.size(), static_cast<int>(kMaxNetworkList));
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(common::Utf8Prefix(in[i], kMaxEntryBytes));
  return out;
}

BoxNetwork FromProto(const v1::BoxNetwork& network) {
  BoxNetwork out{.mode = FromProto(network.mode()),
                 .allow = BoundedList(network.allow()),
                 .base = BoundedList(network.base()),
                 .proxy = common::Utf8Prefix(network.proxy(), kMaxEntryBytes)};
  // Oldest first: the newest are the last ones.
  const int skip =
      std::max<int>(0, network.refusals_size() - static_cast<int>(kMaxNetworkRefusals));
  for (int i = skip; i < network.refusals_size(); ++i) {
    const v1::Refusal& refusal = network.refusals(i);
    out.refusals.push_back(
        {.time = FromProto(refusal.time()),
         .destination = common::Utf8Prefix(refusal.destination(), kMaxDestinationBytes),
         .port = refusal.port() <= 65535 ? refusal.port() : 0,
         .protocol = common::Utf8Prefix(refusal.protocol(), kMaxProtocolBytes),
         .rule = common::Utf8Prefix(refusal.rule(), kMaxRuleBytes)});
  }
  return out;
}

SpokeBox FromProto(const v1::Box& box) {
  return SpokeBox{.box_id = box.box_id(),
                  .container_id = box.container_id(),
                  .phase = FromProto(box.phase()),
                  .image = box.image(),
                  .session_url = box.session_url(),
                  .last_error = box.last_error(),
                  .expires_at = FromProto(box.expires_at()),
                  .network = FromProto(box.network()),
                  .at = {.epoch = box.changes_epoch(), .seq = box.changes_seq()}};
}

void SetDuration(google::protobuf::Duration* out, std::chrono::milliseconds d) {
  out->set_seconds(d.count() / 1000);
  out->set_nanos(static_cast<int>((d.count() % 1000) * 1'000'000));
}

// A deadline-bounded context for one call. gRPC deadlines are on the system clock.
std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

class GrpcSpokeClient final : public SpokeClient {
 public:
  explicit GrpcSpokeClient(std::shared_ptr<grpc::ChannelInterface> channel)
      : stub_(v1::BoxService::NewStub(channel)) {}

  absl::StatusOr<CreatedOnSpoke> CreateBox(const CreateBoxArgs& args,
                                           std::chrono::milliseconds timeout) override {
    v1::CreateBoxRequest request;
    request.set_box_id(args.box_id);
    request.set_image(args.image);
    request.set_description(args.description);
    request.set_owner(args.owner);
    if (args.network.has_value()) {
      request.mutable_network()->set_mode(ToProto(args.network->mode));
      for (const auto& entry : args.network->allow) request.mutable_network()->add_allow(entry);
    }
    v1::CreateBoxResponse response;
    auto context = Context(timeout);
    grpc::Status status = stub_->CreateBox(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    return CreatedOnSpoke{.box = FromProto(response.box()),
                          .authorize_url = response.authorize_url()};
  }

  absl::StatusOr<SpokeBox> GetBox(const std::string& box_id,
                                  std::chrono::milliseconds timeout) override {
    v1::GetBoxRequest request;
    request.set_box_id(box_id);
    v1::Box response;
    auto context = Context(timeout);
    grpc::Status status = stub_->GetBox(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    return FromProto(response);
  }

  absl::StatusOr<SpokeBox> SetBoxNetwork(const std::string& box_id, const NetworkChange& change,
                                         std::chrono::milliseconds timeout) override {
    v1::SetBoxNetworkRequest request;
    request.set_box_id(box_id);
    for (const auto& entry : change.add) request.add_add(entry);
    for (const auto& entry : change.remove) request.add_remove(entry);
    request.set_mode(ToProto(change.mode));
    v1::Box response;
    auto context = Context(timeout);
    grpc::Status status = stub_->SetBoxNetwork(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    return FromProto(response);
  }

  absl::StatusOr<std::vector<SpokeBox>> ListBoxes(std::chrono::milliseconds timeout) override {
    v1::ListBoxesResponse response;
    auto context = Context(timeout);
    grpc::Status status = stub_->ListBoxes(context.get(), v1::ListBoxesRequest(), &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    std::vector<SpokeBox> boxes;
    boxes.reserve(response.boxes_size());
    for (const auto& box : response.boxes()) boxes.push_back(FromProto(box));
    return boxes;
  }

  absl::Status DestroyBox(const std::string& box_id, std::chrono::milliseconds timeout) override {
    v1::DestroyBoxRequest request;
    request.set_box_id(box_id);
    v1::DestroyBoxResponse response;
    auto context = Context(timeout);
    return common::FromGrpcStatus(stub_->DestroyBox(context.get(), request, &response));
  }

  absl::StatusOr<SpokeLogs> GetLogs(const LogsArgs& args,
                                    std::chrono::milliseconds timeout) override {
    v1::GetLogsRequest request;
    request.set_box_id(args.box_id);
    request.set_tail_lines(args.tail_lines);
    request.set_max_bytes(args.max_bytes);
    v1::GetLogsResponse response;
    auto context = Context(timeout);
    grpc::Status status = stub_->GetLogs(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    return SpokeLogs{.logs = response.logs(), .truncated = response.truncated()};
  }

  absl::StatusOr<ExecOutput> Exec(const ExecArgs& args, std::chrono::milliseconds timeout,
                                  const CancelHook& on_cancel) override {
    v1::ExecRequest request;
    request.set_box_id(args.box_id);
    for (const auto& arg : args.argv) request.add_argv(arg);
    SetDuration(request.mutable_timeout(), args.timeout);
    request.set_max_output_bytes(args.max_output_bytes);
    // The hub only ever runs commands as the box's unprivileged exec user.
    request.set_identity(v1::EXEC_AS_USER);
    v1::ExecResponse response;
    // Shared with the cancel hook: the caller may keep the hook (and call it) after this call
    // returned, and cancelling a finished call is harmless, but a freed context is not.
    std::shared_ptr<grpc::ClientContext> context = Context(timeout);
    if (on_cancel) on_cancel([context] { context->TryCancel(); });
    grpc::Status status = stub_->Exec(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    return ExecOutput{.exit_code = response.exit_code(),
                      .stdout_text = response.stdout(),
                      .stderr_text = response.stderr(),
                      .stdout_truncated = response.stdout_truncated(),
                      .stderr_truncated = response.stderr_truncated(),
                      .timed_out = response.timed_out()};
  }

  absl::StatusOr<SubmitOutcome> SubmitCode(const SubmitCodeArgs& args,
                                           std::chrono::milliseconds timeout) override {
    v1::SubmitCodeRequest request;
    request.set_box_id(args.box_id);
    request.set_code(args.code);
    SetDuration(request.mutable_timeout(), args.timeout);
    v1::SubmitCodeResponse response;
    auto context = Context(timeout);
    grpc::Status status = stub_->SubmitCode(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    return SubmitOutcome{.activated = response.activated(),
                         .session_url = response.session_url(),
                         .box_error = response.box_error(),
                         .authorize_url = response.authorize_url(),
                         .attempts_remaining = response.attempts_remaining()};
  }

  absl::StatusOr<SpokeHealth> HealthSince(std::chrono::milliseconds timeout,
                                          const FeedPosition& since) override {
    v1::HealthRequest request;
    request.set_changes_epoch(since.epoch);
    request.set_changes_since(since.seq);
    v1::HealthResponse response;
    auto context = Context(timeout);
    grpc::Status status = stub_->Health(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    const v1::Capacity& capacity = response.capacity();
    SpokeHealth health{
        .spoke_name = response.spoke_name(),
        .max_boxes = capacity.max_boxes(),
        .creating = capacity.creating(),
        .pending = capacity.pending(),
        .ready = capacity.ready(),
        .error = capacity.error(),
        .engine_reachable = response.engine().reachable(),
        .engine_error = response.engine().error(),
        .allowed_images = {response.allowed_images().begin(), response.allowed_images().end()},
        // A spoke's own words: shown to operators and logged, so bounded and redacted here.
        .cannot_create = common::Utf8Prefix(
            common::Redact(std::string_view(response.cannot_create()).substr(0, 4096)), 2048)};
    health.changes_at = {.epoch = response.changes_epoch(), .seq = response.changes_seq()};
    // A spoke's list, so bounded: past kMaxFeedChanges every box counts as changed (the hub
    // only asks the spoke again; nothing is lost). An id that is not one names no box the hub
    // keeps anything of: skipped.
    health.changes_all = response.changes_all() || response.changes_size() > kMaxFeedChanges;
    if (!health.changes_all) {
      health.changes.reserve(static_cast<std::size_t>(response.changes_size()));
      for (const v1::BoxChange& change : response.changes()) {
        if (!common::ValidateBoxId(change.box_id()).ok()) continue;
        health.changes.emplace_back(common::CanonicalBoxId(change.box_id()), change.seq());
      }
    }
    return health;
  }

  absl::StatusOr<SpokeRemovals> ListRemovals(const std::string& journal_id, std::uint64_t after_seq,
                                             std::chrono::milliseconds timeout) override {
    v1::ListRemovalsRequest request;
    request.set_journal_id(journal_id);
    request.set_after_seq(after_seq);
    v1::ListRemovalsResponse response;
    auto context = Context(timeout);
    grpc::Status status = stub_->ListRemovals(context.get(), request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    SpokeRemovals out{.journal_id = response.journal_id(),
                      .first_seq = response.first_seq(),
                      .last_seq = response.last_seq()};
    for (const v1::Removal& removal : response.removals()) {
      out.removals.push_back({.seq = removal.seq(),
                              .box_id = removal.box_id(),
                              .reason = removal.reason(),
                              .at = FromProto(removal.time()),
                              .code = removal.code(),
                              .error = removal.error()});
    }
    return out;
  }

 private:
  const std::unique_ptr<v1::BoxService::StubInterface> stub_;
};

}  // namespace

std::shared_ptr<SpokeClient> MakeGrpcSpokeClient(std::shared_ptr<grpc::ChannelInterface> channel) {
  return std::make_shared<GrpcSpokeClient>(std::move(channel));
}

absl::Status SetSpokeHubKeys(const std::shared_ptr<grpc::ChannelInterface>& channel,
                             const std::vector<std::string>& key_sha256,
                             std::chrono::milliseconds timeout) {
  v1::SetHubKeysRequest request;
  for (const auto& key : key_sha256) request.add_hub_key_sha256(key);
  auto stub = v1::BoxService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::SetHubKeysResponse response;
  return common::FromGrpcStatus(stub->SetHubKeys(&context, request, &response));
}

}  // namespace llmbox::hub::cluster
