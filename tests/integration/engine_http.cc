#include "tests/integration/engine_http.h"

#include <signal.h>

#include <cstdint>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>

namespace llmbox::testing {
namespace {

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

EngineHttp::EngineHttp(std::string socket_path) : socket_path_(std::move(socket_path)) {}

HttpReply EngineHttp::Call(std::string_view method, std::string_view path, std::string_view body) {
  HttpReply reply;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  const std::string url = "http://localhost" + std::string(path);
  const std::string verb(method);
  const std::string payload(body);
  curl_slist* headers = nullptr;
  if (!payload.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
  curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, verb.c_str());
  if (!payload.empty() || verb == "POST") {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 300L);
  CURLcode rc = curl_easy_perform(curl.get());
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    reply.error = curl_easy_strerror(rc);
    return reply;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

EngineHttp::RunResult EngineHttp::RunToCompletion(const std::string& create_json) {
  RunResult result;
  HttpReply created = Call("POST", "/v1.41/containers/create", create_json);
  INFO("create replied " << created.status << ": " << created.body << created.error);
  REQUIRE(created.status == 201);
  const std::string id = nlohmann::json::parse(created.body).at("Id").get<std::string>();
  HttpReply started = Call("POST", "/v1.41/containers/" + id + "/start");
  HttpReply waited;
  if (started.status == 204) waited = Call("POST", "/v1.41/containers/" + id + "/wait");
  HttpReply logs = Call("GET", "/v1.41/containers/" + id + "/logs?stdout=1&stderr=1");
  HttpReply removed = Call("DELETE", "/v1.41/containers/" + id + "?force=1");
  INFO("start replied " << started.status << ": " << started.body);
  REQUIRE(started.status == 204);
  INFO("wait replied " << waited.status << ": " << waited.body);
  REQUIRE(waited.status == 200);
  CHECK(removed.status == 204);
  result.exit_code = nlohmann::json::parse(waited.body).at("StatusCode").get<long>();
  result.output = Demultiplex(logs.body);
  return result;
}

std::string Demultiplex(std::string_view stream) {
  std::string out;
  while (stream.size() >= 8) {
    const auto* h = reinterpret_cast<const unsigned char*>(stream.data());
    const uint32_t len =
        (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | uint32_t{h[7]};
    stream.remove_prefix(8);
    const size_t take = std::min<size_t>(len, stream.size());
    out.append(stream.substr(0, take));
    stream.remove_prefix(take);
  }
  return out;
}

}  // namespace llmbox::testing

namespace llmbox::testing {
namespace {

nlohmann::json InspectOrFail(EngineHttp& engine, const std::string& id) {
  const HttpReply reply = engine.Call("GET", "/containers/" + id + "/json");
  INFO(reply.body << reply.error);
  REQUIRE(reply.status == 200);
  return nlohmann::json::parse(reply.body);
}

}  // namespace

std::string KillMainProcess(EngineHttp& engine, const std::string& id) {
  const nlohmann::json state = InspectOrFail(engine, id)["State"];
  REQUIRE(state.value("Running", false));
  const int pid = state.value("Pid", 0);
  REQUIRE(pid > 1);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  return state.value("StartedAt", "");
}

void WaitForRestart(EngineHttp& engine, const std::string& id, const std::string& started_before,
                    std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  nlohmann::json state;
  while (std::chrono::steady_clock::now() < deadline) {
    state = InspectOrFail(engine, id)["State"];
    if (state.value("Running", false) && state.value("StartedAt", "") != started_before) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("container " << id << " did not run again within " << limit.count()
                    << " s; its state: " << state.dump());
}

}  // namespace llmbox::testing
