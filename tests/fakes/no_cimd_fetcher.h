// tests/fakes/no_cimd_fetcher.h
//
// A CimdFetcher that fetches nothing: for tests whose clients are all pre-registered or
// dynamic, so a CIMD URL must never be fetched. Every call fails and is counted.
#pragma once

#include <atomic>
#include <string>

#include "absl/status/statusor.h"

#include "hub/oauth/clients.h"

namespace llmbox::testing {

class NoCimdFetcher final : public hub::oauth::CimdFetcher {
 public:
  absl::StatusOr<std::string> Fetch(const std::string&) override {
    ++calls;
    return absl::UnavailableError("this test fetches no client metadata documents");
  }
  std::atomic<int> calls = 0;
};

}  // namespace llmbox::testing
