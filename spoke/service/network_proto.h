// spoke/service/network_proto.h
//
// A box's network policy between llmbox.v1 messages and the box manager's types: the box
// service's one place for it. Entries are parsed here (egress::ParseEntry), so a bad one is
// InvalidArgument naming it before the box manager is asked. What goes back to the hub is
// valid UTF-8 and bounded: a refusal names what the box asked for, so it is the box's words.
//
//   LLMBOX_ASSIGN_OR_RETURN(std::optional<egress::BoxPolicy> policy,
//                           PolicyFromProto(request, options.egress.default_mode));
//   NetworkToProto(view.network, /*with_refusals=*/true, box.mutable_network());
//
// Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <optional>

#include "absl/status/statusor.h"

#include "llmbox/v1/box.pb.h"
#include "spoke/box/manager.h"
#include "spoke/egress/policy.h"

namespace llmbox::spoke::service {

// Entries one request may carry in each list (a create's allow, a change's add and remove).
inline constexpr int kMaxNetworkEntries = 64;
inline constexpr std::size_t kMaxEntryBytes = 253;
// What a box's network view carries to the hub at most.
inline constexpr std::size_t kMaxRefusals = 32;  // the newest
inline constexpr std::size_t kMaxDestinationBytes = 255;
inline constexpr std::size_t kMaxRuleBytes = 256;
inline constexpr std::size_t kMaxProtocolBytes = 16;

v1::NetworkMode ModeToProto(egress::Mode mode);

// nullopt for NETWORK_MODE_UNSPECIFIED; InvalidArgument for a value this spoke does not know.
[[nodiscard]] absl::StatusOr<std::optional<egress::Mode>> ModeFromProto(int mode);

// The policy a create asks for: nullopt when the request has no `network`; its mode
// `default_mode` when UNSPECIFIED. InvalidArgument naming the first entry that does not parse,
// or for more than kMaxNetworkEntries entries.
[[nodiscard]] absl::StatusOr<std::optional<egress::BoxPolicy>> PolicyFromProto(
    const v1::CreateBoxRequest& request, egress::Mode default_mode);

// The change a SetBoxNetwork asks for, each entry checked with egress::ParseEntry and given in
// its canonical text. InvalidArgument as PolicyFromProto.
[[nodiscard]] absl::StatusOr<box::NetworkChange> ChangeFromProto(
    const v1::SetBoxNetworkRequest& request);

// Fills `out` from `view`; the newest kMaxRefusals refusals (oldest first) when
// `with_refusals`, none otherwise. Every string is made valid UTF-8 and cut to its bound.
void NetworkToProto(const box::BoxNetworkView& view, bool with_refusals, v1::BoxNetwork* out);

}  // namespace llmbox::spoke::service
