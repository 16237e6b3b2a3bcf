#include "spoke/docker/http_errors.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include <nlohmann/json.hpp>

namespace llmbox::spoke::docker {

std::string EngineMessage(const std::string& body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
    return parsed["message"].get<std::string>();
  }
  std::string text = body.substr(0, 300);
  absl::StripAsciiWhitespace(&text);
  return text;
}

[[nodiscard]] absl::Status StatusForHttp(long http, std::string message) {
  switch (http) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      // A name in use is AlreadyExists; a conflict of state ("is not running") is not.
      if (absl::StrContains(message, "already in use") ||
          absl::StrContains(message, "already exists")) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    default:
      if (http >= 500) return absl::UnavailableError(message);
      return absl::UnknownError(message);
  }
}

bool RefusedClientCertificate(std::string_view ssl_text) {
  for (std::string_view alert :
       {"certificate required", "bad certificate", "unknown ca", "handshake failure"}) {
    if (ssl_text.find(alert) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace llmbox::spoke::docker
