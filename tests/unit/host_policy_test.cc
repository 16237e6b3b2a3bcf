// The Host and Origin headers the hub's MCP endpoint accepts (its DNS-rebinding defence).
#include "hub/http/host_policy.h"

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace llmbox::hub::http {
namespace {

config::HubConfig Config(const std::string& public_url, const std::string& listen_host,
                         int listen_port) {
  config::HubConfig config;
  config.public_url = public_url;
  config.listen_host = listen_host;
  config.listen_port = listen_port;
  return config;
}

bool Has(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

TEST_CASE("an https public URL is accepted with and without its default port", "[host-policy]") {
  const HostPolicy policy = HostPolicyFor(Config("https://hub.example.com", "10.0.0.5", 8443));
  CHECK(policy.hosts == std::vector<std::string>{"hub.example.com", "hub.example.com:443"});
  CHECK(policy.origins == std::vector<std::string>{"https://hub.example.com"});
}

TEST_CASE("an http public URL's default port is 80", "[host-policy]") {
  const HostPolicy policy = HostPolicyFor(Config("http://hub.example.com", "10.0.0.5", 8080));
  CHECK(policy.hosts == std::vector<std::string>{"hub.example.com", "hub.example.com:80"});
  CHECK(policy.origins == std::vector<std::string>{"http://hub.example.com"});
}

TEST_CASE("a public URL that names its default port is also accepted without it", "[host-policy]") {
  CHECK(HostPolicyFor(Config("https://hub.example.com:443", "10.0.0.5", 443)).hosts ==
        std::vector<std::string>{"hub.example.com:443", "hub.example.com"});
  CHECK(HostPolicyFor(Config("http://hub.example.com:80", "10.0.0.5", 80)).hosts ==
        std::vector<std::string>{"hub.example.com:80", "hub.example.com"});
}

TEST_CASE("a public URL on another port is accepted only with that port", "[host-policy]") {
  const HostPolicy policy = HostPolicyFor(Config("https://hub.example.com:8443", "10.0.0.5", 1));
  CHECK(policy.hosts == std::vector<std::string>{"hub.example.com:8443"});
  CHECK(policy.origins == std::vector<std::string>{"https://hub.example.com:8443"});
  // Port 443 on an http URL is not http's default.
  CHECK(HostPolicyFor(Config("http://hub.example.com:443", "10.0.0.5", 1)).hosts ==
        std::vector<std::string>{"hub.example.com:443"});
}

TEST_CASE("an IPv6 public URL gets its default port after the bracket", "[host-policy]") {
  CHECK(HostPolicyFor(Config("http://[2001:db8::1]", "10.0.0.5", 1)).hosts ==
        std::vector<std::string>{"[2001:db8::1]", "[2001:db8::1]:80"});
  CHECK(HostPolicyFor(Config("http://[2001:db8::1]:8080", "10.0.0.5", 1)).hosts ==
        std::vector<std::string>{"[2001:db8::1]:8080"});
}

TEST_CASE("the public URL's host is compared lowercased", "[host-policy]") {
  // The config accepts only a lowercase scheme; the host may come in any case.
  const HostPolicy policy = HostPolicyFor(Config("https://Hub.Example.COM", "10.0.0.5", 1));
  CHECK(policy.hosts == std::vector<std::string>{"hub.example.com", "hub.example.com:443"});
  CHECK(policy.origins == std::vector<std::string>{"https://hub.example.com"});
}

TEST_CASE("the loopback names on the listen port are accepted when listening on loopback",
          "[host-policy]") {
  for (const std::string listen : {"127.0.0.1", "127.0.0.53", "localhost", "::1"}) {
    const HostPolicy policy = HostPolicyFor(Config("http://127.0.0.1:8080", listen, 8080));
    for (const std::string name : {"localhost", "127.0.0.1", "[::1]"}) {
      CHECK(Has(policy.hosts, name + ":8080"));
      CHECK(Has(policy.origins, "http://" + name + ":8080"));
      CHECK(Has(policy.origins, "https://" + name + ":8080"));
      CHECK_FALSE(Has(policy.hosts, name));
      CHECK_FALSE(Has(policy.hosts, name + ":80"));
    }
  }
}

TEST_CASE("the loopback names are accepted when listening on every address", "[host-policy]") {
  for (const std::string listen : {"0.0.0.0", "::"}) {
    const HostPolicy policy = HostPolicyFor(Config("https://hub.example.com", listen, 443));
    CHECK(Has(policy.hosts, "localhost:443"));
    CHECK(Has(policy.hosts, "127.0.0.1:443"));
    CHECK(Has(policy.hosts, "[::1]:443"));
    CHECK(Has(policy.origins, "https://localhost:443"));
  }
}

TEST_CASE("the loopback names are refused when listening on one other address", "[host-policy]") {
  const HostPolicy policy = HostPolicyFor(Config("https://hub.example.com", "10.0.0.5", 443));
  for (const std::string name : {"localhost", "127.0.0.1", "[::1]"}) {
    CHECK_FALSE(Has(policy.hosts, name + ":443"));
    CHECK_FALSE(Has(policy.origins, "https://" + name + ":443"));
  }
}

TEST_CASE("the listen port is the one the loopback names get", "[host-policy]") {
  // The public URL names another port (a proxy in front); the hub listens on 8080.
  const HostPolicy policy = HostPolicyFor(Config("https://hub.example.com", "127.0.0.1", 8080));
  CHECK(Has(policy.hosts, "localhost:8080"));
  CHECK_FALSE(Has(policy.hosts, "localhost:443"));
  CHECK_FALSE(Has(policy.hosts, "localhost"));
}

TEST_CASE("configured hosts and origins are added, lowercased", "[host-policy]") {
  config::HubConfig config = Config("https://hub.example.com", "10.0.0.5", 443);
  config.allowed_hosts = {"Other.Example.com", "proxy:8443"};
  config.allowed_origins = {"https://App.Example.com"};
  const HostPolicy policy = HostPolicyFor(config);
  CHECK(policy.hosts == std::vector<std::string>{"hub.example.com", "hub.example.com:443",
                                                 "other.example.com", "proxy:8443"});
  CHECK(policy.origins ==
        std::vector<std::string>{"https://hub.example.com", "https://app.example.com"});
}

}  // namespace
}  // namespace llmbox::hub::http
