// Benchmark: OAuth at the hub's front door, against a real `llmbox-hub serve` process (its local
// spoke on the rig's engine 1, the stand-in Claude), from one client over real HTTP on loopback
// with keep-alive (tests/support/oauth_http.h):
//
// 1. get_llmbox with an OAuth access token versus the API key it was signed in with, the two
//    sessions called in turn (paired), p50/p99 of each and the median of the paired
//    differences (the goal: a token costs at most 0.1 ms more at p50): of a box only in the
//    registry (the front door's own cost), and of a real pending box (its spoke asked live).
// 2. The whole authorize-to-first-call flow without the person's clicks: POST /register,
//    GET /authorize, the key sign-in form, the consent form (Allow), POST /token, then MCP
//    initialize and the first get_llmbox with the new token (the goal: under 100 ms). Each flow
//    registers a client of its own, so the bench's hub allows many registrations per address.
//
// It asserts nothing about time; it fails only when a call fails.
//
//   LLMBOX_RIG_DIR=build/rig build/tests/bench/llmbox_oauth_bench [calls] [flows]

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/substitute.h"
#include <curl/curl.h>

#include "common/secrets.h"
#include "hub/config/hub_config.h"
#include "hub/server/state_dir.h"
#include "hub/store/store.h"
#include "tests/bench/bench_report.h"
#include "tests/rig/rig_env.h"
#include "tests/support/logged_process.h"
#include "tests/support/oauth_http.h"

namespace {

using namespace llmbox;
using namespace llmbox::testing;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "oauth_bench: %s\n", what.c_str());
  std::exit(1);
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

using llmbox::bench::Percentile;

// The helpers below die on any failure: the bench has no other way to fail.
pid_t Spawn(const std::vector<std::string>& argv, const fs::path& log) {
  auto pid = SpawnLogged(argv, log);
  if (!pid.ok()) Die(pid.status().ToString());
  return *pid;
}

std::string WaitForLog(const fs::path& log, pid_t pid, const std::string& prefix,
                       const std::string& chars) {
  auto text = WaitForLogText(log, pid, prefix, chars);
  if (!text.ok()) Die(text.status().ToString());
  return *text;
}

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

int main(int argc, char** argv) {
  const int calls = std::max(100, argc > 1 ? std::atoi(argv[1]) : 2000);
  const int flows = std::max(1, argc > 2 ? std::atoi(argv[2]) : 50);
  const auto rig = LoadRig();
  if (rig.docker_sock.empty()) Die("no rig: run tests/rig/rig up 1 (LLMBOX_RIG_DIR)");
  curl_global_init(CURL_GLOBAL_DEFAULT);

  char dir_template[] = "/tmp/llmbox-oauth-bench-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) Die("mkdtemp");
  const fs::path dir = dir_template;
  const std::string config = (dir / "hub.yaml").string();
  std::ofstream(config) << absl::Substitute(R"(hub:
  listen: 127.0.0.1:0
  state_dir: $0
auth:
  api_keys: required
  oauth:
    enabled: true
    sign_in: api_key
    registration:
      per_address: 100000
local_spoke:
  docker:
    socket: $1
  boxes:
    default_image: $2
    claude_bin: $3
    memory: 1GiB
    stop_grace: 1s
  reaper:
    auth_ttl: 1h
)",
                                            (dir / "state").string(), rig.docker_sock,
                                            rig.box_image, rig.standin_claude);

  const pid_t create_key = Spawn(
      {LLMBOX_HUB_BIN, "apikey", "create", "--name", "bench", "--config", config}, dir / "key.log");
  const std::string key = WaitForLog(dir / "key.log", create_key, "llmbox_", kBase64Url);
  if (WaitExit(create_key) != 0) Die("apikey create: " + ReadFileOrEmpty(dir / "key.log"));
  const std::string api_key = "llmbox_" + key;

  const pid_t hub = Spawn({LLMBOX_HUB_BIN, "serve", "--config", config}, dir / "hub.log");
  const std::string url =
      "http://127.0.0.1:" +
      WaitForLog(dir / "hub.log", hub, "serving MCP at http://127.0.0.1:", "0123456789");
  const std::string box_id = "oauth-bench-" + std::to_string(::getpid());
  const std::string box_args = "{\"box_id\":\"" + box_id + "\"}";

  std::string report;
  char buffer[256];
  auto line = [&](const std::string& text) {
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
    report += text + "\n";
  };
  auto check = [](const char* what, const HttpResult& result) {
    auto body = McpHttpSession::ResultOf(result);
    if (!body.ok()) Die(std::string(what) + ": " + std::string(body.status().message()));
    if (body->find("\"isError\":true") != std::string::npos) Die(std::string(what) + ": " + *body);
  };

  McpHttpSession with_key(url + "/", api_key);
  if (with_key.Initialize().status != 200) Die("initialize with the API key");
  check("create_llmbox", with_key.Call("create_llmbox", box_args));

  const std::string registry_box = "oauth-bench-registry-" + std::to_string(::getpid());
  // A box only in the registry: the spoke knows no such container and says so at once.
  {
    auto parsed = hub::config::LoadHubConfig(config);
    if (!parsed.ok()) Die(std::string(parsed.status().message()));
    auto store = hub::server::OpenStore(*parsed);
    if (!store.ok()) Die(std::string(store.status().message()));
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    auto inserted = (*store)->InsertBox({.box_id = registry_box,
                                         .spoke = "local",
                                         .container_id = common::Sha256Hex(registry_box),
                                         .image = rig.box_image,
                                         .description = "a box of the bench's registry only",
                                         .phase = hub::store::Phase::kReady,
                                         .session_url = "https://claude.ai/code/session_bench",
                                         .token_hash = common::Sha256Hex(registry_box),
                                         .created_by = "bench",
                                         .owner = "key:bench",
                                         .created_at_ms = now_ms,
                                         .updated_at_ms = now_ms});
    if (!inserted.ok()) Die(std::string(inserted.message()));
  }
  const std::string registry_args = "{\"box_id\":\"" + registry_box + "\"}";
  // 2. The flow, `flows` times (each with its own registration, cookies and PKCE).
  const std::string redirect = "http://127.0.0.1:9/callback";
  std::vector<double> total_ms, register_ms, authorize_ms, token_ms, first_call_ms;
  OAuthTokens tokens;
  for (int i = 0; i < flows; ++i) {
    OAuthHttpClient oauth(url);
    const auto t0 = Clock::now();
    auto client_id = oauth.Register(redirect, "bench");
    if (!client_id.ok()) Die(std::string(client_id.status().message()));
    const auto t1 = Clock::now();
    const Pkce pkce = Pkce::Make();
    auto code = oauth.AuthorizeWithKey(*client_id, redirect, pkce, api_key,
                                       "bench-" + std::to_string(i), url);
    if (!code.ok()) Die(std::string(code.status().message()));
    const auto t2 = Clock::now();
    auto issued = oauth.ExchangeCode(*client_id, *code, redirect, pkce.verifier, url);
    if (!issued.ok()) Die(std::string(issued.status().message()));
    const auto t3 = Clock::now();
    McpHttpSession first(url + "/", issued->access_token);
    if (first.Initialize().status != 200) Die("initialize with the new token");
    check("first get_llmbox", first.Call("get_llmbox", registry_args));
    const auto t4 = Clock::now();
    register_ms.push_back(Ms(t1 - t0));
    authorize_ms.push_back(Ms(t2 - t1));
    token_ms.push_back(Ms(t3 - t2));
    first_call_ms.push_back(Ms(t4 - t3));
    total_ms.push_back(Ms(t4 - t0));
    tokens = *issued;
  }

  // 1. get_llmbox, token versus key, in turn: of a box only in the registry (the spoke knows
  // no such container and says so at once: the front door's own cost), and of the real box
  // (whose spoke looks at its container and network).
  McpHttpSession with_token(url + "/", tokens.access_token);
  if (with_token.Initialize().status != 200) Die("initialize with the token");
  struct Paired {
    std::vector<double> key_ms, token_ms, diff_ms;
  };
  auto paired = [&](const std::string& args, int n) {
    for (int i = 0; i < 50; ++i) {
      check("get_llmbox (key)", with_key.Call("get_llmbox", args));
      check("get_llmbox (token)", with_token.Call("get_llmbox", args));
    }
    Paired out;
    for (int i = 0; i < n; ++i) {
      // Alternate which goes first, so neither always follows the other.
      McpHttpSession& a = i % 2 == 0 ? with_key : with_token;
      McpHttpSession& b = i % 2 == 0 ? with_token : with_key;
      auto t0 = Clock::now();
      const HttpResult first = a.Call("get_llmbox", args);
      const double first_ms = Ms(Clock::now() - t0);
      t0 = Clock::now();
      const HttpResult second = b.Call("get_llmbox", args);
      const double second_ms = Ms(Clock::now() - t0);
      check("get_llmbox", first);
      check("get_llmbox", second);
      const double k = i % 2 == 0 ? first_ms : second_ms;
      const double t = i % 2 == 0 ? second_ms : first_ms;
      out.key_ms.push_back(k);
      out.token_ms.push_back(t);
      out.diff_ms.push_back(t - k);
    }
    return out;
  };
  const Paired registry = paired(registry_args, calls);
  const Paired real = paired(box_args, std::max(50, calls / 10));
  check("destroy_llmbox", with_key.Call("destroy_llmbox", box_args));

  line(
      "oauth: a real llmbox-hub process, one client over real HTTP on loopback, keep-alive, "
      "2 cores shared by server and client");
  auto rows = [&](const std::string& title, const Paired& p) {
    line(title + " (n=" + std::to_string(p.key_ms.size()) + " each, paired)");
    std::snprintf(buffer, sizeof buffer, "  with the API key                          %8.3f  %8.3f",
                  Percentile(p.key_ms, 0.5), Percentile(p.key_ms, 0.99));
    line(buffer);
    std::snprintf(buffer, sizeof buffer, "  with an OAuth access token               %8.3f  %8.3f",
                  Percentile(p.token_ms, 0.5), Percentile(p.token_ms, 0.99));
    line(buffer);
    std::snprintf(buffer, sizeof buffer,
                  "  token minus key (median of paired diffs) %8.3f   (goal: <= 0.1 ms)",
                  Percentile(p.diff_ms, 0.5));
    line(buffer);
  };
  line("get_llmbox                                      p50 ms    p99 ms");
  rows("of a registry-only box", registry);
  rows("of a real pending box on the rig (its spoke asked live)", real);
  line("");
  line("authorize to first call without clicks, first call of a registry-only box (n=" +
       std::to_string(flows) + ")     p50 ms    max ms");
  auto row = [&](const char* name, const std::vector<double>& values) {
    std::snprintf(buffer, sizeof buffer, "  %-40s %8.1f  %8.1f", name, Percentile(values, 0.5),
                  *std::max_element(values.begin(), values.end()));
    line(buffer);
  };
  row("POST /register", register_ms);
  row("authorize, key sign-in, consent (Allow)", authorize_ms);
  row("POST /token (authorization_code)", token_ms);
  row("initialize + first get_llmbox", first_call_ms);
  row("whole flow (goal: < 100 ms)", total_ms);

  ::kill(hub, SIGTERM);
  if (WaitExit(hub) != 0) Die("the hub did not stop cleanly: " + ReadFileOrEmpty(dir / "hub.log"));
  const std::string hub_log = ReadFileOrEmpty(dir / "hub.log");
  if (hub_log.find(tokens.access_token) != std::string::npos ||
      hub_log.find(api_key) != std::string::npos) {
    Die("the hub's log holds a token or the key");
  }
  if (const char* out = std::getenv("LLMBOX_BENCH_OUT")) std::ofstream(out) << report;
  fs::remove_all(dir);
  return 0;
}
