#include "tests/fakes/fake_box_service.h"

#include <algorithm>

namespace llmbox::testing {

FakeBoxService::FakeBoxService() {
  grpc::ServerBuilder builder;
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
}

FakeBoxService::~FakeBoxService() { server_->Shutdown(); }

std::shared_ptr<grpc::Channel> FakeBoxService::Channel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

grpc::Status FakeBoxService::CreateBox(grpc::ServerContext* context,
                                       const v1::CreateBoxRequest* request,
                                       v1::CreateBoxResponse* response) {
  std::lock_guard lock(mu);
  deadlines["CreateBox"] = context->deadline();
  last_create = *request;
  created.push_back(request->box_id());
  if (!create_status.ok()) return create_status;
  v1::Box& box = boxes[request->box_id()];
  box.set_box_id(request->box_id());
  box.set_container_id("c0ffee" + request->box_id());
  box.set_phase(v1::BOX_PHASE_PENDING);
  box.set_image(request->image().empty() ? "llmbox-box:dev" : request->image());
  box.mutable_expires_at()->set_seconds(4'000'000'000);
  *box.mutable_network()->mutable_allow() = request->network().allow();
  box.mutable_network()->set_mode(request->network().mode() == v1::NETWORK_MODE_UNSPECIFIED
                                      ? v1::NETWORK_MODE_ALLOWLIST
                                      : request->network().mode());
  *response->mutable_box() = box;
  response->set_authorize_url(authorize_url);
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::ListBoxes(grpc::ServerContext* context, const v1::ListBoxesRequest*,
                                       v1::ListBoxesResponse* response) {
  std::lock_guard lock(mu);
  deadlines["ListBoxes"] = context->deadline();
  if (!list_status.ok()) return list_status;
  for (const auto& [id, box] : boxes) *response->add_boxes() = box;
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::GetBox(grpc::ServerContext* context, const v1::GetBoxRequest* request,
                                    v1::Box* response) {
  std::lock_guard lock(mu);
  deadlines["GetBox"] = context->deadline();
  if (!get_status.ok()) return get_status;
  auto it = boxes.find(request->box_id());
  if (it == boxes.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such box");
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::SetBoxNetwork(grpc::ServerContext* context,
                                           const v1::SetBoxNetworkRequest* request,
                                           v1::Box* response) {
  std::lock_guard lock(mu);
  deadlines["SetBoxNetwork"] = context->deadline();
  last_set_network = *request;
  if (!set_network_status.ok()) return set_network_status;
  auto it = boxes.find(request->box_id());
  if (it == boxes.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such box");
  v1::BoxNetwork* network = it->second.mutable_network();
  std::vector<std::string> allow(network->allow().begin(), network->allow().end());
  for (const auto& entry : request->remove()) std::erase(allow, entry);
  for (const auto& entry : request->add()) {
    if (std::find(allow.begin(), allow.end(), entry) == allow.end()) allow.push_back(entry);
  }
  network->clear_allow();
  for (const auto& entry : allow) network->add_allow(entry);
  if (request->mode() != v1::NETWORK_MODE_UNSPECIFIED) network->set_mode(request->mode());
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::DestroyBox(grpc::ServerContext* context,
                                        const v1::DestroyBoxRequest* request,
                                        v1::DestroyBoxResponse* response) {
  std::lock_guard lock(mu);
  deadlines["DestroyBox"] = context->deadline();
  destroyed.push_back(request->box_id());
  if (!destroy_status.ok()) return destroy_status;
  response->set_existed(boxes.erase(request->box_id()) > 0);
  if (!response->existed()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such box");
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::SubmitCode(grpc::ServerContext* context,
                                        const v1::SubmitCodeRequest* request,
                                        v1::SubmitCodeResponse* response) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu);
    deadlines["SubmitCode"] = context->deadline();
    last_submit = *request;
    codes.push_back(request->code());
    hook = on_submit;
  }
  if (hook) hook();
  std::lock_guard lock(mu);
  if (!submit_status.ok()) return submit_status;
  *response = submit_response;
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::GetLogs(grpc::ServerContext* context,
                                     const v1::GetLogsRequest* request,
                                     v1::GetLogsResponse* response) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu);
    hook = on_logs;
  }
  if (hook) hook();
  std::lock_guard lock(mu);
  deadlines["GetLogs"] = context->deadline();
  last_logs = *request;
  if (!logs_status.ok()) return logs_status;
  *response = logs_response;
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::Exec(grpc::ServerContext* context, const v1::ExecRequest* request,
                                  v1::ExecResponse* response) {
  std::lock_guard lock(mu);
  deadlines["Exec"] = context->deadline();
  last_exec = *request;
  if (!exec_status.ok()) return exec_status;
  *response = exec_response;
  return grpc::Status::OK;
}

grpc::Status FakeBoxService::Health(grpc::ServerContext* context, const v1::HealthRequest*,
                                    v1::HealthResponse* response) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu);
    hook = on_health;
  }
  if (hook) hook();
  std::lock_guard lock(mu);
  deadlines["Health"] = context->deadline();
  if (!health_status.ok()) return health_status;
  if (health_response) {
    *response = *health_response;
    return grpc::Status::OK;
  }
  response->set_spoke_name("fake");
  response->mutable_capacity()->set_max_boxes(max_boxes);
  response->mutable_capacity()->set_pending(static_cast<uint32_t>(boxes.size()) + extra_boxes);
  response->mutable_engine()->set_reachable(engine_reachable);
  if (!engine_reachable) response->mutable_engine()->set_error("cannot connect to the socket");
  for (const auto& image : allowed_images) response->add_allowed_images(image);
  return grpc::Status::OK;
}

}  // namespace llmbox::testing
