// hub/cluster/enrollment_service.h
//
// The hub's llmbox.v1.Enrollment service (proto/llmbox/v1/cluster.proto): how a spoke joins
// with a one-time token and a CSR, and renews its certificate over mutual TLS.
//
//   EnrollmentServiceImpl service(store, pki, clock, {.cert_validity = absl::Hours(720)},
//                                 [&](const store::SpokeRecord& spoke) { spokes.Sync(); });
//   builder.AddListeningPort(address, common::OptionalClientTlsServerCredentials(pki.hub));
//   builder.RegisterService(&service);
//
// Join: the token must be known, unused and unexpired, and is consumed atomically with the
// spoke's record; the CSR must be for an EC P-256 key and ask for no identity but the token's
// name (CN and any URI SAN); the certificate gets the URI SAN spiffe://llmbox/spoke/<name>.
// Renew: the caller's verified certificate must be the spoke's current one (by fingerprint)
// and the spoke still enrolled; the new certificate keeps the name.
//
// Thread-safe (gRPC calls handlers concurrently). Tokens, keys and CSRs are never logged.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"

#include "common/clock.h"
#include "hub/audit/audit_log.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/store/store.h"
#include "llmbox/v1/cluster.grpc.pb.h"

namespace llmbox::hub::cluster {

struct EnrollmentOptions {
  std::chrono::milliseconds cert_validity = std::chrono::hours(24 * 30);
  std::chrono::milliseconds renew_before = std::chrono::hours(24 * 10);  // told to the spoke
  // Where joins are recorded (spoke.join, refused ones too); null: nowhere. Must outlive the
  // service.
  audit::AuditLog* audit = nullptr;
};

class EnrollmentServiceImpl final : public v1::Enrollment::Service {
 public:
  // `store`, `pki` and `clock` must outlive the service. `on_joined` runs after a spoke
  // joined (its record is stored), on the handler's thread.
  EnrollmentServiceImpl(store::Store& store, const ClusterPki& pki, common::Clock& clock,
                        EnrollmentOptions options,
                        std::function<void(const store::SpokeRecord&)> on_joined = nullptr);

  grpc::Status GetClusterCA(grpc::ServerContext* context, const v1::GetClusterCARequest* request,
                            v1::GetClusterCAResponse* response) override;
  grpc::Status Join(grpc::ServerContext* context, const v1::JoinRequest* request,
                    v1::JoinResponse* response) override;
  grpc::Status Renew(grpc::ServerContext* context, const v1::RenewRequest* request,
                     v1::RenewResponse* response) override;

  // The hub keys Join and Renew name from now on (pki.hub_key_sha256 until called): both keys
  // during a rotation's overlap, then the new one.
  void SetHubKeys(std::vector<std::string> key_sha256);
  std::vector<std::string> HubKeys() const;

 private:
  store::Store& store_;
  const ClusterPki& pki_;
  common::Clock& clock_;
  const EnrollmentOptions options_;
  const std::function<void(const store::SpokeRecord&)> on_joined_;
  mutable std::mutex keys_mu_;
  std::vector<std::string> hub_keys_;  // guarded by keys_mu_
};

}  // namespace llmbox::hub::cluster
