// spoke/service/box_service.h
//
// The spoke's llmbox.v1.BoxService: every call is authorized (only the hub's identity, by the
// URI SAN of its client certificate), validated again here, bounded, and handed to the
// BoxManager. It is never a generic Docker proxy: it only touches managed boxes.
//
//   BoxServiceImpl service(boxes, engine, {.spoke_name = "spoke-1"});
//   builder.RegisterService(&service);
//
// Thread-safe (gRPC calls handlers concurrently).
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmbox/v1/box.grpc.pb.h"
#include "spoke/box/manager.h"
#include "spoke/docker/engine.h"
#include "spoke/reaper/removal_journal.h"
#include "spoke/service/change_feed.h"

namespace llmbox::spoke::service {

struct BoxServiceOptions {
  std::string spoke_name = "local";
  // The identity allowed to call; empty only for the hub's in-process spoke, where the
  // channel never leaves the process.
  std::string allowed_peer = "spiffe://llmbox/hub";
  // When set, also checks the allowed peer's certificate (PEM): a joined spoke refuses a hub
  // key it did not pin (spoke/enroll/hub_pins.h). Its error is the call's answer.
  std::function<absl::Status(std::string_view peer_cert_pem)> check_peer_certificate;
  // When set, SetHubKeys replaces the pinned hub keys with this (HubPins::Replace, which
  // validates the list); unset, SetHubKeys is FAILED_PRECONDITION.
  std::function<absl::Status(const std::vector<std::string>& key_sha256)> set_hub_keys;
  box::BoxManagerOptions boxes;           // for capacity and limits in Health
  std::chrono::milliseconds auth_ttl{0};  // the reaper's; reported as a pending box's expires_at
  std::chrono::seconds max_grace{60};
  std::chrono::milliseconds max_exec_timeout{300'000};
  std::chrono::milliseconds max_submit_timeout{120'000};
  // The reaper's removals, for ListRemovals; not owned, must outlive the service. Null:
  // ListRemovals is FAILED_PRECONDITION.
  reaper::RemovalJournal* removals = nullptr;
};

class BoxServiceImpl final : public llmbox::v1::BoxService::Service {
 public:
  BoxServiceImpl(box::BoxManager& boxes, docker::DockerEngine& engine, BoxServiceOptions options);

  grpc::Status CreateBox(grpc::ServerContext* context, const v1::CreateBoxRequest* request,
                         v1::CreateBoxResponse* response) override;
  grpc::Status GetBox(grpc::ServerContext* context, const v1::GetBoxRequest* request,
                      v1::Box* response) override;
  grpc::Status ListBoxes(grpc::ServerContext* context, const v1::ListBoxesRequest* request,
                         v1::ListBoxesResponse* response) override;
  grpc::Status DestroyBox(grpc::ServerContext* context, const v1::DestroyBoxRequest* request,
                          v1::DestroyBoxResponse* response) override;
  grpc::Status SubmitCode(grpc::ServerContext* context, const v1::SubmitCodeRequest* request,
                          v1::SubmitCodeResponse* response) override;
  grpc::Status GetLogs(grpc::ServerContext* context, const v1::GetLogsRequest* request,
                       v1::GetLogsResponse* response) override;
  grpc::Status Exec(grpc::ServerContext* context, const v1::ExecRequest* request,
                    v1::ExecResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context, const v1::HealthRequest* request,
                      v1::HealthResponse* response) override;
  grpc::Status SetHubKeys(grpc::ServerContext* context, const v1::SetHubKeysRequest* request,
                          v1::SetHubKeysResponse* response) override;
  // Entries are parsed here (InvalidArgument naming a bad one) before BoxManager::SetNetwork.
  grpc::Status SetBoxNetwork(grpc::ServerContext* context, const v1::SetBoxNetworkRequest* request,
                             v1::Box* response) override;
  // The removal journal's entries after the hub's (BoxServiceOptions::removals).
  grpc::Status ListRemovals(grpc::ServerContext* context, const v1::ListRemovalsRequest* request,
                            v1::ListRemovalsResponse* response) override;

 private:
  grpc::Status Authorize(grpc::ServerContext* context) const;

  // Logs when the answer to "can this spoke create boxes?" changes (what to do, or that it
  // can again).
  void NoteCanCreate(const std::string& problem);

  // The box's answer's feed position (the feed observes the box as answered).
  void Stamp(const box::BoxView& view, v1::Box* out);

  // Changes a Health answer lists at most (more: changes_all).
  static constexpr std::size_t kMaxChangesAnswered = 4096;

  box::BoxManager& boxes_;
  docker::DockerEngine& engine_;
  const BoxServiceOptions options_;
  ChangeFeed feed_{ChangeFeed::RandomEpoch()};
  std::mutex can_create_mu_;
  std::optional<std::string> last_problem_;  // guarded by can_create_mu_; nullopt: not asked yet
};

}  // namespace llmbox::spoke::service
