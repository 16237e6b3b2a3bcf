// tests/e2e/cluster_helpers.h
//
// What the cluster e2e tests share: our CLIs run to their end, a joined spoke's config on the
// rig's second engine, a one-time join token, and the containers an engine has of a box.
//
//   const std::string token = CreateJoinToken(dir.path, hub_config, "remote-1");
//   const auto joined = Run({LLMBOX_SPOKE_BIN, "join", ...}, dir.path / "join.log");
//   CHECK(ContainersOf(rig.docker_sock2, box_id) == 1);
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"

namespace llmbox::testing {

// Runs one of our CLIs to its end (at most 120 s); its exit code and output.
CallResult Run(const std::vector<std::string>& argv, const std::filesystem::path& log);

// How many containers of box `box_id` the engine at `socket` has.
std::size_t ContainersOf(const std::string& socket, const std::string& box_id);

// The spoke's config (spoke.yaml in `dir`) on the rig's engine 2, listening on 127.0.0.1:
// `port`: its tls section names the files join writes (in a folder not there yet), with
// `tls_extra` keys added.
std::string WriteSpokeConfig(const std::filesystem::path& dir, const RigEnv& rig,
                             const std::string& name, int port, const std::string& tls_extra);

// A one-time join token for `name` from `llmbox-hub spoke token create`.
std::string CreateJoinToken(const std::filesystem::path& dir, const std::string& hub_config,
                            const std::string& name);

}  // namespace llmbox::testing
