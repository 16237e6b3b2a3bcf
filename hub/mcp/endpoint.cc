// hub/mcp/endpoint.cc
#include "hub/mcp/endpoint.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>
#include <utility>

#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/json_depth.h"
#include "common/secrets.h"
#include "common/status.h"
#include "hub/http/status_answer.h"
#include "hub/mcp/json_writer.h"
#include "hub/mcp/schema.h"

namespace llmbox::hub::mcp {
namespace {

using nlohmann::json;

constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
// The TS SDK's transport-level codes; never the 2026-07-28 range -32020..-32022, which would
// tell a dual-era client that we speak that revision (notes §1).
constexpr int kTransportError = -32000;
constexpr int kSessionNotFound = -32001;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// Bytes we did not write (tool output, client strings) may be invalid UTF-8; dump() would
// throw on them.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json ErrorObject(int code, std::string_view message, const json& id = nullptr) {
  return {{"jsonrpc", "2.0"}, {"error", {{"code", code}, {"message", message}}}, {"id", id}};
}

json ResultObject(json result, const json& id) {
  return {{"jsonrpc", "2.0"}, {"result", std::move(result)}, {"id", id}};
}

bool IsSupportedVersion(std::string_view version) {
  return std::find(std::begin(kProtocolVersions), std::end(kProtocolVersions), version) !=
         std::end(kProtocolVersions);
}

// The media type without parameters, lowercased.
std::string MediaType(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  return Lower(Trim(type));
}

bool AcceptsEventStream(std::optional<std::string_view> accept) {
  if (!accept || Trim(*accept).empty()) return true;
  for (std::string_view part : Split(*accept, ',')) {
    const std::string type = MediaType(part);
    if (type == "text/event-stream" || type == "*/*" || type == "text/*") return true;
  }
  return false;
}

struct Message {
  json id;  // null for notifications
  bool is_request = false;
  bool is_notification = false;
  std::string method;
  json params;
};

// Shapes a parsed value into a Message; an error string for what is not JSON-RPC 2.0.
std::optional<std::string> ReadMessage(const json& value, Message& out) {
  if (!value.is_object()) return "a JSON-RPC message must be an object";
  auto version = value.find("jsonrpc");
  if (version == value.end() || *version != "2.0") return "jsonrpc must be \"2.0\"";
  auto method = value.find("method");
  auto id = value.find("id");
  if (method == value.end()) {
    // A response to a server request; the hub sends none, so it is accepted and dropped.
    if (id == value.end() || (!value.contains("result") && !value.contains("error"))) {
      return "a message needs a method (request or notification) or a result (response)";
    }
    return std::nullopt;
  }
  if (!method->is_string()) return "method must be a string";
  out.method = method->get<std::string>();
  if (auto params = value.find("params"); params != value.end()) {
    if (!params->is_object() && !params->is_array()) return "params must be an object";
    out.params = *params;
  }
  if (id == value.end()) {
    out.is_notification = true;
    return std::nullopt;
  }
  if (!id->is_string() && !id->is_number_integer()) {
    return "id must be a string or an integer";
  }
  out.id = *id;
  out.is_request = true;
  return std::nullopt;
}

json ToolToJson(const Tool& tool) {
  json out = {{"name", tool.name},
              {"title", tool.title},
              {"description", tool.description},
              {"inputSchema", tool.input_schema}};
  if (!tool.output_schema.is_null()) out["outputSchema"] = tool.output_schema;
  out["annotations"] = {{"title", tool.title},
                        {"readOnlyHint", tool.read_only},
                        {"destructiveHint", tool.destructive},
                        {"idempotentHint", tool.idempotent},
                        {"openWorldHint", tool.open_world}};
  return out;
}

json ToolResultToJson(const ToolResult& result) {
  if (result.is_error) {
    return {{"content", json::array({{{"type", "text"}, {"text", result.text}}})},
            {"isError", true}};
  }
  const std::string text = result.text.empty() ? Dump(result.structured) : result.text;
  return {{"content", json::array({{{"type", "text"}, {"text", text}}})},
          {"structuredContent", result.structured},
          {"isError", false}};
}

std::string SseEvent(std::string_view message) {
  std::string event = "event: message\ndata: ";
  event += message;
  event += "\n\n";
  return event;
}
std::string SseEventOf(const json& message) { return SseEvent(Dump(message)); }

// The tools/call response, serialized once: the structured result is dumped one time and
// used as the text block (escaped) and as structuredContent (verbatim).
std::string ToolResponse(const ToolResult& result, const json& id) {
  if (result.is_error) return Dump(ResultObject(ToolResultToJson(result), id));
  const std::string structured =
      result.structured_json.empty() ? WriteJson(result.structured) : result.structured_json;
  std::string out;
  // The escaped copy is a little longer than the original for our output.
  out.reserve(2 * structured.size() + structured.size() / 8 + 256);
  out += R"({"jsonrpc":"2.0","id":)";
  out += Dump(id);
  out += R"(,"result":{"content":[{"type":"text","text":)";
  AppendJsonString(out, result.text.empty() ? structured : result.text);
  out += R"(}],"structuredContent":)";
  out += structured;
  out += R"(,"isError":false}})";
  return out;
}

}  // namespace

// One tools/call in flight: where its progress goes, and whether it was cancelled. The SSE
// stream starts only when there is something to send before the response (progress, a
// keep-alive); a call that answers first gets a plain JSON reply, which costs one write.
class ActiveCall final : public CallContext {
 public:
  // `responder` is null when the client accepts no event stream.
  ActiveCall(std::shared_ptr<http::Responder> responder, http::Headers stream_headers,
             json progress_token, auth::Principal principal, std::string client_address)
      : responder_(std::move(responder)),
        stream_headers_(std::move(stream_headers)),
        progress_token_(std::move(progress_token)),
        principal_(std::move(principal)),
        client_address_(std::move(client_address)) {}

  void Progress(double progress, std::optional<double> total, std::string_view message) override {
    std::lock_guard lock(mu_);
    if (responder_ == nullptr || progress_token_.is_null() || done_) return;
    if (last_progress_ && progress <= *last_progress_) return;
    last_progress_ = progress;
    json params = {{"progressToken", progress_token_}, {"progress", progress}};
    if (total) params["total"] = *total;
    if (!message.empty()) params["message"] = message;
    StartLocked();
    responder_->Write(SseEventOf(
        {{"jsonrpc", "2.0"}, {"method", "notifications/progress"}, {"params", std::move(params)}}));
  }

  bool Cancelled() const override { return cancelled_.load(); }

  void OnCancel(std::function<void()> callback) override {
    std::unique_lock lock(mu_);
    if (!cancelled_.load()) {
      on_cancel_.push_back(std::move(callback));
      return;
    }
    lock.unlock();
    callback();
  }

  const auth::Principal& principal() const override { return principal_; }
  std::string_view client_address() const override { return client_address_; }

  void Cancel() {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mu_);
      if (cancelled_.exchange(true)) return;
      callbacks.swap(on_cancel_);
    }
    for (auto& callback : callbacks) callback();
  }

  // Comment lines keep proxies from closing an idle stream and tell us when the client left.
  void KeepAlive() {
    std::lock_guard lock(mu_);
    if (responder_ == nullptr || done_) return;
    StartLocked();
    responder_->Write(": keepalive\n\n");
  }

  // Ends a started stream with the response, unless the call was cancelled (a cancelled
  // request gets no response). False when no stream was started: the caller answers JSON.
  bool Finish(const std::string& response) {
    std::lock_guard lock(mu_);
    done_ = true;
    on_cancel_.clear();
    if (!started_) return false;
    if (!cancelled_.load()) responder_->Write(SseEvent(std::string_view(response)));
    responder_->Finish();
    return true;
  }

 private:
  void StartLocked() {
    if (started_) return;
    started_ = true;
    responder_->StartStream(200, stream_headers_);
  }

  std::mutex mu_;
  const std::shared_ptr<http::Responder> responder_;
  const http::Headers stream_headers_;
  const json progress_token_;
  const auth::Principal principal_;
  const std::string client_address_;
  std::optional<double> last_progress_;
  std::vector<std::function<void()>> on_cancel_;
  std::atomic<bool> cancelled_{false};
  bool started_ = false;
  bool done_ = false;
};

class McpEndpoint::Impl {
 public:
  Impl(EndpointOptions options, ToolSet& tools, common::Clock& clock)
      : options_(std::move(options)), tools_(tools), clock_(clock) {
    for (Tool& tool : tools_.Tools()) {
      tool_list_.push_back(ToolToJson(tool));
      tools_by_name_.emplace(tool.name, std::move(tool));
    }
    for (const auto& hash : options_.ended_sessions) RememberEnded(hash);
    keepalive_thread_ = std::thread([this] { KeepAliveLoop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(timer_mu_);
      stopping_ = true;
    }
    timer_cv_.notify_all();
    keepalive_thread_.join();
  }

  void Handle(http::Request request, std::shared_ptr<http::Responder> responder);

 private:
  struct Reply {
    int status = 200;
    http::Headers headers;
    std::string body;
  };

  // Request-wide facts gathered before dispatch.
  struct Exchange {
    http::Request request;
    std::shared_ptr<http::Responder> responder;
    http::Headers cors;  // added to every answer
    // The caller: the authenticator's answer, or the anonymous principal without one.
    auth::Principal principal = auth::Principal::Anonymous();
    std::string session_id;  // validated, or empty
  };

  void Answer(Exchange& ex, int status, http::Headers headers, std::string body) {
    for (auto& header : ex.cors) headers.push_back(header);
    ex.responder->Respond(
        {.status = status, .headers = std::move(headers), .body = std::move(body)});
  }
  void AnswerJson(Exchange& ex, int status, const json& body, http::Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    if (!ex.session_id.empty()) headers.emplace_back("Mcp-Session-Id", ex.session_id);
    Answer(ex, status, std::move(headers), Dump(body));
  }
  void AnswerError(Exchange& ex, int status, int code, std::string_view message,
                   http::Headers headers = {}) {
    AnswerJson(ex, status, ErrorObject(code, message), std::move(headers));
  }

  bool HostAllowed(const http::Request& request) const;
  std::optional<std::string> AllowedOrigin(const http::Request& request, bool& bad) const;
  void HandlePost(Exchange& ex);
  void HandleDelete(Exchange& ex);
  // Checks Mcp-Session-Id (when sent) and MCP-Protocol-Version; false when it answered.
  bool CheckSessionAndVersion(Exchange& ex);
  json Initialize(Exchange& ex, const Message& message);
  // The result or error object for a non-initialize request; `stream` set for a streamed
  // tools/call (then the caller must not answer again).
  // Replies are serialized once: a tool result can be large (a list of 1,000 boxes).
  std::optional<std::string> Dispatch(Exchange& ex, const Message& message, bool may_stream);
  std::optional<json> DispatchOther(Exchange& ex, const Message& message);
  // `outcome` and `tool` say what came of it, for EndpointOptions::on_request.
  std::string CallTool(Exchange& ex, const Message& message, bool may_stream, bool& streamed,
                       std::string_view& outcome, std::string& tool);
  // EndpointOptions::on_request, when set.
  void Report(std::string_view method, std::string_view tool, std::string_view outcome) {
    if (options_.on_request) options_.on_request(method, tool, outcome);
  }

  std::string NewSessionId(const std::string& principal);
  // When a session id whose issued part (seconds) is `issued_part` stops being good: issued +
  // session_ttl; 0 when unreadable.
  std::int64_t SessionExpiresAtMs(std::string_view issued_part) const;
  // Adds an ended session's hash; false when it was already there.
  bool RememberEnded(const std::string& hash);
  bool SessionValid(std::string_view id, const std::string& principal);
  std::string SessionMac(std::string_view nonce, std::string_view issued,
                         const std::string& principal) const;

  // A call is known by its caller, its session and its JSON-RPC id: an id (or a session-less
  // call) of one principal can never name another principal's call.
  std::string CallKey(const auth::Principal& caller, const std::string& session,
                      const json& id) const {
    return caller.id() + "\n" + session + "\n" + Dump(id);
  }
  // Writes a comment to every open stream each keepalive_interval (on the clock, so a fake
  // clock drives it in tests).
  void KeepAliveLoop();

  const EndpointOptions options_;
  ToolSet& tools_;
  common::Clock& clock_;
  json tool_list_ = json::array();
  std::map<std::string, Tool, std::less<>> tools_by_name_;

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ActiveCall>> active_;  // by CallKey
  std::map<std::string, int> running_;  // tool calls running, by principal id
  std::unordered_set<std::string> deleted_;
  std::deque<std::string> deleted_order_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::thread keepalive_thread_;
};

void McpEndpoint::Impl::KeepAliveLoop() {
  std::unique_lock lock(timer_mu_);
  while (!stopping_) {
    clock_.WaitUntil(lock, timer_cv_, clock_.SteadyNow() + options_.keepalive_interval,
                     [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    std::vector<std::shared_ptr<ActiveCall>> calls;
    {
      std::lock_guard calls_lock(mu_);
      for (auto& [key, call] : active_) calls.push_back(call);
    }
    for (auto& call : calls) call->KeepAlive();
    lock.lock();
  }
}

bool McpEndpoint::Impl::HostAllowed(const http::Request& request) const {
  if (options_.allowed_hosts.empty()) return true;
  auto host = request.Header("host");
  if (!host) return false;
  const std::string lowered = Lower(*host);
  return std::find(options_.allowed_hosts.begin(), options_.allowed_hosts.end(), lowered) !=
         options_.allowed_hosts.end();
}

std::optional<std::string> McpEndpoint::Impl::AllowedOrigin(const http::Request& request,
                                                            bool& bad) const {
  bad = false;
  auto origin = request.Header("origin");
  if (!origin) return std::nullopt;
  const std::string lowered = Lower(*origin);
  if (std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), lowered) ==
      options_.allowed_origins.end()) {
    bad = true;
    return std::nullopt;
  }
  return std::string(*origin);
}

void McpEndpoint::Impl::Handle(http::Request request, std::shared_ptr<http::Responder> responder) {
  Exchange ex{.request = std::move(request), .responder = std::move(responder)};
  bool bad_origin = false;
  std::optional<std::string> origin = AllowedOrigin(ex.request, bad_origin);
  if (!HostAllowed(ex.request)) {
    return AnswerError(ex, 403, kTransportError, "Forbidden: this Host is not served here");
  }
  if (bad_origin) {
    return AnswerError(ex, 403, kTransportError, "Forbidden: this Origin is not allowed");
  }
  if (origin) {
    ex.cors = {{"Access-Control-Allow-Origin", *origin},
               {"Access-Control-Expose-Headers", "Mcp-Session-Id, WWW-Authenticate"},
               {"Vary", "Origin"}};
  }
  const std::string& method = ex.request.method;
  if (method == "OPTIONS") {
    return Answer(ex, 204,
                  {{"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"},
                   {"Access-Control-Allow-Headers",
                    "Content-Type, Authorization, Mcp-Session-Id, MCP-Protocol-Version, "
                    "Last-Event-ID, Mcp-Method, Mcp-Name"},
                   {"Access-Control-Max-Age", "600"}},
                  "");
  }
  if (options_.authenticate) {
    auto principal = options_.authenticate(ex.request.Header("authorization"));
    if (!principal.ok()) {
      std::string challenge = options_.www_authenticate;
      if (ex.request.Header("authorization")) challenge += ", error=\"invalid_token\"";
      return AnswerError(ex, http::HttpStatusOf(principal.status().code()), kTransportError,
                         common::AsStd(principal.status().message()),
                         {{"WWW-Authenticate", challenge}});
    }
    ex.principal = *std::move(principal);
  }
  if (method == "POST") return HandlePost(ex);
  if (method == "DELETE") return HandleDelete(ex);
  // The hub pushes nothing, so there is no server-initiated stream to open (notes §2.1).
  return AnswerError(ex, 405, kTransportError, "Method not allowed: use POST",
                     {{"Allow", "POST, DELETE, OPTIONS"}});
}

void McpEndpoint::Impl::HandleDelete(Exchange& ex) {
  auto id = ex.request.Header("mcp-session-id");
  if (!id) {
    return AnswerError(ex, 400, kTransportError, "Bad Request: Mcp-Session-Id header is required");
  }
  if (!SessionValid(*id, ex.principal.id())) {
    return AnswerError(ex, 404, kSessionNotFound, "Session not found");
  }
  const std::string hash = common::Sha256Hex(*id);
  if (RememberEnded(hash) && options_.on_session_ended) {
    // SessionValid checked the shape: s1.<nonce>.<issued>.<mac>.
    options_.on_session_ended(hash, SessionExpiresAtMs(Split(*id, '.')[2]));
  }
  Answer(ex, 200, {}, "");
}

bool McpEndpoint::Impl::CheckSessionAndVersion(Exchange& ex) {
  if (auto id = ex.request.Header("mcp-session-id")) {
    if (!SessionValid(*id, ex.principal.id())) {
      AnswerError(ex, 404, kSessionNotFound, "Session not found");
      return false;
    }
    ex.session_id = std::string(*id);
  }
  if (auto version = ex.request.Header("mcp-protocol-version")) {
    if (!IsSupportedVersion(Trim(*version))) {
      AnswerError(ex, 400, kTransportError,
                  "Bad Request: Unsupported protocol version " + std::string(*version) +
                      " (supported: 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05)");
      return false;
    }
  }
  return true;
}

void McpEndpoint::Impl::HandlePost(Exchange& ex) {
  auto content_type = ex.request.Header("content-type");
  if (!content_type || MediaType(*content_type) != "application/json") {
    return AnswerError(ex, 415, kTransportError,
                       "Unsupported Media Type: Content-Type must be application/json");
  }
  if (common::JsonDeeperThan(ex.request.body, options_.max_json_depth)) {
    return AnswerError(ex, 400, kParseError,
                       "Parse error: JSON nested deeper than " +
                           std::to_string(options_.max_json_depth) + " levels");
  }
  json body = json::parse(ex.request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return AnswerError(ex, 400, kParseError, "Parse error: the body is not valid JSON");
  }

  if (body.is_array()) {
    if (body.empty() || body.size() > options_.max_batch) {
      return AnswerError(ex, 400, kInvalidRequest,
                         "Invalid Request: a batch must hold 1.." +
                             std::to_string(options_.max_batch) + " messages");
    }
    std::vector<Message> messages(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
      if (auto problem = ReadMessage(body[i], messages[i])) {
        return AnswerError(ex, 400, kInvalidRequest, "Invalid Request: " + *problem);
      }
      if (messages[i].method == "initialize") {
        return AnswerError(ex, 400, kInvalidRequest,
                           "Invalid Request: initialize must not be part of a batch");
      }
    }
    if (!CheckSessionAndVersion(ex)) return;
    json responses = json::array();
    for (const Message& message : messages) {
      if (message.is_request) responses.push_back(json::parse(*Dispatch(ex, message, false)));
      if (message.is_notification && message.method == "notifications/cancelled") {
        Dispatch(ex, message, false);
      }
    }
    if (responses.empty()) return Answer(ex, 202, {}, "");
    return AnswerJson(ex, 200, responses);
  }

  Message message;
  if (auto problem = ReadMessage(body, message)) {
    return AnswerError(ex, 400, kInvalidRequest, "Invalid Request: " + *problem);
  }
  if (message.is_request && message.method == "initialize") {
    json reply = Initialize(ex, message);
    Report(message.method, "", "ok");
    return AnswerJson(ex, 200, reply);
  }
  if (!CheckSessionAndVersion(ex)) return;
  if (!message.is_request) {
    if (message.method == "notifications/cancelled") Dispatch(ex, message, false);
    return Answer(ex, 202, {}, "");
  }
  const bool may_stream = AcceptsEventStream(ex.request.Header("accept"));
  std::optional<std::string> reply = Dispatch(ex, message, may_stream);
  if (reply) {
    http::Headers headers = {{"Content-Type", "application/json"}};
    if (!ex.session_id.empty()) headers.emplace_back("Mcp-Session-Id", ex.session_id);
    Answer(ex, 200, std::move(headers), *std::move(reply));
  }
}

json McpEndpoint::Impl::Initialize(Exchange& ex, const Message& message) {
  std::string requested;
  if (message.params.is_object()) {
    auto version = message.params.find("protocolVersion");
    if (version != message.params.end() && version->is_string()) requested = *version;
  }
  // An unknown revision is answered with our newest, not an error: the client decides.
  const std::string version =
      IsSupportedVersion(requested) ? requested : std::string(kProtocolVersions[0]);
  ex.session_id = NewSessionId(ex.principal.id());
  json info = {{"name", options_.server_name},
               {"title", options_.server_title},
               {"version", options_.server_version}};
  json result = {
      {"protocolVersion", version},
      {"capabilities", {{"tools", {{"listChanged", false}}}, {"logging", json::object()}}},
      {"serverInfo", std::move(info)}};
  if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
  return ResultObject(std::move(result), message.id);
}

std::optional<std::string> McpEndpoint::Impl::Dispatch(Exchange& ex, const Message& message,
                                                       bool may_stream) {
  if (message.is_request && message.method == "tools/call") {
    bool streamed = false;
    std::string_view outcome = "ok";
    std::string tool;
    std::string reply = CallTool(ex, message, may_stream, streamed, outcome, tool);
    Report(message.method, tool, outcome);
    if (streamed) return std::nullopt;
    return reply;
  }
  std::optional<json> reply = DispatchOther(ex, message);
  if (message.is_request) {
    Report(message.method, "", reply && reply->contains("error") ? "error" : "ok");
  }
  if (!reply) return std::nullopt;
  return Dump(*reply);
}

std::optional<json> McpEndpoint::Impl::DispatchOther(Exchange& ex, const Message& message) {
  const std::string& method = message.method;
  if (message.is_notification) {
    if (method == "notifications/cancelled" && message.params.is_object() &&
        message.params.contains("requestId")) {
      std::shared_ptr<ActiveCall> call;
      {
        std::lock_guard lock(mu_);
        auto it = active_.find(CallKey(ex.principal, ex.session_id, message.params["requestId"]));
        if (it != active_.end()) call = it->second;
      }
      if (call) call->Cancel();
    }
    return std::nullopt;
  }
  if (method == "ping") return ResultObject(json::object(), message.id);
  if (method == "tools/list") return ResultObject({{"tools", tool_list_}}, message.id);
  if (method == "logging/setLevel") {
    static const std::set<std::string> kLevels = {"debug", "info",     "notice", "warning",
                                                  "error", "critical", "alert",  "emergency"};
    if (!message.params.is_object() || !message.params.contains("level") ||
        !message.params["level"].is_string() || !kLevels.contains(message.params["level"])) {
      return ErrorObject(kInvalidParams, "Invalid params: level must be a syslog level name",
                         message.id);
    }
    return ResultObject(json::object(), message.id);
  }
  if (method == "initialize") {
    return ErrorObject(kInvalidRequest, "Invalid Request: initialize must be sent on its own",
                       message.id);
  }
  return ErrorObject(kMethodNotFound, "Method not found: " + method, message.id);
}

std::string McpEndpoint::Impl::CallTool(Exchange& ex, const Message& message, bool may_stream,
                                        bool& streamed, std::string_view& outcome,
                                        std::string& tool_name) {
  const json& params = message.params;
  outcome = "error";
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string()) {
    return Dump(
        ErrorObject(kInvalidParams, "Invalid params: tools/call needs a tool name", message.id));
  }
  const std::string name = params["name"];
  tool_name = name;
  auto tool = tools_by_name_.find(name);
  if (tool == tools_by_name_.end()) {
    return Dump(ErrorObject(kInvalidParams, "Unknown tool: " + name, message.id));
  }
  json arguments = json::object();
  if (auto it = params.find("arguments"); it != params.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Dump(
          ErrorObject(kInvalidParams, "Invalid params: arguments must be an object", message.id));
    }
    arguments = *it;
  }
  // Argument problems are tool errors (2025-11-25): the model reads them and corrects itself.
  outcome = "tool_error";
  if (auto problem = SchemaProblem(tool->second.input_schema, arguments)) {
    return ToolResponse(ToolResult::Error("invalid arguments: " + *problem), message.id);
  }
  json progress_token;
  if (auto meta = params.find("_meta"); meta != params.end() && meta->is_object()) {
    if (auto token = meta->find("progressToken");
        token != meta->end() && (token->is_string() || token->is_number_integer())) {
      progress_token = *token;
    }
  }

  http::Headers headers = {{"Content-Type", "text/event-stream"},
                           {"Cache-Control", "no-cache"},
                           {"X-Accel-Buffering", "no"}};
  if (!ex.session_id.empty()) headers.emplace_back("Mcp-Session-Id", ex.session_id);
  for (auto& header : ex.cors) headers.push_back(header);
  auto call = std::make_shared<ActiveCall>(
      may_stream ? ex.responder : nullptr, std::move(headers), progress_token, ex.principal,
      ex.request.client_address.empty() ? ex.request.remote_address : ex.request.client_address);
  const std::string key = CallKey(ex.principal, ex.session_id, message.id);
  const std::string& caller = ex.principal.id();
  {
    std::lock_guard lock(mu_);
    int& running = running_[caller];
    if (options_.max_calls_per_principal > 0 && running >= options_.max_calls_per_principal) {
      const int limit = options_.max_calls_per_principal;
      return ToolResponse(
          ToolResult::Error("you have " + std::to_string(limit) +
                            " tool calls running, the limit per caller (max_calls_per_caller); "
                            "wait for one to finish"),
          message.id);
    }
    ++running;
    active_[key] = call;
  }
  ToolResult result;
  try {
    result = tools_.Call(name, arguments, *call);
  } catch (const std::exception& e) {
    // A tool bug must not take the worker thread down with it.
    spdlog::error("mcp: tool {} threw: {}", name, e.what());
    result = ToolResult::Error("internal error in " + name);
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = active_.find(key); it != active_.end() && it->second == call) active_.erase(it);
    if (auto it = running_.find(caller); it != running_.end() && --it->second <= 0) {
      running_.erase(it);
    }
  }
  outcome = result.is_error ? "tool_error" : "ok";
  std::string response = ToolResponse(result, message.id);
  streamed = call->Finish(response);
  return response;
}

std::string McpEndpoint::Impl::SessionMac(std::string_view nonce, std::string_view issued,
                                          const std::string& principal) const {
  return common::HmacSha256Hex(options_.session_key, "mcp-session\n" + std::string(nonce) + "\n" +
                                                         std::string(issued) + "\n" + principal)
      .substr(0, 32);
}

// s1.<nonce>.<issued unix seconds>.<mac>: visible ASCII, bound to the caller by the MAC.
std::string McpEndpoint::Impl::NewSessionId(const std::string& principal) {
  auto nonce = common::RandomToken(16);
  LLMBOX_CHECK(nonce.ok(), "the system's random source failed");
  const std::string issued = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count());
  return "s1." + *nonce + "." + issued + "." + SessionMac(*nonce, issued, principal);
}

bool McpEndpoint::Impl::SessionValid(std::string_view id, const std::string& principal) {
  std::vector<std::string_view> parts = Split(id, '.');
  if (parts.size() != 4 || parts[0] != "s1") return false;
  if (!common::ConstantTimeEquals(SessionMac(parts[1], parts[2], principal), parts[3])) {
    return false;
  }
  if (common::ToUnixMillis(clock_.Now()) >= SessionExpiresAtMs(parts[2])) return false;
  const std::string hash = common::Sha256Hex(id);
  std::lock_guard lock(mu_);
  return !deleted_.contains(hash);
}

std::int64_t McpEndpoint::Impl::SessionExpiresAtMs(std::string_view issued_part) const {
  std::int64_t issued = 0;
  if (std::from_chars(issued_part.data(), issued_part.data() + issued_part.size(), issued).ec !=
      std::errc()) {
    return 0;
  }
  return (issued + options_.session_ttl.count()) * 1000;
}

bool McpEndpoint::Impl::RememberEnded(const std::string& hash) {
  std::lock_guard lock(mu_);
  if (!deleted_.emplace(hash).second) return false;
  deleted_order_.emplace_back(hash);
  if (deleted_order_.size() > options_.max_deleted_sessions) {
    deleted_.erase(deleted_order_.front());
    deleted_order_.pop_front();
  }
  return true;
}

McpEndpoint::McpEndpoint(EndpointOptions options, ToolSet& tools, common::Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), tools, clock)) {}

McpEndpoint::~McpEndpoint() = default;

void McpEndpoint::Handle(http::Request request, std::shared_ptr<http::Responder> responder) {
  impl_->Handle(std::move(request), std::move(responder));
}

http::Response McpEndpoint::HttpError(int status, std::string_view message) {
  return {.status = status,
          .headers = {{"Content-Type", "application/json"}},
          .body = Dump(ErrorObject(kTransportError, message))};
}

}  // namespace llmbox::hub::mcp
