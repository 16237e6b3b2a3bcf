// hub/cluster/remote_spokes.h
//
// Keeps the hub's SpokeDirectory in step with the spokes that joined (the Store's spokes
// table): each is dialed at its advertise address with mutual TLS, presenting the hub's
// certificate, trusting only the cluster CA, and accepting only the identity the spoke was
// enrolled under (spiffe://llmbox/spoke/<name>).
//
//   RemoteSpokes remote(store, directory, pki.hub);
//   LLMBOX_RETURN_IF_ERROR(remote.Sync());   // at start, after a join, every reconcile
//
// Channels connect lazily: a spoke that is down shows as not connected in list_spokes and its
// calls fail with Unavailable naming it; it is not an error here. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"

#include "common/grpc_tls.h"
#include "hub/boxes/registry.h"
#include "hub/store/store.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace llmbox::hub::cluster {

class RemoteSpokes {
 public:
  // `store` and `directory` must outlive this.
  RemoteSpokes(store::Store& store, boxes::SpokeDirectory& directory, common::TlsPems hub);

  // Adds spokes that joined since, dials again those whose address or certificate changed,
  // and drops those that were removed (`llmbox-hub spoke remove`). Each is dialed pinned to
  // its identity and to the certificates issued for its current enrollment (those this hub
  // has seen since it started), so a removed spoke's certificate is refused. Spokes this did not
  // add (the in-process one) are left alone. The Store's error when it cannot be read.
  [[nodiscard]] absl::Status Sync();

  // The hub's certificate was renewed (HubCertificateRenewer): every spoke is dialed anew with
  // `hub` at the next Sync (calls in flight finish on their channels).
  void SetHubCredentials(common::TlsPems hub);

  // Tells every spoke dialed here which hub keys to accept (BoxService.SetHubKeys), one after
  // the other, each within `timeout`. Returns how many did not take them (each is logged:
  // a spoke that was down; a spoke that missed a whole rotation must rejoin).
  int PushHubKeys(const std::vector<std::string>& key_sha256, std::chrono::milliseconds timeout);

 private:
  store::Store& store_;
  boxes::SpokeDirectory& directory_;
  std::mutex mu_;
  common::TlsPems hub_;  // guarded by mu_
  // What a spoke was last dialed with.
  struct Dialed {
    std::string advertise_address;
    std::int64_t joined_at_ms = 0;  // the enrollment
    // Fingerprints issued for that enrollment, oldest first, the current one last (at most
    // kMaxIssuedKept).
    std::vector<std::string> issued;
    std::shared_ptr<grpc::Channel> channel;
  };
  static constexpr std::size_t kMaxIssuedKept = 8;
  std::map<std::string, Dialed> dialed_;  // by spoke name
};

}  // namespace llmbox::hub::cluster
