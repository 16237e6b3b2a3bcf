// hub/admin/admin_commands.h
//
// The operator's commands that work on the hub's state directory, also while the hub serves
// (they go through the same Store): `llmbox-hub apikey create|list|revoke` and
// `llmbox-hub spoke token create|list`, `spoke list|remove|cordon|uncordon|drain`,
// `cluster rotate-identity`,
// `oauth list|revoke`. What they
// print is part of the interface (scripts and the e2e tests read it): a secret goes alone on
// stdout, everything for people on stderr, tables on stdout.
//
//   return ApiKeyCommand({.verb = "create", .name = "laptop", .usage = kUsage}, config, clock);
//
// Each returns the process's exit code: 0, 1 after printing "llmbox-hub: <error>" to stderr,
// or 2 after printing `usage` for a verb it does not know.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

#include "common/clock.h"
#include "hub/config/hub_config.h"

namespace llmbox::hub::admin {

struct CommandArgs {
  std::string verb;     // "create", "token create", ...
  std::string name;     // --name
  std::string ttl;      // --ttl (spoke token create); empty: 1h
  bool admin = false;   // --admin (apikey create): the key acts on every principal's boxes
  std::string overlap;  // --overlap (cluster rotate-identity); empty: 10m
  std::string_view usage;
  // oauth list|revoke: --grant G, --principal P (a principal id, or an API key's name),
  // --client C (a client id), --all (list: revoked and expired grants too).
  std::string grant;
  std::string principal;
  std::string client;
  bool all = false;
  // spoke cordon|uncordon|drain NAME (NAME in `name`): --reason TEXT, and for drain
  // --destroy-pending, --wait and --timeout DURATION (empty: 10m).
  std::string reason;
  bool destroy_pending = false;
  bool wait = false;
  std::string timeout;
};

// `apikey create --name NAME [--admin]`, `apikey list`, `apikey revoke --name NAME`.
int ApiKeyCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock);

// `spoke token create --name NAME [--ttl 1h]`, `spoke token list`, `spoke list`,
// `spoke remove --name NAME`, `spoke cordon|uncordon|drain NAME ...`
// (spoke_state_commands.h, which also prints `spoke list`).
int SpokeCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock);

// `cluster rotate-identity [--overlap 10m]`: a new hub key and certificate, which the serving
// hub announces to its spokes beside the old one for the overlap and then switches to
// (docs/decisions/006-hub-identity.md).
int ClusterCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock);

// `oauth list [--principal P] [--client C] [--all]`: the OAuth grants (one per consent) as a
// table: grant id, principal, client, created, last used, expires, state; never a token.
// `oauth revoke (--grant G | --principal P | --client C)`: revokes the matching live grants,
// and with them every code and token they issued (the serving hub refuses them at their next
// use). P is a principal id ("key:alice", "oidc:<issuer>#<subject>") or an API key's name.
int OAuthCommand(const CommandArgs& args, const config::HubConfig& config, common::Clock& clock);

// Runs `run` (one of the commands above) for `command` ("apikey", "spoke", "oauth",
// "cluster") and records what changes state in the audit log (hub.audit.path, appended only:
// the serving hub rotates it): apikey create|revoke, spoke token create, spoke
// remove|cordon|uncordon|drain, oauth revoke, cluster rotate-identity; never a listing. The
// principal is "operator:<login name>", the client "local", the outcome "ok" or "error" (exit
// code 1; its message went to the operator's terminal); a usage error (2) is not recorded.
// A record that cannot be written is a warning on stderr: the command has taken effect.
// Returns `run`'s exit code.
int AuditedCommand(std::string_view command, const CommandArgs& args,
                   const config::HubConfig& config, common::Clock& clock,
                   int (*run)(const CommandArgs&, const config::HubConfig&, common::Clock&));

// Prints "llmbox-hub: <message>" to stderr; returns 1, the exit code of a failed command.
int Fail(const absl::Status& status);

// Text from elsewhere (a client's chosen name, a spoke's words, a name typed) for the
// operator's terminal: control bytes become '?'.
std::string Printable(std::string_view text);

}  // namespace llmbox::hub::admin
