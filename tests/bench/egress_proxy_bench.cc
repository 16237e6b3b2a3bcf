// Benchmark: what the spoke's egress proxy adds, over loopback. A box's listener on
// 127.0.0.2, an echo server and a sink server on 127.0.0.3 (lifted from the always-denied set,
// open mode, reached by a name from the proxy's static hosts). Measured, direct and through
// the proxy:
//   - connection set-up: connect, (CONNECT and its 200,) one byte there and back; p50/p95 ms
//     and the milliseconds the proxy adds per connection (goal <= 1 ms);
//   - throughput: one connection sending N MiB to the sink until it closes; MB/s and the
//     proxied share of direct (goal >= 80 %).
//
// CPU time per GB is shown per thread (client, server, and the rest of the process: the
// proxy), because over loopback every stage is CPU-bound: on a 2-vCPU machine the proxied
// run has three busy threads (client, proxy, server) on two cores where the direct run has
// two, and the hop's kernel TCP work costs the proxy about what the direct client's send
// path costs. That, not copying (the relay splices), is what bounds the proxied share there.
//
// It asserts nothing about time; it fails only when bytes go missing.
//
//   build/tests/bench/llmbox_egress_proxy_bench [connections, default 500] [MiB, default 256]

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "spdlog/sinks/null_sink.h"
#include "spdlog/spdlog.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "spoke/egress/proxy.h"
#include "tests/bench/bench_report.h"

namespace {

namespace egress = llmbox::spoke::egress;
using Clock = std::chrono::steady_clock;

using llmbox::bench::Say;

bool failed = false;

void Expect(bool ok, const char* what) {
  if (!ok) {
    Say("  WRONG: %s\n", what);
    failed = true;
  }
}

int Dial(const char* ip, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip, &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A loopback server on 127.0.0.3 that runs `handler` on a thread per connection.
class Server {
 public:
  explicit Server(std::function<void(int)> handler) : handler_(std::move(handler)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.3", &addr.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd_, 512) != 0) {
      std::perror("bench server");
      std::exit(2);
    }
    socklen_t length = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;
        const int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        ++running_;
        std::thread([this, client] {
          handler_(client);
          close(client);
          --running_;
        }).detach();
      }
    });
  }
  ~Server() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
    while (running_ > 0) std::this_thread::yield();
  }
  int port() const { return port_; }

 private:
  std::function<void(int)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> running_{0};
  std::thread thread_;
};

void Echo(int fd) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0 || !SendAll(fd, buffer, static_cast<size_t>(n))) return;
  }
}

double ThreadCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Reads to EOF, then answers with the byte count and the CPU time it spent.
void Sink(int fd) {
  const double cpu_start = ThreadCpuSeconds();
  std::vector<char> buffer(1 << 20);
  uint64_t answer[2] = {0, 0};
  for (;;) {
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    answer[0] += static_cast<uint64_t>(n);
  }
  answer[1] = static_cast<uint64_t>((ThreadCpuSeconds() - cpu_start) * 1e9);
  SendAll(fd, reinterpret_cast<const char*>(answer), sizeof(answer));
}

// Reads the proxy's answer head; true for a 200.
bool ReadConnectAnswer(int fd) {
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
  return head.starts_with("HTTP/1.1 200 ");
}

// Opens a connection to the server (through the proxy when `proxy_port` is not 0), ready to
// carry bytes; -1 on failure.
int Open(int proxy_port, const std::string& name, int server_port) {
  if (proxy_port == 0) return Dial("127.0.0.3", server_port);
  const int fd = Dial("127.0.0.2", proxy_port);
  if (fd < 0) return -1;
  const std::string target = name + ":" + std::to_string(server_port);
  const std::string request = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
  if (!SendAll(fd, request.data(), request.size()) || !ReadConnectAnswer(fd)) {
    close(fd);
    return -1;
  }
  return fd;
}

using llmbox::bench::Percentile;

// Set-up times in ms: open, one byte there and back.
std::vector<double> SetupTimes(int connections, int proxy_port, int echo_port) {
  std::vector<double> times;
  for (int i = 0; i < connections; ++i) {
    const auto start = Clock::now();
    const int fd = Open(proxy_port, "echo.bench", echo_port);
    char byte = 'x';
    const bool ok = fd >= 0 && SendAll(fd, &byte, 1) && recv(fd, &byte, 1, 0) == 1 && byte == 'x';
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    Expect(ok, "a set-up round trip failed");
    if (fd >= 0) close(fd);
    if (!ok) break;
  }
  return times;
}

// CPU seconds (user and system, every thread of this process) so far.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU seconds per 10^9 bytes.
struct Rate {
  double mb_per_s = 0;
  double client_cpu = 0;
  double server_cpu = 0;
  double rest_cpu = 0;  // the rest of the process: the proxy's thread (when proxied)
};

// One connection sending `mib` MiB to the sink (until the sink's count comes back).
Rate Throughput(int proxy_port, int sink_port, size_t mib) {
  const std::vector<char> chunk(1 << 20, 'a');
  const double cpu_start = CpuSeconds();
  const double client_start = ThreadCpuSeconds();
  const auto start = Clock::now();
  const int fd = Open(proxy_port, "sink.bench", sink_port);
  if (fd < 0) {
    Expect(false, "cannot open a throughput connection");
    return {};
  }
  bool ok = true;
  for (size_t i = 0; i < mib && ok; ++i) ok = SendAll(fd, chunk.data(), chunk.size());
  shutdown(fd, SHUT_WR);
  uint64_t answer[2] = {0, 0};
  ok = ok && recv(fd, answer, sizeof(answer), MSG_WAITALL) == sizeof(answer);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double client = ThreadCpuSeconds() - client_start;
  const double cpu = CpuSeconds() - cpu_start;
  close(fd);
  Expect(ok && answer[0] == mib << 20, "the sink did not receive every byte");
  const double gb = static_cast<double>(mib << 20) / 1e9;
  const double server = static_cast<double>(answer[1]) / 1e9;
  return {.mb_per_s = gb * 1e3 / seconds,
          .client_cpu = client / gb,
          .server_cpu = server / gb,
          .rest_cpu = (cpu - client - server) / gb};
}

}  // namespace

int main(int argc, char** argv) {
  const int connections = argc > 1 ? std::atoi(argv[1]) : 500;
  const size_t mib = argc > 2 ? static_cast<size_t>(std::atol(argv[2])) : 256;
  // The proxy logs every connection at info, as in the spoke: formatted, then dropped.
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>()));

  Server echo(Echo);
  Server sink(Sink);
  egress::SpokePolicy policy;
  policy.allow_ranges = {*egress::ParseCidr("127.0.0.3")};
  const egress::IpAddress upstream = *egress::ParseIp("127.0.0.3");
  auto resolver =
      egress::MakeSystemResolver({{"echo.bench", {upstream}}, {"sink.bench", {upstream}}});
  egress::EgressProxy proxy({.port = 0, .policy = policy, .resolver = resolver.get()},
                            llmbox::common::SystemClock::Get());
  if (!proxy.AddBox("bench", "127.0.0.2", {.mode = egress::Mode::kOpen}).ok()) {
    std::fprintf(stderr, "cannot listen on 127.0.0.2\n");
    return 2;
  }

  Say("egress proxy over loopback (box listener 127.0.0.2, servers on 127.0.0.3):\n");
  Say("\nconnection set-up (connect, CONNECT + 200 when proxied, 1 byte echoed), %d each:\n",
      connections);
  // Warm both paths, then interleave so both see the same machine.
  (void)SetupTimes(20, 0, echo.port());
  (void)SetupTimes(20, proxy.port(), echo.port());
  std::vector<double> direct, proxied;
  for (int round = 0; round < 5; ++round) {
    for (double t : SetupTimes(connections / 5, 0, echo.port())) direct.push_back(t);
    for (double t : SetupTimes(connections / 5, proxy.port(), echo.port())) proxied.push_back(t);
  }
  const double d50 = Percentile(direct, 0.5), d95 = Percentile(direct, 0.95);
  const double p50 = Percentile(proxied, 0.5), p95 = Percentile(proxied, 0.95);
  Say("  %-40s p50 %7.3f ms  p95 %7.3f ms\n", "direct", d50, d95);
  Say("  %-40s p50 %7.3f ms  p95 %7.3f ms\n", "through the proxy", p50, p95);
  Say("  %-40s p50 %7.3f ms  p95 %7.3f ms   (goal <= 1 ms)\n", "added per connection", p50 - d50,
      p95 - d95);

  Say("\nthroughput, one connection, %zu MiB to a sink (median of 5):\n", mib);
  std::vector<Rate> direct_rates, proxied_rates;
  for (int round = 0; round < 5; ++round) {
    direct_rates.push_back(Throughput(0, sink.port(), mib));
    proxied_rates.push_back(Throughput(proxy.port(), sink.port(), mib));
  }
  // The median run by MB/s, with its CPU times.
  auto median = [](std::vector<Rate> rates) {
    std::sort(rates.begin(), rates.end(),
              [](const Rate& a, const Rate& b) { return a.mb_per_s < b.mb_per_s; });
    return rates[rates.size() / 2];
  };
  const Rate d = median(direct_rates), p = median(proxied_rates);
  const double direct_rate = d.mb_per_s, proxied_rate = p.mb_per_s;
  Say("  %-40s %9.1f MB/s   CPU s/GB: client %.3f, server %.3f\n", "direct", d.mb_per_s,
      d.client_cpu, d.server_cpu);
  Say("  %-40s %9.1f MB/s   CPU s/GB: client %.3f, server %.3f, proxy %.3f\n", "through the proxy",
      p.mb_per_s, p.client_cpu, p.server_cpu, p.rest_cpu);
  Say("  %-40s %8.1f %%   (goal >= 80 %%)\n", "proxied / direct", 100 * proxied_rate / direct_rate);
  Expect(proxy.Refusals("bench").empty(), "the proxy refused a bench connection");

  proxy.Stop();
  llmbox::bench::WriteReport();
  return failed ? 1 : 0;
}
