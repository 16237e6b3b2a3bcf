// hub/boxes/box_tools.cc
#include "hub/boxes/box_tools.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/utf8.h"
#include "hub/boxes/spoke_listing.h"
#include "hub/mcp/json_writer.h"

namespace llmbox::hub::boxes {
namespace {

using nlohmann::json;
using store::BoxRecord;

// What one request may carry in each entry list, as the spoke (spoke/service/network_proto.h).
constexpr std::size_t kMaxNetworkEntries = 64;
constexpr std::size_t kMaxEntryBytes = 253;
// Refusals get_llmbox shows: the newest.
constexpr std::size_t kShownRefusals = 10;

// What a chatbot should do with a refusal; in the descriptions of the tools that show them.
constexpr char kRefusalHelp[] =
    "network.refusals lists the latest connections the box was refused. When one is there, "
    "tell the user what the box tried to reach and ask before you allow it, for example: "
    "\"The box tried to reach pypi.org:443 and was refused (not in the allowlist). Allow it?\" "
    "If they agree, call set_llmbox_network with add: [\"pypi.org\"] (or the name with its "
    "port); never allow a destination they did not agree to.";

constexpr char kActivationHelp[] =
    "Give the auth_url to the user: they open it in a browser, sign in with their own Claude "
    "account and paste the code Claude shows into that page. The box becomes ready once they "
    "finish; get_llmbox then shows its session_url. Never ask the user for the code yourself.";

std::string Rfc3339(std::int64_t ms) { return ms <= 0 ? "" : common::FormatUtcSeconds(ms); }

json BoxIdSchema() {
  return {{"type", "string"},
          {"minLength", 1},
          {"maxLength", 63},
          {"description",
           "The box's id: one DNS label of lowercase letters, digits and hyphens, for example "
           "refactor-auth-service. Unique on this hub."}};
}

json ObjectSchema(json properties, json required) {
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

// A list tool's paging arguments; `what` is plural ("Boxes").
json LimitSchema(const std::string& what) {
  return {{"type", "integer"},
          {"minimum", 1},
          {"maximum", BoxTools::kMaxListLimit},
          {"description",
           what + " per page (default " + std::to_string(BoxTools::kDefaultListLimit) + ")."}};
}

json CursorSchema() {
  return {{"type", "string"},
          {"maxLength", ListCursors::kMaxCursorChars},
          {"description", "The previous page's next_cursor."}};
}

const json& StringSchema() {
  static const json schema = {{"type", "string"}};
  return schema;
}

std::string Rfc3339(std::chrono::sys_time<std::chrono::milliseconds> time) {
  return Rfc3339(static_cast<std::int64_t>(time.time_since_epoch().count()));
}

// A box's network as the tools show it. Every string came through the spoke client, valid
// UTF-8 and bounded; a refusal's destination and rule are the box's words.
json NetworkJson(const cluster::BoxNetwork& network) {
  json out = {{"mode", network.mode == cluster::NetworkMode::kDefault
                           ? std::string("unknown")
                           : std::string(cluster::NetworkModeName(network.mode))},
              {"allow", network.allow},
              {"base", network.base}};
  if (!network.proxy.empty()) out["proxy"] = network.proxy;
  json refusals = json::array();
  const std::size_t first =
      network.refusals.size() > kShownRefusals ? network.refusals.size() - kShownRefusals : 0;
  for (std::size_t i = first; i < network.refusals.size(); ++i) {
    const cluster::NetworkRefusal& refusal = network.refusals[i];
    json shown = {{"time", Rfc3339(refusal.time)},
                  {"destination", refusal.destination},
                  {"protocol", refusal.protocol},
                  {"rule", refusal.rule}};
    if (refusal.port != 0) shown["port"] = refusal.port;
    refusals.push_back(std::move(shown));
  }
  out["refusals"] = std::move(refusals);
  return out;
}

json NetworkModeSchema(std::string description) {
  return {{"type", "string"},
          {"enum", {"none", "allowlist", "open"}},
          {"description", std::move(description)}};
}

json EntriesSchema(std::string description) {
  return {{"type", "array"},
          {"items", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxEntryBytes}}},
          {"maxItems", kMaxNetworkEntries},
          {"description", std::move(description)}};
}

constexpr char kEntryForms[] =
    "Entries: a domain (\"pypi.org\"), every name below one (\"*.pypi.org\"), or an "
    "address range (\"10.1.0.0/16\"), each with an optional port (\"pypi.org:443\").";

json NetworkOutputSchema() {
  return {
      {"type", "object"},
      {"properties",
       {{"mode", StringSchema()},
        {"allow", {{"type", "array"}, {"items", StringSchema()}}},
        {"base", {{"type", "array"}, {"items", StringSchema()}}},
        {"proxy", StringSchema()},
        {"refusals",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"time", StringSchema()},
              {"destination", StringSchema()},
              {"port", {{"type", "integer"}}},
              {"protocol", StringSchema()},
              {"rule", StringSchema()}}},
            {"required", {"time", "destination", "protocol", "rule"}}}}}},
        {"error",
         {{"type", "string"},
          {"description", "Why the box's spoke could not say (then nothing else is shown)."}}}}},
      {"description",
       "What the box may reach: its mode, its own allowlist entries, the spoke's base list "
       "(allowlist mode), the proxy its HTTP(S)_PROXY name, and the latest refusals."}};
}

[[nodiscard]] absl::Status BadArgument(const std::string& path, const std::string& problem) {
  return absl::InvalidArgumentError("invalid arguments: " + path + ": " + problem);
}

[[nodiscard]] absl::StatusOr<cluster::NetworkMode> ParseNetworkMode(const json& value,
                                                                    const std::string& path) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "none") return cluster::NetworkMode::kNone;
    if (text == "allowlist") return cluster::NetworkMode::kAllowlist;
    if (text == "open") return cluster::NetworkMode::kOpen;
  }
  return BadArgument(path, "must be one of \"none\", \"allowlist\", \"open\"");
}

// The shape of an entry list; what an entry may name is the spoke's to decide.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ParseEntries(const json& value,
                                                                    const std::string& path) {
  if (!value.is_array()) return BadArgument(path, "must be an array of strings");
  if (value.size() > kMaxNetworkEntries) {
    return BadArgument(path, "must have at most " + std::to_string(kMaxNetworkEntries) + " items");
  }
  std::vector<std::string> entries;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string at = path + "[" + std::to_string(i) + "]";
    if (!value[i].is_string()) return BadArgument(at, "must be a string");
    const auto& entry = value[i].get_ref<const std::string&>();
    if (entry.empty() || entry.size() > kMaxEntryBytes) {
      return BadArgument(at, "must be 1.." + std::to_string(kMaxEntryBytes) + " characters");
    }
    entries.push_back(entry);
  }
  return entries;
}

// create_llmbox's `network`: a mode, or {"mode": ..., "allow": [...]}.
[[nodiscard]] absl::StatusOr<cluster::NetworkPolicy> ParseNetworkPolicy(const json& value) {
  if (value.is_string()) {
    LLMBOX_ASSIGN_OR_RETURN(cluster::NetworkMode mode, ParseNetworkMode(value, "network"));
    return cluster::NetworkPolicy{.mode = mode};
  }
  if (!value.is_object()) {
    return BadArgument("network",
                       "must be a mode (\"none\", \"allowlist\", \"open\") or an object "
                       "{\"mode\": ..., \"allow\": [entries]}");
  }
  cluster::NetworkPolicy policy;
  for (const auto& [key, member] : value.items()) {
    if (key == "mode") {
      LLMBOX_ASSIGN_OR_RETURN(policy.mode, ParseNetworkMode(member, "network.mode"));
    } else if (key == "allow") {
      LLMBOX_ASSIGN_OR_RETURN(policy.allow, ParseEntries(member, "network.allow"));
    } else {
      return BadArgument("network." + key, "is not a known argument (mode, allow)");
    }
  }
  return policy;
}

// set_llmbox_network's arguments beside box_id.
[[nodiscard]] absl::StatusOr<cluster::NetworkChange> ParseNetworkChange(const json& arguments) {
  cluster::NetworkChange change;
  if (auto it = arguments.find("add"); it != arguments.end()) {
    LLMBOX_ASSIGN_OR_RETURN(change.add, ParseEntries(*it, "add"));
  }
  if (auto it = arguments.find("remove"); it != arguments.end()) {
    LLMBOX_ASSIGN_OR_RETURN(change.remove, ParseEntries(*it, "remove"));
  }
  if (auto it = arguments.find("mode"); it != arguments.end()) {
    LLMBOX_ASSIGN_OR_RETURN(change.mode, ParseNetworkMode(*it, "mode"));
  }
  if (change.add.empty() && change.remove.empty() &&
      change.mode == cluster::NetworkMode::kDefault) {
    return absl::InvalidArgumentError(
        "invalid arguments: nothing to change: give add, remove or mode (get_llmbox shows the "
        "box's network)");
  }
  return change;
}

// The public view of a box, written straight to JSON (a list of 1,000 boxes is the hub's
// biggest reply): never the token, its hash, or the authorize URL. Its owner only for an
// admin: anyone else sees their own boxes only. `network` (get only): its network, or why its
// spoke could not say; `spoke_unreachable` (get only): why the record answers for the spoke.
void AppendBox(std::string& out, const BoxRecord& record, bool show_owner,
               const std::optional<absl::StatusOr<cluster::BoxNetwork>>& network = std::nullopt,
               const std::optional<std::string>& spoke_unreachable = std::nullopt) {
  auto field = [&](std::string_view name, std::string_view value) {
    out += ",\"";
    out += name;
    out += "\":";
    mcp::AppendJsonString(out, value);
  };
  out += "{\"box_id\":";
  mcp::AppendJsonString(out, record.box_id);
  field("status", store::PhaseName(record.phase));
  field("spoke", record.spoke);
  field("image", record.image);
  field("container_id", std::string_view(record.container_id).substr(0, 12));
  field("created_at", Rfc3339(record.created_at_ms));
  if (!record.description.empty()) field("description", record.description);
  if (!record.session_url.empty()) field("session_url", record.session_url);
  if (!record.last_error.empty()) field("error", record.last_error);
  if (record.expires_at_ms > 0 && record.phase != store::Phase::kReady) {
    field("expires_at", Rfc3339(record.expires_at_ms));
  }
  if (show_owner) field("owner", record.owner);
  if (record.destroy_queued_at_ms.has_value()) {
    field("destroy_queued_at", Rfc3339(*record.destroy_queued_at_ms));
  }
  if (spoke_unreachable.has_value()) field("spoke_unreachable", *spoke_unreachable);
  if (network.has_value()) {
    const json shown =
        network->ok() ? NetworkJson(**network)
                      : json{{"error", std::string(common::AsStd(network->status().message()))}};
    out += ",\"network\":";
    out += shown.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  out += '}';
}

json BoxOutputSchema() {
  return {{"type", "object"},
          {"properties",
           {{"box_id", StringSchema()},
            {"status",
             {{"type", "string"},
              {"enum", {"creating", "pending", "activating", "ready", "error", "gone"}}}},
            {"spoke", StringSchema()},
            {"image", StringSchema()},
            {"container_id", StringSchema()},
            {"created_at", StringSchema()},
            {"description", StringSchema()},
            {"session_url", StringSchema()},
            {"error", StringSchema()},
            {"expires_at", StringSchema()},
            {"owner",
             {{"type", "string"},
              {"description",
               "Whose box it is (\"key:<API key name>\" or \"anonymous\"); shown to "
               "admins only."}}},
            {"destroy_queued_at",
             {{"type", "string"},
              {"description",
               "When a destroy was asked for while the box's spoke could not be reached: it "
               "completes when the spoke answers again."}}},
            {"spoke_unreachable",
             {{"type", "string"},
              {"description",
               "Set when the box's spoke cannot be reached (which spoke, since when, the last "
               "error): the rest is the hub's last word, not asked of the spoke."}}},
            {"network", NetworkOutputSchema()}}},
          {"required", {"box_id", "status", "spoke", "image", "container_id", "created_at"}}};
}

}  // namespace

std::vector<mcp::Tool> BoxTools::Tools() const {
  std::vector<mcp::Tool> tools;
  tools.push_back(
      {.name = "create_llmbox",
       .title = "Create an llmbox",
       .description =
           "Create a new sandboxed Claude Code box (an \"llmbox\") that the user drives from "
           "claude.ai/code or the Claude app. Returns an auth_url the user must open to sign the "
           "box in with their own Claude account; no token or code ever passes through you. "
           "Pick a box_id that says what the box is for (refactor-auth-service).",
       .input_schema = ObjectSchema(
           {{"box_id", BoxIdSchema()},
            {"image",
             {{"type", "string"},
              {"maxLength", 256},
              {"description", "Image to run; omit for the hub's Claude Code image."}}},
            {"description",
             {{"type", "string"},
              {"maxLength", 1024},
              {"description", "Free text shown by get_llmbox and list_llmboxes."}}},
            {"spoke",
             {{"type", "string"},
              {"maxLength", 63},
              {"description",
               "Spoke (Docker host) to place the box on; omit to let the hub "
               "choose. list_spokes shows them."}}},
            {"network",
             {{"anyOf",
               {NetworkModeSchema("The mode alone."),
                {{"type", "object"},
                 {"properties",
                  {{"mode", NetworkModeSchema("Omit for the spoke's default.")},
                   {"allow", EntriesSchema("The box's own allowlist entries.")}}},
                 {"additionalProperties", false}}}},
              {"description", std::string("What the box may reach. \"allowlist\" (usually the "
                                          "default): what Claude Code needs plus the entries in "
                                          "allow; \"none\": nothing; \"open\": the internet, "
                                          "never the spoke's host, private ranges or other boxes. "
                                          "A mode, or {\"mode\": ..., \"allow\": [...]}; omit "
                                          "for the spoke's default. ") +
                                  kEntryForms +
                                  " The spoke refuses what its policy does not permit and says "
                                  "what it allows."}}}},
           json::array()),
       .output_schema = {{"type", "object"},
                         {"properties",
                          {{"box_id", StringSchema()},
                           {"auth_url", StringSchema()},
                           {"status", StringSchema()},
                           {"spoke", StringSchema()},
                           {"expires_at", StringSchema()},
                           {"instructions", StringSchema()},
                           {"network", NetworkOutputSchema()}}},
                         {"required", {"box_id", "auth_url", "status", "spoke", "instructions"}}},
       .read_only = false,
       .destructive = false,
       .idempotent = false,
       .open_world = true});
  tools.push_back({.name = "get_llmbox",
                   .title = "Get an llmbox",
                   .description = std::string("Show one box: its status (pending until the user "
                                              "signs it in, then ready with a session_url), spoke, "
                                              "image, times, last error and network. ") +
                                  kRefusalHelp,
                   .input_schema = ObjectSchema({{"box_id", BoxIdSchema()}}, {"box_id"}),
                   .output_schema = BoxOutputSchema(),
                   .read_only = true});
  tools.push_back(
      {.name = "list_llmboxes",
       .title = "List llmboxes",
       .description =
           "List your boxes on this hub (an admin key: everyone's, with their owners), oldest "
           "first, optionally only those in one status or on one spoke. One page at a time: "
           "when next_cursor is there, more boxes follow; pass it as cursor (with the same "
           "filters) for the next page.",
       .input_schema = ObjectSchema(
           {{"status",
             {{"type", "string"},
              {"enum", {"creating", "pending", "activating", "ready", "error", "gone"}}}},
            {"spoke", {{"type", "string"}, {"maxLength", 63}}},
            {"owner",
             {{"type", "string"},
              {"maxLength", 256},
              {"description",
               "Admin keys only: only this owner's boxes (an owner id as "
               "list_llmboxes shows it, for example key:alice)."}}},
            {"limit", LimitSchema("Boxes")},
            {"cursor", CursorSchema()}},
           json::array()),
       .output_schema = {{"type", "object"},
                         {"properties",
                          {{"boxes", {{"type", "array"}, {"items", BoxOutputSchema()}}},
                           {"next_cursor", StringSchema()}}},
                         {"required", {"boxes"}}},
       .read_only = true});
  tools.push_back({.name = "destroy_llmbox",
                   .title = "Destroy an llmbox",
                   .description =
                       "Stop and remove a box, its network and its files. The user's session "
                       "in it ends. Cannot be undone. When the box's spoke cannot be reached, "
                       "the destroy is queued (queued: true, and a note saying why) and "
                       "completes when the spoke answers again; tell the user so.",
                   .input_schema = ObjectSchema({{"box_id", BoxIdSchema()}}, {"box_id"}),
                   .output_schema = {{"type", "object"},
                                     {"properties",
                                      {{"destroyed", StringSchema()},
                                       {"queued",
                                        {{"type", "boolean"},
                                         {"description",
                                          "True when the box is not destroyed yet: its spoke "
                                          "could not be reached, and the hub completes the "
                                          "destroy when it answers again."}}},
                                       {"note", StringSchema()}}},
                                     {"required", {"destroyed"}}},
                   .read_only = false,
                   .destructive = true,
                   .idempotent = true});
  tools.push_back(
      {.name = "get_llmbox_logs",
       .title = "Get an llmbox's logs",
       .description = "The last lines the box printed (its console), with sign-in links and "
                      "codes removed.",
       .input_schema =
           ObjectSchema({{"box_id", BoxIdSchema()},
                         {"tail",
                          {{"type", "integer"},
                           {"minimum", 1},
                           {"maximum", 5000},
                           {"description", "How many lines from the end (default 200)."}}}},
                        {"box_id"}),
       .output_schema = {{"type", "object"},
                         {"properties",
                          {{"box_id", StringSchema()},
                           {"logs", StringSchema()},
                           {"truncated", {{"type", "boolean"}}}}},
                         {"required", {"box_id", "logs", "truncated"}}},
       .read_only = true});
  tools.push_back(
      {.name = "exec_llmbox",
       .title = "Run a command in an llmbox",
       .description = "Run one command in the box (no shell: pass [\"sh\", \"-c\", \"...\"] "
                      "for one) and return its exit code and output (64 KiB each at most).",
       .input_schema = ObjectSchema(
           {{"box_id", BoxIdSchema()},
            {"command",
             {{"type", "array"},
              {"items", {{"type", "string"}, {"maxLength", 65536}}},
              {"minItems", 1},
              {"maxItems", 1024},
              {"description", "The program and its arguments, for example [\"ls\", \"-la\"]."}}},
            {"timeout_s",
             {{"type", "integer"},
              {"minimum", 1},
              {"maximum", 300},
              {"description", "Seconds before the command is killed (default 60)."}}}},
           {"box_id", "command"}),
       .output_schema = {{"type", "object"},
                         {"properties",
                          {{"box_id", StringSchema()},
                           {"exit_code", {{"type", "integer"}}},
                           {"stdout", StringSchema()},
                           {"stderr", StringSchema()},
                           {"truncated", {{"type", "boolean"}}},
                           {"timed_out", {{"type", "boolean"}}}}},
                         {"required",
                          {"box_id", "exit_code", "stdout", "stderr", "truncated", "timed_out"}}},
       .read_only = false,
       .destructive = true,
       .idempotent = false,
       .open_world = true});
  tools.push_back(
      {.name = "set_llmbox_network",
       .title = "Change an llmbox's network",
       .description =
           std::string("Change what a box may reach: add or remove entries of its own allowlist "
                       "or change its mode. Applies to the box's next connection. Returns the "
                       "box's network. ") +
           kEntryForms +
           " The spoke refuses what its policy does not permit and says what it allows; tell the "
           "user. Only allow what the user agreed to. " +
           kRefusalHelp,
       .input_schema = ObjectSchema(
           {{"box_id", BoxIdSchema()},
            {"add", EntriesSchema("Entries to allow.")},
            {"remove", EntriesSchema("Entries to take back (one the box lacks is no error).")},
            {"mode", NetworkModeSchema("The box's new mode; omit to keep it.")}},
           {"box_id"}),
       .output_schema = {{"type", "object"},
                         {"properties",
                          {{"box_id", StringSchema()}, {"network", NetworkOutputSchema()}}},
                         {"required", {"box_id", "network"}}},
       .read_only = false,
       .destructive = false,
       .idempotent = true,
       .open_world = true});
  tools.push_back(
      {.name = "list_spokes",
       .title = "List spokes",
       .description =
           "List the spokes (Docker hosts) boxes can be placed on, by name: each one's state "
           "(ready; cordoned or draining by an operator: no new boxes; degraded: its recent "
           "creates failed, so placement passes it over; not_ready: it answers but cannot create "
           "boxes now, e.g. its box image is missing; unreachable; removed), since when and "
           "why, whether it answers and how full it is. Pass a ready spoke's name as "
           "create_llmbox's spoke. One page at a time: when next_cursor is there, more spokes "
           "follow; pass it as cursor for the next page.",
       .input_schema = ObjectSchema({{"limit", LimitSchema("Spokes")}, {"cursor", CursorSchema()}},
                                    json::array()),
       .output_schema =
           {{"type", "object"},
            {"properties",
             {{"spokes",
               {{"type", "array"},
                {"items",
                 {{"type", "object"},
                  {"properties",
                   {{"name", StringSchema()},
                    {"state",
                     {{"type", "string"},
                      {"enum",
                       {"ready", "not_ready", "cordoned", "draining", "degraded", "unreachable",
                        "removed"}}}},
                    {"state_description", StringSchema()},
                    {"since", StringSchema()},
                    {"reason", StringSchema()},
                    {"connected", {{"type", "boolean"}}},
                    {"error", StringSchema()},
                    {"local", {{"type", "boolean"}}},
                    {"boxes", {{"type", "integer"}}},
                    {"max_boxes", {{"type", "integer"}}}}},
                  {"required",
                   {"name", "state", "state_description", "connected", "local", "boxes"}}}}}},
              {"next_cursor", StringSchema()}}},
            {"required", {"spokes"}}},
       .read_only = true});
  return tools;
}

namespace {

// The MAC key of a BoxTools given none.
std::string RandomCursorKey() {
  auto key = common::RandomToken(32);
  LLMBOX_CHECK(key.ok(), "the CSPRNG failed making the list cursor key");
  return *std::move(key);
}

}  // namespace

BoxTools::BoxTools(BoxRegistry& registry, std::string cursor_key, audit::AuditLog* audit)
    : registry_(registry),
      cursors_(cursor_key.empty() ? RandomCursorKey() : std::move(cursor_key)),
      audit_(audit) {}

namespace {

// A list tool's `limit`: 1..kMaxListLimit, kDefaultListLimit when absent.
[[nodiscard]] absl::StatusOr<std::size_t> ListLimit(const json& arguments) {
  auto it = arguments.find("limit");
  if (it == arguments.end()) return BoxTools::kDefaultListLimit;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
      it->get<std::int64_t>() > static_cast<std::int64_t>(BoxTools::kMaxListLimit)) {
    // Only a number is echoed: a string could be as long as the request.
    return absl::InvalidArgumentError("limit must be an integer 1.." +
                                      std::to_string(BoxTools::kMaxListLimit) +
                                      (it->is_number() ? ", got " + it->dump() : std::string()));
  }
  return it->get<std::size_t>();
}

// A string argument; nullopt when absent or not a string.
std::optional<std::string> TextArgument(const json& arguments, const char* key) {
  auto it = arguments.find(key);
  if (it == arguments.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

mcp::ToolResult BoxTools::List(const json& arguments, const auth::Principal& caller) {
  auto limit = ListLimit(arguments);
  if (!limit.ok()) return mcp::ToolResult::Failed(limit.status());
  auto text = [&](const char* key) { return TextArgument(arguments, key); };
  store::BoxFilter filter;
  if (auto status = text("status")) {
    filter.phase = store::ParsePhase(*status);
    // The schema's enum refuses it first; a tool called past the schema must not list
    // everything instead.
    if (!filter.phase.has_value()) {
      return mcp::ToolResult::Failed(absl::InvalidArgumentError(
          "status must be one of creating, pending, activating, ready, error, gone"));
    }
  }
  filter.spoke = text("spoke");
  filter.owner = text("owner");
  std::optional<store::BoxPosition> after;
  if (auto cursor = text("cursor")) {
    auto opened = cursors_.Open(caller.id(), filter, *cursor);
    if (!opened.ok()) return mcp::ToolResult::Failed(opened.status());
    after = *std::move(opened);
  }
  auto page = registry_.ListPage(caller, filter, after, *limit);
  if (!page.ok()) return mcp::ToolResult::Failed(page.status());
  std::string out = "{\"boxes\":[";
  out.reserve(300 * page->boxes.size() + 256);
  for (std::size_t i = 0; i < page->boxes.size(); ++i) {
    if (i > 0) out += ',';
    AppendBox(out, page->boxes[i], caller.IsAdmin());
  }
  out += ']';
  if (page->next.has_value()) {
    // base64url: nothing in it to escape.
    out += ",\"next_cursor\":\"" + cursors_.Seal(caller.id(), filter, *page->next) + '"';
  }
  out += '}';
  return mcp::ToolResult::OkJson(std::move(out));
}

mcp::ToolResult BoxTools::ListSpokes(const json& arguments, const auth::Principal& caller) {
  auto limit = ListLimit(arguments);
  if (!limit.ok()) return mcp::ToolResult::Failed(limit.status());
  std::optional<std::string> after;
  if (auto cursor = TextArgument(arguments, "cursor")) {
    auto opened = cursors_.OpenSpoke(caller.id(), *cursor);
    if (!opened.ok()) return mcp::ToolResult::Failed(opened.status());
    after = *std::move(opened);
  }
  const SpokeListPage page = PageOfSpokes(registry_.monitor().View(), after, *limit);
  std::string out = "{\"spokes\":[";
  for (std::size_t i = 0; i < page.spokes.size(); ++i) {
    if (i > 0) out += ',';
    out += SpokeListEntryJson(page.spokes[i], caller.IsAdmin());
  }
  out += ']';
  if (page.more) {
    out += ",\"next_cursor\":\"" + cursors_.SealSpoke(caller.id(), page.spokes.back().name) + '"';
  }
  out += '}';
  return mcp::ToolResult::OkJson(std::move(out));
}

namespace {

// The audit record of a call of a tool that acts on a box (audit_log.h); reads are not
// recorded.
// The audit event of a tool's call; null for the tools not recorded (reads).
const audit::Event* AuditedEvent(std::string_view name) {
  using audit::Event;
  static constexpr std::pair<std::string_view, Event> kAudited[] = {
      {"create_llmbox", Event::kBoxCreate},
      {"destroy_llmbox", Event::kBoxDestroy},
      {"exec_llmbox", Event::kBoxExec},
      {"get_llmbox_logs", Event::kBoxLogs},
      {"set_llmbox_network", Event::kBoxNetwork}};
  const auto* audited = std::find_if(std::begin(kAudited), std::end(kAudited),
                                     [&](const auto& entry) { return entry.first == name; });
  return audited == std::end(kAudited) ? nullptr : &audited->second;
}

void AuditCall(audit::AuditLog& log, audit::Event event, const json& arguments,
               const mcp::CallContext& context, const mcp::ToolResult& result, std::string spoke) {
  using audit::Event;
  auto text = [](const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  audit::AuditRecord record{.event = event,
                            .principal = context.principal().id(),
                            .client = std::string(context.client_address()),
                            .box_id = text(arguments, "box_id"),
                            .spoke = std::move(spoke)};
  if (result.is_error) {
    record.outcome = audit::Outcome(
        result.code == absl::StatusCode::kOk ? absl::StatusCode::kUnknown : result.code);
    record.error = result.text;
  } else if (result.structured.is_object()) {
    // A created box's id may be the hub's choice, and its spoke is placement's.
    if (record.box_id.empty()) record.box_id = text(result.structured, "box_id");
    if (const std::string placed = text(result.structured, "spoke"); !placed.empty()) {
      record.spoke = placed;
    }
  }
  if (event == Event::kBoxCreate && !text(arguments, "image").empty()) {
    record.details.emplace_back("image", text(arguments, "image"));
  }
  if (auto command = arguments.find("command"); command != arguments.end()) {
    for (const auto& arg : *command) {
      if (arg.is_string()) record.argv.push_back(arg.get<std::string>());
    }
  }
  log.Record(record);
}

}  // namespace

mcp::ToolResult BoxTools::Call(std::string_view name, const json& arguments,
                               mcp::CallContext& context) {
  // The box's spoke, read before the call (a destroy forgets the box): the caller's own boxes
  // only, as the call itself sees them, so a record of a refused call names no spoke.
  const audit::Event* event = audit_ != nullptr ? AuditedEvent(name) : nullptr;
  std::string spoke;
  if (event != nullptr && *event != audit::Event::kBoxCreate) {
    if (auto it = arguments.find("box_id"); it != arguments.end() && it->is_string()) {
      auto record = registry_.Get(context.principal(), it->get<std::string>());
      if (record.ok()) spoke = record->spoke;
    }
  }
  mcp::ToolResult result = Run(name, arguments, context);
  if (event != nullptr) {
    AuditCall(*audit_, *event, arguments, context, result, std::move(spoke));
  }
  return result;
}

mcp::ToolResult BoxTools::Run(std::string_view name, const json& arguments,
                              mcp::CallContext& context) {
  auto str = [&](const char* key) {
    auto it = arguments.find(key);
    return it == arguments.end() ? std::string() : it->get<std::string>();
  };
  const auth::Principal& caller = context.principal();
  if (name == "create_llmbox") {
    std::optional<cluster::NetworkPolicy> network;
    if (auto it = arguments.find("network"); it != arguments.end()) {
      auto policy = ParseNetworkPolicy(*it);
      if (!policy.ok()) return mcp::ToolResult::Failed(policy.status());
      network = *std::move(policy);
    }
    auto created = registry_.Create({.box_id = str("box_id"),
                                     .image = str("image"),
                                     .description = str("description"),
                                     .spoke = str("spoke"),
                                     .owner = caller,
                                     .network = std::move(network)},
                                    [&](double done, double total, std::string_view what) {
                                      context.Progress(done, total, what);
                                    });
    if (!created.ok()) return mcp::ToolResult::Failed(created.status());
    json out = {{"box_id", created->record.box_id},
                {"auth_url", created->auth_url},
                {"status", store::PhaseName(created->record.phase)},
                {"spoke", created->record.spoke},
                {"instructions", kActivationHelp}};
    if (created->record.expires_at_ms > 0) {
      out["expires_at"] = Rfc3339(created->record.expires_at_ms);
    }
    if (created->network.mode != cluster::NetworkMode::kDefault) {
      out["network"] = NetworkJson(created->network);
    }
    return mcp::ToolResult::Ok(std::move(out));
  }
  if (name == "get_llmbox") {
    auto details = registry_.GetDetails(caller, str("box_id"));
    if (!details.ok()) return mcp::ToolResult::Failed(details.status());
    std::string out;
    AppendBox(out, details->record, caller.IsAdmin(), details->network, details->spoke_unreachable);
    return mcp::ToolResult::OkJson(std::move(out));
  }
  if (name == "set_llmbox_network") {
    auto change = ParseNetworkChange(arguments);
    if (!change.ok()) return mcp::ToolResult::Failed(change.status());
    auto network = registry_.SetNetwork(caller, str("box_id"), *change);
    if (!network.ok()) return mcp::ToolResult::Failed(network.status());
    return mcp::ToolResult::Ok({{"box_id", str("box_id")}, {"network", NetworkJson(*network)}});
  }
  if (name == "list_llmboxes") return List(arguments, caller);
  if (name == "destroy_llmbox") {
    const std::string box_id = str("box_id");
    auto destroyed = registry_.Destroy(caller, box_id);
    if (!destroyed.ok()) return mcp::ToolResult::Failed(destroyed.status());
    if (destroyed->queued) {
      return mcp::ToolResult::Ok(
          {{"destroyed", box_id}, {"queued", true}, {"note", destroyed->note}});
    }
    return mcp::ToolResult::Ok({{"destroyed", box_id}});
  }
  if (name == "get_llmbox_logs") {
    std::optional<std::uint32_t> tail;
    if (arguments.contains("tail")) tail = arguments["tail"].get<std::uint32_t>();
    auto logs = registry_.Logs(caller, str("box_id"), tail);
    if (!logs.ok()) return mcp::ToolResult::Failed(logs.status());
    // Box output is made valid UTF-8 here whatever the spoke sent (the JSON writer would
    // replace the same bytes; this keeps the result's strings valid for anything else too).
    return mcp::ToolResult::Ok({{"box_id", str("box_id")},
                                {"logs", common::ToValidUtf8(logs->logs)},
                                {"truncated", logs->truncated}});
  }
  if (name == "exec_llmbox") {
    std::optional<std::chrono::seconds> timeout;
    if (arguments.contains("timeout_s")) {
      timeout = std::chrono::seconds(arguments["timeout_s"].get<long long>());
    }
    auto result = registry_.Exec(
        caller, str("box_id"), arguments["command"].get<std::vector<std::string>>(), timeout,
        [&](std::function<void()> cancel) { context.OnCancel(std::move(cancel)); });
    if (!result.ok()) return mcp::ToolResult::Failed(result.status());
    return mcp::ToolResult::Ok({{"box_id", str("box_id")},
                                {"exit_code", result->exit_code},
                                {"stdout", common::ToValidUtf8(result->stdout_text)},
                                {"stderr", common::ToValidUtf8(result->stderr_text)},
                                {"truncated", result->truncated},
                                {"timed_out", result->timed_out}});
  }
  if (name == "list_spokes") return ListSpokes(arguments, caller);
  return mcp::ToolResult::Error("no tool " + std::string(name));
}

}  // namespace llmbox::hub::boxes
