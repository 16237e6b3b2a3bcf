#include "common/status.h"

#include <string>

#include <catch2/catch.hpp>

#include "common/grpc_status.h"

namespace llmbox::common {
namespace {

[[nodiscard]] absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("odd: " + std::to_string(n));
  return n / 2;
}

[[nodiscard]] absl::StatusOr<int> Quarter(int n) {
  LLMBOX_ASSIGN_OR_RETURN(int half, Half(n));
  LLMBOX_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

[[nodiscard]] absl::Status CheckEven(int n) {
  LLMBOX_RETURN_IF_ERROR(Half(n).status());
  return absl::OkStatus();
}

TEST_CASE("ASSIGN_OR_RETURN passes values through and returns the first error") {
  REQUIRE(Quarter(8).value() == 2);
  absl::StatusOr<int> odd = Quarter(6);
  REQUIRE(odd.status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(odd.status().message() == "odd: 3");
}

TEST_CASE("RETURN_IF_ERROR returns the error and continues on OK") {
  REQUIRE(CheckEven(4).ok());
  REQUIRE(CheckEven(5).message() == "odd: 5");
}

TEST_CASE("every status code and message survives a round trip through grpc::Status") {
  for (int code = 0; code <= 16; ++code) {
    absl::Status original(static_cast<absl::StatusCode>(code),
                          code == 0 ? "" : "why " + std::to_string(code));
    grpc::Status wire = ToGrpcStatus(original);
    REQUIRE(static_cast<int>(wire.error_code()) == code);
    absl::Status back = FromGrpcStatus(wire);
    REQUIRE(back == original);
  }
  REQUIRE(ToGrpcStatus(absl::NotFoundError("no box \"x\"")).error_message() == "no box \"x\"");
}

}  // namespace
}  // namespace llmbox::common
