#pragma once

// What the test rig (tests/rig/rig) brought up, for tests that need a real Docker engine.
//
//   TEST_CASE("a container runs", "[rig]") {
//     const auto& rig = llmbox::testing::Rig();          // fails loudly without a rig
//     EngineHttp engine(rig.docker_sock);
//     ...
//   }
//
// Values come from the environment (LLMBOX_TEST_DOCKER_SOCK, ...) when set, else from the
// files `rig up N` writes into $LLMBOX_RIG_DIR (engine1.env, engine2.env, engine3.env). A missing
// rig fails the test with a message saying how to start it; only LLMBOX_SKIP_DOCKER_TESTS=1 turns
// that into a skip (the process exits with 77, which ctest reports as skipped).

#include <string>

namespace llmbox::testing {

struct RigEnv {
  std::string docker_sock;   // engine 1's unix socket path
  std::string docker_sock2;  // engine 2's, empty unless the test needs engine 2
  // Engine 3, the remote engine: its TCP+TLS address and the credentials the rig made.
  std::string docker_sock3;
  std::string tls3_url;   // https://127.0.0.1:23763
  std::string tls3_ca;    // the CA that signed the engine's (and our client) certificate
  std::string tls3_cert;  // our client certificate and key
  std::string tls3_key;
  std::string tiny_image;      // busybox image, for fast tests
  std::string box_image;       // the real box image (Debian minbase), no Claude inside
  std::string claude_bin;      // the real Claude Code binary on the host, to bind-mount
  std::string claude_version;  // its pinned version (deploy/box/claude-version)
  std::string standin_claude;  // tests/rig/standin-claude
  std::string recordings_dir;  // tests/rig/recordings
};

// Reads the rig's values (no checks, no Catch2): for benchmarks and tools. Empty fields
// mean "not up".
RigEnv LoadRig();

// Engine 1 and the images. Fails the current test (Catch2 FAIL) when the rig is not up.
const RigEnv& Rig();

// Like Rig(), and also requires engine 2.
const RigEnv& RigWithSecondEngine();

// Engine 3 over TCP+TLS and the images on it; does not need engine 1.
const RigEnv& RigWithTlsEngine();

// Reads a whole file (test inputs such as recordings); fails the test when unreadable.
std::string ReadTestFile(const std::string& path);

}  // namespace llmbox::testing
