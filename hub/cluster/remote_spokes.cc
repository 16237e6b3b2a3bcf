// hub/cluster/remote_spokes.cc
#include "hub/cluster/remote_spokes.h"

#include <set>

#include "spdlog/spdlog.h"
#include <grpcpp/grpcpp.h>

#include "common/absl_compat.h"
#include "common/status.h"
#include "hub/cluster/grpc_spoke_client.h"

namespace llmbox::hub::cluster {

RemoteSpokes::RemoteSpokes(store::Store& store, boxes::SpokeDirectory& directory,
                           common::TlsPems hub)
    : store_(store), directory_(directory), hub_(std::move(hub)) {}

void RemoteSpokes::SetHubCredentials(common::TlsPems hub) {
  std::lock_guard lock(mu_);
  hub_ = std::move(hub);
  // Forgetting the address makes the next Sync dial again; the pins (issued) stay.
  for (auto& [name, dialed] : dialed_) dialed.advertise_address.clear();
}

int RemoteSpokes::PushHubKeys(const std::vector<std::string>& key_sha256,
                              std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, dialed] : dialed_) {
      if (dialed.channel != nullptr) targets.emplace_back(name, dialed.channel);
    }
  }
  int failed = 0;
  for (const auto& [name, channel] : targets) {
    const absl::Status status = SetSpokeHubKeys(channel, key_sha256, timeout);
    if (!status.ok()) {
      ++failed;
      spdlog::warn("cluster: spoke {} did not take the hub's keys ({}): {}", name,
                   key_sha256.size(), common::AsStd(status.message()));
    }
  }
  return failed;
}

absl::Status RemoteSpokes::Sync() {
  LLMBOX_ASSIGN_OR_RETURN(std::vector<store::SpokeRecord> spokes, store_.ListSpokes());
  std::lock_guard lock(mu_);
  std::set<std::string> present;
  for (const auto& spoke : spokes) {
    present.insert(spoke.name);
    Dialed& dialed = dialed_[spoke.name];
    if (dialed.advertise_address == spoke.advertise_address &&
        dialed.joined_at_ms == spoke.joined_at_ms && !dialed.issued.empty() &&
        dialed.issued.back() == spoke.cert_sha256) {
      continue;
    }
    // Pinned to the certificates issued for this enrollment that this hub has seen (the
    // latest after a restart): a renewed spoke serves the one it replaced until it rereads
    // its files. A removed spoke's record is gone, and a new enrollment of the name starts
    // over, so no certificate of an earlier enrollment is accepted again.
    if (dialed.joined_at_ms != spoke.joined_at_ms) dialed.issued.clear();
    std::erase(dialed.issued, spoke.cert_sha256);
    dialed.issued.push_back(spoke.cert_sha256);
    if (dialed.issued.size() > kMaxIssuedKept) dialed.issued.erase(dialed.issued.begin());
    dialed.advertise_address = spoke.advertise_address;
    dialed.joined_at_ms = spoke.joined_at_ms;
    std::vector<std::string> accepted = dialed.issued;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(8 << 20);
    // Long-lived channels: notice a dead connection within a minute or so.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
    // A spoke back from a partition is dialed again within seconds: gRPC's own backoff grows
    // to two minutes, and calls fail at once meanwhile, so the spoke would look down that long.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5'000);
    auto channel =
        grpc::CreateCustomChannel(spoke.advertise_address,
                                  common::PinnedMutualTlsChannelCredentials(
                                      hub_, common::SpokeIdentity(spoke.name), std::move(accepted)),
                                  args);
    dialed.channel = channel;
    directory_.Add(spoke.name, MakeGrpcSpokeClient(std::move(channel)), /*local=*/false);
    // Nothing is dialed yet (channels connect on their first call): the monitor logs whether
    // the spoke answers its first health check.
    spdlog::info("cluster: spoke {} at {} added; its first health check says whether it answers",
                 spoke.name, spoke.advertise_address);
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
