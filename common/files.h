// common/files.h
//
// Small files that must never be seen half-written or with a loose mode: keys, certificates,
// the cluster CA.
//
//   LLMBOX_RETURN_IF_ERROR(WriteFileAtomic("/var/lib/llmbox-spoke/tls/spoke.key", key, 0600));
//   LLMBOX_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile("/etc/llmbox/ca.crt"));
//
// Thread-safe; no state.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include <sys/types.h>

namespace llmbox::common {

// Writes `content` to a temp file beside `path` created with `mode`, fsyncs it and renames it
// over `path`, creating missing parent folders (mode 0700). FailedPrecondition naming the
// path and the system's reason on failure.
[[nodiscard]] absl::Status WriteFileAtomic(const std::string& path, std::string_view content,
                                           mode_t mode);

// The whole file. NotFound naming the path when it cannot be read, FailedPrecondition when
// it is larger than `max_bytes`.
[[nodiscard]] absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                                        std::size_t max_bytes = 1 << 20);

}  // namespace llmbox::common
