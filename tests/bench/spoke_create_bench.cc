// Benchmark: create -> authorize URL on the rig's real engine with the real Claude binary,
// through llmbox's BoxManager, next to the floor measured in the same run: the same
// container (own network, injected files, read-only Claude binary, TTY attach before start)
// made with raw Engine API calls on a bare unix socket and no llmbox code.
//
// Prints p50/p95 for 20 sequential and 8 concurrent creates of each, and the ratio; and the
// first exec of each sequential box (which makes its exec container) and the one after. Every
// llmbox box gets the spoke's egress (its proxy listener and nftables rules, as a spoke does);
// the sequential runs also create boxes without it, for the cost of a network policy (issue 15's
// goal: at most 5 % more). It asserts nothing about time (machines are noisy); it fails only
// when a create fails.
//
//   LLMBOX_RIG_DIR=build/rig build/tests/bench/llmbox_spoke_create_bench [sequential] [concurrent]

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>

#include "common/subprocess.h"
#include "spoke/box/manager.h"
#include "spoke/config/spoke_config.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/egress/egress.h"
#include "spoke/egress/firewall.h"
#include "spoke/egress/proxy.h"
#include "tests/bench/bench_report.h"
#include "tests/rig/rig_env.h"

namespace {

using Clock = std::chrono::steady_clock;

// --- The floor: bare HTTP over the engine's unix socket. -----------------------------------

int Connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      std::perror("send");
      std::exit(1);
    }
    off += static_cast<size_t>(n);
  }
}

std::string Request(const std::string& method, const std::string& path, const std::string& body,
                    const std::string& type, bool upgrade) {
  return method + " " + path + " HTTP/1.1\r\nHost: docker\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         (upgrade ? "Connection: Upgrade\r\nUpgrade: tcp\r\n" : "Connection: close\r\n") + "\r\n" +
         body;
}

// One plain call; returns the status code, exits on transport errors.
int Call(const std::string& sock, const std::string& method, const std::string& path,
         const std::string& body = "", const std::string& type = "application/json",
         std::string* reply = nullptr) {
  int fd = Connect(sock);
  SendAll(fd, Request(method, path, body, type, false));
  std::string all;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) all.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (reply != nullptr) *reply = all.substr(std::min(all.size(), all.find("\r\n\r\n") + 4));
  return all.size() > 12 ? std::atoi(all.substr(9, 3).c_str()) : 0;
}

std::string FloorContainerBody(const llmbox::testing::RigEnv& rig, const std::string& net) {
  return std::string(R"({"Image":")") + rig.box_image +
         R"(","Entrypoint":["/bin/sh","-c","stty cols 1000 rows 50; exec claude auth login"],)"
         R"("Tty":true,"OpenStdin":true,"AttachStdin":true,"AttachStdout":true,)"
         R"("AttachStderr":true,"WorkingDir":"/workspace","User":"0:0","Env":["HOME=/root"],)"
         R"("HostConfig":{"Binds":[")" +
         rig.claude_bin + R"(:/usr/local/bin/claude:ro"],"NetworkMode":")" + net +
         R"(","Memory":1073741824,"NanoCpus":2000000000,"PidsLimit":1024,)"
         R"("SecurityOpt":["no-new-privileges"],"CapDrop":["ALL"],)"
         R"("CapAdd":["CHOWN","DAC_OVERRIDE","FOWNER","FSETID","KILL","SETGID","SETUID"],)"
         R"("ConsoleSize":[50,1000],"RestartPolicy":{"Name":"no"}}})";
}

std::string IdOf(const std::string& json) {
  const size_t at = json.find("\"Id\":\"") + 6;
  return json.substr(at, json.find('"', at) - at);
}

// Creates the floor's container and returns the seconds to the authorize URL.
double FloorCreate(const llmbox::testing::RigEnv& rig, const std::string& name,
                   const std::string& seed_tar) {
  const std::string& sock = rig.docker_sock;
  const auto start = Clock::now();
  std::string reply;
  if (Call(sock, "POST", "/v1.41/networks/create",
           R"({"Name":")" + name + R"(","Driver":"bridge","Labels":{"io.llmbox.bench":"floor"}})",
           "application/json", &reply) != 201) {
    std::fprintf(stderr, "floor: network create failed: %s\n", reply.c_str());
    std::exit(1);
  }
  if (Call(sock, "POST", "/v1.41/containers/create?name=" + name, FloorContainerBody(rig, name),
           "application/json", &reply) != 201) {
    std::fprintf(stderr, "floor: container create failed: %s\n", reply.c_str());
    std::exit(1);
  }
  const std::string id = IdOf(reply);
  Call(sock, "PUT", "/v1.41/containers/" + id + "/archive?path=/", seed_tar, "application/x-tar");
  int fd = Connect(sock);
  SendAll(fd,
          Request("POST", "/v1.41/containers/" + id + "/attach?stream=1&stdin=1&stdout=1&stderr=1",
                  "", "text/plain", true));
  std::string started;
  const int start_status =
      Call(sock, "POST", "/v1.41/containers/" + id + "/start", "", "application/json", &started);
  std::string seen;
  char buf[65536];
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 250) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
    // The URL is whole once the hyperlink that carries it is closed.
    const size_t url = seen.find("oauth/authorize?");
    if (url != std::string::npos && seen.find("\x1b]8;;\x07", url) != std::string::npos) {
      const double secs = std::chrono::duration<double>(Clock::now() - start).count();
      ::close(fd);
      return secs;
    }
  }
  std::string state;
  Call(sock, "GET", "/v1.41/containers/" + id + "/json", "", "application/json", &state);
  const size_t at = state.find("\"State\":");
  std::fprintf(stderr, "floor %s: no authorize URL; start answered %d %s; state %s; saw: %s\n",
               name.c_str(), start_status, started.c_str(),
               at == std::string::npos ? "?" : state.substr(at, 300).c_str(), seen.c_str());
  ::close(fd);
  return -1;
}

void FloorCleanup(const std::string& sock, const std::string& name) {
  Call(sock, "DELETE", "/v1.41/containers/" + name + "?force=1");
  Call(sock, "DELETE", "/v1.41/networks/" + name);
}

// The floor is the baseline, not what is measured: one that did not come up (said why on
// stderr) is made again once; a second failure ends the bench.
double FloorCreateOrRetry(const llmbox::testing::RigEnv& rig, const std::string& name,
                          const std::string& seed_tar) {
  double secs = FloorCreate(rig, name, seed_tar);
  if (secs >= 0) return secs;
  FloorCleanup(rig.docker_sock, name);
  secs = FloorCreate(rig, name, seed_tar);
  if (secs < 0) std::exit(1);
  std::fprintf(stderr, "floor %s: came up on the second try\n", name.c_str());
  return secs;
}

// --- Statistics and runs. ------------------------------------------------------------------

struct Stats {
  double p50, p95, mean;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const size_t i = static_cast<size_t>(q * (v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  };
  double sum = 0;
  for (double x : v) sum += x;
  return {at(0.5), at(0.95), sum / v.size()};
}

using llmbox::bench::Say;

void Print(const char* what, int n, const Stats& s) {
  Say("  %-34s n=%-3d p50 %7.3f s   p95 %7.3f s   mean %7.3f s\n", what, n, s.p50, s.p95, s.mean);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace llmbox::spoke;
  const int sequential = argc > 1 ? std::atoi(argv[1]) : 20;
  const int concurrent = argc > 2 ? std::atoi(argv[2]) : 8;
  const auto loaded = llmbox::testing::LoadRig();
  const auto* rig = &loaded;
  if (rig->docker_sock.empty() || rig->claude_bin.empty()) {
    std::fprintf(stderr, "the rig is not up (tests/rig/rig up 1; LLMBOX_RIG_DIR=build/rig)\n");
    return 1;
  }
  docker::EngineEndpoint endpoint;
  endpoint.unix_socket = rig->docker_sock;
  auto engine = docker::CurlDockerEngine::Create(endpoint);
  if (!engine.ok()) return 1;
  box::BoxManagerOptions options;
  options.spoke_name = "bench";
  options.default_image = rig->box_image;
  options.claude_bin = rig->claude_bin;
  options.memory_bytes = int64_t{1} << 30;
  options.max_concurrent_creates = concurrent;
  options.max_boxes = concurrent + 4;
  options.stop_grace = std::chrono::seconds(1);
  // What a spoke allows by default: Claude's own endpoints (its offline start asks for some).
  for (const auto& text : llmbox::spoke::config::DefaultBaseAllowlist()) {
    if (auto entry = egress::ParseEntry(text); entry.ok()) {
      options.egress.base_allowlist.push_back(*entry);
    }
  }
  // The spoke's egress, as SpokeNode makes it: a proxy on each box's gateway, the host's rules.
  const std::string spoke_name = "bench" + std::to_string(::getpid());
  llmbox::common::PosixSubprocessRunner runner;
  auto resolver = egress::MakeSystemResolver({});
  egress::EgressProxy proxy({.port = 3128,
                             .policy = options.egress,
                             .resolver = resolver.get(),
                             .spoke_name = spoke_name},
                            llmbox::common::SystemClock::Get());
  auto firewall = egress::MakeNftFirewall({.spoke_name = spoke_name, .proxy_port = 3128}, runner);
  egress::HostEgress host_egress(proxy, *firewall);
  box::BoxManager boxes(**engine, llmbox::common::SystemClock::Get(), options, nullptr,
                        &host_egress);
  // The same without a policy: no proxy, no rules (the network is internal all the same).
  box::BoxManager plain(**engine, llmbox::common::SystemClock::Get(), options);

  // The floor injects the same two files, as a tar made by the system's tar.
  char dir[] = "/tmp/llmbox-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  const std::string seed_cmd = std::string("mkdir -p ") + dir + "/usr/local/lib/llmbox " + dir +
                               "/root && printf '#!/bin/sh\\n' > " + dir +
                               "/usr/local/lib/llmbox/entrypoint && printf '{}' > " + dir +
                               "/root/.claude.json && tar -C " + dir + " -cf " + dir +
                               ".tar usr root";
  if (std::system(seed_cmd.c_str()) != 0) return 1;
  std::string seed_tar;
  {
    FILE* f = std::fopen((std::string(dir) + ".tar").c_str(), "rb");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) seed_tar.append(buf, n);
    std::fclose(f);
  }

  auto llmbox_create = [&](const std::string& id, box::BoxManager* manager = nullptr) {
    const auto start = Clock::now();
    auto created = (manager != nullptr ? *manager : boxes).Create({.box_id = id});
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    if (!created.ok()) {
      std::fprintf(stderr, "llmbox create failed: %s\n",
                   std::string(created.status().message()).c_str());
      std::exit(1);
    }
    return secs;
  };

  // Interleave llmbox and floor so that drift in the machine hits both alike.
  // The exec user's container is made on a box's first exec: what that costs once, and an
  // exec after it.
  auto timed_exec = [&](const std::string& id) {
    const auto start = Clock::now();
    auto ran = boxes.Exec(id, {.argv = {"true"}}, box::ExecIdentity::kUser);
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    if (!ran.ok() || ran->exit_code != 0) {
      std::fprintf(stderr, "llmbox exec failed: %s\n", std::string(ran.status().message()).c_str());
      std::exit(1);
    }
    return secs;
  };

  std::vector<double> seq_llmbox, seq_floor, par_llmbox, par_floor, first_exec, next_exec,
      seq_plain;
  const std::string pid = std::to_string(::getpid());
  for (int i = 0; i < sequential; ++i) {
    const std::string id = "bench-" + pid + "-s" + std::to_string(i);
    seq_llmbox.push_back(llmbox_create(id));
    first_exec.push_back(timed_exec(id));
    next_exec.push_back(timed_exec(id));
    (void)boxes.Destroy(id, std::chrono::seconds(1));
    const std::string name = "llmbox-floor-" + pid + "-s" + std::to_string(i);
    seq_floor.push_back(FloorCreateOrRetry(*rig, name, seed_tar));
    FloorCleanup(rig->docker_sock, name);
    const std::string plain_id = "bench-" + pid + "-n" + std::to_string(i);
    seq_plain.push_back(llmbox_create(plain_id, &plain));
    (void)plain.Destroy(plain_id, std::chrono::seconds(1));
  }
  for (int round = 0; round < 2; ++round) {
    std::vector<double> a(concurrent), b(concurrent);
    std::vector<std::thread> threads;
    for (int i = 0; i < concurrent; ++i) {
      threads.emplace_back([&, i] {
        a[i] =
            llmbox_create("bench-" + pid + "-c" + std::to_string(round) + "-" + std::to_string(i));
      });
    }
    for (auto& t : threads) t.join();
    threads.clear();
    for (int i = 0; i < concurrent; ++i) {
      (void)boxes.Destroy("bench-" + pid + "-c" + std::to_string(round) + "-" + std::to_string(i),
                          std::chrono::seconds(1));
    }
    for (int i = 0; i < concurrent; ++i) {
      threads.emplace_back([&, i] {
        b[i] = FloorCreateOrRetry(
            *rig, "llmbox-floor-" + pid + "-c" + std::to_string(round) + "-" + std::to_string(i),
            seed_tar);
      });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < concurrent; ++i) {
      FloorCleanup(rig->docker_sock,
                   "llmbox-floor-" + pid + "-c" + std::to_string(round) + "-" + std::to_string(i));
    }
    par_llmbox.insert(par_llmbox.end(), a.begin(), a.end());
    par_floor.insert(par_floor.end(), b.begin(), b.end());
  }

  const Stats sl = Summarize(seq_llmbox), sf = Summarize(seq_floor);
  const Stats pl = Summarize(par_llmbox), pf = Summarize(par_floor);
  Say("spoke create -> authorize URL (real engine, real Claude %s, box image %s)\n",
      rig->claude_bin.c_str(), rig->box_image.c_str());
  Print("sequential: llmbox", sequential, sl);
  Print("sequential: floor", sequential, sf);
  Say("  sequential ratio llmbox/floor:      p50 %.3f   p95 %.3f\n", sl.p50 / sf.p50,
      sl.p95 / sf.p95);
  const Stats sn = Summarize(seq_plain);
  Print("sequential: llmbox, no policy", sequential, sn);
  Say("  network policy cost (with/without): p50 %.3f   p95 %.3f   (goal <= 1.05)\n",
      sl.p50 / sn.p50, sl.p95 / sn.p95);
  Print("first exec (makes its container)", sequential, Summarize(first_exec));
  Print("next exec", sequential, Summarize(next_exec));
  const std::string label = "concurrent x" + std::to_string(concurrent) + ": ";
  Print((label + "llmbox").c_str(), static_cast<int>(par_llmbox.size()), pl);
  Print((label + "floor").c_str(), static_cast<int>(par_floor.size()), pf);
  Say("  concurrent ratio llmbox/floor:      p50 %.3f   p95 %.3f\n", pl.p50 / pf.p50,
      pl.p95 / pf.p95);
  std::system((std::string("rm -rf ") + dir + " " + dir + ".tar").c_str());
  proxy.Stop();
  (void)firewall->Reset({});
  (void)runner.Run(
      {.argv = {"/usr/sbin/nft", "delete", "table", "inet", egress::NftTableName(spoke_name)}});
  llmbox::bench::WriteReport();
  return 0;
}
