#include "hub/http/host_policy.h"

#include "absl/strings/ascii.h"

#include "common/absl_compat.h"

namespace llmbox::hub::http {
namespace {

std::string Lower(std::string_view text) { return absl::AsciiStrToLower(common::AsAbsl(text)); }

}  // namespace

HostPolicy HostPolicyFor(const config::HubConfig& config) {
  HostPolicy policy;
  const std::string& url = config.public_url;
  const auto scheme_end = url.find("://");
  const std::string public_host = Lower(url.substr(scheme_end + 3));
  policy.hosts.push_back(public_host);
  policy.origins.push_back(Lower(url));
  const std::string default_port = url.rfind("https", 0) == 0 ? ":443" : ":80";
  if (public_host.size() > default_port.size() && public_host.ends_with(default_port)) {
    policy.hosts.push_back(public_host.substr(0, public_host.size() - default_port.size()));
  } else if (public_host.find(':') == std::string::npos || public_host.back() == ']') {
    policy.hosts.push_back(public_host + default_port);
  }
  if (config::IsLoopbackHost(config.listen_host) || config.listen_host == "0.0.0.0" ||
      config.listen_host == "::") {
    const std::string port = std::to_string(config.listen_port);
    for (const char* name : {"localhost", "127.0.0.1", "[::1]"}) {
      policy.hosts.push_back(std::string(name) + ":" + port);
      policy.origins.push_back("http://" + std::string(name) + ":" + port);
      policy.origins.push_back("https://" + std::string(name) + ":" + port);
    }
  }
  for (const auto& host : config.allowed_hosts) policy.hosts.push_back(Lower(host));
  for (const auto& origin : config.allowed_origins) policy.origins.push_back(Lower(origin));
  return policy;
}

}  // namespace llmbox::hub::http
