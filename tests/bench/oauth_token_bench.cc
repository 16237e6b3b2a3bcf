// Benchmark: what validating an OAuth access token costs over validating an API key, on the
// same SqliteStore file: TokenService::Authenticate (one lookup joining token, grant and API
// key) against ApiKeyAuthenticator::Authenticate (one lookup of the key), alternated call by
// call so both see the same cache and disk. The store holds `grants` grants of as many
// principals, each with an access and a refresh token, and as many API keys. Prints p50, p99
// and mean in microseconds per call, and the difference at p50 (the issue's budget: 100 µs).
//
// It asserts nothing about time; it fails only when a call fails.
//
//   build/tests/bench/llmbox_oauth_token_bench [calls, default 20000] [grants, default 1000]

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/secrets.h"
#include "hub/auth/api_key_auth.h"
#include "hub/oauth/tokens.h"
#include "hub/store/sqlite_store.h"
#include "tests/bench/bench_report.h"

namespace {

using namespace llmbox;
using Steady = std::chrono::steady_clock;

using llmbox::bench::Say;

[[noreturn]] void Die(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "oauth token bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

struct Stats {
  double p50, p99, mean;
};

Stats Summarize(std::vector<double> micros) {
  std::sort(micros.begin(), micros.end());
  double sum = 0;
  for (double m : micros) sum += m;
  return {micros[micros.size() / 2], micros[micros.size() * 99 / 100], sum / micros.size()};
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int grants = argc > 2 ? std::atoi(argv[2]) : 1000;
  char dir_template[] = "/tmp/llmbox-oauth-bench-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (dir == nullptr || calls < 1 || grants < 1) {
    std::fprintf(stderr, "usage: llmbox_oauth_token_bench [calls] [grants]\n");
    return 2;
  }
  const std::string path = std::string(dir) + "/hub.db";
  auto store = hub::store::SqliteStore::Open(path);
  if (!store.ok()) Die("open " + path, store.status());

  common::Clock& clock = common::SystemClock::Get();
  hub::oauth::OAuthOptions options;
  options.issuer = "https://hub.example.com";
  hub::oauth::TokenService tokens(**store, clock, options);
  hub::auth::ApiKeyAuthenticator keys(**store);
  const hub::oauth::Client client{.client_id = "bench-client", .name = "bench"};

  std::string key;
  std::string access;
  for (int i = 0; i < grants; ++i) {
    const std::string name = "user-" + std::to_string(i);
    const std::string secret = "llmbox_bench-key-" + std::to_string(i);
    if (auto st = (*store)->InsertApiKey({.name = name,
                                          .hash = common::Sha256Hex(secret),
                                          .created_at_ms = common::ToUnixMillis(clock.Now())});
        !st.ok()) {
      Die("insert key", st);
    }
    const std::string verifier(43, 'v');
    auto code =
        tokens.IssueCode({.client = &client,
                          .redirect_uri = "https://claude.ai/api/mcp/auth_callback",
                          .code_challenge = common::Base64UrlEncode(common::Sha256(verifier)),
                          .scope = "llmbox",
                          .resource = options.issuer,
                          .principal = hub::auth::Principal::ApiKey(name, false)});
    if (!code.ok()) Die("issue code", code.status());
    auto response = tokens.ExchangeCode(client, *code, "https://claude.ai/api/mcp/auth_callback",
                                        verifier, std::nullopt);
    if (!response.ok()) Die("exchange code", response.status());
    if (i == grants / 2) {
      key = secret;
      access = response->access_token;
    }
  }
  const std::string header = "Bearer " + key;

  // Warm both paths (prepared statements, reader connections, page cache).
  for (int i = 0; i < 200; ++i) {
    if (!tokens.Authenticate(access).ok() || !keys.Authenticate(header).ok()) {
      Die("warm-up", absl::InternalError("a credential did not authenticate"));
    }
  }
  std::vector<double> token_us;
  std::vector<double> key_us;
  token_us.reserve(calls);
  key_us.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    auto t0 = Steady::now();
    auto who = tokens.Authenticate(access);
    auto t1 = Steady::now();
    auto by_key = keys.Authenticate(header);
    auto t2 = Steady::now();
    if (!who.ok()) Die("access token", who.status());
    if (!by_key.ok()) Die("API key", by_key.status());
    token_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    key_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
  }
  const Stats token = Summarize(token_us);
  const Stats api_key = Summarize(key_us);
  Say("OAuth token validation vs API key, one SqliteStore, %d grants and keys, %d calls each\n",
      grants, calls);
  Say("  %-34s p50 %7.1f us   p99 %7.1f us   mean %7.1f us\n", "TokenService::Authenticate",
      token.p50, token.p99, token.mean);
  Say("  %-34s p50 %7.1f us   p99 %7.1f us   mean %7.1f us\n", "ApiKeyAuthenticator::Authenticate",
      api_key.p50, api_key.p99, api_key.mean);
  Say("  access token over API key at p50: %+.1f us (budget +100 us)\n", token.p50 - api_key.p50);

  store->reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  llmbox::bench::WriteReport();
  return 0;
}
