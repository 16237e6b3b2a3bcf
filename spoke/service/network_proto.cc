#include "spoke/service/network_proto.h"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/repeated_ptr_field.h"

#include "common/absl_compat.h"
#include "common/status.h"
#include "common/utf8.h"

namespace llmbox::spoke::service {
namespace {

using google::protobuf::RepeatedPtrField;

// Each entry parsed (InvalidArgument naming the one that does not), at most kMaxNetworkEntries.
// `what` names the list as the request does ("network.allow", "add").
[[nodiscard]] absl::StatusOr<std::vector<egress::Entry>> ParseEntries(
    const char* what, const RepeatedPtrField<std::string>& texts) {
  if (texts.size() > kMaxNetworkEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", texts.size(), " entries; at most ", kMaxNetworkEntries));
  }
  std::vector<egress::Entry> entries;
  entries.reserve(texts.size());
  for (const std::string& text : texts) {
    if (text.size() > kMaxEntryBytes) {
      // Quoting all of a long entry would only hide the reason: its start says which.
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": entry \"", common::Utf8Prefix(text, 40), "...\" is longer than ",
                       kMaxEntryBytes, " bytes"));
    }
    auto entry = egress::ParseEntry(text);
    if (!entry.ok()) {
      // ParseEntry's message names the entry; this says where it came from.
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", common::ToValidUtf8(common::AsStd(entry.status().message()))));
    }
    entries.push_back(*std::move(entry));
  }
  return entries;
}

[[nodiscard]] absl::StatusOr<std::vector<std::string>> CanonicalEntries(
    const char* what, const RepeatedPtrField<std::string>& texts) {
  LLMBOX_ASSIGN_OR_RETURN(std::vector<egress::Entry> entries, ParseEntries(what, texts));
  std::vector<std::string> out;
  out.reserve(entries.size());
  for (const egress::Entry& entry : entries) out.push_back(entry.ToString());
  return out;
}

void SetTime(google::protobuf::Timestamp* out, std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  out->set_seconds(ns.count() / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(ns.count() % 1'000'000'000));
}

}  // namespace

v1::NetworkMode ModeToProto(egress::Mode mode) {
  switch (mode) {
    case egress::Mode::kNone:
      return v1::NETWORK_MODE_NONE;
    case egress::Mode::kAllowlist:
      return v1::NETWORK_MODE_ALLOWLIST;
    case egress::Mode::kOpen:
      return v1::NETWORK_MODE_OPEN;
  }
  LLMBOX_CHECK(false, "an egress mode without a proto value");
  return v1::NETWORK_MODE_UNSPECIFIED;
}

absl::StatusOr<std::optional<egress::Mode>> ModeFromProto(int mode) {
  switch (mode) {
    case v1::NETWORK_MODE_UNSPECIFIED:
      return std::nullopt;
    case v1::NETWORK_MODE_NONE:
      return egress::Mode::kNone;
    case v1::NETWORK_MODE_ALLOWLIST:
      return egress::Mode::kAllowlist;
    case v1::NETWORK_MODE_OPEN:
      return egress::Mode::kOpen;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("network: unknown mode ", mode, "; this spoke knows none, allowlist, open"));
  }
}

absl::StatusOr<std::optional<egress::BoxPolicy>> PolicyFromProto(
    const v1::CreateBoxRequest& request, egress::Mode default_mode) {
  if (!request.has_network()) return std::nullopt;
  LLMBOX_ASSIGN_OR_RETURN(std::optional<egress::Mode> mode,
                          ModeFromProto(request.network().mode()));
  LLMBOX_ASSIGN_OR_RETURN(std::vector<egress::Entry> allow,
                          ParseEntries("network.allow", request.network().allow()));
  return egress::BoxPolicy{.mode = mode.value_or(default_mode), .allow = std::move(allow)};
}

absl::StatusOr<box::NetworkChange> ChangeFromProto(const v1::SetBoxNetworkRequest& request) {
  box::NetworkChange change;
  LLMBOX_ASSIGN_OR_RETURN(change.add, CanonicalEntries("add", request.add()));
  LLMBOX_ASSIGN_OR_RETURN(change.remove, CanonicalEntries("remove", request.remove()));
  LLMBOX_ASSIGN_OR_RETURN(change.mode, ModeFromProto(request.mode()));
  return change;
}

void NetworkToProto(const box::BoxNetworkView& view, bool with_refusals, v1::BoxNetwork* out) {
  out->set_mode(ModeToProto(view.mode));
  // Entries are the spoke's canonical text and its config's, bounded by ParseEntry; made
  // valid all the same, since one bad byte would cost the hub the whole message.
  for (const std::string& entry : view.allow) out->add_allow(common::ToValidUtf8(entry));
  for (const std::string& entry : view.base) out->add_base(common::ToValidUtf8(entry));
  out->set_proxy(common::ToValidUtf8(view.proxy));
  if (!with_refusals) return;
  const std::size_t skip =
      view.refusals.size() > kMaxRefusals ? view.refusals.size() - kMaxRefusals : 0;
  for (std::size_t i = skip; i < view.refusals.size(); ++i) {
    const egress::Refusal& refusal = view.refusals[i];
    v1::Refusal* shown = out->add_refusals();
    SetTime(shown->mutable_time(), refusal.time);
    shown->set_destination(common::Utf8Prefix(refusal.destination, kMaxDestinationBytes));
    shown->set_port(refusal.port > 0 && refusal.port <= 65535 ? static_cast<uint32_t>(refusal.port)
                                                              : 0);
    shown->set_protocol(common::Utf8Prefix(refusal.protocol, kMaxProtocolBytes));
    shown->set_rule(common::Utf8Prefix(refusal.rule, kMaxRuleBytes));
  }
}

}  // namespace llmbox::spoke::service
