// hub/config/quota_config.cc
#include "hub/config/quota_config.h"

#include <set>

#include "common/status.h"

namespace llmbox::hub::config {
namespace {

// The four limits of `m` over `out`, each remembering the key path it came from.
[[nodiscard]] absl::Status ReadLimits(common::ConfigMap& m, QuotaLimits* out) {
  auto read = [&m](std::string_view key, QuotaLimit* limit, std::int64_t max) -> absl::Status {
    if (!m.Has(key)) return absl::OkStatus();
    LLMBOX_RETURN_IF_ERROR(m.Int64(key, &limit->value, 0, max));
    limit->key = m.PathOf(key);
    return absl::OkStatus();
  };
  LLMBOX_RETURN_IF_ERROR(read("boxes_alive", &out->boxes_alive, 10'000));
  LLMBOX_RETURN_IF_ERROR(read("creates_per_hour", &out->creates_per_hour, 100'000));
  LLMBOX_RETURN_IF_ERROR(read("concurrent_execs", &out->concurrent_execs, 1024));
  return read("exec_seconds_per_hour", &out->exec_seconds_per_hour, 3'600'000);
}

bool IsKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.'))) return false;
  }
  return true;
}

}  // namespace

bool IsPrincipalId(std::string_view id) {
  if (id == "anonymous") return true;
  if (id.rfind("key:", 0) == 0) return IsKeyName(id.substr(4));
  return id.rfind("oidc:", 0) == 0 && id.find('#') != std::string_view::npos && id.size() <= 1024;
}

absl::Status ReadQuotaConfig(common::ConfigMap& m, QuotaConfig* out) {
  LLMBOX_RETURN_IF_ERROR(ReadLimits(m, &out->defaults));
  LLMBOX_RETURN_IF_ERROR(m.Bool("admins_exempt", &out->admins_exempt));
  LLMBOX_ASSIGN_OR_RETURN(std::vector<common::ConfigMap> overrides, m.MapList("overrides"));
  std::set<std::string, std::less<>> seen;
  for (common::ConfigMap& item : overrides) {
    QuotaOverride entry{.limits = out->defaults};
    LLMBOX_RETURN_IF_ERROR(item.Str("principal", &entry.principal));
    if (entry.principal.empty()) {
      return item.Error("principal", "is required (key:<API key name>, anonymous, or oidc:...)");
    }
    if (!IsPrincipalId(entry.principal)) {
      return item.Error("principal",
                        "must be a principal id: key:<API key name> (key:alice), anonymous, or "
                        "oidc:<issuer>#<subject>; got \"" +
                            entry.principal + "\"");
    }
    if (!seen.insert(entry.principal).second) {
      return item.Error("principal", "\"" + entry.principal + "\" has an override already");
    }
    LLMBOX_RETURN_IF_ERROR(ReadLimits(item, &entry.limits));
    LLMBOX_RETURN_IF_ERROR(item.Finish());
    out->overrides.push_back(std::move(entry));
  }
  return m.Finish();
}

}  // namespace llmbox::hub::config
