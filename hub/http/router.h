// hub/http/router.h
//
// Sends each request to the handler for its path: an exact path first, then the first prefix
// registered that the path starts with, then the fallback. The hub routes /healthz and
// /readyz exactly, /auth/ and /assets/ by prefix to the activation page, and everything else
// to the MCP endpoint.
//
//   Router router;
//   router.Exact("/healthz", health);
//   router.Prefix("/auth/", page);
//   router.Fallback(mcp);
//   HttpServer server(options, router.AsHandler());   // the router must outlive the server
//
// Thread-safety: register every route before the first request; after that, Route may run on
// many threads at once. A request no route takes and no fallback catches gets a plain 404.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/http/server.h"

namespace llmbox::hub::http {

class Router {
 public:
  // `path` matches only itself (no query; Request::path is compared). A second handler for
  // the same path replaces the first.
  void Exact(std::string path, Handler handler);
  // Every path that starts with `prefix`; prefixes are tried in the order they were added.
  void Prefix(std::string prefix, Handler handler);
  // What takes a request nothing else took.
  void Fallback(Handler handler);

  // Calls the request's handler (on the calling thread).
  void Route(Request request, std::shared_ptr<Responder> responder) const;
  // A Handler for HttpServer that routes through this router, which must outlive it.
  Handler AsHandler() const;

 private:
  // Which handler takes `path`; nullptr when none.
  const Handler* Find(std::string_view path) const;

  std::vector<std::pair<std::string, Handler>> exact_;
  std::vector<std::pair<std::string, Handler>> prefixes_;
  Handler fallback_;
};

}  // namespace llmbox::hub::http
