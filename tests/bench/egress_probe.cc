// A client the egress box bench runs inside containers (built static, copied in): times TCP
// connection set-up and a bulk read, directly or through an HTTP CONNECT proxy.
//
//   egress_probe setup  HOST PORT N      [PROXY_ADDR PROXY_PORT]  -> N set-up times in µs, sorted
//   egress_probe stream HOST PORT BYTES  [PROXY_ADDR PROXY_PORT]  -> "<bytes> <seconds>"
//
// The server (in the bench) reads one line "GET <n>\n" and answers n bytes. HOST is an IPv4
// address without a proxy, and whatever the proxy resolves with one.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace {

int Dial(const char* address, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address, &sa.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("connect");
    std::exit(2);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) std::exit(3);
    off += static_cast<size_t>(n);
  }
}

// A connection to host:port, through the proxy when one is given (its 200 read).
int Open(const char* host, int port, const char* proxy, int proxy_port) {
  if (proxy == nullptr) return Dial(host, port);
  int fd = Dial(proxy, proxy_port);
  const std::string target = std::string(host) + ":" + std::to_string(port);
  SendAll(fd, "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n");
  std::string head;
  char ch;
  while (head.size() < 4096 && head.find("\r\n\r\n") == std::string::npos) {
    if (recv(fd, &ch, 1, 0) != 1) std::exit(4);
    head += ch;
  }
  if (head.find(" 200 ") == std::string::npos) {
    std::fprintf(stderr, "proxy said: %s\n", head.c_str());
    std::exit(5);
  }
  return fd;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: egress_probe setup|stream HOST PORT N|BYTES [PROXY PORT]\n");
    return 1;
  }
  const std::string mode = argv[1];
  const char* host = argv[2];
  const int port = std::atoi(argv[3]);
  const long long count = std::atoll(argv[4]);
  const char* proxy = argc > 6 ? argv[5] : nullptr;
  const int proxy_port = argc > 6 ? std::atoi(argv[6]) : 0;
  if (mode == "setup") {
    std::vector<long long> micros;
    for (long long i = 0; i < count; ++i) {
      const double start = Now();
      int fd = Open(host, port, proxy, proxy_port);
      SendAll(fd, "GET 1\n");
      char ch;
      if (recv(fd, &ch, 1, MSG_WAITALL) != 1) return 6;
      micros.push_back(static_cast<long long>((Now() - start) * 1e6));
      close(fd);
    }
    std::sort(micros.begin(), micros.end());
    for (long long m : micros) std::printf("%lld ", m);
    std::printf("\n");
    return 0;
  }
  const double start = Now();
  int fd = Open(host, port, proxy, proxy_port);
  SendAll(fd, "GET " + std::to_string(count) + "\n");
  static char buf[1 << 20];
  long long got = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got += n;
  }
  std::printf("%lld %.6f\n", got, Now() - start);
  return got == count ? 0 : 7;
}
