#include "hub/admin/admin_commands.h"

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/secrets.h"
#include "common/validate.h"
#include "hub/admin/spoke_state_commands.h"
#include "hub/audit/audit_log.h"
#include "hub/auth/principal.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/cluster/hub_rotation.h"
#include "hub/cluster/join_tokens.h"
#include "hub/server/state_dir.h"

namespace llmbox::hub::admin {
namespace {

std::string UtcTime(std::int64_t ms) { return common::FormatUtcSeconds(ms); }

int Usage(std::string_view usage) {
  std::fwrite(usage.data(), 1, usage.size(), stderr);
  return 2;
}

// A principal id, or an API key's name for its principal.
std::string PrincipalArg(const std::string& text) {
  return text.find(':') == std::string::npos && text != auth::kAnonymousPrincipalId
             ? auth::ApiKeyPrincipalId(text)
             : text;
}

}  // namespace

int ClusterCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock) {
  if (args.verb != "rotate-identity") return Usage(args.usage);
  const std::string overlap_text = args.overlap.empty() ? "10m" : args.overlap;
  auto overlap = common::ParseDuration(overlap_text);
  if (!overlap) return Fail(absl::InvalidArgumentError("--overlap must look like 30s, 10m or 1h"));
  auto pki = cluster::LoadClusterPki(server::ClusterDir(config));
  if (!pki.ok()) return Fail(pki.status());
  auto rotation =
      cluster::StartRotation(server::ClusterDir(config), pki->ca, absl::FromChrono(*overlap),
                             absl::FromChrono(clock.Now()), absl::Hours(24));
  if (!rotation.ok()) return Fail(rotation.status());
  std::fprintf(stderr,
               "llmbox-hub: new hub key sha256:%s made. The serving hub announces it to its "
               "spokes within a minute, beside the old key, and switches to it %s later; the "
               "old key's last certificate then expires within 24 h. A spoke that is down for "
               "the whole overlap must rejoin.\n",
               rotation->key_sha256.c_str(), overlap_text.c_str());
  return 0;
}

namespace {

// "operator:<login name>" of the user running the command ("operator:uid=<n>" without one).
std::string OperatorPrincipal() {
  const uid_t uid = ::getuid();
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::array<char, 4096> buffer{};
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return std::string("operator:") + found->pw_name;
  }
  return "operator:uid=" + std::to_string(uid);
}

// The audit event of a command that changes state; nullopt for listings and unknown verbs.
std::optional<audit::Event> CommandEvent(std::string_view command, std::string_view verb) {
  using audit::Event;
  static constexpr std::tuple<std::string_view, std::string_view, Event> kEvents[] = {
      {"apikey", "create", Event::kApiKeyCreate},
      {"apikey", "revoke", Event::kApiKeyRevoke},
      {"spoke", "token create", Event::kJoinTokenCreate},
      {"spoke", "remove", Event::kSpokeRemove},
      {"spoke", "cordon", Event::kSpokeCordon},
      {"spoke", "uncordon", Event::kSpokeUncordon},
      {"spoke", "drain", Event::kSpokeDrain},
      {"oauth", "revoke", Event::kOAuthGrantRevoke},
      {"cluster", "rotate-identity", Event::kClusterRotateIdentity}};
  for (const auto& [c, v, event] : kEvents) {
    if (c == command && v == verb) return event;
  }
  return std::nullopt;
}

}  // namespace

int AuditedCommand(std::string_view command, const CommandArgs& args,
                   const config::HubConfig& config, common::Clock& clock,
                   int (*run)(const CommandArgs&, const config::HubConfig&, common::Clock&)) {
  const int exit_code = run(args, config, clock);
  const std::optional<audit::Event> event = CommandEvent(command, args.verb);
  if (!event || exit_code == 2) return exit_code;
  audit::AuditRecord record{.event = *event,
                            .principal = OperatorPrincipal(),
                            .client = "local",
                            .outcome = exit_code == 0 ? "ok" : "error"};
  if (command == "spoke") {
    record.spoke = args.name;
  } else if (!args.name.empty()) {
    record.details.emplace_back("name", args.name);
  }
  if (args.admin) record.details.emplace_back("admin", "true");
  for (const auto& [field, value] : {std::pair<const char*, const std::string*>{"ttl", &args.ttl},
                                     {"reason", &args.reason},
                                     {"grant", &args.grant},
                                     {"target_principal", &args.principal},
                                     {"client_id", &args.client},
                                     {"overlap", &args.overlap}}) {
    if (!value->empty()) record.details.emplace_back(field, *value);
  }
  if (args.destroy_pending) record.details.emplace_back("destroy_pending", "true");
  audit::AuditLog log({.path = config.audit.path, .fsync = config.audit.fsync, .rotate = false},
                      clock);
  if (auto st = log.Append(record); !st.ok()) {
    std::fprintf(stderr, "llmbox-hub: warning: %s\n",
                 std::string(common::AsStd(st.message())).c_str());
  }
  return exit_code;
}

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

int Fail(const absl::Status& status) {
  const std::string message(common::AsStd(status.message()));
  std::fprintf(stderr, "llmbox-hub: %s\n", message.c_str());
  return 1;
}

int ApiKeyCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock) {
  const std::string& name = args.name;
  auto store = server::OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  if (args.verb == "create") {
    if (auto st = common::ValidateName(name, "API key name"); !st.ok()) return Fail(st);
    auto secret = common::RandomToken(32);
    if (!secret.ok()) return Fail(secret.status());
    const std::string key = "llmbox_" + *secret;
    auto st = (*store)->InsertApiKey({.name = name,
                                      .hash = common::Sha256Hex(key),
                                      .created_at_ms = common::ToUnixMillis(clock.Now()),
                                      .admin = args.admin});
    if (!st.ok()) return Fail(st);
    std::fprintf(stderr,
                 "llmbox-hub: %sAPI key \"%s\" created. It is shown once; only its hash is kept.\n"
                 "Connect Claude Code with:\n"
                 "  claude mcp add --transport http llmbox %s/ --header \"Authorization: Bearer "
                 "<the key>\"\n",
                 args.admin ? "admin " : "", name.c_str(), config.public_url.c_str());
    if (args.admin) {
      std::fprintf(stderr,
                   "llmbox-hub: this key sees, execs into and destroys every user's boxes: give "
                   "it to operators only\n");
    }
    std::printf("%s\n", key.c_str());
    return 0;
  }
  if (args.verb == "list") {
    auto keys = (*store)->ListApiKeys();
    if (!keys.ok()) return Fail(keys.status());
    std::printf("%-32s %-6s %-22s %s\n", "NAME", "ROLE", "CREATED", "STATE");
    for (const auto& key : *keys) {
      const std::string state =
          key.revoked_at_ms ? "revoked " + UtcTime(*key.revoked_at_ms) : std::string("live");
      std::printf("%-32s %-6s %-22s %s\n", key.name.c_str(), key.admin ? "admin" : "user",
                  UtcTime(key.created_at_ms).c_str(), state.c_str());
    }
    return 0;
  }
  if (args.verb == "revoke") {
    const std::int64_t now = common::ToUnixMillis(clock.Now());
    if (auto st = (*store)->RevokeApiKey(name, now); !st.ok()) return Fail(st);
    // The key's OAuth grants die with it (their tokens already stop at their next use); revoked
    // here too, so that `oauth list` says so at once.
    auto grants = (*store)->RevokeOAuthGrants({.principal_id = auth::ApiKeyPrincipalId(name)}, now,
                                              "the API key was revoked");
    if (!grants.ok()) return Fail(grants.status());
    std::fprintf(stderr,
                 "llmbox-hub: API key \"%s\" revoked, and %lld OAuth grant(s) made with it\n",
                 name.c_str(), static_cast<long long>(*grants));
    return 0;
  }
  return Usage(args.usage);
}

int SpokeCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock) {
  const std::string& name = args.name;
  auto store = server::OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  if (args.verb == "token create") {
    if (config.cluster_listen.empty()) {
      return Fail(absl::FailedPreconditionError(
          "cluster.listen is not set in the config: spokes cannot reach this hub to join. Set "
          "it (e.g. cluster: {listen: 0.0.0.0:7444}) and restart the hub"));
    }
    auto pki = cluster::LoadClusterPki(server::ClusterDir(config));
    if (!pki.ok()) return Fail(pki.status());
    const std::string ttl_text = args.ttl.empty() ? "1h" : args.ttl;
    auto ttl = common::ParseDuration(ttl_text);
    if (!ttl) return Fail(absl::InvalidArgumentError("--ttl must look like 30m, 1h or 24h"));
    auto token = cluster::IssueJoinToken(**store, pki->ca_sha256, name, *ttl,
                                         common::ToUnixMillis(clock.Now()));
    if (!token.ok()) return Fail(token.status());
    std::string port = config.cluster_listen.substr(config.cluster_listen.rfind(':') + 1);
    if (port == "0") port = "<its cluster port, logged at start>";
    std::fprintf(stderr,
                 "llmbox-hub: join token for spoke \"%s\" created, valid for %s and once. It is "
                 "shown once; only its hash is kept. On the spoke (spoke.name: %s in its "
                 "config):\n"
                 "  llmbox-spoke join --hub <this hub's address>:%s --token <the token> "
                 "--advertise <spoke address>:7443 --config /etc/llmbox/spoke.yaml\n",
                 name.c_str(), ttl_text.c_str(), name.c_str(), port.c_str());
    std::printf("%s\n", token->c_str());
    return 0;
  }
  if (args.verb == "token list") {
    auto tokens = (*store)->ListJoinTokens();
    if (!tokens.ok()) return Fail(tokens.status());
    std::printf("%-32s %-22s %-22s %s\n", "SPOKE", "CREATED", "EXPIRES", "STATE");
    const std::int64_t now = common::ToUnixMillis(clock.Now());
    for (const auto& token : *tokens) {
      const std::string state = token.used_at_ms             ? "used " + UtcTime(*token.used_at_ms)
                                : now >= token.expires_at_ms ? "expired"
                                                             : "unused";
      std::printf("%-32s %-22s %-22s %s\n", token.name.c_str(),
                  UtcTime(token.created_at_ms).c_str(), UtcTime(token.expires_at_ms).c_str(),
                  state.c_str());
    }
    return 0;
  }
  if (args.verb == "list") return SpokeListCommand(config, **store);
  if (args.verb == "cordon" || args.verb == "uncordon" || args.verb == "drain") {
    return SpokeStateCommand(args, config, **store, clock);
  }
  if (args.verb == "remove") {
    if (auto st = (*store)->DeleteSpoke(name); !st.ok()) return Fail(st);
    std::fprintf(stderr,
                 "llmbox-hub: spoke \"%s\" removed: a serving hub stops dialing it within "
                 "hub.reconcile_interval, and it can no longer renew its certificate\n",
                 name.c_str());
    return 0;
  }
  return Usage(args.usage);
}

int OAuthCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock) {
  store::OAuthGrantFilter filter;
  if (!args.grant.empty()) filter.grant_id = args.grant;
  if (!args.principal.empty()) filter.principal_id = PrincipalArg(args.principal);
  if (!args.client.empty()) filter.client_id = args.client;
  const std::int64_t now = common::ToUnixMillis(clock.Now());
  if (args.verb == "list") {
    if (!args.grant.empty()) return Usage(args.usage);
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    filter.include_revoked = args.all;
    auto grants = (*store)->ListOAuthGrants(filter);
    if (!grants.ok()) return Fail(grants.status());
    std::printf("%-20s %-32s %-40s %-22s %-22s %-22s %s\n", "GRANT", "PRINCIPAL", "CLIENT",
                "CREATED", "LAST USED", "EXPIRES", "STATE");
    for (const auto& grant : *grants) {
      const bool expired = now >= grant.expires_at_ms;
      if (expired && !args.all) continue;
      const std::string state = grant.revoked_at_ms ? "revoked " + UtcTime(*grant.revoked_at_ms) +
                                                          " (" + grant.revoked_reason + ")"
                                : expired ? std::string("expired")
                                          : std::string("live");
      const std::string client = grant.client_name.empty()
                                     ? grant.client_id
                                     : grant.client_name + " (" + grant.client_id + ")";
      std::printf("%-20s %-32s %-40s %-22s %-22s %-22s %s\n", grant.grant_id.c_str(),
                  Printable(grant.principal_id).c_str(), Printable(client).c_str(),
                  UtcTime(grant.created_at_ms).c_str(),
                  grant.last_used_at_ms == 0 ? "never" : UtcTime(grant.last_used_at_ms).c_str(),
                  UtcTime(grant.expires_at_ms).c_str(), Printable(state).c_str());
    }
    return 0;
  }
  if (args.verb == "revoke") {
    const int selectors = !args.grant.empty() + !args.principal.empty() + !args.client.empty();
    if (selectors != 1 || args.all) return Usage(args.usage);
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    auto revoked = (*store)->RevokeOAuthGrants(filter, now, "revoked by the operator");
    if (!revoked.ok()) return Fail(revoked.status());
    if (*revoked == 0 && filter.grant_id) {
      auto known =
          (*store)->ListOAuthGrants({.grant_id = filter.grant_id, .include_revoked = true});
      if (!known.ok()) return Fail(known.status());
      if (known->empty()) {
        return Fail(absl::NotFoundError("no OAuth grant \"" + Printable(args.grant) +
                                        "\" (llmbox-hub oauth list --all shows them)"));
      }
    }
    std::fprintf(stderr,
                 "llmbox-hub: %lld OAuth grant(s) revoked; their access and refresh tokens stop "
                 "working at their next use, also on a serving hub\n",
                 static_cast<long long>(*revoked));
    return 0;
  }
  return Usage(args.usage);
}

}  // namespace llmbox::hub::admin
