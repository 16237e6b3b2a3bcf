#include "common/status.h"

#include <cstdio>
#include <cstdlib>

namespace llmbox::common::internal {

void CheckFailed(std::string_view file, int line, std::string_view condition,
                 std::string_view message) {
  std::fprintf(stderr, "CHECK failed at %.*s:%d: %.*s: %.*s\n", static_cast<int>(file.size()),
               file.data(), line, static_cast<int>(condition.size()), condition.data(),
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace llmbox::common::internal
