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

// KEY=VALUE lines of $LLMBOX_RIG_DIR/engine{1,2}.env.
std::map<std::string, std::string> ReadRigFiles() {
  std::map<std::string, std::string> values;
  const char* dir = std::getenv("LLMBOX_RIG_DIR");
  if (dir == nullptr) return values;
  for (const char* name : {"/engine1.env", "/engine2.env"}) {
    std::ifstream in(std::string(dir) + name);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  return values;
}

RigEnv Load() {
  auto files = ReadRigFiles();
  auto get = [&](const char* key) -> std::string {
    if (const char* v = std::getenv(key); v != nullptr && *v != '\0') return v;
    auto it = files.find(key);
    return it == files.end() ? std::string() : it->second;
  };
  RigEnv env;
  env.docker_sock = get("LLMBOX_TEST_DOCKER_SOCK");
  env.docker_sock2 = get("LLMBOX_TEST_DOCKER_SOCK2");
  env.tiny_image = get("LLMBOX_TEST_TINY_IMAGE");
  env.box_image = get("LLMBOX_TEST_BOX_IMAGE");
  env.claude_bin = get("LLMBOX_TEST_CLAUDE_BIN");
  env.claude_version = get("LLMBOX_TEST_CLAUDE_VERSION");
  env.standin_claude = get("LLMBOX_TEST_STANDIN_CLAUDE");
  env.recordings_dir = get("LLMBOX_TEST_RECORDINGS_DIR");
  return env;
}

const RigEnv& Loaded() {
  static const RigEnv env = Load();
  return env;
}

constexpr const char* kHowToStart =
    "the test rig is not up. Run the tests through ctest (its fixtures start the rig), or "
    "start it by hand with `tests/rig/rig up 1` (and `up 2`) and set LLMBOX_RIG_DIR; set "
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

std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) FAIL("cannot read test file " << path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace llmbox::testing
