// CurlDockerEngine against the rig's real Docker engines: engine 1 on its unix socket, and
// engine 3 over TCP+TLS only (tagged [docker-tls]).

#include <chrono>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "common/secrets.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/docker/hijack.h"
#include "spoke/docker/tar.h"
#include "tests/rig/rig_env.h"
#include "tests/support/console.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::spoke::docker {
namespace {

using namespace std::chrono_literals;
using testing::ReadUntil;
using testing::StreamEnds;

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
  spec.image = testing::LoadRig().tiny_image;  // the same on every engine
  spec.cmd = std::move(cmd);
  spec.labels = {{"llmbox.test", "docker-engine"}, {"llmbox.test.name", name}};
  return spec;
}

// An exec with output on both streams and an exit code of its own, each checked.
void CheckExecOutputs(DockerEngine& engine, const std::string& id) {
  auto run = engine.Exec(id, {.argv = {"sh", "-c", "echo to-out; echo to-err >&2; exit 9"}});
  REQUIRE(run.ok());
  CHECK(run->exit_code == 9);
  CHECK(run->stdout_data == "to-out\n");
  CHECK(run->stderr_data == "to-err\n");
  CHECK_FALSE(run->timed_out);
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

TEST_CASE(
    "a spec's disk bounds reach the engine: a sized tmpfs volume, a rotated log, and a "
    "layer size that overlay2 on ext4 refuses",
    "[docker]") {
  auto engine = RigEngine();
  const std::string name = "disk-" + UniqueName("bounds");
  ContainerSpec spec = Tiny(name, {"sh", "-c",
                                   "df -k /w | tail -1; head -c 4194304 /dev/zero | tr '\\0' x | "
                                   "fold -w 1000"});
  spec.local_volumes["/w"] = {{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "size=8388608"}};
  spec.log_max_bytes = 1 << 20;
  spec.log_max_files = 2;
  auto id = engine->CreateContainer(spec);
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  auto info = engine->InspectContainer(*id);
  REQUIRE(info.ok());
  CHECK(info->volumes.count("/w") == 1);  // an anonymous volume, removed with the container
  REQUIRE(engine->StartContainer(*id).ok());
  REQUIRE(engine->WaitContainer(*id, 60s).ok());
  // 4 MiB printed, at most two files of 1 MiB kept (the first line, df's, rotated away).
  auto logs = engine->Logs(*id, {.tail = 0, .max_bytes = 16 << 20});
  REQUIRE(logs.ok());
  CHECK(logs->output.size() > (1u << 20));
  CHECK(logs->output.size() <= (2u << 20));
  CHECK(logs->output.find("tmpfs") == std::string::npos);

  ContainerSpec sized = Tiny("disk-" + UniqueName("layer"), {"true"});
  sized.root_size_bytes = int64_t{1} << 30;
  auto refused = engine->CreateContainer(sized);
  INFO(refused.status());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option") !=
        std::string::npos);
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
  CHECK(StreamEnds(**attach));
}

TEST_CASE("exec runs an argv with separate outputs, an exit code, a cap and a timeout",
          "[docker]") {
  auto engine = RigEngine();
  auto id = engine->CreateContainer(Tiny(UniqueName("exec"), {"sleep", "60"}));
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  REQUIRE(engine->StartContainer(*id).ok());

  CheckExecOutputs(*engine, *id);

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

// ---------------------------------------------------------------------------------------
// Engine 3 over TCP+TLS: its certificate checked against the rig's CA, ours presented.

EngineEndpoint TlsEndpoint() {
  const auto& rig = testing::RigWithTlsEngine();
  EngineEndpoint endpoint;
  endpoint.tcp_url = rig.tls3_url;
  endpoint.tls_ca_file = rig.tls3_ca;
  endpoint.tls_cert_file = rig.tls3_cert;
  endpoint.tls_key_file = rig.tls3_key;
  return endpoint;
}

std::unique_ptr<DockerEngine> TlsEngine(const EngineEndpoint& endpoint = TlsEndpoint()) {
  auto engine = CurlDockerEngine::Create(endpoint);
  REQUIRE(engine.ok());
  return std::move(*engine);
}

TEST_CASE("over TCP+TLS, attach before start sees early output, takes stdin and a half-close",
          "[docker-tls]") {
  auto engine = TlsEngine();
  auto info = engine->Ping();
  REQUIRE(info.ok());
  CHECK(info->endpoint == testing::RigWithTlsEngine().tls3_url);

  // No TTY: stdout and stderr come in frames, which may be split across TLS records.
  ContainerSpec spec = Tiny(UniqueName("tls-attach"),
                            {"sh", "-c",
                             "echo early-out; echo early-err >&2; read line; echo got:$line; "
                             "cat; echo after-eof"});
  spec.open_stdin = true;
  spec.stdin_once = true;
  auto id = engine->CreateContainer(spec);
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  auto attach = engine->Attach(*id, /*with_stdin=*/true, /*tty=*/false);
  REQUIRE(attach.ok());
  REQUIRE(engine->StartContainer(*id).ok());
  std::string seen = ReadUntil(**attach, "early-err");
  seen += ReadUntil(**attach, "early-out");
  CHECK(seen.find("early-out\n") != std::string::npos);
  CHECK(seen.find("early-err\n") != std::string::npos);

  REQUIRE((*attach)->Write("over-tls\n").ok());
  CHECK(ReadUntil(**attach, "got:over-tls").find("got:over-tls\n") != std::string::npos);
  // cat echoes what follows until stdin ends; only then does the script go on.
  REQUIRE((*attach)->Write("echoed-by-cat\n").ok());
  CHECK(ReadUntil(**attach, "echoed-by-cat").find("echoed-by-cat\n") != std::string::npos);
  REQUIRE((*attach)->CloseStdin().ok());
  CHECK(ReadUntil(**attach, "after-eof").find("after-eof\n") != std::string::npos);
  auto code = engine->WaitContainer(*id, 30s);
  REQUIRE(code.ok());
  CHECK(*code == 0);
  CHECK(StreamEnds(**attach));
}

TEST_CASE("over TCP+TLS, exec returns separate outputs, large output and the exit code",
          "[docker-tls]") {
  auto engine = TlsEngine();
  auto id = engine->CreateContainer(Tiny(UniqueName("tls-exec"), {"sleep", "60"}));
  REQUIRE(id.ok());
  ContainerGuard guard{engine.get(), *id};
  REQUIRE(engine->StartContainer(*id).ok());

  CheckExecOutputs(*engine, *id);

  // Many frames over many TLS records, all of them whole.
  auto big = engine->Exec(*id, {.argv = {"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"}});
  REQUIRE(big.ok());
  CHECK(big->stdout_data == std::string(300000, 'x'));
  CHECK(big->exit_code == 0);

  auto capped = engine->Exec(
      *id, {.argv = {"sh", "-c", "head -c 100000 /dev/zero"}, .max_output_bytes = 1000});
  REQUIRE(capped.ok());
  CHECK(capped->stdout_data.size() == 1000);
  CHECK(capped->stdout_truncated);
}

TEST_CASE("over TCP+TLS, a wrong CA or a refused client certificate is named with the host",
          "[docker-tls]") {
  const auto& rig = testing::RigWithTlsEngine();
  testing::ScratchDir dir("tls-refused");
  auto other_ca = common::MakeCa("not the engine's CA", absl::Hours(1));
  REQUIRE(other_ca.ok());
  const std::string other_ca_file = dir.Write("other-ca.pem", other_ca->cert_pem);
  const common::TlsPems foreign = testing::IssueForTest(*other_ca, "spiffe://llmbox/x", "x");
  const std::string foreign_cert = dir.Write("foreign-cert.pem", foreign.cert_pem);
  const std::string foreign_key = dir.Write("foreign-key.pem", foreign.key_pem);

  HijackTarget good{.tls_ca_file = rig.tls3_ca,
                    .tls_cert_file = rig.tls3_cert,
                    .tls_key_file = rig.tls3_key,
                    .name = rig.tls3_url};
  REQUIRE(ParseEngineUrl(rig.tls3_url, &good).ok());
  CHECK(good.host == "127.0.0.1");
  // A console request for a container that does not exist: TLS works, the engine says no.
  const std::string path = "/v1.41/containers/llmbox-no-such-container/attach?stream=1&stdout=1";
  auto missing = HijackedStream::Open(good, path, "", false, 10s);
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(missing.status().message().find("No such container") != std::string::npos);

  SECTION("the engine's certificate does not chain to our CA") {
    EngineEndpoint endpoint = TlsEndpoint();
    endpoint.tls_ca_file = other_ca_file;
    auto ping = TlsEngine(endpoint)->Ping();
    INFO(ping.status());
    CHECK(absl::IsUnavailable(ping.status()));
    CHECK(ping.status().message().find(rig.tls3_url) != std::string::npos);
    CHECK(ping.status().message().find("set tls_ca_file") != std::string::npos);

    HijackTarget target = good;
    target.tls_ca_file = other_ca_file;
    auto console = HijackedStream::Open(target, path, "", false, 10s);
    INFO(console.status());
    CHECK(absl::IsUnavailable(console.status()));
    CHECK(console.status().message().find("TLS handshake with 127.0.0.1 failed") !=
          std::string::npos);
    CHECK(console.status().message().find("set tls_ca_file") != std::string::npos);
  }
  SECTION("no client certificate, or one from another CA") {
    for (const auto& [cert, key] :
         {std::pair<std::string, std::string>{"", ""},
          std::pair<std::string, std::string>{foreign_cert, foreign_key}}) {
      EngineEndpoint endpoint = TlsEndpoint();
      endpoint.tls_cert_file = cert;
      endpoint.tls_key_file = key;
      auto ping = TlsEngine(endpoint)->Ping();
      INFO(ping.status());
      CHECK(absl::IsUnavailable(ping.status()));
      CHECK(ping.status().message().find(rig.tls3_url) != std::string::npos);
      CHECK(ping.status().message().find("set tls_cert_file and tls_key_file") !=
            std::string::npos);

      HijackTarget target = good;
      target.tls_cert_file = cert;
      target.tls_key_file = key;
      auto console = HijackedStream::Open(target, path, "", false, 10s);
      INFO(console.status());
      CHECK(absl::IsUnavailable(console.status()));
      CHECK(console.status().message().find("with 127.0.0.1 failed") != std::string::npos);
      CHECK(console.status().message().find("set tls_cert_file and tls_key_file") !=
            std::string::npos);
    }
  }
  SECTION("URLs that are not https://host:port are refused at creation") {
    for (const char* url : {"https://127.0.0.1", "https://:2376", "https://[::1:2376",
                            "https://host:99999", "tcp://127.0.0.1:2376"}) {
      EngineEndpoint endpoint;
      endpoint.tcp_url = url;
      auto created = CurlDockerEngine::Create(endpoint);
      INFO(url << ": " << created.status());
      CHECK(absl::IsInvalidArgument(created.status()));
      CHECK(created.status().message().find(url) != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace llmbox::spoke::docker
