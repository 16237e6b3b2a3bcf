// Benchmark: the hub against many spokes and boxes (issue 17). A real `llmbox-hub serve`
// process (no local spoke, its cluster listener on loopback) and N spokes served from this one
// process: each a real SpokeNode (the assembly `llmbox-spoke serve` builds) on its own
// loopback port, with its own key and certificate from the real join (a one-time token issued
// as `llmbox-hub spoke token create` does, then spoke::enroll::JoinCluster against the hub's
// enrollment service), serving mutual TLS that accepts only the hub's pinned identity, over an
// engine double (FakeDockerEngine, whose boxes print the recorded Claude login and so an
// authorize URL) and a fake egress. Then, through MCP over real HTTP on loopback with an
// admin API key (admins have no quotas):
//
// 1. B boxes created by 16 concurrent clients: create_llmbox round trips p50/p99 (placement
//    asks every spoke's health per create until placement reads the monitor's cache);
// 2. get_llmbox of random boxes at 8 clients, p50/p99 (the box's network from what its spoke
//    said at most live_ttl (60 s) ago, else asked live);
// 3. a page of list_llmboxes (limit 100) at 1, 8 and 64 clients, p50/p99;
// 4. the hub's RSS (VmRSS, VmHWM) holding them;
// 5. the hub's CPU per second of idle (utime+stime, no request running) in % of one core;
// 6. a restart of the hub with the spokes up: the time from its start to every spoke shown
//    ready in list_spokes ("state": "ready", or "connected": true before spoke states).
//
// Every figure is printed next to its goal. It asserts nothing about time; it fails only when
// something fails (a join, a spoke's start, a create, a call).
//
//   build/tests/bench/llmbox_cluster_scale_bench [spokes] [boxes] [idle seconds]
//   (full size: 500 20000 30; CI's reduced size: 50 1000 10)

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/substitute.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include "common/clock.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/cluster/join_tokens.h"
#include "hub/config/hub_config.h"
#include "hub/server/state_dir.h"
#include "spoke/config/spoke_config.h"
#include "spoke/enroll/join.h"
#include "spoke/node/spoke_node.h"
#include "tests/bench/bench_report.h"
#include "tests/fakes/fake_box_egress.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/support/logged_process.h"
#include "tests/support/oauth_http.h"

namespace {

using namespace llmbox;
using bench::Percentile;
using bench::Say;
using testing::McpHttpSession;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kImage[] = "llmbox-box:dev";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The hub process running now, killed when the bench dies.
std::atomic<pid_t> running_hub{-1};

// Ends the bench at once from any thread (no destructors run while the spokes' threads do),
// killing the hub it started; the scratch folder stays for a look.
[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "cluster_scale: %s\n", what.c_str());
  if (const pid_t hub = running_hub.load(); hub > 0) ::kill(hub, SIGKILL);
  std::fflush(nullptr);
  std::_Exit(1);
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The number after `field` ("VmRSS:") in /proc/<pid>/status, in kB; -1 when absent.
long StatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + field.size());
  }
  return -1;
}

// utime + stime of `pid` in seconds (/proc/<pid>/stat fields 14 and 15, after the command's
// closing parenthesis, which the command itself may contain).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) Die("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::atol(field.c_str());
  }
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// `count` distinct ports on 127.0.0.1 that nothing listens on now, below the kernel's
// ephemeral range (where the hub's own connections to the spokes land) and below the e2e
// tests' 24000..31999.
std::vector<int> FreeLoopbackPorts(int count) {
  std::vector<int> ports;
  std::mt19937 random(static_cast<unsigned>(::getpid()));
  for (int port = 16000 + static_cast<int>(random() % 2000);
       port < 24000 && static_cast<int>(ports.size()) < count; ++port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) Die("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      ports.push_back(port);
    }
    ::close(fd);
  }
  if (static_cast<int>(ports.size()) < count) Die("not enough free loopback ports below 24000");
  return ports;
}

// `llmbox-hub serve` as a process, and where it listens once it does.
struct Hub {
  Hub(const std::string& config, const fs::path& log) : log(log) {
    auto spawned = testing::SpawnLogged({LLMBOX_HUB_BIN, "serve", "--config", config}, log);
    if (!spawned.ok()) Die(spawned.status().ToString());
    pid = *spawned;
    running_hub = pid;
    url = "http://127.0.0.1:" + WaitFor("serving MCP at http://127.0.0.1:", "0123456789");
    cluster_port = WaitFor("enrollment service on port ", "0123456789");
  }
  ~Hub() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      testing::WaitExit(pid);
    }
  }
  std::string WaitFor(const std::string& prefix, const std::string& chars) {
    auto text = testing::WaitForLogText(log, pid, prefix, chars, std::chrono::seconds(300));
    if (!text.ok()) Die(text.status().ToString());
    return *text;
  }
  void Stop() {
    ::kill(pid, SIGTERM);
    const int code = testing::WaitExit(pid);
    pid = -1;
    running_hub = -1;
    if (code != 0) Die("the hub exited with " + std::to_string(code) + ":\n" + Log());
  }
  std::string Log() const { return testing::ReadFileOrEmpty(log); }

  fs::path log;
  pid_t pid = -1;
  std::string url;  // without a trailing slash
  std::string cluster_port;
};

// One spoke of the fleet: its config (files in its own folder), engine double and node.
struct BenchSpoke {
  spoke::config::SpokeConfig config;
  std::string advertise;
  testing::FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  std::unique_ptr<spoke::node::SpokeNode> node;
};

spoke::config::SpokeConfig SpokeConfigFor(const fs::path& dir, const std::string& name, int port,
                                          int max_boxes) {
  spoke::config::SpokeConfig config;
  config.name = name;
  config.listen = "127.0.0.1:" + std::to_string(port);
  config.state_dir = (dir / "state").string();
  config.tls = {.cert_file = (dir / "tls/spoke.crt").string(),
                .key_file = (dir / "tls/spoke.key").string(),
                .ca_file = (dir / "tls/ca.crt").string()};
  config.boxes.spoke_name = name;
  config.boxes.default_image = kImage;
  config.boxes.max_boxes = max_boxes;
  config.boxes.state_dir = config.state_dir;
  // Pending boxes are what the bench holds: the reaper leaves them for the run.
  config.reaper.auth_ttl = std::chrono::hours(24);
  return config;
}

// The structuredContent of a successful tools/call; dies with the reply otherwise.
json Structured(const char* tool, const testing::HttpResult& reply) {
  auto result = McpHttpSession::ResultOf(reply);
  if (!result.ok()) Die(std::string(tool) + ": " + result.status().ToString());
  json parsed = json::parse(*result, nullptr, false);
  if (!parsed.is_object() || parsed.value("isError", false) ||
      !parsed.contains("structuredContent")) {
    Die(std::string(tool) + " failed: " + result->substr(0, 400));
  }
  return parsed["structuredContent"];
}

// The hub's llmbox_hub_box_views_total{answer=`answer`} from its /metrics (loopback is allowed
// by default); dies when the hub does not show it.
double BoxViews(const std::string& hub_url, const std::string& answer) {
  testing::PlainHttp http;
  const testing::HttpResult scraped = http.Get(hub_url + "/metrics");
  const std::string series = "llmbox_hub_box_views_total{answer=\"" + answer + "\"} ";
  const auto at = scraped.body.find(series);
  if (scraped.status != 200 || at == std::string::npos) {
    Die("the hub's /metrics has no " + series + "(HTTP " + std::to_string(scraped.status) + ")");
  }
  return std::strtod(scraped.body.c_str() + at + series.size(), nullptr);
}

// A reply that is a tool result and no error, checked without parsing it (the clients share
// the 2 cores with the hub).
void CheckQuick(const char* tool, const testing::HttpResult& reply) {
  if (reply.status != 200 || reply.body.find("\"result\"") == std::string::npos ||
      reply.body.find("\"isError\":true") != std::string::npos) {
    Die(std::string(tool) + " failed: HTTP " + std::to_string(reply.status) + " " +
        reply.body.substr(0, 400) + reply.error);
  }
}

std::unique_ptr<McpHttpSession> Session(const std::string& url, const std::string& key) {
  auto session = std::make_unique<McpHttpSession>(url + "/", key);
  const auto init = session->Initialize();
  if (init.status != 200) Die("MCP initialize: HTTP " + std::to_string(init.status) + init.error);
  return session;
}

// How many spokes list_spokes shows ready (following its pages): "state": "ready" and
// "connected": true (a spoke that joined shows ready before the hub's health round has heard
// from it, and placement waits for that answer).
int ReadySpokes(McpHttpSession& session) {
  int ready = 0;
  std::string cursor;
  do {
    const json args = cursor.empty() ? json::object() : json{{"cursor", cursor}};
    const json listed = Structured("list_spokes", session.Call("list_spokes", args.dump()));
    for (const auto& spoke : listed.value("spokes", json::array())) {
      const bool is_ready = spoke.value("state", "") == "ready" && spoke.value("connected", false);
      if (is_ready && !spoke.value("local", false)) ++ready;
    }
    cursor = listed.value("next_cursor", "");
  } while (!cursor.empty());
  return ready;
}

// Polls list_spokes until it shows `count` spokes ready (300 s at most).
void WaitAllReady(const std::string& url, const std::string& key, int count) {
  auto session = Session(url, key);
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  int ready = 0;
  while ((ready = ReadySpokes(*session)) < count) {
    if (Clock::now() > deadline) {
      Die("only " + std::to_string(ready) + " of " + std::to_string(count) +
          " spokes ready after 300 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// `clients` MCP sessions of their own sharing `total` calls of `call(session, i)`, each timed.
bench::Timed Run(const std::string& url, const std::string& key, int clients, int total,
                 const std::function<void(McpHttpSession&, int)>& call) {
  std::vector<std::unique_ptr<McpHttpSession>> sessions;
  for (int c = 0; c < clients; ++c) sessions.push_back(Session(url, key));
  return bench::RunConcurrently(clients, total, [&](int c, int i) {
    const auto t0 = Clock::now();
    call(*sessions[c], i);
    return Ms(Clock::now() - t0);
  });
}

std::string BoxId(int i) {
  char id[32];
  std::snprintf(id, sizeof id, "bench-%05d", i);
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  const int spoke_count = std::max(2, argc > 1 ? std::atoi(argv[1]) : 50);
  const int box_count = std::max(200, argc > 2 ? std::atoi(argv[2]) : 1000);
  const int idle_seconds = std::max(1, argc > 3 ? std::atoi(argv[3]) : 10);
  // Twice the even share, at least the default 20: placement by free places that counts the
  // creates in flight never fills a spoke.
  const int max_boxes =
      std::min(1000, std::max(20, 2 * ((box_count + spoke_count - 1) / spoke_count)));
  curl_global_init(CURL_GLOBAL_DEFAULT);

  char dir_template[] = "/tmp/llmbox-cluster-bench-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) Die("mkdtemp");
  const fs::path dir = dir_template;
  const std::string config_path = (dir / "hub.yaml").string();
  // Admin keys have no quotas (20,000 boxes is past any one key's boxes_alive); every worker
  // may serve the bench's one key. Intervals are the defaults: the idle figure is their bill.
  std::ofstream(config_path) << absl::Substitute(R"(hub:
  listen: 127.0.0.1:0
  state_dir: $0
  worker_threads: 32
  max_calls_per_caller: 32
auth:
  api_keys: required
cluster:
  listen: 127.0.0.1:0
local_spoke:
  enabled: false
)",
                                                 (dir / "hub").string());
  Say("cluster scale: a real llmbox-hub process; %d spokes (SpokeNode, mutual TLS, each its own "
      "port and joined certificate, engine double) in the bench process; %d boxes; 2 cores "
      "shared by hub, spokes and clients\n",
      spoke_count, box_count);

  const fs::path key_log = dir / "key.log";
  auto key_pid = testing::SpawnLogged(
      {LLMBOX_HUB_BIN, "apikey", "create", "--name", "bench", "--admin", "--config", config_path},
      key_log);
  if (!key_pid.ok()) Die(key_pid.status().ToString());
  auto key_text = testing::WaitForLogText(key_log, *key_pid, "llmbox_", kBase64Url);
  if (!key_text.ok() || testing::WaitExit(*key_pid) != 0) {
    Die("apikey create: " + testing::ReadFileOrEmpty(key_log));
  }
  const std::string api_key = "llmbox_" + *key_text;

  auto hub = std::make_unique<Hub>(config_path, dir / "hub-1.log");

  // Join tokens as `llmbox-hub spoke token create` makes them (the same calls on the same
  // store), without a process per token; every join then goes through the hub's enrollment
  // service.
  std::vector<std::string> tokens;
  {
    auto config = hub::config::LoadHubConfig(config_path);
    if (!config.ok()) Die(config.status().ToString());
    auto store = hub::server::OpenStore(*config);
    if (!store.ok()) Die(store.status().ToString());
    auto pki = hub::cluster::LoadClusterPki(hub::server::ClusterDir(*config));
    if (!pki.ok()) Die(pki.status().ToString());
    const std::int64_t now_ms = common::ToUnixMillis(common::SystemClock::Get().Now());
    for (int i = 0; i < spoke_count; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "bench-%03d", i);
      auto token = hub::cluster::IssueJoinToken(**store, pki->ca_sha256, name,
                                                std::chrono::hours(1), now_ms);
      if (!token.ok()) Die(token.status().ToString());
      tokens.push_back(*std::move(token));
    }
  }

  const std::vector<int> ports = FreeLoopbackPorts(spoke_count);
  std::vector<std::unique_ptr<BenchSpoke>> spokes;
  for (int i = 0; i < spoke_count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "bench-%03d", i);
    auto spoke = std::make_unique<BenchSpoke>();
    spoke->config = SpokeConfigFor(dir / "spokes" / name, name, ports[i], max_boxes);
    spoke->advertise = "127.0.0.1:" + std::to_string(ports[i]);
    spoke->engine.AddImage(kImage);
    spokes.push_back(std::move(spoke));
  }

  // The joins, one after the other, as hosts are added. (Eight at a time in this one process,
  // a join now and then failed at once with DEADLINE_EXCEEDED fetching the cluster CA over
  // gRPC's unverified TLS credentials; separate `llmbox-spoke join` processes share nothing.)
  const auto join_start = Clock::now();
  for (int i = 0; i < spoke_count; ++i) {
    auto joined = spoke::enroll::JoinCluster({.hub_address = "127.0.0.1:" + hub->cluster_port,
                                              .token = tokens[i],
                                              .advertise_address = spokes[i]->advertise,
                                              .labels = {{"bench", "scale"}}},
                                             spokes[i]->config);
    if (!joined.ok()) Die("join of " + spokes[i]->config.name + ": " + joined.status().ToString());
  }
  const double join_s = Seconds(Clock::now() - join_start);

  const long threads_before = StatusKb(::getpid(), "Threads:");
  const auto nodes_start = Clock::now();
  for (auto& spoke : spokes) {
    auto node = spoke::node::SpokeNode::Start(spoke->config,
                                              {.engine = &spoke->engine, .egress = &spoke->egress},
                                              common::SystemClock::Get());
    if (!node.ok()) Die("spoke " + spoke->config.name + ": " + node.status().ToString());
    spoke->node = *std::move(node);
  }
  const double nodes_s = Seconds(Clock::now() - nodes_start);
  const long threads_after = StatusKb(::getpid(), "Threads:");
  Say("%d joins through the hub's enrollment service, one at a time: %.1f s; %d SpokeNodes "
      "started in %.1f s, %ld threads in the bench process for them (%.1f a spoke), bench RSS "
      "%ld MB\n",
      spoke_count, join_s, spoke_count, nodes_s, threads_after - threads_before,
      static_cast<double>(threads_after - threads_before) / spoke_count,
      StatusKb(::getpid(), "VmRSS:") / 1024);

  WaitAllReady(hub->url, api_key, spoke_count);

  // 1. Creates, 16 at once.
  std::atomic<int> done{0};
  std::atomic<int> busy{0};
  std::atomic<int> full{0};
  std::mutex spoke_mu;
  std::map<std::string, int> per_spoke;
  const bench::Timed creates = Run(hub->url, api_key, 16, box_count, [&](McpHttpSession& s, int i) {
    const std::string args = json{{"box_id", BoxId(i)}}.dump();
    testing::HttpResult reply = s.Call("create_llmbox", args);
    // A create placed on a spoke that cannot take it now (at its limit of concurrent creates,
    // or full while others have room) is refused at once and leaves nothing behind; the
    // caller is told why, and tries again.
    for (int attempts = 1;; ++attempts) {
      if (reply.body.find("creates are already running on spoke") != std::string::npos) {
        ++busy;
      } else if (reply.body.find(" is full (") != std::string::npos) {
        ++full;
      } else {
        break;
      }
      if (attempts == 100) Die("create_llmbox refused 100 times: " + reply.body.substr(0, 400));
      reply = s.Call("create_llmbox", args);
    }
    const json created = Structured("create_llmbox", reply);
    const std::string auth_url = created.value("auth_url", "");
    if (auth_url.empty()) Die("create_llmbox gave no auth_url: " + created.dump());
    // The hub hands out its own activation link; the box's authorize URL stays on the hub.
    if (auth_url.find("claude.ai/oauth") != std::string::npos) {
      Die("create_llmbox showed the box's authorize URL: " + created.dump());
    }
    {
      std::lock_guard lock(spoke_mu);
      ++per_spoke[created.value("spoke", "")];
    }
    if (const int n = ++done; n % std::max(1, box_count / 10) == 0) {
      std::printf("  ... %d boxes created\n", n);
      std::fflush(stdout);
    }
  });
  int fewest = box_count, most = 0;
  for (const auto& [name, boxes] : per_spoke) {
    fewest = std::min(fewest, boxes);
    most = std::max(most, boxes);
  }
  if (static_cast<int>(per_spoke.size()) < spoke_count) fewest = 0;
  Say("create_llmbox, 16 clients (n=%zu, each round trip with its retries): p50 %.1f ms  p99 "
      "%.1f ms  %.0f creates/s   (no goal: placement under load)\n",
      creates.ms.size(), Percentile(creates.ms, 0.5), Percentile(creates.ms, 0.99),
      static_cast<double>(creates.ms.size()) / creates.seconds);
  Say("  placement: %d to %d boxes a spoke (each takes %d) on %zu of %d spokes; refused and "
      "retried: %d at a spoke's limit of concurrent creates, %d at a full spoke (goal: 0)\n",
      fewest, most, max_boxes, per_spoke.size(), spoke_count, busy.load(), full.load());

  // 2. get_llmbox of random boxes, 8 clients.
  const int gets = std::max(2000, box_count);
  std::vector<int> picks(gets);
  {
    std::mt19937 random(17);
    for (int& pick : picks) pick = static_cast<int>(random() % box_count);
  }
  const double kept_before = BoxViews(hub->url, "kept");
  const double asked_before = BoxViews(hub->url, "asked");
  const bench::Timed got = Run(hub->url, api_key, 8, gets, [&](McpHttpSession& s, int i) {
    CheckQuick("get_llmbox", s.Call("get_llmbox", json{{"box_id", BoxId(picks[i])}}.dump()));
  });
  const double kept = BoxViews(hub->url, "kept") - kept_before;
  const double asked = BoxViews(hub->url, "asked") - asked_before;
  Say("get_llmbox, random boxes, 8 clients (n=%zu): p50 %.2f ms  p99 %.2f ms   (goal: p99 < 5 "
      "ms); %.0f answered from what the spoke last said, %.0f asked of the spoke (the hub's "
      "llmbox_hub_box_views_total)\n",
      got.ms.size(), Percentile(got.ms, 0.5), Percentile(got.ms, 0.99), kept, asked);

  // 3. A page of 100, at 1, 8 and 64 clients.
  {
    auto session = Session(hub->url, api_key);
    const json page =
        Structured("list_llmboxes", session->Call("list_llmboxes", R"({"limit":100})"));
    if (page.value("boxes", json::array()).size() != 100 || !page.contains("next_cursor")) {
      Die("list_llmboxes: the first page is not 100 boxes and a cursor: " +
          page.dump().substr(0, 400));
    }
    Say("a page of 100 is %zu bytes of MCP reply\n",
        session->Call("list_llmboxes", R"({"limit":100})").body.size());
  }
  const int pages = std::max(500, box_count / 4);
  for (const int clients : {1, 8, 64}) {
    const bench::Timed listed = Run(hub->url, api_key, clients, pages, [](McpHttpSession& s, int) {
      const auto reply = s.Call("list_llmboxes", R"({"limit":100})");
      CheckQuick("list_llmboxes", reply);
      if (reply.body.find("next_cursor") == std::string::npos) {
        Die("list_llmboxes: a page of 100 of more boxes has no next_cursor");
      }
    });
    Say("list_llmboxes limit 100, %2d clients (n=%zu): p50 %.2f ms  p99 %.2f ms  %.0f pages/s%s\n",
        clients, listed.ms.size(), Percentile(listed.ms, 0.5), Percentile(listed.ms, 0.99),
        static_cast<double>(listed.ms.size()) / listed.seconds,
        clients == 8 ? "   (goal: p99 < 20 ms)" : "");
  }

  // 4. Memory, holding the boxes.
  Say("hub RSS with %d spokes and %d boxes: VmRSS %ld MB, VmHWM %ld MB   (goal: < 256 MB)\n",
      spoke_count, box_count, StatusKb(hub->pid, "VmRSS:") / 1024,
      StatusKb(hub->pid, "VmHWM:") / 1024);

  // 5. Idle: nothing asked of the hub; what it spends is its own polling and reconciling.
  const double cpu_before = CpuSeconds(hub->pid);
  const auto idle_start = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  const double idle_cpu = CpuSeconds(hub->pid) - cpu_before;
  const double idle_wall = Seconds(Clock::now() - idle_start);
  Say("idle hub over %.0f s: %.2f %% of one core (%.3f s of CPU)   (goal: < 5 %%)\n", idle_wall,
      100.0 * idle_cpu / idle_wall, idle_cpu);

  // 6. A restart with every spoke up.
  hub->Stop();
  const auto restart = Clock::now();
  hub = std::make_unique<Hub>(config_path, dir / "hub-2.log");
  const double serving_s = Seconds(Clock::now() - restart);
  WaitAllReady(hub->url, api_key, spoke_count);
  const double ready_s = Seconds(Clock::now() - restart);
  Say("hub restart with %d spokes up and %d boxes: serving MCP after %.2f s, all spokes ready "
      "after %.2f s   (goal: < 5 s); then VmRSS %ld MB\n",
      spoke_count, box_count, serving_s, ready_s, StatusKb(hub->pid, "VmRSS:") / 1024);

  hub->Stop();
  for (const char* log : {"hub-1.log", "hub-2.log"}) {
    const std::string text = testing::ReadFileOrEmpty(dir / log);
    for (const auto& token : tokens) {
      if (text.find(token.substr(token.find('.') + 1, 43)) != std::string::npos) {
        Die(std::string(log) + " holds a join token's secret");
      }
    }
    if (text.find(api_key) != std::string::npos) Die(std::string(log) + " holds the API key");
  }
  std::vector<std::thread> stoppers;
  for (auto& spoke : spokes) stoppers.emplace_back([&spoke] { spoke->node->Stop(); });
  for (auto& stopper : stoppers) stopper.join();
  bench::WriteReport();
  // LLMBOX_BENCH_KEEP=1 keeps the hub's folder (its logs) for a look afterwards.
  if (const char* keep = std::getenv("LLMBOX_BENCH_KEEP"); keep != nullptr && keep[0] == '1') {
    Say("kept %s\n", dir.c_str());
  } else {
    fs::remove_all(dir);
  }
  return 0;
}
