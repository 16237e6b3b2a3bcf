// Benchmark: the hub's MCP front door as a client sees it, over real HTTP on loopback with
// keep-alive, an API key on every request, and the real hub behind it: the HubServer that
// `llmbox-hub serve` builds (HttpServer -> router -> Host policy and API-key authentication
// -> McpEndpoint -> BoxTools -> BoxRegistry -> SQLite), with its local spoke (hub/local)
// in-process over gRPC.
//
// 1. get_llmbox and a page of 100 of list_llmboxes with 1,000 boxes in the registry, at 1, 8
//    and 64 concurrent clients: p50/p99 latency and requests per second.
// 2. create_llmbox end to end (MCP -> local spoke -> Docker -> authorize URL) on the rig's engine
//    with the real Claude binary, next to the floor measured in the same run: the same spoke
//    BoxManager::Create called directly (no HTTP, MCP, registry or gRPC). Interleaved.
//
// It asserts nothing about time; it fails only when a call fails.
//
//   LLMBOX_RIG_DIR=build/rig build/tests/bench/llmbox_mcp_latency_bench [creates]

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/substitute.h"
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/secrets.h"
#include "common/status.h"
#include "hub/config/hub_config.h"
#include "hub/local/local_spoke.h"
#include "hub/server/hub_server.h"
#include "hub/store/store.h"
#include "tests/bench/bench_report.h"
#include "tests/rig/rig_env.h"

namespace {

using namespace llmbox;
using bench::Percentile;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "mcp_latency: %s\n", what.c_str());
  std::exit(1);
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::size_t Collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One MCP client: its own keep-alive connection and session, like a chatbot's.
class Client {
 public:
  Client(std::string url, std::string key) : url_(std::move(url)), curl_(curl_easy_init()) {
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Accept: application/json, text/event-stream");
    headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + key).c_str());
    const std::string reply = Post(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":)"
                                   R"({"protocolVersion":"2025-11-25","capabilities":{},)"
                                   R"("clientInfo":{"name":"bench","version":"1"}}})",
                                   true);
    if (session_.empty()) Die("initialize gave no session: " + reply);
    headers_ = curl_slist_append(headers_, ("Mcp-Session-Id: " + session_).c_str());
    headers_ = curl_slist_append(headers_, "MCP-Protocol-Version: 2025-11-25");
  }
  ~Client() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }

  // tools/call; returns the structuredContent, dies on any error.
  json Call(const std::string& tool, const json& arguments) {
    return Check(tool, CallRaw(tool, arguments));
  }

  // tools/call; the raw SSE body, as it arrived.
  std::string CallRaw(const std::string& tool, const json& arguments) {
    const json request = {{"jsonrpc", "2.0"},
                          {"id", ++id_},
                          {"method", "tools/call"},
                          {"params", {{"name", tool}, {"arguments", arguments}}}};
    return Post(request.dump(), false);
  }

  static json Check(const std::string& tool, const std::string& body) {
    // A plain JSON reply, or an SSE stream whose last `data:` line is the response.
    std::string text = body;
    if (body.empty() || body.front() != '{') {
      const auto data = body.rfind("data: ");
      if (data == std::string::npos) Die(tool + ": no response in " + body.substr(0, 200));
      text = body.substr(data + 6, body.find('\n', data) - data - 6);
    }
    json reply = json::parse(text, nullptr, false);
    if (reply.is_discarded() || !reply.contains("result") ||
        reply["result"].value("isError", true)) {
      Die(tool + " failed: " + body.substr(0, 300));
    }
    return reply["result"]["structuredContent"];
  }

 private:
  std::string Post(const std::string& body, bool want_session) {
    std::string out;
    // Sized like the last reply, so receiving a large one is not a string regrown 20 times.
    out.reserve(last_reply_size_);
    std::string header_text;
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, Collect);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &header_text);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
    if (CURLcode rc = curl_easy_perform(curl_); rc != CURLE_OK) {
      Die(std::string("HTTP: ") + curl_easy_strerror(rc));
    }
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) Die("HTTP " + std::to_string(status) + ": " + out);
    last_reply_size_ = out.size() + out.size() / 8;
    if (want_session) {
      for (const std::string name : {"mcp-session-id: ", "Mcp-Session-Id: "}) {
        if (auto at = header_text.find(name); at != std::string::npos) {
          const auto start = at + name.size();
          session_ = header_text.substr(start, header_text.find('\r', start) - start);
        }
      }
    }
    return out;
  }

  std::string url_;
  CURL* curl_;
  curl_slist* headers_ = nullptr;
  std::string session_;
  int id_ = 0;
  std::size_t last_reply_size_ = 4096;
};

struct Level {
  double p50 = 0, p99 = 0, rps = 0;
};

// `clients` threads, each with its own Client, sharing `total` calls of `call`. Only `call`
// is timed; `check` (parsing and checking the reply, the client's own work) is not.
Level Run(const std::string& url, const std::string& key, int clients, int total,
          const std::function<std::string(Client&, int)>& call,
          const std::function<void(const std::string&)>& check) {
  std::vector<std::unique_ptr<Client>> pool;
  for (int i = 0; i < clients; ++i) pool.push_back(std::make_unique<Client>(url, key));
  const bench::Timed timed = bench::RunConcurrently(clients, total, [&](int c, int i) {
    const auto t0 = Clock::now();
    const std::string reply = call(*pool[c], i);
    const double ms = Ms(Clock::now() - t0);
    check(reply);
    return ms;
  });
  return {Percentile(timed.ms, 0.50), Percentile(timed.ms, 0.99),
          static_cast<double>(timed.ms.size()) / timed.seconds};
}

}  // namespace

int main(int argc, char** argv) {
  const int creates = std::max(1, argc > 1 ? std::atoi(argv[1]) : 20);
  const auto rig = testing::LoadRig();
  if (rig.docker_sock.empty()) Die("no rig: run tests/rig/rig up 1 (LLMBOX_RIG_DIR)");
  curl_global_init(CURL_GLOBAL_DEFAULT);

  char dir_template[] = "/tmp/llmbox-mcp-bench-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) Die("mkdtemp");
  const std::filesystem::path dir = dir_template;

  // The hub as `llmbox-hub serve` builds it, from a config; the local spoke on the rig's
  // engine with the real Claude binary. The registry's 1,000 boxes exist only in the store, so
  // the periodic reconcile (which would find them gone from the spoke) is pushed out of the
  // run; they are added after the start's own reconcile. The local spoke's reaper stays out of
  // the way of other tests' boxes on the shared engine (auth_ttl 24h). The bench key owns the
  // 1,000 boxes and part 3's key runs many execs at once, so their quotas are raised past that.
  // Parts 1 and 2 measure the hub's own speed: one key may use every worker (as many calls
  // at once as workers: never refused). Part 3 runs a hub with the default share (half).
  auto yaml_with = [&](const std::string& share_line) {
    return absl::Substitute(R"(hub:
  listen: 127.0.0.1:0
  state_dir: $0
  reconcile_interval: 24h
  worker_threads: 32
  $4
  quotas:
    boxes_alive: 10000
    creates_per_hour: 100000
    concurrent_execs: 1000
auth:
  api_keys: required
local_spoke:
  docker:
    socket: $1
  boxes:
    default_image: $2
    claude_bin: $3
    memory: 1GiB
    stop_grace: 1s
  reaper:
    auth_ttl: 24h
)",
                            (dir / "hub").string(), rig.docker_sock, rig.box_image, rig.claude_bin,
                            share_line);
  };
  hub::local::InProcessSpoke* local = nullptr;  // owned by the hub
  std::optional<hub::config::HubConfig> config;
  auto start_hub = [&](const std::string& share_line) {
    auto parsed =
        hub::config::ParseHubConfig(yaml_with(share_line), "the bench's hub.yaml", dir.string());
    if (!parsed.ok()) Die(std::string(parsed.status().message()));
    config = *std::move(parsed);
    auto spoke_config = hub::local::ReadLocalSpokeConfig(*config);
    if (!spoke_config.ok()) Die(std::string(spoke_config.status().message()));
    auto started = hub::server::HubServer::Start(
        *config,
        {.start_local_spoke = [&, spoke_config = *spoke_config]() mutable
         -> absl::StatusOr<std::unique_ptr<hub::server::LocalSpoke>> {
          LLMBOX_ASSIGN_OR_RETURN(
              auto spoke, hub::local::StartLocalSpoke(spoke_config, common::SystemClock::Get()));
          local = spoke.get();
          return spoke;
        }},
        common::SystemClock::Get());
    if (!started.ok()) Die(std::string(started.status().message()));
    return *std::move(started);
  };
  std::unique_ptr<hub::server::HubServer> hub = start_hub("max_calls_per_caller: 32");
  spoke::box::BoxManager& boxes = local->boxes();

  hub::store::Store& store = hub->store();
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  for (int i = 0; i < 1000; ++i) {
    auto st =
        store.InsertBox({.box_id = "bench-" + std::to_string(i),
                         .spoke = "local",
                         .container_id = common::Sha256Hex(std::to_string(i)),
                         .image = "llmbox-box:dev",
                         .description = "a box of the benchmark's registry",
                         .phase = hub::store::Phase::kReady,
                         .session_url = "https://claude.ai/code/session_bench" + std::to_string(i),
                         .token_hash = common::Sha256Hex("token" + std::to_string(i)),
                         .created_by = "bench",
                         .owner = "key:bench",
                         .created_at_ms = now_ms + i,
                         .updated_at_ms = now_ms + i});
    if (!st.ok()) Die(std::string(st.message()));
  }
  const std::string key = "llmbox_bench_" + common::Sha256Hex("bench-key");
  if (!store
           .InsertApiKey({.name = "bench", .hash = common::Sha256Hex(key), .created_at_ms = now_ms})
           .ok()) {
    Die("api key");
  }
  const std::string url = hub->public_url() + "/";

  std::string report;
  auto line = [&](const std::string& text) {
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
    report += text + "\n";
  };
  char buffer[256];
  line(
      "mcp_latency: 1,000 boxes in the registry, real HTTP on loopback, API key, "
      "Accept: application/json, text/event-stream, "
      "2 cores shared by server and clients");
  line("                                   clients   p50 ms    p99 ms     req/s");
  // LLMBOX_BENCH_ONLY=list runs only the list part (for profiling it).
  const char* only_env = std::getenv("LLMBOX_BENCH_ONLY");
  const std::string only = only_env == nullptr ? "" : only_env;
  for (int clients : {1, 8, 64}) {
    if (!only.empty() && only != "get") break;
    // Warm each client's connection and the statement caches first.
    auto check_get = [](const std::string& reply) { Client::Check("get_llmbox", reply); };
    Run(
        url, key, clients, clients * 5,
        [](Client& c, int i) {
          return c.CallRaw("get_llmbox", {{"box_id", "bench-" + std::to_string(i % 1000)}});
        },
        check_get);
    Level get = Run(
        url, key, clients, 6000,
        [](Client& c, int i) {
          return c.CallRaw("get_llmbox",
                           {{"box_id", "bench-" + std::to_string((i * 7919) % 1000)}});
        },
        check_get);
    std::snprintf(buffer, sizeof buffer,
                  "get_llmbox                         %7d  %7.3f  %8.3f  %8.0f", clients, get.p50,
                  get.p99, get.rps);
    line(buffer);
  }
  for (int clients : {1, 8, 64}) {
    if (!only.empty() && only != "list") break;
    Level list = Run(
        url, key, clients, std::max(200, clients * 4),
        [](Client& c, int) {
          return c.CallRaw("list_llmboxes", {{"limit", 100}});
        },
        [first = std::make_shared<std::atomic<bool>>(true)](const std::string& reply) {
          // The first reply is parsed whole; the rest are checked for the same shape without
          // a full parse, which would take the clients' share of the 2 cores from the server.
          if (first->exchange(false)) {
            const json page = Client::Check("list_llmboxes", reply);
            if (page["boxes"].size() != 100 || !page.contains("next_cursor")) {
              Die("list_llmboxes did not give a page of 100 with a next_cursor");
            }
            return;
          }
          const auto structured = reply.find(R"("structuredContent":{"boxes":[)");
          std::size_t boxes = 0;
          for (auto at = reply.find(R"({"box_id":"bench-)", structured); at != std::string::npos;
               at = reply.find(R"({"box_id":"bench-)", at + 1)) {
            ++boxes;
          }
          if (structured == std::string::npos || boxes != 100 ||
              reply.find(R"("next_cursor":")", structured) == std::string::npos ||
              !reply.ends_with(R"(,"isError":false}})")) {
            Die("list_llmboxes did not give a page of 100: " + reply.substr(0, 300));
          }
        });
    std::snprintf(buffer, sizeof buffer,
                  "list_llmboxes (100 of 1,000 boxes) %7d  %7.3f  %8.3f  %8.0f", clients, list.p50,
                  list.p99, list.rps);
    line(buffer);
  }

  if (!only.empty() && only != "create") {
    std::filesystem::remove_all(dir);
    return 0;
  }
  // create: hub end to end vs the spoke's own create, interleaved.
  Client client(url, key);
  std::vector<double> hub_ms, floor_ms, added_ms;
  const std::string run = common::HexEncode(*common::RandomToken(3));
  for (int i = 0; i < creates; ++i) {
    const std::string hub_id = "mcp-" + run + "-" + std::to_string(i);
    auto t0 = Clock::now();
    json created = client.Call("create_llmbox", {{"box_id", hub_id}});
    hub_ms.push_back(Ms(Clock::now() - t0));
    if (created.value("status", "") != "pending") Die("create_llmbox: " + created.dump());
    client.Call("destroy_llmbox", {{"box_id", hub_id}});

    const std::string floor_id = "flr-" + run + "-" + std::to_string(i);
    t0 = Clock::now();
    auto direct = boxes.Create({.box_id = floor_id});
    floor_ms.push_back(Ms(Clock::now() - t0));
    if (!direct.ok()) Die(std::string(direct.status().message()));
    if (!boxes.Destroy(floor_id).ok()) Die("destroy " + floor_id);
    added_ms.push_back(hub_ms.back() - floor_ms.back());
  }
  line("");
  line("create to authorize URL (real engine, real Claude " + rig.claude_version +
       "), n=" + std::to_string(creates) + ", interleaved");
  line("                                             p50 ms    p99 ms");
  std::snprintf(buffer, sizeof buffer, "create_llmbox over MCP (hub end to end)     %8.1f  %8.1f",
                Percentile(hub_ms, 0.5), Percentile(hub_ms, 0.99));
  line(buffer);
  std::snprintf(buffer, sizeof buffer, "floor: BoxManager::Create on the spoke      %8.1f  %8.1f",
                Percentile(floor_ms, 0.5), Percentile(floor_ms, 0.99));
  line(buffer);
  std::snprintf(buffer, sizeof buffer, "added by the hub (median of paired diffs)    %8.1f",
                Percentile(added_ms, 0.5));
  line(buffer);

  // 3. Another key holds its whole share of the workers with slow execs (four boxes, four execs
  // each: the spoke runs four at once per box); meanwhile get_llmbox of the bench key and
  // /healthz are timed.
  if (only.empty()) {
    hub->Stop();
    hub.reset();
    hub = start_hub("max_calls_per_caller: 0");  // the default: half the workers
    const std::string url = hub->public_url() + "/";
    hub::store::Store& store = hub->store();
    const std::string hog_key = "llmbox_hog_" + common::Sha256Hex("hog-key");
    if (!store
             .InsertApiKey(
                 {.name = "hog", .hash = common::Sha256Hex(hog_key), .created_at_ms = now_ms})
             .ok()) {
      Die("hog api key");
    }
    Client hog(url, hog_key);
    const int share = std::max(1, config->worker_threads / 2);
    constexpr int kPerBox = 4;
    std::vector<std::string> hog_boxes;
    for (int b = 0; b < (share + kPerBox - 1) / kPerBox; ++b) {
      hog_boxes.push_back("hog-" + run + "-" + std::to_string(b));
      hog.Call("create_llmbox", {{"box_id", hog_boxes.back()}});
    }
    std::atomic<bool> stop_hogs{false};
    std::vector<std::thread> hogs;
    for (int i = 0; i < share; ++i) {
      hogs.emplace_back([&, i] {
        Client c(url, hog_key);
        // Each keeps one slow exec running until the measurement is over.
        while (!stop_hogs.load()) {
          (void)c.CallRaw(
              "exec_llmbox",
              {{"box_id", hog_boxes[i / kPerBox]}, {"command", {"sleep", "2"}}, {"timeout_s", 30}});
        }
      });
    }
    // Held once the hog's own next call is refused for its share.
    const auto held_by = Clock::now() + std::chrono::seconds(60);
    while (hog.CallRaw("list_llmboxes", json::object()).find("tool calls running") ==
           std::string::npos) {
      if (Clock::now() > held_by) Die("the hog never held its share of the workers");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Level get = Run(
        url, key, 8, 800,
        [](Client& c, int i) {
          return c.CallRaw("get_llmbox", {{"box_id", "bench-" + std::to_string(i % 1000)}});
        },
        [](const std::string& reply) { Client::Check("get_llmbox", reply); });
    std::vector<double> health_ms;
    CURL* curl = curl_easy_init();
    const std::string health_url = hub->public_url() + "/healthz";
    std::string ignored;
    for (int i = 0; i < 200; ++i) {
      curl_easy_setopt(curl, CURLOPT_URL, health_url.c_str());
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ignored);
      const auto t0 = Clock::now();
      if (curl_easy_perform(curl) != CURLE_OK) Die("/healthz");
      health_ms.push_back(Ms(Clock::now() - t0));
    }
    curl_easy_cleanup(curl);
    stop_hogs = true;
    for (auto& t : hogs) t.join();
    for (const auto& id : hog_boxes) hog.Call("destroy_llmbox", {{"box_id", id}});
    line("");
    line("while another key holds its " + std::to_string(share) + " of " +
         std::to_string(config->worker_threads) + " workers with slow execs");
    line("                                   clients   p50 ms    p99 ms     req/s");
    std::snprintf(buffer, sizeof buffer,
                  "get_llmbox                         %7d  %7.3f  %8.3f  %8.0f", 8, get.p50,
                  get.p99, get.rps);
    line(buffer);
    std::snprintf(buffer, sizeof buffer, "/healthz                           %7d  %7.3f  %8.3f", 1,
                  Percentile(health_ms, 0.5), Percentile(health_ms, 0.99));
    line(buffer);
  }

  hub->Stop();
  hub.reset();
  if (const char* out = std::getenv("LLMBOX_BENCH_OUT")) std::ofstream(out) << report;
  std::filesystem::remove_all(dir);
  return 0;
}
