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
#include <string_view>

#include "absl/status/statusor.h"
#include <sys/types.h>

namespace llmbox::common {

// Replaces `path` with `content` so that readers see the old file or the new one, never a
// mix: writes a temp file beside `path` (created exclusively, with `mode` from the start, then
// exactly `mode` whatever the umask), fsyncs it, renames it over `path` and fsyncs the folder.
// Missing parent folders are created with mode 0700; existing ones are left as they are.
// FailedPrecondition naming the path and the system's reason on failure; the temp file is
// removed then, and `path` is unchanged. A folder that cannot be synced after the rename is
// logged (a warning), not an error: the file is already in place.
[[nodiscard]] absl::Status WriteFileAtomic(const std::string& path, std::string_view content,
                                           mode_t mode);

// A process's state directory: creates `dir` (and parents) when missing and makes it 0700.
// FailedPrecondition naming the folder when it cannot be made.
[[nodiscard]] absl::Status EnsureStateDir(const std::string& dir);

// The whole file, read without holding more than `max_bytes` (plus one read buffer).
// NotFound naming the path and the reason when it cannot be opened or read (a folder cannot),
// FailedPrecondition when it is larger than `max_bytes`.
[[nodiscard]] absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                                        std::size_t max_bytes = 1 << 20);

// A secret from a file only its owner may read: ReadSmallFile's bounds and errors, and first
// the file's own mode, checked on the opened file: it must be a regular file that gives others
// no permission at all and its group none to write (at most 0640; 0600 is usual), so that no
// other local user can read or replace the secret. PermissionDenied naming the path, its mode
// and the chmod that fixes it when it is more open; FailedPrecondition when it is not a
// regular file (or larger than `max_bytes`). One trailing newline ("\n" or "\r\n") is dropped.
[[nodiscard]] absl::StatusOr<std::string> ReadPrivateFile(const std::string& path,
                                                          std::size_t max_bytes = 64 << 10);

}  // namespace llmbox::common
