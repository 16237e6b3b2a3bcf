// The bearer token in front of /metrics (common/metrics_auth.h): the token file and its mode,
// the constant-time check, the config keys of hub and spoke, and both endpoints' answers
// (the hub's route and the spoke's listener) to a scraper without, with a wrong and with the
// right token. The token never shows in an error, an answer or a log line.
#include "common/metrics_auth.h"

#include <unistd.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include "common/files.h"
#include "common/metrics_server.h"
#include "hub/config/hub_config.h"
#include "hub/metrics/metrics_endpoint.h"
#include "spoke/config/spoke_config.h"
#include "tests/fakes/recording_responder.h"
#include "tests/support/log_capture.h"
#include "tests/support/oauth_http.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::testing {
namespace {

const std::string kToken = "metrics-token-4f1c9a27d0b8e6";

// A token file at `mode` in `dir`; returns its path.
std::string TokenFile(const ScratchDir& dir, mode_t mode, const std::string& content = kToken,
                      const std::string& name = "metrics.token") {
  const std::string path = dir.Write(name, content + "\n");
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

TEST_CASE("a private file is read only when others have no access and its group cannot write",
          "[metrics-auth][files]") {
  ScratchDir dir("private-file");
  for (mode_t mode : {0600, 0400, 0640}) {
    INFO(mode);
    auto read = common::ReadPrivateFile(TokenFile(dir, mode));
    REQUIRE(read.ok());
    CHECK(*read == kToken);  // the trailing newline dropped
  }
  for (mode_t mode : {0644, 0604, 0660, 0602, 0601}) {
    INFO(mode);
    const std::string path = TokenFile(dir, mode);
    auto read = common::ReadPrivateFile(path);
    REQUIRE(absl::IsPermissionDenied(read.status()));
    CHECK(read.status().message().find(path) != std::string::npos);
    CHECK(read.status().message().find("chmod 0600") != std::string::npos);
    CHECK(read.status().message().find(kToken) == std::string::npos);
  }
  CHECK(absl::IsNotFound(common::ReadPrivateFile((dir.path() / "missing").string()).status()));
  CHECK(absl::IsFailedPrecondition(common::ReadPrivateFile(dir.path().string()).status()));
}

TEST_CASE("a metrics bearer token must be one word of 16 to 4096 visible characters",
          "[metrics-auth]") {
  ScratchDir dir("metrics-token");
  CHECK(*common::ReadMetricsBearerToken(TokenFile(dir, 0600)) == kToken);
  for (const std::string& bad :
       std::vector<std::string>{"short", std::string(4097, 'a'), "two words in the token file",
                                "first-line-long\nsecond-line"}) {
    auto read = common::ReadMetricsBearerToken(TokenFile(dir, 0600, bad));
    REQUIRE(absl::IsInvalidArgument(read.status()));
    // The file's content is never quoted back.
    CHECK(read.status().message().find(bad.substr(0, 10)) == std::string::npos);
  }
  CHECK(absl::IsPermissionDenied(common::ReadMetricsBearerToken(TokenFile(dir, 0644)).status()));
}

TEST_CASE("only Bearer and the exact token pass the metrics token check", "[metrics-auth]") {
  CHECK(common::MetricsBearerAllows("Bearer " + kToken, kToken));
  CHECK(common::MetricsBearerAllows("bearer " + kToken, kToken));
  CHECK_FALSE(common::MetricsBearerAllows(std::nullopt, kToken));
  CHECK_FALSE(common::MetricsBearerAllows("", kToken));
  CHECK_FALSE(common::MetricsBearerAllows("Bearer ", kToken));
  CHECK_FALSE(common::MetricsBearerAllows(kToken, kToken));
  CHECK_FALSE(common::MetricsBearerAllows("Basic " + kToken, kToken));
  CHECK_FALSE(common::MetricsBearerAllows("Bearer " + kToken + "x", kToken));
  CHECK_FALSE(common::MetricsBearerAllows("Bearer " + kToken.substr(1), kToken));
  CHECK_FALSE(common::MetricsBearerAllows("Bearer  " + kToken, kToken));
  // No token configured allows nothing through this check (the endpoints skip it instead).
  CHECK_FALSE(common::MetricsBearerAllows("Bearer ", ""));
}

// A config refused for a token file more open than 0640: the error names the key (and line)
// and the fix, never the token.
void CheckRefusedAsTooOpen(const absl::Status& status, const std::string& key_and_line) {
  REQUIRE_FALSE(status.ok());
  CHECK(status.message().find(key_and_line) != std::string::npos);
  CHECK(status.message().find("chmod 0600") != std::string::npos);
  CHECK(status.message().find(kToken) == std::string::npos);
}

TEST_CASE("hub.metrics.bearer_token_file is read at load and a bad file is a config error",
          "[metrics-auth][config]") {
  ScratchDir dir("hub-metrics-token");
  TokenFile(dir, 0600);
  auto parse = [&](const std::string& metrics) {
    return hub::config::ParseHubConfig("hub:\n  listen: 127.0.0.1:0\n  metrics:\n" + metrics,
                                       "hub.yaml", dir.path().string());
  };
  auto plain = parse("    enabled: true\n");
  REQUIRE(plain.ok());
  CHECK(plain->metrics_bearer_token.empty());
  auto with = parse("    bearer_token_file: metrics.token\n");  // beside the config file
  INFO(with.status().message());
  REQUIRE(with.ok());
  CHECK(with->metrics_bearer_token == kToken);

  auto missing = parse("    bearer_token_file: nothing-here\n");
  REQUIRE(absl::IsInvalidArgument(missing.status()));
  CHECK(missing.status().message().find("hub.metrics.bearer_token_file (line 4): cannot read") !=
        std::string::npos);
  TokenFile(dir, 0644, kToken, "open.token");
  auto open = parse("    bearer_token_file: open.token\n");
  CheckRefusedAsTooOpen(open.status(), "hub.metrics.bearer_token_file (line 4)");
  CHECK(open.status().message().find("mode 0644") != std::string::npos);
  auto inline_token = parse("    bearer_token: " + kToken + "\n");
  REQUIRE_FALSE(inline_token.ok());
  CHECK(inline_token.status().message().find("use bearer_token_file") != std::string::npos);
  CHECK(inline_token.status().message().find(kToken) == std::string::npos);
}

TEST_CASE("metrics.bearer_token_file of a spoke is read at load and a bad file is a config error",
          "[metrics-auth][spoke-config]") {
  ScratchDir dir("spoke-metrics-token");
  TokenFile(dir, 0600);
  auto parse = [&](const std::string& metrics) {
    return spoke::config::ParseSpokeConfig(
        "tls:\n  cert_file: a\n  key_file: b\n  ca_file: c\nmetrics:\n  listen: 127.0.0.1:0\n" +
            metrics,
        "spoke.yaml", dir.path().string());
  };
  auto with = parse("  bearer_token_file: " + (dir.path() / "metrics.token").string() + "\n");
  INFO(with.status().message());
  REQUIRE(with.ok());
  CHECK(with->metrics_bearer_token == kToken);
  CHECK(parse("")->metrics_bearer_token.empty());
  TokenFile(dir, 0604, kToken, "open.token");
  CheckRefusedAsTooOpen(parse("  bearer_token_file: open.token\n").status(),
                        "metrics.bearer_token_file (line 7)");
}

http::Request Scrape(std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request request;
  request.method = "GET";
  request.target = request.path = "/metrics";
  request.remote_address = request.client_address = "127.0.0.1";
  for (auto& [name, value] : headers) request.headers.emplace_back(name, value);
  return request;
}

TEST_CASE("with a bearer token the hub's /metrics wants it from an allowed address",
          "[metrics-auth][metrics]") {
  auto endpoint =
      hub::metrics::MetricsEndpoint::Create({"127.0.0.0/8"}, kToken, [] { return "x 1\n"; });
  REQUIRE(endpoint.ok());
  RecordingResponder none;
  endpoint->Handle(Scrape(), none);
  CHECK(none.status == 401);
  CHECK(none.Header("www-authenticate") == "Bearer realm=\"llmbox-metrics\"");
  CHECK(none.body.find("x 1") == std::string::npos);
  RecordingResponder wrong;
  endpoint->Handle(Scrape({{"authorization", "Bearer not-the-token-at-all"}}), wrong);
  CHECK(wrong.status == 401);
  CHECK(wrong.body.find(kToken) == std::string::npos);
  RecordingResponder right;
  endpoint->Handle(Scrape({{"authorization", "Bearer " + kToken}}), right);
  CHECK(right.status == 200);
  CHECK(right.body == "x 1\n");
  // The token does not open the address allow-list.
  http::Request outside = Scrape({{"authorization", "Bearer " + kToken}});
  outside.remote_address = outside.client_address = "192.0.2.7";
  RecordingResponder refused;
  endpoint->Handle(outside, refused);
  CHECK(refused.status == 403);
}

std::string Url(const common::MetricsServer& server) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics";
}

TEST_CASE("with a bearer token the spoke's metrics listener wants it", "[metrics-auth][metrics]") {
  LogCapture logs;
  auto server = common::MetricsServer::Start(
      "127.0.0.1:0", [] { return std::string("a 1\n"); }, kToken);
  REQUIRE(server.ok());
  PlainHttp http;
  const HttpResult none = http.Get(Url(**server));
  CHECK(none.status == 401);
  CHECK(none.Header("www-authenticate") == "Bearer realm=\"llmbox-metrics\"");
  CHECK(none.body.find("a 1") == std::string::npos);
  const HttpResult wrong = http.Get(Url(**server), {"Authorization: Bearer " + kToken + "0"});
  CHECK(wrong.status == 401);
  const HttpResult right = http.Get(Url(**server), {"authorization:   bearer " + kToken + "  "});
  CHECK(right.status == 200);
  CHECK(right.body == "a 1\n");
  // Without a token the listener serves everyone who reaches it, as before.
  auto open = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); });
  REQUIRE(open.ok());
  CHECK(http.Get(Url(**open)).status == 200);
  CHECK(logs.Text().find(kToken) == std::string::npos);
}

}  // namespace
}  // namespace llmbox::testing
