// A spoke that cannot create, end to end (issue 18): a spoke joined to a hub whose engine
// lacks its default image says so in check-config, serves all the same, and the hub's
// list_spokes shows it not_ready; `llmbox-spoke image import` of a `docker save` archive
// (gzip) brings the image and the spoke becomes ready at the next health round, with no
// restart. The join prints llmbox's own lines only (no raw gRPC errors, on either side).
// Runs on the rig's engine 2 with an image tag of its own (cfg-box-...), removed at the end.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/e2e/cluster_helpers.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Removes the image tag at the end of the test, whatever happened.
struct DropTag {
  EngineHttp& engine;
  std::string tag;
  ~DropTag() { engine.Call("DELETE", "/v1.41/images/" + tag + "?noprune=1"); }
};

TEST_CASE("a joined spoke without its box image is not ready until image import brings it",
          "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-readiness-e2e");
  EngineHttp engine2(rig.docker_sock2);
  const std::string repo = UniqueId("cfg-box");
  const std::string tag = repo + ":t";

  // The archive a build host would make: `docker save <image> | gzip`, of a tag the engine
  // then no longer has (the tiny image keeps the layers; only the name goes).
  REQUIRE(engine2.Call("POST", "/v1.41/images/" + rig.tiny_image + "/tag?repo=" + repo + "&tag=t")
              .status == 201);
  DropTag drop{engine2, tag};
  const HttpReply saved = engine2.Call("GET", "/v1.41/images/" + tag + "/get");
  REQUIRE(saved.status == 200);
  const fs::path archive = dir.path / "box.tar";
  std::ofstream(archive, std::ios::binary) << saved.body;
  REQUIRE(std::system(("gzip -f " + archive.string()).c_str()) == 0);
  REQUIRE(engine2.Call("DELETE", "/v1.41/images/" + tag + "?noprune=1").status == 200);

  WriteConfig(dir.path, rig, rig.standin_claude, "off", "", "cluster:\n  listen: 127.0.0.1:0\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");
  const std::string name = UniqueId("cfg-ready");
  JoinedSpoke spoke = JoinSpoke(dir.path, hub_config, cluster_port, rig.docker_sock2, rig, name);

  // The join printed llmbox's lines only, and the hub logged no gRPC error for it.
  const std::string join_log = ReadFileOrEmpty(spoke.dir / "join.log");
  INFO(join_log);
  CHECK(Contains(join_log, "joined as spoke"));
  CHECK_FALSE(Contains(join_log, "No match found for server name"));
  CHECK_FALSE(Contains(join_log, "ssl_transport_security"));
  // (The hub logs at debug here, where gRPC's benign server-name line may show as our own
  // "grpc: ..." debug record; never as gRPC's raw error line.)
  CHECK_FALSE(Contains(hub.process.Log(), "ssl_transport_security"));

  // The spoke's default image is the one the engine lacks.
  std::string config = ReadFileOrEmpty(spoke.config);
  const std::string image_line = "default_image: " + rig.box_image;
  REQUIRE(Contains(config, image_line));
  config.replace(config.find(image_line), image_line.size(), "default_image: " + tag);
  std::ofstream(spoke.config) << config;

  const auto checked = RunCli({LLMBOX_SPOKE_BIN, "check-config", "--config", spoke.config},
                              spoke.dir / "check-1.log");
  INFO(checked.log);
  CHECK(checked.exit_code == 1);
  CHECK(Contains(checked.log, "is valid"));
  CHECK(Contains(checked.log, "boxes.default_image \"" + tag +
                                  "\" is not on the engine at unix://" + rig.docker_sock2));
  CHECK(Contains(checked.log, "llmbox-spoke image import"));

  // It serves all the same, says why it cannot create, and the hub shows it not ready.
  spoke.Serve();
  CHECK(Contains(spoke.process->Log(), "cannot create boxes until this is fixed"));
  CHECK(WaitForSpokeState(hub.url, "", name, "not_ready", dir.path / "spokes-not-ready"));
  hub.process.WaitForLog("spoke " + name + ": answers its health checks; cannot create boxes");

  const auto imported = RunCli({LLMBOX_SPOKE_BIN, "image", "import",
                                (dir.path / "box.tar.gz").string(), "--config", spoke.config},
                               spoke.dir / "import.log");
  INFO(imported.log);
  REQUIRE(imported.exit_code == 0);
  CHECK(Contains(imported.log, "(100%)"));
  CHECK(Contains(imported.log, "loaded " + tag));
  CHECK(Contains(imported.log, "boxes.default_image " + tag + " is on the engine"));

  // Healed in place: ready at the next health round, no restart.
  CHECK(WaitForSpokeState(hub.url, "", name, "ready", dir.path / "spokes-ready"));
  hub.process.WaitForLog("spoke " + name + ": can create boxes again");
  spoke.process->WaitForLog("can create boxes again");
  const auto rechecked = RunCli({LLMBOX_SPOKE_BIN, "check-config", "--config", spoke.config},
                                spoke.dir / "check-2.log");
  INFO(rechecked.log);
  CHECK(rechecked.exit_code == 0);
  CHECK(Contains(rechecked.log, "this host can create boxes"));
  CHECK(spoke.Stop() == 0);
}

}  // namespace
}  // namespace llmbox::testing
