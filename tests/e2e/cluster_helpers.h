// tests/e2e/cluster_helpers.h
//
// What the cluster's e2e tests share: our CLIs run to their end, join tokens from
// `llmbox-hub spoke token create`, spokes joined with `llmbox-spoke join` and served with
// `llmbox-spoke serve` on a rig engine, containers counted on an engine, and spokes read out
// of list_spokes.
//
//   HubProcess hub(hub_config, dir.path / "hub.log");
//   const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");
//   JoinedSpoke w1 = JoinSpoke(dir.path, hub_config, cluster_port, rig.docker_sock2, rig, "w1");
//   w1.Serve();
//   WaitForSpokeState(hub.url, "w1", "ready", dir.path / "w1-ready");
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {

// Runs one of our CLIs to its end (120 s at most); its exit code and output.
CallResult RunCli(const std::vector<std::string>& argv, const std::filesystem::path& log);

// How many containers of box `box_id` the engine at `socket` has.
std::size_t ContainersOf(const std::string& socket, const std::string& box_id);
// How many networks of box `box_id` the engine at `socket` has.
std::size_t NetworksOf(const std::string& socket, const std::string& box_id);

// A one-time join token for `name` from `llmbox-hub spoke token create` (ttl 10m).
std::string CreateJoinToken(const std::filesystem::path& dir, const std::string& hub_config,
                            const std::string& name);

// A spoke's config (spoke.yaml in `dir`) on the engine at `docker_socket`: its tls section
// names the files join writes (tls/ in `dir`, not there yet), state in spoke-state/, the rig's
// box image and stand-in Claude, with `tls_extra` keys under tls: and `extra_yaml` (whole
// sections) appended. Returns the file's path.
std::string WriteSpokeConfig(const std::filesystem::path& dir, const RigEnv& rig,
                             const std::string& docker_socket, const std::string& name, int port,
                             const std::string& tls_extra = "", const std::string& extra_yaml = "");

// A spoke joined to a hub, in a folder of its own; not serving until Serve().
struct JoinedSpoke {
  std::string name;
  std::filesystem::path dir;
  std::string config;
  int port = 0;  // its listen (and advertise) port on 127.0.0.1
  std::unique_ptr<ChildProcess> process;

  // Starts `llmbox-spoke serve` (logging to <dir>/<log_name>) and waits until it serves.
  void Serve(const std::string& log_name = "spoke.log");
  // SIGTERM and wait; its exit code (0 when it was not serving).
  int Stop();
};

// Makes <dir>/<name>, writes its config on `docker_socket` (WriteSpokeConfig, with
// `extra_yaml`), and joins it to the hub at 127.0.0.1:<cluster_port> with a fresh token,
// advertising `advertise` (empty: 127.0.0.1:<its port>). Fails the test when join fails.
JoinedSpoke JoinSpoke(const std::filesystem::path& dir, const std::string& hub_config,
                      const std::string& cluster_port, const std::string& docker_socket,
                      const RigEnv& rig, const std::string& name,
                      const std::string& extra_yaml = "", const std::string& advertise = "");

// The entry for `name` in a list_spokes call's (last) `RESULT <json>` line; nullopt when absent or
// the call failed.
std::optional<nlohmann::json> ListedSpoke(const std::string& output, const std::string& name);

// Asks `check` until it holds or `limit` passes (a second between asks); whether it held.
bool Eventually(std::chrono::seconds limit, const std::function<bool()>& check);

// Calls list_spokes (every 250 ms, `limit` at most) until `name` shows `state`; whether it did.
// Logs go to <log_prefix>-N.log.
bool WaitForSpokeState(const std::string& hub_url, const std::string& key, const std::string& name,
                       const std::string& state, const std::filesystem::path& log_prefix,
                       std::chrono::seconds limit = std::chrono::seconds(60));

// create_llmbox through the SDK client with `arguments`; the box's activation URL (the test
// fails when the create does).
std::string CreateBoxForUrl(const std::string& hub_url, const std::string& key,
                            const nlohmann::json& arguments, const std::filesystem::path& log);

// Activates a box as a person would without a browser (tests/e2e/node/activate.mjs: the
// activation page, a code the stand-in Claude accepts); whether the page said it is ready.
bool ActivateBox(const std::string& hub_url, const std::string& auth_url,
                 const std::filesystem::path& log);

}  // namespace llmbox::testing
