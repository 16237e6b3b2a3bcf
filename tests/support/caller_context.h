#pragma once

// A CallContext that only carries a principal: for unit tests that call a ToolSet directly
// (no progress, never cancelled).
//
//   CallerContext alice(auth::Principal::ApiKey("alice", false));
//   tools.Call("list_llmboxes", nlohmann::json::object(), alice);

#include <functional>
#include <optional>
#include <string_view>
#include <utility>

#include "hub/auth/principal.h"
#include "hub/mcp/tools.h"

namespace llmbox::testing {

class CallerContext final : public hub::mcp::CallContext {
 public:
  explicit CallerContext(hub::auth::Principal principal) : principal_(std::move(principal)) {}
  void Progress(double, std::optional<double>, std::string_view) override {}
  bool Cancelled() const override { return false; }
  void OnCancel(std::function<void()>) override {}
  const hub::auth::Principal& principal() const override { return principal_; }

 private:
  hub::auth::Principal principal_;
};

}  // namespace llmbox::testing
