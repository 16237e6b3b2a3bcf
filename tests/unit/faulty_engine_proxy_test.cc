// The fault-injecting engine proxy of the e2e tests (tests/support/faulty_engine_proxy.h),
// over a stand-in engine on a unix socket in a scratch directory.
#include "tests/support/faulty_engine_proxy.h"

#include <unistd.h>

#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/support/scratch_dir.h"

namespace llmbox::testing {
namespace {

// A unix stream socket and the address of `path` (shorter than sun_path).
int UnixSocket(const std::string& path, sockaddr_un* addr) {
  REQUIRE(path.size() < sizeof(addr->sun_path));
  *addr = {};
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  return fd;
}

int Listen(const std::string& path) {
  sockaddr_un addr;
  const int fd = UnixSocket(path, &addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  return fd;
}

// Sends `request` to the unix socket at `path` and reads the answer to its end.
std::string Ask(const std::string& path, const std::string& request) {
  sockaddr_un addr;
  const int fd = UnixSocket(path, &addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::string answer;
  char chunk[4096];
  for (ssize_t n; (n = ::recv(fd, chunk, sizeof(chunk), 0)) > 0;) answer.append(chunk, n);
  ::close(fd);
  return answer;
}

// An engine that answers each connection's request "200 ok" and keeps what it was sent.
struct StandInEngine {
  explicit StandInEngine(const std::string& path) : fd(Listen(path)) {
    thread = std::thread([this] {
      for (int client; (client = ::accept(fd, nullptr, nullptr)) >= 0;) {
        std::string got;
        char chunk[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = ::recv(client, chunk, sizeof(chunk), 0);
          if (n <= 0) break;
          got.append(chunk, n);
        }
        {
          std::lock_guard lock(mu);
          requests.push_back(got);
        }
        const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)::send(client, ok.data(), ok.size(), MSG_NOSIGNAL);
        ::close(client);
      }
    });
  }
  ~StandInEngine() {
    ::shutdown(fd, SHUT_RDWR);
    thread.join();
    ::close(fd);
  }
  std::vector<std::string> Requests() {
    std::lock_guard lock(mu);
    return requests;
  }
  int fd;
  std::mutex mu;
  std::vector<std::string> requests;
  std::thread thread;
};

// A stand-in engine in a scratch folder and the proxy in front of it.
struct ProxyRig {
  ProxyRig()
      : dir("faulty-proxy"),
        engine((dir.path() / "engine.sock").string()),
        proxy(FaultyEngineProxy::Start((dir.path() / "proxy.sock").string(),
                                       (dir.path() / "engine.sock").string())) {
    REQUIRE(proxy.ok());
  }
  ScratchDir dir;
  StandInEngine engine;
  absl::StatusOr<std::unique_ptr<FaultyEngineProxy>> proxy;
};

TEST_CASE("the faulty engine proxy refuses creates while broken and passes the rest through",
          "[faulty-engine-proxy]") {
  ProxyRig rig;
  StandInEngine& engine = rig.engine;
  auto& proxy = rig.proxy;
  const std::string socket = (*proxy)->socket_path();
  const std::string create =
      "POST /v1.43/containers/create?name=b1 HTTP/1.1\r\nHost: docker\r\nConnection: "
      "keep-alive\r\nContent-Length: 2\r\n\r\n{}";

  const std::string passed = Ask(socket, create);
  CHECK(passed.starts_with("HTTP/1.1 200 OK"));
  REQUIRE(engine.Requests().size() == 1);
  // One request per connection: keep-alive becomes close on the way.
  CHECK(engine.Requests()[0].find("Connection: close\r\n") != std::string::npos);
  CHECK(engine.Requests()[0].find("keep-alive") == std::string::npos);

  (*proxy)->SetBroken(true);
  const std::string refused = Ask(socket, create);
  CHECK(refused.starts_with("HTTP/1.1 500 "));
  CHECK(refused.find("container create refused") != std::string::npos);
  CHECK((*proxy)->refused_creates() == 1);
  CHECK(engine.Requests().size() == 1);  // never reached the engine
  // Anything but a create still goes through while broken.
  CHECK(Ask(socket, "GET /v1.43/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
            .starts_with("HTTP/1.1 200 OK"));
  CHECK(engine.Requests().size() == 2);

  (*proxy)->SetBroken(false);
  CHECK(Ask(socket, create).starts_with("HTTP/1.1 200 OK"));
  CHECK((*proxy)->refused_creates() == 1);
}

TEST_CASE("the faulty engine proxy bounds a request head and refuses a malformed one",
          "[faulty-engine-proxy]") {
  ProxyRig rig;
  StandInEngine& engine = rig.engine;
  auto& proxy = rig.proxy;
  const std::string endless =
      "GET / HTTP/1.1\r\nX-Long: " + std::string(FaultyEngineProxy::kMaxHead + 10, 'a');
  CHECK(Ask((*proxy)->socket_path(), endless).starts_with("HTTP/1.1 431 "));
  CHECK(Ask((*proxy)->socket_path(), "NONSENSE\r\n\r\n").starts_with("HTTP/1.1 400 "));
  CHECK(engine.Requests().empty());
}

}  // namespace
}  // namespace llmbox::testing
