// The activation page over a real BoxRegistry, a real SQLite store and a fake spoke service (a
// real in-process gRPC server): what each state shows, the headers every answer carries, CSRF,
// rate limits, bad codes, and racing submissions. The browser test (tests/e2e) drives the
// same page through real HTTP in Chromium.
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "hub/activation/oidc.h"
#include "hub/activation/page.h"
#include "hub/activation/session_cookie.h"
#include "hub/audit/audit_log.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_box_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/recording_responder.h"
#include "tests/support/json_lines.h"
#include "tests/support/log_capture.h"
#include "tests/support/page_reply.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::activation {
namespace {

using namespace std::chrono_literals;
using testing::RecordingResponder;

// What the page answered.
using Reply = testing::PageReply;

struct Fixture {
  explicit Fixture(std::string public_url = "http://127.0.0.1:8080", PageOptions options = {})
      : dir("activation") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", cluster::MakeGrpcSpokeClient(spoke.Channel()), true);
    registry = std::make_unique<boxes::BoxRegistry>(
        *db, spokes, clock, boxes::RegistryOptions{.public_url = public_url});
    options.public_url = public_url;
    options.key = std::string(32, 'k');
    page = std::make_unique<ActivationPage>(*registry, clock, options);
  }

  // Creates a box; returns its activation token.
  std::string Create(const std::string& id) {
    auto created = registry->Create({.box_id = id, .description = "a <b>test</b> box"}, nullptr);
    REQUIRE(created.ok());
    return created->auth_url.substr(created->auth_url.rfind('/') + 1);
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& cookie = "",
             const std::string& body = "", const std::string& address = "192.0.2.7") {
    Reply reply =
        testing::Ask(*page, testing::BrowserRequest(method, path, "", cookie, body, address));
    REQUIRE(reply.status != 0);
    return reply;
  }

  // A browser's view of the page: GET, then the cookie and form token it got.
  struct Form {
    std::string cookie;
    std::string csrf;
  };
  Form Open(const std::string& token, const std::string& cookie = "") {
    auto got = Call("GET", "/auth/" + token, cookie);
    REQUIRE(got.status == 200);
    std::smatch m;
    const std::string set_cookie = got.Header("Set-Cookie");
    REQUIRE(std::regex_search(set_cookie, m, std::regex("^(llmbox_browser=[A-Za-z0-9_-]+);")));
    Form form{.cookie = m[1]};
    REQUIRE(std::regex_search(got.body, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
    form.csrf = m[1];
    return form;
  }

  Reply Post(const std::string& token, const Form& form, const std::string& code,
             const std::string& address = "192.0.2.7") {
    return Call("POST", "/auth/" + token, form.cookie, "csrf=" + form.csrf + "&code=" + code,
                address);
  }

  std::vector<std::string> Codes() {
    std::lock_guard lock(spoke.mu);
    return spoke.codes;
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeBoxService spoke;
  testing::FakeClock clock;
  boxes::SpokeDirectory spokes;
  std::unique_ptr<boxes::BoxRegistry> registry;
  std::unique_ptr<ActivationPage> page;
};

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void RequireSecurityHeaders(const Reply& r) {
  CHECK(Has(r.Header("Content-Security-Policy"), "default-src 'self'"));
  CHECK(Has(r.Header("Content-Security-Policy"), "frame-ancestors 'none'"));
  CHECK(r.Header("Referrer-Policy") == "no-referrer");
  CHECK(r.Header("X-Content-Type-Options") == "nosniff");
  CHECK(r.Header("Cache-Control") == "no-store");
}

TEST_CASE("a pending box's page shows its sign-in link, a code form and the security headers",
          "[activation]") {
  Fixture f;
  const std::string token = f.Create("demo");
  auto got = f.Call("GET", "/auth/" + token);
  REQUIRE(got.status == 200);
  RequireSecurityHeaders(got);
  CHECK(got.Header("Content-Type") == "text/html; charset=utf-8");
  CHECK(Has(got.body, "data-state=\"pending\""));
  CHECK(Has(got.body, "href=\"https://claude.ai/oauth/authorize?fake=1\""));
  CHECK(Has(got.body, ">Sign in with Claude</a>"));
  CHECK(Has(got.body, "<form class=\"code-form\" method=\"post\" action=\"/auth/" + token));
  CHECK(Has(got.body, "a &lt;b&gt;test&lt;/b&gt; box"));  // the description, escaped
  CHECK_FALSE(Has(got.body, "<b>test</b>"));
  // No inline script or style: the CSP allows same-origin files only.
  CHECK_FALSE(std::regex_search(got.body, std::regex("<script(?![^>]*\\ssrc=)")));
  CHECK_FALSE(Has(got.body, "style="));
  const std::string cookie = got.Header("Set-Cookie");
  CHECK(Has(cookie, "; Path=/auth/; HttpOnly; SameSite=Strict"));
  CHECK_FALSE(Has(cookie, "Secure"));

  SECTION("each page carries a fresh form token, for the same browser") {
    auto first = f.Open(token);
    auto second = f.Open(token, first.cookie);
    CHECK(first.csrf != second.csrf);
    CHECK(f.Call("GET", "/auth/" + token, first.cookie)
              .Header("Set-Cookie")
              .rfind(first.cookie + ";", 0) == 0);
  }
  SECTION("HEAD answers like GET") { CHECK(f.Call("HEAD", "/auth/" + token).status == 200); }
  SECTION("the status endpoint says pending, and nothing else") {
    auto status = f.Call("GET", "/auth/" + token + "/status");
    CHECK(status.status == 200);
    CHECK(status.body == "{\"state\":\"pending\"}");
    RequireSecurityHeaders(status);
  }
  SECTION("other methods are refused") {
    auto put = f.Call("PUT", "/auth/" + token);
    CHECK(put.status == 405);
    CHECK(put.Header("Allow") == "GET, HEAD, POST");
  }
}

TEST_CASE("cookies are Secure exactly when the public URL is https", "[activation]") {
  Fixture f("https://hub.example.com");
  const std::string token = f.Create("demo");
  CHECK(Has(f.Call("GET", "/auth/" + token).Header("Set-Cookie"),
            "; HttpOnly; SameSite=Strict; Secure"));
}

TEST_CASE("an authorize URL outside the trusted prefixes is never made a link", "[activation]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.authorize_url = "https://claude.ai.evil.example/oauth/authorize?x=1";
  }
  const std::string token = f.Create("demo");
  auto got = f.Call("GET", "/auth/" + token);
  CHECK(got.status == 200);
  CHECK_FALSE(Has(got.body, "evil.example"));
  CHECK_FALSE(Has(got.body, "Sign in with Claude</a>"));
  CHECK(Has(got.body, "has not given a sign-in link llmbox trusts"));
}

TEST_CASE("unknown and malformed links get a plain 404 that reveals nothing", "[activation]") {
  Fixture f;
  f.Create("demo");
  const std::string unknown(43, 'A');
  for (const std::string& path : std::vector<std::string>{
           "/auth/" + unknown, "/auth/short", "/auth/" + std::string(44, 'A'), "/auth/",
           "/auth/" + std::string(42, 'A') + "!", "/auth/" + unknown + "/status"}) {
    INFO(path);
    auto got = f.Call("GET", path);
    CHECK(got.status == 404);
    RequireSecurityHeaders(got);
    CHECK_FALSE(Has(got.body, "demo"));
    CHECK(got.Header("Set-Cookie").empty());
  }
  CHECK(f.Call("GET", "/auth/" + unknown + "/status").body == "{\"state\":\"unknown\"}");
  CHECK(f.Call("POST", "/auth/" + unknown, "", "code=abc").status == 404);
  CHECK(f.Codes().empty());
}

TEST_CASE("a good code reaches the box once and the page then shows ready with the session link",
          "[activation]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_activated(true);
    f.spoke.submit_response.set_session_url("https://claude.ai/code/session_01abc");
  }
  const std::string token = f.Create("demo");
  auto form = f.Open(token);
  auto posted = f.Post(token, form, "%20code-123%23state%0D%0A");  // pasted with spaces, CRLF
  REQUIRE(posted.status == 303);
  CHECK(posted.Header("Location") == "/auth/" + token);
  CHECK(f.Codes() == std::vector<std::string>{"code-123#state"});

  auto ready = f.Call("GET", "/auth/" + token, form.cookie);
  CHECK(ready.status == 200);
  CHECK(Has(ready.body, "data-state=\"ready\""));
  CHECK(Has(ready.body, "href=\"https://claude.ai/code/session_01abc\""));
  CHECK_FALSE(Has(ready.body, "code-form"));
  CHECK_FALSE(Has(ready.body, "code-123"));
  CHECK(f.Call("GET", "/auth/" + token + "/status").body == "{\"state\":\"ready\"}");
  // Sending the old form again (a reload, a double click) never reaches the box.
  CHECK(f.Post(token, form, "code-123").status == 403);
  CHECK(f.Codes().size() == 1);
}

TEST_CASE("a code the box refuses shows the box's own words and a fresh form, never the code",
          "[activation]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_activated(false);
    f.spoke.submit_response.set_box_error("Couldn't log in: Invalid code");
    f.spoke.submit_response.set_authorize_url("https://claude.com/cai/oauth/authorize?fresh=2");
    f.spoke.submit_response.set_attempts_remaining(4);
  }
  const std::string token = f.Create("demo");
  auto form = f.Open(token);
  REQUIRE(f.Post(token, form, "secret-code-777").status == 303);
  auto after = f.Call("GET", "/auth/" + token, form.cookie);
  CHECK(after.status == 200);
  CHECK(Has(after.body, "data-state=\"pending\""));
  CHECK(Has(after.body, "Couldn&#39;t log in: Invalid code"));
  CHECK(Has(after.body, "href=\"https://claude.com/cai/oauth/authorize?fresh=2\""));
  CHECK(Has(after.body, "name=\"csrf\""));
  CHECK_FALSE(Has(after.body, "secret-code-777"));

  SECTION("with no attempts left the page says the box failed") {
    {
      std::lock_guard lock(f.spoke.mu);
      f.spoke.submit_response.set_attempts_remaining(0);
    }
    REQUIRE(f.Post(token, f.Open(token, form.cookie), "secret-code-778").status == 303);
    auto failed = f.Call("GET", "/auth/" + token);
    CHECK(Has(failed.body, "data-state=\"error\""));
    CHECK(Has(failed.body, "Ask your chatbot for a new box."));
    CHECK_FALSE(Has(failed.body, "code-form"));
  }
}

TEST_CASE("a post without a valid, unused form token is refused before the box sees it",
          "[activation]") {
  Fixture f;
  const std::string token = f.Create("demo");
  const std::string other_token = f.Create("other");
  auto form = f.Open(token);
  auto other_browser = f.Open(token);
  struct Case {
    std::string name;
    std::string cookie;
    std::string body;
    std::string reason;
  };
  const Case cases[] = {
      {"no cookie", "", "csrf=" + form.csrf + "&code=abc", "the browser sent no CSRF cookie"},
      {"no form token", form.cookie, "code=abc", "the form carries no CSRF token"},
      {"malformed token", form.cookie, "csrf=x.y&code=abc", "malformed"},
      {"another browser's token", other_browser.cookie, "csrf=" + form.csrf + "&code=abc",
       "belongs to another browser or page"},
      {"a token of another box's page", form.cookie,
       "csrf=" + f.Open(other_token, form.cookie).csrf + "&code=abc",
       "belongs to another browser or page"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto got = f.Call("POST", "/auth/" + token, c.cookie, c.body);
    CHECK(got.status == 403);
    CHECK(Has(got.body, c.reason));
    CHECK(Has(got.body, "Nothing was sent to the box"));
    CHECK(Has(got.body, "name=\"csrf\""));  // a fresh form to try again
    RequireSecurityHeaders(got);
  }
  CHECK(f.Codes().empty());

  SECTION("a form is accepted once") {
    {
      std::lock_guard lock(f.spoke.mu);
      f.spoke.submit_response.set_attempts_remaining(3);
      f.spoke.submit_response.set_box_error("Invalid code");
    }
    CHECK(f.Post(token, form, "abc").status == 303);
    auto replay = f.Post(token, form, "abc");
    CHECK(replay.status == 403);
    CHECK(Has(replay.body, "the form was sent already"));
    CHECK(f.Codes().size() == 1);
  }
  SECTION("a stale form is refused") {
    f.clock.Advance(31min);
    auto stale = f.Post(token, form, "abc");
    CHECK(stale.status == 403);
    CHECK(Has(stale.body, "the form has expired"));
    CHECK(f.Codes().empty());
  }
}

TEST_CASE("codes of the wrong shape get 400 with the rule they broke, never echoed",
          "[activation]") {
  Fixture f;
  const std::string token = f.Create("demo");
  struct Case {
    std::string name;
    std::string encoded;
    std::string reason;
  };
  const Case cases[] = {
      {"empty", "", "activation code is empty"},
      {"1 MB", std::string(1'000'000, 'Q'), "activation code is longer than 4096 bytes"},
      {"control characters", "QQQ%01QQQ", "activation code contains control characters"},
      {"escape sequence", "QQQ%1B%5B2JQQQ", "activation code contains control characters"},
      {"inner space", "QQQ+QQQ", "printable ASCII without spaces"},
      {"non-ASCII", "QQQ%C3%A9", "printable ASCII without spaces"},
  };
  auto form = f.Open(token);
  for (const auto& c : cases) {
    INFO(c.name);
    auto got = f.Post(token, f.Open(token, form.cookie), c.encoded);
    CHECK(got.status == 400);
    CHECK(Has(got.body, c.reason));
    CHECK_FALSE(Has(got.body, "QQQ"));
    CHECK(got.body.size() < 20'000);
  }
  CHECK(f.Codes().empty());
}

TEST_CASE(
    "code submissions are limited per link and address and per address, and a refusal "
    "costs nothing",
    "[activation]") {
  PageOptions options;
  options.max_attempts_per_token = 2;
  options.max_attempts_per_address = 3;
  options.attempt_window = 10min;
  Fixture f("http://127.0.0.1:8080", options);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_attempts_remaining(10);
    f.spoke.submit_response.set_box_error("Invalid code");
  }
  const std::string a = f.Create("box-a");
  const std::string b = f.Create("box-b");
  const std::string c = f.Create("box-c");
  auto form = f.Open(a);
  CHECK(f.Post(a, f.Open(a, form.cookie), "code-1").status == 303);
  CHECK(f.Post(a, f.Open(a, form.cookie), "code-2").status == 303);
  auto limited = f.Post(a, f.Open(a, form.cookie), "code-3");
  CHECK(limited.status == 429);
  CHECK(Has(limited.body,
            "Too many attempts for this box from your address. Try again in 10 minutes."));
  CHECK(limited.Header("Retry-After") == "600");
  CHECK(f.Codes().size() == 2);

  // Another holder of the same link, at another address, has a budget of its own.
  CHECK(f.Post(a, f.Open(a, form.cookie), "code-4", "198.51.100.9").status == 303);
  CHECK(f.Codes().size() == 3);

  // The address has used 2 of its 3 (the refusal above cost nothing): one more on box b, then
  // box c is refused from it, and that refusal does not spend box c's own budget.
  CHECK(f.Post(b, f.Open(b, form.cookie), "code-5").status == 303);
  f.clock.Advance(5min);
  auto by_address = f.Post(c, f.Open(c, form.cookie), "code-6");
  CHECK(by_address.status == 429);
  CHECK(Has(by_address.body, "Too many attempts from your address"));
  CHECK(f.Codes().size() == 4);

  // The address's window ends; box c's (opened by the refused attempt) still runs, with both
  // of its attempts left.
  f.clock.Advance(5min);
  CHECK(f.Post(c, f.Open(c, form.cookie), "code-7").status == 303);
  CHECK(f.Post(c, f.Open(c, form.cookie), "code-8").status == 303);
  auto link_limited = f.Post(c, f.Open(c, form.cookie), "code-9");
  CHECK(link_limited.status == 429);
  CHECK(Has(link_limited.body, "for this box from your address"));
  CHECK(f.Codes().size() == 6);
}

TEST_CASE("a submission that cannot be a code never costs a rate-limit token", "[activation]") {
  PageOptions options;
  options.max_attempts_per_token = 1;
  options.max_attempts_per_address = 1;
  Fixture f("http://127.0.0.1:8080", options);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_activated(true);
    f.spoke.submit_response.set_session_url("https://claude.ai/code/session_01abc");
  }
  const std::string token = f.Create("shape");
  auto form = f.Open(token);
  for (int i = 0; i < 20; ++i) {
    CHECK(f.Post(token, f.Open(token, form.cookie), "not+a+code").status == 400);
  }
  CHECK(f.Post(token, f.Open(token, form.cookie), "").status == 400);
  CHECK(f.Post(token, f.Open(token, form.cookie), "code-123").status == 303);
  CHECK(f.Codes() == std::vector<std::string>{"code-123"});
}

TEST_CASE("limits count a client by the address the server resolved, IPv6 by its /64",
          "[activation]") {
  PageOptions options;
  options.max_attempts_per_address = 1;
  Fixture f("http://127.0.0.1:8080", options);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_attempts_remaining(10);
    f.spoke.submit_response.set_box_error("Invalid code");
  }
  const std::string a = f.Create("box-a");
  const std::string b = f.Create("box-b");
  auto form = f.Open(a);
  auto post = [&](const std::string& token, const std::string& client) {
    http::Request request;
    request.method = "POST";
    request.path = "/auth/" + token;
    request.remote_address = "10.0.0.1";  // the proxy, the same for everyone
    request.client_address = client;
    request.headers = {{"cookie", form.cookie},
                       {"content-type", "application/x-www-form-urlencoded"}};
    request.body = "csrf=" + f.Open(token, form.cookie).csrf + "&code=code-x";
    RecordingResponder out;
    f.page->Handle(request, out);
    return out.status;
  };
  CHECK(post(a, "2001:db8:1:2::1") == 303);
  CHECK(post(b, "2001:db8:1:2:ffff::9") == 429);  // the same /64
  CHECK(post(b, "2001:db8:1:3::1") == 303);       // another /64
  CHECK(post(a, "203.0.113.9") == 303);           // the proxy's own address is not the key
}

TEST_CASE("one client cannot fill the used-form store so that others get too many forms",
          "[activation]") {
  PageOptions options;
  options.max_attempts_per_token = 1000;
  options.max_attempts_per_address = 1000;
  options.form_limits = {.max_used = 6, .max_used_per_scope = 4, .max_used_per_client = 2};
  Fixture f("http://127.0.0.1:8080", options);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_attempts_remaining(1000);
    f.spoke.submit_response.set_box_error("Invalid code");
  }
  const std::string a = f.Create("box-a");
  const std::string b = f.Create("box-b");
  auto form = f.Open(a);
  auto post = [&](const std::string& token, const std::string& address) {
    return f.Post(token, f.Open(token, form.cookie), "code-x", address);
  };
  // The flooder gets its own two, then hears about its own limit.
  CHECK(post(a, "192.0.2.66").status == 303);
  CHECK(post(a, "192.0.2.66").status == 303);
  auto flooder = post(a, "192.0.2.66");
  CHECK(flooder.status == 429);
  CHECK(Has(flooder.body, "too many forms were sent from your address lately"));
  // Others still get through, until the link has its share...
  CHECK(post(a, "198.51.100.1").status == 303);
  CHECK(post(a, "198.51.100.2").status == 303);
  auto link_full = post(a, "198.51.100.3");
  CHECK(link_full.status == 429);
  CHECK(Has(link_full.body, "too many forms were sent for this link lately"));
  // ...and other links are untouched by both.
  CHECK(post(b, "198.51.100.3").status == 303);
  CHECK(post(b, "198.51.100.4").status == 303);
  auto all_full = post(b, "198.51.100.5");
  CHECK(all_full.status == 429);
  CHECK(Has(all_full.body, "too many forms in flight"));
  // Used forms are forgotten as they expire, and the room comes back.
  f.clock.Advance(31min);
  CHECK(post(a, "192.0.2.66").status == 303);
}

TEST_CASE("no log line holds the activation token, on success and on every failure path",
          "[activation][logs]") {
  PageOptions options;
  options.max_attempts_per_token = 2;
  Fixture f("http://127.0.0.1:8080", options);
  testing::LogCapture logs;
  const std::string token = f.Create("logged");
  auto form = f.Open(token);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_attempts_remaining(10);
    f.spoke.submit_response.set_box_error("Invalid code");
  }
  CHECK(f.Post(token, f.Open(token, form.cookie), "bad-code-1", "203.0.113.9").status == 303);
  CHECK(f.Post(token, f.Open(token, form.cookie), "not+a+code").status == 400);
  CHECK(f.Call("POST", "/auth/" + token, form.cookie, "csrf=x.y&code=abc").status == 403);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "spoke down");
  }
  CHECK(f.Post(token, f.Open(token, form.cookie), "code-2").status == 303);
  CHECK(f.Post(token, f.Open(token, form.cookie), "code-3").status == 303);
  CHECK(f.Post(token, f.Open(token, form.cookie), "code-4").status == 429);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_status = grpc::Status::OK;
    f.spoke.submit_response.set_activated(true);
    f.spoke.submit_response.set_session_url("https://claude.ai/code/session_01abc");
  }
  CHECK(f.Post(token, f.Open(token, form.cookie), "code-5", "198.51.100.1").status == 303);
  CHECK(f.Call("GET", "/auth/" + token + "/status").status == 200);
  CHECK(f.Call("PUT", "/auth/" + token).status == 405);
  REQUIRE(f.registry->Destroy(auth::Principal::Anonymous(), "logged").ok());
  CHECK(f.Call("GET", "/auth/" + token).status == 410);

  const std::string text = logs.Text();
  INFO(text);
  CHECK(text.find(token) == std::string::npos);
  CHECK(text.find("bad-code-1") == std::string::npos);
  CHECK(text.find("code-5") == std::string::npos);
  // The lines that are there name the box and the client's address instead.
  CHECK(Has(text, "activation: box logged: a code was submitted from 203.0.113.9"));
  CHECK(Has(text,
            "activation: box logged: a code from 192.0.2.7 was refused: too many "
            "submissions for this link from that address"));
  CHECK(Has(text, "activation: box logged: the code could not be checked"));
  CHECK(Has(text, "activation: box logged: a code was submitted from 198.51.100.1"));
}

TEST_CASE("the loggable form of a path never holds what follows /auth/", "[activation][logs]") {
  const std::string token(43, 'T');
  CHECK(ActivationPage::LoggablePath("/auth/" + token) == "/auth/[token]");
  CHECK(ActivationPage::LoggablePath("/auth/" + token + "/status") == "/auth/[token]/status");
  CHECK(ActivationPage::LoggablePath("/auth/" + token + "x/y/z") == "/auth/[token]");
  CHECK(ActivationPage::LoggablePath("/auth/oidc/start") == "/auth/oidc/start");
  CHECK(ActivationPage::LoggablePath("/auth/oidc/callback") == "/auth/oidc/callback");
  CHECK(ActivationPage::LoggablePath("/auth/signout") == "/auth/signout");
  CHECK(ActivationPage::LoggablePath("/assets/activation.css") == "/assets/activation.css");
  CHECK(ActivationPage::LoggablePath("/") == "/");
}

TEST_CASE("submissions racing each other: exactly one reaches the box", "[activation]") {
  Fixture f;
  std::mutex mu;
  std::condition_variable cv;
  bool in_flight = false;
  bool release = false;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_activated(true);
    f.spoke.submit_response.set_session_url("https://claude.ai/code/session_01race");
    f.spoke.on_submit = [&] {
      std::unique_lock lock(mu);
      in_flight = true;
      cv.notify_all();
      cv.wait_for(lock, 20s, [&] { return release; });
    };
  }
  const std::string token = f.Create("race");
  auto first = f.Open(token);
  auto second = f.Open(token, first.cookie);
  auto third = f.Open(token, first.cookie);
  auto slow = std::async(std::launch::async, [&] { return f.Post(token, first, "code-a").status; });
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 20s, [&] { return in_flight; }));
  }
  // While the first is at the box: the others are turned back to the page, which says the
  // box is working, and never reach the box.
  CHECK(f.Post(token, second, "code-b").status == 303);
  auto working = f.Call("GET", "/auth/" + token, first.cookie);
  CHECK(Has(working.body, "data-state=\"working\""));
  CHECK(Has(working.body, "data-status-url=\"/auth/" + token + "/status\""));
  CHECK(f.Call("GET", "/auth/" + token + "/status").body == "{\"state\":\"working\"}");
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  CHECK(slow.get() == 303);
  CHECK(f.Post(token, third, "code-c").status == 303);  // after: the box is ready
  CHECK(f.Codes() == std::vector<std::string>{"code-a"});
  CHECK(Has(f.Call("GET", "/auth/" + token).body, "data-state=\"ready\""));
}

TEST_CASE("a destroyed box's link says so, an expired one is a plain 404 that says it expired",
          "[activation]") {
  Fixture f;
  const std::string token = f.Create("demo");
  SECTION("destroyed") {
    REQUIRE(f.registry->Destroy(auth::Principal::Anonymous(), "demo").ok());
    auto got = f.Call("GET", "/auth/" + token);
    CHECK(got.status == 410);
    CHECK(Has(got.body, "data-state=\"destroyed\""));
    CHECK(Has(got.body, "<code>demo</code> was destroyed"));
    CHECK(f.Call("GET", "/auth/" + token + "/status").body == "{\"state\":\"destroyed\"}");
    CHECK(f.Call("POST", "/auth/" + token, "", "code=abc").status == 410);
    CHECK(f.Codes().empty());
  }
  SECTION("expired") {
    auto record = f.db->GetBox("demo");
    REQUIRE(record.ok());
    record->expires_at_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(f.clock.Now().time_since_epoch())
            .count() +
        60'000;
    REQUIRE(f.db->UpdateBox(*record).ok());
    auto form = f.Open(token);
    f.clock.Advance(61s);
    auto got = f.Call("GET", "/auth/" + token);
    CHECK(got.status == 404);
    CHECK(Has(got.body, "data-state=\"expired\""));
    CHECK(Has(got.body, "This link has expired"));
    CHECK_FALSE(Has(got.body, "code-form"));
    CHECK_FALSE(Has(got.body, "demo"));               // reveals nothing of the box
    CHECK(f.Post(token, form, "abc").status == 303);  // back to the page, which says expired
    CHECK(f.Codes().empty());
  }
}

TEST_CASE("the page's stylesheet and script are served with the same headers", "[activation]") {
  Fixture f;
  auto css = f.Call("GET", "/assets/activation.css");
  CHECK(css.status == 200);
  CHECK(css.Header("Content-Type") == "text/css; charset=utf-8");
  RequireSecurityHeaders(css);
  auto js = f.Call("GET", "/assets/activation.js");
  CHECK(js.status == 200);
  CHECK(js.Header("Content-Type") == "text/javascript; charset=utf-8");
  CHECK(Has(js.body, "data-status-url"));
  CHECK(f.Call("GET", "/assets/other.js").status == 404);
  CHECK(f.Call("POST", "/assets/activation.js").status == 405);
  CHECK(ActivationPage::Serves("/auth/x"));
  CHECK(ActivationPage::Serves("/assets/activation.css"));
  CHECK_FALSE(ActivationPage::Serves("/"));
  CHECK_FALSE(ActivationPage::Serves("/authx"));
}

// An OIDC client that signs in whoever the test names, to test the page's gating alone (the
// real client is tested against a real provider in tests/e2e/oidc_provider_test.cc).
class NamedOidcClient final : public OidcClient {
 public:
  absl::StatusOr<LoginStart> BeginLogin(std::string return_to, std::string_view,
                                        LoginPool pool = LoginPool::kActivation) override {
    if (!begin_error.ok()) return begin_error;
    return_to_ = std::move(return_to);
    this->pool = pool;
    return LoginStart{.authorize_url = "https://idp.example.com/authorize?state=s1", .state = "s1"};
  }
  absl::StatusOr<SignedIn> CompleteLogin(std::string_view state, std::string_view) override {
    if (state != "s1") return absl::UnauthenticatedError("unknown state");
    return SignedIn{.email = email, .subject = "sub", .return_to = return_to_};
  }
  std::string email = "alice@example.com";
  absl::Status begin_error;       // what BeginLogin fails with, when not OK
  std::optional<LoginPool> pool;  // the last BeginLogin's

 private:
  std::string return_to_;
};

TEST_CASE("with sign-in gating the first person to sign in owns the box, others are refused",
          "[activation]") {
  NamedOidcClient oidc;
  testing::FakeClock session_clock;
  SessionCookie sessions(std::string(32, 's'), 1h, session_clock);
  PageOptions options;
  options.oidc = &oidc;
  options.sessions = &sessions;
  Fixture f("http://127.0.0.1:8080", options);
  const std::string token = f.Create("gated");

  // Not signed in: a sign-in page that shows nothing of the box.
  auto anonymous = f.Call("GET", "/auth/" + token);
  CHECK(anonymous.status == 200);
  CHECK(Has(anonymous.body, "data-state=\"signin\""));
  CHECK(Has(anonymous.body, "href=\"/auth/oidc/start?to=" + token + "\""));
  CHECK_FALSE(Has(anonymous.body, "gated"));
  CHECK_FALSE(Has(anonymous.body, "authorize?fake"));
  CHECK(f.Call("GET", "/auth/" + token + "/status").status == 401);
  CHECK(f.Call("POST", "/auth/" + token, "", "code=abc").status == 200);
  CHECK(f.Codes().empty());

  // The sign-in: to the provider with a state cookie, back with a session cookie.
  auto start = f.Call("GET", "/auth/oidc/start");
  CHECK(start.status == 404);  // no box to come back to
  {
    // A link of the right shape that names no box starts no sign-in either: without a real
    // link nobody adds to the provider's table of sign-ins in progress.
    http::Request unknown;
    unknown.method = "GET";
    unknown.path = "/auth/oidc/start";
    unknown.query = "to=" + std::string(43, 'A');
    RecordingResponder refused;
    f.page->Handle(unknown, refused);
    CHECK(refused.status == 404);
  }
  http::Request request;
  request.method = "GET";
  request.path = "/auth/oidc/start";
  request.query = "to=" + token;
  RecordingResponder started;
  f.page->Handle(request, started);
  CHECK(started.status == 303);
  CHECK(started.Header("Location") == "https://idp.example.com/authorize?state=s1");
  CHECK(Has(started.Header("Set-Cookie"), "llmbox_oidc_state=s1"));
  CHECK(oidc.pool == LoginPool::kActivation);  // OAuth sign-ins cannot fill its table

  auto signed_in = [&](const std::string& email) {
    oidc.email = email;
    http::Request callback;
    callback.method = "GET";
    callback.path = "/auth/oidc/callback";
    callback.query = "code=c&state=s1";
    callback.headers.emplace_back("cookie", "llmbox_oidc_state=s1");
    RecordingResponder back;
    f.page->Handle(callback, back);
    REQUIRE(back.status == 303);
    CHECK(back.Header("Location") == "/auth/" + token);
    std::string cookie;
    for (const auto& [name, value] : back.headers) {
      if (name == "Set-Cookie" && value.rfind("llmbox_session=", 0) == 0) {
        cookie = value.substr(0, value.find(';'));
      }
    }
    REQUIRE_FALSE(cookie.empty());
    return cookie;
  };
  SECTION("a callback without the browser's state cookie is refused") {
    http::Request callback;
    callback.method = "GET";
    callback.path = "/auth/oidc/callback";
    callback.query = "code=c&state=s1";
    RecordingResponder back;
    f.page->Handle(callback, back);
    CHECK(back.status == 403);
    CHECK(Has(back.body, "data-state=\"signin-failed\""));
    CHECK(Has(back.body, "started in another browser"));
  }
  SECTION("alice owns it; bob is refused even with the link") {
    const std::string alice = signed_in("alice@example.com");
    // The session carries the provider's subject too (the OAuth principal needs it).
    auto session = sessions.VerifySession(alice.substr(alice.find('=') + 1));
    REQUIRE(session.ok());
    CHECK(session->email == "alice@example.com");
    CHECK(session->subject == "sub");
    auto page = f.Call("GET", "/auth/" + token, alice);
    CHECK(page.status == 200);
    CHECK(Has(page.body, "data-state=\"pending\""));
    CHECK(Has(page.body, "Signed in as <strong>alice@example.com</strong>"));
    CHECK(f.db->GetBox("gated")->activation_owner == "alice@example.com");

    const std::string bob = signed_in("bob@example.com");
    auto refused = f.Call("GET", "/auth/" + token, bob);
    CHECK(refused.status == 403);
    CHECK(Has(refused.body, "This box is not yours"));
    CHECK_FALSE(Has(refused.body, "authorize?fake"));
    CHECK(f.Call("GET", "/auth/" + token + "/status", bob).status == 403);
    CHECK(f.Call("POST", "/auth/" + token, bob, "code=abc").status == 403);
    CHECK(f.Codes().empty());

    auto out = f.Call("POST", "/auth/signout", alice);
    CHECK(out.status == 200);
    CHECK(Has(out.Header("Set-Cookie"), "llmbox_session=;"));
  }
}

TEST_CASE("a sign-in the provider cannot serve asks for a retry (503), a refused one is 403",
          "[activation]") {
  NamedOidcClient oidc;
  testing::FakeClock session_clock;
  SessionCookie sessions(std::string(32, 's'), 1h, session_clock);
  PageOptions options;
  options.oidc = &oidc;
  options.sessions = &sessions;
  Fixture f("http://127.0.0.1:8080", options);
  const std::string token = f.Create("gated");
  const std::vector<std::pair<absl::StatusCode, int>> expected = {
      {absl::StatusCode::kUnavailable, 503},        {absl::StatusCode::kDeadlineExceeded, 503},
      {absl::StatusCode::kInternal, 503},           {absl::StatusCode::kUnknown, 503},
      {absl::StatusCode::kFailedPrecondition, 503}, {absl::StatusCode::kResourceExhausted, 503},
      {absl::StatusCode::kUnauthenticated, 403},    {absl::StatusCode::kPermissionDenied, 403},
      {absl::StatusCode::kInvalidArgument, 403},    {absl::StatusCode::kNotFound, 403},
  };
  for (const auto& [code, status] : expected) {
    INFO(absl::StatusCodeToString(code));
    oidc.begin_error = absl::Status(code, "oidc: the provider said no");
    http::Request request;
    request.method = "GET";
    request.path = "/auth/oidc/start";
    request.query = "to=" + token;
    RecordingResponder out;
    f.page->Handle(request, out);
    CHECK(out.status == status);
    CHECK(Has(out.body, "data-state=\"signin-failed\""));
    CHECK(Has(out.body, "oidc: the provider said no"));
  }
}

TEST_CASE("code submissions are audited with the browser's address and never the code or link",
          "[activation][audit]") {
  testing::ScratchDir audit_dir("activation-audit");
  const auto audit_path = audit_dir.path() / "audit.log";
  audit::AuditLog log({.path = audit_path.string()}, common::SystemClock::Get());
  PageOptions options;
  options.audit = &log;
  options.max_attempts_per_token = 3;
  Fixture f("http://127.0.0.1:8080", options);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_activated(false);
    f.spoke.submit_response.set_box_error("Couldn't log in: Invalid code");
    f.spoke.submit_response.set_attempts_remaining(4);
  }
  const std::string token = f.Create("audited");
  auto form = f.Open(token);
  CHECK(f.Post(token, form, "not+a+code", "198.51.100.4").status == 400);
  CHECK(f.Post(token, f.Open(token, form.cookie), "refused-code-4242").status == 303);
  CHECK(f.Post(token, form, "refused-code-4243").status == 403);  // a used form
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_activated(true);
    f.spoke.submit_response.set_session_url("https://claude.ai/code/session_01abc");
  }
  CHECK(f.Post(token, f.Open(token, form.cookie), "good-code-4244").status == 303);

  const auto records = testing::ReadJsonLines(audit_path);
  const std::string text = common::ReadSmallFile(audit_path.string()).value();
  REQUIRE(records.size() == 4);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"box.activate_refused", "not_a_code"},
      {"box.activate_refused", "box_refused_code"},
      {"box.activate_refused", "form"},
      {"box.activate", ""}};
  for (std::size_t i = 0; i < records.size(); ++i) {
    INFO(records[i].dump());
    CHECK(records[i]["event"] == expected[i].first);
    CHECK(records[i].value("reason", "") == expected[i].second);
    CHECK(records[i]["box_id"] == "audited");
    CHECK(records[i]["owner"] == "anonymous");
  }
  CHECK(records[0]["client"] == "198.51.100.4");
  CHECK(records[0]["outcome"] == "invalid_argument");
  CHECK(records[1]["client"] == "192.0.2.7");
  CHECK(records[1]["outcome"] == "permission_denied");
  CHECK(records[3]["outcome"] == "ok");
  for (const std::string& secret :
       {token, std::string("not+a+code"), std::string("refused-code"), std::string("good-code"),
        std::string("/auth/"), std::string("Invalid code")}) {
    INFO(secret);
    CHECK_FALSE(Has(text, secret));
  }
}

TEST_CASE("a flood of refused forms from one address is audited only up to its cap",
          "[activation][audit]") {
  testing::ScratchDir audit_dir("activation-audit-flood");
  const auto audit_path = audit_dir.path() / "audit.log";
  audit::AuditLog log({.path = audit_path.string()}, common::SystemClock::Get());
  PageOptions options;
  options.audit = &log;
  Fixture f("http://127.0.0.1:8080", options);
  const std::string token = f.Create("flooded");
  auto form = f.Open(token);
  // A chatbot holds its box's link: it posts what is no code (the first time) and a spent form
  // (every time after), again and again.
  for (int i = 0; i < 200; ++i) {
    CHECK(f.Post(token, form, "not+a+code", "198.51.100.4").status >= 400);
  }
  // Another address is recorded on its own count.
  CHECK(f.Post(token, form, "not+a+code", "198.51.100.5").status >= 400);
  const auto records = testing::ReadJsonLines(audit_path);
  std::size_t from_flooder = 0;
  std::size_t from_other = 0;
  for (const auto& record : records) {
    if (record["client"] == "198.51.100.4") ++from_flooder;
    if (record["client"] == "198.51.100.5") ++from_other;
  }
  CHECK(from_flooder == 20);
  CHECK(from_other == 1);
}

}  // namespace
}  // namespace llmbox::hub::activation
