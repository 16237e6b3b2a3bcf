// The real engine client (CurlDockerEngine) reading exec output and logs from a fake engine on
// a unix socket that sends what a box (or a broken engine) could make it send: MiBs of output
// in many small frames, a frame cut off by the end of the stream, a frame header claiming
// 4 GiB. What the client holds is bounded by the cap while it reads, not after.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/utf8.h"
#include "spoke/docker/curl_engine.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::docker {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

std::string Frame(int type, std::string_view payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(type);
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f[4] = static_cast<char>(n >> 24);
  f[5] = static_cast<char>(n >> 16);
  f[6] = static_cast<char>(n >> 8);
  f[7] = static_cast<char>(n);
  return f.append(payload);
}

// A Docker engine on a unix socket, one request per connection. Answers the API version, an
// exec's creation and state, a container's inspection, and streams `stream` (multiplexed
// frames, sent in 4 KiB writes, then the connection closes) as the exec's upgraded console and
// as the container's logs.
class FakeEngine {
 public:
  FakeEngine(const testing::ScratchDir& dir, std::string stream)
      : socket_path_((dir.path() / "e.sock").string()), stream_(std::move(stream)) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(socket_path_.size() < sizeof(addr.sun_path));
    std::copy(socket_path_.begin(), socket_path_.end(), addr.sun_path);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeEngine() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }

  const std::string& socket_path() const { return socket_path_; }

 private:
  void Serve() {
    while (!stopping_) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      Answer(fd);
      ::close(fd);
    }
  }

  void Answer(int fd) {
    std::string head;
    char buf[4096];
    size_t end;
    while ((end = head.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    // Read the request's body too: closing with unread bytes would reset the connection
    // under the client's feet.
    size_t body_bytes = 0;
    {
      std::string lower = head.substr(0, end);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (const size_t at = lower.find("content-length:"); at != std::string::npos) {
        body_bytes = std::stoul(lower.substr(at + 15));
      }
    }
    for (size_t have = head.size() - end - 4; have < body_bytes;) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      have += static_cast<size_t>(n);
    }
    const std::string line = head.substr(0, head.find("\r\n"));
    auto json = [&](int status, const std::string& body) {
      Send(fd, "HTTP/1.1 " + std::to_string(status) +
                   " OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                   "Connection: close\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
    };
    if (line.find(" /_ping ") != std::string::npos) {
      json(200, "OK");
    } else if (line.rfind("POST ", 0) == 0 &&
               line.find("/containers/c1/exec ") != std::string::npos) {
      json(201, R"({"Id":"e1"})");
    } else if (line.find("/exec/e1/start ") != std::string::npos) {
      Send(fd, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
      SendStream(fd);
    } else if (line.find("/exec/e1/json ") != std::string::npos) {
      json(200, R"({"Running":false,"ExitCode":7,"Pid":0})");
    } else if (line.find("/containers/c1/json ") != std::string::npos) {
      json(200, R"({"Id":"c1","Name":"/c1","Config":{"Tty":false},"State":{"Running":true}})");
    } else if (line.find("/containers/c1/logs?") != std::string::npos) {
      Send(fd,
           "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
           "Connection: close\r\n\r\n");
      SendStream(fd);
    } else {
      json(404, R"({"message":"not faked: )" + line + "\"}");
    }
  }

  void SendStream(int fd) {
    for (size_t at = 0; at < stream_.size() && !stopping_; at += 4096) {
      if (!Send(fd, std::string_view(stream_).substr(at, 4096))) return;
    }
  }

  static bool Send(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  std::string socket_path_;
  std::string stream_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_ = false;
  std::thread thread_;
};

std::unique_ptr<DockerEngine> EngineFor(const FakeEngine& fake) {
  auto engine = CurlDockerEngine::Create({.unix_socket = fake.socket_path()});
  REQUIRE(engine.ok());
  return *std::move(engine);
}

TEST_CASE("exec output of 4 MiB in small frames is cut at its cap, stream by stream", "[docker]") {
  testing::ScratchDir dir("engine-output");
  std::string stream;
  // Every byte value, NUL and ESC included, in frames of 1000 bytes on both streams.
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk.push_back(static_cast<char>(i % 256));
  for (int i = 0; i < 4096; ++i) stream += Frame(i % 2 == 0 ? 1 : 2, chunk);
  FakeEngine fake(dir, stream);
  auto ran = EngineFor(fake)->Exec(
      "c1", {.argv = {"cat", "/dev/urandom"}, .timeout = 30s, .max_output_bytes = 64u << 10});
  INFO(ran.status().ToString());
  REQUIRE(ran.ok());
  CHECK(ran->exit_code == 7);
  CHECK(ran->stdout_data.size() == 64u << 10);
  CHECK(ran->stderr_data.size() == 64u << 10);
  CHECK(ran->stdout_truncated);
  CHECK(ran->stderr_truncated);
  CHECK(ran->stdout_data.substr(0, 1000) == chunk);  // the oldest bytes, unchanged
  CHECK_FALSE(ran->timed_out);
}

TEST_CASE("exec output cut off inside a frame by the end of the stream keeps what came",
          "[docker]") {
  testing::ScratchDir dir("engine-output-cut");
  const std::string stream = Frame(1, "whole ") + Frame(1, "partial payload").substr(0, 8 + 7);
  FakeEngine fake(dir, stream);
  auto ran = EngineFor(fake)->Exec("c1", {.argv = {"true"}, .timeout = 30s});
  INFO(ran.status().ToString());
  REQUIRE(ran.ok());
  CHECK(ran->stdout_data == "whole partial");
  CHECK(ran->exit_code == 7);
}

TEST_CASE("an exec frame header claiming 4 GiB ends the exec with an error naming the frame",
          "[docker]") {
  testing::ScratchDir dir("engine-output-huge");
  const std::string stream =
      Frame(1, "before ") + "\x01\x00\x00\x00\xff\xff\xff\xff"s + std::string(100'000, 'x');
  FakeEngine fake(dir, stream);
  auto ran = EngineFor(fake)->Exec("c1", {.argv = {"true"}, .timeout = 30s});
  REQUIRE_FALSE(ran.ok());
  CHECK(absl::IsInvalidArgument(ran.status()));
  CHECK(ran.status().message().find("a frame of 4294967295 bytes") != std::string::npos);
}

TEST_CASE("4 MiB of logs keep only their newest bytes while they are read", "[docker]") {
  testing::ScratchDir dir("engine-output-logs");
  std::string stream;
  for (int i = 0; i < 4096; ++i) {
    stream += Frame(i % 2 == 0 ? 1 : 2, std::string(1000, static_cast<char>('a' + i % 26)));
  }
  stream += Frame(1, "the newest line\n");
  FakeEngine fake(dir, stream);
  auto logs = EngineFor(fake)->Logs("c1", {.tail = 0, .max_bytes = 64u << 10});
  INFO(logs.status().ToString());
  REQUIRE(logs.ok());
  CHECK(logs->truncated);
  CHECK(logs->output.size() == 64u << 10);
  CHECK(logs->output.substr(logs->output.size() - 16) == "the newest line\n");
}

}  // namespace
}  // namespace llmbox::spoke::docker
