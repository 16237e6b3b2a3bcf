// llmbox-spoke: owns one Docker engine and the boxes on it; the hub drives it over gRPC with
// mutual TLS. Commands are filled in by the spoke issue; today only --version and --help.
#include <cstdio>
#include <string_view>

#include "common/version.h"

namespace {

constexpr char kUsage[] = R"(llmbox-spoke - runs sandboxed Claude Code boxes on this Docker host

Usage:
  llmbox-spoke join --hub HOST:PORT --token TOKEN --advertise ADDR   (not yet implemented)
  llmbox-spoke serve --config FILE                                   (not yet implemented)
  llmbox-spoke --version
  llmbox-spoke --help
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::printf("llmbox-spoke %s\n", llmbox::common::kVersion);
    return 0;
  }
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fputs(kUsage, stderr);
  if (argc >= 2) {
    std::fprintf(stderr, "\nllmbox-spoke: unknown or unimplemented command \"%s\"\n", argv[1]);
  }
  return 2;
}
