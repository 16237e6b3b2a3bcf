// tests/fakes/fake_cimd_fetcher.h
//
// A CimdFetcher that answers from a table: a body, or an error, per URL; anything else is
// Unavailable. Counts fetches per URL, so tests can see what was cached.
//
//   FakeCimdFetcher fetcher;
//   fetcher.Serve("https://app.example/client.json", R"({"client_id": ...})");
//   ClientRegistry clients(store, fetcher, clock, options);
//   CHECK(fetcher.Fetches("https://app.example/client.json") == 1);
//
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

#include "hub/oauth/clients.h"

namespace llmbox::testing {

class FakeCimdFetcher final : public hub::oauth::CimdFetcher {
 public:
  void Serve(const std::string& url, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.insert_or_assign(url, absl::StatusOr<std::string>(std::move(body)));
  }
  void Fail(const std::string& url, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.insert_or_assign(url, absl::StatusOr<std::string>(std::move(status)));
  }
  int Fetches(const std::string& url) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fetches_.find(url);
    return it == fetches_.end() ? 0 : it->second;
  }
  int TotalFetches() {
    std::lock_guard<std::mutex> lock(mu_);
    int total = 0;
    for (const auto& [url, count] : fetches_) total += count;
    return total;
  }

  absl::StatusOr<std::string> Fetch(const std::string& url) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++fetches_[url];
    auto it = answers_.find(url);
    if (it == answers_.end()) return absl::UnavailableError("fake: nothing served at " + url);
    return it->second;
  }

 private:
  std::mutex mu_;
  std::map<std::string, absl::StatusOr<std::string>> answers_;
  std::map<std::string, int> fetches_;
};

}  // namespace llmbox::testing
