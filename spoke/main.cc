// llmbox-spoke: owns one Docker engine and the boxes on it; the hub drives it over gRPC with
// mutual TLS. Wiring of the real implementations happens here and nowhere else.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "spdlog/spdlog.h"
#include <curl/curl.h>

#include "common/clock.h"
#include "common/files.h"
#include "common/grpc_tls.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/subprocess.h"
#include "common/version.h"
#include "spoke/box/manager.h"
#include "spoke/config/spoke_config.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/enroll/join.h"
#include "spoke/enroll/renewer.h"
#include "spoke/hooks/hook_runner.h"
#include "spoke/reaper/reaper.h"
#include "spoke/service/box_service.h"
#include "common/grpc_server.h"

namespace {

using namespace llmbox;

constexpr char kUsage[] = R"(llmbox-spoke - runs sandboxed Claude Code boxes on this Docker host

Usage:
  llmbox-spoke serve --config FILE          serve the box service (mutual TLS) until SIGTERM
  llmbox-spoke check-config --config FILE   check a config file and say what is wrong
  llmbox-spoke join --hub HOST:PORT --token TOKEN --advertise HOST:PORT --config FILE
                    [--label KEY=VALUE]...
                                            enroll with a hub using a one-time join token
                                            (llmbox-hub spoke token create); writes the key,
                                            certificate and cluster CA to the config's tls
                                            files. --token-file FILE instead of --token keeps
                                            the token out of the process list.
  llmbox-spoke renew --hub HOST:PORT --config FILE
                                            get a new certificate (and key) from the hub before
                                            the current one expires; a serving spoke picks it
                                            up within a minute
  llmbox-spoke --version
  llmbox-spoke --help

The config file is documented in docs/spoke.md.
)";

int Fail(const absl::Status& status) {
  const std::string message(status.message());
  std::fprintf(stderr, "llmbox-spoke: %s\n", message.c_str());
  return 1;
}

int Serve(const spoke::config::SpokeConfig& config) {
  if (auto st = common::InitLogging(config.log); !st.ok()) return Fail(st);
  auto pems = common::ReadTlsFiles(config.tls);
  if (!pems.ok()) return Fail(pems.status());
  auto engine = spoke::docker::CurlDockerEngine::Create(config.docker);
  if (!engine.ok()) return Fail(engine.status());
  auto info = (*engine)->Ping();
  if (!info.ok()) return Fail(info.status());
  spdlog::info("spoke {}: Docker engine {} (API {}) at {}", config.name, info->server_version,
               info->api_version, info->endpoint);

  common::PosixSubprocessRunner subprocesses;
  spoke::hooks::HookRunner hooks(subprocesses, config.hooks);
  spoke::box::BoxManager boxes(**engine, common::SystemClock::Get(), config.boxes, &hooks);
  if (auto st = boxes.Recover(); !st.ok()) return Fail(st);
  spoke::reaper::Reaper reaper(boxes, **engine, common::SystemClock::Get(), config.reaper);

  spoke::service::BoxServiceImpl service(boxes, **engine,
                                         {.spoke_name = config.name,
                                          .allowed_peer = config.hub_identity,
                                          .boxes = config.boxes,
                                          .auth_ttl = config.reaper.auth_ttl});
  // Watched, so `llmbox-spoke renew` takes effect without a restart.
  auto server = common::StartGrpcServer(
      {.address = config.listen}, common::WatchedMutualTlsServerCredentials(config.tls), &service);
  if (!server.ok()) return Fail(server.status());
  reaper.Start();
  spoke::enroll::CertificateRenewer renewer(config, common::SystemClock::Get());
  renewer.Start();
  spdlog::info("spoke {}: serving on port {} (mutual TLS; only {} may call)", config.name,
               server->port, config.hub_identity);

  // SIGTERM and SIGINT are blocked in every thread (see main); only this wait sees them.
  const int signal_number = common::WaitForStopSignal();
  spdlog::info("spoke {}: {} received; stopping", config.name, strsignal(signal_number));
  renewer.Stop();
  reaper.Stop();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  spdlog::info("spoke {}: stopped", config.name);
  return 0;
}

// llmbox-spoke renew --hub H --config F
int Renew(const std::vector<std::string_view>& args) {
  if (args.size() != 4 || args[0] != "--hub" || args[2] != "--config") {
    return Fail(absl::InvalidArgumentError("renew needs --hub HOST:PORT --config FILE"));
  }
  auto config = spoke::config::LoadSpokeConfig(std::string(args[3]));
  if (!config.ok()) return Fail(config.status());
  auto renewed = spoke::enroll::RenewCertificate(std::string(args[1]), *config);
  if (!renewed.ok()) return Fail(renewed.status());
  std::fprintf(
      stderr, "llmbox-spoke: renewed spoke \"%s\"'s certificate, now until %s\n",
      renewed->spoke_name.c_str(),
      absl::FormatTime(absl::RFC3339_sec, renewed->not_after, absl::UTCTimeZone()).c_str());
  return 0;
}

// llmbox-spoke join --hub H --token T --advertise A --config F [--label k=v]...
int Join(const std::vector<std::string_view>& args) {
  spoke::enroll::JoinOptions options;
  std::string config_path;
  std::string token_file;
  for (std::size_t i = 0; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return Fail(absl::InvalidArgumentError("a flag lacks its value"));
    const std::string value(args[i + 1]);
    if (args[i] == "--hub") {
      options.hub_address = value;
    } else if (args[i] == "--token") {
      options.token = value;
    } else if (args[i] == "--token-file") {
      token_file = value;
    } else if (args[i] == "--advertise") {
      options.advertise_address = value;
    } else if (args[i] == "--config") {
      config_path = value;
    } else if (args[i] == "--label" && value.find('=') != std::string::npos) {
      options.labels[value.substr(0, value.find('='))] = value.substr(value.find('=') + 1);
    } else {
      return Fail(absl::InvalidArgumentError("unknown flag " + std::string(args[i]) +
                                             " (llmbox-spoke --help)"));
    }
  }
  if (!token_file.empty()) {
    auto text = common::ReadSmallFile(token_file, 4096);
    if (!text.ok()) return Fail(text.status());
    options.token = *text;
    while (!options.token.empty() &&
           std::isspace(static_cast<unsigned char>(options.token.back()))) {
      options.token.pop_back();
    }
  }
  if (options.hub_address.empty() || options.token.empty() || options.advertise_address.empty() ||
      config_path.empty()) {
    return Fail(absl::InvalidArgumentError(
        "join needs --hub HOST:PORT, --token TOKEN (or --token-file), --advertise HOST:PORT and "
        "--config FILE"));
  }
  auto config = spoke::config::LoadSpokeConfig(config_path);
  if (!config.ok()) return Fail(config.status());
  auto joined = spoke::enroll::JoinCluster(options, *config);
  if (!joined.ok()) return Fail(joined.status());
  std::fprintf(stderr,
               "llmbox-spoke: joined as spoke \"%s\"; certificate until %s (renew %s before). "
               "Wrote %s, %s (0600) and %s. Now run:\n  llmbox-spoke serve --config %s\n",
               joined->spoke_name.c_str(),
               absl::FormatTime(absl::RFC3339_sec, joined->not_after, absl::UTCTimeZone()).c_str(),
               absl::FormatDuration(joined->renew_before).c_str(), config->tls.cert_file.c_str(),
               config->tls.key_file.c_str(), config->tls.ca_file.c_str(), config_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view command = argc >= 2 ? argv[1] : "";
  if (command == "--version") {
    std::printf("llmbox-spoke %s\n", common::kVersion);
    return 0;
  }
  if (command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "join" || command == "renew") {
    const std::vector<std::string_view> rest(argv + 2, argv + argc);
    return command == "join" ? Join(rest) : Renew(rest);
  }
  if ((command == "serve" || command == "check-config") && argc == 4 &&
      std::string_view(argv[2]) == "--config") {
    // Before any thread starts, so only WaitForStopSignal sees them.
    common::BlockStopSignals();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto config = spoke::config::LoadSpokeConfig(argv[3]);
    if (!config.ok()) return Fail(config.status());
    if (command == "check-config") {
      std::printf("llmbox-spoke: %s is valid (spoke %s, listen %s, %zu hooks)\n", argv[3],
                  config->name.c_str(), config->listen.c_str(), config->hooks.size());
      return 0;
    }
    return Serve(*config);
  }
  std::fputs(kUsage, stderr);
  if (!command.empty()) {
    std::fprintf(stderr, "\nllmbox-spoke: unknown command or arguments: %s\n", argv[1]);
  }
  return 2;
}
