#include "hub/oauth/errors.h"

#include "absl/strings/cord.h"
#include "nlohmann/json.hpp"

#include "common/absl_compat.h"

namespace llmbox::hub::oauth {
namespace {

constexpr std::string_view kPayloadUrl = "llmbox.oauth/error";

absl::StatusCode CodeFor(std::string_view error) {
  if (error == kInvalidClient) return absl::StatusCode::kUnauthenticated;
  if (error == kTemporarilyUnavailable) return absl::StatusCode::kUnavailable;
  if (error == kServerError) return absl::StatusCode::kInternal;
  return absl::StatusCode::kInvalidArgument;
}

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return 503;
    default:
      return 500;
  }
}

}  // namespace

absl::Status OAuthError(std::string_view error, std::string_view description) {
  absl::Status status(CodeFor(error), common::AsAbsl(description));
  status.SetPayload(common::AsAbsl(kPayloadUrl), absl::Cord(common::AsAbsl(error)));
  return status;
}

std::string OAuthErrorCode(const absl::Status& status) {
  if (auto error = status.GetPayload(common::AsAbsl(kPayloadUrl))) {
    return std::string(*error);
  }
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return std::string(kTemporarilyUnavailable);
    default:
      return std::string(kServerError);
  }
}

http::Response OAuthErrorResponse(const absl::Status& status) {
  const std::string error = OAuthErrorCode(status);
  nlohmann::json body = {{"error", error}};
  if (!status.message().empty()) {
    body["error_description"] = std::string(status.message().data(), status.message().size());
  }
  http::Response response{
      .status = HttpStatusFor(status),
      .headers = {{"Content-Type", "application/json"},
                  {"Cache-Control", "no-store"},
                  {"Pragma", "no-cache"}},
      .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  if (error == kInvalidClient) {
    response.headers.emplace_back("WWW-Authenticate", "Basic realm=\"llmbox\"");
  }
  return response;
}

}  // namespace llmbox::hub::oauth
