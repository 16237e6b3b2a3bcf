// ParseEngineUrl: where the spoke's hijacked console connections (attach, exec) go for a
// remote engine.

#include <catch2/catch.hpp>

#include "spoke/docker/hijack.h"

namespace llmbox::spoke::docker {
namespace {

TEST_CASE("an engine URL splits into its host and port, IPv6 literals included", "[docker]") {
  HijackTarget target;
  REQUIRE(ParseEngineUrl("https://docker-7.example:2376", &target).ok());
  CHECK(target.host == "docker-7.example");
  CHECK(target.port == 2376);
  CHECK(target.tls);

  HijackTarget v4;
  REQUIRE(ParseEngineUrl("https://127.0.0.1:23763/", &v4).ok());
  CHECK(v4.host == "127.0.0.1");
  CHECK(v4.port == 23763);

  HijackTarget v6;
  REQUIRE(ParseEngineUrl("https://[::1]:2376", &v6).ok());
  CHECK(v6.host == "::1");
  CHECK(v6.port == 2376);
}

TEST_CASE("an engine URL without https, host or a valid port is refused, naming it", "[docker]") {
  for (const char* url : {"http://h:2375", "tcp://h:2376", "https://h", "https://:2376",
                          "https://[::1]", "https://[::1:2376", "https://h:0", "https://h:65536",
                          "https://h:12ab", "https://a/b:2376", ""}) {
    HijackTarget target;
    const absl::Status st = ParseEngineUrl(url, &target);
    INFO(url << ": " << st);
    CHECK(absl::IsInvalidArgument(st));
    CHECK(st.message().find(std::string("\"") + url + "\"") != std::string::npos);
    CHECK(st.message().find("expected https://host:port") != std::string::npos);
  }
}

}  // namespace
}  // namespace llmbox::spoke::docker
