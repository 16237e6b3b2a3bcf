#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "tests/rig/rig_env.h"

namespace llmbox::testing {
namespace {

// KEY=VALUE lines of $LLMBOX_RIG_DIR/engine{1,2,3}.env.
std::map<std::string, std::string> ReadRigFiles() {
  std::map<std::string, std::string> values;
  const char* dir = std::getenv("LLMBOX_RIG_DIR");
  if (dir == nullptr) return values;
  for (const char* name : {"/engine1.env", "/engine2.env", "/engine3.env"}) {
    std::ifstream in(std::string(dir) + name);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  return values;
}

}  // namespace

RigEnv LoadRig() {
  auto files = ReadRigFiles();
  auto get = [&](const char* key) -> std::string {
    if (const char* v = std::getenv(key); v != nullptr && *v != '\0') return v;
    auto it = files.find(key);
    return it == files.end() ? std::string() : it->second;
  };
  RigEnv env;
  env.docker_sock = get("LLMBOX_TEST_DOCKER_SOCK");
  env.docker_sock2 = get("LLMBOX_TEST_DOCKER_SOCK2");
  env.docker_sock3 = get("LLMBOX_TEST_DOCKER_SOCK3");
  env.tls3_url = get("LLMBOX_TEST_DOCKER_TLS3_URL");
  env.tls3_ca = get("LLMBOX_TEST_DOCKER_TLS3_CA");
  env.tls3_cert = get("LLMBOX_TEST_DOCKER_TLS3_CERT");
  env.tls3_key = get("LLMBOX_TEST_DOCKER_TLS3_KEY");
  env.tiny_image = get("LLMBOX_TEST_TINY_IMAGE");
  env.box_image = get("LLMBOX_TEST_BOX_IMAGE");
  env.claude_bin = get("LLMBOX_TEST_CLAUDE_BIN");
  env.claude_version = get("LLMBOX_TEST_CLAUDE_VERSION");
  env.standin_claude = get("LLMBOX_TEST_STANDIN_CLAUDE");
  env.recordings_dir = get("LLMBOX_TEST_RECORDINGS_DIR");
  return env;
}

}  // namespace llmbox::testing
