#include "spoke/service/server.h"

#include "absl/strings/str_cat.h"

namespace llmbox::spoke::service {

absl::StatusOr<RunningServer> StartServer(const ServerOptions& options,
                                          std::shared_ptr<grpc::ServerCredentials> credentials,
                                          grpc::Service* service) {
  RunningServer running;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, std::move(credentials), &running.port);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  running.server = builder.BuildAndStart();
  if (running.server == nullptr || running.port == 0) {
    return absl::UnavailableError(
        absl::StrCat("spoke: cannot listen on ", options.address, " (in use, or not an address)"));
  }
  return running;
}

}  // namespace llmbox::spoke::service
