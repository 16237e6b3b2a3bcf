#include "tests/rig/rig_env.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>

namespace llmbox::testing {
namespace {

void ExitIfOptedOut() {
  const char* skip = std::getenv("LLMBOX_SKIP_DOCKER_TESTS");
  if (skip != nullptr && std::string(skip) == "1") {
    std::fprintf(stderr, "SKIPPED: LLMBOX_SKIP_DOCKER_TESTS=1, and this test needs Docker\n");
    std::fflush(stderr);
    std::_Exit(77);
  }
}

const RigEnv& Loaded() {
  static const RigEnv env = LoadRig();
  return env;
}

constexpr const char* kHowToStart =
    "the test rig is not up. Run the tests through ctest (its fixtures start the rig), or "
    "start it by hand with `tests/rig/rig up 1` (and `up 2`, `up 3`) and set LLMBOX_RIG_DIR; set "
    "LLMBOX_SKIP_DOCKER_TESTS=1 to skip tests that need Docker";

}  // namespace

const RigEnv& Rig() {
  ExitIfOptedOut();
  const RigEnv& env = Loaded();
  if (env.docker_sock.empty() || env.box_image.empty() || env.tiny_image.empty() ||
      env.claude_bin.empty()) {
    FAIL("engine 1: " << kHowToStart);
  }
  return env;
}

const RigEnv& RigWithSecondEngine() {
  const RigEnv& env = Rig();
  if (env.docker_sock2.empty()) FAIL("engine 2: " << kHowToStart);
  return env;
}

const RigEnv& RigWithTlsEngine() {
  ExitIfOptedOut();
  const RigEnv& env = Loaded();
  if (env.tls3_url.empty() || env.tls3_ca.empty() || env.tls3_cert.empty() ||
      env.tls3_key.empty() || env.tiny_image.empty() || env.box_image.empty() ||
      env.standin_claude.empty()) {
    FAIL("engine 3 (TCP+TLS): " << kHowToStart);
  }
  return env;
}

std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) FAIL("cannot read test file " << path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace llmbox::testing
