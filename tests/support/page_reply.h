#pragma once

// What a page handler (activation, authorize) answered, copied out of a RecordingResponder
// (tests/fakes), for tests that keep answers and compare them later.
//
//   PageReply reply{.status = out.status, .headers = out.headers, .body = out.body};
//   CHECK(reply.Header("Location") == "/auth/abc");

#include <string>
#include <string_view>
#include <vector>

#include "hub/http/server.h"

namespace llmbox::testing {

struct PageReply {
  int status = 0;
  hub::http::Headers headers;
  std::string body;

  // The first header named exactly `name`, or "".
  std::string Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "";
  }
  // Every header named exactly `name` (Set-Cookie), in order.
  std::vector<std::string> Headers(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [key, value] : headers) {
      if (key == name) out.push_back(value);
    }
    return out;
  }
};

}  // namespace llmbox::testing
