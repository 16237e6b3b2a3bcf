#include "spoke/service/box_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/grpc_status.h"
#include "common/grpc_tls.h"
#include "common/pki.h"
#include "common/redact.h"
#include "common/utf8.h"
#include "common/version.h"
#include "spoke/box/console.h"
#include "spoke/box/readiness.h"
#include "spoke/service/network_proto.h"

namespace llmbox::spoke::service {
namespace {

using common::ToGrpcStatus;
using std::chrono::milliseconds;

constexpr int kDefaultTail = 200;
constexpr int kMaxTail = 10'000;
constexpr size_t kDefaultLogBytes = 64u << 10;
constexpr size_t kMaxLogBytes = 1u << 20;
constexpr size_t kDefaultExecBytes = 64u << 10;
constexpr size_t kMaxExecBytes = 1u << 20;
constexpr int kMaxArgs = 256;
constexpr size_t kMaxArgvBytes = 64u << 10;
// A box's own words in an error (a login failure is one whole console line) are cut here.
constexpr size_t kMaxBoxErrorBytes = 4u << 10;

// Text that came from a box, the engine or the spoke's memory of them, as a proto3 `string`
// must be: valid UTF-8. protobuf parses no message with a `string` field that is not, so one
// byte of a box's console would lose the whole answer (a ListBoxes of every box) at the hub.
std::string Text(std::string_view text) { return common::ToValidUtf8(text); }

// An error in a box's own words: valid UTF-8, and short enough to show in every box list.
std::string BoxError(std::string_view text) { return common::Utf8Prefix(text, kMaxBoxErrorBytes); }

// Exec output as it leaves the spoke: redacted, then made valid UTF-8 (after redaction, so
// that no replacement changes what the patterns see). The bytes stay bytes in the proto.
std::string ExecOutput(std::string_view raw) {
  return Text(common::Redact(box::RedactConsole(raw)));
}

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

milliseconds ToMillis(const google::protobuf::Duration& d) {
  return milliseconds(d.seconds() * 1000 + d.nanos() / 1'000'000);
}

void SetTime(google::protobuf::Timestamp* out, std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  out->set_seconds(ns.count() / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(ns.count() % 1'000'000'000));
}

v1::BoxPhase PhaseOf(box::BoxPhase phase) {
  switch (phase) {
    case box::BoxPhase::kCreating:
      return v1::BOX_PHASE_CREATING;
    case box::BoxPhase::kPending:
      return v1::BOX_PHASE_PENDING;
    case box::BoxPhase::kActivating:
      return v1::BOX_PHASE_ACTIVATING;
    case box::BoxPhase::kReady:
      return v1::BOX_PHASE_READY;
    case box::BoxPhase::kStopped:
      return v1::BOX_PHASE_ERROR;
  }
  return v1::BOX_PHASE_UNSPECIFIED;
}

// `with_refusals`: the box's latest refused connections too (a get; a list leaves them out).
void ToProto(const box::BoxView& view, int max_attempts, std::chrono::milliseconds auth_ttl,
             v1::Box* out, bool with_refusals = true) {
  out->set_box_id(Text(view.box_id));
  out->set_container_id(Text(view.container_id));
  out->set_phase(PhaseOf(view.phase));
  out->set_image(Text(view.image));
  out->set_description(Text(view.description));
  SetTime(out->mutable_created_at(), view.created);
  // The reaper destroys a box still pending this long after its creation.
  if (auth_ttl.count() > 0 && view.phase == box::BoxPhase::kPending) {
    SetTime(out->mutable_expires_at(), view.created + auth_ttl);
  }
  out->set_session_url(Text(view.session_url));
  out->set_last_error(BoxError(view.phase == box::BoxPhase::kStopped && view.last_error.empty()
                                   ? "the box stopped (" + view.container_state + ")"
                                   : view.last_error));
  out->set_container_state(Text(view.container_state));
  out->set_owner(Text(view.owner));
  out->set_activation_attempts(static_cast<uint32_t>(view.activation_attempts));
  out->set_max_activation_attempts(static_cast<uint32_t>(max_attempts));
  NetworkToProto(view.network, with_refusals, out->mutable_network());
}

}  // namespace

BoxServiceImpl::BoxServiceImpl(box::BoxManager& boxes, docker::DockerEngine& engine,
                               BoxServiceOptions options)
    : boxes_(boxes), engine_(engine), options_(std::move(options)) {}

grpc::Status BoxServiceImpl::Authorize(grpc::ServerContext* context) const {
  if (options_.allowed_peer.empty()) return grpc::Status::OK;
  auto auth = context->auth_context();
  if (auth == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no peer identity");
  }
  if (auto st = common::AuthorizePeer(*auth, options_.allowed_peer); !st.ok()) {
    return ToGrpcStatus(st);
  }
  if (!options_.check_peer_certificate) return grpc::Status::OK;
  auto peer = common::VerifiedPeer(*auth);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return ToGrpcStatus(options_.check_peer_certificate(peer->cert_pem));
}

grpc::Status BoxServiceImpl::CreateBox(grpc::ServerContext* context,
                                       const v1::CreateBoxRequest* request,
                                       v1::CreateBoxResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  if (request->description().size() > 1024) {
    return Invalid("description is longer than 1024 bytes");
  }
  if (request->owner().size() > 256) return Invalid("owner is longer than 256 bytes");
  if (request->peers_size() > 16) return Invalid("a box may have at most 16 peers");
  auto network = PolicyFromProto(*request, options_.boxes.egress.default_mode);
  if (!network.ok()) return ToGrpcStatus(network.status());
  box::CreateBoxRequest create{.box_id = request->box_id(),
                               .image = request->image(),
                               .description = request->description(),
                               .owner = request->owner(),
                               .peers = {request->peers().begin(), request->peers().end()},
                               .network = *std::move(network)};
  auto created = boxes_.Create(create);
  if (!created.ok()) return ToGrpcStatus(created.status());
  ToProto(created->box, options_.boxes.max_activation_attempts, options_.auth_ttl,
          response->mutable_box());
  Stamp(created->box, response->mutable_box());
  response->set_authorize_url(Text(created->authorize_url));
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::GetBox(grpc::ServerContext* context, const v1::GetBoxRequest* request,
                                    v1::Box* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  auto view = boxes_.Get(request->box_id());
  if (!view.ok()) return ToGrpcStatus(view.status());
  ToProto(*view, options_.boxes.max_activation_attempts, options_.auth_ttl, response);
  Stamp(*view, response);
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::ListBoxes(grpc::ServerContext* context,
                                       const v1::ListBoxesRequest* request,
                                       v1::ListBoxesResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  auto views = boxes_.List();
  if (!views.ok()) return ToGrpcStatus(views.status());
  feed_.ObserveAll(*views);
  for (const auto& view : *views) {
    v1::Box box;
    ToProto(view, options_.boxes.max_activation_attempts, options_.auth_ttl, &box,
            /*with_refusals=*/false);
    if (request->phases_size() > 0 && std::find(request->phases().begin(), request->phases().end(),
                                                box.phase()) == request->phases().end()) {
      continue;
    }
    *response->add_boxes() = std::move(box);
  }
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::SetBoxNetwork(grpc::ServerContext* context,
                                           const v1::SetBoxNetworkRequest* request,
                                           v1::Box* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  auto change = ChangeFromProto(*request);
  if (!change.ok()) return ToGrpcStatus(change.status());
  auto view = boxes_.SetNetwork(request->box_id(), *change);
  if (!view.ok()) return ToGrpcStatus(view.status());
  ToProto(*view, options_.boxes.max_activation_attempts, options_.auth_ttl, response);
  Stamp(*view, response);
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::DestroyBox(grpc::ServerContext* context,
                                        const v1::DestroyBoxRequest* request,
                                        v1::DestroyBoxResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  std::optional<std::chrono::seconds> grace;
  if (request->has_grace_period()) {
    grace = std::min(
        std::chrono::duration_cast<std::chrono::seconds>(ToMillis(request->grace_period())),
        options_.max_grace);
  }
  auto existed = boxes_.Destroy(request->box_id(), grace);
  if (!existed.ok()) return ToGrpcStatus(existed.status());
  response->set_existed(*existed);
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::SubmitCode(grpc::ServerContext* context,
                                        const v1::SubmitCodeRequest* request,
                                        v1::SubmitCodeResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  std::optional<milliseconds> timeout;
  if (request->has_timeout()) {
    timeout = std::min(ToMillis(request->timeout()), options_.max_submit_timeout);
  }
  auto outcome = boxes_.SubmitCode(request->box_id(), request->code(), timeout);
  if (!outcome.ok()) return ToGrpcStatus(outcome.status());
  response->set_activated(outcome->activated);
  response->set_session_url(Text(outcome->session_url));
  response->set_box_error(BoxError(outcome->box_error));
  response->set_authorize_url(Text(outcome->authorize_url));
  response->set_attempts_remaining(static_cast<uint32_t>(outcome->attempts_remaining));
  ToProto(outcome->box, options_.boxes.max_activation_attempts, options_.auth_ttl,
          response->mutable_box());
  Stamp(outcome->box, response->mutable_box());
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::GetLogs(grpc::ServerContext* context,
                                     const v1::GetLogsRequest* request,
                                     v1::GetLogsResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  const int tail = request->tail_lines() == 0
                       ? kDefaultTail
                       : static_cast<int>(std::min<uint32_t>(request->tail_lines(), kMaxTail));
  const size_t max_bytes = request->max_bytes() == 0
                               ? kDefaultLogBytes
                               : std::min<size_t>(request->max_bytes(), kMaxLogBytes);
  auto logs = boxes_.Logs(request->box_id(), tail, max_bytes);
  if (!logs.ok()) return ToGrpcStatus(logs.status());
  response->set_logs(Text(logs->output));
  response->set_truncated(logs->truncated);
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::Exec(grpc::ServerContext* context, const v1::ExecRequest* request,
                                  v1::ExecResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  if (request->argv_size() == 0) return Invalid("exec: the command (argv) is empty");
  if (request->argv_size() > kMaxArgs) {
    return Invalid(absl::StrCat("exec: at most ", kMaxArgs, " arguments"));
  }
  size_t total = 0;
  for (const auto& arg : request->argv()) {
    total += arg.size();
    if (arg.find('\0') != std::string::npos) return Invalid("exec: an argument contains NUL");
  }
  if (total > kMaxArgvBytes) {
    return Invalid(absl::StrCat("exec: the arguments exceed ", kMaxArgvBytes, " bytes"));
  }
  docker::ExecSpec spec;
  spec.argv.assign(request->argv().begin(), request->argv().end());
  spec.timeout = request->has_timeout()
                     ? std::min(ToMillis(request->timeout()), options_.max_exec_timeout)
                     : milliseconds(30'000);
  spec.max_output_bytes = request->max_output_bytes() == 0
                              ? kDefaultExecBytes
                              : std::min<size_t>(request->max_output_bytes(), kMaxExecBytes);
  box::ExecIdentity identity;
  switch (request->identity()) {
    case v1::EXEC_AS_USER:
      identity = box::ExecIdentity::kUser;
      break;
    case v1::EXEC_AS_BOX:
      identity = box::ExecIdentity::kBox;
      break;
    default:
      return Invalid(absl::StrCat("exec: unknown identity ", request->identity()));
  }
  // A caller that gave up (the chatbot cancelled, the hub's deadline passed) ends the command.
  spec.cancelled = [context] { return context->IsCancelled(); };
  auto result = boxes_.Exec(request->box_id(), spec, identity);
  if (!result.ok()) return ToGrpcStatus(result.status());
  response->set_exit_code(static_cast<int32_t>(result->exit_code));
  response->set_stdout(ExecOutput(result->stdout_data));
  response->set_stderr(ExecOutput(result->stderr_data));
  response->set_stdout_truncated(result->stdout_truncated);
  response->set_stderr_truncated(result->stderr_truncated);
  response->set_timed_out(result->timed_out);
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::SetHubKeys(grpc::ServerContext* context,
                                        const v1::SetHubKeysRequest* request,
                                        v1::SetHubKeysResponse*) {
  if (auto st = Authorize(context); !st.ok()) return st;
  if (!options_.set_hub_keys) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this spoke does not pin hub keys (the hub's in-process spoke)");
  }
  if (request->hub_key_sha256_size() < 1 || request->hub_key_sha256_size() > 8) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "expected 1..8 hub keys");
  }
  const std::vector<std::string> keys(request->hub_key_sha256().begin(),
                                      request->hub_key_sha256().end());
  auto peer = common::VerifiedPeer(*context->auth_context());
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  auto caller = common::InspectCert(peer->cert_pem);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (std::find(keys.begin(), keys.end(), caller->public_key_sha256) == keys.end()) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "the hub keys must include the caller's own key sha256:" + caller->public_key_sha256);
  }
  return ToGrpcStatus(options_.set_hub_keys(keys));
}

void BoxServiceImpl::NoteCanCreate(const std::string& problem) {
  std::lock_guard lock(can_create_mu_);
  if (last_problem_ == problem) return;
  // The first answer was logged at start (SpokeNode::Start).
  if (!last_problem_.has_value()) {
    last_problem_ = problem;
    return;
  }
  if (!problem.empty()) {
    spdlog::warn("spoke {}: cannot create boxes: {}", options_.spoke_name, problem);
  } else {
    spdlog::info("spoke {}: can create boxes again", options_.spoke_name);
  }
  last_problem_ = problem;
}

void BoxServiceImpl::Stamp(const box::BoxView& view, v1::Box* out) {
  out->set_changes_epoch(feed_.epoch());
  out->set_changes_seq(feed_.Observe(view));
}

grpc::Status BoxServiceImpl::Health(grpc::ServerContext* context, const v1::HealthRequest* request,
                                    v1::HealthResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  response->set_spoke_name(options_.spoke_name);
  response->set_version(std::string(common::kVersion));
  auto* capacity = response->mutable_capacity();
  capacity->set_max_boxes(static_cast<uint32_t>(options_.boxes.max_boxes));
  capacity->set_max_concurrent_creates(
      static_cast<uint32_t>(options_.boxes.max_concurrent_creates));
  auto* engine = response->mutable_engine();
  bool listed = false;  // the engine listed the boxes (the feed observed all of them)
  auto info = engine_.Ping();
  if (info.ok()) {
    engine->set_reachable(true);
    engine->set_version(Text(info->server_version));
    engine->set_api_version(Text(info->api_version));
    const absl::Status can_create = box::CheckCanCreate(engine_, options_.boxes, info->endpoint);
    const std::string problem(common::AsStd(can_create.message()));
    response->set_cannot_create(Text(problem));
    NoteCanCreate(problem);
    auto views = boxes_.List();
    listed = views.ok();
    if (views.ok()) {
      feed_.ObserveAll(*views);
      for (const auto& view : *views) {
        switch (view.phase) {
          case box::BoxPhase::kCreating:
            capacity->set_creating(capacity->creating() + 1);
            break;
          case box::BoxPhase::kPending:
          case box::BoxPhase::kActivating:  // a pending box with a code being tried
            capacity->set_pending(capacity->pending() + 1);
            break;
          case box::BoxPhase::kReady:
            capacity->set_ready(capacity->ready() + 1);
            break;
          case box::BoxPhase::kStopped:
            capacity->set_error(capacity->error() + 1);
            break;
        }
      }
    }
  } else {
    engine->set_reachable(false);
    engine->set_error(Text(common::AsStd(info.status().message())));
  }
  // The boxes changed after the caller's position; all of them when the engine could not
  // list them (a view the caller keeps may be stale).
  const ChangeFeed::Changes changes =
      feed_.Since(request->changes_epoch(), request->changes_since(), kMaxChangesAnswered);
  response->set_changes_epoch(changes.epoch);
  response->set_changes_seq(changes.seq);
  response->set_changes_all(changes.all || !listed);
  if (listed) {
    for (const auto& [box_id, seq] : changes.boxes) {
      v1::BoxChange* change = response->add_changes();
      change->set_box_id(box_id);
      change->set_seq(seq);
    }
  }
  response->add_allowed_images(options_.boxes.default_image);
  for (const auto& image : options_.boxes.allowed_images) response->add_allowed_images(image);
  for (const auto& peer : options_.boxes.allowed_peers) response->add_allowed_peers(peer);
  return grpc::Status::OK;
}

grpc::Status BoxServiceImpl::ListRemovals(grpc::ServerContext* context,
                                          const v1::ListRemovalsRequest* request,
                                          v1::ListRemovalsResponse* response) {
  if (auto st = Authorize(context); !st.ok()) return st;
  if (options_.removals == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this spoke keeps no removal journal");
  }
  const reaper::RemovalPage page = options_.removals->After(
      request->journal_id(), request->after_seq(), reaper::RemovalJournal::kMaxPage);
  response->set_journal_id(page.journal_id);
  response->set_first_seq(page.first_seq);
  response->set_last_seq(page.last_seq);
  for (const reaper::RemovalEntry& entry : page.entries) {
    v1::Removal* out = response->add_removals();
    out->set_seq(entry.seq);
    out->set_box_id(Text(entry.box_id));
    out->set_reason(Text(entry.reason));
    SetTime(out->mutable_time(), common::FromUnixMillis(entry.at_ms));
    out->set_code(static_cast<int32_t>(entry.code));
    out->set_error(Text(common::Redact(entry.error)));
  }
  return grpc::Status::OK;
}

}  // namespace llmbox::spoke::service
