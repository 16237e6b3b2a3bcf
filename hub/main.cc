// llmbox-hub: the front door. MCP over streamable HTTP, the activation page, the registry,
// and placement of boxes onto spokes. Commands are filled in by the hub issue; today only
// --version and --help.
#include <cstdio>
#include <string_view>

#include "common/version.h"

namespace {

constexpr char kUsage[] = R"(llmbox-hub - hosts sandboxed Claude Code boxes for chatbots

Usage:
  llmbox-hub token create --name NAME --ttl 1h                      (not yet implemented)
  llmbox-hub serve --config FILE                                   (not yet implemented)
  llmbox-hub --version
  llmbox-hub --help
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::printf("llmbox-hub %s\n", llmbox::common::kVersion);
    return 0;
  }
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fputs(kUsage, stderr);
  if (argc >= 2) {
    std::fprintf(stderr, "\nllmbox-hub: unknown or unimplemented command \"%s\"\n", argv[1]);
  }
  return 2;
}
