#include "spoke/docker/curl_engine.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/absl_compat.h"
#include "common/status.h"
#include "spoke/docker/hijack.h"
#include "spoke/docker/http_errors.h"
#include "spoke/docker/process_tree.h"
#include "spoke/docker/stream.h"

namespace llmbox::spoke::docker {
namespace {

using common::AsAbsl;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMinApiMinor = 41;  // Debian 12's engine (20.10) speaks at most 1.41
constexpr int kMaxApiMinor = 47;  // newest version whose fields we use the same way
constexpr size_t kMaxReplyBytes = 64u << 20;
constexpr size_t kMaxHeaderBytes = 64u << 10;

// What to fix when curl's TLS to a remote engine failed.
constexpr const char* kMaybeRefused =
    "; if this came right after the TLS handshake, the engine may have refused our client "
    "certificate: ";
std::string TlsHint(CURLcode rc, std::string_view error_text) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
      return absl::StrCat("; ", kCaHint, ", and ", kHostHint);
    case CURLE_SSL_CERTPROBLEM:
      return "; the client certificate or its key cannot be used (tls_cert_file, tls_key_file)";
    case CURLE_SSL_CACERT_BADFILE:
      return "; the CA file cannot be read (tls_ca_file)";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
      if (RefusedClientCertificate(error_text)) {
        return absl::StrCat("; the engine refused our client certificate; ", kClientCertHint);
      }
      return absl::StrCat(kMaybeRefused, kClientCertHint);
    default:
      return error_text.find("getpeername") != std::string_view::npos
                 ? absl::StrCat(kMaybeRefused, kClientCertHint)
                 : std::string();
  }
}

std::string Escape(std::string_view text) {
  char* escaped = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  std::string out(escaped == nullptr ? "" : escaped);
  curl_free(escaped);
  return out;
}

std::string LabelFilter(const Labels& labels) {
  json filter = json::array();
  for (const auto& [key, value] : labels) {
    filter.push_back(value.empty() ? key : key + "=" + value);
  }
  return Escape(json{{"label", filter}}.dump());
}

Labels LabelsOf(const json& value) {
  Labels labels;
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (it.value().is_string()) labels[it.key()] = it.value().get<std::string>();
    }
  }
  return labels;
}

std::string StringOr(const json& object, const char* key, std::string fallback = {}) {
  if (object.is_object() && object.contains(key) && object[key].is_string()) {
    return object[key].get<std::string>();
  }
  return fallback;
}

// The volumes in a container's "Mounts" (inspect and list give the same shape).
std::map<std::string, std::string> VolumesOf(const json& mounts) {
  std::map<std::string, std::string> out;
  if (!mounts.is_array()) return out;
  for (const json& mount : mounts) {
    if (!mount.is_object() || StringOr(mount, "Type") != "volume") continue;
    const std::string name = StringOr(mount, "Name");
    const std::string destination = StringOr(mount, "Destination");
    if (!name.empty() && !destination.empty()) out[destination] = name;
  }
  return out;
}

int64_t IntOr(const json& object, const char* key, int64_t fallback = 0) {
  if (object.is_object() && object.contains(key) && object[key].is_number_integer()) {
    return object[key].get<int64_t>();
  }
  return fallback;
}

std::string StripSlash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

// "1.41" -> 41 (major must be 1).
std::optional<int> ApiMinor(std::string_view version) {
  std::string v(absl::StripAsciiWhitespace(AsAbsl(version)));
  if (!absl::StartsWith(v, "1.")) return std::nullopt;
  int minor = 0;
  if (!absl::SimpleAtoi(v.substr(2), &minor)) return std::nullopt;
  return minor;
}

struct Reply {
  long status = 0;
  std::string body;
  std::string api_version;  // the API-Version header, when present
};

struct Request {
  std::string method = "GET";
  std::string path;  // without the version prefix; may carry a query
  std::string body;
  std::string content_type = "application/json";
  milliseconds timeout{0};  // 0: the endpoint's call timeout
  bool versioned = true;
  // When set, the body goes here chunk by chunk instead of into Reply::body; returning false
  // aborts the transfer.
  std::function<bool(std::string_view)> sink;
  // When set, the request body is read from here as it is sent (never held whole), and
  // `sent` is told the running total.
  ImageArchive* upload = nullptr;
  std::function<void(uint64_t)> sent;
};

struct Transfer {
  Reply* reply;
  const Request* request;
  bool overflow = false;
  uint64_t uploaded = 0;
  absl::Status upload_error;
};

size_t OnUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::StatusOr<size_t> n = t->request->upload->Read(buffer, size * count);
  if (!n.ok()) {
    t->upload_error = n.status();
    return CURL_READFUNC_ABORT;
  }
  t->uploaded += *n;
  if (t->request->sent) t->request->sent(t->uploaded);
  return *n;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->request->sink && t->reply->status / 100 == 2) {
    return t->request->sink(std::string_view(data, n)) ? n : 0;
  }
  if (t->reply->body.size() + n > kMaxReplyBytes) {
    t->overflow = true;
    return 0;
  }
  t->reply->body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (absl::StartsWith(AsAbsl(line), "HTTP/")) {
    absl::SimpleAtoi(AsAbsl(line.substr(9, 3)), &t->reply->status);
  } else if (absl::StartsWithIgnoreCase(AsAbsl(line), "api-version:")) {
    t->reply->api_version = std::string(absl::StripAsciiWhitespace(AsAbsl(line.substr(12))));
  }
  return size * count;
}

// A sink for the engine's JSON-lines progress streams (pull, load): each object line goes to
// `on_line` (when set), and an "error" member becomes `*failure`. A line longer than
// kMaxHeaderBytes stops the transfer (and is the failure).
std::function<bool(std::string_view)> JsonLines(std::string* pending, std::string* failure,
                                                std::function<void(const json&)> on_line) {
  return [=](std::string_view chunk) {
    pending->append(chunk);
    size_t newline;
    while ((newline = pending->find('\n')) != std::string::npos) {
      json line = json::parse(pending->substr(0, newline), nullptr, false);
      pending->erase(0, newline + 1);
      if (!line.is_object()) continue;
      if (line.contains("error")) *failure = StringOr(line, "error");
      if (on_line) on_line(line);
    }
    if (pending->size() < kMaxHeaderBytes) return true;
    *failure = absl::StrCat("a line of the engine's reply exceeds ", kMaxHeaderBytes, " bytes");
    return false;
  };
}

class Engine final : public DockerEngine {
 public:
  Engine(EngineEndpoint endpoint, HijackTarget hijack)
      : endpoint_(std::move(endpoint)), hijack_(std::move(hijack)) {
    name_ = endpoint_.unix_socket.empty() ? endpoint_.tcp_url : "unix://" + endpoint_.unix_socket;
    hijack_.name = name_;
  }

  absl::StatusOr<EngineInfo> Ping() override {
    LLMBOX_ASSIGN_OR_RETURN(std::string api, Negotiate());
    LLMBOX_ASSIGN_OR_RETURN(json version, CallJson({.path = "/version"}, "version"));
    return EngineInfo{api, StringOr(version, "Version"), name_};
  }

  absl::StatusOr<ImageInfo> InspectImage(const std::string& ref) override {
    LLMBOX_ASSIGN_OR_RETURN(
        json image, CallJson({.path = "/images/" + Escape(ref) + "/json"}, "inspect image " + ref));
    return ImageInfo{StringOr(image, "Id"), LabelsOf(image["Config"]["Labels"]),
                     IntOr(image, "Size")};
  }

  absl::Status PullImage(const std::string& ref) override {
    std::string repo = ref, tag = "latest";
    if (size_t colon = ref.rfind(':');
        colon != std::string::npos && ref.find('/', colon) == std::string::npos) {
      repo = ref.substr(0, colon);
      tag = ref.substr(colon + 1);
    }
    std::string pending, failure;
    Request request{.method = "POST",
                    .path = "/images/create?fromImage=" + Escape(repo) + "&tag=" + Escape(tag),
                    .timeout = milliseconds(30 * 60 * 1000)};
    // The engine answers 200 and reports a failed pull inside the JSON-lines stream.
    request.sink = JsonLines(&pending, &failure, nullptr);
    LLMBOX_RETURN_IF_ERROR(Call(request, "pull " + ref).status());
    if (!failure.empty()) {
      return absl::UnavailableError(
          absl::StrCat("docker (", name_, "): pull ", ref, ": ", failure));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> LoadImage(
      ImageArchive& source, const std::function<void(uint64_t)>& progress) override {
    std::vector<std::string> loaded;
    std::string pending, failure;
    Request request{.method = "POST",
                    .path = "/images/load?quiet=1",
                    .content_type = "application/x-tar",
                    .timeout = milliseconds(60 * 60 * 1000),
                    .upload = &source,
                    .sent = progress};
    // JSON lines: {"stream":"Loaded image: name:tag\n"} per image, {"error":...} on failure.
    request.sink = JsonLines(&pending, &failure, [&loaded](const json& line) {
      std::string text(absl::StripAsciiWhitespace(AsAbsl(StringOr(line, "stream"))));
      for (std::string_view prefix : {"Loaded image: ", "Loaded image ID: "}) {
        if (absl::StartsWith(AsAbsl(text), AsAbsl(prefix)) && loaded.size() < 1024) {
          loaded.push_back(text.substr(prefix.size()));
        }
      }
    });
    LLMBOX_RETURN_IF_ERROR(Call(request, "load images").status());
    if (!pending.empty()) request.sink("\n");
    if (!failure.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("docker (", name_, "): load images: ", failure));
    }
    return loaded;
  }

  absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) override {
    json host = {
        {"RestartPolicy", {{"Name", spec.restart_policy.empty() ? "no" : spec.restart_policy}}}};
    if (spec.memory_bytes > 0) host["Memory"] = spec.memory_bytes;
    if (spec.nano_cpus > 0) host["NanoCpus"] = spec.nano_cpus;
    if (spec.pids_limit > 0) host["PidsLimit"] = spec.pids_limit;
    if (!spec.binds.empty()) host["Binds"] = spec.binds;
    if (!spec.volumes_from.empty()) host["VolumesFrom"] = spec.volumes_from;
    if (!spec.cap_drop.empty()) host["CapDrop"] = spec.cap_drop;
    if (!spec.cap_add.empty()) host["CapAdd"] = spec.cap_add;
    if (!spec.security_opt.empty()) host["SecurityOpt"] = spec.security_opt;
    if (spec.read_only_rootfs) host["ReadonlyRootfs"] = true;
    if (!spec.tmpfs.empty()) host["Tmpfs"] = spec.tmpfs;
    if (!spec.network_mode.empty()) host["NetworkMode"] = spec.network_mode;
    if (!spec.dns.empty()) host["Dns"] = spec.dns;
    if (spec.init) host["Init"] = true;
    if (spec.tty && spec.console_rows > 0 && spec.console_cols > 0) {
      host["ConsoleSize"] = {spec.console_rows, spec.console_cols};
    }
    // Disk bounds.
    if (!spec.local_volumes.empty()) {
      json mounts = json::array();
      for (const auto& [target, options] : spec.local_volumes) {
        mounts.push_back(
            {{"Type", "volume"},
             {"Target", target},
             {"VolumeOptions", {{"DriverConfig", {{"Name", "local"}, {"Options", options}}}}}});
      }
      host["Mounts"] = mounts;
    }
    if (spec.log_max_bytes > 0) {
      json options = {{"max-size", std::to_string(spec.log_max_bytes)}};
      if (spec.log_max_files > 0) options["max-file"] = std::to_string(spec.log_max_files);
      host["LogConfig"] = {{"Type", "json-file"}, {"Config", options}};
    }
    if (spec.root_size_bytes > 0) {
      host["StorageOpt"] = {{"size", std::to_string(spec.root_size_bytes)}};
    }
    json body = {{"Image", spec.image},
                 {"Tty", spec.tty},
                 {"OpenStdin", spec.open_stdin},
                 {"StdinOnce", spec.stdin_once},
                 {"AttachStdin", spec.open_stdin},
                 {"AttachStdout", true},
                 {"AttachStderr", true},
                 {"Labels", spec.labels},
                 {"HostConfig", host}};
    if (!spec.entrypoint.empty()) body["Entrypoint"] = spec.entrypoint;
    if (!spec.cmd.empty()) body["Cmd"] = spec.cmd;
    if (!spec.env.empty()) body["Env"] = spec.env;
    if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
    if (!spec.user.empty()) body["User"] = spec.user;
    if (!spec.hostname.empty()) body["Hostname"] = spec.hostname;
    if (!spec.volumes.empty()) {
      json volumes = json::object();
      for (const auto& path : spec.volumes) volumes[path] = json::object();
      body["Volumes"] = volumes;
    }
    std::string path = "/containers/create";
    if (!spec.name.empty()) path += "?name=" + Escape(spec.name);
    LLMBOX_ASSIGN_OR_RETURN(json created,
                            CallJson({.method = "POST", .path = path, .body = Dump(body)},
                                     "create container " + spec.name));
    return StringOr(created, "Id");
  }

  absl::Status StartContainer(const std::string& id) override {
    return Call({.method = "POST", .path = "/containers/" + Escape(id) + "/start"}, "start " + id)
        .status();
  }

  absl::StatusOr<int64_t> WaitContainer(const std::string& id, milliseconds timeout) override {
    LLMBOX_ASSIGN_OR_RETURN(
        json waited, CallJson({.method = "POST",
                               .path = "/containers/" + Escape(id) + "/wait?condition=not-running",
                               .timeout = timeout},
                              "wait for " + id));
    return IntOr(waited, "StatusCode", -1);
  }

  absl::Status StopContainer(const std::string& id, std::chrono::seconds grace) override {
    return Call({.method = "POST",
                 .path = absl::StrCat("/containers/", Escape(id), "/stop?t=", grace.count()),
                 .timeout = endpoint_.call_timeout + grace},
                "stop " + id)
        .status();
  }

  absl::Status KillContainer(const std::string& id, std::string_view signal) override {
    return Call({.method = "POST",
                 .path = "/containers/" + Escape(id) + "/kill?signal=" + Escape(signal)},
                "kill " + id)
        .status();
  }

  absl::Status RemoveContainer(const std::string& id, bool force) override {
    return Call({.method = "DELETE",
                 .path = absl::StrCat("/containers/", Escape(id), "?v=1&force=", force ? 1 : 0)},
                "remove " + id)
        .status();
  }

  absl::StatusOr<ContainerInfo> InspectContainer(const std::string& id) override {
    LLMBOX_ASSIGN_OR_RETURN(
        json c, CallJson({.path = "/containers/" + Escape(id) + "/json"}, "inspect " + id));
    ContainerInfo info;
    info.id = StringOr(c, "Id");
    info.name = StripSlash(StringOr(c, "Name"));
    info.image = StringOr(c["Config"], "Image");
    info.labels = LabelsOf(c["Config"]["Labels"]);
    info.tty = c["Config"].is_object() && c["Config"].value("Tty", false);
    info.state = StringOr(c["State"], "Status");
    info.running = c["State"].is_object() && c["State"].value("Running", false);
    info.exit_code = IntOr(c["State"], "ExitCode");
    absl::Time created;
    std::string err;
    if (absl::ParseTime(absl::RFC3339_full, StringOr(c, "Created"), &created, &err)) {
      info.created = absl::ToChronoTime(created);
    }
    if (absl::Time started;
        absl::ParseTime(absl::RFC3339_full, StringOr(c["State"], "StartedAt"), &started, &err) &&
        started > absl::UnixEpoch()) {
      info.started = absl::ToChronoTime(started);
    }
    const json& nets = c["NetworkSettings"]["Networks"];
    if (nets.is_object()) {
      for (auto it = nets.begin(); it != nets.end(); ++it) info.networks.push_back(it.key());
    }
    info.volumes = VolumesOf(c["Mounts"]);
    return info;
  }

  absl::StatusOr<std::vector<ContainerInfo>> ListContainers(const Labels& labels) override {
    LLMBOX_ASSIGN_OR_RETURN(
        json list, CallJson({.path = "/containers/json?all=1&filters=" + LabelFilter(labels)},
                            "list containers"));
    std::vector<ContainerInfo> out;
    if (!list.is_array()) return out;
    for (const json& c : list) {
      ContainerInfo info;
      info.id = StringOr(c, "Id");
      if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty() &&
          c["Names"][0].is_string()) {
        info.name = StripSlash(c["Names"][0].get<std::string>());
      }
      info.image = StringOr(c, "Image");
      info.state = StringOr(c, "State");
      info.running = info.state == "running";
      info.labels = LabelsOf(c["Labels"]);
      info.created =
          std::chrono::system_clock::time_point(std::chrono::seconds(IntOr(c, "Created")));
      const json& nets = c["NetworkSettings"]["Networks"];
      if (nets.is_object()) {
        for (auto it = nets.begin(); it != nets.end(); ++it) info.networks.push_back(it.key());
      }
      info.volumes = VolumesOf(c["Mounts"]);
      out.push_back(std::move(info));
    }
    return out;
  }

  absl::Status RenameContainer(const std::string& id, const std::string& new_name) override {
    return Call({.method = "POST",
                 .path = "/containers/" + Escape(id) + "/rename?name=" + Escape(new_name)},
                "rename " + id + " to " + new_name)
        .status();
  }

  absl::Status ResizeTty(const std::string& id, int rows, int cols) override {
    return Call({.method = "POST",
                 .path = absl::StrCat("/containers/", Escape(id), "/resize?h=", rows, "&w=", cols)},
                "resize " + id)
        .status();
  }

  absl::StatusOr<std::unique_ptr<AttachStream>> Attach(const std::string& id, bool with_stdin,
                                                       bool tty) override {
    LLMBOX_ASSIGN_OR_RETURN(std::string api, Negotiate());
    LLMBOX_ASSIGN_OR_RETURN(
        std::unique_ptr<HijackedStream> conn,
        HijackedStream::Open(
            hijack_,
            absl::StrCat("/v", api, "/containers/", Escape(id),
                         "/attach?stream=1&stdout=1&stderr=1&stdin=", with_stdin ? 1 : 0),
            "", tty, endpoint_.call_timeout));
    return std::unique_ptr<AttachStream>(std::move(conn));
  }

  absl::StatusOr<LogsResult> Logs(const std::string& id, const LogsRequest& request) override {
    LLMBOX_ASSIGN_OR_RETURN(ContainerInfo info, InspectContainer(id));
    LogsResult result;
    FrameDecoder decoder(info.tty);
    absl::Status decode_status;
    Request call{.path = absl::StrCat("/containers/", Escape(id), "/logs?stdout=1&stderr=1&tail=",
                                      request.tail > 0 ? absl::StrCat(request.tail) : "all")};
    if (request.since.has_value()) {
      // "<seconds>.<nanoseconds>", which the engine reads to the nanosecond.
      const auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(request.since->time_since_epoch())
              .count();
      absl::StrAppend(&call.path, "&since=", ns / 1'000'000'000, ".",
                      absl::Dec(ns % 1'000'000'000, absl::kZeroPad9));
    }
    // Decode as the bytes arrive and keep only the newest max_bytes.
    call.sink = [&](std::string_view chunk) {
      decode_status = decoder.Feed(chunk, &result.output, &result.output);
      if (result.output.size() > 2 * request.max_bytes) {
        result.output.erase(0, result.output.size() - request.max_bytes);
        result.truncated = true;
      }
      return decode_status.ok();
    };
    LLMBOX_RETURN_IF_ERROR(Call(call, "logs of " + id).status());
    LLMBOX_RETURN_IF_ERROR(decode_status);
    if (result.output.size() > request.max_bytes) {
      result.output.erase(0, result.output.size() - request.max_bytes);
      result.truncated = true;
    }
    return result;
  }

  absl::StatusOr<ExecResult> Exec(const std::string& id, const ExecSpec& spec) override {
    if (spec.argv.empty()) {
      return absl::InvalidArgumentError("docker exec: the command is empty");
    }
    LLMBOX_ASSIGN_OR_RETURN(std::string api, Negotiate());
    const auto deadline = Clock::now() + spec.timeout;
    json body = {{"AttachStdin", false},
                 {"AttachStdout", true},
                 {"AttachStderr", true},
                 {"Tty", false},
                 {"Cmd", spec.argv}};
    if (!spec.env.empty()) body["Env"] = spec.env;
    if (!spec.user.empty()) body["User"] = spec.user;
    if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
    LLMBOX_ASSIGN_OR_RETURN(json created, CallJson({.method = "POST",
                                                    .path = "/containers/" + Escape(id) + "/exec",
                                                    .body = Dump(body)},
                                                   "exec in " + id));
    const std::string exec_id = StringOr(created, "Id");
    LLMBOX_ASSIGN_OR_RETURN(
        std::unique_ptr<HijackedStream> conn,
        HijackedStream::Open(hijack_, absl::StrCat("/v", api, "/exec/", exec_id, "/start"),
                             R"({"Detach":false,"Tty":false})", /*tty=*/false, spec.timeout));
    ExecResult result;
    std::string out, err;
    bool cancelled = false;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        result.timed_out = true;
        break;
      }
      if (spec.cancelled && spec.cancelled()) {
        cancelled = true;
        break;
      }
      absl::Status st = conn->ReadInto(std::min(left, milliseconds(1000)), &out, &err);
      Keep(&out, &result.stdout_data, spec.max_output_bytes, &result.stdout_truncated);
      Keep(&err, &result.stderr_data, spec.max_output_bytes, &result.stderr_truncated);
      if (absl::IsOutOfRange(st)) break;
      LLMBOX_RETURN_IF_ERROR(st);
    }
    conn->Close();
    if (cancelled) {
      KillExec(exec_id);
      return absl::CancelledError(
          absl::StrCat("docker (", name_, "): exec in ", id, " cancelled by its caller"));
    }
    if (result.timed_out) {
      KillExec(exec_id);
      return result;
    }
    // The exit code can lag the end of the stream by a moment.
    for (int attempt = 0; attempt < 200; ++attempt) {
      LLMBOX_ASSIGN_OR_RETURN(json state,
                              CallJson({.path = "/exec/" + exec_id + "/json"}, "exec state"));
      if (!state.value("Running", false)) {
        result.exit_code = IntOr(state, "ExitCode", -1);
        return result;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("docker (", name_, "): exec ", exec_id, " ended its output but not its run"));
  }

  absl::Status PutArchive(const std::string& id, const std::string& path,
                          std::string_view tar) override {
    return Call({.method = "PUT",
                 .path = "/containers/" + Escape(id) + "/archive?path=" + Escape(path),
                 .body = std::string(tar),
                 .content_type = "application/x-tar"},
                "copy files into " + id)
        .status();
  }

  absl::StatusOr<std::string> CreateNetwork(const NetworkSpec& spec) override {
    json body = {{"Name", spec.name},
                 {"Driver", "bridge"},
                 {"Internal", spec.internal},
                 {"Labels", spec.labels},
                 {"CheckDuplicate", true}};
    LLMBOX_ASSIGN_OR_RETURN(
        json created, CallJson({.method = "POST", .path = "/networks/create", .body = Dump(body)},
                               "create network " + spec.name));
    return StringOr(created, "Id");
  }

  absl::Status ConnectNetwork(const std::string& network, const std::string& container,
                              const std::vector<std::string>& aliases) override {
    json body = {{"Container", container}};
    if (!aliases.empty()) body["EndpointConfig"] = {{"Aliases", aliases}};
    return Call({.method = "POST",
                 .path = "/networks/" + Escape(network) + "/connect",
                 .body = Dump(body)},
                "connect " + container + " to " + network)
        .status();
  }

  absl::Status DisconnectNetwork(const std::string& network, const std::string& container,
                                 bool force) override {
    json body = {{"Container", container}, {"Force", force}};
    return Call({.method = "POST",
                 .path = "/networks/" + Escape(network) + "/disconnect",
                 .body = Dump(body)},
                "disconnect " + container + " from " + network)
        .status();
  }

  absl::Status RemoveNetwork(const std::string& network) override {
    return Call({.method = "DELETE", .path = "/networks/" + Escape(network)},
                "remove network " + network)
        .status();
  }

  absl::StatusOr<std::vector<NetworkInfo>> ListNetworks(const Labels& labels) override {
    LLMBOX_ASSIGN_OR_RETURN(
        json list, CallJson({.path = "/networks?filters=" + LabelFilter(labels)}, "list networks"));
    std::vector<NetworkInfo> out;
    if (!list.is_array()) return out;
    for (const json& n : list) {
      NetworkInfo info{StringOr(n, "Id"), StringOr(n, "Name"), LabelsOf(n["Labels"]), {}};
      if (n.contains("Containers") && n["Containers"].is_object()) {
        for (auto it = n["Containers"].begin(); it != n["Containers"].end(); ++it) {
          info.container_ids.push_back(it.key());
        }
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  absl::StatusOr<NetworkDetails> InspectNetwork(const std::string& name_or_id) override {
    LLMBOX_ASSIGN_OR_RETURN(json n, CallJson({.path = "/networks/" + Escape(name_or_id)},
                                             "inspect network " + name_or_id));
    NetworkDetails out;
    out.id = StringOr(n, "Id");
    out.name = StringOr(n, "Name");
    if (n.is_object() && n.contains("Labels")) out.labels = LabelsOf(n["Labels"]);
    out.internal = n.is_object() && n.contains("Internal") && n["Internal"].is_boolean() &&
                   n["Internal"].get<bool>();
    // The first IPv4 range of the network's IPAM config (v6 ones have a ':').
    if (n.is_object() && n.contains("IPAM") && n["IPAM"].is_object() &&
        n["IPAM"].contains("Config") && n["IPAM"]["Config"].is_array()) {
      for (const json& config : n["IPAM"]["Config"]) {
        const std::string subnet = StringOr(config, "Subnet");
        if (subnet.empty() || subnet.find(':') != std::string::npos) continue;
        out.subnet = subnet;
        out.gateway = StringOr(config, "Gateway");
        break;
      }
    }
    if (StringOr(n, "Driver") == "bridge") {
      const json options = n.is_object() && n.contains("Options") ? n["Options"] : json();
      out.bridge = StringOr(options, "com.docker.network.bridge.name");
      if (out.bridge.empty()) out.bridge = "br-" + out.id.substr(0, 12);
    }
    return out;
  }

 private:
  static std::string Dump(const json& body) {
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
  }

  // Moves `from` into `to` up to `cap` bytes in all; the rest is dropped and flagged.
  static void Keep(std::string* from, std::string* to, size_t cap, bool* truncated) {
    if (from->empty()) return;
    const size_t room = cap > to->size() ? cap - to->size() : 0;
    if (from->size() > room) *truncated = true;
    to->append(*from, 0, std::min(room, from->size()));
    from->clear();
  }

  // A timed-out exec keeps running inside the box unless killed. The engine has no API for
  // that; the spoke shares the host's PID namespace when it talks to the unix socket, so the
  // exec's host PID can be signalled, with everything it started (a fork bomb or background
  // jobs would otherwise stay and hold the exec container's pids). A remote engine's PIDs are
  // not ours: there the process is left to end by itself (documented in docs/spoke.md).
  void KillExec(const std::string& exec_id) {
    if (endpoint_.unix_socket.empty()) return;
    auto state = CallJson({.path = "/exec/" + exec_id + "/json"}, "exec state");
    if (!state.ok()) return;
    int64_t pid = IntOr(*state, "Pid");
    if (pid > 1 && state->value("Running", false)) KillProcessTree(static_cast<pid_t>(pid));
  }

  absl::StatusOr<std::string> Negotiate() {
    {
      absl::MutexLock lock(&mu_);
      if (!api_.empty()) return api_;
    }
    LLMBOX_ASSIGN_OR_RETURN(Reply reply, Call({.path = "/_ping", .versioned = false}, "ping"));
    std::optional<int> minor = ApiMinor(reply.api_version);
    if (!minor.has_value()) {
      return absl::UnavailableError(absl::StrCat("docker (", name_,
                                                 "): /_ping gave no usable API-Version header (\"",
                                                 reply.api_version, "\")"));
    }
    if (*minor < kMinApiMinor) {
      return absl::FailedPreconditionError(
          absl::StrCat("docker (", name_, "): the engine speaks API 1.", *minor,
                       "; llmbox needs at least 1.", kMinApiMinor));
    }
    absl::MutexLock lock(&mu_);
    api_ = absl::StrCat("1.", std::min(*minor, kMaxApiMinor));
    return api_;
  }

  absl::StatusOr<json> CallJson(Request request, const std::string& what) {
    LLMBOX_ASSIGN_OR_RETURN(Reply reply, Call(request, what));
    json parsed = json::parse(reply.body, nullptr, false);
    if (parsed.is_discarded()) {
      return absl::InternalError(
          absl::StrCat("docker (", name_, "): ", what, ": the reply is not JSON"));
    }
    return parsed;
  }

  // One HTTP exchange; a status outside 2xx/304 becomes an error with the engine's message.
  absl::StatusOr<Reply> Call(const Request& request, const std::string& what) {
    std::string prefix;
    if (request.versioned) {
      LLMBOX_ASSIGN_OR_RETURN(std::string api, Negotiate());
      prefix = "/v" + api;
    }
    Reply reply;
    Transfer transfer{&reply, &request};
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return absl::InternalError("docker: curl_easy_init failed");
    CURL* h = curl.get();
    const std::string base =
        endpoint_.unix_socket.empty() ? endpoint_.tcp_url : std::string("http://docker");
    const std::string url = base + prefix + request.path;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, ("Content-Type: " + request.content_type).c_str());
    headers = curl_slist_append(headers, "Expect:");
    if (!endpoint_.unix_socket.empty()) {
      curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, endpoint_.unix_socket.c_str());
    } else {
      if (!endpoint_.tls_ca_file.empty()) {
        curl_easy_setopt(h, CURLOPT_CAINFO, endpoint_.tls_ca_file.c_str());
      }
      if (!endpoint_.tls_cert_file.empty()) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, endpoint_.tls_cert_file.c_str());
        curl_easy_setopt(h, CURLOPT_SSLKEY, endpoint_.tls_key_file.c_str());
      }
    }
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.upload != nullptr) {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, OnUpload);
      curl_easy_setopt(h, CURLOPT_READDATA, &transfer);
      if (auto size = request.upload->Size(); size.has_value()) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(*size));
      } else {
        headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
      }
    } else if (request.method == "POST" || request.method == "PUT") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
    const milliseconds timeout =
        request.timeout.count() > 0 ? request.timeout : endpoint_.call_timeout;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
    char error_text[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_text);
    const CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (!transfer.upload_error.ok()) return transfer.upload_error;
    if (transfer.overflow) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "docker (", name_, "): ", what, ": the reply exceeds ", kMaxReplyBytes, " bytes"));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(absl::StrCat(
          "docker (", name_, "): ", what, ": no answer within ", timeout.count(), " ms"));
    }
    if (rc == CURLE_WRITE_ERROR && request.sink) {
      // The sink stopped the transfer; it reports its own reason.
      return reply;
    }
    if (rc != CURLE_OK) {
      // curl's own text names the TLS problem ("SSL certificate problem: unable to get local
      // issuer certificate"), where curl_easy_strerror is generic.
      return absl::UnavailableError(
          absl::StrCat("docker (", name_, "): ", what, ": ",
                       error_text[0] != '\0' ? error_text : curl_easy_strerror(rc),
                       endpoint_.tcp_url.empty() ? std::string() : TlsHint(rc, error_text)));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
    if (reply.status / 100 == 2 || reply.status == 304) return reply;
    return StatusForHttp(reply.status, absl::StrCat("docker (", name_, "): ", what, ": ",
                                                    EngineMessage(reply.body)));
  }

  const EngineEndpoint endpoint_;
  HijackTarget hijack_;  // where consoles (attach, exec) connect
  std::string name_;
  absl::Mutex mu_;
  std::string api_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<DockerEngine>> CurlDockerEngine::Create(
    const EngineEndpoint& endpoint) {
  if (endpoint.unix_socket.empty() == endpoint.tcp_url.empty()) {
    return absl::InvalidArgumentError(
        "docker: set exactly one of a unix socket path and a TCP URL for the engine");
  }
  if (endpoint.unix_socket.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("docker: the socket path ", endpoint.unix_socket, " is longer than ",
                     sizeof(sockaddr_un::sun_path) - 1, " bytes (a limit of unix sockets)"));
  }
  if (!endpoint.tcp_url.empty() && !absl::StartsWith(endpoint.tcp_url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("docker: a TCP engine must be reached over TLS (https://host:2376), got ",
                     endpoint.tcp_url));
  }
  HijackTarget hijack{.unix_socket = endpoint.unix_socket,
                      .tls_ca_file = endpoint.tls_ca_file,
                      .tls_cert_file = endpoint.tls_cert_file,
                      .tls_key_file = endpoint.tls_key_file};
  if (!endpoint.tcp_url.empty()) LLMBOX_RETURN_IF_ERROR(ParseEngineUrl(endpoint.tcp_url, &hijack));
  if (endpoint.tls_cert_file.empty() != endpoint.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "docker: a client certificate needs its key, and a key its certificate (set both)");
  }
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::unique_ptr<DockerEngine>(new Engine(endpoint, std::move(hijack)));
}

}  // namespace llmbox::spoke::docker
