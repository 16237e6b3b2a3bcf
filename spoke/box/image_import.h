// spoke/box/image_import.h
//
// `llmbox-spoke image import FILE`: loads the box image from an archive `docker save` wrote
// (plain or gzip-compressed) into the spoke's engine, so that a second host needs neither the
// checkout nor debootstrap to get it (docs/spoke.md, "The box image on another host").
//
//   LLMBOX_ASSIGN_OR_RETURN(ImportReport report,
//                           ImportBoxImage(engine, "box.tar.gz", config.boxes.default_image,
//                                          [](uint64_t sent, uint64_t total) { ... }));
//
// The file is streamed to the engine (64 KiB at a time, never held whole).
//
// Thread-compatible: one import per call; `engine` as thread-safe as it is.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "spoke/docker/engine.h"

namespace llmbox::spoke::box {

struct ImportReport {
  uint64_t bytes = 0;               // the archive's size, all of it sent
  std::vector<std::string> loaded;  // what the engine loaded (name:tag, or sha256:... by id)
  std::string default_image_id;     // the default image's id on the engine now
};

// Loads `archive_path` and checks that the engine then has `default_image`. `progress` (may be
// empty) is called with the bytes sent and the file's size as the upload runs, at most once
// per 1% (and at the end).
//
// Errors: NotFound naming the file when it cannot be opened; InvalidArgument when the engine
// refuses the archive (its words), or when it loaded, but not `default_image`: the message
// lists what it held and says to tag it or set boxes.default_image; the engine's errors
// (Unavailable naming its socket) otherwise.
[[nodiscard]] absl::StatusOr<ImportReport> ImportBoxImage(
    docker::DockerEngine& engine, const std::string& archive_path, const std::string& default_image,
    const std::function<void(uint64_t sent, uint64_t total)>& progress);

}  // namespace llmbox::spoke::box
