#include "spoke/box/manager.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <future>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/redact.h"
#include "common/status.h"
#include "common/validate.h"
#include "spoke/box/console.h"
#include "spoke/box/entrypoint_script.h"
#include "spoke/docker/tar.h"

namespace llmbox::spoke::box {
namespace {

using common::AsAbsl;
using docker::ContainerInfo;
using std::chrono::milliseconds;

constexpr int kConsoleRows = 50;
constexpr int kConsoleCols = 1000;
// After a failed code the wrapper starts a fresh login; how long to wait for its new URL.
constexpr milliseconds kNewUrlWait{15'000};
// A ready box restarted this recently that has printed no session URL since is still starting
// its session; older, its URL was printed long ago and rotated out of its console log.
constexpr std::chrono::seconds kSessionStartWait{60};
// What a container prints as it starts can be stamped before its StartedAt (the engine records
// the start once the process runs), so its console is read from a little earlier.
constexpr std::chrono::seconds kStartSlack{5};

// Pre-answers the workspace-trust dialog and the "Enable Remote Control?" prompt.
constexpr std::string_view kClaudeSeed =
    R"({"projects":{"/workspace":{"hasTrustDialogAccepted":true}},"remoteDialogSeen":true})"
    "\n";

std::string PendingName(const std::string& id) { return "llmbox-pending-" + id; }
std::string ReadyName(const std::string& id) { return "llmbox-" + id; }
std::string NetworkName(const std::string& id) { return "llmbox-net-" + id; }
std::string ExecName(const std::string& id) { return "llmbox-exec-" + id; }

// The shared workspace: a volume of the box container that its exec container mounts too.
constexpr std::string_view kWorkspace = "/workspace";
// The exec user's home: a private tmpfs in the exec container, never in the workspace.
constexpr std::string_view kExecHome = "/home/llmbox";
constexpr std::string_view kExecHomeSize = "256m";
// The exec container's own process: waits, holds nothing, ends on SIGTERM.
constexpr std::string_view kExecIdle =
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

// A container's whole console since its last start (from a little before: kStartSlack); all of
// it when the engine did not say when it started.
docker::LogsRequest SinceStart(const ContainerInfo& info) {
  docker::LogsRequest request{.tail = 0, .max_bytes = 1 << 20};
  if (info.started > std::chrono::system_clock::time_point()) {
    request.since = info.started - kStartSlack;
  }
  return request;
}

// A ready box's session URL and the container start it belongs to, as kept in its state file:
// "<start in ns since the epoch> <url>" (a file of an older spoke holds the URL alone).
struct SessionKnown {
  std::chrono::system_clock::time_point started;
  std::string url;
};

std::string SessionRecord(std::chrono::system_clock::time_point started, std::string_view url) {
  return absl::StrCat(
      std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch()).count(), " ",
      AsAbsl(url));
}

std::optional<SessionKnown> ParseSessionRecord(std::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(common::AsAbsl(text));
  if (rest.empty()) return std::nullopt;
  SessionKnown known;
  int64_t ns = 0;
  if (const size_t space = rest.find(' ');
      space != absl::string_view::npos && absl::SimpleAtoi(rest.substr(0, space), &ns)) {
    known.started = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(ns)));
    rest.remove_prefix(space + 1);
  }
  known.url = std::string(rest);
  return known;
}

// The disk bounds every managed container gets: its console log and its writable layer.
void BoundDisk(const DiskOptions& disk, docker::ContainerSpec& spec) {
  spec.log_max_bytes = disk.log_max_bytes;
  spec.log_max_files = disk.log_max_files;
  spec.root_size_bytes = disk.root_bytes;
}

// Removes the code itself wherever the box echoed it, and authorize URLs.
// Linear in the text (a Boyer-Moore search; the text is a box's line, up to 1 MiB).
std::string Scrub(std::string_view text, std::string_view code) {
  std::string out;
  if (code.empty()) {
    out = text;
  } else {
    const std::boyer_moore_searcher search(code.begin(), code.end());
    auto at = text.begin();
    for (;;) {
      const auto [found, end] = search(at, text.end());
      out.append(at, found);
      if (found == text.end()) break;
      out.append("[REDACTED]");
      at = end;
    }
  }
  return common::Redact(RedactConsole(out));
}

std::string Prefixed(std::string_view box_id, std::string_view step, const absl::Status& st) {
  return absl::StrCat("box ", AsAbsl(box_id), ": ", AsAbsl(step), ": ", st.message());
}

[[nodiscard]] absl::Status WithContext(std::string_view box_id, std::string_view step,
                                       const absl::Status& st) {
  return absl::Status(st.code(), Prefixed(box_id, step, st));
}

// Writes `content` to `path` through common::WriteFileAtomic (mode 0600 from creation, synced,
// renamed into place), in a 0700 folder.
[[nodiscard]] absl::Status WriteStateFile(const std::filesystem::path& path,
                                          std::string_view content) {
  if (absl::Status st = common::WriteFileAtomic(path.string(), content, 0600); !st.ok()) {
    return absl::InternalError(absl::StrCat("spoke state: ", st.message()));
  }
  std::error_code ec;
  std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all, ec);
  return absl::OkStatus();
}

absl::Status AttemptsUsed(std::string_view box_id, int max_attempts) {
  return absl::ResourceExhaustedError(absl::StrCat("box ", AsAbsl(box_id), ": all ", max_attempts,
                                                   " activation attempts are used; destroy it "
                                                   "and create another"));
}

// Docker's 409 to a remove (or stop) of a container whose removal another call began.
bool RemovalInProgress(const absl::Status& st) {
  return absl::IsFailedPrecondition(st) &&
         absl::StrContains(st.message(), "removal of container") &&
         absl::StrContains(st.message(), "already in progress");
}

// How long a destroy waits for a removal another call began, and how often it looks: within
// the hub's call_timeout (15 s by default) for the destroy, with the stop's grace before it.
constexpr std::chrono::seconds kRemovalWait{10};
constexpr std::chrono::milliseconds kRemovalPoll{200};

// A box's phase from its container alone (what the engine knows): stopped, ready (renamed at
// activation) or pending.
BoxPhase EnginePhase(const ContainerInfo& info) {
  if (!info.running) return BoxPhase::kStopped;
  auto it = info.labels.find(BoxManager::kBoxIdLabel);
  if (it != info.labels.end() && info.name == ReadyName(it->second)) return BoxPhase::kReady;
  return BoxPhase::kPending;
}

}  // namespace

std::string_view PhaseName(BoxPhase phase) {
  switch (phase) {
    case BoxPhase::kCreating:
      return "creating";
    case BoxPhase::kPending:
      return "pending";
    case BoxPhase::kActivating:
      return "activating";
    case BoxPhase::kReady:
      return "ready";
    case BoxPhase::kStopped:
      return "stopped";
  }
  return "unknown";
}

// The console of a pending box: the attach stream opened before start and what it printed.
struct BoxManager::Live {
  std::mutex mu;  // one submission at a time
  std::unique_ptr<docker::AttachStream> attach;
  ConsoleScanner scanner;
  std::string authorize_url;

  // Reads what is already there without waiting.
  absl::Status Drain() {
    for (;;) {
      auto chunk = attach->Read(milliseconds(0));
      if (!chunk.ok()) return chunk.status();
      if (chunk->empty()) return absl::OkStatus();
      scanner.Feed(*chunk);
    }
  }
};

BoxManager::BoxManager(docker::DockerEngine& engine, common::Clock& clock,
                       BoxManagerOptions options, hooks::HookRunner* hooks,
                       egress::BoxEgress* egress, WorkspaceDisks* workspace_disks)
    : engine_(engine),
      clock_(clock),
      options_(std::move(options)),
      hooks_(hooks),
      egress_(egress),
      workspace_disks_(workspace_disks) {}

template <typename Change>
void BoxManager::UpdateLocked(const std::string& box_id, Change change) {
  BoxState& state = states_[box_id];
  change(state);
  if (!state.reserved && !state.creating.has_value() && !state.activating &&
      state.live == nullptr && state.session_url.empty() &&
      state.session_started == std::chrono::system_clock::time_point() &&
      state.last_error.empty() && state.attempts == 0 && state.execs == 0) {
    states_.erase(box_id);
  }
}

std::string BoxManager::HookStatePath(const std::string& box_id) const {
  return options_.state_dir + "/hook-state/" + box_id + ".json";
}

absl::Status BoxManager::SaveHookState(const std::string& box_id, const std::string& state) {
  return WriteStateFile(HookStatePath(box_id), state);
}

std::string BoxManager::StatePath(std::string_view folder, const std::string& box_id) const {
  return options_.state_dir.empty()
             ? std::string()
             : absl::StrCat(options_.state_dir, "/", AsAbsl(folder), "/", box_id);
}

std::string BoxManager::AttemptsPath(const std::string& box_id) const {
  return StatePath("attempts", box_id);
}

std::string BoxManager::PolicyPath(const std::string& box_id) const {
  return StatePath("egress", box_id);
}

// The policy file: "mode <name>" then one "allow <entry>" line per entry of the box's own.
absl::Status BoxManager::SavePolicy(const std::string& box_id, const egress::BoxPolicy& policy) {
  const std::string path = PolicyPath(box_id);
  if (path.empty()) return absl::OkStatus();
  std::string text = absl::StrCat("mode ", AsAbsl(egress::ModeName(policy.mode)), "\n");
  for (const auto& entry : policy.allow) absl::StrAppend(&text, "allow ", entry.ToString(), "\n");
  return WriteStateFile(path, text);
}

egress::BoxPolicy BoxManager::ReadPolicy(const std::string& box_id, const ContainerInfo* box) {
  egress::BoxPolicy policy{.mode = options_.egress.default_mode, .allow = {}};
  if (box != nullptr) {
    if (auto it = box->labels.find(kNetworkModeLabel); it != box->labels.end()) {
      if (auto mode = egress::ParseMode(it->second); mode.ok()) policy.mode = *mode;
    }
  }
  const std::string path = PolicyPath(box_id);
  if (path.empty()) return policy;
  auto text = common::ReadSmallFile(path, 64 << 10);
  if (!text.ok()) return policy;  // none saved: the mode it was created with
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "mode ")) {
      if (auto mode = egress::ParseMode(common::AsStd(line)); mode.ok()) policy.mode = *mode;
    } else if (absl::ConsumePrefix(&line, "allow ")) {
      if (auto entry = egress::ParseEntry(common::AsStd(line)); entry.ok()) {
        policy.allow.push_back(*entry);
      }
    }
  }
  return policy;
}

absl::StatusOr<egress::BoxNetwork> BoxManager::ReadNetwork(const std::string& box_id) {
  auto net = engine_.InspectNetwork(NetworkName(box_id));
  if (absl::IsNotFound(net.status())) {
    return absl::NotFoundError(absl::StrCat("its network ", NetworkName(box_id), " is gone"));
  }
  if (!net.ok()) return net.status();
  if (net->gateway.empty() || net->bridge.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("its network ", net->name, " has no IPv4 gateway on a host bridge"));
  }
  return egress::BoxNetwork{box_id, net->bridge, net->gateway, net->subnet};
}

absl::StatusOr<BoxManager::NetState> BoxManager::NetStateOf(const std::string& box_id,
                                                            const ContainerInfo* box) {
  {
    std::lock_guard lock(mu_);
    if (auto it = nets_.find(box_id); it != nets_.end()) return it->second;
  }
  LLMBOX_ASSIGN_OR_RETURN(egress::BoxNetwork network, ReadNetwork(box_id));
  NetState state{network, ReadPolicy(box_id, box)};
  std::lock_guard lock(mu_);
  return nets_.emplace(box_id, std::move(state)).first->second;
}

std::vector<std::string> BoxManager::ProxyEnv(const egress::BoxNetwork& network) const {
  if (egress_ == nullptr) return {};
  const std::string url = egress_->ProxyUrl(network);
  // The box's own loopback is reached directly, not through the proxy.
  const std::string direct = "localhost,127.0.0.1,::1";
  return {"HTTP_PROXY=" + url,  "HTTPS_PROXY=" + url, "http_proxy=" + url, "https_proxy=" + url,
          "NO_PROXY=" + direct, "no_proxy=" + direct, "ALL_PROXY=" + url,  "all_proxy=" + url};
}

void BoxManager::FillNetworkView(const std::string& box_id, BoxView* view, bool with_refusals) {
  std::optional<NetState> net;
  {
    std::lock_guard lock(mu_);
    if (auto it = nets_.find(box_id); it != nets_.end()) net = it->second;
  }
  if (!net.has_value()) return;
  view->network.mode = net->policy.mode;
  view->network.allow.clear();
  for (const auto& entry : net->policy.allow) view->network.allow.push_back(entry.ToString());
  view->network.base.clear();
  if (net->policy.mode == egress::Mode::kAllowlist) {
    for (const auto& entry : options_.egress.base_allowlist) {
      view->network.base.push_back(entry.ToString());
    }
  }
  if (egress_ != nullptr) {
    view->network.proxy = egress_->ProxyUrl(net->network);
    if (with_refusals) view->network.refusals = egress_->Refusals(box_id, kRefusalsShown);
  }
}

std::string BoxManager::SessionUrlPath(const std::string& box_id) const {
  return StatePath("session-url", box_id);
}

absl::Status BoxManager::RunDestroyHooks(const hooks::BoxFacts& facts) {
  if (hooks_ == nullptr) return absl::OkStatus();
  const std::string path = HookStatePath(facts.box_id);
  std::string state = "{}";
  // What the create hooks returned; hook output is bounded far below the read's 1 MiB.
  if (auto text = common::ReadSmallFile(path); text.ok()) state = *std::move(text);
  absl::Status st = hooks_->RunDestroy(facts, state);
  if (st.ok()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  return st;
}

BoxManager::~BoxManager() = default;

bool BoxManager::Owns(const docker::Labels& labels) const {
  // Containers of spokes from before the label, if any, count as this spoke's.
  auto it = labels.find(kSpokeLabel);
  return it == labels.end() || it->second == options_.spoke_name;
}

bool BoxManager::Mine(const ContainerInfo& info) const { return Owns(info.labels); }

absl::StatusOr<std::vector<ContainerInfo>> BoxManager::ListManaged() {
  uint64_t begun;
  {
    std::lock_guard lock(mu_);
    begun = changes_;
  }
  LLMBOX_ASSIGN_OR_RETURN(auto list, engine_.ListContainers({{kManagedLabel, "true"}}));
  std::map<std::string, KnownPhase> listed;
  for (const auto& info : list) {
    auto it = info.labels.find(kBoxIdLabel);
    if (!Mine(info) || it == info.labels.end()) continue;
    listed[common::CanonicalBoxId(it->second)] = {.phase = EnginePhase(info), .change = begun};
  }
  std::lock_guard lock(mu_);
  // What changed here after the listing began is newer than the listing.
  for (const auto& [id, known] : known_) {
    if (known.change > begun) listed[id] = known;
  }
  known_ = std::move(listed);
  return list;
}

void BoxManager::RememberBox(const std::string& box_id, std::optional<BoxPhase> phase) {
  std::lock_guard lock(mu_);
  known_[box_id] = {.phase = phase, .change = ++changes_};
}

std::map<BoxPhase, int> BoxManager::CountByPhase() {
  std::map<BoxPhase, int> counts;
  std::lock_guard lock(mu_);
  for (const auto& [id, known] : known_) {
    if (!known.phase.has_value()) continue;
    BoxPhase phase = *known.phase;
    if (auto it = states_.find(id); it != states_.end()) {
      // As ViewOf reports it.
      if (it->second.creating.has_value()) {
        phase = BoxPhase::kCreating;
      } else if (phase != BoxPhase::kStopped && it->second.activating) {
        phase = BoxPhase::kActivating;
      }
    }
    ++counts[phase];
  }
  for (const auto& [id, state] : states_) {
    auto it = known_.find(id);
    if (state.creating.has_value() && (it == known_.end() || !it->second.phase.has_value())) {
      ++counts[BoxPhase::kCreating];  // before its container exists
    }
  }
  return counts;
}

absl::StatusOr<ContainerInfo> BoxManager::FindContainer(const std::string& box_id) {
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(box_id));
  const std::string key = common::CanonicalBoxId(box_id);
  // Only this spoke's: another spoke on the same engine owns its own boxes (a destroy meant
  // for a box this spoke does not have must not take down another spoke's).
  LLMBOX_ASSIGN_OR_RETURN(auto list, ListManaged());
  for (auto& info : list) {
    if (!Mine(info)) continue;
    auto it = info.labels.find(kBoxIdLabel);
    if (it != info.labels.end() && common::CanonicalBoxId(it->second) == key) return info;
  }
  return absl::NotFoundError(
      absl::StrCat("box ", key, " does not exist on spoke ", options_.spoke_name));
}

BoxView BoxManager::ViewOf(const ContainerInfo& info) {
  BoxView view;
  auto label = [&](const char* key) {
    auto it = info.labels.find(key);
    return it == info.labels.end() ? std::string() : it->second;
  };
  view.box_id = label(kBoxIdLabel);
  view.container_id = info.id;
  view.container_name = info.name;
  view.image = label(kImageLabel);
  view.description = label(kDescriptionLabel);
  view.owner = label(kOwnerLabel);
  view.container_state = info.state;
  view.created = info.created;
  if (egress_ != nullptr)
    view.refusal_mark = egress_->RefusalMark(common::CanonicalBoxId(view.box_id));
  view.phase = EnginePhase(info);
  std::lock_guard lock(mu_);
  if (auto it = states_.find(common::CanonicalBoxId(view.box_id)); it != states_.end()) {
    const BoxState& state = it->second;
    if (state.creating.has_value()) {
      view.phase = BoxPhase::kCreating;
    } else if (info.running && state.activating) {
      view.phase = BoxPhase::kActivating;
    }
    view.session_url = state.session_url;
    view.last_error = state.last_error;
    view.activation_attempts = state.attempts;
  }
  return view;
}

absl::StatusOr<BoxView> BoxManager::SetNetwork(const std::string& box_id_in,
                                               const NetworkChange& change) {
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(box_id_in));
  const std::string box_id = common::CanonicalBoxId(box_id_in);
  LLMBOX_ASSIGN_OR_RETURN(ContainerInfo info, FindContainer(box_id));
  // One change at a time per box: read, change, check, save, apply.
  std::lock_guard one_at_a_time(network_change_mu_);
  auto net = NetStateOf(box_id, &info);
  if (!net.ok()) return WithContext(box_id, "reading its network", net.status());
  egress::BoxPolicy policy = net->policy;
  if (change.mode.has_value()) policy.mode = *change.mode;
  for (const auto& text : change.remove) {
    auto entry = egress::ParseEntry(text);
    if (!entry.ok()) return WithContext(box_id, "network", entry.status());
    policy.allow.erase(std::remove(policy.allow.begin(), policy.allow.end(), *entry),
                       policy.allow.end());
  }
  for (const auto& text : change.add) {
    auto entry = egress::ParseEntry(text);
    if (!entry.ok()) return WithContext(box_id, "network", entry.status());
    if (std::find(policy.allow.begin(), policy.allow.end(), *entry) == policy.allow.end()) {
      policy.allow.push_back(*entry);
    }
  }
  if (absl::Status st = egress::CheckBoxPolicy(options_.egress, policy); !st.ok()) {
    return WithContext(box_id, "network", st);
  }
  if (absl::Status st = SavePolicy(box_id, policy); !st.ok()) {
    return WithContext(box_id, "saving its network policy", st);
  }
  if (egress_ != nullptr) {
    if (absl::Status st = egress_->SetPolicy(box_id, policy); !st.ok()) {
      return WithContext(box_id, "applying its network policy", st);
    }
  }
  {
    std::lock_guard lock(mu_);
    nets_[box_id].policy = policy;
  }
  spdlog::info("spoke {}: box {}: network now {} with {} entries of its own", options_.spoke_name,
               box_id, egress::ModeName(policy.mode), policy.allow.size());
  BoxView view = ViewOf(info);
  FillNetworkView(box_id, &view, /*with_refusals=*/true);
  return view;
}

std::shared_ptr<BoxManager::Live> BoxManager::LiveOf(const std::string& box_id) {
  std::lock_guard lock(mu_);
  auto it = states_.find(box_id);
  return it == states_.end() ? nullptr : it->second.live;
}

absl::Status BoxManager::Recover() { return RecoverBoxes(/*at_start=*/true); }

absl::Status BoxManager::RestoreEgress(const std::vector<ContainerInfo>& list) {
  std::vector<std::pair<egress::BoxNetwork, egress::BoxPolicy>> restored;
  for (const auto& info : list) {
    auto it = info.labels.find(kBoxIdLabel);
    if (it == info.labels.end()) continue;
    const std::string box_id = common::CanonicalBoxId(it->second);
    {
      std::lock_guard lock(mu_);
      nets_.erase(box_id);
    }
    auto net = NetStateOf(box_id, &info);
    if (absl::IsNotFound(net.status())) {
      // Its network is gone: the container has no network to reach anything through.
      spdlog::warn("spoke {}: box {}: no egress: {}", options_.spoke_name, box_id,
                   common::AsStd(net.status().message()));
      continue;
    }
    if (!net.ok()) {
      // Anything else (a slow engine) must not leave a live box without its rules.
      return absl::Status(net.status().code(),
                          absl::StrCat("spoke ", options_.spoke_name, ": box ", box_id,
                                       ": reading its network: ", net.status().message()));
    }
    // A policy saved under a wider spoke config is narrowed to what the config allows now.
    egress::BoxPolicy policy = net->policy;
    if (!egress::CheckBoxPolicy(options_.egress, policy).ok()) {
      egress::BoxPolicy narrowed{.mode = policy.mode, .allow = {}};
      if (!egress::CheckBoxPolicy(options_.egress, narrowed).ok()) {
        narrowed.mode = options_.egress.default_mode;
      }
      for (const auto& entry : policy.allow) {
        narrowed.allow.push_back(entry);
        if (!egress::CheckBoxPolicy(options_.egress, narrowed).ok()) narrowed.allow.pop_back();
      }
      spdlog::warn(
          "spoke {}: box {}: its network policy ({}, {} entries) is wider than this spoke "
          "allows now; narrowed to {} with {} entries",
          options_.spoke_name, box_id, egress::ModeName(policy.mode), policy.allow.size(),
          egress::ModeName(narrowed.mode), narrowed.allow.size());
      (void)SavePolicy(box_id, narrowed);
      std::lock_guard lock(mu_);
      nets_[box_id].policy = narrowed;
      policy = narrowed;
    }
    restored.emplace_back(net->network, policy);
  }
  if (egress_ == nullptr) return absl::OkStatus();
  if (absl::Status st = egress_->Restore(restored); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("spoke ", options_.spoke_name,
                                                ": restoring box egress: ", st.message()));
  }
  return absl::OkStatus();
}

absl::Status BoxManager::RecoverBoxes(bool at_start) {
  if (at_start) LLMBOX_RETURN_IF_ERROR(CheckDisk());
  LLMBOX_ASSIGN_OR_RETURN(auto list, ListManaged());
  // Another spoke's boxes on a shared engine are its own: a proxy and host rules here would
  // take over their gateways and fence them, and an attach would read their consoles.
  std::erase_if(list, [this](const ContainerInfo& info) { return !Mine(info); });
  // Exec containers whose box is gone (removed behind the spoke's back) go too.
  std::set<std::string> boxes;
  for (const auto& info : list) {
    if (auto it = info.labels.find(kBoxIdLabel); it != info.labels.end()) {
      boxes.insert(common::CanonicalBoxId(it->second));
    }
  }
  LLMBOX_ASSIGN_OR_RETURN(auto execs, engine_.ListContainers({{kExecForLabel, ""},
                                                              {kSpokeLabel, options_.spoke_name}}));
  for (const auto& info : execs) {
    if (boxes.count(common::CanonicalBoxId(info.labels.at(kExecForLabel))) == 0) {
      (void)engine_.RemoveContainer(info.id, /*force=*/true);
    }
  }
  // So do workspace disks whose box is gone, except those of creates in flight.
  if (at_start && workspace_disks_ != nullptr) {
    LLMBOX_ASSIGN_OR_RETURN(auto disks, workspace_disks_->List());
    for (const auto& disk : disks) {
      if (boxes.count(disk) != 0 || IsBeingCreated(disk)) continue;
      (void)workspace_disks_->Remove(disk);
    }
  }
  // Every box's proxy and rules again, and nothing else (a spoke killed with -9 left rules of
  // boxes that are gone, and no listener at all). Only at start: at runtime a rebuilt table
  // could drop the rules of a box created meanwhile.
  if (at_start) LLMBOX_RETURN_IF_ERROR(RestoreEgress(list));
  for (const auto& info : list) {
    const std::string box_id = info.labels.count(kBoxIdLabel) ? info.labels.at(kBoxIdLabel) : "";
    if (box_id.empty() || !info.running) continue;
    if (info.name == ReadyName(box_id)) {
      RefreshSession(common::CanonicalBoxId(box_id), info.id);
      continue;
    }
    if (const std::string path = AttemptsPath(box_id); !path.empty()) {
      int count = 0;
      auto text = common::ReadSmallFile(path, 64);
      if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &count)) {
        std::lock_guard lock(mu_);
        UpdateLocked(box_id,
                     [&](BoxState& state) { state.attempts = std::max(state.attempts, count); });
      }
    }
    if (LiveOf(box_id) != nullptr) continue;
    auto live = AttachConsole(info.id);
    if (!live.ok()) continue;  // reported by Get (no console) and reaped on time
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [&](BoxState& state) {
      if (state.live == nullptr) state.live = *std::move(live);
    });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<BoxManager::Live>> BoxManager::AttachConsole(
    const std::string& container_id) {
  LLMBOX_ASSIGN_OR_RETURN(ContainerInfo info, engine_.InspectContainer(container_id));
  auto live = std::make_shared<Live>();
  LLMBOX_ASSIGN_OR_RETURN(live->attach,
                          engine_.Attach(container_id, /*with_stdin=*/true, /*tty=*/true));
  // What the running login printed before the attach is in the console history since the
  // container's last start (an earlier start's logins ended with it).
  auto logs = engine_.Logs(container_id, SinceStart(info));
  if (logs.ok()) live->scanner.Feed(logs->output);
  // The newest URL is the one the running login waits on (a failed code starts another).
  if (auto first = live->scanner.AuthorizeUrl()) {
    live->authorize_url = live->scanner.NewAuthorizeUrl(0, *first).value_or(*first);
  }
  return live;
}

void BoxManager::RefreshSession(const std::string& box_id, const std::string& container_id) {
  using TimePoint = std::chrono::system_clock::time_point;
  auto info = engine_.InspectContainer(container_id);
  if (!info.ok() || !info->running) return;
  // What is known: in memory, else in the file saved when it was last read.
  std::optional<SessionKnown> known;
  {
    std::lock_guard lock(mu_);
    if (auto it = states_.find(box_id); it != states_.end() && !it->second.session_url.empty()) {
      known = SessionKnown{it->second.session_started, it->second.session_url};
    }
  }
  const std::string path = SessionUrlPath(box_id);
  if (!known.has_value() && !path.empty()) {
    if (auto saved = common::ReadSmallFile(path, 4096); saved.ok())
      known = ParseSessionRecord(*saved);
  }
  std::optional<std::string> url;
  if (known.has_value() && known->started == info->started) {
    url = known->url;  // the session of this start (also when the log rotated past it)
  } else {
    auto logs = engine_.Logs(container_id, SinceStart(*info));
    if (!logs.ok()) return;
    ConsoleScanner scanner;
    scanner.Feed(logs->output);
    url = scanner.LastSessionUrl();
    if (url.has_value() && known.has_value() && known->started != TimePoint() &&
        *url == known->url) {
      url.reset();  // the previous start's, printed just before it ended: the new one is to come
    } else if (!url.has_value() && known.has_value() && known->started == TimePoint() &&
               clock_.Now() - info->started >= kSessionStartWait) {
      url = known->url;  // saved without its start (an older spoke): rotated out of the log
    }
    if (url.has_value() && !path.empty()) {
      (void)WriteStateFile(path, SessionRecord(info->started, *url));
    }
  }
  std::lock_guard lock(mu_);
  UpdateLocked(box_id, [&](BoxState& state) {
    if (url.has_value()) {
      if (!state.session_url.empty() && state.session_url != *url) {
        spdlog::info("spoke {}: box {}: its container restarted; a new session began",
                     options_.spoke_name, box_id);
      }
      state.session_url = *url;
      state.session_started = info->started;
    } else {
      // Started again since its URL was read: that session ended with its process, and the new
      // one has not printed its URL yet.
      state.session_url.clear();
      state.session_started = {};
    }
  });
}

absl::Status BoxManager::CheckDisk() {
  if (LoopWorkspace()) {
    if (workspace_disks_ == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "spoke ", options_.spoke_name, ": loop workspaces are configured but not wired"));
    }
    LLMBOX_RETURN_IF_ERROR(workspace_disks_->Check());
  }
  if (options_.disk.root_bytes <= 0) return absl::OkStatus();
  docker::ContainerSpec probe;
  probe.name = "llmbox-disk-check-" + options_.spoke_name;
  probe.image = options_.default_image;
  probe.labels = {{kSpokeLabel, options_.spoke_name}};
  probe.root_size_bytes = options_.disk.root_bytes;
  (void)engine_.RemoveContainer(probe.name, /*force=*/true);  // left by a crash
  auto created = engine_.CreateContainer(probe);
  if (!created.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "spoke ", options_.spoke_name,
        ": boxes.disk.root_size is set but the engine cannot bound a container's writable "
        "layer: ",
        created.status().message(),
        "; put the engine's data root on xfs mounted with pquota, or remove the key"));
  }
  (void)engine_.RemoveContainer(*created, /*force=*/true);
  return absl::OkStatus();
}

absl::StatusOr<CreatedBox> BoxManager::Create(const CreateBoxRequest& request) {
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(request.box_id));
  const std::string box_id = common::CanonicalBoxId(request.box_id);
  const std::string image = request.image.empty() ? options_.default_image : request.image;
  if (image != options_.default_image &&
      std::find(options_.allowed_images.begin(), options_.allowed_images.end(), image) ==
          options_.allowed_images.end()) {
    std::vector<std::string> allowed = {options_.default_image};
    allowed.insert(allowed.end(), options_.allowed_images.begin(), options_.allowed_images.end());
    return absl::PermissionDeniedError(absl::StrCat(
        "box ", box_id, ": image ", common::QuoteForMessage(image), " is not allowed on spoke ",
        options_.spoke_name, "; allowed: ", absl::StrJoin(allowed, ", ")));
  }
  for (const auto& peer : request.peers) {
    if (std::find(options_.allowed_peers.begin(), options_.allowed_peers.end(), peer) ==
        options_.allowed_peers.end()) {
      return absl::PermissionDeniedError(absl::StrCat("box ", box_id, ": peer ",
                                                      common::QuoteForMessage(peer),
                                                      " is not in this spoke's allowed peers"));
    }
  }
  const egress::BoxPolicy policy = request.network.value_or(
      egress::BoxPolicy{.mode = options_.egress.default_mode, .allow = {}});
  if (absl::Status st = egress::CheckBoxPolicy(options_.egress, policy); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("box ", box_id, ": network: ", st.message()));
  }
  {
    std::lock_guard lock(mu_);
    if (creates_in_flight_ >= options_.max_concurrent_creates) {
      return absl::ResourceExhaustedError(absl::StrCat("box ", box_id, ": ", creates_in_flight_,
                                                       " creates are already running on spoke ",
                                                       options_.spoke_name, "; try again shortly"));
    }
    if (auto it = states_.find(box_id); it != states_.end() && it->second.reserved) {
      return absl::AlreadyExistsError(
          absl::StrCat("box ", box_id, " is being created already; choose a different box id"));
    }
    ++creates_in_flight_;
    UpdateLocked(box_id, [](BoxState& state) { state.reserved = true; });
  }
  auto result = CreateReserved(request, image, policy);
  std::lock_guard lock(mu_);
  --creates_in_flight_;
  UpdateLocked(box_id, [](BoxState& state) { state.reserved = false; });
  return result;
}

class BoxManager::CreatingMark {
 public:
  CreatingMark(BoxManager& boxes, BoxView view) : boxes_(boxes), box_id_(view.box_id) {
    std::lock_guard lock(boxes_.mu_);
    boxes_.UpdateLocked(box_id_, [&](BoxState& state) { state.creating = std::move(view); });
  }
  ~CreatingMark() { Done(); }
  void Done() {
    std::lock_guard lock(boxes_.mu_);
    boxes_.UpdateLocked(box_id_, [](BoxState& state) { state.creating.reset(); });
  }

 private:
  BoxManager& boxes_;
  const std::string box_id_;
};

absl::StatusOr<CreatedBox> BoxManager::CreateReserved(const CreateBoxRequest& request,
                                                      const std::string& image,
                                                      const egress::BoxPolicy& policy) {
  const std::string box_id = common::CanonicalBoxId(request.box_id);
  // Uniqueness and capacity, against what the engine holds.
  auto existing = ListManaged();
  if (!existing.ok()) {
    return WithContext(box_id, "listing the engine's boxes", existing.status());
  }
  int in_use = 0;
  for (const auto& info : *existing) {
    auto it = info.labels.find(kBoxIdLabel);
    if (it == info.labels.end()) continue;
    if (common::CanonicalBoxId(it->second) == box_id) {
      return absl::AlreadyExistsError(absl::StrCat("box id ", box_id, " is already used on spoke ",
                                                   options_.spoke_name,
                                                   "; choose a different box id"));
    }
    ++in_use;
  }
  {
    std::lock_guard lock(mu_);
    in_use += creates_in_flight_ - 1;  // the other boxes being created
  }
  if (in_use >= options_.max_boxes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("spoke ", options_.spoke_name, " is full (", in_use, " of ",
                     options_.max_boxes, " boxes); destroy a box before creating another"));
  }

  const docker::Labels labels = {{kManagedLabel, "true"},
                                 {kBoxIdLabel, box_id},
                                 {kSpokeLabel, options_.spoke_name},
                                 {kOwnerLabel, request.owner},
                                 {kDescriptionLabel, request.description},
                                 {kImageLabel, image},
                                 {kNetworkModeLabel, std::string(egress::ModeName(policy.mode))}};
  const hooks::BoxFacts facts{box_id, image, request.description, request.owner,
                              options_.spoke_name};
  BoxView creating_view;
  creating_view.box_id = box_id;
  creating_view.phase = BoxPhase::kCreating;
  creating_view.image = image;
  creating_view.description = request.description;
  creating_view.owner = request.owner;
  creating_view.created = clock_.Now();
  CreatingMark mark(*this, std::move(creating_view));
  std::vector<hooks::InjectedFile> hook_files;
  if (hooks_ != nullptr && hooks_->HasHooks()) {
    auto created_by_hooks = hooks_->RunCreate(facts);
    if (!created_by_hooks.ok()) {
      return WithContext(box_id, "running its box.create hooks", created_by_hooks.status());
    }
    auto saved = SaveHookState(box_id, created_by_hooks->state);
    if (!saved.ok()) {
      (void)hooks_->RunDestroy(facts, created_by_hooks->state);
      return WithContext(box_id, "saving its hook state", saved);
    }
    hook_files = std::move(created_by_hooks->files);
  }
  // From here on, a failure removes what exists so far, hook state included.
  std::string network, container_id, workspace_device;
  // The policy is saved and the box's egress attached beside the container's making (an nft
  // transaction and an fsync cost tens of ms); both are done before the container starts.
  // (the step that failed, and how) — an empty step when both went well.
  std::future<std::pair<std::string, absl::Status>> egress_ready;
  bool egress_started = false;
  auto fail = [&](std::string_view step, const absl::Status& st) {
    if (egress_ready.valid()) (void)egress_ready.get();
    if (egress_started && egress_ != nullptr) (void)egress_->Detach(box_id);
    {
      std::lock_guard lock(mu_);
      nets_.erase(box_id);
    }
    if (const std::string path = PolicyPath(box_id); !path.empty()) {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
    Cleanup(container_id, network);
    if (!container_id.empty()) RememberBox(box_id, std::nullopt);
    // After its container: nothing mounts it any more.
    if (!workspace_device.empty()) (void)workspace_disks_->Remove(box_id);
    (void)RunDestroyHooks(facts);
    return WithContext(box_id, step, st);
  };

  if (options_.disk.workspace_bytes > 0 && !LoopWorkspace()) {
    // Files put into the container before it starts would land in a tmpfs that the engine
    // mounts for the copy and unmounts after it: lost without an error.
    for (const auto& file : hook_files) {
      if (file.path == kWorkspace ||
          absl::StartsWith(file.path, absl::StrCat(AsAbsl(kWorkspace), "/"))) {
        return fail("injecting its files",
                    absl::InvalidArgumentError(absl::StrCat(
                        "a box.create hook returned ", common::QuoteForMessage(file.path),
                        ", but /workspace is a tmpfs made when the box starts "
                        "(boxes.disk.workspace_size) and would lose it; use another path")));
      }
    }
  }
  if (options_.disk.workspace_bytes > 0 && LoopWorkspace()) {
    if (workspace_disks_ == nullptr) {
      return fail("making its workspace disk",
                  absl::FailedPreconditionError("loop workspaces are configured but not wired"));
    }
    auto made = workspace_disks_->Make(box_id, options_.disk.workspace_bytes);
    if (absl::IsAlreadyExists(made.status())) {
      // Left by a create that crashed: its box does not exist (checked above).
      (void)workspace_disks_->Remove(box_id);
      made = workspace_disks_->Make(box_id, options_.disk.workspace_bytes);
    }
    if (!made.ok()) return fail("making its workspace disk", made.status());
    workspace_device = *made;
  }
  // No route out: the spoke's proxy on the network's gateway is the only way out.
  auto net =
      engine_.CreateNetwork({.name = NetworkName(box_id), .labels = labels, .internal = true});
  if (!net.ok()) return fail("creating its network", net.status());
  network = NetworkName(box_id);
  auto box_network = ReadNetwork(box_id);
  if (!box_network.ok()) return fail("reading its network back", box_network.status());
  {
    std::lock_guard lock(mu_);
    nets_[box_id] = NetState{*box_network, policy};
  }
  egress_started = true;
  egress_ready = std::async(std::launch::async, [this, box_id, network = *box_network, policy] {
    if (absl::Status st = SavePolicy(box_id, policy); !st.ok()) {
      return std::make_pair(std::string("saving its network policy"), st);
    }
    if (egress_ == nullptr) return std::make_pair(std::string(), absl::OkStatus());
    return std::make_pair(std::string("setting up its egress"), egress_->Attach(network, policy));
  });

  docker::ContainerSpec spec;
  spec.name = PendingName(box_id);
  spec.image = image;
  spec.entrypoint = {"/bin/sh", std::string(kEntrypointPath), box_id};
  spec.entrypoint.insert(spec.entrypoint.end(), options_.remote_control_args.begin(),
                         options_.remote_control_args.end());
  // The entrypoint makes the workspace group-writable for the exec user's gid.
  spec.env = {"HOME=/root", absl::StrCat("LLMBOX_EXEC_GID=", options_.exec.gid)};
  for (auto& var : ProxyEnv(*box_network)) spec.env.push_back(std::move(var));
  // Names are the proxy's to resolve; the engine's resolver forwards what it does not know
  // here, where the host's rules drop it.
  if (egress_ != nullptr) spec.dns = {box_network->gateway};
  if (!workspace_device.empty()) {
    spec.local_volumes[std::string(kWorkspace)] = {
        {"type", "ext4"}, {"device", workspace_device}, {"o", "nosuid,nodev"}};
  } else if (options_.disk.workspace_bytes > 0) {
    spec.local_volumes[std::string(kWorkspace)] = {
        {"type", "tmpfs"},
        {"device", "tmpfs"},
        {"o", absl::StrCat("nosuid,nodev,size=", options_.disk.workspace_bytes)}};
  } else {
    spec.volumes = {std::string(kWorkspace)};
  }
  BoundDisk(options_.disk, spec);
  spec.labels = labels;
  spec.working_dir = std::string(kWorkspace);
  spec.user = "0:0";
  spec.hostname = box_id;
  spec.tty = true;
  spec.open_stdin = true;
  spec.console_rows = kConsoleRows;
  spec.console_cols = kConsoleCols;
  spec.memory_bytes = options_.memory_bytes;
  spec.nano_cpus = options_.nano_cpus;
  spec.pids_limit = options_.pids_limit;
  spec.security_opt = {"no-new-privileges"};
  // What a developer's tools need as root in their own box, and nothing that reaches the
  // host or the network stack.
  spec.cap_drop = {"ALL"};
  spec.cap_add = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"};
  spec.network_mode = network;
  // Back by itself when its engine restarts or its main process dies (a box with credentials
  // resumes its session; a pending one begins a new sign-in); Destroy stops it through the
  // engine first, which this policy honours.
  spec.restart_policy = "unless-stopped";
  if (!options_.claude_bin.empty()) {
    spec.binds = {options_.claude_bin + ":/usr/local/bin/claude:ro"};
  }
  auto created = engine_.CreateContainer(spec);
  if (absl::IsNotFound(created.status()) &&
      absl::StrContains(created.status().message(), "No such image")) {
    // An allowed image that this engine does not have yet: pull it once, then create.
    auto pulled = engine_.PullImage(image);
    if (!pulled.ok()) return fail(absl::StrCat("pulling its image ", image), pulled);
    created = engine_.CreateContainer(spec);
  }
  if (!created.ok()) return fail("creating its container", created.status());
  container_id = *created;

  for (const auto& peer : request.peers) {
    auto st = engine_.ConnectNetwork(network, peer, {});
    if (!st.ok()) return fail(absl::StrCat("connecting peer ", peer), st);
  }

  docker::TarBuilder tar;
  absl::Status tar_status = tar.AddDirectory("usr/local/lib/llmbox", 0755, 0, 0);
  if (tar_status.ok()) {
    tar_status =
        tar.AddFile(std::string(kEntrypointPath).substr(1), EntrypointScript(), 0755, 0, 0);
  }
  if (tar_status.ok()) tar_status = tar.AddFile("root/.claude.json", kClaudeSeed, 0600, 0, 0);
  for (const auto& file : hook_files) {
    if (!tar_status.ok()) break;
    tar_status = tar.AddFile(file.path.substr(1), file.content, file.mode, file.uid, file.gid);
  }
  if (!tar_status.ok()) return fail("building the files to inject", tar_status);
  auto put = engine_.PutArchive(container_id, "/", tar.Finish());
  if (!put.ok()) return fail("injecting its files", put);

  auto live = std::make_shared<Live>();
  auto attach = engine_.Attach(container_id, /*with_stdin=*/true, /*tty=*/true);
  if (!attach.ok()) return fail("attaching to its console", attach.status());
  live->attach = std::move(*attach);
  // Its way out (and nothing else) is in place before the box runs.
  if (auto [step, st] = egress_ready.get(); !st.ok()) return fail(step, st);
  auto started = engine_.StartContainer(container_id);
  if (!started.ok()) return fail("starting it", started);
  (void)engine_.ResizeTty(container_id, kConsoleRows, kConsoleCols);

  const auto deadline = clock_.SteadyNow() + options_.url_timeout;
  std::optional<std::string> url;
  while (!(url = live->scanner.AuthorizeUrl()).has_value()) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_.SteadyNow());
    if (left.count() <= 0) {
      const std::string tail = live->scanner.Tail();
      return fail("waiting for the authorize URL",
                  absl::DeadlineExceededError(
                      absl::StrCat("none within ", options_.url_timeout.count(), " ms",
                                   tail.empty() ? std::string("; the box printed nothing")
                                                : "; the box said: " + tail)));
    }
    auto chunk = live->attach->Read(std::min(left, milliseconds(250)));
    if (!chunk.ok()) {
      const std::string tail = live->scanner.Tail();
      return fail("waiting for the authorize URL",
                  absl::FailedPreconditionError(
                      absl::StrCat("the box's console ended before it printed one",
                                   tail.empty() ? std::string() : "; the box said: " + tail)));
    }
    live->scanner.Feed(*chunk);
  }
  live->authorize_url = *url;
  auto info = engine_.InspectContainer(container_id);
  if (!info.ok()) return fail("reading it back", info.status());
  {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [&](BoxState& state) { state.live = live; });
  }
  RememberBox(box_id, EnginePhase(*info));
  mark.Done();
  CreatedBox result{ViewOf(*info), *url};
  FillNetworkView(box_id, &result.box, /*with_refusals=*/false);
  return result;
}

void BoxManager::Cleanup(const std::string& container_id, const std::string& network) {
  if (!container_id.empty()) (void)engine_.RemoveContainer(container_id, /*force=*/true);
  if (!network.empty()) (void)engine_.RemoveNetwork(network);
}

absl::StatusOr<SubmitOutcome> BoxManager::SubmitCode(
    const std::string& box_id_in, const std::string& code,
    std::optional<std::chrono::milliseconds> timeout) {
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(box_id_in));
  const std::string box_id = common::CanonicalBoxId(box_id_in);
  LLMBOX_RETURN_IF_ERROR(common::ValidateActivationCode(code));
  LLMBOX_ASSIGN_OR_RETURN(ContainerInfo info, FindContainer(box_id));
  if (info.name == ReadyName(box_id)) {
    return absl::FailedPreconditionError(absl::StrCat("box ", box_id, " is already activated"));
  }
  {
    // Before the running check: a box that used its attempts is stopped (see below).
    std::lock_guard lock(mu_);
    if (auto it = states_.find(box_id);
        it != states_.end() && it->second.attempts >= options_.max_activation_attempts) {
      return AttemptsUsed(box_id, options_.max_activation_attempts);
    }
  }
  if (info.state == "restarting") {
    return absl::UnavailableError(
        absl::StrCat("box ", box_id, " is restarting; try again in a few seconds"));
  }
  if (!info.running) {
    return absl::FailedPreconditionError(absl::StrCat(
        "box ", box_id, " is not running (", info.state, "); destroy it and create another"));
  }
  std::shared_ptr<Live> live = LiveOf(box_id);
  if (live == nullptr) {
    // Only the consoles: the start's clean-up and the host's rules are not redone at runtime.
    LLMBOX_RETURN_IF_ERROR(RecoverBoxes(/*at_start=*/false));
    live = LiveOf(box_id);
    if (live == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("box ", box_id, ": its console cannot be attached; try again"));
    }
  }
  std::unique_lock submit(live->mu, std::try_to_lock);
  if (!submit.owns_lock()) {
    return absl::AbortedError(
        absl::StrCat("box ", box_id, ": another code is being tried right now"));
  }
  if (absl::Status drained = live->Drain(); absl::IsOutOfRange(drained)) {
    // Its console ended, yet its container runs: the container was restarted.
    {
      std::lock_guard lock(mu_);
      UpdateLocked(box_id, [&](BoxState& state) {
        if (state.live == live) state.live = nullptr;
      });
    }
    return RestartedLogin(box_id, info, live->authorize_url);
  } else if (!drained.ok()) {
    return WithContext(box_id, "reading its console", drained);
  }
  int attempt;
  {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [&](BoxState& state) { attempt = ++state.attempts; });
  }
  // Attempts count across spoke restarts, so a restart does not reset the limit.
  if (const std::string path = AttemptsPath(box_id); !path.empty()) {
    LLMBOX_RETURN_IF_ERROR(WriteStateFile(path, std::to_string(attempt)));
  }
  SubmitOutcome outcome;
  outcome.attempts_remaining = std::max(0, options_.max_activation_attempts - attempt);
  if (attempt > options_.max_activation_attempts) {
    return AttemptsUsed(box_id, options_.max_activation_attempts);
  }

  {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [](BoxState& state) { state.activating = true; });
  }
  absl::Cleanup not_activating = [&] {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [](BoxState& state) { state.activating = false; });
  };
  absl::Status drained = live->Drain();
  if (!drained.ok() && !absl::IsOutOfRange(drained)) {
    return WithContext(box_id, "reading its console", drained);
  }
  const size_t from = live->scanner.Position();
  LLMBOX_RETURN_IF_ERROR(live->attach->Write(code + "\r"));

  const milliseconds wait = timeout.value_or(options_.submit_timeout);
  auto deadline = clock_.SteadyNow() + wait;
  bool ended = false;
  std::optional<std::string> failure;
  while (clock_.SteadyNow() < deadline) {
    if (auto url = live->scanner.SessionUrl(from)) {
      outcome.activated = true;
      outcome.session_url = *url;
      break;
    }
    if ((failure = live->scanner.LoginFailure(from)).has_value()) break;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_.SteadyNow());
    auto chunk = live->attach->Read(std::min(left, milliseconds(250)));
    if (!chunk.ok()) {
      ended = true;
      break;
    }
    live->scanner.Feed(*chunk);
  }

  if (outcome.activated) {
    auto renamed = engine_.RenameContainer(info.id, ReadyName(box_id));
    // The session belongs to the container's current start (a restart begins another).
    auto started = engine_.InspectContainer(info.id);
    const auto started_at =
        started.ok() ? started->started : std::chrono::system_clock::time_point();
    absl::Status saved = absl::OkStatus();
    if (const std::string path = SessionUrlPath(box_id); !path.empty()) {
      saved = WriteStateFile(path, SessionRecord(started_at, outcome.session_url));
    }
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [&](BoxState& state) {
      state.session_url = outcome.session_url;
      state.session_started = started_at;
      state.last_error = !renamed.ok() ? Prefixed(box_id, "marking it ready", renamed)
                         : !saved.ok() ? Prefixed(box_id, "saving its session URL", saved)
                                       : std::string();
      state.live = nullptr;
    });
  } else {
    if (failure.has_value()) {
      outcome.box_error = Scrub(*failure, code);
    } else if (ended) {
      outcome.box_error =
          "the box's console ended; the box said: " + Scrub(live->scanner.Tail(), code);
    } else {
      outcome.box_error = absl::StrCat("no answer from the box within ", wait.count(),
                                       " ms; the box said: ", Scrub(live->scanner.Tail(), code));
    }
    // The wrapper starts a new login after a failed one (new PKCE state, so a new URL):
    // wait briefly for it.
    if (!ended && outcome.attempts_remaining > 0) {
      deadline = clock_.SteadyNow() + kNewUrlWait;
      for (;;) {
        if (auto next = live->scanner.NewAuthorizeUrl(from, live->authorize_url)) {
          outcome.authorize_url = *next;
          live->authorize_url = *next;
          break;
        }
        auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_.SteadyNow());
        if (left.count() <= 0) break;
        auto chunk = live->attach->Read(std::min(left, milliseconds(250)));
        if (!chunk.ok()) break;
        live->scanner.Feed(*chunk);
      }
    }
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [&](BoxState& state) { state.last_error = outcome.box_error; });
  }
  std::move(not_activating).Invoke();
  if (!outcome.activated && outcome.attempts_remaining == 0) {
    // The box gave up its sign-in; stopped through the engine, so that its restart policy
    // does not start it (and a new login) again.
    (void)engine_.StopContainer(info.id, options_.stop_grace);
  }
  LLMBOX_ASSIGN_OR_RETURN(ContainerInfo after, engine_.InspectContainer(info.id));
  RememberBox(box_id, EnginePhase(after));
  outcome.box = ViewOf(after);
  return outcome;
}

absl::StatusOr<SubmitOutcome> BoxManager::RestartedLogin(const std::string& box_id,
                                                         const ContainerInfo& info,
                                                         const std::string& old_url) {
  spdlog::info(
      "spoke {}: box {}: its container restarted while pending; attaching to its new "
      "console",
      options_.spoke_name, box_id);
  auto attached = AttachConsole(info.id);
  if (!attached.ok()) {
    return absl::UnavailableError(
        absl::StrCat("box ", box_id, ": it restarted and its console cannot be attached yet (",
                     attached.status().message(), "); try again shortly"));
  }
  std::shared_ptr<Live> live = *std::move(attached);
  std::unique_lock submit(live->mu);
  {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [&](BoxState& state) {
      if (state.live == nullptr) state.live = live;
    });
  }
  if (LiveOf(box_id) != live) {
    return absl::AbortedError(
        absl::StrCat("box ", box_id, ": another code is being tried right now"));
  }
  // Only what it printed since its restart is in this console: any URL in it other than the old
  // one is the new login's.
  const auto deadline = clock_.SteadyNow() + kNewUrlWait;
  std::optional<std::string> url;
  while (!(url = live->scanner.NewAuthorizeUrl(0, old_url)).has_value()) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_.SteadyNow());
    if (left.count() <= 0) break;
    auto chunk = live->attach->Read(std::min(left, milliseconds(250)));
    if (!chunk.ok()) break;
    live->scanner.Feed(*chunk);
  }
  if (!url.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("box ", box_id,
                     ": it restarted and has not printed a new sign-in link yet; try again "
                     "shortly"));
  }
  live->authorize_url = *url;
  SubmitOutcome outcome;
  outcome.authorize_url = *url;
  outcome.box_error =
      "the box restarted (its engine or its container did) and began a new sign-in, so the "
      "code was not used; sign in again from the new link";
  {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [&](BoxState& state) {
      outcome.attempts_remaining = std::max(0, options_.max_activation_attempts - state.attempts);
      state.last_error = outcome.box_error;
    });
  }
  LLMBOX_ASSIGN_OR_RETURN(ContainerInfo after, engine_.InspectContainer(info.id));
  RememberBox(box_id, EnginePhase(after));
  outcome.box = ViewOf(after);
  return outcome;
}

bool BoxManager::IsBeingCreated(const std::string& box_id) {
  std::lock_guard lock(mu_);
  auto it = states_.find(common::CanonicalBoxId(box_id));
  return it != states_.end() && it->second.reserved;
}

absl::StatusOr<BoxView> BoxManager::Get(const std::string& box_id) {
  auto info = FindContainer(box_id);
  if (absl::IsNotFound(info.status())) {
    // Being created, before its container exists.
    std::lock_guard lock(mu_);
    if (auto it = states_.find(common::CanonicalBoxId(box_id));
        it != states_.end() && it->second.creating.has_value()) {
      return *it->second.creating;
    }
  }
  if (!info.ok()) return info.status();
  const std::string id = common::CanonicalBoxId(box_id);
  if (info->running && info->name == ReadyName(id)) RefreshSession(id, info->id);
  BoxView view = ViewOf(*info);
  if (NetStateOf(id, &*info).ok()) FillNetworkView(id, &view, /*with_refusals=*/true);
  return view;
}

absl::StatusOr<std::vector<BoxView>> BoxManager::List() {
  // This spoke's boxes: another spoke on the same engine lists its own (a hub reconciling
  // from this list takes down boxes it does not know).
  LLMBOX_ASSIGN_OR_RETURN(auto list, ListManaged());
  std::vector<BoxView> views;
  std::set<std::string> listed;
  for (const auto& info : list) {
    if (!Mine(info)) continue;
    // A restarted ready box's new session, so that a hub reconciling from the list learns it.
    if (auto it = info.labels.find(kBoxIdLabel);
        it != info.labels.end() && info.running && info.name == ReadyName(it->second)) {
      RefreshSession(common::CanonicalBoxId(it->second), info.id);
    }
    views.push_back(ViewOf(info));
    listed.insert(common::CanonicalBoxId(views.back().box_id));
    FillNetworkView(common::CanonicalBoxId(views.back().box_id), &views.back(),
                    /*with_refusals=*/false);
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, state] : states_) {
      if (state.creating.has_value() && listed.count(id) == 0) views.push_back(*state.creating);
    }
  }
  std::sort(views.begin(), views.end(),
            [](const BoxView& a, const BoxView& b) { return a.box_id < b.box_id; });
  return views;
}

absl::StatusOr<bool> BoxManager::Destroy(const std::string& box_id_in,
                                         std::optional<std::chrono::seconds> grace) {
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(box_id_in));
  const std::string box_id = common::CanonicalBoxId(box_id_in);
  auto info = FindContainer(box_id);
  bool existed = info.ok();
  if (!info.ok() && !absl::IsNotFound(info.status())) return info.status();
  if (!existed) {
    // Another spoke's box on this engine: its network, exec container and hooks are its own.
    LLMBOX_ASSIGN_OR_RETURN(
        auto others, engine_.ListContainers({{kManagedLabel, "true"}, {kBoxIdLabel, box_id}}));
    if (!others.empty()) {
      spdlog::info("spoke {}: box {} is another spoke's on this engine; not destroyed",
                   options_.spoke_name, box_id);
      return false;
    }
  }
  {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [](BoxState& state) {
      if (state.live != nullptr) state.live->attach->Close();
      state.live = nullptr;
      state.session_url.clear();
      state.last_error.clear();
      state.attempts = 0;
    });
  }
  for (const std::string& path : {AttemptsPath(box_id), SessionUrlPath(box_id)}) {
    if (path.empty()) continue;
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  // The exec container first: it holds the box's workspace volume and its network.
  if (absl::Status st = RemoveExecContainers(box_id); !st.ok()) {
    return WithContext(box_id, "removing its exec container", st);
  }
  {
    std::lock_guard lock(mu_);
    exec_setup_.erase(box_id);
  }
  if (existed) {
    auto stopped = engine_.StopContainer(info->id, grace.value_or(options_.stop_grace));
    if (!stopped.ok() && !absl::IsNotFound(stopped) && !RemovalInProgress(stopped)) {
      return WithContext(box_id, "stopping it", stopped);
    }
    if (absl::Status removed = RemoveContainerAndWait(info->id); !removed.ok()) {
      return WithContext(box_id, "removing it", removed);
    }
  }
  RememberBox(box_id, std::nullopt);
  // Again: an exec that came in while the box was stopping may have made a new one.
  if (absl::Status st = RemoveExecContainers(box_id); !st.ok()) {
    return WithContext(box_id, "removing its exec container", st);
  }
  // Its workspace disk, now that no container mounts it.
  if (workspace_disks_ != nullptr) {
    if (absl::Status st = workspace_disks_->Remove(box_id); !st.ok()) {
      return WithContext(box_id, "removing its workspace disk", st);
    }
  }
  // The network goes too, also when an earlier destroy stopped half-way.
  hooks::BoxFacts facts{box_id, "", "", "", options_.spoke_name};
  if (existed) {
    facts.image = info->labels.count(kImageLabel) ? info->labels.at(kImageLabel) : "";
    facts.description =
        info->labels.count(kDescriptionLabel) ? info->labels.at(kDescriptionLabel) : "";
    facts.owner = info->labels.count(kOwnerLabel) ? info->labels.at(kOwnerLabel) : "";
  }
  if (egress_ != nullptr) {
    if (absl::Status st = egress_->Detach(box_id); !st.ok()) {
      return WithContext(box_id, "removing its egress rules", st);
    }
  }
  {
    std::lock_guard lock(mu_);
    nets_.erase(box_id);
  }
  if (const std::string path = PolicyPath(box_id); !path.empty()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  auto networks = engine_.ListNetworks({{kManagedLabel, "true"}, {kBoxIdLabel, box_id}});
  if (!networks.ok()) return WithContext(box_id, "listing its network", networks.status());
  for (const auto& net : *networks) {
    auto removed = engine_.RemoveNetwork(net.id);
    if (!removed.ok() && !absl::IsNotFound(removed)) {
      return WithContext(box_id, "removing its network", removed);
    }
    existed = true;
  }
  if (auto st = RunDestroyHooks(facts); !st.ok()) {
    return WithContext(box_id, "removed, but its box.destroy hooks failed", st);
  }
  return existed;
}

absl::StatusOr<docker::LogsResult> BoxManager::Logs(const std::string& box_id, int tail,
                                                    size_t max_bytes) {
  LLMBOX_ASSIGN_OR_RETURN(ContainerInfo info, FindContainer(box_id));
  LLMBOX_ASSIGN_OR_RETURN(docker::LogsResult logs,
                          engine_.Logs(info.id, {.tail = tail, .max_bytes = max_bytes}));
  logs.output = common::Redact(RedactConsole(StripTerminal(logs.output)));
  return logs;
}

absl::Status BoxManager::RemoveExecContainers(const std::string& box_id) {
  LLMBOX_ASSIGN_OR_RETURN(auto execs, engine_.ListContainers({{kExecForLabel, box_id}}));
  for (const auto& info : execs) LLMBOX_RETURN_IF_ERROR(RemoveContainerAndWait(info.id));
  return absl::OkStatus();
}

absl::Status BoxManager::RemoveContainerAndWait(const std::string& container_id) {
  absl::Status removed = engine_.RemoveContainer(container_id, /*force=*/true);
  if (removed.ok() || absl::IsNotFound(removed)) return absl::OkStatus();
  if (!RemovalInProgress(removed)) return removed;
  // Another call (a concurrent destroy, the reaper, an operator's docker rm) is removing it:
  // done when it is gone.
  const auto deadline = clock_.SteadyNow() + kRemovalWait;
  for (;;) {
    auto inspected = engine_.InspectContainer(container_id);
    if (absl::IsNotFound(inspected.status())) return absl::OkStatus();
    if (!inspected.ok()) return inspected.status();
    if (clock_.SteadyNow() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("its container is still being removed by another call after ",
                       std::chrono::duration_cast<std::chrono::seconds>(kRemovalWait).count(),
                       " s (state ", inspected->state, "); destroy it again shortly"));
    }
    clock_.SleepFor(kRemovalPoll);
  }
}

absl::StatusOr<std::string> BoxManager::ExecContainerFor(const ContainerInfo& box) {
  const std::string box_id = common::CanonicalBoxId(box.labels.at(kBoxIdLabel));
  std::shared_ptr<std::mutex> setup;
  {
    std::lock_guard lock(mu_);
    auto& slot = exec_setup_[box_id];
    if (slot == nullptr) slot = std::make_shared<std::mutex>();
    setup = slot;
  }
  std::lock_guard one_at_a_time(*setup);
  LLMBOX_ASSIGN_OR_RETURN(auto found, engine_.ListContainers({{kExecForLabel, box_id}}));
  for (const auto& info : found) {
    if (info.running) return info.id;
    // Stopped (an engine restart, its idle process killed): start it again, else replace it.
    if (engine_.StartContainer(info.id).ok()) return info.id;
    (void)engine_.RemoveContainer(info.id, /*force=*/true);
  }
  const std::string user = absl::StrCat(options_.exec.uid, ":", options_.exec.gid);
  docker::ContainerSpec spec;
  spec.name = ExecName(box_id);
  spec.image = box.labels.count(kImageLabel) ? box.labels.at(kImageLabel) : box.image;
  spec.entrypoint = {"/bin/sh", "-c", std::string(kExecIdle)};
  spec.env = {absl::StrCat("HOME=", AsAbsl(kExecHome))};
  spec.labels = {{kExecForLabel, box_id}, {kSpokeLabel, options_.spoke_name}};
  spec.working_dir = std::string(kWorkspace);
  spec.user = user;
  spec.hostname = box_id;
  spec.memory_bytes = options_.exec.memory_bytes;
  spec.nano_cpus = options_.nano_cpus;
  spec.pids_limit = options_.exec.pids_limit;
  spec.security_opt = {"no-new-privileges"};
  spec.cap_drop = {"ALL"};
  // Only the workspace volume, by its name: VolumesFrom would bring every mount of the box
  // container (the Claude binary's bind, any volume an image declares).
  const auto workspace = box.volumes.find(std::string(kWorkspace));
  if (workspace == box.volumes.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("box ", box_id,
                     ": its container has no workspace volume (made by an older spoke?); "
                     "destroy it and create another"));
  }
  spec.binds = {absl::StrCat(workspace->second, ":", AsAbsl(kWorkspace))};
  auto net = NetStateOf(box_id, &box);
  if (!net.ok()) return WithContext(box_id, "reading its network", net.status());
  for (auto& var : ProxyEnv(net->network)) spec.env.push_back(std::move(var));
  if (egress_ != nullptr) spec.dns = {net->network.gateway};
  spec.tmpfs = {{std::string(kExecHome),
                 absl::StrCat("rw,nosuid,nodev,size=", AsAbsl(kExecHomeSize),
                              ",mode=0700,uid=", options_.exec.uid, ",gid=", options_.exec.gid)}};
  // Nothing of the exec user's reaches the data root: a read-only root, its temporary
  // folders in memory, the workspace bounded by its own volume.
  spec.read_only_rootfs = true;
  for (const char* tmp : {"/tmp", "/var/tmp"}) {
    spec.tmpfs[tmp] =
        absl::StrCat("rw,nosuid,nodev,size=", options_.disk.exec_tmp_bytes, ",mode=1777");
  }
  BoundDisk(options_.disk, spec);
  spec.network_mode = NetworkName(box_id);
  // Not restarted by the engine: the next exec starts it again (ExecContainerFor above), so an
  // idle one costs nothing after an engine restart.
  spec.restart_policy = "no";
  auto created = engine_.CreateContainer(spec);
  if (!created.ok()) return WithContext(box_id, "creating its exec container", created.status());
  if (absl::Status started = engine_.StartContainer(*created); !started.ok()) {
    (void)engine_.RemoveContainer(*created, /*force=*/true);
    return WithContext(box_id, "starting its exec container", started);
  }
  return *created;
}

absl::StatusOr<docker::ExecResult> BoxManager::Exec(const std::string& box_id_in,
                                                    const docker::ExecSpec& spec_in,
                                                    ExecIdentity identity) {
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(box_id_in));
  const std::string box_id = common::CanonicalBoxId(box_id_in);
  LLMBOX_ASSIGN_OR_RETURN(ContainerInfo info, FindContainer(box_id));
  if (!info.running) {
    return absl::FailedPreconditionError(absl::StrCat("box ", box_id, " is not running"));
  }
  docker::ExecSpec spec = spec_in;
  if (spec.working_dir.empty()) spec.working_dir = std::string(kWorkspace);
  if (identity == ExecIdentity::kBox) {
    spec.user = "0:0";
    return engine_.Exec(info.id, spec);
  }
  {
    std::lock_guard lock(mu_);
    const auto it = states_.find(box_id);
    const int running = it == states_.end() ? 0 : it->second.execs;
    if (running >= options_.exec.max_concurrent) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "box ", box_id, ": ", running, " execs are already running in it (the limit per box is ",
          options_.exec.max_concurrent, "); wait for one to finish"));
    }
    UpdateLocked(box_id, [](BoxState& state) { ++state.execs; });
  }
  absl::Cleanup done = [&] {
    std::lock_guard lock(mu_);
    UpdateLocked(box_id, [](BoxState& state) { --state.execs; });
  };
  LLMBOX_ASSIGN_OR_RETURN(const std::string exec_container, ExecContainerFor(info));
  spec.user = absl::StrCat(options_.exec.uid, ":", options_.exec.gid);
  spec.env.push_back(absl::StrCat("HOME=", AsAbsl(kExecHome)));
  return engine_.Exec(exec_container, spec);
}

}  // namespace llmbox::spoke::box
