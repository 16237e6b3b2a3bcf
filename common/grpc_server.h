// common/grpc_server.h
//
// A gRPC server on one port with the given credentials (the spoke's box service, the hub's
// enrollment service), bounded messages. There is no insecure port.
//
//   LLMBOX_ASSIGN_OR_RETURN(auto server, StartGrpcServer({.address = "0.0.0.0:7443"}, creds, svc));
//   server.server->Wait();
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include <grpcpp/grpcpp.h>

namespace llmbox::common {

struct GrpcServerOptions {
  std::string address = "0.0.0.0:7443";  // host:port; port 0 picks a free one
  int max_message_bytes = 4 << 20;
};

struct RunningGrpcServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the port actually bound
};

// Starts serving `service` with `credentials`. Unavailable naming the address when it cannot
// listen.
[[nodiscard]] absl::StatusOr<RunningGrpcServer> StartGrpcServer(
    const GrpcServerOptions& options, std::shared_ptr<grpc::ServerCredentials> credentials,
    grpc::Service* service);

}  // namespace llmbox::common
