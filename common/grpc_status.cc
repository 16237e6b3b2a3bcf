#include "common/grpc_status.h"

#include <string>

#include "common/absl_compat.h"
#include "common/utf8.h"

namespace llmbox::common {
namespace {

// Messages may quote what a box printed. gRPC carries them in a header, percent-encoded (up to
// three times as long), where HTTP/2 peers refuse headers past a few KiB and would lose the
// whole status; and the other side puts them into JSON and logs.
constexpr std::size_t kMaxMessageBytes = 2048;

std::string Message(std::string_view text) { return Utf8Prefix(text, kMaxMessageBytes); }

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      Message(AsStd(status.message())));
}

[[nodiscard]] absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      AsAbsl(Message(status.error_message())));
}

}  // namespace llmbox::common
