// hub/cluster/enrollment_service.cc
#include "hub/cluster/enrollment_service.h"

#include <string>

#include "spdlog/spdlog.h"
#include <arpa/inet.h>

#include "common/absl_compat.h"
#include "common/grpc_status.h"
#include "common/grpc_tls.h"
#include "common/join_token.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::hub::cluster {
namespace {

using common::ToGrpcStatus;

constexpr std::size_t kMaxCsrBytes = 8 << 10;
constexpr std::size_t kMaxLabels = 16;
constexpr std::size_t kMaxLabelBytes = 63;
constexpr std::string_view kSpokeIdentityPrefix = "spiffe://llmbox/spoke/";

void SetTimestamp(google::protobuf::Timestamp* out, absl::Time t) {
  out->set_seconds(absl::ToUnixSeconds(t));
}

void SetDuration(google::protobuf::Duration* out, absl::Duration d) {
  out->set_seconds(absl::ToInt64Seconds(d));
}

bool IsIp(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

bool IsDnsName(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') {
    return false;
  }
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// The advertise address as host and port, and the SAN it earns in the certificate.
[[nodiscard]] absl::Status CheckAdvertiseAddress(std::string_view address,
                                                 common::CertIdentity* identity) {
  const absl::Status bad = absl::InvalidArgumentError(
      "advertise address " + common::QuoteForMessage(address) +
      " must be host:port where the hub can reach the spoke (10.0.0.5:7443, spoke-1.lan:7443, "
      "[fd00::5]:7443)");
  const auto colon = address.rfind(':');
  if (address.size() > 260 || colon == std::string_view::npos || colon + 1 == address.size()) {
    return bad;
  }
  std::string host(address.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  for (char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9' || (port = port * 10 + (c - '0')) > 65535) return bad;
  }
  if (port == 0) return bad;
  if (host == "0.0.0.0" || host == "::") {
    return absl::InvalidArgumentError("advertise address " + common::QuoteForMessage(address) +
                                      " is a wildcard: give an address the hub can dial");
  }
  if (IsIp(host)) {
    identity->ips.push_back(host);
  } else if (IsDnsName(host)) {
    identity->dns.push_back(host);
  } else {
    return bad;
  }
  return absl::OkStatus();
}

// The CSR must be for an EC P-256 key and ask for no identity but `name`'s.
[[nodiscard]] absl::Status CheckCsr(std::string_view csr_pem, std::string_view name) {
  if (csr_pem.size() > kMaxCsrBytes) {
    return absl::InvalidArgumentError("the CSR is larger than 8 KiB");
  }
  LLMBOX_ASSIGN_OR_RETURN(common::CsrInfo csr, common::InspectCsr(csr_pem));
  if (csr.key_type != "EC P-256") {
    return absl::InvalidArgumentError("the CSR is for a " + csr.key_type +
                                      " key; spokes use EC P-256 keys");
  }
  const std::string identity = common::SpokeIdentity(name);
  if (!csr.common_name.empty() && csr.common_name != name) {
    return absl::PermissionDeniedError(
        "the CSR asks for spoke " + common::QuoteForMessage(csr.common_name) +
        " but this token enrolls spoke " + common::QuoteForMessage(name) +
        ": set spoke.name: " + std::string(name) +
        " in the spoke's config and join again "
        "(the token was not used)");
  }
  for (const auto& uri : csr.uris) {
    if (uri != identity) {
      return absl::PermissionDeniedError("the CSR asks for identity " +
                                         common::QuoteForMessage(uri) + "; this spoke is " +
                                         identity);
    }
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status CheckLabels(
    const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError("at most 16 labels, got " + std::to_string(labels.size()));
  }
  for (const auto& [key, value] : labels) {
    if (key.empty() || key.size() > kMaxLabelBytes || value.size() > kMaxLabelBytes) {
      return absl::InvalidArgumentError("label " + common::QuoteForMessage(key) +
                                        ": keys are 1..63 bytes and values at most 63");
    }
  }
  return absl::OkStatus();
}

std::string Peer(const grpc::ServerContext* context) { return context->peer(); }

// The address in a gRPC peer name ("ipv4:192.0.2.7:5000", "ipv6:[2001:db8::1]:5000").
std::string PeerAddress(const grpc::ServerContext* context) {
  std::string peer = Peer(context);
  for (std::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (peer.rfind(scheme, 0) != 0) continue;
    std::string address = peer.substr(scheme.size());
    if (!address.empty() && address.front() == '[') return address.substr(1, address.find(']') - 1);
    return address.substr(0, address.rfind(':'));
  }
  return peer;
}

// The audit record of a join: the spoke's name once the token named it (never the token).
void AuditJoin(audit::AuditLog* log, const grpc::ServerContext* context, std::string_view name,
               const std::string& advertise, const absl::Status& status) {
  if (log == nullptr) return;
  log->Record({.event = audit::Event::kSpokeJoin,
               .principal = name.empty() ? "" : "spoke:" + std::string(name),
               .client = PeerAddress(context),
               .spoke = std::string(name),
               .outcome = audit::Outcome(status),
               .error = std::string(common::AsStd(status.message())),
               .details = {{"advertise", advertise}}});
}

}  // namespace

EnrollmentServiceImpl::EnrollmentServiceImpl(
    store::Store& store, const ClusterPki& pki, common::Clock& clock, EnrollmentOptions options,
    std::function<void(const store::SpokeRecord&)> on_joined)
    : store_(store),
      pki_(pki),
      clock_(clock),
      options_(options),
      on_joined_(std::move(on_joined)),
      hub_keys_(pki.hub_key_sha256) {}

void EnrollmentServiceImpl::SetHubKeys(std::vector<std::string> key_sha256) {
  std::lock_guard lock(keys_mu_);
  hub_keys_ = std::move(key_sha256);
}

std::vector<std::string> EnrollmentServiceImpl::HubKeys() const {
  std::lock_guard lock(keys_mu_);
  return hub_keys_;
}

grpc::Status EnrollmentServiceImpl::GetClusterCA(grpc::ServerContext*,
                                                 const v1::GetClusterCARequest*,
                                                 v1::GetClusterCAResponse* response) {
  response->set_ca_certificate_pem(pki_.ca.cert_pem);
  return grpc::Status::OK;
}

grpc::Status EnrollmentServiceImpl::Join(grpc::ServerContext* context,
                                         const v1::JoinRequest* request,
                                         v1::JoinResponse* response) {
  auto refuse = [&](const absl::Status& status, std::string_view name) {
    spdlog::warn("cluster: join{}{} from {} refused: {}", name.empty() ? "" : " of spoke ", name,
                 Peer(context), common::AsStd(status.message()));
    // A token that matched no spoke name is anybody's: logged, not audited (an unauthenticated
    // client could otherwise fill the audit log and rotate the real records away).
    if (!name.empty()) {
      AuditJoin(options_.audit, context, name, request->advertise_address(), status);
    }
    return ToGrpcStatus(status);
  };
  if (request->token().size() > 256) {
    return refuse(absl::InvalidArgumentError("the join token is too long"), "");
  }
  auto token = common::ParseJoinToken(request->token());
  if (!token.ok()) return refuse(token.status(), "");
  if (!common::ConstantTimeEquals(token->ca_sha256, pki_.ca_sha256)) {
    return refuse(absl::UnauthenticatedError(
                      "this join token pins another cluster CA (it was made by another hub)"),
                  "");
  }
  const std::string hash = common::Sha256Hex(token->secret);
  auto record = store_.GetJoinToken(hash);
  if (absl::IsNotFound(record.status())) {
    return refuse(absl::UnauthenticatedError(
                      "this join token is unknown to the hub: create a new one with `llmbox-hub "
                      "spoke token create`"),
                  "");
  }
  if (!record.ok()) return refuse(record.status(), "");
  const std::string& name = record->name;

  common::CertIdentity identity{.uri = common::SpokeIdentity(name)};
  if (auto st = CheckAdvertiseAddress(request->advertise_address(), &identity); !st.ok()) {
    return refuse(st, name);
  }
  if (auto st = CheckCsr(request->csr_pem(), name); !st.ok()) return refuse(st, name);
  if (auto st = CheckLabels(request->labels()); !st.ok()) return refuse(st, name);
  if (request->spoke_version().size() > 64) {
    return refuse(absl::InvalidArgumentError("spoke_version is longer than 64 bytes"), name);
  }
  auto cert = common::SignCsr(pki_.ca, request->csr_pem(), identity,
                              absl::FromChrono(options_.cert_validity));
  if (!cert.ok()) return refuse(cert.status(), name);
  auto info = common::InspectCert(*cert);
  if (!info.ok()) return refuse(info.status(), name);

  const std::int64_t now_ms = common::ToUnixMillis(clock_.Now());
  store::SpokeRecord spoke{.name = name,
                           .advertise_address = request->advertise_address(),
                           .cert_sha256 = info->sha256_fingerprint,
                           .not_after_ms = absl::ToUnixMillis(info->not_after),
                           .labels = {request->labels().begin(), request->labels().end()},
                           .version = request->spoke_version(),
                           .joined_at_ms = now_ms,
                           .renewed_at_ms = now_ms};
  // The token is consumed only now, so a refused CSR or address leaves it usable.
  if (auto st = store_.ConsumeJoinToken(hash, now_ms, spoke); !st.ok()) return refuse(st, name);

  response->set_spoke_name(name);
  response->set_certificate_pem(*cert);
  response->set_ca_certificate_pem(pki_.ca.cert_pem);
  response->set_hub_identity(std::string(common::kHubIdentity));
  for (const auto& pin : HubKeys()) response->add_hub_key_sha256(pin);
  SetTimestamp(response->mutable_not_after(), info->not_after);
  SetDuration(response->mutable_renew_before(), absl::FromChrono(options_.renew_before));
  spdlog::info("cluster: spoke {} joined from {} (advertises {}, certificate until {})", name,
               Peer(context), spoke.advertise_address,
               absl::FormatTime(absl::RFC3339_sec, info->not_after, absl::UTCTimeZone()));
  AuditJoin(options_.audit, context, name, spoke.advertise_address, absl::OkStatus());
  if (on_joined_) on_joined_(spoke);
  return grpc::Status::OK;
}

grpc::Status EnrollmentServiceImpl::Renew(grpc::ServerContext* context,
                                          const v1::RenewRequest* request,
                                          v1::RenewResponse* response) {
  auto refuse = [&](const absl::Status& status) {
    spdlog::warn("cluster: renew from {} refused: {}", Peer(context),
                 common::AsStd(status.message()));
    return ToGrpcStatus(status);
  };
  auto auth = context->auth_context();
  if (auth == nullptr) {
    return refuse(absl::UnauthenticatedError("a verified client certificate is required"));
  }
  auto peer = common::VerifiedPeer(*auth);
  if (!peer.ok()) {
    return refuse(
        absl::UnauthenticatedError("Renew needs the spoke's current certificate (mutual TLS): " +
                                   std::string(common::AsStd(peer.status().message()))));
  }
  if (!peer->uri.starts_with(kSpokeIdentityPrefix)) {
    return refuse(absl::PermissionDeniedError("only spokes renew here; the peer is " + peer->uri));
  }
  const std::string name = peer->uri.substr(kSpokeIdentityPrefix.size());
  auto spoke = store_.GetSpoke(name);
  if (absl::IsNotFound(spoke.status())) {
    return refuse(absl::PermissionDeniedError(
        "spoke " + common::QuoteForMessage(name) +
        " is not enrolled (it was removed): join again with a new token"));
  }
  if (!spoke.ok()) return refuse(spoke.status());
  auto presented = common::InspectCert(peer->cert_pem);
  if (!presented.ok()) return refuse(presented.status());
  if (!common::ConstantTimeEquals(presented->sha256_fingerprint, spoke->cert_sha256)) {
    return refuse(absl::PermissionDeniedError(
        "spoke " + common::QuoteForMessage(name) +
        ": this is not its current certificate (it was renewed or joined again since)"));
  }
  if (auto st = CheckCsr(request->csr_pem(), name); !st.ok()) return refuse(st);
  common::CertIdentity identity{.uri = peer->uri};
  if (auto st = CheckAdvertiseAddress(spoke->advertise_address, &identity); !st.ok()) {
    return refuse(st);
  }
  auto cert = common::SignCsr(pki_.ca, request->csr_pem(), identity,
                              absl::FromChrono(options_.cert_validity));
  if (!cert.ok()) return refuse(cert.status());
  auto info = common::InspectCert(*cert);
  if (!info.ok()) return refuse(info.status());
  store::SpokeRecord renewed = *spoke;
  const std::string previous = renewed.cert_sha256;
  renewed.cert_sha256 = info->sha256_fingerprint;
  renewed.not_after_ms = absl::ToUnixMillis(info->not_after);
  renewed.renewed_at_ms = common::ToUnixMillis(clock_.Now());
  if (auto st = store_.RenewSpoke(renewed, previous); !st.ok()) return refuse(st);

  response->set_certificate_pem(*cert);
  response->set_ca_certificate_pem(pki_.ca.cert_pem);
  for (const auto& pin : HubKeys()) response->add_hub_key_sha256(pin);
  SetTimestamp(response->mutable_not_after(), info->not_after);
  SetDuration(response->mutable_renew_before(), absl::FromChrono(options_.renew_before));
  spdlog::info("cluster: spoke {} renewed its certificate (until {})", name,
               absl::FormatTime(absl::RFC3339_sec, info->not_after, absl::UTCTimeZone()));
  return grpc::Status::OK;
}

}  // namespace llmbox::hub::cluster
