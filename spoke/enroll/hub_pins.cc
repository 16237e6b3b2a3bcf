// spoke/enroll/hub_pins.cc
#include "spoke/enroll/hub_pins.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/grpc_tls.h"
#include "common/status.h"

namespace llmbox::spoke::enroll {
namespace {

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string HubPinsPath(const config::SpokeConfig& config) {
  return config.state_dir + "/hub_pins.json";
}

[[nodiscard]] absl::Status ValidateHubPins(const std::vector<std::string>& key_sha256) {
  if (key_sha256.empty() || key_sha256.size() > kMaxHubPins) {
    return absl::InvalidArgumentError("hub key pins: expected 1.." + std::to_string(kMaxHubPins) +
                                      " keys, got " + std::to_string(key_sha256.size()));
  }
  for (std::size_t i = 0; i < key_sha256.size(); ++i) {
    if (!IsSha256Hex(key_sha256[i])) {
      return absl::InvalidArgumentError("hub key pins: entry " + std::to_string(i + 1) +
                                        " is not 64 lowercase hex characters (a SHA-256)");
    }
    if (std::find(key_sha256.begin(), key_sha256.begin() + i, key_sha256[i]) !=
        key_sha256.begin() + i) {
      return absl::InvalidArgumentError("hub key pins: entry " + std::to_string(i + 1) +
                                        " repeats an earlier one");
    }
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<std::vector<std::string>> ReadHubPins(const std::string& path) {
  LLMBOX_ASSIGN_OR_RETURN(std::string text, common::ReadSmallFile(path));
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  const auto bad = [&](std::string_view why) {
    return absl::DataLossError(path + " is not what join and renew write (" + std::string(why) +
                               "): run llmbox-spoke renew, or join again");
  };
  if (!doc.is_object() || !doc.contains("hub_key_sha256") || !doc["hub_key_sha256"].is_array()) {
    return bad("no hub_key_sha256 list");
  }
  std::vector<std::string> pins;
  for (const auto& entry : doc["hub_key_sha256"]) {
    if (!entry.is_string() || pins.size() == kMaxHubPins) return bad("a bad entry");
    pins.push_back(entry.get<std::string>());
  }
  if (auto st = ValidateHubPins(pins); !st.ok()) return bad(common::AsStd(st.message()));
  return pins;
}

[[nodiscard]] absl::Status WriteHubPins(const std::string& path,
                                        const std::vector<std::string>& key_sha256) {
  LLMBOX_RETURN_IF_ERROR(ValidateHubPins(key_sha256));
  const nlohmann::json doc = {{"hub_key_sha256", key_sha256}};
  return common::WriteFileAtomic(path, doc.dump() + "\n", 0644);
}

HubPins::HubPins(std::string path) : path_(std::move(path)) {}

absl::Status HubPins::Load() {
  // The file is read and written under the lock, so a Load racing a Replace cannot bring back
  // what the Replace overwrote.
  std::lock_guard write(file_mu_);
  auto pins = ReadHubPins(path_);
  if (absl::IsNotFound(pins.status())) {
    std::lock_guard lock(mu_);
    pins_.clear();
    return absl::OkStatus();
  }
  if (!pins.ok()) return pins.status();
  std::lock_guard lock(mu_);
  pins_ = *std::move(pins);
  return absl::OkStatus();
}

absl::Status HubPins::Replace(const std::vector<std::string>& key_sha256) {
  std::lock_guard write(file_mu_);
  LLMBOX_RETURN_IF_ERROR(WriteHubPins(path_, key_sha256));
  std::lock_guard lock(mu_);
  pins_ = key_sha256;
  return absl::OkStatus();
}

absl::Status HubPins::Check(std::string_view cert_pem) const {
  return common::CheckPinnedKey(cert_pem, Get());
}

std::vector<std::string> HubPins::Get() const {
  std::lock_guard lock(mu_);
  return pins_;
}

}  // namespace llmbox::spoke::enroll
