#include "common/grpc_server.h"

#include "absl/strings/str_cat.h"

namespace llmbox::common {

[[nodiscard]] absl::StatusOr<RunningGrpcServer> StartGrpcServer(
    const GrpcServerOptions& options, std::shared_ptr<grpc::ServerCredentials> credentials,
    grpc::Service* service) {
  RunningGrpcServer running;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, std::move(credentials), &running.port);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  running.server = builder.BuildAndStart();
  if (running.server == nullptr || running.port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address, " (in use, or not an address)"));
  }
  return running;
}

}  // namespace llmbox::common
