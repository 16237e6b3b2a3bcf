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

#include <memory>

#include "hub/cluster/spoke_client.h"

namespace grpc {
class ChannelInterface;
}  // namespace grpc

namespace llmbox::hub::cluster {

// A client for the spoke at the other end of `channel` (never null), which it shares.
[[nodiscard]] std::shared_ptr<SpokeClient> MakeGrpcSpokeClient(
    std::shared_ptr<grpc::ChannelInterface> channel);

}  // namespace llmbox::hub::cluster
