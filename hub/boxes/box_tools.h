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
// list_llmboxes pages: `limit` (1..kMaxListLimit, default kDefaultListLimit) boxes, and a
// `next_cursor` (ListCursors, sealed under `cursor_key`) while more follow; `cursor` takes it
// back. Filters: `status`, `spoke`, and `owner` for admins (another principal naming an owner
// not its own is PermissionDenied). list_spokes pages the same way, by spoke name, from the
// monitor's last round (registry.monitor().View()): it calls no spoke.
//
//   BoxTools tools(registry, common::HmacSha256(session_key, "llmbox list cursors"));
//   McpEndpoint mcp(options, tools, clock);
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hub/audit/audit_log.h"
#include "hub/boxes/list_cursor.h"
#include "hub/boxes/registry.h"
#include "hub/mcp/tools.h"

namespace llmbox::hub::boxes {

class BoxTools final : public mcp::ToolSet {
 public:
  static constexpr std::size_t kDefaultListLimit = 100;
  static constexpr std::size_t kMaxListLimit = 500;

  // `registry` must outlive the tools. `cursor_key`: the key list cursors are sealed under (at
  // least 32 bytes); empty: a random key of the tools' own, so cursors last as long as they.
  // `audit`: where the tools that act on a box (create, destroy, exec, logs, network) are
  // recorded; null: nowhere. Must outlive the tools.
  explicit BoxTools(BoxRegistry& registry, std::string cursor_key = "",
                    audit::AuditLog* audit = nullptr);

  std::vector<mcp::Tool> Tools() const override;
  mcp::ToolResult Call(std::string_view name, const nlohmann::json& arguments,
                       mcp::CallContext& context) override;

 private:
  // Call() but for the audit record.
  mcp::ToolResult Run(std::string_view name, const nlohmann::json& arguments,
                      mcp::CallContext& context);
  // list_llmboxes.
  mcp::ToolResult List(const nlohmann::json& arguments, const auth::Principal& caller);
  // list_spokes: pages of the monitor's view (spoke_listing.h), by name.
  mcp::ToolResult ListSpokes(const nlohmann::json& arguments, const auth::Principal& caller);

  BoxRegistry& registry_;
  ListCursors cursors_;
  audit::AuditLog* const audit_;
};

}  // namespace llmbox::hub::boxes
