// hub/boxes/box_tools.h
//
// The llmbox MCP tools (create_llmbox, get_llmbox, list_llmboxes, destroy_llmbox,
// get_llmbox_logs, exec_llmbox, set_llmbox_network, list_spokes) over a BoxRegistry. Field
// names follow llmbox v0.0.36 where it had them. No output ever carries the authorize URL, an
// activation code or a credential: only box ids, the hub's activation URL, what the box
// printed (redacted by the spoke) and the connections it was refused.
//
// A box's network: create_llmbox's `network` (a mode, or {"mode", "allow"}) and
// set_llmbox_network's lists are checked for shape here (InvalidArgument naming the argument:
// at most 64 entries of 1..253 bytes); what an entry may name is the spoke's policy, whose
// refusal (PermissionDenied saying what it allows) reaches the caller in its own words.
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
