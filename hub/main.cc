// llmbox-hub: the front door. MCP over streamable HTTP, the activation page, the registry,
// and placement of boxes onto spokes (by default one spoke, in-process). This file parses the
// command line and hands over: the serving hub is hub::server::HubServer, the admin commands
// are in hub/admin, and the in-process spoke comes from hub/local.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "spdlog/spdlog.h"
#include <curl/curl.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/version.h"
#include "hub/admin/admin_commands.h"
#include "hub/config/hub_config.h"
#include "hub/local/local_spoke.h"
#include "hub/server/hub_server.h"

namespace {

using namespace llmbox;

constexpr char kUsage[] = R"(llmbox-hub - hosts sandboxed Claude Code boxes for chatbots

Usage:
  llmbox-hub serve --config FILE                   serve MCP and the activation page until SIGTERM
  llmbox-hub check-config --config FILE            check a config file and say what is wrong
  llmbox-hub apikey create --name NAME [--admin] --config FILE
                                                   print a new MCP API key (shown once); it
                                                   owns the boxes it creates, and with --admin
                                                   sees and acts on every key's boxes
  llmbox-hub apikey list --config FILE             list keys (names and dates, never the keys)
  llmbox-hub apikey revoke --name NAME --config FILE   revoke a key (takes effect at once,
                                                   also while the hub is serving)
  llmbox-hub spoke token create --name NAME [--ttl 1h] --config FILE
                                                   print a one-time join token for a spoke
                                                   (shown once; the hub must have started
                                                   once with a cluster section)
  llmbox-hub spoke token list --config FILE        list join tokens (never the tokens)
  llmbox-hub spoke list --config FILE              list the spokes: joined, local, and removed
                                                   ones that still hold boxes, each with its
                                                   state (ready, cordoned, draining, degraded,
                                                   unreachable, removed) and live boxes
  llmbox-hub spoke cordon NAME [--reason TEXT] --config FILE
                                                   no new boxes on the spoke; its boxes live
                                                   on (works while the hub serves)
  llmbox-hub spoke uncordon NAME --config FILE     placement may choose the spoke again
  llmbox-hub spoke drain NAME [--reason TEXT] [--destroy-pending] [--wait [--timeout 10m]]
                         --config FILE             no new boxes, and wait for its boxes to go
                                                   (it destroys none; --destroy-pending
                                                   destroys those never activated; --wait
                                                   returns once none is left, 1 at the timeout)
  llmbox-hub spoke remove --name NAME --config FILE   forget a spoke: the hub stops dialing it
                                                   and it can no longer renew its certificate
  llmbox-hub oauth list [--principal P] [--client C] [--all] --config FILE
                                                   list OAuth grants (one per consent: who,
                                                   which client, when; never a token); --all
                                                   adds revoked and expired ones
  llmbox-hub oauth revoke (--grant G | --principal P | --client C) --config FILE
                                                   revoke grants and every token they issued
                                                   (takes effect at once, also while the hub
                                                   is serving); P is a principal id
                                                   (key:NAME, oidc:ISSUER#SUBJECT) or a key name
  llmbox-hub cluster rotate-identity [--overlap 10m] --config FILE
                                                   a new hub key: spokes accept it beside the
                                                   old one for the overlap, then only it
  llmbox-hub --version
  llmbox-hub --help

The config file is documented in docs/hub.md.
)";

int Serve(const hub::config::HubConfig& config,
          const spoke::config::SpokeConfig& local_spoke_config) {
  if (auto st = common::InitLogging(config.log); !st.ok()) return hub::admin::Fail(st);
  auto server = hub::server::HubServer::Start(config,
                                              {.start_local_spoke = hub::local::LocalSpokeFactory(
                                                   local_spoke_config, common::SystemClock::Get())},
                                              common::SystemClock::Get());
  if (!server.ok()) return hub::admin::Fail(server.status());
  // SIGTERM and SIGINT are blocked in every thread (see main); only this wait sees them.
  const int signal_number = common::WaitForStopSignal();
  spdlog::info("hub: {} received; stopping", strsignal(signal_number));
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  const std::string_view command = args.empty() ? "" : args[0];
  if (command == "--version") {
    std::printf("llmbox-hub %s\n", common::kVersion);
    return 0;
  }
  if (command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Words after the command up to the first flag are its verb ("create", "token create"; for
  // spoke cordon|uncordon|drain, the word after is the spoke's name); then flags: --config
  // FILE, --name NAME, --ttl DURATION, --overlap DURATION, --admin, --grant G, --principal P,
  // --client C, --all, --reason TEXT, --destroy-pending, --wait, --timeout DURATION.
  std::string config_path;
  std::string name;
  std::string ttl;
  std::string overlap;
  std::string verb;
  bool admin = false;
  std::string grant;
  std::string principal;
  std::string client;
  bool all = false;
  std::string reason;
  bool destroy_pending = false;
  bool wait = false;
  std::string timeout;
  std::size_t first_flag = 1;
  while (first_flag < args.size() && !args[first_flag].starts_with("--")) {
    verb += (verb.empty() ? "" : " ") + std::string(args[first_flag++]);
  }
  const bool spoke_state_verb =
      command == "spoke" &&
      (verb.starts_with("cordon ") || verb.starts_with("uncordon ") || verb.starts_with("drain "));
  if (spoke_state_verb) {
    name = verb.substr(verb.find(' ') + 1);
    verb.resize(verb.find(' '));
  }
  bool flags_ok = args.size() >= first_flag;
  for (std::size_t i = first_flag; flags_ok && i < args.size(); i += 2) {
    if (args[i] == "--admin" || args[i] == "--all" || args[i] == "--destroy-pending" ||
        args[i] == "--wait") {
      (args[i] == "--admin"             ? admin
       : args[i] == "--all"             ? all
       : args[i] == "--destroy-pending" ? destroy_pending
                                        : wait) = true;
      --i;  // a flag without a value
    } else if (i + 1 >= args.size()) {
      flags_ok = false;
    } else if (args[i] == "--config") {
      config_path = args[i + 1];
    } else if (args[i] == "--name") {
      name = args[i + 1];
    } else if (args[i] == "--ttl") {
      ttl = args[i + 1];
    } else if (args[i] == "--overlap") {
      overlap = args[i + 1];
    } else if (args[i] == "--grant") {
      grant = args[i + 1];
    } else if (args[i] == "--principal") {
      principal = args[i + 1];
    } else if (args[i] == "--client") {
      client = args[i + 1];
    } else if (args[i] == "--reason") {
      reason = args[i + 1];
    } else if (args[i] == "--timeout") {
      timeout = args[i + 1];
    } else {
      flags_ok = false;
    }
  }
  const bool known = ((command == "serve" || command == "check-config") && verb.empty()) ||
                     command == "apikey" || command == "spoke" ||
                     (command == "cluster" && verb == "rotate-identity") ||
                     (command == "oauth" && (verb == "list" || verb == "revoke"));
  const bool oauth_flags = !grant.empty() || !principal.empty() || !client.empty() || all;
  const bool needs_name = (command == "apikey" && verb != "list") ||
                          (command == "spoke" && (verb == "token create" || verb == "remove"));
  // A spoke name is one word; cordon, uncordon and drain need one.
  const bool spoke_state_ok =
      spoke_state_verb
          ? name.find(' ') == std::string::npos
          : !(command == "spoke" && (verb == "cordon" || verb == "uncordon" || verb == "drain"));
  const bool drain_flags_ok = (!destroy_pending && !wait && timeout.empty()) ||
                              (spoke_state_verb && verb == "drain" && (wait || timeout.empty()));
  const bool reason_ok = reason.empty() || (spoke_state_verb && verb != "uncordon");
  if (!known || !flags_ok || config_path.empty() || (needs_name && name.empty()) ||
      !spoke_state_ok || !drain_flags_ok || !reason_ok ||
      (!ttl.empty() && verb != "token create") || (!overlap.empty() && verb != "rotate-identity") ||
      (admin && !(command == "apikey" && verb == "create")) ||
      (oauth_flags && command != "oauth")) {
    std::fputs(kUsage, stderr);
    if (!command.empty()) {
      std::fprintf(stderr, "\nllmbox-hub: unknown command or missing arguments: %s\n", argv[1]);
    }
    return 2;
  }
  // Before any thread starts, so only WaitForStopSignal sees them.
  common::BlockStopSignals();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto config = hub::config::LoadHubConfig(config_path);
  if (!config.ok()) return hub::admin::Fail(config.status());
  // The local_spoke section's spoke keys are part of the file: checked for every command.
  auto local_spoke_config = hub::local::ReadLocalSpokeConfig(*config);
  if (!local_spoke_config.ok()) return hub::admin::Fail(local_spoke_config.status());
  if (command == "check-config") {
    std::printf(
        "llmbox-hub: %s is valid (listen %s:%d, public URL %s, API keys %s, local spoke "
        "%s, cluster %s)\n",
        config_path.c_str(), config->listen_host.c_str(), config->listen_port,
        config->public_url.c_str(),
        config->oauth.enabled
            ? (config->api_keys == hub::config::ApiKeyMode::kOff ? "off (OAuth only)"
                                                                 : "accepted beside OAuth")
            : (config->api_keys_required ? "required" : "off"),
        config->local_spoke ? "on" : "off",
        config->cluster_listen.empty() ? "off" : config->cluster_listen.c_str());
    if (config->activation_oidc) {
      // What the provider's client registration must list.
      std::printf("llmbox-hub: activation sign-in at %s, redirect URI %s/auth/oidc/callback\n",
                  config->activation_oidc->issuer.c_str(), config->public_url.c_str());
    }
    if (config->oauth.enabled) {
      // What a person types to connect claude.ai (docs/connect.md).
      const bool oidc = config->oauth.sign_in == hub::oauth::SignInMode::kOidc;
      std::printf(
          "llmbox-hub: OAuth on: in claude.ai, Settings > Connectors > Add custom connector, "
          "name llmbox, URL %s (no client ID or secret needed); people sign in %s\n",
          config->public_url.c_str(),
          oidc ? ("at " + config->activation_oidc->issuer).c_str() : "with their llmbox API key");
      if (oidc) {
        // Who that is: with OAuth, everyone the activation allow-list admits can create and
        // use boxes, not only activate them.
        const auto& o = *config->activation_oidc;
        std::string who;
        for (const auto& email : o.allowed_emails) who += (who.empty() ? "" : ", ") + email;
        for (const auto& domain : o.allowed_domains) {
          who += (who.empty() ? "anyone @" : ", anyone @") + domain;
        }
        std::printf(
            "llmbox-hub: who may sign in and then create and use boxes through OAuth "
            "(activation.oidc's allow-list): %s\n",
            who.c_str());
      }
      if (config->public_url.rfind("https://", 0) != 0) {
        std::printf(
            "llmbox-hub: note: claude.ai reaches only a public https URL on port 443; %s is "
            "fine for Claude Code and other clients on this network\n",
            config->public_url.c_str());
      }
    }
    return 0;
  }
  const hub::admin::CommandArgs admin_args{.verb = verb,
                                           .name = name,
                                           .ttl = ttl,
                                           .admin = admin,
                                           .overlap = overlap,
                                           .usage = kUsage,
                                           .grant = grant,
                                           .principal = principal,
                                           .client = client,
                                           .all = all,
                                           .reason = reason,
                                           .destroy_pending = destroy_pending,
                                           .wait = wait,
                                           .timeout = timeout};
  if (command == "apikey") {
    return hub::admin::AuditedCommand(command, admin_args, *config, common::SystemClock::Get(),
                                      hub::admin::ApiKeyCommand);
  }
  if (command == "spoke") {
    return hub::admin::AuditedCommand(command, admin_args, *config, common::SystemClock::Get(),
                                      hub::admin::SpokeCommand);
  }
  if (command == "oauth") {
    return hub::admin::AuditedCommand(command, admin_args, *config, common::SystemClock::Get(),
                                      hub::admin::OAuthCommand);
  }
  if (command == "cluster") {
    return hub::admin::AuditedCommand(command, admin_args, *config, common::SystemClock::Get(),
                                      hub::admin::ClusterCommand);
  }
  return Serve(*config, *local_spoke_config);
}
