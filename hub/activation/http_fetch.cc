// hub/activation/http_fetch.cc
#include "hub/activation/http_fetch.h"

#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include <curl/curl.h>
#include <sys/socket.h>

namespace llmbox::hub::activation {
namespace {

struct Transfer {
  HttpResponse* response;
  size_t cap;
  bool overflow = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->response->body.size() + n > t->cap) {
    t->overflow = true;
    return 0;
  }
  t->response->body.append(data, n);
  return n;
}

struct Vetting {
  const CurlHttpFetcher::AddressVet* vet;
  std::string refusal;  // the first reason vet gave, "" while none
};

// CURLOPT_OPENSOCKETFUNCTION for GetVetted: a socket only for an address the vet admits.
curl_socket_t OpenVettedSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* vetting = static_cast<Vetting*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  if (std::optional<std::string> why = (*vetting->vet)(address->addr)) {
    if (vetting->refusal.empty()) vetting->refusal = std::move(*why);
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// The URL without its query, for messages (a query may carry a code or a secret).
std::string ForMessage(const std::string& url) { return url.substr(0, url.find('?')); }

}  // namespace

CurlHttpFetcher::CurlHttpFetcher(Options options) : options_(options) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<HttpResponse> CurlHttpFetcher::Get(const std::string& url) {
  return Perform(url, nullptr, {});
}

absl::StatusOr<HttpResponse> CurlHttpFetcher::PostForm(const std::string& url,
                                                       const std::string& form,
                                                       const std::vector<std::string>& headers) {
  return Perform(url, &form, headers);
}

absl::StatusOr<HttpResponse> CurlHttpFetcher::GetVetted(const std::string& url,
                                                        const AddressVet& vet) {
  return Perform(url, nullptr, {}, &vet);
}

absl::StatusOr<HttpResponse> CurlHttpFetcher::Perform(const std::string& url,
                                                      const std::string* form,
                                                      const std::vector<std::string>& headers,
                                                      const AddressVet* vet) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError(absl::StrCat(options_.what, ": curl_easy_init failed"));
  CURL* h = curl.get();
  HttpResponse response;
  Transfer transfer{&response, options_.max_response_bytes};
  curl_slist* list = curl_slist_append(nullptr, "Accept: application/json");
  for (const auto& header : headers) list = curl_slist_append(list, header.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> list_owner(list, curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, options_.protocols.c_str());
  if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  Vetting vetting{vet, ""};
  if (vet != nullptr) {
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, OpenVettedSocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &vetting);
  }
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "llmbox-hub");
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(options_.max_response_bytes));
  if (form != nullptr) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form->data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(form->size()));
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.total_timeout.count()));
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK && !vetting.refusal.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(options_.what, ": ", ForMessage(url), ": ", vetting.refusal));
  }
  if (transfer.overflow || rc == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(absl::StrCat(options_.what, ": the response from ",
                                                     ForMessage(url), " exceeds ",
                                                     options_.max_response_bytes, " bytes"));
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(
        absl::StrCat(options_.what, ": ", ForMessage(url), " did not answer within ",
                     options_.total_timeout.count(), " ms (", options_.timeout_setting, ")"));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat(options_.what, ": ", ForMessage(url), ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace llmbox::hub::activation
