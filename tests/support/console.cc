#include "tests/support/console.h"

#include <chrono>

namespace llmbox::testing {

using namespace std::chrono_literals;

std::string ReadUntil(spoke::docker::AttachStream& stream, const std::string& needle) {
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    auto chunk = stream.Read(200ms);
    if (!chunk.ok()) break;
    seen += *chunk;
  }
  return seen;
}

bool StreamEnds(spoke::docker::AttachStream& stream) {
  absl::Status end;
  for (int i = 0; i < 50 && end.ok(); ++i) end = stream.Read(200ms).status();
  return absl::IsOutOfRange(end);
}

}  // namespace llmbox::testing
