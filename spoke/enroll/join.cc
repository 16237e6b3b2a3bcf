// spoke/enroll/join.cc
#include "spoke/enroll/join.h"

#include <filesystem>
#include <system_error>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "common/grpc_tls.h"
#include "common/join_token.h"
#include "common/pki.h"
#include "common/status.h"
#include "common/version.h"
#include "llmbox/v1/cluster.grpc.pb.h"
#include "spoke/enroll/hub_pins.h"

namespace llmbox::spoke::enroll {
namespace {

std::unique_ptr<grpc::ClientContext> Context(std::chrono::seconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

// A failed call to the hub, saying where and what to do.
[[nodiscard]] absl::Status HubError(const grpc::Status& status, const std::string& address,
                                    std::string_view step) {
  const std::string message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::UnavailableError("cannot reach the hub's enrollment service at " + address +
                                    " (" + std::string(step) + "): " + message +
                                    ". Check --hub (the hub's cluster.listen) and that the port "
                                    "is open from here");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError("the hub at " + address + " did not answer in time (" +
                                         std::string(step) + ")");
    default: {
      absl::Status converted = common::FromGrpcStatus(status);
      return absl::Status(converted.code(), "the hub at " + address + " refused to " +
                                                std::string(step) + ": " + message);
    }
  }
}

// Checks the certificate the hub issued and writes the files `serve` reads: the CA and the
// certificate are public, the key is not. The key goes before the certificate, so a watcher
// never pairs a new certificate with the old key for longer than a moment.
[[nodiscard]] absl::StatusOr<JoinResult> Install(
    const config::SpokeConfig& config, const std::string& name, const std::string& hub_address,
    const std::string& key, const std::string& cert_pem, const std::string& ca_pem,
    const google::protobuf::Duration& renew_before,
    const google::protobuf::RepeatedPtrField<std::string>& hub_keys, bool joining) {
  const std::vector<std::string> pins(hub_keys.begin(), hub_keys.end());
  if (!pins.empty()) {
    if (auto st = ValidateHubPins(pins); !st.ok()) {
      return absl::PermissionDeniedError("the hub sent hub keys this spoke cannot pin: " +
                                         std::string(common::AsStd(st.message())));
    }
  }
  LLMBOX_ASSIGN_OR_RETURN(common::CertInfo cert, common::InspectCert(cert_pem));
  const std::string identity = common::SpokeIdentity(name);
  if (cert.uris.size() != 1 || cert.uris[0] != identity) {
    return absl::InternalError("the hub issued a certificate without the identity " + identity);
  }
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(config.tls.ca_file, ca_pem, 0644));
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(config.tls.key_file, key, 0600));
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(config.tls.cert_file, cert_pem, 0644));
  const Enrollment enrollment{.hub_address = hub_address,
                              .renew_before = absl::Seconds(renew_before.seconds())};
  LLMBOX_RETURN_IF_ERROR(WriteEnrollment(config, enrollment));
  // The pins go last: until the new certificate is in place the old hub keys still apply.
  if (!pins.empty()) {
    LLMBOX_RETURN_IF_ERROR(WriteHubPins(HubPinsPath(config), pins));
  } else if (joining) {
    // A hub older than pinning: pins left from an earlier hub would refuse this one.
    std::error_code ignored;
    std::filesystem::remove(HubPinsPath(config), ignored);
  }
  return JoinResult{
      .spoke_name = name, .not_after = cert.not_after, .renew_before = enrollment.renew_before};
}

}  // namespace

std::string EnrollmentPath(const config::SpokeConfig& config) {
  return config.state_dir + "/enrollment.json";
}

[[nodiscard]] absl::Status WriteEnrollment(const config::SpokeConfig& config,
                                           const Enrollment& enrollment) {
  const nlohmann::json doc = {
      {"hub", enrollment.hub_address},
      {"renew_before_seconds", absl::ToInt64Seconds(enrollment.renew_before)}};
  return common::WriteFileAtomic(EnrollmentPath(config), doc.dump() + "\n", 0644);
}

[[nodiscard]] absl::StatusOr<Enrollment> ReadEnrollment(const config::SpokeConfig& config) {
  const std::string path = EnrollmentPath(config);
  auto text = common::ReadSmallFile(path);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(path + " does not exist: this spoke has not joined a hub");
  }
  if (!text.ok()) return text.status();
  const auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_object() || !doc.contains("hub") || !doc["hub"].is_string() ||
      !doc.contains("renew_before_seconds") || !doc["renew_before_seconds"].is_number_integer()) {
    return absl::DataLossError(path + " is not what join writes; run llmbox-spoke renew once");
  }
  return Enrollment{.hub_address = doc["hub"].get<std::string>(),
                    .renew_before = absl::Seconds(doc["renew_before_seconds"].get<int64_t>())};
}

[[nodiscard]] absl::StatusOr<JoinResult> JoinCluster(const JoinOptions& options,
                                                     const config::SpokeConfig& config) {
  LLMBOX_ASSIGN_OR_RETURN(common::JoinToken token, common::ParseJoinToken(options.token));
  if (options.hub_address.empty() || options.hub_address.find(':') == std::string::npos) {
    return absl::InvalidArgumentError("--hub must be host:port of the hub's enrollment listener");
  }

  // 1. The CA, from whoever answers, checked against the token's pin before anything else.
  v1::GetClusterCAResponse ca;
  {
    auto stub = v1::Enrollment::NewStub(
        grpc::CreateChannel(options.hub_address, common::UnverifiedTlsChannelCredentials()));
    auto context = Context(options.timeout);
    grpc::Status status = stub->GetClusterCA(context.get(), v1::GetClusterCARequest(), &ca);
    if (!status.ok()) return HubError(status, options.hub_address, "send its cluster CA");
  }
  LLMBOX_RETURN_IF_ERROR(common::CheckCaFingerprint(ca.ca_certificate_pem(), token.ca_sha256));

  // 2. A key that never leaves this host, and the token, to the hub proven by that CA.
  LLMBOX_ASSIGN_OR_RETURN(std::string key, common::MakePrivateKey());
  LLMBOX_ASSIGN_OR_RETURN(std::string csr, common::MakeCsr(key, config.name));
  v1::JoinRequest request;
  request.set_token(options.token);
  request.set_csr_pem(csr);
  request.set_advertise_address(options.advertise_address);
  request.set_spoke_version(common::kVersion);
  for (const auto& [label, value] : options.labels) (*request.mutable_labels())[label] = value;
  v1::JoinResponse joined;
  {
    auto stub = v1::Enrollment::NewStub(grpc::CreateChannel(
        options.hub_address,
        common::PinnedTlsChannelCredentials(ca.ca_certificate_pem(), config.hub_identity)));
    auto context = Context(options.timeout);
    grpc::Status status = stub->Join(context.get(), request, &joined);
    if (!status.ok()) return HubError(status, options.hub_address, "let this spoke join");
  }
  return Install(config, joined.spoke_name(), options.hub_address, key, joined.certificate_pem(),
                 joined.ca_certificate_pem(), joined.renew_before(), joined.hub_key_sha256(),
                 /*joining=*/true);
}

[[nodiscard]] absl::StatusOr<JoinResult> RenewCertificate(const std::string& hub_address,
                                                          const config::SpokeConfig& config,
                                                          std::chrono::seconds timeout) {
  LLMBOX_ASSIGN_OR_RETURN(common::TlsPems current, common::ReadTlsFiles(config.tls));
  LLMBOX_ASSIGN_OR_RETURN(std::string key, common::MakePrivateKey());
  LLMBOX_ASSIGN_OR_RETURN(std::string csr, common::MakeCsr(key, config.name));
  v1::RenewRequest request;
  request.set_csr_pem(csr);
  v1::RenewResponse renewed;
  // A joined spoke renews only with a hub whose key it pinned; without pins (a hub older than
  // pinning) any hub certificate from the CA, as before.
  std::vector<std::string> pins;
  if (auto read = ReadHubPins(HubPinsPath(config)); read.ok()) {
    pins = *std::move(read);
  } else if (!absl::IsNotFound(read.status())) {
    return read.status();
  }
  auto stub = v1::Enrollment::NewStub(grpc::CreateChannel(
      hub_address, common::PinnedMutualTlsChannelCredentials(
                       current, config.hub_identity, std::move(pins), common::PinBy::kPublicKey)));
  auto context = Context(timeout);
  grpc::Status status = stub->Renew(context.get(), request, &renewed);
  if (!status.ok()) return HubError(status, hub_address, "renew this spoke's certificate");
  return Install(config, config.name, hub_address, key, renewed.certificate_pem(),
                 renewed.ca_certificate_pem(), renewed.renew_before(), renewed.hub_key_sha256(),
                 /*joining=*/false);
}

}  // namespace llmbox::spoke::enroll
