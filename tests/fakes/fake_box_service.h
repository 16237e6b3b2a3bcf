#pragma once

// An in-memory llmbox.v1.BoxService for the hub's unit tests: served on a real in-process
// gRPC server, so the hub's client (hub/cluster/grpc_spoke_client.h), deadlines and status
// codes are the real ones. Tests set what the "spoke" answers and read what it was asked.
//
//   FakeBoxService spoke;
//   spokes.Add("local", hub::cluster::MakeGrpcSpokeClient(spoke.Channel()), true);
//   spoke.create_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "engine down");
//   registry.Create(...);            // -> Unavailable, and spoke.destroyed lists the id

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "llmbox/v1/box.grpc.pb.h"

namespace llmbox::testing {

class FakeBoxService final : public v1::BoxService::Service {
 public:
  FakeBoxService();
  ~FakeBoxService() override;

  // An in-process channel to this service (what a hub's LocalSpoke hands over).
  std::shared_ptr<grpc::Channel> Channel();

  grpc::Status CreateBox(grpc::ServerContext*, const v1::CreateBoxRequest* request,
                         v1::CreateBoxResponse* response) override;
  grpc::Status GetBox(grpc::ServerContext*, const v1::GetBoxRequest* request,
                      v1::Box* response) override;
  grpc::Status ListBoxes(grpc::ServerContext*, const v1::ListBoxesRequest*,
                         v1::ListBoxesResponse* response) override;
  grpc::Status SetBoxNetwork(grpc::ServerContext*, const v1::SetBoxNetworkRequest* request,
                             v1::Box* response) override;
  grpc::Status DestroyBox(grpc::ServerContext*, const v1::DestroyBoxRequest* request,
                          v1::DestroyBoxResponse* response) override;
  grpc::Status SubmitCode(grpc::ServerContext*, const v1::SubmitCodeRequest* request,
                          v1::SubmitCodeResponse* response) override;
  grpc::Status GetLogs(grpc::ServerContext*, const v1::GetLogsRequest* request,
                       v1::GetLogsResponse* response) override;
  grpc::Status Exec(grpc::ServerContext*, const v1::ExecRequest* request,
                    v1::ExecResponse* response) override;
  grpc::Status Health(grpc::ServerContext*, const v1::HealthRequest*,
                      v1::HealthResponse* response) override;

  std::mutex mu;
  // What the fake answers (guarded by mu).
  grpc::Status create_status = grpc::Status::OK;
  grpc::Status destroy_status = grpc::Status::OK;
  std::string authorize_url = "https://claude.ai/oauth/authorize?fake=1";
  v1::SubmitCodeResponse submit_response;
  grpc::Status submit_status = grpc::Status::OK;  // after the code is recorded
  grpc::Status list_status = grpc::Status::OK;
  // GetBox answers the box in `boxes` (NOT_FOUND when none); SetBoxNetwork answers
  // set_network_status when it is an error, else applies the change to the box there.
  grpc::Status get_status = grpc::Status::OK;
  grpc::Status set_network_status = grpc::Status::OK;
  v1::GetLogsResponse logs_response;
  grpc::Status logs_status = grpc::Status::OK;
  v1::ExecResponse exec_response;
  grpc::Status exec_status = grpc::Status::OK;
  // Runs (without mu held) after a code is recorded and before the answer: a test can hold a
  // submission in flight with it.
  std::function<void()> on_submit;
  // What Health reports: capacity (boxes counts the fake's own boxes plus `extra_boxes`), the
  // engine, the images it accepts; a non-OK health_status is the spoke being unreachable.
  grpc::Status health_status = grpc::Status::OK;
  std::uint32_t max_boxes = 20;
  std::uint32_t extra_boxes = 0;
  bool engine_reachable = true;
  std::vector<std::string> allowed_images = {"llmbox-box:dev"};
  // When set, Health answers exactly this instead.
  std::optional<v1::HealthResponse> health_response;
  // Runs (without mu held) before Health answers: a test can hold the spoke silent with it.
  std::function<void()> on_health;
  // Runs (without mu held) before GetLogs answers: a test can hold a tool call in flight.
  std::function<void()> on_logs;
  // State and what it was asked.
  std::map<std::string, v1::Box> boxes;  // by box id
  std::vector<std::string> created;
  std::vector<std::string> destroyed;
  std::vector<std::string> codes;
  // The last request of each kind, and each method's last deadline (by method name,
  // "CreateBox", "Exec", ...).
  v1::CreateBoxRequest last_create;
  v1::GetLogsRequest last_logs;
  v1::ExecRequest last_exec;
  v1::SubmitCodeRequest last_submit;
  v1::SetBoxNetworkRequest last_set_network;
  std::map<std::string, std::chrono::system_clock::time_point> deadlines;

 private:
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace llmbox::testing
