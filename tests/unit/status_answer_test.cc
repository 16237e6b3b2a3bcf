#include "hub/http/status_answer.h"

#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "hub/mcp/tools.h"

namespace llmbox::testing {
namespace {

using absl::StatusCode;

TEST_CASE("every status code answers with google.rpc's HTTP status", "[status_answer]") {
  const std::vector<std::pair<StatusCode, int>> expected = {
      {StatusCode::kOk, 200},
      {StatusCode::kCancelled, 499},
      {StatusCode::kUnknown, 500},
      {StatusCode::kInvalidArgument, 400},
      {StatusCode::kDeadlineExceeded, 504},
      {StatusCode::kNotFound, 404},
      {StatusCode::kAlreadyExists, 409},
      {StatusCode::kPermissionDenied, 403},
      {StatusCode::kResourceExhausted, 429},
      {StatusCode::kFailedPrecondition, 400},
      {StatusCode::kAborted, 409},
      {StatusCode::kOutOfRange, 400},
      {StatusCode::kUnimplemented, 501},
      {StatusCode::kInternal, 500},
      {StatusCode::kUnavailable, 503},
      {StatusCode::kDataLoss, 500},
      {StatusCode::kUnauthenticated, 401},
  };
  // Every canonical code (0..16) is listed above.
  REQUIRE(expected.size() == 17);
  for (const auto& [code, status] : expected) {
    INFO(absl::StatusCodeToString(code));
    CHECK(hub::http::HttpStatusOf(code) == status);
    CHECK(hub::http::IsServerError(code) == (status >= 500));
  }
}

TEST_CASE("a status code absl does not define answers 500", "[status_answer]") {
  CHECK(hub::http::HttpStatusOf(static_cast<StatusCode>(42)) == 500);
  CHECK(hub::http::IsServerError(static_cast<StatusCode>(42)));
}

TEST_CASE("a failed status becomes an isError tool result carrying only its message",
          "[status_answer]") {
  for (int raw = 1; raw <= 16; ++raw) {
    const auto code = static_cast<StatusCode>(raw);
    INFO(absl::StatusCodeToString(code));
    const auto result =
        hub::mcp::ToolResult::Failed(absl::Status(code, "no box \"absent\" (list_llmboxes)"));
    CHECK(result.is_error);
    CHECK(result.text == "no box \"absent\" (list_llmboxes)");
    CHECK(result.structured.is_null());
  }
}

}  // namespace
}  // namespace llmbox::testing
