#pragma once

// A minimal Docker Engine API caller for rig tests: one HTTP request over the engine's unix
// socket with libcurl. The spoke's real client (spoke/docker/) is a separate, complete piece;
// this one exists so the rig can be proven before, and independently of, that client.

#include <chrono>
#include <string>
#include <string_view>

namespace llmbox::testing {

struct HttpReply {
  long status = 0;    // HTTP status, 0 when the request did not complete
  std::string body;   // response body (raw bytes)
  std::string error;  // libcurl's message when status is 0
};

class EngineHttp {
 public:
  explicit EngineHttp(std::string socket_path);

  // `path` starts with "/" and may carry a query ("/v1.41/containers/json?all=1").
  // A non-empty body is sent as application/json.
  HttpReply Call(std::string_view method, std::string_view path, std::string_view body = {});

  // Runs `create_json` (a ContainerCreate body) to completion: create, start, wait, read the
  // logs (stdout+stderr, demultiplexed), remove. Returns the exit code and the output.
  struct RunResult {
    long exit_code = -1;
    std::string output;
  };
  RunResult RunToCompletion(const std::string& create_json);

 private:
  std::string socket_path_;
};

// Kills the main process of running container `id` with SIGKILL from this host (the engine
// must run here), as a crash would: unlike a kill through the API, the engine then applies the
// container's restart policy. Returns the State.StartedAt it had, for WaitForRestart.
std::string KillMainProcess(EngineHttp& engine, const std::string& id);

// Waits (up to `limit`) until container `id` runs again with a State.StartedAt other than
// `started_before`; fails the test otherwise.
void WaitForRestart(EngineHttp& engine, const std::string& id, const std::string& started_before,
                    std::chrono::seconds limit = std::chrono::seconds(60));

// Decodes the engine's multiplexed stdout/stderr stream (8-byte frame headers) into the
// concatenated payloads.
std::string Demultiplex(std::string_view stream);

}  // namespace llmbox::testing
