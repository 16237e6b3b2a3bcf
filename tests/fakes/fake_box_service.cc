#include "tests/fakes/fake_box_service.h"

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
