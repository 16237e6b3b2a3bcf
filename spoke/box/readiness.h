// spoke/box/readiness.h
//
// Whether this spoke can create a box right now, as far as can be told without making one:
// the host's Claude binary (boxes.claude_bin) is an executable file, and the engine has the
// default image (boxes.default_image). `check-config` and `serve` say so at start, and every
// health answer tells the hub (HealthResponse.cannot_create), so an operator who imports the
// image or installs the binary sees the spoke become ready at the hub's next health round.
//
//   if (auto st = CheckCanCreate(engine, options, info.endpoint); !st.ok()) {
//     spdlog::warn("cannot create boxes: {}", st.message());   // says what to do
//   }
//
// Thread-safe (as thread-safe as `engine`); no state.
#pragma once

#include <string_view>

#include "absl/status/status.h"

#include "spoke/box/manager.h"
#include "spoke/docker/engine.h"

namespace llmbox::spoke::box {

// Checks claude_bin and default_image (the engine is asked; Ping it first). OK, or
// FailedPrecondition naming each problem and its fix, "; "-separated (an engine that fails to
// answer the image question is one, with its words). `engine_name` is how the engine is
// shown (EngineInfo::endpoint, e.g. "unix:///run/docker.sock").
[[nodiscard]] absl::Status CheckCanCreate(docker::DockerEngine& engine,
                                          const BoxManagerOptions& options,
                                          std::string_view engine_name);

}  // namespace llmbox::spoke::box
