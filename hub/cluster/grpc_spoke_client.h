// hub/cluster/grpc_spoke_client.h
//
// The SpokeClient that speaks llmbox.v1.BoxService over a gRPC channel: the hub's in-process
// spoke (an in-process channel) and every joined spoke (a mutual-TLS channel, see
// remote_spokes.h) are reached through it. Generated gRPC stays in its .cc.
//
//   auto channel = grpc::CreateCustomChannel(address, credentials, args);
//   directory.Add("worker-1", MakeGrpcSpokeClient(channel), /*local=*/false);
//
// Each call runs under a deadline of now (the system clock, which gRPC uses) plus the
// timeout it is given. Errors: the RPC's status through common::FromGrpcStatus, code and
// message unchanged. Thread-safe (as the channel is).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"

#include "hub/cluster/spoke_client.h"

namespace grpc {
class ChannelInterface;
}  // namespace grpc

namespace llmbox::hub::cluster {

// A client for the spoke at the other end of `channel` (never null), which it shares.
[[nodiscard]] std::shared_ptr<SpokeClient> MakeGrpcSpokeClient(
    std::shared_ptr<grpc::ChannelInterface> channel);

// Tells the spoke at the other end of `channel` which hub keys to accept
// (BoxService.SetHubKeys; docs/decisions/006-hub-identity.md). Not part of SpokeClient: only
// the cluster's key rotation calls it, on the channels it dialed itself.
[[nodiscard]] absl::Status SetSpokeHubKeys(const std::shared_ptr<grpc::ChannelInterface>& channel,
                                           const std::vector<std::string>& key_sha256,
                                           std::chrono::milliseconds timeout);

}  // namespace llmbox::hub::cluster
