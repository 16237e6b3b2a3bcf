// tests/support/faulty_engine_proxy.h
//
// A Docker engine that fails every container create while it is "broken": an HTTP proxy on a
// unix socket in front of a real engine's socket. While broken it answers
// `POST /<version>/containers/create` with 500 (as an engine with a full disk or a broken
// storage driver does) and never forwards it; everything else, and everything while healthy,
// goes through untouched (attach's upgraded streams included). Each request gets a connection
// of its own (the proxy sends `Connection: close` upstream unless the request upgrades), so
// every create is seen.
//
//   auto proxy = FaultyEngineProxy::Start(dir / "engine.sock", rig.docker_sock2);
//   (*proxy)->SetBroken(true);     // spoke.yaml's docker.socket: (*proxy)->socket_path()
//   ...
//   (*proxy)->SetBroken(false);
//
// The request line and headers are read bounded (kMaxHead bytes; more is 431 and the
// connection closes). Thread-safe; the destructor closes every connection and joins.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace llmbox::testing {

class FaultyEngineProxy {
 public:
  static constexpr std::size_t kMaxHead = 64 << 10;

  // Listens on `socket_path` (replaced when it exists) and forwards to `upstream_socket`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FaultyEngineProxy>> Start(
      const std::string& socket_path, const std::string& upstream_socket);
  ~FaultyEngineProxy();
  FaultyEngineProxy(const FaultyEngineProxy&) = delete;
  FaultyEngineProxy& operator=(const FaultyEngineProxy&) = delete;

  void SetBroken(bool broken) { broken_ = broken; }
  // Creates refused so far.
  int refused_creates() const { return refused_; }
  const std::string& socket_path() const { return socket_path_; }

 private:
  FaultyEngineProxy(std::string socket_path, std::string upstream, int listen_fd);
  void Accept();
  void Serve(int client);
  // Tracks a connection's fds so that the destructor can shut them down.
  void Track(int fd, bool add);

  const std::string socket_path_;
  const std::string upstream_;
  const int listen_fd_;
  std::atomic<bool> broken_{false};
  std::atomic<int> refused_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::set<int> open_;                    // guarded by mu_
  std::vector<std::thread> connections_;  // guarded by mu_
  std::thread acceptor_;
};

}  // namespace llmbox::testing
