// The hub assembled (HubServer) on loopback port 0 with a fake local spoke: what it serves
// where, readiness, API keys and the Host policy as a client meets them, and its state
// directory.
#include "hub/server/hub_server.h"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include <catch2/catch.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "common/files.h"
#include "common/secrets.h"
#include "hub/boxes/registry.h"
#include "hub/server/state_dir.h"
#include "hub/store/store.h"
#include "tests/fakes/fake_box_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/log_capture.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::server {
namespace {

constexpr char kInitialize[] =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",)"
    R"("capabilities":{},"clientInfo":{"name":"test","version":"1"}}})";

struct Reply {
  long status = 0;
  std::string body;
  std::string headers;
};

std::size_t Append(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One request with curl; `body` non-empty makes it a POST.
Reply Fetch(const std::string& url, const std::vector<std::string>& headers = {},
            const std::string& body = "") {
  Reply reply;
  CURL* curl = curl_easy_init();
  REQUIRE(curl != nullptr);
  curl_slist* list = nullptr;
  for (const auto& header : headers) list = curl_slist_append(list, header.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  if (!body.empty()) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  REQUIRE(rc == CURLE_OK);
  return reply;
}

Reply Initialize(const std::string& url, std::vector<std::string> headers = {}) {
  headers.push_back("Content-Type: application/json");
  headers.push_back("Accept: application/json, text/event-stream");
  return Fetch(url + "/", headers, kInitialize);
}

// The fake spoke handed to the hub as its local spoke.
class FakeLocalSpoke final : public LocalSpoke {
 public:
  explicit FakeLocalSpoke(testing::FakeBoxService& service) : service_(service) {}
  std::shared_ptr<grpc::Channel> Channel() override { return service_.Channel(); }
  std::string MetricsText() override {
    return "# TYPE llmbox_spoke_fake gauge\nllmbox_spoke_fake 1\n";
  }

 private:
  testing::FakeBoxService& service_;
};

struct Hub {
  explicit Hub(const std::string& extra_yaml = "") {
    auto parsed = config::ParseHubConfig(
        "hub:\n  listen: 127.0.0.1:0\n  state_dir: " + dir.path().string() + "\n" + extra_yaml,
        "hub.yaml", dir.path().string());
    REQUIRE(parsed.ok());
    config = *std::move(parsed);
  }

  void Start() {
    auto started = HubServer::Start(
        config, {.start_local_spoke = [this]() -> absl::StatusOr<std::unique_ptr<LocalSpoke>> {
          ++local_spokes_started;
          return std::make_unique<FakeLocalSpoke>(spoke);
        }},
        clock);
    INFO(started.status().ToString());
    REQUIRE(started.ok());
    server = *std::move(started);
    url = server->public_url();
  }

  testing::ScratchDir dir{"hub-server"};
  testing::FakeClock clock;
  testing::FakeBoxService spoke;
  config::HubConfig config;
  int local_spokes_started = 0;
  std::unique_ptr<HubServer> server;
  std::string url;
};

TEST_CASE("the hub serves on the port it bound and names it in its public URL", "[hub-server]") {
  Hub hub;
  hub.Start();
  CHECK(hub.server->port() > 0);
  CHECK(hub.url == "http://127.0.0.1:" + std::to_string(hub.server->port()));
  CHECK(hub.local_spokes_started == 1);
  const Reply health = Fetch(hub.url + "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
}

TEST_CASE("readiness names each spoke, and is 503 while the local spoke is down", "[hub-server]") {
  Hub hub;
  hub.Start();
  const Reply ready = Fetch(hub.url + "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "local: ok\n");
  {
    std::lock_guard lock(hub.spoke.mu);
    hub.spoke.health_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "engine gone");
  }
  // /readyz answers from the monitor's last round, without calling the spoke...
  const Reply still = Fetch(hub.url + "/readyz");
  CHECK(still.status == 200);
  // ...which runs every spoke_health_interval (10 s) on the hub's clock; a spoke is
  // unreachable after two health calls in a row fail. The monitor's rounds, the reconcile
  // loop and the MCP keep-alive wait on the clock.
  REQUIRE(hub.clock.WaitForWaiters(3));
  hub.clock.Advance(std::chrono::seconds(10));
  REQUIRE(hub.clock.WaitForWaiters(3));
  CHECK(Fetch(hub.url + "/readyz").status == 200);  // one failure is not yet unreachable
  hub.clock.Advance(std::chrono::seconds(10));
  REQUIRE(hub.clock.WaitForWaiters(3));
  const Reply down = Fetch(hub.url + "/readyz");
  CHECK(down.status == 503);
  CHECK(down.body.starts_with("local: down: unreachable since "));
  CHECK(down.body.ends_with(": engine gone\n"));
}

TEST_CASE("readiness names a cordoned spoke's state but never the operator's reason",
          "[hub-server]") {
  Hub hub;
  hub.Start();
  REQUIRE(hub.server->store()
              .SetSpokeAdmin({.name = "local",
                              .state = store::SpokeAdminState::kCordoned,
                              .reason = "private ticket 1234"})
              .ok());
  REQUIRE(hub.clock.WaitForWaiters(3));
  hub.clock.Advance(std::chrono::seconds(10));
  REQUIRE(hub.clock.WaitForWaiters(3));
  const Reply ready = Fetch(hub.url + "/readyz");
  CHECK(ready.status == 200);  // cordoned is still up
  CHECK(ready.body == "local: ok, cordoned\n");
}

TEST_CASE("the health endpoints answer while every worker is busy", "[hub-server]") {
  Hub hub("  worker_threads: 2\n  max_calls_per_caller: 2\n");
  hub.Start();
  // Both workers are held by get_llmbox_logs calls whose spoke does not answer.
  REQUIRE(hub.server->store()
              .InsertBox({.box_id = "held",
                          .spoke = "local",
                          .phase = store::Phase::kReady,
                          .owner = "anonymous",
                          .created_at_ms = 1,
                          .updated_at_ms = 1})
              .ok());
  std::mutex mu;
  std::condition_variable cv;
  int held = 0;
  bool release = false;
  {
    std::lock_guard lock(hub.spoke.mu);
    hub.spoke.on_logs = [&] {
      std::unique_lock lock(mu);
      ++held;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    };
  }
  std::vector<std::thread> slow;
  // Whatever the checks find, the held calls end and the hub can stop.
  absl::Cleanup release_all = [&] {
    {
      std::lock_guard lock(mu);
      release = true;
      cv.notify_all();
    }
    for (auto& thread : slow) thread.join();
  };
  for (int i = 0; i < 2; ++i) {
    slow.emplace_back([&] {
      (void)Fetch(hub.url + "/", {"Content-Type: application/json", "Accept: application/json"},
                  R"({"jsonrpc":"2.0","id":1,"method":"tools/call",)"
                  R"("params":{"name":"get_llmbox_logs","arguments":{"box_id":"held"}}})");
    });
  }
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return held >= 2; }));
  }
  const Reply health = Fetch(hub.url + "/healthz");
  CHECK(health.status == 200);
  const Reply ready = Fetch(hub.url + "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "local: ok\n");
}

TEST_CASE("the activation page answers under /auth/ and MCP everywhere else", "[hub-server]") {
  Hub hub;
  hub.Start();
  // An unknown token: the page's plain 404, not MCP's JSON.
  const Reply page = Fetch(hub.url + "/auth/" + std::string(43, 'a'));
  CHECK(page.status == 404);
  CHECK(page.body.find("jsonrpc") == std::string::npos);
  const Reply mcp = Initialize(hub.url);
  CHECK(mcp.status == 200);
  CHECK(mcp.body.find(R"("serverInfo")") != std::string::npos);
  const Reply get = Fetch(hub.url + "/anything");
  CHECK(get.status == 405);  // MCP's answer to GET
}

TEST_CASE("MCP refuses a Host the hub does not serve", "[hub-server]") {
  Hub hub;
  hub.Start();
  CHECK(Initialize(hub.url, {"Host: evil.example.com"}).status == 403);
  CHECK(Initialize(hub.url, {"Host: localhost:" + std::to_string(hub.server->port())}).status ==
        200);
  CHECK(Initialize(hub.url, {"Origin: http://evil.example.com"}).status == 403);
}

TEST_CASE("with API keys required, MCP needs a live key and the page and health do not",
          "[hub-server]") {
  Hub hub("auth:\n  api_keys: required\n");
  hub.Start();
  const std::string key = "llmbox_test-key";
  REQUIRE(hub.server->store()
              .InsertApiKey({.name = "laptop", .hash = common::Sha256Hex(key), .created_at_ms = 1})
              .ok());
  CHECK(Initialize(hub.url).status == 401);
  CHECK(Initialize(hub.url, {"Authorization: Bearer llmbox_wrong"}).status == 401);
  CHECK(Initialize(hub.url, {"Authorization: Bearer " + key}).status == 200);
  CHECK(Initialize(hub.url, {"Authorization: bearer " + key}).status == 200);
  CHECK(Fetch(hub.url + "/healthz").status == 200);
}

// The value of the first header named `name` (case-insensitive) in a curl header dump.
std::string HeaderOf(const Reply& reply, std::string name) {
  std::string lower = reply.headers;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t at = lower.find("\n" + name + ":");
  if (at == std::string::npos) return "";
  const size_t start = at + name.size() + 2;
  const size_t end = reply.headers.find('\r', start);
  std::string value = reply.headers.substr(start, end - start);
  while (!value.empty() && value.front() == ' ') value.erase(0, 1);
  return value;
}

TEST_CASE("with OAuth on, the hub publishes its metadata at its origin and MCP's 401 points to it",
          "[hub-server][oauth]") {
  Hub hub("auth:\n  oauth:\n    enabled: true\n");
  hub.Start();
  const Reply resource = Fetch(hub.url + "/.well-known/oauth-protected-resource");
  CHECK(resource.status == 200);
  const auto prm = nlohmann::json::parse(resource.body);
  CHECK(prm["resource"] == hub.url);
  CHECK(prm["authorization_servers"] == nlohmann::json::array({hub.url}));
  CHECK(prm["scopes_supported"] == nlohmann::json::array({"llmbox"}));
  CHECK(prm["bearer_methods_supported"] == nlohmann::json::array({"header"}));
  // The same document with the MCP endpoint's path "/" appended (RFC 9728 §3.1).
  CHECK(Fetch(hub.url + "/.well-known/oauth-protected-resource/").body == resource.body);

  for (const char* path :
       {"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}) {
    INFO(path);
    const Reply as = Fetch(hub.url + path);
    CHECK(as.status == 200);
    CHECK(HeaderOf(as, "Access-Control-Allow-Origin") == "*");
    const auto meta = nlohmann::json::parse(as.body);
    CHECK(meta["issuer"] == hub.url);  // the origin, no path
    CHECK(meta["authorization_endpoint"] == hub.url + "/authorize");
    CHECK(meta["token_endpoint"] == hub.url + "/token");
    CHECK(meta["registration_endpoint"] == hub.url + "/register");
    CHECK(meta["revocation_endpoint"] == hub.url + "/revoke");
    CHECK(meta["code_challenge_methods_supported"] == nlohmann::json::array({"S256"}));
    CHECK(meta["grant_types_supported"] ==
          nlohmann::json::array({"authorization_code", "refresh_token"}));
    CHECK(meta["response_types_supported"] == nlohmann::json::array({"code"}));
    CHECK(meta["token_endpoint_auth_methods_supported"] ==
          nlohmann::json::array({"none", "client_secret_post", "client_secret_basic"}));
    CHECK(meta["client_id_metadata_document_supported"] == true);
  }
  CHECK(Fetch(hub.url + "/.well-known/other").status == 404);

  const std::string challenge = "Bearer resource_metadata=\"" + hub.url +
                                "/.well-known/oauth-protected-resource\", scope=\"llmbox\"";
  const Reply anonymous = Initialize(hub.url);
  CHECK(anonymous.status == 401);
  CHECK(HeaderOf(anonymous, "WWW-Authenticate") == challenge);
  const Reply bogus = Initialize(hub.url, {"Authorization: Bearer lbat_not-a-token"});
  CHECK(bogus.status == 401);
  CHECK(HeaderOf(bogus, "WWW-Authenticate") == challenge + ", error=\"invalid_token\"");
  CHECK(bogus.body.find("lbat_not-a-token") == std::string::npos);
  // Tokens come from the Authorization header only, never the query.
  CHECK(Fetch(hub.url + "/?access_token=lbat_x",
              {"Content-Type: application/json", "Accept: application/json, text/event-stream"},
              kInitialize)
            .status == 401);
}

TEST_CASE("with OAuth on, API keys keep working unless auth.api_keys is off",
          "[hub-server][oauth]") {
  const std::string key = "llmbox_oauth-test-key";
  for (const bool keys_off : {false, true}) {
    INFO("api_keys off: " << keys_off);
    Hub hub(std::string("auth:\n") + (keys_off ? "  api_keys: off\n" : "") +
            "  oauth:\n    enabled: true\n");
    hub.Start();
    REQUIRE(
        hub.server->store()
            .InsertApiKey({.name = "laptop", .hash = common::Sha256Hex(key), .created_at_ms = 1})
            .ok());
    CHECK(Initialize(hub.url, {"Authorization: Bearer " + key}).status == (keys_off ? 401 : 200));
    CHECK(Initialize(hub.url, {"Authorization: Bearer llmbox_wrong"}).status == 401);
  }
}

TEST_CASE("with OAuth off, the hub publishes no OAuth metadata and has no OAuth endpoints",
          "[hub-server][oauth]") {
  Hub hub("auth:\n  api_keys: required\n");
  hub.Start();
  CHECK(Fetch(hub.url + "/.well-known/oauth-authorization-server").status != 200);
  CHECK(Fetch(hub.url + "/.well-known/oauth-protected-resource").status != 200);
  CHECK(Fetch(hub.url + "/register", {"Content-Type: application/json"}, "{}").status != 201);
  const Reply refused = Initialize(hub.url);
  CHECK(refused.status == 401);
  CHECK(HeaderOf(refused, "WWW-Authenticate").find("resource_metadata") == std::string::npos);
}

TEST_CASE("the reconcile loop runs every reconcile_interval on the hub's clock", "[hub-server]") {
  Hub hub("  reconcile_interval: 30s\n");
  hub.Start();
  // A box the registry has and the spoke does not: the next reconcile finds it gone.
  REQUIRE(hub.server->store()
              .InsertBox({.box_id = "lost-box",
                          .spoke = "local",
                          .container_id = "c0ffee",
                          .image = "llmbox-box:dev",
                          .phase = store::Phase::kReady,
                          .token_hash = common::Sha256Hex("token"),
                          .created_at_ms = 1,
                          .updated_at_ms = 1})
              .ok());
  // The reconcile loop, the spoke health probe and the MCP endpoint's keep-alive wait on the
  // clock.
  REQUIRE(hub.clock.WaitForWaiters(3));
  hub.clock.Advance(std::chrono::seconds(29));
  REQUIRE(hub.clock.WaitForWaiters(3));
  CHECK(hub.server->store().GetBox("lost-box")->phase == store::Phase::kReady);
  hub.clock.Advance(std::chrono::seconds(1));
  // Back to waiting once the run is done.
  REQUIRE(hub.clock.WaitForWaiters(3));
  CHECK(hub.server->store().GetBox("lost-box")->phase == store::Phase::kGone);
}

TEST_CASE("a hub without a local spoke starts none and is ready with no spokes", "[hub-server]") {
  Hub hub("local_spoke:\n  enabled: false\n");
  hub.Start();
  CHECK(hub.local_spokes_started == 0);
  CHECK(hub.server->registry().monitor().View().empty());
  const Reply ready = Fetch(hub.url + "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body.empty());
}

TEST_CASE("a local spoke that cannot start stops the hub from starting", "[hub-server]") {
  Hub hub;
  auto started = HubServer::Start(
      hub.config, {.start_local_spoke = []() -> absl::StatusOr<std::unique_ptr<LocalSpoke>> {
        return absl::UnavailableError("no Docker engine at /var/run/docker.sock");
      }},
      hub.clock);
  CHECK(started.status().code() == absl::StatusCode::kUnavailable);
  auto without = HubServer::Start(hub.config, {}, hub.clock);
  CHECK(without.status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("stopping the hub closes its port, and a second stop does nothing", "[hub-server]") {
  Hub hub;
  hub.Start();
  const std::string url = hub.url;
  hub.server->Stop();
  hub.server->Stop();
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, (url + "/healthz").c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
  CHECK(curl_easy_perform(curl) != CURLE_OK);
  curl_easy_cleanup(curl);
}

TEST_CASE("the session key is made once with mode 0600 and kept across starts", "[hub-server]") {
  testing::ScratchDir dir("session-key");
  const std::string state = (dir.path() / "state").string();
  REQUIRE(common::EnsureStateDir(state).ok());
  auto first = LoadOrCreateSessionKey(state);
  REQUIRE(first.ok());
  CHECK(first->size() >= 32);
  struct stat info {};
  REQUIRE(::stat((state + "/session.key").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  auto again = LoadOrCreateSessionKey(state);
  REQUIRE(again.ok());
  CHECK(*again == *first);
  // A key too short to sign with is replaced.
  dir.Write("state/session.key", "short");
  auto replaced = LoadOrCreateSessionKey(state);
  REQUIRE(replaced.ok());
  CHECK(replaced->size() >= 32);
  CHECK(*replaced != "short");
}

TEST_CASE("the hub serves its metrics and its local spoke's at /metrics to loopback",
          "[hub-server][metrics]") {
  Hub hub;
  hub.Start();
  REQUIRE(Initialize(hub.url).status == 200);
  const Reply metrics = Fetch(hub.url + "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.headers.find("text/plain; version=0.0.4") != std::string::npos);
  CHECK(metrics.body.find("# TYPE llmbox_hub_box_creates_total counter\n") != std::string::npos);
  CHECK(metrics.body.find(
            "llmbox_hub_mcp_requests_total{method=\"initialize\",outcome=\"ok\"} 1\n") !=
        std::string::npos);
  CHECK(metrics.body.find(
            "llmbox_hub_mcp_tool_calls_total{tool=\"create_llmbox\",outcome=\"ok\"} 0\n") !=
        std::string::npos);
  CHECK(metrics.body.find("llmbox_hub_spokes{state=\"ready\"} 1\n") != std::string::npos);
  CHECK(metrics.body.ends_with("llmbox_spoke_fake 1\n"));
}

TEST_CASE("with hub.metrics.allow naming other addresses the hub refuses /metrics to loopback",
          "[hub-server][metrics]") {
  Hub hub("  metrics:\n    allow: [10.0.0.0/8]\n");
  hub.Start();
  const Reply metrics = Fetch(hub.url + "/metrics");
  CHECK(metrics.status == 403);
  CHECK(metrics.body.find("llmbox_hub_") == std::string::npos);
}

TEST_CASE("with hub.metrics.bearer_token_file the hub serves /metrics only with that token",
          "[hub-server][metrics]") {
  const std::string token = "hub-metrics-token-0123456789";
  testing::ScratchDir secrets{"hub-metrics-token"};
  const std::string file = secrets.Write("metrics.token", token + "\n");
  REQUIRE(::chmod(file.c_str(), 0600) == 0);
  testing::LogCapture logs;
  Hub hub("  metrics:\n    bearer_token_file: " + file + "\n");
  hub.Start();
  const Reply none = Fetch(hub.url + "/metrics");
  CHECK(none.status == 401);
  CHECK(absl::AsciiStrToLower(none.headers)
            .find("www-authenticate: bearer realm=\"llmbox-metrics\"") != std::string::npos);
  CHECK(none.body.find("llmbox_hub_") == std::string::npos);
  CHECK(Fetch(hub.url + "/metrics", {"Authorization: Bearer " + token + "0"}).status == 401);
  const Reply right = Fetch(hub.url + "/metrics", {"Authorization: Bearer " + token});
  CHECK(right.status == 200);
  CHECK(right.body.find("# TYPE llmbox_hub_box_creates_total counter\n") != std::string::npos);
  CHECK(logs.Text().find(token) == std::string::npos);
}

TEST_CASE("with hub.metrics.enabled off the hub serves no metrics", "[hub-server][metrics]") {
  Hub hub("  metrics:\n    enabled: false\n");
  hub.Start();
  const Reply metrics = Fetch(hub.url + "/metrics");
  CHECK(metrics.status != 200);
  CHECK(metrics.body.find("llmbox_hub_") == std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub::server
