// The OAuth authorize page (hub/oauth/authorize_page.h) driven through Handle with plain
// requests: a real SQLite store, the real API key authenticator, client registry and token
// service, a fake OIDC client and the fake clock. Each attack on the browser flow is a test:
// an open redirector, PKCE downgrades, another resource, cross-site and cross-browser posts,
// replays, guessed and expired requests, key brute force, hostile client names, and secrets
// that must never reach a page or a log line.
//
// Tests tagged only [oauth][authorize] need the oauth-clients and oauth-tokens branches
// (dynamic registration, loopback port matching, code exchange): hidden until the merge, when
// their tags become [oauth][authorize].
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/secrets.h"
#include "hub/activation/page_chrome.h"
#include "hub/activation/session_cookie.h"
#include "hub/auth/api_key_auth.h"
#include "hub/oauth/authorize_page.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/tokens.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/json_lines.h"
#include "tests/support/log_capture.h"
#include "tests/support/page_reply.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::oauth {
namespace {

using namespace std::chrono_literals;
using activation::FormEncode;
using activation::FormField;

constexpr char kIssuer[] = "https://hub.example.com";
constexpr char kKey[] = "llmbox_alice-key-0123456789abcdefghijklmnopqrstuv";
constexpr char kAdminKey[] = "llmbox_root-key-0123456789abcdefghijklmnopqrstuvw";
constexpr char kRedirect[] = "https://claude.ai/api/mcp/auth_callback";
constexpr char kClientId[] = "claude-web";
constexpr char kVerifier[] = "a-verifier-of-forty-three-or-more-characters-0123456789";
constexpr char kOidcIssuer[] = "https://idp.example.com";

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A CIMD fetcher that is never reached (the tests name pre-registered clients).
class NoFetcher final : public CimdFetcher {
 public:
  absl::StatusOr<std::string> Fetch(const std::string&) override {
    return absl::UnavailableError("no fetches in this test");
  }
};

// The activation module's OIDC client, as the authorize page sees it.
class FakeOidc final : public activation::OidcClient {
 public:
  absl::StatusOr<activation::LoginStart> BeginLogin(
      std::string return_to, std::string_view client,
      activation::LoginPool pool = activation::LoginPool::kActivation) override {
    if (!begin_error.ok()) return begin_error;
    this->return_to = std::move(return_to);
    this->client = std::string(client);
    this->pool = pool;
    return activation::LoginStart{.authorize_url = "https://idp.example.com/authorize?state=s1",
                                  .state = "s1"};
  }
  absl::StatusOr<activation::SignedIn> CompleteLogin(std::string_view, std::string_view) override {
    return absl::UnimplementedError("the activation page's callback is tested there");
  }
  std::string return_to;
  std::string client;
  std::optional<activation::LoginPool> pool;
  absl::Status begin_error;
};

using Reply = testing::PageReply;

// The `name` parameter of a redirect's Location query, decoded.
std::string LocationParam(const Reply& reply, const std::string& name) {
  const std::string location = reply.Header("Location");
  const auto q = location.find('?');
  return q == std::string::npos ? "" : FormField(location.substr(q + 1), name);
}

// An authorize request's parameters; a nullopt value leaves the parameter out.
using Params = std::vector<std::pair<std::string, std::optional<std::string>>>;

Params GoodParams() {
  return {{"response_type", "code"},
          {"client_id", kClientId},
          {"redirect_uri", kRedirect},
          {"code_challenge", common::Base64UrlEncode(common::Sha256(kVerifier))},
          {"code_challenge_method", "S256"},
          {"state", "st-123"},
          {"scope", "llmbox"},
          {"resource", kIssuer}};
}

Params With(Params params, const std::string& name, std::optional<std::string> value) {
  bool found = false;
  for (auto& [key, v] : params) {
    if (key == name) {
      v = value;
      found = true;
    }
  }
  if (!found) params.emplace_back(name, std::move(value));
  return params;
}

std::string Query(const Params& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (!value) continue;
    out += (out.empty() ? "" : "&") + name + "=" + FormEncode(*value);
  }
  return out;
}

struct Fixture {
  explicit Fixture(SignInMode mode = SignInMode::kApiKey, std::string issuer = kIssuer,
                   std::string client_name = "Claude")
      : dir("oauth-authorize") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    REQUIRE(db->InsertApiKey({.name = "alice", .hash = common::Sha256Hex(kKey)}).ok());
    REQUIRE(db->InsertApiKey({.name = "root", .hash = common::Sha256Hex(kAdminKey), .admin = true})
                .ok());
    options.enabled = true;
    options.issuer = std::move(issuer);
    options.sign_in = mode;
    options.allowed_redirect_uris = {kRedirect, "https://claude.ai/cb?tenant=1"};
    options.clients = {{.client_id = kClientId,
                        .name = std::move(client_name),
                        .redirect_uris = {kRedirect, "https://claude.ai/cb?tenant=1"}}};
    api_keys = std::make_unique<auth::ApiKeyAuthenticator>(*db);
    Rebuild();
  }

  // Builds the registry, token service and page again from `options` and the limits.
  void Rebuild() {
    page.reset();
    clients = std::make_unique<ClientRegistry>(*db, fetcher, clock, options);
    tokens = std::make_unique<TokenService>(*db, clock, options);
    page = std::make_unique<AuthorizePage>(
        options,
        AuthorizePageDeps{.clients = clients.get(),
                          .tokens = tokens.get(),
                          .oidc = &oidc,
                          .sessions = &sessions,
                          .oidc_issuer = kOidcIssuer,
                          .api_keys = api_keys.get(),
                          .csrf_key = std::string(32, 'c'),
                          .max_key_attempts_per_address = max_key_attempts,
                          .max_pending_requests = max_pending,
                          .max_pending_requests_per_address = max_pending_per_address,
                          .audit = audit},
        clock);
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& query = "",
             const std::string& cookie = "", const std::string& body = "",
             const std::string& address = "192.0.2.7") {
    Reply reply =
        testing::Ask(*page, testing::BrowserRequest(method, path, query, cookie, body, address));
    REQUIRE(reply.status != 0);
    replies.push_back(reply);
    return reply;
  }

  // A browser part-way through the flow.
  struct Browser {
    std::string cookie;   // "llmbox_authorize=..."
    std::string request;  // the pending request's id
    std::string csrf;     // the current form's token
  };

  static std::string Hidden(const Reply& reply, const std::string& name) {
    std::smatch m;
    const std::regex field("name=\"" + name + "\" value=\"([^\"]+)\"");
    if (!std::regex_search(reply.body, m, field)) return "";
    return m[1];
  }

  // GET /authorize; the sign-in form's browser (API-key mode).
  Browser Start(const Params& params = GoodParams(), const std::string& cookie = "",
                const std::string& address = "192.0.2.7") {
    auto got = Call("GET", "/authorize", Query(params), cookie, "", address);
    REQUIRE(got.status == 200);
    Browser browser;
    for (const auto& set : got.Headers("Set-Cookie")) {
      if (set.rfind("llmbox_authorize=", 0) == 0) browser.cookie = set.substr(0, set.find(';'));
    }
    REQUIRE_FALSE(browser.cookie.empty());
    browser.request = Hidden(got, "request");
    browser.csrf = Hidden(got, "csrf");
    REQUIRE(browser.request.size() == 43);
    return browser;
  }

  Reply SignIn(const Browser& b, const std::string& key, const std::string& address = "192.0.2.7") {
    return Call(
        "POST", "/authorize/sign-in", "", b.cookie,
        "request=" + b.request + "&csrf=" + FormEncode(b.csrf) + "&api_key=" + FormEncode(key),
        address);
  }

  // Signs in with `key` and opens the consent page; the browser's consent form token.
  Browser SignedIn(const std::string& key = kKey) {
    Browser b = Start();
    auto signed_in = SignIn(b, key);
    REQUIRE(signed_in.status == 303);
    REQUIRE(signed_in.Header("Location") == "/authorize/continue?request=" + b.request);
    auto consent = Call("GET", "/authorize/continue", "request=" + b.request, b.cookie);
    REQUIRE(consent.status == 200);
    REQUIRE(Has(consent.body, "data-state=\"consent\""));
    b.csrf = Hidden(consent, "csrf");
    REQUIRE_FALSE(b.csrf.empty());
    return b;
  }

  Reply Answer(const Browser& b, const std::string& decision, const std::string& cookie = "") {
    return Call("POST", "/authorize/consent", "", cookie.empty() ? b.cookie : cookie,
                "request=" + b.request + "&csrf=" + FormEncode(b.csrf) + "&decision=" + decision);
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeClock clock;
  NoFetcher fetcher;
  FakeOidc oidc;
  activation::SessionCookie sessions{std::string(32, 's'), 3600s, clock};
  OAuthOptions options;
  int max_key_attempts = 30;
  std::size_t max_pending = 10'000;
  std::size_t max_pending_per_address = 20;
  audit::AuditLog* audit = nullptr;  // where consents are recorded (Rebuild)
  std::unique_ptr<ClientRegistry> clients;
  std::unique_ptr<TokenService> tokens;
  std::unique_ptr<auth::ApiKeyAuthenticator> api_keys;
  std::unique_ptr<AuthorizePage> page;
  std::vector<Reply> replies;  // every answer, for the tests of what never appears
};

void CheckSecurityHeaders(const Reply& reply) {
  CHECK(reply.Header("Cache-Control") == "no-store");
  CHECK(reply.Header("Referrer-Policy") == "no-referrer");
  CHECK(reply.Header("X-Content-Type-Options") == "nosniff");
  CHECK(reply.Header("X-Frame-Options") == "DENY");
  CHECK(Has(reply.Header("Content-Security-Policy"), "frame-ancestors 'none'"));
  CHECK(Has(reply.Header("Content-Security-Policy"), "default-src 'self'"));
}

// A refusal by redirect: back to the registered redirect URI with `error`, the state, iss.
void CheckRedirectError(const Reply& reply, const std::string& error,
                        const std::string& state = "st-123") {
  CHECK(reply.status == 303);
  CHECK(reply.Header("Location").rfind(std::string(kRedirect) + "?error=", 0) == 0);
  CHECK(LocationParam(reply, "error") == error);
  CHECK_FALSE(LocationParam(reply, "error_description").empty());
  CHECK(LocationParam(reply, "state") == state);
  CHECK(LocationParam(reply, "iss") == kIssuer);
  CHECK(LocationParam(reply, "code").empty());
}

// A refusal by page: never a redirect (no open redirector), nothing for the client.
void CheckErrorPage(const Reply& reply) {
  CHECK(reply.status == 400);
  CHECK(reply.Header("Location").empty());
  CHECK(Has(reply.body, "data-state=\"error\""));
  CheckSecurityHeaders(reply);
}

TEST_CASE("an API-key sign-in and Allow send the browser back with a code, the state and iss",
          "[oauth][authorize]") {
  Fixture f;
  auto start = f.Call("GET", "/authorize", Query(GoodParams()));
  REQUIRE(start.status == 200);
  CHECK(Has(start.body, "data-state=\"signin\""));
  CHECK(Has(start.body, "Sign in to connect <strong class=\"client-name\">Claude</strong>"));
  CHECK(Has(start.body, "type=\"password\" id=\"api_key\" name=\"api_key\""));
  CHECK(Has(start.body, "action=\"/authorize/sign-in\""));
  CHECK(Has(start.body, "<link rel=\"stylesheet\" href=\"/assets/activation.css\">"));
  CheckSecurityHeaders(start);
  CHECK(Has(start.Header("Content-Security-Policy"), "form-action 'self';"));
  const auto cookies = start.Headers("Set-Cookie");
  REQUIRE(cookies.size() == 1);
  CHECK(std::regex_match(cookies[0],
                         std::regex("llmbox_authorize=[A-Za-z0-9_-]{43}\\.[A-Za-z0-9_-]{43}; "
                                    "Path=/authorize; "
                                    "Max-Age=600; HttpOnly; SameSite=Lax; Secure")));

  Fixture::Browser b = f.SignedIn();
  auto consent = f.replies.back();
  CheckSecurityHeaders(consent);
  // The form's answer is a redirect to the client: form-action must allow its origin.
  CHECK(Has(consent.Header("Content-Security-Policy"), "form-action 'self' https://claude.ai;"));
  CHECK(Has(consent.body, "Allow <strong class=\"client-name\">Claude</strong> to use llmbox?"));
  CHECK(Has(consent.body, "<span class=\"host\">claude.ai</span>"));
  CHECK(Has(consent.body, "create, use and destroy your llmbox boxes as alice"));
  CHECK(Has(consent.body, "registered by this hub&#39;s operator"));
  CHECK(Has(consent.body, "Signed in as <strong>alice</strong>"));
  CHECK(Has(consent.body, "name=\"decision\" value=\"allow\""));
  CHECK(Has(consent.body, "name=\"decision\" value=\"deny\""));
  CHECK_FALSE(Has(consent.body, "You are an admin"));

  auto allowed = f.Answer(b, "allow");
  CHECK(allowed.status == 303);
  CheckSecurityHeaders(allowed);
  const std::string location = allowed.Header("Location");
  CHECK(location.rfind(std::string(kRedirect) + "?code=lbac_", 0) == 0);
  CHECK(LocationParam(allowed, "state") == "st-123");
  CHECK(LocationParam(allowed, "iss") == kIssuer);
  CHECK(Has(location, "&iss=https%3A%2F%2Fhub.example.com"));
  CHECK(LocationParam(allowed, "error").empty());

  // The request is consumed: the same answer again gives no second code.
  auto again = f.Answer(b, "allow");
  CHECK(again.status == 400);
  CHECK(again.Header("Location").empty());
}

TEST_CASE("an admin key's consent page says the app will act on every person's boxes",
          "[oauth][authorize]") {
  Fixture f;
  f.SignedIn(kAdminKey);
  CHECK(Has(f.replies.back().body, "as root"));
  CHECK(Has(f.replies.back().body, "You are an admin"));
}

TEST_CASE("Deny sends error=access_denied with the state and consumes the request",
          "[oauth][authorize]") {
  Fixture f;
  Fixture::Browser b = f.SignedIn();
  auto denied = f.Answer(b, "deny");
  CheckRedirectError(denied, "access_denied");
  auto again = f.Answer(b, "allow");
  CHECK(again.status == 400);
  CHECK(again.Header("Location").empty());
}

TEST_CASE("consents are audited with the person and the client and never the code or the key",
          "[oauth][authorize][audit]") {
  Fixture f;
  const auto path = f.dir.path() / "audit.log";
  audit::AuditLog log({.path = path.string()}, f.clock);
  f.audit = &log;
  f.Rebuild();
  auto allowed = f.Answer(f.SignedIn(), "allow");
  REQUIRE(allowed.status == 303);
  const std::string code = LocationParam(allowed, "code");
  REQUIRE_FALSE(code.empty());
  CHECK(f.Answer(f.SignedIn(kAdminKey), "deny").status == 303);

  const auto records = testing::ReadJsonLines(path);
  REQUIRE(records.size() == 2);
  for (const auto& record : records) {
    CHECK(record["event"] == "oauth.consent");
    CHECK(record["client"] == "192.0.2.7");
    CHECK(record["client_id"] == kClientId);
    CHECK(record["client_name"] == "Claude");
    CHECK(record["outcome"] == "ok");
  }
  CHECK(records[0]["principal"] == "key:alice");
  CHECK(records[0]["decision"] == "allow");
  CHECK(records[1]["principal"] == "key:root");
  CHECK(records[1]["decision"] == "deny");
  const std::string text = common::ReadSmallFile(path.string()).value();
  for (const std::string& secret : {code, std::string(kKey), std::string(kAdminKey),
                                    std::string("st-123"), std::string("code_challenge")}) {
    INFO(secret);
    CHECK_FALSE(Has(text, secret));
  }
}

TEST_CASE("an unknown client or an unregistered redirect URI gets a page, never a redirect",
          "[oauth][authorize]") {
  Fixture f;
  const std::string evil = "https://evil.example/steal";
  CheckErrorPage(f.Call("GET", "/authorize", Query(With(GoodParams(), "client_id", "nobody"))));
  CheckErrorPage(f.Call("GET", "/authorize", Query(With(GoodParams(), "client_id", std::nullopt))));
  CheckErrorPage(f.Call("GET", "/authorize", Query(With(GoodParams(), "redirect_uri", evil))));
  // One character off, a trailing slash, another scheme, a query added: all unregistered.
  for (const std::string uri :
       {"https://claude.ai/api/mcp/auth_callbacK", "https://claude.ai/api/mcp/auth_callback/",
        "http://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback?x=1",
        "https://claude.ai.evil.example/api/mcp/auth_callback"}) {
    INFO(uri);
    CheckErrorPage(f.Call("GET", "/authorize", Query(With(GoodParams(), "redirect_uri", uri))));
  }
  CheckErrorPage(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "redirect_uri", std::nullopt))));
  // Sent twice, the second naming elsewhere: ambiguous, so refused without a redirect.
  CheckErrorPage(
      f.Call("GET", "/authorize", Query(GoodParams()) + "&redirect_uri=" + FormEncode(evil)));
  CheckErrorPage(f.Call("GET", "/authorize", Query(GoodParams()) + "&client_id=other"));
  // Even when the rest of the request is wrong too, the page comes first.
  auto page = f.Call(
      "GET", "/authorize",
      Query(With(With(GoodParams(), "redirect_uri", evil), "code_challenge_method", "plain")));
  CheckErrorPage(page);
  CHECK_FALSE(Has(page.body, "evil.example"));
}

TEST_CASE("PKCE missing, plain or malformed is refused by a redirect with invalid_request",
          "[oauth][authorize]") {
  Fixture f;
  const std::string challenge = common::Base64UrlEncode(common::Sha256(kVerifier));
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "code_challenge", std::nullopt))),
      "invalid_request");
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "code_challenge_method", std::nullopt))),
      "invalid_request");
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "code_challenge_method", "plain"))),
      "invalid_request");
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "code_challenge_method", "s256"))),
      "invalid_request");
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "code_challenge", challenge.substr(1)))),
      "invalid_request");
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "code_challenge", challenge + "="))),
      "invalid_request");
  CheckRedirectError(f.Call("GET", "/authorize",
                            Query(With(GoodParams(), "code_challenge", "+" + challenge.substr(1)))),
                     "invalid_request");
  CheckRedirectError(f.Call("GET", "/authorize", Query(GoodParams()) + "&code_challenge=x"),
                     "invalid_request");
  CHECK(f.Call("GET", "/authorize", Query(GoodParams())).status == 200);
}

TEST_CASE("a resource other than this hub is invalid_target, the hub's own in any spelling is not",
          "[oauth][authorize]") {
  Fixture f;
  for (const std::string other :
       {"https://other.example", "https://hub.example.com.evil.example", "http://hub.example.com",
        "https://hub.example.com/mcp", "https://hub.example.com:8443", ""}) {
    INFO(other);
    CheckRedirectError(f.Call("GET", "/authorize", Query(With(GoodParams(), "resource", other))),
                       "invalid_target");
  }
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(GoodParams()) + "&resource=" + FormEncode(kIssuer)),
      "invalid_target");
  for (const std::optional<std::string>& same :
       {std::optional<std::string>(kIssuer), std::optional<std::string>("https://hub.example.com/"),
        std::optional<std::string>("HTTPS://Hub.Example.com"), std::optional<std::string>()}) {
    INFO(same.value_or("(absent)"));
    CHECK(f.Call("GET", "/authorize", Query(With(GoodParams(), "resource", same))).status == 200);
  }
  SECTION("an issuer configured with a trailing slash is the same resource") {
    f.options.issuer = "https://hub.example.com/";
    f.Rebuild();
    CHECK(f.Call("GET", "/authorize", Query(GoodParams())).status == 200);
  }
}

TEST_CASE("a scope beyond llmbox is invalid_scope, another response_type is unsupported",
          "[oauth][authorize]") {
  Fixture f;
  CheckRedirectError(f.Call("GET", "/authorize", Query(With(GoodParams(), "scope", "admin"))),
                     "invalid_scope");
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "scope", "llmbox offline_access"))),
      "invalid_scope");
  CHECK(f.Call("GET", "/authorize", Query(With(GoodParams(), "scope", std::nullopt))).status ==
        200);
  CHECK(f.Call("GET", "/authorize", Query(With(GoodParams(), "scope", "llmbox  llmbox"))).status ==
        200);
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "response_type", "token"))),
      "unsupported_response_type");
  CheckRedirectError(
      f.Call("GET", "/authorize", Query(With(GoodParams(), "response_type", std::nullopt))),
      "invalid_request");
}

TEST_CASE("the state is echoed exactly, URL-encoded, on success and on error",
          "[oauth][authorize]") {
  Fixture f;
  const std::string state = "a b&c=d/\xC3\xA9+%2F?#<x>";
  auto refused =
      f.Call("GET", "/authorize", Query(With(With(GoodParams(), "state", state), "scope", "x")));
  CheckRedirectError(refused, "invalid_scope", state);
  CHECK(Has(refused.Header("Location"), "&state=" + FormEncode(state) + "&"));

  // A redirect URI with its own query keeps it.
  Fixture::Browser b = f.Start(
      With(With(GoodParams(), "state", state), "redirect_uri", "https://claude.ai/cb?tenant=1"));
  REQUIRE(f.SignIn(b, kKey).status == 303);
  b.csrf = Fixture::Hidden(f.Call("GET", "/authorize/continue", "request=" + b.request, b.cookie),
                           "csrf");
  auto allowed = f.Answer(b, "allow");
  const std::string location = allowed.Header("Location");
  CHECK(location.rfind("https://claude.ai/cb?tenant=1&code=lbac_", 0) == 0);
  CHECK(Has(location, "&state=" + FormEncode(state) + "&iss="));
  CHECK(LocationParam(allowed, "state") == state);

  SECTION("without a state, none comes back") {
    auto none = f.Call("GET", "/authorize",
                       Query(With(With(GoodParams(), "state", std::nullopt), "scope", "x")));
    CHECK(none.status == 303);
    CHECK_FALSE(Has(none.Header("Location"), "state="));
  }
  SECTION("an oversized state is refused and not echoed") {
    auto big =
        f.Call("GET", "/authorize", Query(With(GoodParams(), "state", std::string(2000, 'x'))));
    CHECK(big.status == 303);
    CHECK(LocationParam(big, "error") == "invalid_request");
    CHECK_FALSE(Has(big.Header("Location"), "state="));
  }
}

TEST_CASE("a consent POST without, with a wrong or with a replayed CSRF token issues no code",
          "[oauth][authorize]") {
  Fixture f;
  Fixture::Browser b = f.SignedIn();
  auto post = [&](const std::string& body) {
    return f.Call("POST", "/authorize/consent", "", b.cookie, body);
  };
  auto missing = post("request=" + b.request + "&decision=allow");
  CHECK(missing.status == 403);
  CHECK(missing.Header("Location").empty());
  auto wrong = post("request=" + b.request + "&decision=allow&csrf=" +
                    FormEncode(b.csrf.substr(0, b.csrf.size() - 2) + "xx"));
  CHECK(wrong.status == 403);
  CHECK(wrong.Header("Location").empty());
  // A token from another request of the same browser does not answer this one.
  Fixture::Browser other = f.Start(GoodParams(), b.cookie);
  auto crossed = post("request=" + b.request + "&decision=allow&csrf=" + FormEncode(other.csrf));
  CHECK(crossed.status == 403);
  CHECK(crossed.Header("Location").empty());
  // The real token still works once; its replay (even for a new request) does not.
  auto allowed = f.Answer(b, "allow");
  CHECK(allowed.status == 303);
  CHECK(Has(allowed.Header("Location"), "code=lbac_"));
  auto replayed = f.Answer(b, "allow");
  CHECK(replayed.status == 400);
  CHECK(replayed.Header("Location").empty());
  SECTION("a replayed sign-in form token is refused") {
    Fixture::Browser c = f.Start();
    REQUIRE(f.SignIn(c, "llmbox_wrong-key").status == 401);
    auto replay = f.SignIn(c, kKey);
    CHECK(replay.status == 403);
    CHECK(Has(replay.body, "Nothing was checked"));
  }
}

TEST_CASE("a sign-in or consent POST from another browser than the one that started is refused",
          "[oauth][authorize]") {
  Fixture f;
  Fixture::Browser b = f.SignedIn();
  // The attacker's browser has its own cookie (from its own request) but the victim's ids.
  Fixture::Browser attacker = f.Start();
  auto cross = f.Answer(b, "allow", attacker.cookie);
  CHECK(cross.status == 403);
  CHECK(Has(cross.body, "started in another browser"));
  CHECK(cross.Header("Location").empty());
  auto no_cookie =
      f.Call("POST", "/authorize/consent", "", "",
             "request=" + b.request + "&csrf=" + FormEncode(b.csrf) + "&decision=allow");
  CHECK(no_cookie.status == 403);
  CHECK(no_cookie.Header("Location").empty());
  auto peek = f.Call("GET", "/authorize/continue", "request=" + b.request, attacker.cookie);
  CHECK(peek.status == 403);
  CHECK_FALSE(Has(peek.body, "csrf"));
  Fixture::Browser fresh = f.Start();
  Fixture::Browser stolen = fresh;
  stolen.cookie = attacker.cookie;
  CHECK(f.SignIn(stolen, kKey).status == 403);
  // The victim's own browser still answers its request.
  CHECK(Has(f.Answer(b, "allow").Header("Location"), "code=lbac_"));
}

TEST_CASE("a guessed or expired request id is refused", "[oauth][authorize]") {
  Fixture f;
  Fixture::Browser b = f.SignedIn();
  Fixture::Browser guessed = b;
  guessed.request = std::string(43, 'A');
  CHECK(f.Answer(guessed, "allow").status == 400);
  guessed.request = "../../etc";
  CHECK(f.Answer(guessed, "allow").status == 400);
  CHECK(f.Call("GET", "/authorize/continue", "request=" + std::string(43, 'B'), b.cookie).status ==
        400);
  f.clock.Advance(f.options.authorize_ttl);
  auto expired = f.Answer(b, "allow");
  CHECK(expired.status == 400);
  CHECK(Has(expired.body, "expired"));
  CHECK(expired.Header("Location").empty());
}

TEST_CASE("API key guessing from one address hits the rate limit, a malformed key costs nothing",
          "[oauth][authorize]") {
  Fixture f;
  auto attempt = [&](const std::string& key, const std::string& address = "192.0.2.7") {
    Fixture::Browser b = f.Start(GoodParams(), "", address);
    return f.SignIn(b, key, address);
  };
  for (const std::string& malformed :
       std::vector<std::string>{"", "   ", "two words", std::string(600, 'k'), "tab\tkey"}) {
    INFO(malformed);
    CHECK(attempt(malformed).status == 400);
  }
  // A correct sign-in costs nothing either.
  CHECK(attempt(kKey).status == 303);
  for (int i = 0; i < f.max_key_attempts; ++i) {
    auto refused = attempt("llmbox_guess-" + std::to_string(i));
    CHECK(refused.status == 401);
    CHECK(Has(refused.body, "That key is not valid"));
  }
  auto limited = attempt("llmbox_guess-last");
  CHECK(limited.status == 429);
  CHECK_FALSE(limited.Header("Retry-After").empty());
  CHECK(Has(limited.body, "Too many sign-in attempts"));
  // While limited, even the right key is not checked.
  CHECK(attempt(kKey).status == 429);
  // Another address is not.
  CHECK(attempt(kKey, "198.51.100.9").status == 303);
  f.clock.Advance(15min);
  CHECK(attempt(kKey).status == 303);
}

TEST_CASE("the API key never appears in an answer or a log line, nor the code in a log line",
          "[oauth][authorize]") {
  testing::LogCapture logs;
  Fixture f;
  const std::string wrong = "llmbox_wrong-but-secret-0123456789";
  Fixture::Browser first = f.Start();
  CHECK(f.SignIn(first, wrong).status == 401);
  CHECK(f.SignIn(first, "not a key " + wrong).status == 400);
  Fixture::Browser b = f.SignedIn();
  auto allowed = f.Answer(b, "allow");
  const std::string code = LocationParam(allowed, "code");
  REQUIRE(code.rfind("lbac_", 0) == 0);
  for (const auto& reply : f.replies) {
    CHECK_FALSE(Has(reply.body, kKey));
    CHECK_FALSE(Has(reply.body, wrong));
    CHECK_FALSE(Has(reply.body, code));
    for (const auto& [name, value] : reply.headers) {
      CHECK_FALSE(Has(value, kKey));
      CHECK_FALSE(Has(value, wrong));
    }
  }
  const std::string text = logs.Text();
  CHECK(Has(text, "key:alice allowed client"));
  CHECK_FALSE(Has(text, kKey));
  CHECK_FALSE(Has(text, wrong));
  CHECK_FALSE(Has(text, code));
  CHECK_FALSE(Has(text, code.substr(5)));
  CHECK_FALSE(Has(text, "st-123"));
  CHECK_FALSE(Has(text, b.request));
}

TEST_CASE("a client_name with HTML or script is escaped on every page", "[oauth][authorize]") {
  const std::string hostile = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>";
  Fixture f(SignInMode::kApiKey, kIssuer, hostile);
  Fixture::Browser b = f.SignedIn();
  const std::string escaped =
      "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;&lt;img src=x onerror=alert(2)&gt;";
  bool shown = false;
  for (const auto& reply : f.replies) {
    CHECK_FALSE(Has(reply.body, "<script>alert"));
    CHECK_FALSE(Has(reply.body, "<img"));
    shown = shown || Has(reply.body, escaped);
  }
  CHECK(shown);
  // The redirect host is on the page whatever the name claims.
  CHECK(Has(f.replies.back().body, "<span class=\"host\">claude.ai</span>"));
}

TEST_CASE(
    "with OIDC sign-in a browser goes to the provider and comes back to consent as "
    "oidc:<issuer>#<subject>",
    "[oauth][authorize]") {
  testing::LogCapture logs;
  Fixture f(SignInMode::kOidc);
  auto start = f.Call("GET", "/authorize", Query(GoodParams()));
  REQUIRE(start.status == 303);
  CHECK(start.Header("Location") == "https://idp.example.com/authorize?state=s1");
  CheckSecurityHeaders(start);
  std::string browser;
  bool state_cookie = false;
  for (const auto& set : start.Headers("Set-Cookie")) {
    if (set.rfind("llmbox_authorize=", 0) == 0) browser = set.substr(0, set.find(';'));
    if (set ==
        "llmbox_oidc_state=s1; Path=/auth/oidc/; Max-Age=600; HttpOnly; SameSite=Lax; Secure") {
      state_cookie = true;
    }
  }
  CHECK(state_cookie);
  REQUIRE_FALSE(browser.empty());
  const std::string prefix = "/authorize/continue?request=";
  REQUIRE(f.oidc.return_to.rfind(prefix, 0) == 0);
  const std::string id = f.oidc.return_to.substr(prefix.size());
  CHECK(id.size() == 43);
  CHECK(f.oidc.client == "192.0.2.7");
  CHECK(f.oidc.pool == activation::LoginPool::kOAuth);  // never the activation links' pool

  // The activation page's callback set the session (tested there); back at continue:
  const std::string session = std::string(activation::SessionCookie::kName) + "=" +
                              f.sessions.Issue("alice@example.com", "user-1");
  SECTION("without a session, continue refuses") {
    auto refused = f.Call("GET", "/authorize/continue", "request=" + id, browser);
    CHECK(refused.status == 403);
    CHECK_FALSE(Has(refused.body, "csrf"));
  }
  SECTION("with it, the consent page, then a code") {
    auto consent = f.Call("GET", "/authorize/continue", "request=" + id, browser + "; " + session);
    REQUIRE(consent.status == 200);
    CHECK(Has(consent.body, "create, use and destroy your llmbox boxes as alice@example.com"));
    CHECK(Has(consent.body, "Signed in as <strong>alice@example.com</strong>"));
    Fixture::Browser b{.cookie = browser, .request = id, .csrf = Fixture::Hidden(consent, "csrf")};
    auto allowed = f.Answer(b, "allow");
    CHECK(Has(allowed.Header("Location"), "code=lbac_"));
    CHECK(Has(logs.Text(), "oidc:https://idp.example.com#user-1 allowed client"));
  }
  SECTION("a session from another key (forged) is no session") {
    activation::SessionCookie forged(std::string(32, 'f'), 3600s, f.clock);
    auto refused = f.Call("GET", "/authorize/continue", "request=" + id,
                          browser + "; llmbox_session=" + forged.Issue("eve@example.com", "eve"));
    CHECK(refused.status == 403);
  }
}

TEST_CASE("with OIDC sign-in a person already signed in skips the provider", "[oauth][authorize]") {
  Fixture f(SignInMode::kOidc);
  const std::string session = std::string(activation::SessionCookie::kName) + "=" +
                              f.sessions.Issue("bob@example.com", "user-2");
  auto consent = f.Call("GET", "/authorize", Query(GoodParams()), session);
  REQUIRE(consent.status == 200);
  CHECK(Has(consent.body, "data-state=\"consent\""));
  CHECK(Has(consent.body, "as bob@example.com"));
  CHECK(f.oidc.return_to.empty());
  SECTION("a provider that cannot start a sign-in asks for a retry") {
    f.oidc.begin_error = absl::UnavailableError("oidc: the provider is down");
    auto down = f.Call("GET", "/authorize", Query(GoodParams()));
    CHECK(down.status == 503);
    CHECK(down.Header("Location").empty());
  }
}

TEST_CASE("started requests are bounded per client address and in all", "[oauth][authorize]") {
  Fixture f;
  f.max_pending_per_address = 2;
  f.max_pending = 3;
  f.Rebuild();
  Fixture::Browser first = f.Start();
  Fixture::Browser second = f.Start();
  Fixture::Browser third = f.Start();  // pushes out this address's oldest, not anyone else's
  CHECK(f.SignIn(first, kKey).status == 400);
  CHECK(f.SignIn(second, kKey).status == 303);
  Fixture::Browser other = f.Start(GoodParams(), "", "198.51.100.1");
  auto full = f.Call("GET", "/authorize", Query(GoodParams()), "", "", "203.0.113.5");
  CheckRedirectError(full, "temporarily_unavailable");
  // Expired requests make room.
  f.clock.Advance(f.options.authorize_ttl);
  f.Start(GoodParams(), "", "203.0.113.5");
  (void)third;
  (void)other;
}

TEST_CASE("the page serves /authorize and its paths only, with the right methods",
          "[oauth][authorize]") {
  CHECK(AuthorizePage::Serves("/authorize"));
  CHECK(AuthorizePage::Serves("/authorize/consent"));
  CHECK_FALSE(AuthorizePage::Serves("/authorizex"));
  CHECK_FALSE(AuthorizePage::Serves("/"));
  Fixture f;
  CHECK(f.Call("POST", "/authorize").status == 405);
  CHECK(f.Call("GET", "/authorize/consent").status == 405);
  CHECK(f.Call("GET", "/authorize/nothing").status == 404);
  CheckSecurityHeaders(f.replies.back());
  Fixture oidc(SignInMode::kOidc);
  CHECK(oidc.Call("POST", "/authorize/sign-in", "", "", "request=x&api_key=y").status == 404);
}

TEST_CASE("the browser cookie is Secure only with an https issuer", "[oauth][authorize]") {
  Fixture f(SignInMode::kApiKey, "http://127.0.0.1:8080");
  auto start =
      f.Call("GET", "/authorize", Query(With(GoodParams(), "resource", "http://127.0.0.1:8080")));
  REQUIRE(start.status == 200);
  REQUIRE(start.Headers("Set-Cookie").size() == 1);
  CHECK_FALSE(Has(start.Headers("Set-Cookie")[0], "Secure"));
  CHECK(Has(start.Headers("Set-Cookie")[0], "HttpOnly; SameSite=Lax"));
}

TEST_CASE("a browser binding the hub did not issue is ignored and a fresh one issued",
          "[oauth][authorize][fix-tokens]") {
  Fixture f;
  auto binding = [](const Reply& reply) {
    for (const auto& set : reply.Headers("Set-Cookie")) {
      if (set.rfind("llmbox_authorize=", 0) == 0) return set.substr(0, set.find(';'));
    }
    return std::string();
  };
  // The hub's own value comes back as it is (two tabs of one browser share it).
  const Fixture::Browser own = f.Start();
  CHECK(f.Start(GoodParams(), own.cookie).cookie == own.cookie);

  // Cookie tossing: the attacker plants a value it knows in the victim's browser...
  const std::string id(43, 'A');
  const std::string other_hub =
      id + "." + common::Base64UrlEncode(common::HmacSha256(std::string(32, 'x'), id));
  const std::string tampered =
      own.cookie.substr(0, own.cookie.size() - 1) + (own.cookie.back() == 'A' ? "B" : "A");
  for (const std::string& tossed :
       {"llmbox_authorize=" + id, "llmbox_authorize=" + other_hub, tampered,
        "llmbox_authorize=" + id + "." + std::string(43, 'A')}) {
    INFO(tossed);
    auto started = f.Call("GET", "/authorize", Query(GoodParams()), tossed);
    REQUIRE(started.status == 200);
    // ...and the hub ignores it: the victim's request is bound to a fresh value of its own.
    const std::string issued = binding(started);
    REQUIRE_FALSE(issued.empty());
    CHECK(issued != tossed);
    CHECK(issued.size() == std::string("llmbox_authorize=").size() + 43 + 1 + 43);
    const Fixture::Browser attacker{.cookie = tossed,
                                    .request = Fixture::Hidden(started, "request"),
                                    .csrf = Fixture::Hidden(started, "csrf")};
    CHECK(f.SignIn(attacker, kKey).status == 403);
    const Fixture::Browser victim{
        .cookie = issued, .request = attacker.request, .csrf = attacker.csrf};
    CHECK(f.SignIn(victim, kKey).status == 303);
  }
}

TEST_CASE("a request with too many wrong keys is dead, but the right key from that address works",
          "[oauth][authorize][fix-tokens]") {
  Fixture f;
  // A shared address: someone mistypes (or guesses) ten times over two requests...
  for (int request = 0; request < 2; ++request) {
    Fixture::Browser b = f.Start();
    for (int i = 1; i <= 5; ++i) {
      auto refused = f.SignIn(b, "llmbox_wrong-" + std::to_string(i));
      if (i < 5) {
        CHECK(refused.status == 401);
        CHECK(Has(refused.body, "That key is not valid"));
        b.csrf = Fixture::Hidden(refused, "csrf");
      } else {
        CHECK(refused.status == 429);
        CHECK(Has(refused.body, "too many wrong keys"));
      }
    }
    // ...each request is dead after its five: even the right key no longer signs it in.
    auto dead = f.SignIn(b, kKey);
    CHECK(dead.status == 400);
    CHECK(Has(dead.body, "expired"));
  }
  // A new request from the same address still signs in with the right key.
  Fixture::Browser fresh = f.Start();
  CHECK(f.SignIn(fresh, kKey).status == 303);
}

// ---- After the merge of oauth-clients and oauth-tokens (hidden until then) ----

TEST_CASE("after Allow, the code exchanges for a token whose principal is the signed-in person",
          "[oauth][authorize]") {
  Fixture f;
  Fixture::Browser b = f.SignedIn();
  const std::string code = LocationParam(f.Answer(b, "allow"), "code");
  auto client = f.clients->Find(kClientId);
  REQUIRE(client.ok());
  auto issued = f.tokens->ExchangeCode(*client, code, kRedirect, kVerifier, std::nullopt);
  REQUIRE(issued.ok());
  auto who = f.tokens->Authenticate(issued->access_token);
  REQUIRE(who.ok());
  CHECK(who->id() == "key:alice");
}

TEST_CASE("a dynamically registered client is named as such on the consent page",
          "[oauth][authorize]") {
  Fixture f;
  auto registered = f.clients->Register(
      R"({"client_name":"Claude <b>","redirect_uris":["https://claude.ai/api/mcp/auth_callback"],)"
      R"("token_endpoint_auth_method":"none"})",
      "192.0.2.7");
  REQUIRE(registered.ok());
  const std::string id = nlohmann::json::parse(*registered).at("client_id").get<std::string>();
  Fixture::Browser b = f.Start(With(GoodParams(), "client_id", id));
  REQUIRE(f.SignIn(b, kKey).status == 303);
  auto consent = f.Call("GET", "/authorize/continue", "request=" + b.request, b.cookie);
  CHECK(Has(consent.body, "registered itself"));
  CHECK(Has(consent.body, "Claude &lt;b&gt;"));
}

TEST_CASE("a loopback redirect URI matches on any port and the code goes to the port presented",
          "[oauth][authorize]") {
  Fixture f;
  f.options.clients.push_back(
      {.client_id = "native", .name = "CLI", .redirect_uris = {"http://127.0.0.1/callback"}});
  f.Rebuild();
  Fixture::Browser b = f.Start(With(With(GoodParams(), "client_id", "native"), "redirect_uri",
                                    "http://127.0.0.1:53682/callback"));
  REQUIRE(f.SignIn(b, kKey).status == 303);
  auto consent = f.Call("GET", "/authorize/continue", "request=" + b.request, b.cookie);
  CHECK(
      Has(consent.Header("Content-Security-Policy"), "form-action 'self' http://127.0.0.1:53682;"));
  b.csrf = Fixture::Hidden(consent, "csrf");
  CHECK(f.Answer(b, "allow").Header("Location").rfind("http://127.0.0.1:53682/callback?code=", 0) ==
        0);
}

// The client id of a fresh dynamic registration of `redirect_uri`.
std::string RegisterDynamic(Fixture& f, const std::string& redirect_uri) {
  auto registered = f.clients->Register(
      nlohmann::json{{"redirect_uris", {redirect_uri}}, {"token_endpoint_auth_method", "none"}}
          .dump(),
      "192.0.2.99");
  REQUIRE(registered.ok());
  return nlohmann::json::parse(*registered).at("client_id").get<std::string>();
}

TEST_CASE(
    "an error found before any page goes back by redirect only to an operator-listed URI "
    "or a pre-registered client",
    "[oauth][authorize][fix-clients]") {
  // The attack: register a loopback client (anyone may), then send a person a link to
  // /authorize with a broken PKCE parameter: without this rule the hub would redirect them at
  // once, unclicked, to whatever loopback URL the attacker chose.
  Fixture f;
  const std::string loopback_id = RegisterDynamic(f, "http://127.0.0.1/callback");
  const Params loopback = With(With(GoodParams(), "client_id", loopback_id), "redirect_uri",
                               "http://127.0.0.1:8080/callback");
  for (const Params& bad :
       {With(loopback, "code_challenge_method", "plain"),
        With(loopback, "code_challenge", std::nullopt), With(loopback, "response_type", "token"),
        With(loopback, "resource", "https://other.example"), With(loopback, "scope", "admin")}) {
    auto reply = f.Call("GET", "/authorize", Query(bad));
    CheckErrorPage(reply);
  }
  CheckErrorPage(f.Call("GET", "/authorize", Query(loopback) + "&scope=llmbox"));  // twice
  CheckErrorPage(f.Call("GET", "/authorize", Query(loopback) + "&state=again"));

  // A dynamic client whose redirect the operator listed: the error goes back as before.
  const std::string listed_id = RegisterDynamic(f, kRedirect);
  CheckRedirectError(f.Call("GET", "/authorize",
                            Query(With(With(GoodParams(), "client_id", listed_id),
                                       "code_challenge_method", "plain"))),
                     "invalid_request");

  // A loopback client the operator registered: the operator vouches for it.
  f.options.clients.push_back(
      {.client_id = "native", .name = "CLI", .redirect_uris = {"http://127.0.0.1/callback"}});
  f.Rebuild();
  auto native = f.Call("GET", "/authorize",
                       Query(With(With(With(GoodParams(), "client_id", "native"), "redirect_uri",
                                       "http://127.0.0.1:53682/callback"),
                                  "code_challenge_method", "plain")));
  CHECK(native.status == 303);
  CHECK(
      native.Header("Location").rfind("http://127.0.0.1:53682/callback?error=invalid_request", 0) ==
      0);

  // A good request from the loopback dynamic client still completes with a redirect.
  Fixture::Browser b = f.Start(loopback);
  REQUIRE(f.SignIn(b, kKey).status == 303);
  auto consent = f.Call("GET", "/authorize/continue", "request=" + b.request, b.cookie);
  b.csrf = Fixture::Hidden(consent, "csrf");
  CHECK(f.Answer(b, "allow").Header("Location").rfind("http://127.0.0.1:8080/callback?code=", 0) ==
        0);
}

TEST_CASE("a full pending table answers a loopback dynamic client with a page, not a redirect",
          "[oauth][authorize][fix-clients]") {
  Fixture f;
  f.max_pending = 1;
  f.Rebuild();
  const std::string loopback_id = RegisterDynamic(f, "http://127.0.0.1/callback");
  const Params loopback = With(With(GoodParams(), "client_id", loopback_id), "redirect_uri",
                               "http://127.0.0.1:8080/callback");
  f.Start(loopback);
  auto full = f.Call("GET", "/authorize", Query(loopback), "", "", "203.0.113.5");
  CHECK(full.status == 503);
  CHECK(full.Header("Location").empty());
  CHECK(Has(full.body, "data-state=\"error\""));
}

TEST_CASE("the authorize page counts metadata document lookups against the browser's address",
          "[oauth][authorize][fix-clients]") {
  Fixture f;
  f.options.cimd_fetches_per_address = 1;
  f.Rebuild();
  auto from = [&](const std::string& client_id, const std::string& address) {
    return f.Call("GET", "/authorize", Query(With(GoodParams(), "client_id", client_id)), "", "",
                  address);
  };
  CheckErrorPage(from("https://app.example/a.json", "192.0.2.1"));  // fetched: fails
  auto limited = from("https://app.example/b.json", "192.0.2.1");
  CHECK(limited.status == 503);
  CHECK(limited.Header("Location").empty());
  CHECK(Has(limited.body, "try again in"));
  CheckErrorPage(from("https://app.example/b.json", "192.0.2.2"));
}

}  // namespace
}  // namespace llmbox::hub::oauth
