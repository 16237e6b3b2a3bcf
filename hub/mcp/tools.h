// hub/mcp/tools.h
//
// What the MCP endpoint needs from whoever provides tools. The MCP layer knows nothing of
// boxes: hub/boxes implements ToolSet, and the endpoint validates arguments against each
// tool's input schema before Call runs.
//
//   class Greeter : public ToolSet {
//     std::vector<Tool> Tools() const override { return {{.name = "greet", ...}}; }
//     ToolResult Call(std::string_view, const nlohmann::json& args, CallContext& ctx) override {
//       ctx.Progress(1, 2, "thinking");
//       return ToolResult::Ok({{"greeting", "hi " + args["name"].get<std::string>()}});
//     }
//   };
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/status.h"
#include "hub/auth/principal.h"

namespace llmbox::hub::mcp {

struct Tool {
  std::string name;              // ^[A-Za-z0-9_.-]{1,64}$
  std::string title;             // for people
  std::string description;       // for the model: what it does and when to use it
  nlohmann::json input_schema;   // JSON Schema, type object (see schema.h for the subset)
  nlohmann::json output_schema;  // JSON Schema of structuredContent, type object
  bool read_only = false;
  bool destructive = false;
  bool idempotent = false;
  bool open_world = false;
};

struct ToolResult {
  bool is_error = false;
  nlohmann::json structured;  // an object on success; unused on error
  std::string text;           // the error message, or empty (then structured is serialized)
  // For large results: the structured object already serialized as compact JSON (see
  // json_writer.h); used instead of `structured` when not empty.
  std::string structured_json;
  // A Failed() result's status code (for audit and metrics); kOk otherwise.
  absl::StatusCode code = absl::StatusCode::kOk;

  static ToolResult Ok(nlohmann::json structured) { return {false, std::move(structured), ""}; }
  static ToolResult OkJson(std::string structured_json) {
    return {false, nullptr, "", std::move(structured_json)};
  }
  static ToolResult Error(std::string message) { return {true, nullptr, std::move(message)}; }
  // The one way a failed Status becomes a tool answer: an `isError` result whose text is the
  // status message alone. The code is not shown: our messages already name the thing and the
  // fix, and clients (and the model) read the text. HTTP answers map codes in
  // hub/http/status_answer.h instead. `status` must not be OK.
  static ToolResult Failed(const absl::Status& status) {
    LLMBOX_CHECK(!status.ok(), "a tool failed with an OK status");
    ToolResult failed = Error(std::string(common::AsStd(status.message())));
    failed.code = status.code();
    return failed;
  }
};

// What a running call can do. Valid only during ToolSet::Call; thread-safe.
class CallContext {
 public:
  virtual ~CallContext() = default;
  // Sends notifications/progress when the client asked for it (a progressToken) and the reply
  // is a stream; otherwise does nothing. Values that do not increase are dropped.
  virtual void Progress(double progress, std::optional<double> total, std::string_view message) = 0;
  // True once the client sent notifications/cancelled for this request. A dropped connection
  // is not a cancellation.
  virtual bool Cancelled() const = 0;
  // Runs `callback` (once, on the notifying thread) when the call is cancelled, or at once if
  // it already is. Cleared when Call returns.
  virtual void OnCancel(std::function<void()> callback) = 0;
  // Who is calling: the API key's principal, or the anonymous one when authentication is off.
  virtual const auth::Principal& principal() const = 0;
  // The caller's address (http::Request::client_address: behind trusted proxies, the one
  // they name); empty when unknown.
  virtual std::string_view client_address() const { return {}; }
};

class ToolSet {
 public:
  virtual ~ToolSet() = default;
  // The tools in a fixed order.
  virtual std::vector<Tool> Tools() const = 0;
  // Runs a tool with arguments that passed its input schema. May block for as long as the
  // work takes. Failures of the work are ToolResult::Error with a message the model can act on.
  virtual ToolResult Call(std::string_view name, const nlohmann::json& arguments,
                          CallContext& context) = 0;
};

}  // namespace llmbox::hub::mcp
