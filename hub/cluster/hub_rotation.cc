// hub/cluster/hub_rotation.cc
#include "hub/cluster/hub_rotation.h"

#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/status.h"
#include "hub/cluster/cluster_pki.h"

namespace llmbox::hub::cluster {
namespace {

struct Files {
  explicit Files(const std::string& dir)
      : key(dir + "/hub.next.key"), cert(dir + "/hub.next.crt"), state(dir + "/hub.next.json") {}
  std::string key, cert, state;
};

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

[[nodiscard]] absl::Status WriteState(const Files& files, const PendingRotation& rotation) {
  nlohmann::json doc = {{"overlap_seconds", absl::ToInt64Seconds(rotation.overlap)}};
  if (rotation.started) doc["started_unix_ms"] = absl::ToUnixMillis(*rotation.started);
  return common::WriteFileAtomic(files.state, doc.dump() + "\n", 0644);
}

}  // namespace

absl::StatusOr<PendingRotation> StartRotation(const std::string& dir,
                                              const common::CertifiedKey& ca,
                                              absl::Duration overlap, absl::Time now,
                                              absl::Duration validity) {
  if (overlap < kMinRotationOverlap || overlap > kMaxRotationOverlap) {
    return absl::InvalidArgumentError("--overlap must be 1s..23h");
  }
  const Files files(dir);
  if (Exists(files.state) || Exists(files.key) || Exists(files.cert)) {
    return absl::AlreadyExistsError("a rotation of the hub's key is already in progress (" +
                                    files.state +
                                    "): the serving hub finishes it after its overlap");
  }
  PendingRotation rotation{.overlap = overlap};
  LLMBOX_ASSIGN_OR_RETURN(rotation.key_pem, common::MakePrivateKey());
  LLMBOX_ASSIGN_OR_RETURN(rotation.cert_pem,
                          IssueHubCertificate(ca, rotation.key_pem, validity, now));
  LLMBOX_ASSIGN_OR_RETURN(common::CertInfo info, common::InspectCert(rotation.cert_pem));
  rotation.key_sha256 = info.public_key_sha256;
  // The state file last: the hub looks at the rotation only once it is there.
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(files.key, rotation.key_pem, 0600));
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(files.cert, rotation.cert_pem, 0644));
  LLMBOX_RETURN_IF_ERROR(WriteState(files, rotation));
  return rotation;
}

absl::StatusOr<std::optional<PendingRotation>> ReadRotation(const std::string& dir) {
  const Files files(dir);
  if (!Exists(files.state)) return std::nullopt;
  auto text = common::ReadSmallFile(files.state, 4096);
  auto key = common::ReadSmallFile(files.key);
  auto cert = common::ReadSmallFile(files.cert);
  if (!text.ok() || !key.ok() || !cert.ok()) {
    return absl::DataLossError("cluster: the rotation in " + dir +
                               " is incomplete (hub.next.json, hub.next.key, hub.next.crt); "
                               "remove the three files and run rotate-identity again");
  }
  const auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_object() || !doc.contains("overlap_seconds") ||
      !doc["overlap_seconds"].is_number_integer() ||
      (doc.contains("started_unix_ms") && !doc["started_unix_ms"].is_number_integer())) {
    return absl::DataLossError("cluster: " + files.state + " is not what rotate-identity writes");
  }
  auto info = common::InspectCert(*cert);
  if (!info.ok()) return absl::DataLossError("cluster: " + files.cert + " is not a certificate");
  PendingRotation rotation{.key_pem = *std::move(key),
                           .cert_pem = *std::move(cert),
                           .key_sha256 = info->public_key_sha256,
                           .overlap = absl::Seconds(doc["overlap_seconds"].get<int64_t>())};
  if (doc.contains("started_unix_ms")) {
    rotation.started = absl::FromUnixMillis(doc["started_unix_ms"].get<int64_t>());
  }
  return rotation;
}

absl::Status MarkRotationStarted(const std::string& dir, const PendingRotation& rotation,
                                 absl::Time now) {
  PendingRotation started = rotation;
  started.started = now;
  return WriteState(Files(dir), started);
}

absl::Status FinishRotation(const std::string& dir, const PendingRotation& rotation) {
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(HubKeyPath(dir), rotation.key_pem, 0600));
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(HubCertPath(dir), rotation.cert_pem, 0644));
  const Files files(dir);
  std::error_code ignored;
  std::filesystem::remove(files.state, ignored);
  std::filesystem::remove(files.key, ignored);
  std::filesystem::remove(files.cert, ignored);
  return absl::OkStatus();
}

}  // namespace llmbox::hub::cluster
