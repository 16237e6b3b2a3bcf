// CurlDockerEngine against the rig's real Docker engine.

#include <chrono>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "common/secrets.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/docker/tar.h"
#include "tests/rig/rig_env.h"

namespace llmbox::spoke::docker {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<DockerEngine> RigEngine() {
  const auto& rig = testing::Rig();
  EngineEndpoint endpoint;
  endpoint.unix_socket = rig.docker_sock;
  auto engine = CurlDockerEngine::Create(endpoint);
  REQUIRE(engine.ok());
  return std::move(*engine);
}

// A unique name per test so that tests never share a container.
std::string UniqueName(const std::string& what) {
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  return "llmbox-test-" + what + "-" + common::HexEncode(*token).substr(0, 12);
}

// Removes the container when the test ends, whatever happened.
struct ContainerGuard {
  DockerEngine* engine;
  std::string id;
  ~ContainerGuard() {
    if (!id.empty()) (void)engine->RemoveContainer(id, /*force=*/true);
  }
};

ContainerSpec Tiny(const std::string& name, std::vector<std::string> cmd) {
  ContainerSpec spec;
  spec.name = name;
  spec.image = testing::Rig().tiny_image;
  spec.cmd = std::move(cmd);
  spec.labels = {{"llmbox.test", "docker-engine"}, {"llmbox.test.name", name}};
  return spec;
}

// Reads from `stream` until `needle` shows up or 10 s pass.
std::string ReadUntil(AttachStream& stream, const std::string& needle) {
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    auto chunk = stream.Read(200ms);
    if (!chunk.ok()) break;
    seen += *chunk;
  }
  return seen;
}

TEST_CASE("the engine client negotiates the API version through /_ping", "[docker]") {
  auto engine = RigEngine();
  auto info = engine->Ping();
  REQUIRE(info.ok());
  CHECK(info->api_version == "1.41");  // Debian 12's engine
  CHECK_FALSE(info->server_version.empty());
  CHECK(info->endpoint == "unix://" + testing::Rig().docker_sock);
}

TEST_CASE("a container goes through create, inspect, list, start, wait, logs and remove",
          "[docker]") {
  auto engine = RigEngine();
  const std::string name = UniqueName("life");
  auto id = engine->CreateContainer(
      Tiny(name, {"sh", "-c", "echo out-1; echo err-1 >&2; echo out-2; exit 4"}));
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};

  auto created = engine->InspectContainer(*id);
  REQUIRE(created.ok());
  CHECK(created->name == name);
  CHECK(created->state == "created");
  CHECK(created->labels.at("llmbox.test.name") == name);
  CHECK(created->created > std::chrono::system_clock::now() - 5min);

  auto listed = engine->ListContainers({{"llmbox.test.name", name}});
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].id == *id);
  CHECK((*listed)[0].name == name);

  REQUIRE(engine->StartContainer(*id).ok());
  auto code = engine->WaitContainer(*id, 30s);
  REQUIRE(code.ok());
  CHECK(*code == 4);

  auto logs = engine->Logs(*id, {.tail = 0, .max_bytes = 1 << 20});
  REQUIRE(logs.ok());
  CHECK(logs->output.find("out-1\n") != std::string::npos);
  CHECK(logs->output.find("err-1\n") != std::string::npos);
  CHECK(logs->output.find("out-2\n") != std::string::npos);
  auto tail = engine->Logs(*id, {.tail = 1, .max_bytes = 1 << 20});
  REQUIRE(tail.ok());
  CHECK(tail->output.find("out-1") == std::string::npos);
  auto capped = engine->Logs(*id, {.tail = 0, .max_bytes = 6});
  REQUIRE(capped.ok());
  // The newest bytes are kept (stdout and stderr may interleave either way).
  CHECK(capped->output == logs->output.substr(logs->output.size() - 6));
  CHECK(capped->truncated);

  REQUIRE(engine->RemoveContainer(*id, false).ok());
  auto gone = engine->InspectContainer(*id);
  CHECK(absl::IsNotFound(gone.status()));
  CHECK(gone.status().message().find("No such container") != std::string::npos);
  guard.id.clear();
}

TEST_CASE("attach before start sees the first output, and stdin reaches the container",
          "[docker]") {
  auto engine = RigEngine();
  ContainerSpec spec = Tiny(UniqueName("attach"),
                            {"sh", "-c", "echo first-line; read line; echo got:$line; sleep 5"});
  spec.tty = true;
  spec.open_stdin = true;
  spec.stdin_once = true;
  spec.console_rows = 50;
  spec.console_cols = 1000;
  auto id = engine->CreateContainer(spec);
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  auto attach = engine->Attach(*id, /*with_stdin=*/true, /*tty=*/true);
  REQUIRE(attach.ok());
  REQUIRE(engine->StartContainer(*id).ok());
  REQUIRE(engine->ResizeTty(*id, 50, 1000).ok());
  const std::string before = ReadUntil(**attach, "first-line");
  CHECK(before.find("first-line\r\n") != std::string::npos);
  REQUIRE((*attach)->Write("a-code#state\r").ok());
  const std::string after = ReadUntil(**attach, "got:a-code#state");
  CHECK(after.find("got:a-code#state") != std::string::npos);
  REQUIRE(engine->StopContainer(*id, 1s).ok());
  // The stream ends once the container has stopped.
  absl::Status end;
  for (int i = 0; i < 50 && end.ok(); ++i) end = (*attach)->Read(200ms).status();
  CHECK(absl::IsOutOfRange(end));
}

TEST_CASE("exec runs an argv with separate outputs, an exit code, a cap and a timeout",
          "[docker]") {
  auto engine = RigEngine();
  auto id = engine->CreateContainer(Tiny(UniqueName("exec"), {"sleep", "60"}));
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  REQUIRE(engine->StartContainer(*id).ok());

  auto run = engine->Exec(*id, {.argv = {"sh", "-c", "echo to-out; echo to-err >&2; exit 9"}});
  REQUIRE(run.ok());
  CHECK(run->exit_code == 9);
  CHECK(run->stdout_data == "to-out\n");
  CHECK(run->stderr_data == "to-err\n");
  CHECK_FALSE(run->timed_out);

  // argv is never a shell string: the ';' reaches echo as a literal argument.
  auto literal = engine->Exec(*id, {.argv = {"echo", "a;", "reboot"}});
  REQUIRE(literal.ok());
  CHECK(literal->stdout_data == "a; reboot\n");

  auto big = engine->Exec(
      *id, {.argv = {"sh", "-c", "head -c 100000 /dev/zero"}, .max_output_bytes = 1000});
  REQUIRE(big.ok());
  CHECK(big->stdout_data.size() == 1000);
  CHECK(big->stdout_truncated);
  CHECK_FALSE(big->stderr_truncated);
  CHECK(big->exit_code == 0);

  auto slow = engine->Exec(*id, {.argv = {"sleep", "30"}, .timeout = 500ms});
  REQUIRE(slow.ok());
  CHECK(slow->timed_out);
  // The timed-out process was killed, not left running in the box.
  auto ps = engine->Exec(*id, {.argv = {"sh", "-c", "ps | grep -c '[s]leep 30' || true"}});
  REQUIRE(ps.ok());
  CHECK(ps->stdout_data == "0\n");

  auto missing = engine->Exec(*id, {.argv = {"/no/such/program"}});
  REQUIRE(missing.ok());
  INFO(missing->stdout_data << missing->stderr_data);
  CHECK((missing->exit_code == 126 || missing->exit_code == 127));  // the runtime's refusal
  CHECK((missing->stdout_data + missing->stderr_data).find("no such file") != std::string::npos);
}

TEST_CASE("a tar archive put into a container lands with its modes and owners", "[docker]") {
  auto engine = RigEngine();
  auto id = engine->CreateContainer(Tiny(UniqueName("archive"), {"sleep", "60"}));
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  TarBuilder tar;
  REQUIRE(tar.AddDirectory("seed", 0700, 1000, 1000).ok());
  REQUIRE(tar.AddFile("seed/file.json", "{\"k\":\"v\"}\n", 0600, 1000, 1000).ok());
  REQUIRE(engine->PutArchive(*id, "/tmp", tar.Finish()).ok());
  REQUIRE(engine->StartContainer(*id).ok());
  auto run = engine->Exec(*id, {.argv = {"sh", "-c",
                                         "stat -c '%a %u %g' /tmp/seed /tmp/seed/file.json; "
                                         "cat /tmp/seed/file.json"}});
  REQUIRE(run.ok());
  CHECK(run->stdout_data == "700 1000 1000\n600 1000 1000\n{\"k\":\"v\"}\n");
}

TEST_CASE("networks are created with labels, listed, connected, disconnected and removed",
          "[docker]") {
  auto engine = RigEngine();
  const std::string net_name = UniqueName("net");
  auto net = engine->CreateNetwork({.name = net_name, .labels = {{"llmbox.test.name", net_name}}});
  REQUIRE(net.ok());
  auto id = engine->CreateContainer(Tiny(UniqueName("netbox"), {"sleep", "60"}));
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  REQUIRE(engine->StartContainer(*id).ok());

  auto listed = engine->ListNetworks({{"llmbox.test.name", net_name}});
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].name == net_name);

  REQUIRE(engine->ConnectNetwork(*net, *id, {"peer-alias"}).ok());
  auto inspected = engine->InspectContainer(*id);
  REQUIRE(inspected.ok());
  CHECK(std::find(inspected->networks.begin(), inspected->networks.end(), net_name) !=
        inspected->networks.end());
  // A network with a container attached cannot go.
  CHECK_FALSE(engine->RemoveNetwork(*net).ok());
  REQUIRE(engine->DisconnectNetwork(*net, *id, false).ok());
  REQUIRE(engine->RemoveNetwork(*net).ok());
  auto after = engine->ListNetworks({{"llmbox.test.name", net_name}});
  REQUIRE(after.ok());
  CHECK(after->empty());
}

TEST_CASE("engine errors carry the engine's message, the socket and a meaningful code",
          "[docker]") {
  auto engine = RigEngine();
  const std::string sock = testing::Rig().docker_sock;

  ContainerSpec no_such = Tiny(UniqueName("noimage"), {"true"});
  no_such.image = "llmbox-no-such-image:1";
  auto no_image = engine->CreateContainer(no_such);
  CHECK(absl::IsNotFound(no_image.status()));
  CHECK(no_image.status().message().find("llmbox-no-such-image") != std::string::npos);
  CHECK(no_image.status().message().find("unix://" + sock) != std::string::npos);

  // Two containers cannot share a name.
  const std::string name = UniqueName("dup");
  auto first = engine->CreateContainer(Tiny(name, {"true"}));
  REQUIRE(first.ok());
  ContainerGuard guard{engine.get(), *first};
  auto second = engine->CreateContainer(Tiny(name, {"true"}));
  CHECK(absl::IsAlreadyExists(second.status()));

  // No registry is reachable from the rig: a pull fails with the engine's reason.
  CHECK_FALSE(engine->PullImage("llmbox-no-such-image:1").ok());

  // An engine that is not there.
  EngineEndpoint nowhere;
  nowhere.unix_socket = "/run/llmbox/no-such-engine.sock";
  auto down = CurlDockerEngine::Create(nowhere);
  REQUIRE(down.ok());
  auto ping = (*down)->Ping();
  CHECK(absl::IsUnavailable(ping.status()));
  CHECK(ping.status().message().find("unix:///run/llmbox/no-such-engine.sock") !=
        std::string::npos);

  EngineEndpoint both;
  both.unix_socket = sock;
  both.tcp_url = "https://127.0.0.1:2376";
  CHECK(absl::IsInvalidArgument(CurlDockerEngine::Create(both).status()));
  EngineEndpoint plain_tcp;
  plain_tcp.tcp_url = "http://127.0.0.1:2375";
  CHECK(absl::IsInvalidArgument(CurlDockerEngine::Create(plain_tcp).status()));
}

TEST_CASE("stop escalates to a kill after the grace period and rename moves the name", "[docker]") {
  auto engine = RigEngine();
  auto id = engine->CreateContainer(
      Tiny(UniqueName("stop"), {"sh", "-c", "trap '' TERM; while true; do sleep 1; done"}));
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  REQUIRE(engine->StartContainer(*id).ok());
  const std::string new_name = UniqueName("renamed");
  REQUIRE(engine->RenameContainer(*id, new_name).ok());
  REQUIRE(engine->StopContainer(*id, 1s).ok());
  auto info = engine->InspectContainer(*id);
  REQUIRE(info.ok());
  CHECK_FALSE(info->running);
  CHECK(info->exit_code == 137);  // SIGKILL
  CHECK(info->name == new_name);
  // Stopping a stopped container is fine; killing one is a conflict of state.
  CHECK(engine->StopContainer(*id, 1s).ok());
  CHECK(absl::IsFailedPrecondition(engine->KillContainer(*id, "SIGKILL")));
}

}  // namespace
}  // namespace llmbox::spoke::docker
