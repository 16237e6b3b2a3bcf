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
#include "tests/fakes/recording_responder.h"

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

// A request as a browser at `address` sends it: the cookie header and a form body when given.
inline hub::http::Request BrowserRequest(const std::string& method, const std::string& path,
                                         const std::string& query = "",
                                         const std::string& cookie = "",
                                         const std::string& body = "",
                                         const std::string& address = "192.0.2.7") {
  hub::http::Request request;
  request.method = method;
  request.path = path;
  request.query = query;
  request.target = query.empty() ? path : path + "?" + query;
  request.remote_address = address;
  if (!cookie.empty()) request.headers.emplace_back("cookie", cookie);
  if (!body.empty()) {
    request.headers.emplace_back("content-type", "application/x-www-form-urlencoded");
  }
  request.body = body;
  return request;
}

// What `page.Handle(request, responder)` answered; status 0 when it did not answer.
template <typename Page>
PageReply Ask(Page& page, const hub::http::Request& request) {
  RecordingResponder out;
  page.Handle(request, out);
  if (!out.done) return {};
  return {.status = out.status, .headers = out.headers, .body = out.body};
}

}  // namespace llmbox::testing
