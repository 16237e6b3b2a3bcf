// llmbox-spoke: owns one Docker engine and the boxes on it; the hub drives it over gRPC with
// mutual TLS. This file parses the command line and hands over: the spoke itself is assembled
// by spoke::node::SpokeNode, enrollment is spoke/enroll.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"
#include <curl/curl.h>

#include "common/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/version.h"
#include "spoke/box/image_import.h"
#include "spoke/box/readiness.h"
#include "spoke/config/spoke_config.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/enroll/join.h"
#include "spoke/node/spoke_node.h"

namespace {

using namespace llmbox;

constexpr char kUsage[] = R"(llmbox-spoke - runs sandboxed Claude Code boxes on this Docker host

Usage:
  llmbox-spoke serve --config FILE          serve the box service (mutual TLS) until SIGTERM
  llmbox-spoke check-config --config FILE [--file-only]
                                            check a config file and say what is wrong; then
                                            (unless --file-only) this host: the Docker engine
                                            answers, has boxes.default_image, and
                                            boxes.claude_bin is there
  llmbox-spoke image import ARCHIVE --config FILE
                                            load the box image from ARCHIVE (docker save's
                                            tar, or .tar.gz) into the config's engine
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
  auto node = spoke::node::SpokeNode::Start(config, {}, common::SystemClock::Get());
  if (!node.ok()) return Fail(node.status());
  // SIGTERM and SIGINT are blocked in every thread (see main); only this wait sees them.
  const int signal_number = common::WaitForStopSignal();
  spdlog::info("spoke {}: {} received; stopping", config.name, strsignal(signal_number));
  (*node)->Stop();
  spdlog::info("spoke {}: stopped", config.name);
  return 0;
}

// The engine the config names, pinged: what `check-config` and `image import` talk to.
absl::StatusOr<std::unique_ptr<spoke::docker::DockerEngine>> ConnectEngine(
    const spoke::config::SpokeConfig& config, spoke::docker::EngineInfo* info) {
  auto engine = spoke::docker::CurlDockerEngine::Create(config.docker);
  if (!engine.ok()) return engine.status();
  auto ping = (*engine)->Ping();
  if (!ping.ok()) {
    return absl::Status(ping.status().code(),
                        absl::StrCat(ping.status().message(),
                                     " (start the engine, or point docker.socket / docker.url "
                                     "at one; docs/spoke.md)"));
  }
  *info = *ping;
  return engine;
}

// The second half of check-config: can this host create boxes with this config?
int CheckHost(const spoke::config::SpokeConfig& config) {
  spoke::docker::EngineInfo info;
  auto engine = ConnectEngine(config, &info);
  if (!engine.ok()) return Fail(engine.status());
  std::printf("llmbox-spoke: Docker engine %s (API %s) at %s\n", info.server_version.c_str(),
              info.api_version.c_str(), info.endpoint.c_str());
  if (auto st = spoke::box::CheckCanCreate(**engine, config.boxes, info.endpoint); !st.ok()) {
    for (absl::string_view problem : absl::StrSplit(st.message(), "; ")) {
      std::fprintf(stderr, "llmbox-spoke: cannot create boxes: %s\n", std::string(problem).c_str());
    }
    return 1;
  }
  std::printf("llmbox-spoke: this host can create boxes (%s is on the engine%s)\n",
              config.boxes.default_image.c_str(),
              config.boxes.claude_bin.empty() ? "" : ", claude_bin is there");
  return 0;
}

// llmbox-spoke image import ARCHIVE --config F
int ImportImage(const std::vector<std::string_view>& args) {
  if (args.size() != 4 || args[0] != "import" || args[2] != "--config") {
    return Fail(absl::InvalidArgumentError("image needs: import ARCHIVE --config FILE"));
  }
  const std::string archive(args[1]);
  auto config = spoke::config::LoadSpokeConfig(std::string(args[3]));
  if (!config.ok()) return Fail(config.status());
  spoke::docker::EngineInfo info;
  auto engine = ConnectEngine(*config, &info);
  if (!engine.ok()) return Fail(engine.status());
  std::fprintf(stderr, "llmbox-spoke: loading %s into the engine at %s\n", archive.c_str(),
               info.endpoint.c_str());
  int last_percent = -1;
  auto progress = [&](uint64_t sent, uint64_t total) {
    const int percent = total == 0 ? 100 : static_cast<int>(sent * 100 / total);
    if (percent / 10 == last_percent / 10 && sent < total) return;
    last_percent = percent;
    std::fprintf(stderr, "llmbox-spoke: sent %.1f of %.1f MiB (%d%%)\n",
                 static_cast<double>(sent) / (1 << 20), static_cast<double>(total) / (1 << 20),
                 percent);
  };
  auto report =
      spoke::box::ImportBoxImage(**engine, archive, config->boxes.default_image, progress);
  if (!report.ok()) return Fail(report.status());
  for (const auto& image : report->loaded) {
    std::fprintf(stderr, "llmbox-spoke: loaded %s\n", image.c_str());
  }
  std::fprintf(stderr,
               "llmbox-spoke: boxes.default_image %s is on the engine (%s); a serving spoke "
               "can create boxes at its next health check\n",
               config->boxes.default_image.c_str(), report->default_image_id.c_str());
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
    // Only llmbox's own lines: gRPC's go through our logger, its errors as warnings.
    if (auto st = common::InitLogging({.level = "warn"}); !st.ok()) return Fail(st);
    const std::vector<std::string_view> rest(argv + 2, argv + argc);
    return command == "join" ? Join(rest) : Renew(rest);
  }
  if (command == "image") {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return ImportImage(std::vector<std::string_view>(argv + 2, argv + argc));
  }
  const bool file_only =
      command == "check-config" && argc == 5 && std::string_view(argv[4]) == "--file-only";
  if ((command == "serve" || command == "check-config") && (argc == 4 || file_only) &&
      std::string_view(argv[2]) == "--config") {
    // Before any thread starts, so only WaitForStopSignal sees them.
    common::BlockStopSignals();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto config = spoke::config::LoadSpokeConfig(argv[3]);
    if (!config.ok()) return Fail(config.status());
    if (command == "check-config") {
      std::printf("llmbox-spoke: %s is valid (spoke %s, listen %s, %zu hooks)\n", argv[3],
                  config->name.c_str(), config->listen.c_str(), config->hooks.size());
      return file_only ? 0 : CheckHost(*config);
    }
    return Serve(*config);
  }
  std::fputs(kUsage, stderr);
  if (!command.empty()) {
    std::fprintf(stderr, "\nllmbox-spoke: unknown command or arguments: %s\n", argv[1]);
  }
  return 2;
}
