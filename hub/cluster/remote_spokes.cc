// hub/cluster/remote_spokes.cc
#include "hub/cluster/remote_spokes.h"

#include <set>

#include "spdlog/spdlog.h"
#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace llmbox::hub::cluster {

RemoteSpokes::RemoteSpokes(store::Store& store, boxes::SpokeDirectory& directory,
                           common::TlsPems hub)
    : store_(store), directory_(directory), hub_(std::move(hub)) {}

absl::Status RemoteSpokes::Sync() {
  LLMBOX_ASSIGN_OR_RETURN(std::vector<store::SpokeRecord> spokes, store_.ListSpokes());
  std::lock_guard lock(mu_);
  std::set<std::string> present;
  for (const auto& spoke : spokes) {
    present.insert(spoke.name);
    const std::string key = spoke.advertise_address + " " + spoke.cert_sha256;
    auto it = dialed_.find(spoke.name);
    if (it != dialed_.end() && it->second == key) continue;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(8 << 20);
    // Long-lived channels: notice a dead connection within a minute or so.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
    auto channel = grpc::CreateCustomChannel(
        spoke.advertise_address,
        common::PinnedMutualTlsChannelCredentials(hub_, common::SpokeIdentity(spoke.name)), args);
    directory_.Add(spoke.name, v1::BoxService::NewStub(channel), /*local=*/false);
    dialed_[spoke.name] = key;
    spdlog::info("cluster: spoke {} at {}", spoke.name, spoke.advertise_address);
  }
  for (auto it = dialed_.begin(); it != dialed_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    directory_.Remove(it->first);
    spdlog::info("cluster: spoke {} was removed; no longer dialed", it->first);
    it = dialed_.erase(it);
  }
  return absl::OkStatus();
}

}  // namespace llmbox::hub::cluster
