// Benchmark: what the egress proxy costs a box, on the rig's engine. From inside a real box
// (open mode, through the spoke's proxy on its gateway and its nftables rules) and from a plain
// container on an ordinary Docker bridge (the direct path, NATed by the engine), both to the
// same server in a network namespace that stands for the internet (198.18/15): TCP set-up
// (connect, the proxy's CONNECT and 200 when proxied, one byte back) and a bulk read. The
// client is tests/bench/egress_probe.cc, built static and copied into both containers.
// Goals (issue 15): at most 1 ms added per connection, at least 80 % of direct throughput.
// It asserts nothing about time.
//
//   LLMBOX_RIG_DIR=build/rig build/tests/bench/llmbox_egress_box_bench [connections] [MiB]

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/subprocess.h"
#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/docker/tar.h"
#include "spoke/egress/egress.h"
#include "spoke/egress/firewall.h"
#include "spoke/egress/proxy.h"
#include "tests/bench/bench_report.h"
#include "tests/rig/rig_env.h"
#include "tests/support/test_internet.h"

namespace {

using namespace llmbox;
using namespace std::chrono_literals;

using llmbox::bench::Say;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "egress box bench: %s\n", what.c_str());
  std::exit(1);
}

// The source: "GET <n>\n" -> n bytes, then close. One thread per connection.
void Serve(int listen_fd, std::atomic<bool>* stop) {
  static const std::string block(1 << 20, 'x');
  while (!*stop) {
    pollfd p{listen_fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int client = accept(listen_fd, nullptr, nullptr);
    if (client < 0) continue;
    std::thread([client] {
      std::string line;
      char ch;
      while (line.size() < 64 && recv(client, &ch, 1, 0) == 1 && ch != '\n') line += ch;
      long long n = 0;
      if (line.rfind("GET ", 0) == 0) n = std::atoll(line.c_str() + 4);
      while (n > 0) {
        const ssize_t sent =
            send(client, block.data(), std::min<long long>(n, block.size()), MSG_NOSIGNAL);
        if (sent <= 0) break;
        n -= sent;
      }
      close(client);
    }).detach();
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

std::vector<double> Numbers(const std::string& text) {
  std::vector<double> out;
  for (absl::string_view word : absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    double v;
    if (absl::SimpleAtod(word, &v)) out.push_back(v);
  }
  return out;
}

double At(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  const int connections = argc > 1 ? std::atoi(argv[1]) : 300;
  const long long mib = argc > 2 ? std::atoll(argv[2]) : 256;
  const auto rig = testing::LoadRig();
  if (rig.docker_sock.empty()) Die("the rig is not up (tests/rig/rig up 1)");
  spoke::docker::EngineEndpoint endpoint;
  endpoint.unix_socket = rig.docker_sock;
  auto made = spoke::docker::CurlDockerEngine::Create(endpoint);
  if (!made.ok()) Die("engine");
  spoke::docker::DockerEngine& engine = **made;

  auto internet = testing::TestInternet::Create();
  if (!internet.ok()) Die(std::string(internet.status().message()));
  const int listen_fd = (*internet)->ListenInside(9000);
  if (listen_fd < 0) Die("cannot listen in the namespace");
  std::atomic<bool> stop{false};
  std::thread server(Serve, listen_fd, &stop);
  const std::string inside = (*internet)->inside_address();

  // The spoke's egress, as a spoke makes it.
  const std::string name = "ebench" + std::to_string(getpid());
  common::PosixSubprocessRunner runner;
  auto resolver =
      spoke::egress::MakeSystemResolver({{"internet.bench", {*spoke::egress::ParseIp(inside)}}});
  spoke::egress::SpokePolicy policy;
  policy.box_may_allow_anything = true;
  policy.host_addresses.push_back(*spoke::egress::ParseIp((*internet)->host_address()));
  spoke::egress::EgressProxy proxy(
      {.port = 3128, .policy = policy, .resolver = resolver.get(), .spoke_name = name},
      common::SystemClock::Get());
  auto firewall = spoke::egress::MakeNftFirewall({.spoke_name = name, .proxy_port = 3128}, runner);
  spoke::egress::HostEgress host_egress(proxy, *firewall);
  spoke::box::BoxManagerOptions options;
  options.spoke_name = name;
  options.default_image = rig.box_image;
  options.claude_bin = rig.standin_claude;
  options.stop_grace = 1s;
  options.egress = policy;
  spoke::box::BoxManager boxes(engine, common::SystemClock::Get(), options, nullptr, &host_egress);

  spoke::docker::TarBuilder tar;
  if (!tar.AddFile("egress_probe", ReadFile(LLMBOX_EGRESS_PROBE), 0755, 0, 0).ok()) Die("tar");
  const std::string probe_tar = tar.Finish();

  const std::string box_id = "ebench-" + std::to_string(getpid());
  auto created = boxes.Create(
      {.box_id = box_id,
       .network = spoke::egress::BoxPolicy{.mode = spoke::egress::Mode::kOpen, .allow = {}}});
  if (!created.ok()) Die(std::string(created.status().message()));
  const std::string& url = created->box.network.proxy;  // http://<gateway>:3128
  const std::string gateway = url.substr(7, url.rfind(':') - 7);
  if (!engine.PutArchive(created->box.container_id, "/usr/local/bin", probe_tar).ok()) {
    Die("copy into the box");
  }

  const std::string direct_net = name + "-direct";
  if (!engine.CreateNetwork({.name = direct_net, .labels = {}, .internal = false}).ok()) {
    Die("direct network");
  }
  spoke::docker::ContainerSpec spec;
  spec.name = name + "-direct";
  spec.image = rig.box_image;
  spec.entrypoint = {"sleep", "3600"};
  spec.network_mode = direct_net;
  auto direct = engine.CreateContainer(spec);
  if (!direct.ok() || !engine.StartContainer(*direct).ok() ||
      !engine.PutArchive(*direct, "/usr/local/bin", probe_tar).ok()) {
    Die("direct container");
  }

  auto run = [&](bool proxied, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/local/bin/egress_probe"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (proxied) {
      argv.push_back(gateway);
      argv.push_back("3128");
    }
    spoke::docker::ExecSpec exec{.argv = argv, .timeout = 600s};
    auto ran = proxied ? boxes.Exec(box_id, exec, spoke::box::ExecIdentity::kBox)
                       : engine.Exec(*direct, exec);
    if (!ran.ok() || ran->exit_code != 0) {
      Die("probe: " +
          (ran.ok() ? ran->stdout_data + ran->stderr_data : std::string(ran.status().message())));
    }
    return Numbers(ran->stdout_data);
  };

  std::vector<double> setup_direct, setup_proxied, mbs_direct, mbs_proxied;
  const std::string n = std::to_string(connections / 3);
  const std::string bytes = std::to_string(mib << 20);
  for (int round = 0; round < 3; ++round) {
    for (double us : run(false, {"setup", inside, "9000", n})) setup_direct.push_back(us / 1000);
    for (double us : run(true, {"setup", "internet.bench", "9000", n})) {
      setup_proxied.push_back(us / 1000);
    }
    auto d = run(false, {"stream", inside, "9000", bytes});
    auto p = run(true, {"stream", "internet.bench", "9000", bytes});
    mbs_direct.push_back(d[0] / d[1] / 1e6);
    mbs_proxied.push_back(p[0] / p[1] / 1e6);
  }

  Say("egress from a box (real engine, the spoke's proxy and rules) vs a plain container\n");
  Say("  set-up, direct     n=%-4zu p50 %7.3f ms   p95 %7.3f ms\n", setup_direct.size(),
      At(setup_direct, 0.5), At(setup_direct, 0.95));
  Say("  set-up, proxied    n=%-4zu p50 %7.3f ms   p95 %7.3f ms\n", setup_proxied.size(),
      At(setup_proxied, 0.5), At(setup_proxied, 0.95));
  Say("  added per connection: p50 %.3f ms   p95 %.3f ms   (goal <= 1 ms)\n",
      At(setup_proxied, 0.5) - At(setup_direct, 0.5),
      At(setup_proxied, 0.95) - At(setup_direct, 0.95));
  Say("  throughput, %lld MiB x3: direct median %.0f MB/s, proxied median %.0f MB/s\n", mib,
      At(mbs_direct, 0.5), At(mbs_proxied, 0.5));
  Say("  proxied / direct: %.1f %%   (goal >= 80 %%)\n",
      100.0 * At(mbs_proxied, 0.5) / At(mbs_direct, 0.5));

  (void)boxes.Destroy(box_id, 1s);
  (void)engine.RemoveContainer(*direct, true);
  (void)engine.RemoveNetwork(direct_net);
  proxy.Stop();
  (void)firewall->Reset({});
  (void)runner.Run(
      {.argv = {"/usr/sbin/nft", "delete", "table", "inet", spoke::egress::NftTableName(name)}});
  stop = true;
  server.join();
  close(listen_fd);
  llmbox::bench::WriteReport();
  return 0;
}
