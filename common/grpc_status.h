// common/grpc_status.h
//
// The one conversion between absl::Status and grpc::Status. Codes map one to one (both use
// the canonical google.rpc codes). The message travels as valid UTF-8 (a broken byte becomes
// U+FFFD, common/utf8.h) of at most 2 KiB (cut at a character): messages may quote a box's
// output, and gRPC carries them in a header of bounded size.
//
//   grpc::Status Get(...) override { return ToGrpcStatus(manager_.Get(id).status()); }
//   absl::Status s = FromGrpcStatus(stub->Get(&ctx, req, &resp));
#pragma once

#include "absl/status/status.h"
#include <grpcpp/support/status.h>

namespace llmbox::common {

// Converts an absl::Status to the grpc::Status a handler returns.
[[nodiscard]] grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts the result of an RPC to an absl::Status with the same code and message (made valid
// and bounded the same way, whatever the peer sent).
[[nodiscard]] absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace llmbox::common
