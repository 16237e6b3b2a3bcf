// hub/http/host_policy.h
//
// Which Host and Origin headers the hub's MCP endpoint accepts (its DNS-rebinding defence):
//
//   - the public URL's host (and origin), with and without the scheme's default port;
//   - when the hub listens on loopback or on every address (0.0.0.0, ::), the loopback names
//     localhost, 127.0.0.1 and [::1] on the listen port, with http and https origins;
//   - hub.allowed_hosts and hub.allowed_origins from the config.
//
// Everything is lowercased, the form McpEndpoint compares against.
//
//   HostPolicy policy = HostPolicyFor(config);   // config.listen_port: the bound port
//   options.allowed_hosts = policy.hosts;
//   options.allowed_origins = policy.origins;
//
// Thread-safe; no state.
#pragma once

#include <string>
#include <vector>

#include "hub/config/hub_config.h"

namespace llmbox::hub::http {

struct HostPolicy {
  std::vector<std::string> hosts;    // "host" or "host:port"
  std::vector<std::string> origins;  // "scheme://host[:port]"
};

// The policy for a hub serving `config` (public_url and listen_port as actually served).
HostPolicy HostPolicyFor(const config::HubConfig& config);

}  // namespace llmbox::hub::http
