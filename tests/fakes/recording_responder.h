#pragma once

// An http::Responder that records what a handler answered, for handler unit tests without a
// socket. Thread-safe; WaitFor waits (bounded) on streamed chunks.

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hub/http/server.h"

namespace llmbox::testing {

namespace http = ::llmbox::hub::http;

class RecordingResponder final : public http::Responder {
 public:
  bool Respond(http::Response response) override {
    std::lock_guard lock(mu_);
    status = response.status;
    headers = std::move(response.headers);
    body = std::move(response.body);
    done = true;
    cv_.notify_all();
    return true;
  }
  bool StartStream(int s, http::Headers h) override {
    std::lock_guard lock(mu_);
    status = s;
    headers = std::move(h);
    streaming = true;
    return true;
  }
  bool Write(std::string chunk) override {
    std::lock_guard lock(mu_);
    chunks.push_back(std::move(chunk));
    cv_.notify_all();
    return true;
  }
  void Finish() override {
    std::lock_guard lock(mu_);
    done = true;
    cv_.notify_all();
  }
  bool ClientGone() const override { return false; }

  std::string Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key.size() == name.size() &&
          std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        return value;
      }
    }
    return "";
  }
  // The body parsed by a JSON library's parse (nlohmann::json), kept out of this header.
  template <typename Json>
  Json As() const {
    return Json::parse(body);
  }
  // Waits (bounded) until `pred` holds over the chunks.
  bool WaitFor(const std::function<bool(const std::vector<std::string>&)>& pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return pred(chunks); });
  }
  std::string Stream() const {
    std::string all;
    for (const auto& c : chunks) all += c;
    return all;
  }

  int status = 0;
  http::Headers headers;
  std::string body;
  std::vector<std::string> chunks;
  bool streaming = false;
  bool done = false;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace llmbox::testing
