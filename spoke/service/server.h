// spoke/service/server.h
//
// The spoke's gRPC server: mutual TLS only (there is no insecure port), bounded messages.
//
//   LLMBOX_ASSIGN_OR_RETURN(auto server, StartServer({.address = "0.0.0.0:7443"}, creds, svc));
//   server.server->Wait();
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include <grpcpp/grpcpp.h>

namespace llmbox::spoke::service {

struct ServerOptions {
  std::string address = "0.0.0.0:7443";  // host:port; port 0 picks a free one
  int max_message_bytes = 4 << 20;
};

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the port actually bound
};

// Starts serving `service` with `credentials`. Unavailable naming the address when it cannot
// listen.
absl::StatusOr<RunningServer> StartServer(const ServerOptions& options,
                                          std::shared_ptr<grpc::ServerCredentials> credentials,
                                          grpc::Service* service);

}  // namespace llmbox::spoke::service
