// hub/boxes/box_tools.h
//
// The llmbox MCP tools (create_llmbox, get_llmbox, list_llmboxes, destroy_llmbox,
// get_llmbox_logs, exec_llmbox, list_spokes) over a BoxRegistry. Field names follow llmbox
// v0.0.36 where it had them. No output ever carries the authorize URL, an activation code or a
// credential: only box ids, the hub's activation URL and what the box printed (redacted by the
// spoke).
//
//   BoxTools tools(registry);
//   McpEndpoint mcp(options, tools, clock);
//
// Thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "hub/boxes/registry.h"
#include "hub/mcp/tools.h"

namespace llmbox::hub::boxes {

class BoxTools final : public mcp::ToolSet {
 public:
  explicit BoxTools(BoxRegistry& registry) : registry_(registry) {}

  std::vector<mcp::Tool> Tools() const override;
  mcp::ToolResult Call(std::string_view name, const nlohmann::json& arguments,
                       mcp::CallContext& context) override;

 private:
  BoxRegistry& registry_;
};

}  // namespace llmbox::hub::boxes
