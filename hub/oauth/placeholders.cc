// Placeholders for the parts of hub/oauth being built on other branches; each goes when its
// branch merges. Everything here refuses.
#include "hub/oauth/clients.h"
#include "hub/oauth/redirect_uri.h"
#include "hub/oauth/tokens.h"

namespace llmbox::hub::oauth {
namespace {
absl::Status NotYet() { return absl::UnimplementedError("oauth: not built yet"); }
class NoCimd final : public CimdFetcher {
 public:
  absl::StatusOr<std::string> Fetch(const std::string&) override { return NotYet(); }
};
}  // namespace

// clients
std::unique_ptr<CimdFetcher> MakeCurlCimdFetcher(std::chrono::milliseconds, std::size_t, bool) {
  return std::make_unique<NoCimd>();
}
// redirect URIs (the clients branch)
absl::StatusOr<UriParts> ParseRedirectUri(std::string_view uri) {
  UriParts parts;
  const auto colon = uri.find("://");
  if (colon == std::string_view::npos) return absl::InvalidArgumentError("not a URI");
  parts.scheme = std::string(uri.substr(0, colon));
  std::string_view rest = uri.substr(colon + 3);
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  parts.path_and_query = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
  } else {
    const auto port = authority.rfind(':');
    host = authority.substr(0, port);
    authority.remove_prefix(port == std::string_view::npos ? authority.size() : port);
  }
  parts.host = std::string(host);
  if (authority.size() > 1 && authority.front() == ':') {
    parts.port = std::stoi(std::string(authority.substr(1)));
  }
  return parts;
}

std::optional<std::string> MatchRedirectUri(const std::vector<std::string>& registered,
                                            std::string_view presented) {
  for (const auto& uri : registered) {
    if (uri == presented) return uri;
  }
  return std::nullopt;
}

}  // namespace llmbox::hub::oauth
