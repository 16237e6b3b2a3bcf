#include "hub/http/router.h"

namespace llmbox::hub::http {

void Router::Exact(std::string path, Handler handler) {
  for (auto& [known, existing] : exact_) {
    if (known == path) {
      existing = std::move(handler);
      return;
    }
  }
  exact_.emplace_back(std::move(path), std::move(handler));
}

void Router::Prefix(std::string prefix, Handler handler) {
  prefixes_.emplace_back(std::move(prefix), std::move(handler));
}

void Router::Fallback(Handler handler) { fallback_ = std::move(handler); }

const Handler* Router::Find(std::string_view path) const {
  for (const auto& [known, handler] : exact_) {
    if (path == known) return &handler;
  }
  for (const auto& [prefix, handler] : prefixes_) {
    if (path.starts_with(prefix)) return &handler;
  }
  return fallback_ ? &fallback_ : nullptr;
}

void Router::Route(Request request, std::shared_ptr<Responder> responder) const {
  const Handler* handler = Find(request.path);
  if (handler == nullptr) {
    responder->Respond(
        {.status = 404, .headers = {{"Content-Type", "text/plain"}}, .body = "not found\n"});
    return;
  }
  (*handler)(std::move(request), std::move(responder));
}

Handler Router::AsHandler() const {
  return [this](Request request, std::shared_ptr<Responder> responder) {
    Route(std::move(request), std::move(responder));
  };
}

}  // namespace llmbox::hub::http
