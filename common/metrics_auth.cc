#include "common/metrics_auth.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::common {
namespace {

constexpr std::size_t kMinTokenBytes = 16;
constexpr std::size_t kMaxTokenBytes = 4096;

}  // namespace

absl::StatusOr<std::string> ReadMetricsBearerToken(const std::string& path) {
  LLMBOX_ASSIGN_OR_RETURN(std::string token, ReadPrivateFile(path, kMaxTokenBytes + 2));
  if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " holds ", token.size(), " bytes; a bearer token must be ", kMinTokenBytes, " to ",
        kMaxTokenBytes, " (e.g. openssl rand -hex 32 > ", path, ")"));
  }
  for (const char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(path,
                       " holds a character that is not visible ASCII (a space, a control "
                       "character, or a second line); a bearer token is one word"));
    }
  }
  return token;
}

bool MetricsBearerAllows(std::optional<std::string_view> authorization, std::string_view token) {
  if (token.empty() || !authorization.has_value()) return false;
  const std::optional<std::string_view> credential = BearerCredential(*authorization);
  return credential.has_value() && ConstantTimeEquals(Sha256(*credential), Sha256(token));
}

absl::Status ReadMetricsBearerTokenKey(ConfigMap& section, const std::string& base_dir,
                                       std::string* token) {
  constexpr std::string_view kKey = "bearer_token";
  if (section.Has(kKey)) return section.SecretFile(kKey, token);  // refused, naming the _file
  const std::string file_key = absl::StrCat(AsAbsl(kKey), "_file");
  std::string path;
  LLMBOX_RETURN_IF_ERROR(section.Str(file_key, &path));
  if (path.empty()) return absl::OkStatus();
  if (path.front() != '/' && !base_dir.empty()) {
    path = (std::filesystem::path(base_dir) / path).lexically_normal().string();
  }
  absl::StatusOr<std::string> read = ReadMetricsBearerToken(path);
  if (!read.ok()) return section.Error(file_key, AsStd(read.status().message()));
  *token = *std::move(read);
  return absl::OkStatus();
}

}  // namespace llmbox::common
