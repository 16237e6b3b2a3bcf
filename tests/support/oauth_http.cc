#include "tests/support/oauth_http.h"

#include <signal.h>

#include <cctype>
#include <cstdlib>
#include <mutex>

#include "absl/status/status.h"
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "common/secrets.h"

namespace llmbox::testing {
namespace {

using nlohmann::json;

std::size_t Collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

std::string Escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// &amp; &quot; &#39; &lt; &gt; and numeric entities (ASCII only: enough for ids and tokens).
std::string DecodeEntities(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    const std::size_t end = text.find(';', i);
    if (end == std::string_view::npos || end - i > 8) {
      out += text[i];
      continue;
    }
    const std::string_view entity = text.substr(i + 1, end - i - 1);
    if (entity == "amp") {
      out += '&';
    } else if (entity == "quot") {
      out += '"';
    } else if (entity == "lt") {
      out += '<';
    } else if (entity == "gt") {
      out += '>';
    } else if (entity == "apos") {
      out += '\'';
    } else if (!entity.empty() && entity[0] == '#') {
      const bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
      out += static_cast<char>(
          std::strtol(std::string(entity.substr(hex ? 2 : 1)).c_str(), nullptr, hex ? 16 : 10));
    } else {
      out += text.substr(i, end - i + 1);
    }
    i = end;
  }
  return out;
}

// The value of attribute `name` in the tag text `tag` ("<input ... >"), nullopt when absent.
std::optional<std::string> Attribute(std::string_view tag, std::string_view name) {
  for (std::size_t at = tag.find(name); at != std::string_view::npos; at = tag.find(name, at + 1)) {
    const bool starts = at > 0 && std::isspace(static_cast<unsigned char>(tag[at - 1]));
    std::size_t eq = at + name.size();
    if (!starts || eq >= tag.size() || tag[eq] != '=') continue;
    ++eq;
    if (eq < tag.size() && (tag[eq] == '"' || tag[eq] == '\'')) {
      const char quote = tag[eq];
      const std::size_t end = tag.find(quote, eq + 1);
      if (end == std::string_view::npos) return std::nullopt;
      return DecodeEntities(tag.substr(eq + 1, end - eq - 1));
    }
    std::size_t end = eq;
    while (end < tag.size() && !std::isspace(static_cast<unsigned char>(tag[end])) &&
           tag[end] != '>') {
      ++end;
    }
    return DecodeEntities(tag.substr(eq, end - eq));
  }
  return std::nullopt;
}

absl::Status Unexpected(std::string_view what, const HttpResult& result) {
  return absl::InternalError(std::string(what) + ": HTTP " + std::to_string(result.status) + " " +
                             result.error + " " + result.body.substr(0, 1500));
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

absl::StatusOr<OAuthTokens> TokensOf(const HttpResult& result) {
  if (result.status != 200) return Unexpected("token endpoint", result);
  const json body = json::parse(result.body, nullptr, false);
  if (!body.is_object() || !body.contains("access_token")) {
    return Unexpected("token endpoint", result);
  }
  OAuthTokens tokens;
  tokens.access_token = body.value("access_token", "");
  tokens.refresh_token = body.value("refresh_token", "");
  tokens.expires_in = body.value("expires_in", std::int64_t{0});
  return tokens;
}

}  // namespace

std::string HttpResult::Header(std::string_view name) const {
  std::string_view rest = headers;
  std::string value;
  while (!rest.empty()) {
    const std::size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (EqualsIgnoreCase(line.substr(0, colon), name)) value = Trim(line.substr(colon + 1));
  }
  return value;
}

PlainHttp::PlainHttp() : curl_(curl_easy_init()) {
  // No signal handling per transfer: without NOSIGNAL libcurl sets and restores SIGPIPE's
  // handler around each one, and every sigaction(2) walks all of the process's threads (in the
  // cluster bench, 2,000 threads of spokes: half the machine went there). SIGPIPE is ignored
  // once for the process instead (children get the default back: common/subprocess.cc).
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_COOKIEFILE, "");  // an in-memory jar of this handle's own
  curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 60L);
}

PlainHttp::~PlainHttp() { curl_easy_cleanup(curl_); }

HttpResult PlainHttp::Get(const std::string& url, const std::vector<std::string>& headers) {
  return Perform(url, headers, std::nullopt);
}

HttpResult PlainHttp::Post(const std::string& url, std::string_view body,
                           std::string_view content_type, const std::vector<std::string>& headers) {
  std::vector<std::string> all = headers;
  all.push_back("Content-Type: " + std::string(content_type));
  return Perform(url, all, body);
}

HttpResult PlainHttp::Perform(const std::string& url, const std::vector<std::string>& headers,
                              std::optional<std::string_view> body) {
  HttpResult result;
  curl_slist* list = nullptr;
  for (const auto& header : headers) list = curl_slist_append(list, header.c_str());
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
  if (body.has_value()) {
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  } else {
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, Collect);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &result.headers);
  const CURLcode rc = curl_easy_perform(curl_);
  curl_slist_free_all(list);
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
  if (rc != CURLE_OK) {
    result.error = curl_easy_strerror(rc);
    return result;
  }
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &result.status);
  // Only the last response's headers (libcurl hands over 1xx ones too).
  if (const std::size_t last = result.headers.rfind("\r\nHTTP/"); last != std::string::npos) {
    result.headers.erase(0, last + 2);
  }
  return result;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    out += Escape(name) + "=" + Escape(value);
  }
  return out;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size()) {
      out +=
          static_cast<char>(std::strtol(std::string(text.substr(i + 1, 2)).c_str(), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::optional<std::string> QueryParam(std::string_view url, std::string_view name) {
  const std::size_t query = url.find('?');
  if (query == std::string_view::npos) return std::nullopt;
  std::string_view rest = url.substr(query + 1);
  rest = rest.substr(0, rest.find('#'));
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq)) == name) {
      return eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

std::optional<HtmlForm> FindForm(std::string_view html, std::string_view marker) {
  for (std::size_t start = html.find("<form"); start != std::string_view::npos;
       start = html.find("<form", start + 1)) {
    std::size_t end = html.find("</form>", start);
    if (end == std::string_view::npos) end = html.size();
    const std::string_view form = html.substr(start, end - start);
    if (form.find(marker) == std::string_view::npos) continue;
    HtmlForm out;
    const std::string_view open = form.substr(0, form.find('>'));
    out.action = Attribute(open, "action").value_or("");
    for (std::size_t at = form.find("<input"); at != std::string_view::npos;
         at = form.find("<input", at + 1)) {
      const std::string_view tag = form.substr(at, form.find('>', at) - at);
      if (auto name = Attribute(tag, "name")) {
        out.inputs[*name] = Attribute(tag, "value").value_or("");
      }
    }
    return out;
  }
  return std::nullopt;
}

Pkce Pkce::Make() {
  Pkce pkce;
  pkce.verifier = *common::RandomToken(32);
  pkce.challenge = common::Base64UrlEncode(common::Sha256(pkce.verifier));
  return pkce;
}

OAuthHttpClient::OAuthHttpClient(std::string issuer) : issuer_(std::move(issuer)) {}

absl::StatusOr<std::string> OAuthHttpClient::Register(const std::string& redirect_uri,
                                                      const std::string& name) {
  const json request = {{"client_name", name},
                        {"redirect_uris", {redirect_uri}},
                        {"grant_types", {"authorization_code", "refresh_token"}},
                        {"response_types", {"code"}},
                        {"token_endpoint_auth_method", "none"}};
  const HttpResult result = http_.Post(issuer_ + "/register", request.dump(), "application/json");
  if (result.status != 201) return Unexpected("register", result);
  const json body = json::parse(result.body, nullptr, false);
  if (!body.is_object() || !body.contains("client_id") || !body["client_id"].is_string()) {
    return Unexpected("register", result);
  }
  return body["client_id"].get<std::string>();
}

HttpResult OAuthHttpClient::StartAuthorize(
    const std::vector<std::pair<std::string, std::string>>& params) {
  return http_.Get(issuer_ + "/authorize?" + FormEncode(params));
}

absl::StatusOr<std::string> OAuthHttpClient::AuthorizeWithKey(
    const std::string& client_id, const std::string& redirect_uri, const Pkce& pkce,
    const std::string& api_key, const std::string& state, std::optional<std::string> resource) {
  std::vector<std::pair<std::string, std::string>> params = {{"response_type", "code"},
                                                             {"client_id", client_id},
                                                             {"redirect_uri", redirect_uri},
                                                             {"code_challenge", pkce.challenge},
                                                             {"code_challenge_method", "S256"},
                                                             {"state", state},
                                                             {"scope", "llmbox"}};
  if (resource.has_value()) params.emplace_back("resource", *resource);
  HttpResult page = StartAuthorize(params);
  std::string at = issuer_ + "/authorize";
  for (int step = 0; step < 10; ++step) {
    if (page.status >= 300 && page.status < 400) {
      std::string location = page.Header("location");
      if (location.rfind(redirect_uri, 0) == 0) {
        if (QueryParam(location, "error")) return Unexpected("authorize refused", page);
        if (QueryParam(location, "state") != state) {
          return absl::InternalError("authorize: the redirect's state is not ours");
        }
        if (QueryParam(location, "iss") != issuer_) {
          return absl::InternalError("authorize: the redirect's iss is not the issuer");
        }
        auto code = QueryParam(location, "code");
        if (!code || code->empty()) return absl::InternalError("authorize: no code");
        return *code;
      }
      if (location.rfind("/", 0) == 0) location = issuer_ + location;
      if (location.rfind(issuer_ + "/", 0) != 0) return Unexpected("authorize: off the hub", page);
      at = location;
      page = http_.Get(location);
      continue;
    }
    if (page.status != 200) return Unexpected("authorize", page);
    std::vector<std::pair<std::string, std::string>> fields;
    std::optional<HtmlForm> form = FindForm(page.body, "name=\"api_key\"");
    if (form.has_value()) {
      for (const auto& [name, value] : form->inputs) {
        if (name != "api_key") fields.emplace_back(name, value);
      }
      fields.emplace_back("api_key", api_key);
    } else if ((form = FindForm(page.body, "value=\"allow\"")).has_value()) {
      for (const auto& [name, value] : form->inputs) fields.emplace_back(name, value);
      fields.emplace_back("decision", "allow");
    } else {
      return Unexpected("authorize: neither a key form nor a consent form", page);
    }
    std::string action = form->action.empty() ? at : form->action;
    if (action.rfind("/", 0) == 0) action = issuer_ + action;
    at = action;
    page = http_.Post(action, FormEncode(fields), "application/x-www-form-urlencoded",
                      {"Origin: " + issuer_});
  }
  return absl::InternalError("authorize: more than 10 steps");
}

HttpResult OAuthHttpClient::TokenRequest(
    const std::vector<std::pair<std::string, std::string>>& fields) {
  return http_.Post(issuer_ + "/token", FormEncode(fields), "application/x-www-form-urlencoded");
}

absl::StatusOr<OAuthTokens> OAuthHttpClient::ExchangeCode(const std::string& client_id,
                                                          const std::string& code,
                                                          const std::string& redirect_uri,
                                                          const std::string& verifier,
                                                          std::optional<std::string> resource) {
  std::vector<std::pair<std::string, std::string>> fields = {{"grant_type", "authorization_code"},
                                                             {"code", code},
                                                             {"redirect_uri", redirect_uri},
                                                             {"code_verifier", verifier},
                                                             {"client_id", client_id}};
  if (resource.has_value()) fields.emplace_back("resource", *resource);
  return TokensOf(TokenRequest(fields));
}

absl::StatusOr<OAuthTokens> OAuthHttpClient::Refresh(const std::string& client_id,
                                                     const std::string& refresh_token) {
  return TokensOf(TokenRequest({{"grant_type", "refresh_token"},
                                {"refresh_token", refresh_token},
                                {"client_id", client_id}}));
}

std::string OAuthErrorOf(const HttpResult& result) {
  const json body = json::parse(result.body, nullptr, false);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_string()) return "";
  return body["error"].get<std::string>();
}

McpHttpSession::McpHttpSession(std::string url, std::string bearer)
    : url_(std::move(url)), bearer_(std::move(bearer)) {}

std::vector<std::string> McpHttpSession::Headers() const {
  std::vector<std::string> headers = {"Accept: application/json, text/event-stream"};
  if (!bearer_.empty()) headers.push_back("Authorization: Bearer " + bearer_);
  if (!session_.empty()) {
    headers.push_back("Mcp-Session-Id: " + session_);
    headers.push_back("MCP-Protocol-Version: 2025-11-25");
  }
  return headers;
}

HttpResult McpHttpSession::Initialize() {
  HttpResult result = http_.Post(url_,
                                 R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":)"
                                 R"({"protocolVersion":"2025-11-25","capabilities":{},)"
                                 R"("clientInfo":{"name":"plain-http","version":"1"}}})",
                                 "application/json", Headers());
  if (result.status != 200) return result;
  session_ = result.Header("mcp-session-id");
  const HttpResult initialized =
      http_.Post(url_, R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                 "application/json", Headers());
  if (initialized.status != 202 && initialized.status != 200) return initialized;
  return result;
}

HttpResult McpHttpSession::Call(const std::string& tool, std::string_view arguments_json) {
  const std::string request = R"({"jsonrpc":"2.0","id":)" + std::to_string(next_id_++) +
                              R"(,"method":"tools/call","params":{"name":)" + json(tool).dump() +
                              R"(,"arguments":)" + std::string(arguments_json) + "}}";
  return http_.Post(url_, request, "application/json", Headers());
}

absl::StatusOr<std::string> McpHttpSession::ResultOf(const HttpResult& response) {
  if (response.status != 200) return Unexpected("MCP", response);
  std::string text = response.body;
  if (text.empty() || text.front() != '{') {
    const std::size_t data = text.rfind("data: ");
    if (data == std::string::npos) return Unexpected("MCP: no data line", response);
    text = text.substr(data + 6, text.find('\n', data) - data - 6);
  }
  const json reply = json::parse(text, nullptr, false);
  if (!reply.is_object() || !reply.contains("result")) return Unexpected("MCP", response);
  return reply["result"].dump();
}

}  // namespace llmbox::testing
