// How much of the engine's data root a box may use (boxes.disk): what BoxManager asks the
// engine for on the box and exec containers, the start-time check of a writable-layer size,
// and the config keys. What the engine and kernel then enforce is shown on the rig by
// tests/integration/box_disk_test.cc.

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "hub/config/hub_config.h"
#include "hub/local/local_spoke.h"
#include "spoke/box/manager.h"
#include "spoke/config/spoke_config.h"
#include "spoke/hooks/hook_runner.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/fakes/fake_subprocess_runner.h"
#include "tests/fakes/fake_workspace_disks.h"
#include "tests/fakes/faulty_docker_engine.h"
#include "tests/fakes/scripted_console.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::box {
namespace {

constexpr char kImage[] = "llmbox-box:dev";

struct DiskWorld {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine{clock};
  testing::FaultyDockerEngine faulty{engine};
  testing::FakeSubprocessRunner runner;
  testing::FakeWorkspaceDisks disks;
  std::unique_ptr<hooks::HookRunner> hook_runner;
  std::unique_ptr<BoxManager> boxes;

  DiskWorld() { engine.AddImage(kImage); }

  static BoxManagerOptions Options() {
    BoxManagerOptions options;
    options.spoke_name = "unit";
    options.default_image = kImage;
    return options;
  }
  BoxManager& Start(BoxManagerOptions options) {
    boxes = std::make_unique<BoxManager>(faulty, clock, std::move(options), hook_runner.get(),
                                         nullptr, &disks);
    return *boxes;
  }
  // A box b1 with its exec container made; returns {box spec, exec spec}.
  std::pair<docker::ContainerSpec, docker::ContainerSpec> BoxWithExec(BoxManager& boxes) {
    REQUIRE(boxes.Create({.box_id = "b1"}).ok());
    REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
    auto box = engine.SpecOf("llmbox-pending-b1");
    auto exec = engine.SpecOf("llmbox-exec-b1");
    REQUIRE(box.has_value());
    REQUIRE(exec.has_value());
    return {*box, *exec};
  }
  size_t Containers() {
    auto list = engine.ListContainers({});
    REQUIRE(list.ok());
    return list->size();
  }
};

TEST_CASE("by default a box's workspace is a 2GiB tmpfs and its logs rotate at 10MiB x 3",
          "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(DiskWorld::Options());
  auto [box, exec] = world.BoxWithExec(boxes);

  CHECK(box.volumes.empty());  // no unbounded anonymous volume
  REQUIRE(box.local_volumes.count("/workspace") == 1);
  CHECK(box.local_volumes.at("/workspace") ==
        std::map<std::string, std::string>{
            {"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "nosuid,nodev,size=2147483648"}});
  for (const auto* spec : {&box, &exec}) {
    CHECK(spec->log_max_bytes == int64_t{10} << 20);
    CHECK(spec->log_max_files == 3);
    CHECK(spec->root_size_bytes == 0);
  }
  // Claude's container keeps a writable root (decision 005: apt-get); the exec user's is
  // read-only, with its temporary folders in memory.
  CHECK_FALSE(box.read_only_rootfs);
  CHECK(exec.read_only_rootfs);
  CHECK(exec.tmpfs.at("/tmp") == "rw,nosuid,nodev,size=268435456,mode=1777");
  CHECK(exec.tmpfs.at("/var/tmp") == "rw,nosuid,nodev,size=268435456,mode=1777");
  CHECK(exec.tmpfs.count("/home/llmbox") == 1);
  // Both containers still share the workspace by the volume's name.
  auto info = world.engine.InspectContainer("llmbox-pending-b1");
  REQUIRE(info.ok());
  REQUIRE(info->volumes.count("/workspace") == 1);
  CHECK(exec.binds == std::vector<std::string>{info->volumes.at("/workspace") + ":/workspace"});
}

TEST_CASE("the disk options set every size they name on both containers", "[disk]") {
  DiskWorld world;
  BoxManagerOptions options = DiskWorld::Options();
  options.disk = {.log_max_bytes = int64_t{1} << 20,
                  .log_max_files = 2,
                  .workspace_bytes = int64_t{64} << 20,
                  .exec_tmp_bytes = int64_t{16} << 20,
                  .root_bytes = int64_t{5} << 30};
  BoxManager& boxes = world.Start(options);
  auto [box, exec] = world.BoxWithExec(boxes);
  CHECK(box.local_volumes.at("/workspace").at("o") == "nosuid,nodev,size=67108864");
  CHECK(exec.tmpfs.at("/tmp") == "rw,nosuid,nodev,size=16777216,mode=1777");
  for (const auto* spec : {&box, &exec}) {
    CHECK(spec->log_max_bytes == 1 << 20);
    CHECK(spec->log_max_files == 2);
    CHECK(spec->root_size_bytes == int64_t{5} << 30);
  }
}

TEST_CASE("a workspace size of zero keeps an unbounded anonymous volume, still shared by name",
          "[disk]") {
  DiskWorld world;
  BoxManagerOptions options = DiskWorld::Options();
  options.disk.workspace_bytes = 0;
  BoxManager& boxes = world.Start(options);
  auto [box, exec] = world.BoxWithExec(boxes);
  CHECK(box.volumes == std::vector<std::string>{"/workspace"});
  CHECK(box.local_volumes.empty());
  auto info = world.engine.InspectContainer("llmbox-pending-b1");
  REQUIRE(info.ok());
  CHECK(exec.binds == std::vector<std::string>{info->volumes.at("/workspace") + ":/workspace"});
}

TEST_CASE("a hook file under a tmpfs workspace fails the create, undoes the hooks, leaves nothing",
          "[disk]") {
  DiskWorld world;
  world.runner.Answer("create-hook",
                      R"({"version":1,"files":[{"path":"/workspace/notes.md","content":"x"}],)"
                      R"("state":{}})");
  world.runner.Answer("destroy-hook", "");
  world.hook_runner = std::make_unique<hooks::HookRunner>(
      world.runner, std::vector<hooks::HookSpec>{
                        {.name = "seed", .event = "box.create", .command = {"create-hook"}},
                        {.name = "cleanup", .event = "box.destroy", .command = {"destroy-hook"}}});
  BoxManagerOptions options = DiskWorld::Options();
  options.state_dir = "";
  BoxManager& boxes = world.Start(options);
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(absl::IsInvalidArgument(created.status()));
  CHECK(created.status().message() ==
        "box b1: injecting its files: a box.create hook returned \"/workspace/notes.md\", but "
        "/workspace is a tmpfs made when the box starts (boxes.disk.workspace_size) and would "
        "lose it; use another path");
  CHECK(world.runner.StdinOf("destroy-hook").size() == 1);
  CHECK(world.Containers() == 0);
  auto networks = world.engine.ListNetworks({});
  REQUIRE(networks.ok());
  CHECK(networks->empty());

  // With an unbounded workspace volume the same file is injected as before.
  options.disk.workspace_bytes = 0;
  BoxManager& unbounded = world.Start(options);
  REQUIRE(unbounded.Create({.box_id = "b2"}).ok());
}

BoxManagerOptions LoopOptions() {
  BoxManagerOptions options = DiskWorld::Options();
  options.disk.workspace_type = WorkspaceType::kLoop;
  options.disk.workspace_bytes = int64_t{3} << 30;
  return options;
}

TEST_CASE("a loop workspace is made before the box, mounted from its device, removed on destroy",
          "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(LoopOptions());
  auto [box, exec] = world.BoxWithExec(boxes);
  REQUIRE(world.disks.Disks().count("b1") == 1);
  const auto disk = world.disks.Disks().at("b1");
  CHECK(disk.bytes == int64_t{3} << 30);
  CHECK(box.local_volumes.at("/workspace") ==
        std::map<std::string, std::string>{
            {"type", "ext4"}, {"device", disk.device}, {"o", "nosuid,nodev"}});
  // The exec container shares it by the volume's name, as with any workspace.
  auto info = world.engine.InspectContainer("llmbox-pending-b1");
  REQUIRE(info.ok());
  CHECK(exec.binds == std::vector<std::string>{info->volumes.at("/workspace") + ":/workspace"});

  auto destroyed = boxes.Destroy("b1");
  REQUIRE(destroyed.ok());
  CHECK(world.disks.Disks().empty());
  CHECK(world.Containers() == 0);
}

TEST_CASE("a create that fails after its loop workspace was made removes it", "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(LoopOptions());
  world.faulty.FailAt("StartContainer");
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE_FALSE(created.ok());
  CHECK(created.status().message().find("box b1: starting it") == 0);
  CHECK(world.disks.Disks().empty());
  CHECK(world.Containers() == 0);
  // The disk goes after the container that mounted it.
  CHECK(world.disks.Calls() == std::vector<std::string>{"Make b1", "Remove b1"});
}

TEST_CASE("a loop workspace that cannot be made fails the create and leaves nothing", "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(LoopOptions());
  world.disks.FailAt("Make", absl::ResourceExhaustedError("no free loop device"));
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(absl::IsResourceExhausted(created.status()));
  CHECK(created.status().message() == "box b1: making its workspace disk: no free loop device");
  CHECK(world.Containers() == 0);
  auto networks = world.engine.ListNetworks({});
  REQUIRE(networks.ok());
  CHECK(networks->empty());
}

TEST_CASE("a loop workspace left by a crashed create of the same id is replaced", "[disk]") {
  DiskWorld world;
  REQUIRE(world.disks.Make("b1", 1 << 20).ok());
  BoxManager& boxes = world.Start(LoopOptions());
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  CHECK(world.disks.Disks().at("b1").bytes == int64_t{3} << 30);
}

TEST_CASE("a restarted spoke removes loop workspaces whose box is gone and keeps the others",
          "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(LoopOptions());
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(world.disks.Make("gone", 1 << 20).ok());
  BoxManager& restarted = world.Start(LoopOptions());
  REQUIRE(restarted.Recover().ok());
  const auto disks = world.disks.Disks();
  CHECK(disks.count("b1") == 1);
  CHECK(disks.count("gone") == 0);
}

TEST_CASE("loop workspaces this spoke cannot make fail the start with the reason", "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(LoopOptions());
  world.disks.FailAt("Check", absl::FailedPreconditionError("the spoke does not run as root"));
  absl::Status recovered = boxes.Recover();
  CHECK(absl::IsFailedPrecondition(recovered));
  CHECK(recovered.message() == "the spoke does not run as root");

  // Configured but not wired (an assembly bug) is said, never a silent tmpfs.
  std::unique_ptr<BoxManager> unwired =
      std::make_unique<BoxManager>(world.faulty, world.clock, LoopOptions());
  CHECK(unwired->CheckDisk().message() ==
        "spoke unit: loop workspaces are configured but not wired");
  CHECK(absl::IsFailedPrecondition(unwired->Create({.box_id = "b2"}).status()));
}

TEST_CASE("a hook file under a loop workspace is injected like any other", "[disk]") {
  DiskWorld world;
  world.runner.Answer("create-hook",
                      R"({"version":1,"files":[{"path":"/workspace/notes.md","content":"x"}],)"
                      R"("state":{}})");
  world.hook_runner = std::make_unique<hooks::HookRunner>(
      world.runner, std::vector<hooks::HookSpec>{
                        {.name = "seed", .event = "box.create", .command = {"create-hook"}}});
  BoxManagerOptions options = LoopOptions();
  options.state_dir = "";
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  const auto archives = world.engine.ArchivesOf("llmbox-pending-b1");
  REQUIRE(archives.size() == 1);
  CHECK(archives[0].tar.find("workspace/notes.md") != std::string::npos);
}

TEST_CASE("a ready box's session URL comes back after a restart when its log rotated past it",
          "[disk]") {
  DiskWorld world;
  testing::ScratchDir state("disk-state");
  BoxManagerOptions options = DiskWorld::Options();
  options.state_dir = state.path().string();
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto outcome = boxes.SubmitCode("b1", "good-code#state");
  REQUIRE(outcome.ok());
  REQUIRE(outcome->activated);
  CHECK(outcome->box.last_error.empty());
  world.engine.RotateLogs("llmbox-b1");

  BoxManager& restarted = world.Start(options);
  REQUIRE(restarted.Recover().ok());
  auto got = restarted.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kReady);
  CHECK(got->session_url == testing::ConsoleScript{}.session_url);

  // Destroy forgets it, so a new box of the same id does not inherit it.
  REQUIRE(restarted.Destroy("b1").ok());
  CHECK_FALSE(std::filesystem::exists(state.path() / "session-url" / "b1"));
}

TEST_CASE("a session URL saved by an older spoke without its start is shown after a rotation",
          "[disk][restart]") {
  DiskWorld world;
  testing::ScratchDir state("disk-state");
  BoxManagerOptions options = DiskWorld::Options();
  options.state_dir = state.path().string();
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.SubmitCode("b1", "good-code#state").ok());
  world.engine.RotateLogs("llmbox-b1");
  // What an older spoke wrote: the URL alone.
  std::ofstream(state.path() / "session-url" / "b1") << "https://claude.ai/code/session_01Older";

  BoxManager& restarted = world.Start(options);
  REQUIRE(restarted.Recover().ok());
  auto got = restarted.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kReady);
  CHECK(got->session_url == "https://claude.ai/code/session_01Older");
}

TEST_CASE("without a state dir a restart after the log rotated has no session URL to show",
          "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(DiskWorld::Options());
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.SubmitCode("b1", "good-code#state").ok());
  world.engine.RotateLogs("llmbox-b1");
  BoxManager& restarted = world.Start(DiskWorld::Options());
  REQUIRE(restarted.Recover().ok());
  auto got = restarted.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kReady);
  CHECK(got->session_url.empty());
}

TEST_CASE("without a root size the disk check touches nothing", "[disk]") {
  DiskWorld world;
  BoxManager& boxes = world.Start(DiskWorld::Options());
  REQUIRE(boxes.CheckDisk().ok());
  REQUIRE(boxes.Recover().ok());
  CHECK(world.engine.Calls() == std::vector<std::string>{"ListContainers", "ListContainers"});
}

TEST_CASE("a root size the engine accepts passes the start check and leaves no container",
          "[disk]") {
  DiskWorld world;
  BoxManagerOptions options = DiskWorld::Options();
  options.disk.root_bytes = int64_t{8} << 30;
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.CheckDisk().ok());
  CHECK(world.Containers() == 0);
  const auto calls = world.engine.Calls();
  CHECK(std::count(calls.begin(), calls.end(), "CreateContainer") == 1);
}

TEST_CASE("a root size the engine cannot enforce fails the start with the engine's words and fix",
          "[disk]") {
  DiskWorld world;
  BoxManagerOptions options = DiskWorld::Options();
  options.disk.root_bytes = int64_t{8} << 30;
  BoxManager& boxes = world.Start(options);
  // The refusal of Docker 20.10 with overlay2 on ext4, as CurlDockerEngine reports it.
  world.faulty.FailAt("CreateContainer",
                      absl::UnavailableError("docker (unix:///run/docker.sock): create container "
                                             "llmbox-disk-check-unit: --storage-opt is supported "
                                             "only for overlay over xfs with 'pquota' mount "
                                             "option"));
  absl::Status recovered = boxes.Recover();
  REQUIRE(absl::IsFailedPrecondition(recovered));
  CHECK(recovered.message() ==
        "spoke unit: boxes.disk.root_size is set but the engine cannot bound a container's "
        "writable layer: docker (unix:///run/docker.sock): create container "
        "llmbox-disk-check-unit: --storage-opt is supported only for overlay over xfs with "
        "'pquota' mount option; put the engine's data root on xfs mounted with pquota, or "
        "remove the key");
  CHECK(world.Containers() == 0);
}

}  // namespace
}  // namespace llmbox::spoke::box

namespace llmbox::spoke::config {
namespace {

const std::string kTls =
    "tls:\n  cert_file: tls/spoke.crt\n  key_file: tls/spoke.key\n  ca_file: tls/ca.crt\n";

std::string ErrorOf(const std::string& yaml) {
  auto parsed = ParseSpokeConfig(yaml, "spoke.yaml", "/etc/llmbox");
  REQUIRE_FALSE(parsed.ok());
  return std::string(parsed.status().message());
}

TEST_CASE("boxes.disk sets the box disk limits", "[disk][spoke-config]") {
  auto parsed = ParseSpokeConfig(kTls +
                                     "boxes:\n"
                                     "  disk:\n"
                                     "    log_max_size: 4MiB\n"
                                     "    log_max_files: 5\n"
                                     "    workspace_size: 512MiB\n"
                                     "    exec_tmp_size: 32MiB\n"
                                     "    root_size: 20GiB\n",
                                 "spoke.yaml", "/etc/llmbox");
  REQUIRE(parsed.ok());
  const box::DiskOptions& disk = parsed->boxes.disk;
  CHECK(disk.log_max_bytes == int64_t{4} << 20);
  CHECK(disk.log_max_files == 5);
  CHECK(disk.workspace_bytes == int64_t{512} << 20);
  CHECK(disk.exec_tmp_bytes == int64_t{32} << 20);
  CHECK(disk.root_bytes == int64_t{20} << 30);

  auto unbounded = ParseSpokeConfig(kTls + "boxes:\n  disk:\n    workspace_size: 0B\n",
                                    "spoke.yaml", "/etc/llmbox");
  REQUIRE(unbounded.ok());
  CHECK(unbounded->boxes.disk.workspace_bytes == 0);

  auto defaults = ParseSpokeConfig(kTls, "spoke.yaml", "/etc/llmbox");
  REQUIRE(defaults.ok());
  CHECK(defaults->boxes.disk.log_max_bytes == int64_t{10} << 20);
  CHECK(defaults->boxes.disk.workspace_bytes == int64_t{2} << 30);
  CHECK(defaults->boxes.disk.root_bytes == 0);
}

TEST_CASE("boxes.disk.workspace_type takes tmpfs or loop, and loop only beside its engine",
          "[disk][spoke-config]") {
  auto loop = ParseSpokeConfig(kTls + "boxes:\n  disk:\n    workspace_type: loop\n", "spoke.yaml",
                               "/etc/llmbox");
  REQUIRE(loop.ok());
  CHECK(loop->boxes.disk.workspace_type == box::WorkspaceType::kLoop);
  CHECK(ErrorOf(kTls + "boxes:\n  disk:\n    workspace_type: xfs\n") ==
        "config: boxes.disk.workspace_type (line 7): must be tmpfs or loop, got \"xfs\"");
  CHECK(
      ErrorOf(kTls +
              "docker:\n  url: https://engine:2376\nboxes:\n  disk:\n    workspace_type: loop\n") ==
      "config: boxes.disk.workspace_type (line 9): loop needs the engine on this host "
      "(docker.socket)");
}

TEST_CASE("bad boxes.disk keys are refused with the key path and the line",
          "[disk][spoke-config]") {
  CHECK(ErrorOf(kTls + "boxes:\n  disk:\n    log_max_size: 0B\n") ==
        "config: boxes.disk.log_max_size (line 7): must be 1MiB..1GiB, got 0B");
  CHECK(ErrorOf(kTls + "boxes:\n  disk:\n    log_max_files: 0\n") ==
        "config: boxes.disk.log_max_files (line 7): must be 1..100, got 0");
  CHECK(ErrorOf(kTls + "boxes:\n  disk:\n    workspace_size: 1MiB\n") ==
        "config: boxes.disk.workspace_size (line 7): must be 64MiB..1024GiB (or 0B: an "
        "unbounded volume on the data root), got 1048576B");
  CHECK(ErrorOf(kTls + "boxes:\n  disk:\n    exec_tmp_size: 0B\n") ==
        "config: boxes.disk.exec_tmp_size (line 7): must be 1MiB..64GiB, got 0B");
  CHECK(ErrorOf(kTls + "boxes:\n  disk:\n    root_size: 1MiB\n") ==
        "config: boxes.disk.root_size (line 7): must be 256MiB..1024GiB (or 0B: unbounded), got "
        "1048576B");
  CHECK(ErrorOf(kTls + "boxes:\n  disk:\n    workspace: 1GiB\n")
            .find("boxes.disk.workspace (line 7)") != std::string::npos);
}

TEST_CASE("the hub's local_spoke section takes the same boxes.disk keys", "[disk][hub-config]") {
  auto hub = hub::config::ParseHubConfig(
      "local_spoke:\n  boxes:\n    disk:\n      workspace_size: 1GiB\n      log_max_files: 2\n",
      "hub.yaml", "/etc/llmbox");
  REQUIRE(hub.ok());
  auto local = hub::local::ReadLocalSpokeConfig(*hub);
  REQUIRE(local.ok());
  CHECK(local->boxes.disk.workspace_bytes == int64_t{1} << 30);
  CHECK(local->boxes.disk.log_max_files == 2);

  auto bad = hub::config::ParseHubConfig("local_spoke:\n  boxes:\n    disk:\n      root_size: 1B\n",
                                         "hub.yaml", "/etc/llmbox");
  absl::Status st = bad.ok() ? hub::local::ReadLocalSpokeConfig(*bad).status() : bad.status();
  CHECK(st.message() ==
        "config: local_spoke.boxes.disk.root_size (line 4): must be 256MiB..1024GiB (or 0B: "
        "unbounded), got 1B");
}

}  // namespace
}  // namespace llmbox::spoke::config
