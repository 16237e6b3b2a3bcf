#include "spoke/config/spoke_config.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "common/absl_compat.h"
#include "common/config.h"
#include "common/metrics_auth.h"
#include "common/metrics_server.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::spoke::config {
namespace {

using common::ConfigMap;

// Relative paths in the file are relative to the file's folder.
std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

[[nodiscard]] absl::Status ReadSpoke(ConfigMap& m, const std::string& base, SpokeConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("name", &c->name));
  if (auto st = common::ValidateName(c->name, "spoke name"); !st.ok()) {
    return m.Error("name", common::AsStd(st.message()));
  }
  LLMBOX_RETURN_IF_ERROR(m.Str("listen", &c->listen));
  LLMBOX_RETURN_IF_ERROR(m.Str("state_dir", &c->state_dir));
  c->state_dir = Resolve(base, c->state_dir);
  return m.Finish();
}

[[nodiscard]] absl::Status ReadMetrics(ConfigMap& m, const std::string& base, SpokeConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("listen", &c->metrics_listen));
  if (!c->metrics_listen.empty()) {
    if (auto address = common::ParseListenAddress(c->metrics_listen); !address.ok()) {
      return m.Error("listen", common::AsStd(address.status().message()));
    }
  }
  LLMBOX_RETURN_IF_ERROR(common::ReadMetricsBearerTokenKey(m, base, &c->metrics_bearer_token));
  return m.Finish();
}

[[nodiscard]] absl::Status ReadTls(ConfigMap& m, const std::string& base, SpokeConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("cert_file", &c->tls.cert_file));
  LLMBOX_RETURN_IF_ERROR(m.Str("key_file", &c->tls.key_file));
  LLMBOX_RETURN_IF_ERROR(m.Str("ca_file", &c->tls.ca_file));
  LLMBOX_RETURN_IF_ERROR(m.Str("hub_identity", &c->hub_identity));
  LLMBOX_RETURN_IF_ERROR(m.Duration("renew_check", &c->renew_check));
  if (c->renew_check < std::chrono::seconds(1) || c->renew_check > std::chrono::hours(24)) {
    return m.Error("renew_check", "must be 1s..24h");
  }
  c->tls.cert_file = Resolve(base, c->tls.cert_file);
  c->tls.key_file = Resolve(base, c->tls.key_file);
  c->tls.ca_file = Resolve(base, c->tls.ca_file);
  return m.Finish();
}

[[nodiscard]] absl::Status ReadDocker(ConfigMap& m, const std::string& base, SpokeConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("socket", &c->docker.unix_socket));
  LLMBOX_RETURN_IF_ERROR(m.Str("url", &c->docker.tcp_url));
  if (!c->docker.tcp_url.empty() && !m.Has("socket")) c->docker.unix_socket.clear();
  if (!c->docker.tcp_url.empty() && !c->docker.unix_socket.empty()) {
    return m.Error("url", "set either socket or url, not both");
  }
  LLMBOX_RETURN_IF_ERROR(m.Str("tls_ca_file", &c->docker.tls_ca_file));
  LLMBOX_RETURN_IF_ERROR(m.Str("tls_cert_file", &c->docker.tls_cert_file));
  LLMBOX_RETURN_IF_ERROR(m.Str("tls_key_file", &c->docker.tls_key_file));
  c->docker.tls_ca_file = Resolve(base, c->docker.tls_ca_file);
  c->docker.tls_cert_file = Resolve(base, c->docker.tls_cert_file);
  c->docker.tls_key_file = Resolve(base, c->docker.tls_key_file);
  LLMBOX_RETURN_IF_ERROR(m.Duration("call_timeout", &c->docker.call_timeout));
  return m.Finish();
}

// boxes.exec: the exec user's share of each box (its exec container).
[[nodiscard]] absl::Status ReadExec(ConfigMap& m, box::ExecOptions* e) {
  LLMBOX_RETURN_IF_ERROR(m.Int("uid", &e->uid, 1, 2'000'000'000));
  LLMBOX_RETURN_IF_ERROR(m.Int("gid", &e->gid, 1, 2'000'000'000));
  uint64_t memory = static_cast<uint64_t>(e->memory_bytes);
  LLMBOX_RETURN_IF_ERROR(m.Size("memory", &memory));
  if (memory != 0 && memory < (uint64_t{32} << 20)) {
    return m.Error("memory", "must be at least 32MiB (or 0B for no limit)");
  }
  e->memory_bytes = static_cast<int64_t>(memory);
  LLMBOX_RETURN_IF_ERROR(m.Int64("pids_limit", &e->pids_limit, 0, 1'000'000));
  LLMBOX_RETURN_IF_ERROR(m.Int("max_concurrent", &e->max_concurrent, 1, 64));
  return m.Finish();
}

// boxes.disk: how much of the engine's data root a box may use.
[[nodiscard]] absl::Status ReadDisk(ConfigMap& m, const SpokeConfig& c, box::DiskOptions* d) {
  // A size key read into `out`, within [min, max]; 0 too when `zero_means` says what it means.
  auto sized = [&m](std::string_view key, int64_t* out, uint64_t min, uint64_t max,
                    std::string_view zero_means) -> absl::Status {
    uint64_t bytes = static_cast<uint64_t>(*out);
    LLMBOX_RETURN_IF_ERROR(m.Size(key, &bytes));
    if (bytes == 0 && !zero_means.empty()) {
      *out = 0;
      return absl::OkStatus();
    }
    if (bytes < min || bytes > max) {
      const std::string or_zero =
          zero_means.empty() ? "" : absl::StrCat(" (or 0B: ", common::AsAbsl(zero_means), ")");
      return m.Error(key, absl::StrCat("must be ", min >> 20, "MiB..", max >> 30, "GiB", or_zero,
                                       ", got ", bytes, "B"));
    }
    *out = static_cast<int64_t>(bytes);
    return absl::OkStatus();
  };
  LLMBOX_RETURN_IF_ERROR(
      sized("log_max_size", &d->log_max_bytes, uint64_t{1} << 20, uint64_t{1} << 30, ""));
  LLMBOX_RETURN_IF_ERROR(m.Int("log_max_files", &d->log_max_files, 1, 100));
  LLMBOX_RETURN_IF_ERROR(sized("workspace_size", &d->workspace_bytes, uint64_t{64} << 20,
                               uint64_t{1} << 40, "an unbounded volume on the data root"));
  std::string type = d->workspace_type == box::WorkspaceType::kLoop ? "loop" : "tmpfs";
  LLMBOX_RETURN_IF_ERROR(m.Str("workspace_type", &type));
  if (type == "tmpfs") {
    d->workspace_type = box::WorkspaceType::kTmpfs;
  } else if (type == "loop") {
    // The engine mounts the spoke's loop device: it must run on the spoke's host.
    if (!c.docker.tcp_url.empty()) {
      return m.Error("workspace_type", "loop needs the engine on this host (docker.socket)");
    }
    d->workspace_type = box::WorkspaceType::kLoop;
  } else {
    return m.Error("workspace_type",
                   absl::StrCat("must be tmpfs or loop, got ", common::QuoteForMessage(type)));
  }
  LLMBOX_RETURN_IF_ERROR(
      sized("exec_tmp_size", &d->exec_tmp_bytes, uint64_t{1} << 20, uint64_t{64} << 30, ""));
  LLMBOX_RETURN_IF_ERROR(
      sized("root_size", &d->root_bytes, uint64_t{256} << 20, uint64_t{1} << 40, "unbounded"));
  return m.Finish();
}

[[nodiscard]] absl::Status ReadBoxes(ConfigMap& m, const std::string& base, SpokeConfig* c) {
  auto& b = c->boxes;
  LLMBOX_RETURN_IF_ERROR(m.Str("default_image", &b.default_image));
  LLMBOX_RETURN_IF_ERROR(m.StrList("allowed_images", &b.allowed_images));
  LLMBOX_RETURN_IF_ERROR(m.StrList("allowed_peers", &b.allowed_peers));
  LLMBOX_RETURN_IF_ERROR(m.Str("claude_bin", &b.claude_bin));
  b.claude_bin = Resolve(base, b.claude_bin);
  LLMBOX_RETURN_IF_ERROR(m.StrList("remote_control_args", &b.remote_control_args));
  for (const auto& arg : b.remote_control_args) {
    // They end up inside the wrapper's shell command line.
    for (char ch : arg) {
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '=' ||
            ch == '.')) {
        return m.Error("remote_control_args", absl::StrCat("may only hold [A-Za-z0-9-_=.], got ",
                                                           common::QuoteForMessage(arg)));
      }
    }
  }
  LLMBOX_RETURN_IF_ERROR(m.Int("max_boxes", &b.max_boxes, 1, 1000));
  LLMBOX_RETURN_IF_ERROR(m.Int("max_concurrent_creates", &b.max_concurrent_creates, 1, 64));
  uint64_t memory = static_cast<uint64_t>(b.memory_bytes);
  LLMBOX_RETURN_IF_ERROR(m.Size("memory", &memory));
  if (memory != 0 && memory < (uint64_t{64} << 20)) {
    return m.Error("memory", "must be at least 64MiB (or 0B for no limit)");
  }
  b.memory_bytes = static_cast<int64_t>(memory);
  int cpus = static_cast<int>(b.nano_cpus / 1'000'000'000);
  LLMBOX_RETURN_IF_ERROR(m.Int("cpus", &cpus, 0, 256));
  b.nano_cpus = int64_t{cpus} * 1'000'000'000;
  LLMBOX_RETURN_IF_ERROR(m.Int64("pids_limit", &b.pids_limit, 0, 1'000'000));
  LLMBOX_RETURN_IF_ERROR(m.Duration("url_timeout", &b.url_timeout));
  LLMBOX_RETURN_IF_ERROR(m.Duration("submit_timeout", &b.submit_timeout));
  std::chrono::milliseconds grace = b.stop_grace;
  LLMBOX_RETURN_IF_ERROR(m.Duration("stop_grace", &grace));
  b.stop_grace = std::chrono::duration_cast<std::chrono::seconds>(grace);
  LLMBOX_RETURN_IF_ERROR(m.Int("max_activation_attempts", &b.max_activation_attempts, 1, 20));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> exec, m.Map("exec"));
  if (exec.has_value()) LLMBOX_RETURN_IF_ERROR(ReadExec(*exec, &b.exec));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> disk, m.Map("disk"));
  if (disk.has_value()) LLMBOX_RETURN_IF_ERROR(ReadDisk(*disk, *c, &b.disk));
  return m.Finish();
}

// egress: what boxes may reach (docs/network.md).
[[nodiscard]] absl::Status ReadEgress(ConfigMap& m, SpokeConfig* c) {
  egress::SpokePolicy& p = c->boxes.egress;
  std::string mode_text(egress::ModeName(p.default_mode));
  LLMBOX_RETURN_IF_ERROR(m.Str("default_mode", &mode_text));
  auto mode = egress::ParseMode(mode_text);
  if (!mode.ok()) return m.Error("default_mode", common::AsStd(mode.status().message()));
  p.default_mode = *mode;
  if (m.Has("modes")) {
    std::vector<std::string> texts;
    LLMBOX_RETURN_IF_ERROR(m.StrList("modes", &texts));
    p.modes.clear();
    for (const auto& text : texts) {
      auto one = egress::ParseMode(text);
      if (!one.ok()) return m.Error("modes", common::AsStd(one.status().message()));
      p.modes.push_back(*one);
    }
  }
  if (std::find(p.modes.begin(), p.modes.end(), p.default_mode) == p.modes.end()) {
    return m.Error("default_mode", "must be one of the modes allowed (egress.modes)");
  }
  auto entries = [&](const char* key, std::vector<egress::Entry>* out, bool* star) -> absl::Status {
    if (!m.Has(key)) return absl::OkStatus();
    std::vector<std::string> texts;
    LLMBOX_RETURN_IF_ERROR(m.StrList(key, &texts));
    out->clear();
    for (const auto& text : texts) {
      if (star != nullptr && text == "*") {
        *star = true;
        continue;
      }
      auto entry = egress::ParseEntry(text);
      if (!entry.ok()) return m.Error(key, common::AsStd(entry.status().message()));
      out->push_back(*entry);
    }
    return absl::OkStatus();
  };
  LLMBOX_RETURN_IF_ERROR(entries("base_allowlist", &p.base_allowlist, nullptr));
  if (m.Has("box_may_allow")) p.box_may_allow_anything = false;
  LLMBOX_RETURN_IF_ERROR(entries("box_may_allow", &p.box_may_allow, &p.box_may_allow_anything));
  LLMBOX_RETURN_IF_ERROR(m.Int("max_box_entries", &p.max_box_entries, 0, 1024));
  std::vector<std::string> ranges;
  LLMBOX_RETURN_IF_ERROR(m.StrList("allow_ranges", &ranges));
  for (const auto& text : ranges) {
    auto range = egress::ParseCidr(text);
    if (!range.ok()) return m.Error("allow_ranges", common::AsStd(range.status().message()));
    p.allow_ranges.push_back(*range);
  }
  LLMBOX_RETURN_IF_ERROR(m.Int("proxy_port", &c->egress.proxy_port, 1, 65535));
  std::vector<std::string> hosts;
  LLMBOX_RETURN_IF_ERROR(m.StrList("hosts", &hosts));
  for (const auto& line : hosts) {
    // "name=address"
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(kv.first));
    auto address = egress::ParseIp(common::AsStd(absl::StripAsciiWhitespace(kv.second)));
    auto as_entry = egress::ParseEntry(name);
    if (name.empty() || !address.has_value() || !as_entry.ok() ||
        as_entry->kind != egress::Entry::Kind::kDomain || as_entry->port != 0) {
      return m.Error("hosts", absl::StrCat("each must be NAME=ADDRESS (a domain name and an "
                                           "IPv4 or IPv6 address), got ",
                                           common::QuoteForMessage(line)));
    }
    c->egress.hosts[name].push_back(*address);
  }
  LLMBOX_RETURN_IF_ERROR(m.Str("nft_path", &c->egress.nft_path));
  return m.Finish();
}

[[nodiscard]] absl::Status ReadReaper(ConfigMap& m, SpokeConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Duration("interval", &c->reaper.interval));
  LLMBOX_RETURN_IF_ERROR(m.Duration("auth_ttl", &c->reaper.auth_ttl));
  if (c->reaper.interval.count() < 1000) return m.Error("interval", "must be at least 1s");
  if (c->reaper.auth_ttl.count() < 1000) return m.Error("auth_ttl", "must be at least 1s");
  return m.Finish();
}

[[nodiscard]] absl::Status ReadHook(ConfigMap& m, const std::string& base, hooks::HookSpec* h) {
  LLMBOX_RETURN_IF_ERROR(m.Str("name", &h->name));
  LLMBOX_RETURN_IF_ERROR(m.Str("event", &h->event));
  LLMBOX_RETURN_IF_ERROR(m.StrList("command", &h->command));
  if (!h->command.empty()) h->command[0] = Resolve(base, h->command[0]);
  LLMBOX_RETURN_IF_ERROR(m.Duration("timeout", &h->timeout));
  uint64_t max_output = h->max_output_bytes;
  LLMBOX_RETURN_IF_ERROR(m.Size("max_output", &max_output));
  h->max_output_bytes = max_output;
  LLMBOX_RETURN_IF_ERROR(m.StrList("env", &h->env));
  return m.Finish();
}

}  // namespace

std::vector<std::string> DefaultBaseAllowlist() {
  return {
      "api.anthropic.com:443",             // the Messages API
      "mcp-proxy.anthropic.com:443",       // connectors through Anthropic
      "platform.claude.com:443",           // sign-in: the code exchange
      "claude.ai:443",                     // sign-in and remote control
      "*.claude.ai:443",                   // downloads, previews
      "claude.com:443",                    // sign-in (older binaries)
      "*.claude.com:443",                  // docs and support links Claude fetches
      "bridge.claudeusercontent.com:443",  // remote-control sessions (WebSocket)
  };
}

namespace {
// Defaults that need parsing: the base allowlist, and "*" for what a box may add.
void SetEgressDefaults(SpokeConfig* config) {
  egress::SpokePolicy& p = config->boxes.egress;
  if (!p.base_allowlist.empty()) return;
  for (const auto& text : DefaultBaseAllowlist()) {
    if (auto entry = egress::ParseEntry(text); entry.ok()) p.base_allowlist.push_back(*entry);
  }
  p.box_may_allow_anything = true;
}
}  // namespace

[[nodiscard]] absl::Status ReadBoxHostSections(ConfigMap& map, const std::string& base_dir,
                                               SpokeConfig* config) {
  SetEgressDefaults(config);
  struct Section {
    const char* key;
    std::function<absl::Status(ConfigMap&)> read;
  };
  const Section sections[] = {
      {"docker", [&](ConfigMap& m) { return ReadDocker(m, base_dir, config); }},
      {"boxes", [&](ConfigMap& m) { return ReadBoxes(m, base_dir, config); }},
      {"reaper", [&](ConfigMap& m) { return ReadReaper(m, config); }},
      {"egress", [&](ConfigMap& m) { return ReadEgress(m, config); }},
  };
  for (const auto& section : sections) {
    LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> section_map, map.Map(section.key));
    if (section_map.has_value()) LLMBOX_RETURN_IF_ERROR(section.read(*section_map));
  }
  LLMBOX_ASSIGN_OR_RETURN(std::vector<ConfigMap> hook_maps, map.MapList("hooks"));
  for (auto& hook_map : hook_maps) {
    hooks::HookSpec hook;
    LLMBOX_RETURN_IF_ERROR(ReadHook(hook_map, base_dir, &hook));
    config->hooks.push_back(std::move(hook));
  }
  if (auto st = hooks::ValidateHooks(config->hooks); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", st.message()));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<SpokeConfig> ParseSpokeConfig(std::string_view yaml,
                                                           const std::string& source,
                                                           const std::string& base_dir) {
  LLMBOX_ASSIGN_OR_RETURN(common::ConfigDocument doc, common::ParseConfigText(yaml, source));
  ConfigMap root = doc.Root();
  SpokeConfig config;
  config.docker.unix_socket = "/var/run/docker.sock";
  struct Section {
    const char* key;
    std::function<absl::Status(ConfigMap&)> read;
  };
  const Section sections[] = {
      {"spoke", [&](ConfigMap& m) { return ReadSpoke(m, base_dir, &config); }},
      {"tls", [&](ConfigMap& m) { return ReadTls(m, base_dir, &config); }},
      {"log", [&](ConfigMap& m) { return common::ReadLogConfig(m, &config.log); }},
      {"metrics", [&](ConfigMap& m) { return ReadMetrics(m, base_dir, &config); }},
  };
  for (const auto& section : sections) {
    LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> map, root.Map(section.key));
    if (map.has_value()) LLMBOX_RETURN_IF_ERROR(section.read(*map));
  }
  LLMBOX_RETURN_IF_ERROR(ReadBoxHostSections(root, base_dir, &config));
  LLMBOX_RETURN_IF_ERROR(root.Finish());
  if (config.tls.cert_file.empty() || config.tls.key_file.empty() || config.tls.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "config: tls: cert_file, key_file and ca_file are required (the spoke serves mutual "
        "TLS only; see docs/spoke.md)");
  }
  config.boxes.spoke_name = config.name;
  config.boxes.state_dir = config.state_dir;
  return config;
}

[[nodiscard]] absl::StatusOr<SpokeConfig> LoadSpokeConfig(const std::string& path) {
  LLMBOX_ASSIGN_OR_RETURN(std::string text, common::ReadConfigFile(path));
  return ParseSpokeConfig(text, path, std::filesystem::absolute(path).parent_path().string());
}

}  // namespace llmbox::spoke::config
