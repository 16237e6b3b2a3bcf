#pragma once

// A TCP proxy on loopback that a test can cut: a network partition between two processes
// without stopping either. It listens on 127.0.0.1:<port> and relays every connection to
// `target` (a loopback port), byte for byte (TLS passes through untouched). Close() resets
// every relayed connection and stops listening, so a connect is refused as from a closed
// port; Open() listens on the same port again.
//
//   LoopbackProxy proxy(spoke_port);            // listens on a port of its own
//   ... the spoke advertises 127.0.0.1:<proxy.port()> ...
//   proxy.Close();                              // partition
//   proxy.Open();                               // healed
//
// Thread-safe: Open and Close may come from any thread; one relay thread runs while open.
// Errors: the constructor and Open abort the test (a Catch2 REQUIRE) when the port cannot be
// bound.

#include <atomic>
#include <mutex>
#include <thread>

namespace llmbox::testing {

class LoopbackProxy {
 public:
  // Listens at once on a loopback port the kernel picks.
  explicit LoopbackProxy(int target_port);
  ~LoopbackProxy();  // Close()
  LoopbackProxy(const LoopbackProxy&) = delete;
  LoopbackProxy& operator=(const LoopbackProxy&) = delete;

  int port() const { return port_; }
  // Resets the relayed connections and stops listening; nothing when closed.
  void Close();
  // Listens on port() again; nothing when open.
  void Open();

 private:
  void Listen(int port);
  void Relay(int listener, int wake);

  const int target_port_;
  int port_ = 0;
  std::mutex mu_;  // guards the fields below
  std::thread relay_;
  int wake_write_ = -1;  // written to stop the relay thread
};

}  // namespace llmbox::testing
