// hub/cluster/remote_spokes.cc
#include "hub/cluster/remote_spokes.h"

#include <algorithm>
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
    // Pinned to the certificates issued for this enrollment that this hub has seen (the
    // latest after a restart): a renewed spoke serves the one it replaced until it rereads
    // its files. A removed spoke's record is gone, and a new enrollment of the name starts
    // over, so no certificate of an earlier enrollment is accepted again.
    std::vector<std::string>& seen = issued_[spoke.name];
    auto joined = joined_at_.find(spoke.name);
    if (joined == joined_at_.end() || joined->second != spoke.joined_at_ms) seen.clear();
    if (std::find(seen.begin(), seen.end(), spoke.cert_sha256) == seen.end()) {
      seen.push_back(spoke.cert_sha256);
    }
    if (seen.size() > kMaxIssuedKept) seen.erase(seen.begin());
    std::vector<std::string> accepted = seen;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(8 << 20);
    // Long-lived channels: notice a dead connection within a minute or so.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
    auto channel =
        grpc::CreateCustomChannel(spoke.advertise_address,
                                  common::PinnedMutualTlsChannelCredentials(
                                      hub_, common::SpokeIdentity(spoke.name), std::move(accepted)),
                                  args);
    directory_.Add(spoke.name, v1::BoxService::NewStub(channel), /*local=*/false);
    dialed_[spoke.name] = key;
    joined_at_[spoke.name] = spoke.joined_at_ms;
    spdlog::info("cluster: spoke {} at {}", spoke.name, spoke.advertise_address);
  }
  for (auto it = dialed_.begin(); it != dialed_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    directory_.Remove(it->first);
    spdlog::info("cluster: spoke {} was removed; no longer dialed", it->first);
    joined_at_.erase(it->first);
    issued_.erase(it->first);
    it = dialed_.erase(it);
  }
  return absl::OkStatus();
}

}  // namespace llmbox::hub::cluster
