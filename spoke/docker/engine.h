// spoke/docker/engine.h
//
// The spoke's view of its Docker engine: typed verbs for what a box's life needs, never a
// generic proxy. The real implementation is CurlDockerEngine (curl_engine.h); tests use
// tests/fakes/fake_docker_engine.h or wrap the real one with DockerEngineWrapper to inject
// faults.
//
//   auto engine = CurlDockerEngine::Create({.unix_socket = "/run/docker.sock"});
//   LLMBOX_ASSIGN_OR_RETURN(EngineInfo info, (*engine)->Ping());   // negotiates the API
//   ContainerSpec spec{.name = "llmbox-pending-x", .image = "llmbox-box:dev", .tty = true};
//   LLMBOX_ASSIGN_OR_RETURN(std::string id, (*engine)->CreateContainer(spec));
//   LLMBOX_ASSIGN_OR_RETURN(auto attach, (*engine)->Attach(id, /*with_stdin=*/true, /*tty=*/true));
//   LLMBOX_RETURN_IF_ERROR((*engine)->StartContainer(id));
//   LLMBOX_ASSIGN_OR_RETURN(std::string out, attach->Read(std::chrono::seconds(1)));
//
// Errors: the engine's own message, with the endpoint named
// ("docker (unix:///run/docker.sock): No such container: abc"), mapped to a code:
// 400 InvalidArgument, 404 NotFound, 409 AlreadyExists (FailedPrecondition for a conflict of
// state), 5xx Unavailable; no answer at all is Unavailable; a timeout is DeadlineExceeded.
//
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmbox::spoke::docker {

using Labels = std::map<std::string, std::string>;

struct EngineInfo {
  std::string api_version;     // the negotiated version, e.g. "1.41"
  std::string server_version;  // the engine's own version, e.g. "20.10.24+dfsg1"
  std::string endpoint;        // as shown in messages, e.g. "unix:///run/docker.sock"
};

struct ImageInfo {
  std::string id;
  Labels labels;
  int64_t size_bytes = 0;
};

// What a container is made of. Only fields that mean the same from API 1.41 on.
struct ContainerSpec {
  std::string name;  // without the leading "/"
  std::string image;
  std::vector<std::string> entrypoint;  // empty: the image's
  std::vector<std::string> cmd;         // empty: the image's
  std::vector<std::string> env;         // "KEY=value"; never secrets
  Labels labels;
  std::string working_dir;
  std::string user;
  std::string hostname;
  bool tty = false;
  bool open_stdin = false;
  bool stdin_once = false;
  int console_rows = 0;  // with tty: the console size at start (0: engine default)
  int console_cols = 0;
  // Host config.
  int64_t memory_bytes = 0;        // 0: unlimited
  int64_t nano_cpus = 0;           // 1e9 = one CPU; 0: unlimited
  int64_t pids_limit = 0;          // 0: unlimited
  std::vector<std::string> binds;  // "host:container[:ro]"
  // Paths that get an anonymous volume of their own (removed with the container).
  std::vector<std::string> volumes;
  // Containers whose volumes (and binds) this one mounts too, at the same paths.
  std::vector<std::string> volumes_from;
  std::vector<std::string> cap_drop;
  std::vector<std::string> cap_add;
  std::vector<std::string> security_opt;  // e.g. "no-new-privileges"
  bool read_only_rootfs = false;
  std::map<std::string, std::string> tmpfs;  // path -> mount options
  std::string network_mode;                  // a network name; empty: engine default
  std::vector<std::string> dns;              // DNS servers for the container; empty: engine's
  bool init = false;
  // What the engine does when the container's main process ends or the engine starts again:
  // "no", "unless-stopped" (restarted after any exit and when its engine comes back, unless
  // it was stopped through the API), "always" or "on-failure".
  std::string restart_policy = "no";
  // Disk bounds (docs/spoke.md, boxes.disk).
  // Paths that get an anonymous volume of the engine's `local` driver made with these driver
  // options (e.g. type=tmpfs, device=tmpfs, o=size=2147483648), removed with the container
  // like `volumes`.
  std::map<std::string, std::map<std::string, std::string>> local_volumes;
  // The console log: the json-file driver, rotated at log_max_bytes, log_max_files kept.
  // 0: the engine's default driver and options.
  int64_t log_max_bytes = 0;
  int log_max_files = 0;
  // The writable layer's size (StorageOpt size; overlay2 needs xfs with pquota). 0: none.
  int64_t root_size_bytes = 0;
};

struct ContainerInfo {
  std::string id;
  std::string name;  // without the leading "/"
  std::string image;
  std::string state;  // created, running, paused, restarting, removing, exited, dead
  bool running = false;
  int64_t exit_code = 0;
  // When its main process last started (State.StartedAt: it changes with every restart).
  // InspectContainer only; the epoch from ListContainers and for a container never started.
  std::chrono::system_clock::time_point started;
  bool tty = false;
  Labels labels;
  std::chrono::system_clock::time_point created;
  std::vector<std::string> networks;  // names of the networks it is connected to
  // Its volumes (not binds): where each is mounted -> the volume's name.
  std::map<std::string, std::string> volumes;
};

struct NetworkSpec {
  std::string name;
  Labels labels;
  bool internal = false;  // no route out of the network
};

struct NetworkInfo {
  std::string id;
  std::string name;
  Labels labels;
  std::vector<std::string> container_ids;  // connected containers (list: may be empty)
};

// One network as the host sees it (InspectNetwork): where its bridge and addresses are.
struct NetworkDetails {
  std::string id;
  std::string name;
  Labels labels;
  bool internal = false;
  std::string gateway;  // the host's IPv4 address on it; "" when the engine names none
  std::string subnet;   // its IPv4 range, e.g. "10.211.3.0/24"; "" when none
  // The host's interface for a bridge network: the com.docker.network.bridge.name option,
  // else "br-" + the first 12 characters of the id; "" for other drivers.
  std::string bridge;
};

struct LogsRequest {
  int tail = 200;              // last N lines; 0 or negative: all
  size_t max_bytes = 1 << 20;  // output beyond this is dropped (the newest part is kept)
  // Only what was printed from this time on (e.g. ContainerInfo::started: since the
  // container's last start). Unset: from its first output.
  std::optional<std::chrono::system_clock::time_point> since;
};

struct LogsResult {
  std::string output;  // stdout and stderr in arrival order
  bool truncated = false;
};

struct ExecSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string user;
  std::string working_dir;
  std::chrono::milliseconds timeout{30'000};
  size_t max_output_bytes = 1 << 20;  // per stream
  // Asked about once a second while the command runs: true ends it like a timeout (killed,
  // with what it started) and the exec answers Cancelled. Empty: never.
  std::function<bool()> cancelled;
};

struct ExecResult {
  int64_t exit_code = -1;  // -1 when timed out before the exit code was known
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;  // more was printed than max_output_bytes
  bool stderr_truncated = false;
  bool timed_out = false;
};

// A live, bidirectional attach to a container's console (a hijacked connection). Opened
// before the container starts so that no early output is lost, on the engine's unix socket or
// over TCP+TLS. One thread may read while another writes, and Close may come from any thread.
class AttachStream {
 public:
  virtual ~AttachStream() = default;

  // Writes all of `data` to the container's stdin.
  [[nodiscard]] virtual absl::Status Write(std::string_view data) = 0;

  // Returns output as it arrives: waits up to `timeout` for some and returns "" when nothing
  // came in time. With a TTY the bytes are raw; without, stdout and stderr frames are decoded
  // and returned in arrival order. Returns OutOfRange once the stream has ended (the
  // container exited or closed its console) and everything before has been returned.
  [[nodiscard]] virtual absl::StatusOr<std::string> Read(std::chrono::milliseconds timeout) = 0;

  // Ends stdin (a half-close): the container reads EOF on its stdin when it was created with
  // stdin_once; its output keeps coming to Read.
  [[nodiscard]] virtual absl::Status CloseStdin() = 0;

  // Closes the connection (stdin and output).
  virtual void Close() = 0;
};

// Where LoadImage reads an image archive from (a file, for `llmbox-spoke image import`).
class ImageArchive {
 public:
  virtual ~ImageArchive() = default;
  // Its size in bytes, when known before reading (sent as Content-Length).
  virtual std::optional<uint64_t> Size() const = 0;
  // Up to `capacity` bytes into `buffer`; 0 at the end; an error stops the load.
  [[nodiscard]] virtual absl::StatusOr<size_t> Read(char* buffer, size_t capacity) = 0;
};

class DockerEngine {
 public:
  virtual ~DockerEngine() = default;

  // Checks that the engine answers and negotiates the API version (at least 1.41).
  [[nodiscard]] virtual absl::StatusOr<EngineInfo> Ping() = 0;

  [[nodiscard]] virtual absl::StatusOr<ImageInfo> InspectImage(const std::string& ref) = 0;
  // Pulls `ref`, reading the progress stream to its end; an error in it is an error.
  [[nodiscard]] virtual absl::Status PullImage(const std::string& ref) = 0;
  // Loads images from an archive `docker save` wrote (plain tar, or compressed: the engine
  // takes gzip, bzip2 and xz), streaming `source` (not held in memory). `progress`, when
  // set, is told the bytes sent so far from time to time. Returns what the engine says it
  // loaded: each name:tag, or sha256:... for an image saved by id. An error in the engine's
  // reply stream (a tar that is not an image archive) is InvalidArgument with its words.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> LoadImage(
      ImageArchive& source, const std::function<void(uint64_t sent)>& progress) = 0;

  [[nodiscard]] virtual absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) = 0;
  [[nodiscard]] virtual absl::Status StartContainer(const std::string& id) = 0;
  // Blocks until the container stops (or `timeout`), returns its exit code.
  [[nodiscard]] virtual absl::StatusOr<int64_t> WaitContainer(
      const std::string& id, std::chrono::milliseconds timeout) = 0;
  // SIGTERM, then SIGKILL after `grace`; returns when stopped. Stopping a stopped one is OK.
  [[nodiscard]] virtual absl::Status StopContainer(const std::string& id,
                                                   std::chrono::seconds grace) = 0;
  [[nodiscard]] virtual absl::Status KillContainer(const std::string& id,
                                                   std::string_view signal) = 0;
  // Removes the container (force: even if running) and its anonymous volumes.
  [[nodiscard]] virtual absl::Status RemoveContainer(const std::string& id, bool force) = 0;
  [[nodiscard]] virtual absl::StatusOr<ContainerInfo> InspectContainer(const std::string& id) = 0;
  // Containers (running or not) that carry every label in `labels` (a value of "" matches
  // any value of that key).
  [[nodiscard]] virtual absl::StatusOr<std::vector<ContainerInfo>> ListContainers(
      const Labels& labels) = 0;
  [[nodiscard]] virtual absl::Status RenameContainer(const std::string& id,
                                                     const std::string& new_name) = 0;
  [[nodiscard]] virtual absl::Status ResizeTty(const std::string& id, int rows, int cols) = 0;
  // Opens the console: output always, stdin when `with_stdin`. `tty` must be the container's
  // Tty setting (it decides how the stream is framed; API 1.41 does not say).
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<AttachStream>> Attach(const std::string& id,
                                                                             bool with_stdin,
                                                                             bool tty) = 0;
  [[nodiscard]] virtual absl::StatusOr<LogsResult> Logs(const std::string& id,
                                                        const LogsRequest& request) = 0;
  [[nodiscard]] virtual absl::StatusOr<ExecResult> Exec(const std::string& id,
                                                        const ExecSpec& spec) = 0;
  // Extracts the tar archive `tar` into `path` inside the container.
  [[nodiscard]] virtual absl::Status PutArchive(const std::string& id, const std::string& path,
                                                std::string_view tar) = 0;

  [[nodiscard]] virtual absl::StatusOr<std::string> CreateNetwork(const NetworkSpec& spec) = 0;
  [[nodiscard]] virtual absl::Status ConnectNetwork(const std::string& network,
                                                    const std::string& container,
                                                    const std::vector<std::string>& aliases) = 0;
  [[nodiscard]] virtual absl::Status DisconnectNetwork(const std::string& network,
                                                       const std::string& container,
                                                       bool force) = 0;
  [[nodiscard]] virtual absl::Status RemoveNetwork(const std::string& network) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<NetworkInfo>> ListNetworks(
      const Labels& labels) = 0;
  // One network by name or id (NotFound when there is none).
  [[nodiscard]] virtual absl::StatusOr<NetworkDetails> InspectNetwork(
      const std::string& name_or_id) = 0;
};

}  // namespace llmbox::spoke::docker
