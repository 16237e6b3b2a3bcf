// spoke/enroll/hub_pins.h
//
// The hub keys a joined spoke accepts (docs/decisions/006-hub-identity.md): the hex SHA-256 of
// each public key the hub said it uses, told at join and at every renewal, kept in
// <state_dir>/hub_pins.json so a restart keeps them. A hub certificate from the cluster CA
// with the hub's name but another key is refused, so a rotated-out or leaked hub key stops
// working on this spoke once the hub has told it so.
//
//   HubPins pins(HubPinsPath(config));
//   LLMBOX_RETURN_IF_ERROR(pins.Load());            // no file: nothing pinned (not joined)
//   if (auto st = pins.Check(peer_cert_pem); !st.ok()) ... refuse the call ...
//   LLMBOX_RETURN_IF_ERROR(pins.Replace({"ab12..."}));  // writes the file, then takes effect
//
// A spoke that never joined (its TLS files made by hand) has no file and pins nothing: any
// hub certificate from its CA is accepted, as before pinning existed.
//
// Thread-safe: Check from gRPC handlers while the renewer calls Load or Replace.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "spoke/config/spoke_config.h"

namespace llmbox::spoke::enroll {

// At most this many keys are pinned at once (the current key and those in a rotation overlap).
inline constexpr std::size_t kMaxHubPins = 8;

// <state_dir>/hub_pins.json.
std::string HubPinsPath(const config::SpokeConfig& config);

// Checks what a hub sent: 1..kMaxHubPins distinct 64-character lowercase hex strings.
// InvalidArgument naming the bad entry.
[[nodiscard]] absl::Status ValidateHubPins(const std::vector<std::string>& key_sha256);

// Reads a pin file. NotFound when there is none; DataLoss naming the file when it is not
// what WriteHubPins writes.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ReadHubPins(const std::string& path);

// Writes a pin file atomically (common::WriteFileAtomic, 0644: key hashes are not secret).
// ValidateHubPins' errors, or the write's.
[[nodiscard]] absl::Status WriteHubPins(const std::string& path,
                                        const std::vector<std::string>& key_sha256);

class HubPins {
 public:
  explicit HubPins(std::string path);

  // (Re)reads the file. A missing file leaves nothing pinned (OK); an unreadable or malformed
  // one keeps what was pinned before and returns the error.
  [[nodiscard]] absl::Status Load();

  // Writes `key_sha256` to the file, then pins it. Errors as WriteHubPins; nothing changes then.
  [[nodiscard]] absl::Status Replace(const std::vector<std::string>& key_sha256);

  // OK when nothing is pinned or `cert_pem`'s key is pinned; Unauthenticated naming the key
  // otherwise (common::CheckPinnedKey).
  [[nodiscard]] absl::Status Check(std::string_view cert_pem) const;

  // What is pinned now (empty: nothing).
  std::vector<std::string> Get() const;

 private:
  const std::string path_;
  std::mutex file_mu_;  // held while the file is read or written (before mu_)
  mutable std::mutex mu_;
  std::vector<std::string> pins_;  // guarded by mu_
};

}  // namespace llmbox::spoke::enroll
