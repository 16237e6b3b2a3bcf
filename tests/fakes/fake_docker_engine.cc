#include "tests/fakes/fake_docker_engine.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "common/status.h"

namespace llmbox::testing {

using spoke::docker::AttachStream;
using spoke::docker::ContainerInfo;
using spoke::docker::ContainerSpec;
using spoke::docker::EngineInfo;
using spoke::docker::ExecResult;
using spoke::docker::ExecSpec;
using spoke::docker::ImageInfo;
using spoke::docker::Labels;
using spoke::docker::LogsRequest;
using spoke::docker::LogsResult;
using spoke::docker::NetworkInfo;
using spoke::docker::NetworkSpec;

namespace {

bool Matches(const Labels& have, const Labels& want) {
  for (const auto& [key, value] : want) {
    auto it = have.find(key);
    if (it == have.end() || (!value.empty() && it->second != value)) return false;
  }
  return true;
}

[[nodiscard]] absl::Status NoSuchContainer(const std::string& id) {
  return absl::NotFoundError("No such container: " + id);
}

// The last `tail` lines of `text` (all of it for tail <= 0).
std::string LastLines(const std::string& text, int tail) {
  if (tail <= 0) return text;
  size_t at = text.size();
  if (at > 0 && text[at - 1] == '\n') --at;
  for (int lines = 0; at > 0; --at) {
    if (text[at - 1] == '\n' && ++lines == tail) break;
  }
  return text.substr(at);
}

}  // namespace

FakeDockerEngine::FakeDockerEngine() : FakeDockerEngine(common::SystemClock::Get()) {}

FakeDockerEngine::FakeDockerEngine(common::Clock& clock) : clock_(clock) {}

void FakeDockerEngine::AddContainer(ContainerInfo info) {
  std::lock_guard lock(mu_);
  Container& container = containers_[info.id];
  container.info = std::move(info);
  container.console = std::make_shared<ScriptedConsole>(
      clock_, ConsoleScript{.start = ConsoleScript::Start::kSilent});
}

void FakeDockerEngine::AddNetwork(NetworkInfo info) {
  std::lock_guard lock(mu_);
  networks_[info.name] = std::move(info);
}

std::vector<std::string> FakeDockerEngine::ContainerIds() {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, container] : containers_) ids.push_back(id);
  return ids;
}

bool FakeDockerEngine::NetworkIsInternal(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = network_internal_.find(name);
  return it != network_internal_.end() && it->second;
}

std::vector<std::string> FakeDockerEngine::NetworkNames() {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, info] : networks_) names.push_back(name);
  return names;
}

void FakeDockerEngine::AddImage(const std::string& ref) {
  std::lock_guard lock(mu_);
  images_.insert(ref);
}

void FakeDockerEngine::AddPullableImage(const std::string& ref) {
  std::lock_guard lock(mu_);
  pullable_.insert(ref);
}

bool FakeDockerEngine::HasImage(const std::string& ref) {
  std::lock_guard lock(mu_);
  return images_.count(ref) != 0;
}

void FakeDockerEngine::SetConsoleScript(ConsoleScript script) {
  std::lock_guard lock(mu_);
  script_ = std::move(script);
}

void FakeDockerEngine::SetExecResult(ExecResult result) {
  std::lock_guard lock(mu_);
  exec_result_ = std::move(result);
}

FakeDockerEngine::Container* FakeDockerEngine::FindLocked(const std::string& container) {
  if (auto it = containers_.find(container); it != containers_.end()) return &it->second;
  for (auto& [id, entry] : containers_) {
    if (entry.info.name == container) return &entry;
  }
  return nullptr;
}

std::optional<ContainerSpec> FakeDockerEngine::SpecOf(const std::string& container) {
  std::lock_guard lock(mu_);
  Container* found = FindLocked(container);
  return found == nullptr ? std::nullopt : found->spec;
}

std::shared_ptr<ScriptedConsole> FakeDockerEngine::ConsoleOf(const std::string& container) {
  std::lock_guard lock(mu_);
  Container* found = FindLocked(container);
  return found == nullptr ? nullptr : found->console;
}

std::vector<FakeDockerEngine::Archive> FakeDockerEngine::ArchivesOf(const std::string& container) {
  std::lock_guard lock(mu_);
  Container* found = FindLocked(container);
  return found == nullptr ? std::vector<Archive>() : found->archives;
}

std::vector<ExecSpec> FakeDockerEngine::ExecsOf(const std::string& container) {
  std::lock_guard lock(mu_);
  Container* found = FindLocked(container);
  return found == nullptr ? std::vector<ExecSpec>() : found->execs;
}

std::vector<std::string> FakeDockerEngine::Calls() {
  std::lock_guard lock(mu_);
  return calls_;
}

void FakeDockerEngine::StopLocked(Container& container, int64_t exit_code) {
  if (container.info.running) container.info.exit_code = exit_code;
  container.info.running = false;
  container.info.state = "exited";
  container.console->End();
  stopped_.notify_all();
}

absl::StatusOr<EngineInfo> FakeDockerEngine::Ping() {
  std::lock_guard lock(mu_);
  RecordLocked("Ping");
  return EngineInfo{"1.41", "fake", "fake"};
}

absl::StatusOr<ImageInfo> FakeDockerEngine::InspectImage(const std::string& ref) {
  std::lock_guard lock(mu_);
  RecordLocked("InspectImage");
  if (images_.count(ref) == 0) return absl::NotFoundError("No such image: " + ref);
  return ImageInfo{.id = "sha256:" + ref};
}

absl::Status FakeDockerEngine::PullImage(const std::string& ref) {
  std::lock_guard lock(mu_);
  RecordLocked("PullImage");
  if (pullable_.count(ref) == 0) {
    return absl::NotFoundError(absl::StrCat("pull access denied for ", ref,
                                            ", repository does not exist or may require "
                                            "'docker login'"));
  }
  images_.insert(ref);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FakeDockerEngine::LoadImage(
    spoke::docker::ImageArchive& source, const std::function<void(uint64_t sent)>& progress) {
  {
    std::lock_guard lock(mu_);
    RecordLocked("LoadImage");
  }
  char buffer[4096];
  uint64_t sent = 0;
  while (true) {
    absl::StatusOr<size_t> n = source.Read(buffer, sizeof(buffer));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    sent += *n;
    if (progress) progress(sent);
  }
  std::lock_guard lock(mu_);
  for (const auto& ref : load_result_) images_.insert(ref);
  return load_result_;
}

void FakeDockerEngine::SetLoadResult(std::vector<std::string> refs) {
  std::lock_guard lock(mu_);
  load_result_ = std::move(refs);
}

absl::StatusOr<std::string> FakeDockerEngine::CreateContainer(const ContainerSpec& spec) {
  std::lock_guard lock(mu_);
  RecordLocked("CreateContainer");
  if (images_.count(spec.image) == 0) return absl::NotFoundError("No such image: " + spec.image);
  if (!spec.name.empty() && FindLocked(spec.name) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("Conflict. The container name \"/", spec.name, "\" is already in use"));
  }
  const std::string id = absl::StrFormat("c%063d", next_id_++);
  Container& container = containers_[id];
  container.info.id = id;
  container.info.name = spec.name.empty() ? "fake-" + id.substr(id.size() - 6) : spec.name;
  container.info.image = spec.image;
  container.info.state = "created";
  container.info.tty = spec.tty;
  container.info.labels = spec.labels;
  container.info.created = clock_.Now();
  if (!spec.network_mode.empty()) container.info.networks = {spec.network_mode};
  // An anonymous volume per path, named as the engine would (64 hex characters), and the
  // volumes a bind names ("name:/path", the name not a host path).
  for (const auto& path : spec.volumes) {
    container.info.volumes[path] = absl::StrFormat("%064d", next_id_++);
  }
  for (const auto& [path, options] : spec.local_volumes) {
    container.info.volumes[path] = absl::StrFormat("%064d", next_id_++);
  }
  for (const auto& bind : spec.binds) {
    const auto colon = bind.find(':');
    if (colon == std::string::npos || bind.front() == '/') continue;
    const auto end = bind.find(':', colon + 1);
    container.info
        .volumes[bind.substr(colon + 1, end == std::string::npos ? end : end - colon - 1)] =
        bind.substr(0, colon);
  }
  container.spec = spec;
  // A container without a TTY (a box's exec container) runs its command silently until
  // stopped; a TTY container is a box whose console replays the script.
  container.console = std::make_shared<ScriptedConsole>(
      clock_, spec.tty ? script_ : ConsoleScript{.start = ConsoleScript::Start::kSilent});
  return id;
}

absl::Status FakeDockerEngine::StartContainer(const std::string& id) {
  std::shared_ptr<ScriptedConsole> console;
  {
    std::lock_guard lock(mu_);
    RecordLocked("StartContainer");
    Container* container = FindLocked(id);
    if (container == nullptr) return NoSuchContainer(id);
    if (container->info.running) return absl::OkStatus();
    // Started again after it stopped: its command runs anew, on a new console.
    if (container->console->Ended()) {
      const bool tty = container->spec.has_value() && container->spec->tty;
      container->console = std::make_shared<ScriptedConsole>(
          clock_, tty ? script_ : ConsoleScript{.start = ConsoleScript::Start::kSilent});
    }
    container->info.running = true;
    container->info.state = "running";
    console = container->console;
  }
  console->Start();
  // A console that ended at once (the entrypoint gave up) is a container that exited.
  if (console->Ended()) {
    std::lock_guard lock(mu_);
    if (Container* container = FindLocked(id)) StopLocked(*container, 1);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FakeDockerEngine::WaitContainer(const std::string& id,
                                                        std::chrono::milliseconds timeout) {
  const auto deadline = clock_.SteadyNow() + timeout;
  std::unique_lock lock(mu_);
  RecordLocked("WaitContainer");
  if (FindLocked(id) == nullptr) return NoSuchContainer(id);
  const bool stopped = clock_.WaitUntil(lock, stopped_, deadline, [&] {
    Container* container = FindLocked(id);
    return container == nullptr || !container->info.running;
  });
  if (!stopped) return absl::DeadlineExceededError("container " + id + " is still running");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  return container->info.exit_code;
}

absl::Status FakeDockerEngine::StopContainer(const std::string& id, std::chrono::seconds) {
  std::lock_guard lock(mu_);
  RecordLocked("StopContainer");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  StopLocked(*container, 143);
  return absl::OkStatus();
}

absl::Status FakeDockerEngine::KillContainer(const std::string& id, std::string_view) {
  std::lock_guard lock(mu_);
  RecordLocked("KillContainer");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  if (!container->info.running) {
    return absl::FailedPreconditionError("Container " + id + " is not running");
  }
  StopLocked(*container, 137);
  return absl::OkStatus();
}

absl::Status FakeDockerEngine::RemoveContainer(const std::string& id, bool force) {
  std::lock_guard lock(mu_);
  RecordLocked("RemoveContainer");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  if (container->info.running && !force) {
    return absl::FailedPreconditionError("You cannot remove a running container " + id +
                                         ". Stop the container before "
                                         "attempting removal or force remove");
  }
  StopLocked(*container, 137);
  const std::string container_id = container->info.id;
  for (auto& [name, network] : networks_) {
    auto& ids = network.container_ids;
    ids.erase(std::remove(ids.begin(), ids.end(), container_id), ids.end());
  }
  containers_.erase(container_id);
  return absl::OkStatus();
}

absl::StatusOr<ContainerInfo> FakeDockerEngine::InspectContainer(const std::string& id) {
  std::lock_guard lock(mu_);
  RecordLocked("InspectContainer");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  return container->info;
}

absl::StatusOr<std::vector<ContainerInfo>> FakeDockerEngine::ListContainers(const Labels& labels) {
  std::lock_guard lock(mu_);
  RecordLocked("ListContainers");
  std::vector<ContainerInfo> out;
  for (const auto& [id, container] : containers_) {
    if (Matches(container.info.labels, labels)) out.push_back(container.info);
  }
  return out;
}

absl::Status FakeDockerEngine::RenameContainer(const std::string& id, const std::string& name) {
  std::lock_guard lock(mu_);
  RecordLocked("RenameContainer");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  if (Container* other = FindLocked(name); other != nullptr && other != container) {
    return absl::AlreadyExistsError(
        absl::StrCat("Conflict. The container name \"/", name, "\" is already in use"));
  }
  container->info.name = name;
  return absl::OkStatus();
}

absl::Status FakeDockerEngine::ResizeTty(const std::string& id, int, int) {
  std::lock_guard lock(mu_);
  RecordLocked("ResizeTty");
  if (FindLocked(id) == nullptr) return NoSuchContainer(id);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AttachStream>> FakeDockerEngine::Attach(const std::string& id, bool,
                                                                       bool) {
  std::shared_ptr<ScriptedConsole> console;
  {
    std::lock_guard lock(mu_);
    RecordLocked("Attach");
    Container* container = FindLocked(id);
    if (container == nullptr) return NoSuchContainer(id);
    console = container->console;
  }
  return console->Attach();
}

absl::StatusOr<LogsResult> FakeDockerEngine::Logs(const std::string& id,
                                                  const LogsRequest& request) {
  std::shared_ptr<ScriptedConsole> console;
  size_t from = 0;
  {
    std::lock_guard lock(mu_);
    RecordLocked("Logs");
    Container* container = FindLocked(id);
    if (container == nullptr) return NoSuchContainer(id);
    console = container->console;
    from = container->logs_from;
  }
  LogsResult result;
  const std::string history = console->History();
  result.output = LastLines(history.substr(std::min(from, history.size())), request.tail);
  if (result.output.size() > request.max_bytes) {
    result.output.erase(0, result.output.size() - request.max_bytes);
    result.truncated = true;
  }
  return result;
}

void FakeDockerEngine::RotateLogs(const std::string& id) {
  std::lock_guard lock(mu_);
  Container* container = FindLocked(id);
  LLMBOX_CHECK(container != nullptr, "RotateLogs: no such container " + id);
  container->logs_from = container->console->History().size();
}

absl::StatusOr<ExecResult> FakeDockerEngine::Exec(const std::string& id, const ExecSpec& spec) {
  std::lock_guard lock(mu_);
  RecordLocked("Exec");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  if (!container->info.running) {
    return absl::FailedPreconditionError("Container " + id + " is not running");
  }
  container->execs.push_back(spec);
  return exec_result_;
}

absl::Status FakeDockerEngine::PutArchive(const std::string& id, const std::string& path,
                                          std::string_view tar) {
  std::lock_guard lock(mu_);
  RecordLocked("PutArchive");
  Container* container = FindLocked(id);
  if (container == nullptr) return NoSuchContainer(id);
  container->archives.push_back({path, std::string(tar)});
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeDockerEngine::CreateNetwork(const NetworkSpec& spec) {
  std::lock_guard lock(mu_);
  RecordLocked("CreateNetwork");
  if (networks_.count(spec.name) != 0) {
    return absl::AlreadyExistsError("network with name " + spec.name + " already exists");
  }
  const std::string id = absl::StrFormat("n%063d", next_id_++);
  network_internal_[spec.name] = spec.internal;
  networks_[spec.name] = {id, spec.name, spec.labels, {}};
  return id;
}

absl::Status FakeDockerEngine::ConnectNetwork(const std::string& network,
                                              const std::string& container,
                                              const std::vector<std::string>&) {
  std::lock_guard lock(mu_);
  RecordLocked("ConnectNetwork");
  for (auto& [name, info] : networks_) {
    if (name != network && info.id != network) continue;
    Container* found = FindLocked(container);
    if (found == nullptr) return NoSuchContainer(container);
    info.container_ids.push_back(found->info.id);
    found->info.networks.push_back(name);
    return absl::OkStatus();
  }
  return absl::NotFoundError("network " + network + " not found");
}

absl::Status FakeDockerEngine::DisconnectNetwork(const std::string& network,
                                                 const std::string& container, bool) {
  std::lock_guard lock(mu_);
  RecordLocked("DisconnectNetwork");
  for (auto& [name, info] : networks_) {
    if (name != network && info.id != network) continue;
    Container* found = FindLocked(container);
    if (found == nullptr) return NoSuchContainer(container);
    auto& ids = info.container_ids;
    ids.erase(std::remove(ids.begin(), ids.end(), found->info.id), ids.end());
    auto& names = found->info.networks;
    names.erase(std::remove(names.begin(), names.end(), name), names.end());
    return absl::OkStatus();
  }
  return absl::NotFoundError("network " + network + " not found");
}

absl::Status FakeDockerEngine::RemoveNetwork(const std::string& network) {
  std::lock_guard lock(mu_);
  RecordLocked("RemoveNetwork");
  for (auto it = networks_.begin(); it != networks_.end(); ++it) {
    if (it->first == network || it->second.id == network) {
      networks_.erase(it);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError("network " + network + " not found");
}

absl::StatusOr<spoke::docker::NetworkDetails> FakeDockerEngine::InspectNetwork(
    const std::string& name_or_id) {
  std::lock_guard lock(mu_);
  RecordLocked("InspectNetwork");
  for (const auto& [name, info] : networks_) {
    if (name != name_or_id && info.id != name_or_id) continue;
    const int octet = static_cast<int>(std::hash<std::string>()(info.id) % 256);
    return spoke::docker::NetworkDetails{.id = info.id,
                                         .name = name,
                                         .labels = info.labels,
                                         .internal = network_internal_[name],
                                         .gateway = absl::StrFormat("10.250.%d.1", octet),
                                         .subnet = absl::StrFormat("10.250.%d.0/24", octet),
                                         .bridge = "br-" + info.id.substr(0, 12)};
  }
  return absl::NotFoundError("network " + name_or_id + " not found");
}

absl::StatusOr<std::vector<NetworkInfo>> FakeDockerEngine::ListNetworks(const Labels& labels) {
  std::lock_guard lock(mu_);
  RecordLocked("ListNetworks");
  std::vector<NetworkInfo> out;
  for (const auto& [name, info] : networks_) {
    if (Matches(info.labels, labels)) out.push_back(info);
  }
  return out;
}

}  // namespace llmbox::testing
