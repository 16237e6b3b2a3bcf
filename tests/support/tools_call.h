#pragma once

// One MCP tools/call as a JSON-only client sends it to a hub endpoint made with
// allowed_hosts {"127.0.0.1:8080"}, for unit tests that drive the real McpEndpoint.
//
//   auto out = std::make_shared<RecordingResponder>();
//   endpoint.Handle(ToolsCallRequest("get_llmbox", {{"box_id", "b1"}}), out);

#include <string>

#include <nlohmann/json.hpp>

#include "hub/http/server.h"

namespace llmbox::testing {

inline hub::http::Request ToolsCallRequest(const std::string& tool,
                                           const nlohmann::json& arguments) {
  hub::http::Request request{.method = "POST", .target = "/", .path = "/"};
  request.headers = {{"host", "127.0.0.1:8080"},
                     {"content-type", "application/json"},
                     {"accept", "application/json"}};
  request.body = nlohmann::json{{"jsonrpc", "2.0"},
                                {"id", 1},
                                {"method", "tools/call"},
                                {"params", {{"name", tool}, {"arguments", arguments}}}}
                     .dump();
  return request;
}

}  // namespace llmbox::testing
