// A box's disk and memory limits on the rig's real engine (overlay2 on ext4, json-file logs):
// a box that writes without end into its workspace, its temporary folders, its root and its
// consoles is stopped by the engine and the kernel (ENOSPC, a read-only root, log rotation)
// while the spoke and another box keep working; a box at its memory limit does not make
// another box's create fail. Every write is bounded by the limit under test or by `head -c`:
// these tests never fill the machine's disk.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "common/secrets.h"
#include "common/subprocess.h"
#include "spoke/box/manager.h"
#include "spoke/box/workspace_disks.h"
#include "spoke/docker/curl_engine.h"
#include "tests/fakes/faulty_docker_engine.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::box {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::unique_ptr<docker::DockerEngine> RigEngine(const std::string& socket) {
  auto engine = docker::CurlDockerEngine::Create({.unix_socket = socket});
  REQUIRE(engine.ok());
  return std::move(*engine);
}

std::string DiskBoxId(const std::string& what) {
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  return "disk-" + what + "-" + common::HexEncode(*token).substr(0, 8);
}

BoxManagerOptions Options() {
  BoxManagerOptions options;
  options.spoke_name = "disk-rig";
  options.default_image = testing::Rig().box_image;
  options.claude_bin = testing::Rig().standin_claude;
  options.memory_bytes = int64_t{1} << 30;
  options.stop_grace = 2s;
  return options;
}

struct BoxGuard {
  BoxManager& boxes;
  std::string box_id;
  ~BoxGuard() { (void)boxes.Destroy(box_id, 1s); }
};

json Inspect(testing::EngineHttp& http, const std::string& path) {
  const testing::HttpReply reply = http.Call("GET", "/v1.41" + path);
  INFO(path << ": " << reply.status << " " << reply.body << reply.error);
  REQUIRE(reply.status == 200);
  return json::parse(reply.body);
}

// The bytes of a container's console log on the engine's data root, rotated files included
// (the rig's engine runs on this machine).
uintmax_t LogBytes(testing::EngineHttp& http, const std::string& container) {
  const std::filesystem::path log =
      Inspect(http, "/containers/" + container + "/json").at("LogPath").get<std::string>();
  uintmax_t total = 0;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(log.parent_path())) {
    if (entry.path().filename().string().rfind(log.filename().string(), 0) == 0) {
      total += entry.file_size();
      ++files;
    }
  }
  REQUIRE(files > 0);
  return total;
}

std::string ActivatedBox(BoxManager& boxes, const std::string& id) {
  auto created = boxes.Create({.box_id = id});
  REQUIRE(created.ok());
  // Ready: the spoke no longer holds the console, so nothing but the log reads it.
  auto outcome = boxes.SubmitCode(id, "standin-ok-1234#state");
  REQUIRE(outcome.ok());
  REQUIRE(outcome->activated);
  return outcome->box.container_id;
}

TEST_CASE(
    "a box writing without end into its workspace, temporary folders, root and consoles is "
    "stopped by its disk limits while the spoke and another box keep working",
    "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  testing::EngineHttp http(rig.docker_sock);
  BoxManagerOptions options = Options();
  options.disk = {.log_max_bytes = int64_t{1} << 20,
                  .log_max_files = 2,
                  .workspace_bytes = int64_t{64} << 20,
                  .exec_tmp_bytes = int64_t{16} << 20};
  testing::ScratchDir state("disk-state");
  options.state_dir = state.path().string();
  BoxManager boxes(*engine, common::SystemClock::Get(), options);
  const std::string id = DiskBoxId("fill");
  BoxGuard guard{boxes, id};
  const std::string container = ActivatedBox(boxes, id);
  BoxManager* spoke = &boxes;  // the spoke of the moment (it restarts below)
  auto run = [&](ExecIdentity who, const std::string& script) {
    auto ran = spoke->Exec(id, {.argv = {"sh", "-c", script}, .timeout = 120s}, who);
    REQUIRE(ran.ok());
    INFO(script << "\n-> " << ran->stdout_data << ran->stderr_data);
    CHECK_FALSE(ran->timed_out);
    return *ran;
  };

  // Each write asks for 1 GiB (head -c bounds it) and ends at its limit with ENOSPC.
  for (const std::string dir : {"/workspace", "/tmp", "/var/tmp"}) {
    auto filled = run(ExecIdentity::kUser, "head -c 1073741824 /dev/zero > " + dir +
                                               "/fill; echo rc=$?; du -k " + dir + "/fill");
    INFO(dir << ": " << filled.stdout_data << filled.stderr_data);
    CHECK(filled.stdout_data.find("rc=1\n") == 0);
    CHECK(filled.stderr_data.find("No space left on device") != std::string::npos);
    // What the file got: the cap, less what else is in that folder (the workspace's .claude).
    const int64_t cap_kib = dir == "/workspace" ? 64 * 1024 : 16 * 1024;
    const auto line = filled.stdout_data.find('\n');
    REQUIRE(line != std::string::npos);
    const int64_t got_kib = std::atoll(filled.stdout_data.c_str() + line + 1);
    CHECK(got_kib <= cap_kib);
    CHECK(got_kib >= cap_kib - 64);
  }
  // Claude sees the same bounded workspace, full.
  auto from_box = run(ExecIdentity::kBox, "echo more >> /workspace/fill; echo rc=$?");
  CHECK(from_box.stdout_data == "rc=1\n");
  // The exec user's root is read-only: nothing it writes reaches the data root.
  auto root = run(ExecIdentity::kUser,
                  "for f in /fill /home/fill /usr/local/fill; do "
                  "head -c 1048576 /dev/zero > $f 2>&1 || echo refused; done; "
                  "awk '$2==\"/\"{print substr($4,1,3)}' /proc/mounts");
  CHECK(root.stdout_data == "refused\nrefused\nrefused\nro,\n");
  CHECK(root.stderr_data.find("Read-only file system") != std::string::npos);

  // Consoles: 32 MiB into the exec container's stdout and into Claude's TTY; each log keeps
  // at most 2 files of 1 MiB (and a line's JSON framing).
  const std::string flood =
      "head -c 33554432 /dev/zero | tr '\\0' x | fold -w 1000 > /proc/1/fd/1; echo rc=$?";
  CHECK(run(ExecIdentity::kUser, flood).stdout_data == "rc=0\n");
  CHECK(run(ExecIdentity::kBox, flood).stdout_data == "rc=0\n");
  auto execs = engine->ListContainers({{BoxManager::kExecForLabel, id}});
  REQUIRE(execs.ok());
  REQUIRE(execs->size() == 1);
  const uintmax_t exec_log = LogBytes(http, execs->front().id);
  const uintmax_t box_log = LogBytes(http, container);
  std::cout << "disk: after 32 MiB into each console, logs hold " << exec_log << " B (exec) and "
            << box_log << " B (box)\n";
  CHECK(exec_log > (uintmax_t{1} << 20));   // the flood got there ...
  CHECK(exec_log <= (uintmax_t{5} << 19));  // ... and was rotated away (2.5 MiB)
  CHECK(box_log > (uintmax_t{1} << 20));
  CHECK(box_log <= (uintmax_t{5} << 19));

  // A restarted spoke finds the full box as it was: ready, with its session URL (rotated out
  // of the log, kept in the state dir) and its workspace.
  auto history = engine->Logs(container, {.tail = 0, .max_bytes = 4 << 20});
  REQUIRE(history.ok());
  CHECK(history->output.find("claude.ai/code/session_") == std::string::npos);
  BoxManager restarted(*engine, common::SystemClock::Get(), options);
  spoke = &restarted;
  REQUIRE(restarted.Recover().ok());
  auto got = restarted.Get(id);
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kReady);
  CHECK(got->session_url.rfind("https://claude.ai/code/session_01", 0) == 0);
  CHECK(run(ExecIdentity::kUser, "du -k /workspace/fill").stdout_data.rfind("6553", 0) == 0);

  // The spoke and the engine still serve: another box is made and used.
  const std::string other = DiskBoxId("other");
  BoxGuard other_guard{restarted, other};
  REQUIRE(restarted.Create({.box_id = other}).ok());
  auto used =
      restarted.Exec(other, {.argv = {"sh", "-c", "echo ok > /workspace/f && cat /workspace/f"}},
                     ExecIdentity::kUser);
  REQUIRE(used.ok());
  CHECK(used->stdout_data == "ok\n");

  // Destroy leaves nothing: containers, network, the workspace volume.
  auto info = engine->InspectContainer(container);
  REQUIRE(info.ok());
  const std::string volume = info->volumes.at("/workspace");
  CHECK(Inspect(http, "/volumes/" + volume).at("Options").at("type") == "tmpfs");
  auto destroyed = restarted.Destroy(id, 1s);
  REQUIRE(destroyed.ok());
  CHECK(*destroyed);
  CHECK(http.Call("GET", "/v1.41/volumes/" + volume).status == 404);
  auto left = engine->ListContainers({{BoxManager::kBoxIdLabel, id}});
  REQUIRE(left.ok());
  CHECK(left->empty());
}

// The loop devices whose backing file is `image` (from sysfs).
int LoopsOf(const std::filesystem::path& image) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/block")) {
    std::ifstream backing(entry.path() / "loop" / "backing_file");
    std::string path;
    if (std::getline(backing, path) && path.rfind(image.string(), 0) == 0) ++count;
  }
  return count;
}

TEST_CASE(
    "a loop workspace stops a box at its size with ENOSPC beyond its memory limit, outlives a "
    "spoke restart, and destroy detaches and deletes it",
    "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  testing::ScratchDir state("disk-loop");
  BoxManagerOptions options = Options();
  options.state_dir = state.path().string();
  options.disk.workspace_type = WorkspaceType::kLoop;
  options.disk.workspace_bytes = int64_t{256} << 20;
  options.exec.memory_bytes = int64_t{128} << 20;  // less than the workspace holds
  common::PosixSubprocessRunner runner;
  LoopWorkspaceDisks disks(options.state_dir + "/workspaces", runner);
  BoxManager boxes(*engine, common::SystemClock::Get(), options, nullptr, nullptr, &disks);
  REQUIRE(boxes.CheckDisk().ok());
  const std::string id = DiskBoxId("loop");
  BoxGuard guard{boxes, id};
  REQUIRE(boxes.Create({.box_id = id}).ok());
  const std::filesystem::path image =
      std::filesystem::canonical(state.path() / "workspaces" / (id + ".img"));
  CHECK(LoopsOf(image) == 1);
  auto listed = disks.List();
  REQUIRE(listed.ok());
  CHECK(*listed == std::vector<std::string>{id});

  auto filled = boxes.Exec(id,
                           {.argv = {"sh", "-c",
                                     "grep ' /workspace ' /proc/mounts | cut -d' ' -f3; "
                                     "head -c 1073741824 /dev/zero > /workspace/fill; echo rc=$?; "
                                     "du -k /workspace/fill"},
                            .timeout = 120s},
                           ExecIdentity::kUser);
  REQUIRE(filled.ok());
  INFO(filled->stdout_data << filled->stderr_data);
  // ENOSPC at the disk's size: the exec container's 128 MiB of memory played no part.
  CHECK(filled->stdout_data.find("ext4\nrc=1\n") == 0);
  CHECK(filled->stderr_data.find("No space left on device") != std::string::npos);
  const auto du = filled->stdout_data.rfind("rc=1\n");
  REQUIRE(du != std::string::npos);
  const int64_t got_kib = std::atoll(filled->stdout_data.c_str() + du + 5);
  CHECK(got_kib > 224 * 1024);  // less ext4's own tables
  CHECK(got_kib <= 256 * 1024);
  CHECK(std::filesystem::file_size(image) == uintmax_t{256} << 20);

  // A restarted spoke keeps it: still attached, still holding what was written.
  BoxManager restarted(*engine, common::SystemClock::Get(), options, nullptr, nullptr, &disks);
  REQUIRE(restarted.Recover().ok());
  auto kept = restarted.Exec(id, {.argv = {"du", "-k", "/workspace/fill"}}, ExecIdentity::kUser);
  REQUIRE(kept.ok());
  CHECK(std::atoll(kept->stdout_data.c_str()) == got_kib);

  REQUIRE(restarted.Destroy(id, 1s).ok());
  CHECK_FALSE(std::filesystem::exists(image));
  CHECK(LoopsOf(image) == 0);
}

TEST_CASE("a create that fails after its loop workspace was made leaves no image or device",
          "[box]") {
  const auto& rig = testing::Rig();
  auto real = RigEngine(rig.docker_sock);
  testing::FaultyDockerEngine faulty(*real);
  testing::ScratchDir state("disk-loop-fail");
  BoxManagerOptions options = Options();
  options.disk.workspace_type = WorkspaceType::kLoop;
  options.disk.workspace_bytes = int64_t{64} << 20;
  common::PosixSubprocessRunner runner;
  LoopWorkspaceDisks disks((state.path() / "workspaces").string(), runner);
  BoxManager boxes(faulty, common::SystemClock::Get(), options, nullptr, nullptr, &disks);
  const std::string id = DiskBoxId("loopfail");
  faulty.FailAt("StartContainer");
  auto created = boxes.Create({.box_id = id});
  REQUIRE_FALSE(created.ok());
  CHECK(created.status().message().find("box " + id + ": starting it") == 0);
  const std::filesystem::path image = state.path() / "workspaces" / (id + ".img");
  CHECK_FALSE(std::filesystem::exists(image));
  CHECK(LoopsOf(std::filesystem::weakly_canonical(image)) == 0);
  auto left = real->ListContainers({{BoxManager::kBoxIdLabel, id}});
  REQUIRE(left.ok());
  CHECK(left->empty());
}

TEST_CASE("a root size on an engine that cannot enforce it is refused at start in its words",
          "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  BoxManagerOptions options = Options();
  options.disk.root_bytes = int64_t{1} << 30;
  BoxManager boxes(*engine, common::SystemClock::Get(), options);
  absl::Status checked = boxes.CheckDisk();
  INFO(checked);
  // The rig's data root is ext4: Docker 20.10's overlay2 refuses a size there.
  REQUIRE(absl::IsFailedPrecondition(checked));
  CHECK(checked.message().find(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option") !=
        std::string::npos);
  auto left = engine->InspectContainer("llmbox-disk-check-disk-rig");
  CHECK(absl::IsNotFound(left.status()));
}

TEST_CASE("a box at its memory limit does not make another box's create fail", "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  testing::EngineHttp http(rig.docker_sock);
  BoxManagerOptions options = Options();
  options.exec.memory_bytes = int64_t{128} << 20;
  BoxManager boxes(*engine, common::SystemClock::Get(), options);
  auto timed_create = [&](const std::string& id) {
    const auto start = std::chrono::steady_clock::now();
    auto created = boxes.Create({.box_id = id});
    const auto took = std::chrono::steady_clock::now() - start;
    INFO(created.status());
    REQUIRE(created.ok());
    return std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  };

  const std::string idle = DiskBoxId("idle");
  BoxGuard idle_guard{boxes, idle};
  const int64_t idle_ms = timed_create(idle);
  REQUIRE(boxes.Destroy(idle, 1s).ok());

  const std::string hog = DiskBoxId("hog");
  BoxGuard hog_guard{boxes, hog};
  REQUIRE(boxes.Create({.box_id = hog}).ok());
  std::atomic<bool> stop{false};
  // Allocates without end: each round doubles a string until the kernel kills it at the
  // exec container's limit, then starts again.
  auto hogging = std::async(std::launch::async, [&] {
    return boxes.Exec(hog,
                      {.argv = {"sh", "-c",
                                "while :; do sh -c 'a=x; while :; do a=$a$a; done' 2>/dev/null; "
                                "done"},
                       .timeout = 300s,
                       .cancelled = [&] { return stop.load(); }},
                      ExecIdentity::kUser);
  });
  // At the limit: the exec container's memory cgroup has refused an allocation.
  bool at_limit = false;
  for (int i = 0; i < 60 && !at_limit; ++i) {
    std::this_thread::sleep_for(500ms);
    auto execs = engine->ListContainers({{BoxManager::kExecForLabel, hog}});
    REQUIRE(execs.ok());
    if (execs->empty()) continue;
    const json stats = Inspect(http, "/containers/" + execs->front().id + "/stats?stream=false");
    at_limit = stats.at("memory_stats").value("failcnt", 0) > 0;
  }
  REQUIRE(at_limit);

  const std::string loaded = DiskBoxId("loaded");
  BoxGuard loaded_guard{boxes, loaded};
  const int64_t loaded_ms = timed_create(loaded);
  auto used = boxes.Exec(loaded, {.argv = {"echo", "ok"}}, ExecIdentity::kUser);
  REQUIRE(used.ok());
  CHECK(used->stdout_data == "ok\n");
  std::cout << "disk: box create " << idle_ms << " ms idle, " << loaded_ms
            << " ms beside a box at its memory limit\n";

  stop = true;
  REQUIRE(hogging.wait_for(60s) == std::future_status::ready);
  auto ended = hogging.get();
  CHECK(absl::IsCancelled(ended.status()));
}

}  // namespace
}  // namespace llmbox::spoke::box

namespace llmbox::spoke::box {
namespace {

// A measurement, not a test (hidden: run it by its tag): box create and first exec with the
// default disk limits and with none, interleaved. Prints the medians; asserts only success.
TEST_CASE("create and first exec cost with and without disk limits", "[.][disk-bench]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  testing::ScratchDir state("disk-bench");
  common::PosixSubprocessRunner runner;
  LoopWorkspaceDisks disks((state.path() / "workspaces").string(), runner);
  BoxManagerOptions none = Options();
  none.disk.workspace_bytes = 0;
  none.disk.log_max_bytes = 0;
  none.disk.log_max_files = 0;
  BoxManagerOptions loop = Options();
  loop.disk.workspace_type = WorkspaceType::kLoop;
  BoxManager variants[] = {{*engine, common::SystemClock::Get(), none},
                           {*engine, common::SystemClock::Get(), Options()},
                           {*engine, common::SystemClock::Get(), loop, nullptr, nullptr, &disks}};
  const char* names[] = {"no disk limits", "tmpfs workspace (default)", "loop workspace"};
  const char* rounds_env = std::getenv("LLMBOX_DISK_BENCH_ROUNDS");
  const int rounds = rounds_env != nullptr ? std::max(1, std::atoi(rounds_env)) : 10;
  std::vector<double> create[3], exec[3];
  auto ms = [](auto since) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
        .count();
  };
  // Interleaved, so that drift in a shared machine hits every variant alike.
  for (int i = 0; i < rounds; ++i) {
    for (int which = 0; which < 3; ++which) {
      BoxManager& boxes = variants[which];
      const std::string id = DiskBoxId("bench");
      BoxGuard guard{boxes, id};
      auto start = std::chrono::steady_clock::now();
      REQUIRE(boxes.Create({.box_id = id}).ok());
      create[which].push_back(ms(start));
      start = std::chrono::steady_clock::now();
      REQUIRE(boxes.Exec(id, {.argv = {"true"}}, ExecIdentity::kUser).ok());
      exec[which].push_back(ms(start));
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (int which = 0; which < 3; ++which) {
    std::cout << "disk bench, " << rounds << " rounds, median: create " << median(create[which])
              << " ms, first exec " << median(exec[which]) << " ms: " << names[which] << "\n";
  }
}

}  // namespace
}  // namespace llmbox::spoke::box
